//! Runs many nodes of the component concurrently, each in its own task, and records what every
//! node answered. Tests and the CLI drive a run through this API: start, kill, resign,
//! partition, wait for a condition, and read the history.

use crate::api;
use crate::check::history::{Member, Observation};
use crate::check::timeline::Mark;
use crate::host::faults::Faults;
use crate::host::runtime::{Node, Runtime};
use crate::host::stats::NodeStats;
use crate::{describe_error, event_text};
use anyhow::{anyhow, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
// tokio's clock: real time, or virtual time when the runtime's time is paused.
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Shortest and longest pause between two ticks of a node, whatever the elector asks for.
const MIN_PAUSE: Duration = Duration::from_millis(5);
const MAX_PAUSE: Duration = Duration::from_secs(5);

enum Command {
    Resign(oneshot::Sender<Result<api::Status, api::Error>>),
    Stop,
}

struct NodeHandle {
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
    faults: Arc<Faults>,
    stats: Arc<NodeStats>,
}

/// Shared recorder: observations stamped with one clock.
#[derive(Clone)]
pub struct Recorder {
    started: Instant,
    observations: Arc<Mutex<Vec<Observation>>>,
    marks: Arc<Mutex<Vec<Mark>>>,
    /// The first trap of any node: which node, in which call, and the trap.
    trap: Arc<(Mutex<Option<Trap>>, tokio::sync::Notify)>,
    /// Also print each observation as a JSON line (the `node` subcommand).
    pub echo_json: bool,
}

/// A component instance trapped (a wasm trap, not an error the interface returns).
#[derive(Clone, Debug)]
pub struct Trap {
    pub node: String,
    pub call: &'static str,
    pub message: String,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            started: Instant::now(),
            observations: Arc::default(),
            marks: Arc::default(),
            trap: Arc::default(),
            echo_json: false,
        }
    }

    /// Note a trap (the first one is kept) and wake whoever waits in [`Recorder::trapped`].
    pub fn record_trap(&self, trap: Trap) {
        eprintln!(
            "{}: the component trapped in {}: {}",
            trap.node, trap.call, trap.message
        );
        let mut first = self.trap.0.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(trap);
        }
        self.trap.1.notify_waiters();
    }

    /// Waits until a node traps; returns the first trap.
    pub async fn trapped(&self) -> Trap {
        loop {
            let notified = self.trap.1.notified();
            if let Some(t) = self
                .trap
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
            {
                return t;
            }
            notified.await;
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn record(&self, node: &str, answer: &Result<api::Status, api::Error>) -> Observation {
        self.record_with_notices(node, answer, &[])
    }

    /// [`Recorder::record`], with what `notices` (0.2.1) said after the call: those that
    /// 0.2.0's `problems` cannot name are added to the observation's problems.
    pub fn record_with_notices(
        &self,
        node: &str,
        answer: &Result<api::Status, api::Error>,
        notices: &[api::Notice],
    ) -> Observation {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut o = observation(node, self.now_ms(), unix_ms, answer);
        if answer.is_ok() {
            for n in notices {
                let name = notice_name(n);
                if !o.problems.iter().any(|p| p == name) {
                    o.problems.push(name.to_string());
                }
            }
        }
        if self.echo_json {
            println!("{}", serde_json::to_string(&o).unwrap_or_default());
        }
        self.observations.lock().unwrap().push(o.clone());
        o
    }

    /// The caller stops acting as leader when it calls resign, before the release is
    /// confirmed: recorded as a follower answer at that instant.
    pub fn record_resigning(&self, node: &str) {
        let mut o = observation(
            node,
            self.now_ms(),
            0,
            &Err(api::Error::Transport(String::new())),
        );
        o.error = None;
        o.events = vec!["resigning".into()];
        self.observations.lock().unwrap().push(o);
    }

    pub fn history(&self) -> Vec<Observation> {
        self.observations.lock().unwrap().clone()
    }

    /// Note something done to `node` now, for the timeline picture.
    pub fn mark(&self, node: &str, label: &str) {
        let at_ms = self.now_ms();
        self.marks.lock().unwrap().push(Mark {
            at_ms,
            node: node.into(),
            label: label.into(),
        });
    }

    pub fn marks(&self) -> Vec<Mark> {
        self.marks.lock().unwrap().clone()
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

/// A notice's name, as the WIT spells it.
pub fn notice_name(n: &api::Notice) -> &'static str {
    match n {
        api::Notice::DuplicateNodeId => "duplicate-node-id",
        api::Notice::StoreNeedsUnquotedEtags => "store-needs-unquoted-etags",
        api::Notice::OpenedOnAnExpiredLease => "opened-on-an-expired-lease",
    }
}

/// Turn one answer into an observation.
pub fn observation(
    node: &str,
    at_ms: u64,
    unix_ms: u64,
    answer: &Result<api::Status, api::Error>,
) -> Observation {
    match answer {
        Ok(s) => Observation {
            unix_ms,
            at_ms,
            node: node.to_string(),
            role: match s.role {
                api::Role::Leader => "leader",
                api::Role::Follower => "follower",
            },
            term: s.fencing_token.or(s.leader.as_ref().map(|l| l.term)),
            leader: s.leader.as_ref().map(|l| l.node_id.clone()),
            valid_ms: s.valid_ms,
            events: s.events.iter().map(event_text).collect(),
            error: None,
            last_error: s.last_error.as_ref().map(describe_error),
            requests: s.requests,
            members: s
                .members
                .iter()
                .map(|m| Member {
                    node: m.node_id.clone(),
                    fresh: m.fresh,
                    age_ms: m.age_ms,
                    metadata: m.metadata.clone(),
                    problem: m.problem.clone(),
                })
                .collect(),
            problems: s
                .problems
                .iter()
                .map(|p| match p {
                    api::Problem::DuplicateNodeId => "duplicate-node-id".to_string(),
                })
                .collect(),
        },
        Err(e) => Observation {
            unix_ms,
            at_ms,
            node: node.to_string(),
            role: "follower",
            term: None,
            leader: None,
            valid_ms: 0,
            events: vec![],
            error: Some(describe_error(e)),
            last_error: None,
            requests: 0,
            members: vec![],
            problems: vec![],
        },
    }
}

/// A set of nodes in one election (or several), sharing one recorder.
pub struct Cluster {
    runtime: Arc<Runtime>,
    s3: api::S3Config,
    /// Serve every node from this in-process S3 instead of the network.
    in_process: Option<Arc<crate::stores::memserver::InProcessS3>>,
    pub recorder: Recorder,
    /// The settings added after 0.2.0 that every node started from now on is opened with
    /// (`elector.open-with`).
    pub options: api::Options,
    nodes: HashMap<String, NodeHandle>,
}

impl Cluster {
    pub fn new(runtime: Arc<Runtime>, s3: api::S3Config) -> Cluster {
        Cluster {
            runtime,
            s3,
            in_process: None,
            recorder: Recorder::new(),
            options: api::Options {
                longest_lease_ms: None,
            },
            nodes: HashMap::new(),
        }
    }

    /// A cluster whose nodes all talk to `s3`, inside this process (no network: for runs
    /// on virtual time, where real sockets cannot follow the paused clock).
    pub fn in_process(
        runtime: Arc<Runtime>,
        s3: Arc<crate::stores::memserver::InProcessS3>,
    ) -> Cluster {
        let mut c = Cluster::new(runtime, crate::stores::memserver::in_process_config());
        c.in_process = Some(s3);
        c
    }

    /// Start several nodes at the same instant: all are opened first, then all start ticking.
    pub async fn start_all(&mut self, elections: Vec<api::ElectionConfig>) -> Result<()> {
        let mut drivers = Vec::new();
        for election in elections {
            drivers.push(self.driver(election, Faults::new()).await?);
        }
        for (driver, faults) in drivers {
            self.spawn(driver, faults);
        }
        Ok(())
    }

    /// Start a node: stateful (one instance for its whole life) or, with `election.stateless`,
    /// a fresh instance for every tick. Fails if the config is refused at open.
    pub async fn start(&mut self, election: api::ElectionConfig) -> Result<()> {
        self.start_with_faults(election, Faults::new()).await
    }

    /// Start a node whose faults are already set up (to catch its very first requests).
    pub async fn start_with_faults(
        &mut self,
        election: api::ElectionConfig,
        faults: Arc<Faults>,
    ) -> Result<()> {
        let label = election.node_id.clone();
        self.start_as(&label, election, faults).await
    }

    /// Start a node under its own `label` in the history and in this cluster's calls: another
    /// process with a node id that a running node already has (a copied config, a replica
    /// that was not really stopped).
    pub async fn start_as(
        &mut self,
        label: &str,
        election: api::ElectionConfig,
        faults: Arc<Faults>,
    ) -> Result<()> {
        let (mut driver, faults) = self.driver(election, faults).await?;
        driver.label = label.to_string();
        self.spawn(driver, faults);
        Ok(())
    }

    async fn driver(
        &self,
        election: api::ElectionConfig,
        faults: Arc<Faults>,
    ) -> Result<(Driver, Arc<Faults>)> {
        if let Some(s3) = &self.in_process {
            faults.serve_in_process(s3.clone());
        }
        let mut driver = Driver {
            label: election.node_id.clone(),
            runtime: self.runtime.clone(),
            s3: self.s3.clone(),
            election: election.clone(),
            options: self.options,
            faults: faults.clone(),
            recorder: self.recorder.clone(),
            stats: Arc::default(),
            node: None,
            stood_down: false,
        };
        if !election.stateless {
            let opening = driver.open();
            driver.node = Some(opening.await?);
        }
        Ok((driver, faults))
    }

    fn spawn(&mut self, driver: Driver, faults: Arc<Faults>) {
        let id = driver.label.clone();
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = driver.stats.clone();
        let task = tokio::spawn(driver.run(rx));
        self.nodes.insert(
            id,
            NodeHandle {
                commands: tx,
                task,
                faults,
                stats,
            },
        );
    }

    /// Stop a node abruptly: no release, its lease must expire.
    pub fn kill(&mut self, id: &str) {
        if let Some(n) = self.nodes.remove(id) {
            n.task.abort();
            self.recorder.mark(id, "killed");
        }
    }

    /// Make a node resign; it keeps running as an observer.
    pub async fn resign(&self, id: &str) -> Result<Result<api::Status, api::Error>> {
        let node = self.nodes.get(id).ok_or_else(|| anyhow!("no node {id}"))?;
        self.recorder.mark(id, "resign");
        let (tx, rx) = oneshot::channel();
        node.commands
            .send(Command::Resign(tx))
            .map_err(|_| anyhow!("node {id} has stopped"))?;
        Ok(rx.await?)
    }

    /// Stop a node cleanly (it resigns if it leads, and leaves the quorum) and wait for it.
    pub async fn stop(&mut self, id: &str) {
        if let Some(n) = self.nodes.remove(id) {
            let _ = n.commands.send(Command::Stop);
            let _ = n.task.await;
        }
    }

    pub async fn stop_all(&mut self) {
        let ids: Vec<String> = self.nodes.keys().cloned().collect();
        for id in ids {
            self.stop(&id).await;
        }
    }

    /// The picture of the run so far as SVG.
    pub fn timeline_svg(&self, title: &str) -> String {
        crate::check::timeline::svg(&self.history(), &self.recorder.marks(), title)
    }

    pub fn faults(&self, id: &str) -> Option<Arc<Faults>> {
        self.nodes.get(id).map(|n| n.faults.clone())
    }

    /// What a node has done so far (ticks, latency, transitions, last answer, trap).
    pub fn stats(&self, id: &str) -> Option<Arc<NodeStats>> {
        self.nodes.get(id).map(|n| n.stats.clone())
    }

    pub fn node_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.nodes.keys().cloned().collect();
        ids.sort();
        ids
    }

    pub fn history(&self) -> Vec<Observation> {
        self.recorder.history()
    }

    pub fn now_ms(&self) -> u64 {
        self.recorder.now_ms()
    }

    /// Each running node's latest observation.
    pub fn latest(&self) -> Vec<Observation> {
        let history = self.history();
        let mut latest: HashMap<&str, &Observation> = HashMap::new();
        for o in &history {
            if self.nodes.contains_key(&o.node) {
                latest.insert(&o.node, o);
            }
        }
        let mut out: Vec<Observation> = latest.into_values().cloned().collect();
        out.sort_by(|a, b| a.node.cmp(&b.node));
        out
    }

    /// Poll until `condition` holds on the history (then return the time it held, in ms since
    /// the run began) or `limit` passes.
    pub async fn wait_for(
        &self,
        limit: Duration,
        condition: impl Fn(&[Observation]) -> bool,
    ) -> Option<u64> {
        let deadline = Instant::now() + limit;
        loop {
            if condition(&self.history()) {
                return Some(self.now_ms());
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in self.nodes.values() {
            n.task.abort();
        }
    }
}

/// One node's loop.
struct Driver {
    /// Its name in the history (the node id, unless started with [`Cluster::start_as`]).
    label: String,
    runtime: Arc<Runtime>,
    s3: api::S3Config,
    election: api::ElectionConfig,
    options: api::Options,
    faults: Arc<Faults>,
    recorder: Recorder,
    stats: Arc<NodeStats>,
    /// The long-lived instance (stateful nodes only).
    node: Option<Node>,
    /// A stateless node that resigned stops ticking: nothing in a fresh instance would
    /// remember the resignation (the caller keeps that state, as a cron job would by exiting).
    stood_down: bool,
}

impl Driver {
    /// Open an elector in a new instance. (A free-standing future: `Driver` holds a store,
    /// which is `Send` but not `Sync`.)
    fn open(&self) -> impl std::future::Future<Output = Result<Node>> + Send + 'static {
        let (runtime, s3, election, options, faults) = (
            self.runtime.clone(),
            self.s3.clone(),
            self.election.clone(),
            self.options,
            self.faults.clone(),
        );
        async move {
            runtime
                .open_with(&s3, &election, options, faults)
                .await?
                .map_err(|e| anyhow!("open {}: {}", election.node_id, describe_error(&e)))
        }
    }

    /// The stateful node, or a fresh instance for this call.
    async fn instance(&mut self) -> Result<&mut Node> {
        if self.election.stateless || self.node.is_none() {
            let opening = self.open();
            self.node = Some(opening.await?);
        }
        Ok(self.node.as_mut().expect("opened above"))
    }

    async fn tick(&mut self) -> Result<Result<api::Status, api::Error>> {
        self.instance().await?.tick().await
    }

    /// What the elector of the last call noticed (none if there is no instance).
    async fn notices(&mut self) -> Vec<api::Notice> {
        match self.node.as_mut() {
            Some(node) => node.notices().await.unwrap_or_default(),
            None => Vec::new(),
        }
    }

    async fn resign(&mut self) -> Result<Result<api::Status, api::Error>> {
        self.instance().await?.resign().await
    }

    /// Resign and remove the member object: how a node exits cleanly.
    async fn leave(&mut self) -> Result<Result<api::Status, api::Error>> {
        self.instance().await?.leave().await
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let id = self.label.clone();
        let retry = Duration::from_millis(500);
        loop {
            if let Some(pause) = self.faults.paused_for() {
                // A paused process does nothing, not even handle commands.
                tokio::time::sleep(pause).await;
            }
            if self.stood_down {
                match commands.recv().await {
                    Some(Command::Resign(reply)) => {
                        if let Ok(answer) = self.resign().await {
                            let _ = reply.send(answer);
                        }
                        continue;
                    }
                    Some(Command::Stop) | None => return,
                }
            }
            let started = Instant::now();
            let pause = match self.tick().await {
                Ok(answer) => {
                    self.stats.answered(started.elapsed(), &answer);
                    let notices = self.notices().await;
                    self.recorder.record_with_notices(&id, &answer, &notices);
                    match answer {
                        Ok(s) => Duration::from_millis(s.next_tick_ms),
                        Err(_) => retry,
                    }
                }
                Err(trap) => {
                    let message = format!("{trap:#}");
                    self.stats.trapped(message.clone());
                    self.recorder
                        .record(&id, &Err(api::Error::Transport(format!("trap: {message}"))));
                    self.recorder.record_trap(Trap {
                        node: id.clone(),
                        call: "tick",
                        message,
                    });
                    return;
                }
            };
            let pause = pause.clamp(MIN_PAUSE, MAX_PAUSE);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                command = commands.recv() => match command {
                    Some(Command::Resign(reply)) => {
                        self.recorder.record_resigning(&id);
                        if let Ok(answer) = self.resign().await {
                            self.recorder.record(&id, &answer);
                            let _ = reply.send(answer);
                        }
                        self.stood_down = self.election.stateless;
                    }
                    Some(Command::Stop) | None => {
                        self.recorder.record_resigning(&id);
                        if let Ok(answer) = self.leave().await {
                            self.recorder.record(&id, &answer);
                        }
                        return;
                    }
                },
            }
        }
    }
}
