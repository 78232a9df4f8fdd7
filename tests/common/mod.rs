//! Shared by the integration tests: one S3 server and one compiled component per test binary.
//!
//! The server is the one in `S3E_TEST_ENDPOINT` / `S3E_TEST_ACCESS_KEY_ID` /
//! `S3E_TEST_SECRET_ACCESS_KEY` (`S3E_TEST_REGION`) when set (`.ci/ceph.sh` writes them for
//! Ceph radosgw), otherwise a local ministack started here with an IAM-created key, so every
//! signature is verified. Each test works in its own bucket.
//!
//! Every test passes the settings a user would: `unquoted-etags` off and no probe, whatever
//! the store (Ceph RGW matches only unquoted ETags, and the component finds that out from its
//! answers). With `S3E_TEST_PROBED_SETTINGS=1` they pass what the component's conformance
//! probe (run once here) found instead, as a user who probed first would. No test
//! special-cases a store.
#![allow(dead_code)]

use host_test::api;
use host_test::check::history::Observation;
use host_test::host::cluster::Cluster;
use host_test::host::runtime::{default_component_path, Runtime};
use host_test::stores::ministack::Ministack;
use host_test::stores::{Credentials, Store};
use host_test::ConfigExt;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct TestEnv {
    pub runtime: Arc<Runtime>,
    pub store: Store,
    /// What the conformance probe found.
    pub profile: api::StoreProfile,
    _ministack: Option<Ministack>,
}

pub fn env() -> &'static TestEnv {
    static ENV: OnceLock<TestEnv> = OnceLock::new();
    ENV.get_or_init(|| {
        let runtime = Arc::new(
            Runtime::load(&default_component_path())
                .expect("load the component (run `make component` first)"),
        );
        let (store, ministack) = match std::env::var("S3E_TEST_ENDPOINT") {
            Ok(endpoint) => (
                Store {
                    endpoint,
                    region: std::env::var("S3E_TEST_REGION").unwrap_or_else(|_| "us-east-1".into()),
                    path_style: true,
                    credentials: Credentials {
                        access_key_id: std::env::var("S3E_TEST_ACCESS_KEY_ID")
                            .expect("S3E_TEST_ACCESS_KEY_ID"),
                        secret_access_key: std::env::var("S3E_TEST_SECRET_ACCESS_KEY")
                            .expect("S3E_TEST_SECRET_ACCESS_KEY"),
                        session_token: None,
                    },
                },
                None,
            ),
            Err(_) => {
                let m = Ministack::start().expect("start ministack");
                (m.store.clone(), Some(m))
            }
        };
        let profile = probe(&runtime, &store);
        eprintln!("test store {}: {profile:?}", store.endpoint);
        TestEnv {
            runtime,
            store,
            profile,
            _ministack: ministack,
        }
    })
}

/// The component's conformance probe against `store`, on a runtime of its own (`env()` may be
/// first called inside a test's runtime, which cannot block).
fn probe(runtime: &Arc<Runtime>, store: &Store) -> api::StoreProfile {
    let (runtime, store) = (runtime.clone(), store.clone());
    std::thread::spawn(move || {
        let bucket = format!("profile-{}", std::process::id());
        store.create_bucket(&bucket).expect("create bucket");
        let e = host_test::election_config("profile", "test-env", "tests/");
        tokio::runtime::Runtime::new()
            .expect("tokio runtime")
            .block_on(runtime.probe_store(
                &store.s3_config(&bucket),
                &e,
                host_test::host::faults::Faults::new(),
            ))
            .expect("run the probe")
            .unwrap_or_else(|e| panic!("the test store fails the conformance probe: {e:?}"))
    })
    .join()
    .expect("probe thread")
}

/// A fresh bucket for one test.
pub fn bucket(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "{}-{}-{}",
        test.replace('_', "-").chars().take(40).collect::<String>(),
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    env().store.create_bucket(&name).expect("create bucket");
    name
}

pub fn s3_config(bucket: &str) -> api::S3Config {
    let mut c = env().store.s3_config(bucket);
    c.unquoted_etags = unquoted_etags();
    c
}

/// The `unquoted-etags` setting the tests pass: a user's default (off), or with
/// `S3E_TEST_PROBED_SETTINGS=1` what the probe found.
pub fn unquoted_etags() -> bool {
    probed_settings() && env().profile.unquoted_etags
}

/// Whether tests pass the probed settings (`S3E_TEST_PROBED_SETTINGS=1`) rather than a user's
/// defaults.
pub fn probed_settings() -> bool {
    std::env::var("S3E_TEST_PROBED_SETTINGS").is_ok_and(|v| v == "1")
}

/// An election config with a short lease (all other timings derived from it).
pub fn election(name: &str, node: &str, lease_ms: u32) -> api::ElectionConfig {
    let mut e = host_test::election_config(name, node, "tests/");
    e.timing_mut().lease_ms = Some(lease_ms);
    e.metadata = format!("meta-{node}");
    e
}

pub fn cluster(bucket: &str) -> Cluster {
    Cluster::new(env().runtime.clone(), s3_config(bucket))
}

/// The first leader answer after `after_ms` from a node other than `not`.
pub fn new_leader_after(h: &[Observation], after_ms: u64, not: &str) -> Option<Observation> {
    h.iter()
        .filter(|o| o.at_ms > after_ms && o.is_leader() && o.node != not)
        .min_by_key(|o| o.at_ms)
        .cloned()
}

pub fn leaders_now(c: &Cluster) -> Vec<Observation> {
    c.latest().into_iter().filter(|o| o.is_leader()).collect()
}

pub fn assert_invariants(h: &[Observation]) {
    if let Err(v) = host_test::check::history::check(h) {
        panic!("invariant violated: {v}\nhistory:\n{}", pretty(h));
    }
}

pub fn pretty(h: &[Observation]) -> String {
    h.iter()
        .map(|o| {
            format!(
                "{:>7} {:<8} {:<8} term={:?} leader={:?} valid={} {:?} {:?}",
                o.at_ms, o.node, o.role, o.term, o.leader, o.valid_ms, o.events, o.error
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn ms(v: u32) -> Duration {
    Duration::from_millis(u64::from(v))
}

/// `n` nodes `n1..=n<n>` started at once in election `name`, once one of them leads.
pub async fn cluster_with_leader(bucket: &str, name: &str, n: u32, lease_ms: u32) -> Cluster {
    let mut c = cluster(bucket);
    let nodes = (1..=n)
        .map(|i| election(name, &format!("n{i}"), lease_ms))
        .collect();
    c.start_all(nodes).await.expect("start the nodes");
    c.wait_for(ms(lease_ms) * 3, |h| h.iter().any(Observation::is_leader))
        .await
        .unwrap_or_else(|| panic!("no leader among {n} nodes in {name}"));
    c
}

/// Whether an observation carries an event containing `what`.
pub fn has_event(o: &Observation, what: &str) -> bool {
    o.events.iter().any(|e| e.contains(what))
}

/// The answers of `node` after `after_ms`.
pub fn answers_of<'a>(h: &'a [Observation], node: &str, after_ms: u64) -> Vec<&'a Observation> {
    h.iter()
        .filter(|o| o.node == node && o.at_ms > after_ms)
        .collect()
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Election processes of any runtime (`host-test node`, the jco elector), and everything
/// they printed, as one history.
pub struct Nodes {
    bucket: String,
    /// `--election` and `--prefix` of every process.
    election: String,
    lease_ms: u32,
    pub epoch_unix_ms: u64,
    history: Arc<Mutex<Vec<Observation>>>,
    /// Each node's process and the thread reading its lines.
    children: Vec<(String, Child, Option<std::thread::JoinHandle<()>>)>,
}

impl Nodes {
    pub fn new(bucket: String, election: &str, lease_ms: u32) -> Nodes {
        Nodes {
            bucket,
            election: election.to_string(),
            lease_ms,
            epoch_unix_ms: unix_ms(),
            history: Arc::default(),
            children: Vec::new(),
        }
    }

    /// Start `cmd` (a `host-test node` or jco elector command) as node `id`.
    pub fn spawn(&mut self, cmd: Command, id: &str) {
        self.spawn_as(cmd, id, id);
    }

    /// Start `cmd` as node `id` with a lease of its own (a node of another deployment, or
    /// one a rolling change of settings has not reached yet).
    pub fn spawn_with_lease(&mut self, cmd: Command, id: &str, lease_ms: u32) {
        let usual = std::mem::replace(&mut self.lease_ms, lease_ms);
        self.spawn_as(cmd, id, id);
        self.lease_ms = usual;
    }

    /// SIGSTOP (`pause: true`) or SIGCONT to the process named `id`: a stopped process keeps
    /// the promise it last printed.
    pub fn pause(&mut self, id: &str, pause: bool) {
        let (_, child, _) = self
            .children
            .iter()
            .find(|(name, ..)| name == id)
            .unwrap_or_else(|| panic!("no node {id}"));
        let signal = if pause { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Start `cmd` with node id `id`, named `label` in the history (processes that share a
    /// node id are still told apart there).
    pub fn spawn_as(&mut self, mut cmd: Command, id: &str, label: &str) {
        let store = &env().store;
        cmd.args([
            "--node-id",
            id,
            "--election",
            &self.election,
            "--bucket",
            &self.bucket,
        ])
        .args([
            "--prefix",
            "procs/",
            "--lease",
            &format!("{}ms", self.lease_ms),
        ])
        .env("AWS_ENDPOINT_URL_S3", &store.endpoint)
        .env("AWS_REGION", &store.region)
        .env("AWS_ACCESS_KEY_ID", &store.credentials.access_key_id)
        .env(
            "AWS_SECRET_ACCESS_KEY",
            &store.credentials.secret_access_key,
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {id}: {cmd:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (history, epoch, name) = (self.history.clone(), self.epoch_unix_ms, label.to_string());
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value: serde_json::Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("{name} printed a non-JSON line {line:?}: {e}"));
                let mut o = Observation::from_json(&value, epoch)
                    .unwrap_or_else(|| panic!("{name} printed {line:?}"));
                o.node = name.clone();
                history.lock().unwrap().push(o);
            }
        });
        self.children.push((label.to_string(), child, Some(reader)));
    }

    pub fn history(&self) -> Vec<Observation> {
        self.history.lock().unwrap().clone()
    }

    /// Waits until `pred` holds on the history; panics with the history after `limit`.
    pub fn wait_for(&self, what: &str, limit: Duration, pred: impl Fn(&[Observation]) -> bool) {
        let started = Instant::now();
        while started.elapsed() < limit {
            if pred(&self.history()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{what}: not within {limit:?}\nhistory:\n{}",
            pretty(&self.history())
        );
    }

    /// SIGKILL (a crash: no release) or SIGTERM (the node resigns, then exits) to the process
    /// named `id`. Returns once its last line is in the history.
    pub fn signal(&mut self, id: &str, signal: &str) {
        let (_, child, reader) = self
            .children
            .iter_mut()
            .find(|(name, ..)| name == id)
            .unwrap_or_else(|| panic!("no node {id}"));
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let _ = child.wait();
        if let Some(reader) = reader.take() {
            reader.join().expect("the line reader panicked (see above)");
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn host_test_node() -> Command {
    let bin = host_test::workspace_dir().join("target/debug/host-test");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p host-test` (make test does)",
        bin.display()
    );
    let mut cmd = Command::new(bin);
    cmd.arg("node");
    if probed_settings() {
        cmd.arg("--probe-store");
    }
    cmd
}
