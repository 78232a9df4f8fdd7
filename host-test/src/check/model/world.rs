//! The election world: 2–3 processes running the real `core::Elector` on one lease (stateful,
//! stateless, or with a quorum of observers) against `memstore`'s model of S3 conditional
//! writes, driven the way the simulator's host drives them (a call through the core's call
//! machine: `begin`, requests one at a time while it asks, `finish`; the status a call returns
//! is recorded, and the caller calls again when it says).
//!
//! Every state is judged by the simulator's own invariants, on a summary of the history that
//! is enough for every future check: [`history::check`] on each process's open leadership
//! window and the first holder of every term (a), (b); [`sim::judge_lease_write`] on every
//! lease write the store applies (d), (h), (i); [`sim::judge_quorum`] on every leader answer
//! with the recent heartbeats and listings (g), (j); liveness (c) as a bounded eventually:
//! once faults stop at the heal time, some process must lead within
//! [`Profile::liveness_bound_ms`]; and stability (f): a leader elected after the heal is never
//! demoted (a 409 after the heal is normal store behaviour, not a fault); and the request rate
//! (l): no process sends more than the core's bound in any window ([`sim::judge_request_rate`]).

use super::{Fingerprint, Model};
use crate::check::history::{self, Observation};
use crate::check::sim::{self, Profile, SimViolation, KEY, NAME, STORE_EPOCH_S};
use s3_election::config::Keys;
use s3_election::core::{
    counts_towards_rate, CallKind, Elector, Reply, Role, RATE_WINDOW_RETRY_PERIODS,
};
use s3_election::memstore::EtagMatching;
use s3_election::memstore::MemStore;
use s3_election::mutation::Mutation;
use s3_election::protocol::{Outcome, PutMode, Request};
use s3_election::record::{LeaseRecord, FORMAT, TERMS_PER_SECOND};
use s3_election::time::Instant;
use s3_election::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A world's shape and bounds. Saved in counterexample files, so a replay rebuilds it exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    /// Processes, each with its own node id.
    pub nodes: usize,
    /// Quorum of observers (1: off).
    pub quorum: u32,
    /// Stateless processes (a fresh elector per tick).
    pub stateless: bool,
    /// True time advances by this much per step before the heal, ms.
    pub step_ms: u64,
    /// ... and by this much after it.
    pub heal_step_ms: u64,
    /// Faults stop here (true ms); crashed processes restart.
    pub heal_ms: u64,
    /// Exploration ends here (true ms).
    pub horizon_ms: u64,
    /// Fault actions allowed before the heal (lost requests or answers, crashes, deletions,
    /// 409s, a listing outage).
    pub faults: u8,
    pub crashes: bool,
    /// A crashed process may restart before the heal (at the heal, all do).
    pub restarts: bool,
    /// Processes after the first start at any step before `start_within_ms` (at the latest
    /// then), not all at once: so a slow clock can win an election too.
    pub staggered: bool,
    /// With `staggered`: every process has started by then (0: by the heal), ms.
    #[serde(default)]
    pub start_within_ms: u64,
    /// Fault: a process pauses for longer than a lease (a GC pause, a stopped VM): it
    /// neither ticks nor times out until the pause ends (or the heal). One waiting for an
    /// answer handles it when it runs again.
    #[serde(default)]
    pub pauses: bool,
    /// Fault: an idle process shuts down cleanly: it resigns (or, with a quorum, leaves) and
    /// stops once the release is done; it restarts like a crashed one.
    #[serde(default)]
    pub resignations: bool,
    pub deletions: bool,
    pub conflicts: bool,
    /// Member listings may fail for everyone from some moment until the heal.
    pub list_outage: bool,
    /// Each answer is stamped by one of two gateways, the store clock skew apart.
    pub gateway_skew: bool,
    /// Members that are not processes but heartbeat with 4 KiB of metadata each.
    pub phantoms: usize,
    /// 409s on lease writes after the heal (normal store behaviour).
    pub conflicts_after_heal: u8,
    /// Check liveness (c) (the horizon must reach past the heal by the bound).
    pub liveness: bool,
    /// Each process's clock runs at the fast or the slow end of the drift bound (every
    /// combination is an initial state); otherwise at true rate.
    pub drift: bool,
    /// Wall-clock offset of each process, ms (only read by the record-timestamp mutation).
    pub wall_offsets_ms: Vec<i64>,
    /// The store matches only bare ETags in conditional headers (Ceph RGW), while every
    /// process starts with quoted ones (the default setting, no probe).
    #[serde(default)]
    pub bare_etags_only: bool,
    /// Each process's lease, ms (empty: all the default). Every process is told the longest
    /// (the README's rule for nodes with different leases).
    #[serde(default)]
    pub leases_ms: Vec<u64>,
}

/// The world as a model: its bounds, the mutation, and what follows from them.
pub struct ElectionWorld {
    pub bounds: Bounds,
    pub mutation: Option<Mutation>,
    /// The simulator's description of this world: configurations, liveness bound, quorum.
    pub profile: Profile,
    keys: Vec<Keys>,
    /// Keys whose objects are part of the state.
    watched: Vec<String>,
    liveness_bound_ms: u64,
}

/// One process slot: the process running there now (after a restart, a new one with the same
/// node id and a new history label).
#[derive(Clone, Debug)]
struct Proc {
    label: String,
    /// Clock rate error, parts per million (the clock reads `(1 + ppm/10^6) ×` true time).
    ppm: i64,
    clock_offset_ns: u64,
    elector: Option<Elector>,
    /// Not running: crashed, or not started yet.
    crashed: bool,
    started: bool,
    restarts: u8,
    /// Stateless: instances started so far (their seeds).
    instances: u32,
    /// Local send time of the request this process awaits.
    waiting: Option<Instant>,
    /// Next wake, on the local clock.
    due: Instant,
    /// The last tick sent nothing at this true time: no wake again before time advances.
    idle_at_ms: Option<u64>,
    /// Paused until this true time, ms.
    paused_until_ms: Option<u64>,
    /// Shutting down: it resigned, and stops when this step ends.
    stopping: bool,
    /// The answer that came while it was paused, handled when it runs again.
    held_answer: Option<Outcome>,
}

/// A request on its way to the store. Its answer, if any, comes back within the step (as in
/// the simulator, answers are delayed by at most a few ms) or is lost; the request itself may
/// be held up to the simulator's late-apply bound past its timeout.
#[derive(Clone, Debug)]
struct Msg {
    node: usize,
    restarts: u8,
    /// Its sender still waits for the answer.
    current: bool,
    /// True time it was sent, ms.
    sent_ms: u64,
    /// Held in the network: it may reach the store in any later step up to the simulator's
    /// late-apply bound (a fault). Otherwise it reaches the store within its step.
    late: bool,
    request: Request,
}

impl Msg {
    fn order(&self) -> (usize, bool, u64, bool) {
        (self.node, !self.current, self.sent_ms, self.late)
    }
}

/// How long a paused process stands still: longer than a lease and its grace.
pub const PAUSE_MS: u64 = 1_200;

/// A state of the world.
#[derive(Clone)]
pub struct World {
    now_ms: u64,
    healed: bool,
    faults_left: u8,
    conflicts_left: u8,
    list_outage: bool,
    procs: Vec<Proc>,
    net: Vec<Msg>,
    store: MemStore,
    // What the invariants still need of the history:
    /// Per process label, the leadership window reaching furthest since its last follower
    /// answer (the span [`history::check`] would draw from it).
    open: BTreeMap<String, Observation>,
    /// Per process label, its last answer if that was a leader answer (what a release must
    /// not cut short).
    last_leader: BTreeMap<String, Observation>,
    /// The first leader answer of every term, as a point (who holds it, when it began).
    terms: BTreeMap<u64, Observation>,
    led_since_heal: bool,
    /// Processes elected after the heal, with the term.
    elected_after_heal: BTreeMap<String, u64>,
    /// Recent applied heartbeats (true ms) by node id, and each slot's last listing.
    heartbeats: BTreeMap<String, Vec<u64>>,
    listings: Vec<Vec<u64>>,
    /// Per slot, the true times (ms) of its requests that count towards the rate bound,
    /// within the last rate window (l). Not part of the fingerprint, like the history: a
    /// violation found through it is one of the path that first reached the state.
    sent_ms: Vec<Vec<u64>>,
    // Recorded only when a counterexample is replayed (not part of the state):
    pub history: Option<Vec<Observation>>,
    pub log: Option<Vec<String>>,
}

/// What can happen next. Requests in flight are named by their index in the (canonically
/// ordered) network, processes by their slot.
///
/// What a process does on its own happens at once, in slot order, when it is due: a tick
/// when its `poll_timeout` comes, a request's timeout when it fires, the handling of an
/// answer when it arrives (and the next request of the tick). These steps touch only the
/// process and commute with every other process's, so their order within an instant does
/// not matter; what does (which request the store applies first, in which step, which
/// answers are lost) is chosen by the actions below.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The store applies a request (stamped by a gateway `skew` × the gateway skew off the
    /// store's clock: -1, 0 or +1) and its sender, if it still waits, gets the answer.
    Apply(usize, i8),
    /// Fault: the store applies a request, and its answer is lost (the sender times out).
    ApplyLoseAnswer(usize),
    /// Fault: a request is lost before the store (the sender times out).
    Lose(usize),
    /// Fault: a request is held in the network, to reach the store in a later step (maybe
    /// after its sender timed out).
    Delay(usize),
    /// Fault (or, after the heal, normal behaviour): a lease write is answered 409 unapplied.
    Conflict(usize),
    /// Fault: the process dies (its last promise stands until it ends).
    Crash(usize),
    /// Fault: a process pauses for [`PAUSE_MS`], maybe while it waits for an answer.
    Pause(usize),
    /// Fault: an idle process shuts down cleanly (resigns; with a quorum, leaves).
    Resign(usize),
    /// A new process starts in a crashed one's slot, with the same node id.
    Restart(usize),
    /// A process starts for the first time (with `staggered` starts).
    Start(usize),
    /// Fault: an operator deletes the lease object.
    Delete,
    /// Fault: member listings fail (503) from now until the heal.
    ListOutage,
    /// True time advances by one step.
    Tick,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Apply(m, s) => write!(f, "apply {m} {s}"),
            Action::ApplyLoseAnswer(m) => write!(f, "apply-lose-answer {m}"),
            Action::Lose(m) => write!(f, "lose {m}"),
            Action::Delay(m) => write!(f, "delay {m}"),
            Action::Conflict(m) => write!(f, "conflict {m}"),
            Action::Crash(n) => write!(f, "crash {n}"),
            Action::Pause(n) => write!(f, "pause {n}"),
            Action::Resign(n) => write!(f, "resign {n}"),
            Action::Restart(n) => write!(f, "restart {n}"),
            Action::Start(n) => write!(f, "start {n}"),
            Action::Delete => f.write_str("delete"),
            Action::ListOutage => f.write_str("list-outage"),
            Action::Tick => f.write_str("tick"),
        }
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Action, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let n = |i: usize| -> Result<usize, String> {
            words
                .get(i)
                .and_then(|w| w.parse().ok())
                .ok_or_else(|| format!("`{s}`: a number expected"))
        };
        Ok(match words.first().copied() {
            Some("apply") => Action::Apply(
                n(1)?,
                words.get(2).and_then(|w| w.parse().ok()).unwrap_or(0),
            ),
            Some("apply-lose-answer") => Action::ApplyLoseAnswer(n(1)?),
            Some("lose") => Action::Lose(n(1)?),
            Some("delay") => Action::Delay(n(1)?),
            Some("conflict") => Action::Conflict(n(1)?),
            Some("crash") => Action::Crash(n(1)?),
            Some("pause") => Action::Pause(n(1)?),
            Some("resign") => Action::Resign(n(1)?),
            Some("restart") => Action::Restart(n(1)?),
            Some("start") => Action::Start(n(1)?),
            Some("delete") => Action::Delete,
            Some("list-outage") => Action::ListOutage,
            Some("tick") => Action::Tick,
            _ => return Err(format!("`{s}` is not an action")),
        })
    }
}

impl ElectionWorld {
    pub fn new(bounds: Bounds, mutation: Option<Mutation>) -> ElectionWorld {
        let n = bounds.nodes;
        let mut profile = Profile {
            seed: 0,
            mutation,
            nodes: n,
            stateless: vec![bounds.stateless; n],
            rates: vec![1.0; n],
            wall_offsets_ms: bounds.wall_offsets_ms.clone(),
            drop_request: 0.0,
            lose_answer: 0.0,
            max_delay_ms: 0,
            late_apply: 0.0,
            conflict: 0.0,
            server_error: 0.0,
            server_error_after_apply: 0.0,
            pauses: Vec::new(),
            crashes: Vec::new(),
            partitions: Vec::new(),
            foreign_at_ms: None,
            quorum: bounds.quorum,
            node_ids: (0..n).map(|i| format!("n{i}")).collect(),
            deletions: if bounds.deletions {
                vec![0]
            } else {
                Vec::new()
            },
            gateway_skew_ms: if bounds.gateway_skew {
                u64::from(sim::GATEWAY_SKEW_MS)
            } else {
                0
            },
            heartbeat_loss: 0.0,
            list_outages: Vec::new(),
            phantom_members: bounds.phantoms,
            etag_matching: if bounds.bare_etags_only {
                EtagMatching::BareOnly
            } else {
                EtagMatching::Both
            },
            bare_etags: vec![false; n],
            probing: vec![false; n],
            leases_ms: if bounds.leases_ms.is_empty() {
                vec![Profile::timings().lease.as_millis() as u64; n]
            } else {
                bounds.leases_ms.clone()
            },
            restart_leases_ms: if bounds.leases_ms.is_empty() {
                vec![Profile::timings().lease.as_millis() as u64; n]
            } else {
                bounds.leases_ms.clone()
            },
            clock_steps: Vec::new(),
            repeated_list_keys: false,
            delete_after_renewal: None,
            fast_heartbeat_gateway: 0.0,
            start_together: false,
            heal_ms: bounds.heal_ms,
            end_ms: bounds.horizon_ms,
        };
        profile.wall_offsets_ms.resize(n, 0);
        let keys: Vec<Keys> = (0..n)
            .map(|i| sim::sim_config(&profile, i).keys())
            .collect();
        let mut watched = vec![keys[0].lease.clone()];
        watched.extend(
            profile
                .node_ids
                .iter()
                .map(|id| format!("{}{id}", keys[0].members)),
        );
        let liveness_bound_ms = profile.liveness_bound_ms();
        ElectionWorld {
            bounds,
            mutation,
            profile,
            keys,
            watched,
            liveness_bound_ms,
        }
    }

    pub fn liveness_bound_ms(&self) -> u64 {
        self.liveness_bound_ms
    }

    /// Whether liveness is judged at all within the horizon.
    pub fn judges_liveness(&self) -> bool {
        self.bounds.liveness
            && self.bounds.horizon_ms > self.bounds.heal_ms + self.liveness_bound_ms
    }

    fn label(&self, node: usize, restarts: u8) -> String {
        let base = self.profile.label(node);
        if self.bounds.stateless {
            // Every instance of a stateless node is the same node to the checks (as in the
            // simulator): a restarted one resumes its node's term by design.
            return base;
        }
        match restarts {
            0 => base,
            // n0, then n0b, n0c, ...: each process is its own in the history.
            r => format!("{base}{}", (b'a' + r) as char),
        }
    }

    fn local(&self, w: &World, node: usize) -> Instant {
        let p = &w.procs[node];
        let ns = w.now_ms as i64 * (1_000_000 + p.ppm);
        Instant::from_nanos(p.clock_offset_ns + ns as u64)
    }

    fn fresh_elector(&self, w: &mut World, node: usize) -> Elector {
        let config = sim::sim_config(&self.profile, node);
        let p = &mut w.procs[node];
        p.instances += 1;
        let seed = 0x30DE_1000_0000_0000
            ^ ((node as u64) << 40)
            ^ (u64::from(p.restarts) << 32)
            ^ u64::from(p.instances);
        let now = self.local(w, node);
        let mut e = Elector::new(config, now, seed);
        e.set_mutation(self.mutation);
        e
    }

    fn set_wall_clock(&self, w: &mut World, node: usize) {
        let wall = (STORE_EPOCH_S * 1000 + w.now_ms) as i64 + self.profile.wall_offsets_ms[node];
        if let Some(e) = w.procs[node].elector.as_mut() {
            e.set_wall_clock(wall.max(0) as u64);
        }
    }

    fn boot(&self, w: &mut World, node: usize) {
        let e = (!self.bounds.stateless).then(|| self.fresh_elector(w, node));
        let due = self.local(w, node);
        let p = &mut w.procs[node];
        p.elector = e;
        p.crashed = false;
        p.started = true;
        p.stopping = false;
        p.held_answer = None;
        p.waiting = None;
        p.due = due;
        p.idle_at_ms = None;
        p.label = self.label(node, p.restarts);
    }

    fn log(&self, w: &mut World, line: impl FnOnce() -> String) {
        if let Some(log) = w.log.as_mut() {
            log.push(line());
        }
    }

    fn wake(&self, w: &mut World, node: usize) -> Option<SimViolation> {
        if self.bounds.stateless {
            let e = self.fresh_elector(w, node);
            w.procs[node].elector = Some(e);
        }
        self.set_wall_clock(w, node);
        let local = self.local(w, node);
        if let Some(e) = w.procs[node].elector.as_mut() {
            e.begin(CallKind::Tick, local);
        }
        self.continue_tick(w, node)
    }

    /// A clean shutdown, as the simulator's: a step that starts with `resign` (or `leave`,
    /// with a quorum); the caller stops acting as leader when it calls it, so that status is
    /// recorded at once. The process stops when the step ends.
    fn shut_down(&self, w: &mut World, node: usize) -> Option<SimViolation> {
        if self.bounds.stateless {
            let e = self.fresh_elector(w, node);
            w.procs[node].elector = Some(e);
        }
        w.procs[node].stopping = true;
        self.set_wall_clock(w, node);
        let local = self.local(w, node);
        let kind = if self.profile.quorum > 1 {
            CallKind::Leave
        } else {
            CallKind::Resign
        };
        if let Some(e) = w.procs[node].elector.as_mut() {
            e.begin(kind, local);
        }
        if let v @ Some(_) = self.record_status(w, node) {
            return v;
        }
        self.continue_tick(w, node)
    }

    /// Send the next request of this tick, or end the tick.
    fn continue_tick(&self, w: &mut World, node: usize) -> Option<SimViolation> {
        let local = self.local(w, node);
        let p = &mut w.procs[node];
        let e = p.elector.as_mut()?;
        if let Some(request) = e.poll_request(local) {
            p.waiting = Some(local);
            p.idle_at_ms = None;
            if counts_towards_rate(&request) {
                // (l) The request-rate bound, over the last window.
                let window_ms = (Profile::timings().retry_period * RATE_WINDOW_RETRY_PERIODS)
                    .as_millis() as u64;
                let sent = &mut w.sent_ms[node];
                sent.retain(|&t| t + window_ms > w.now_ms);
                sent.push(w.now_ms);
                let sent_us: Vec<u64> = sent.iter().map(|t| t * 1000).collect();
                let label = p.label.clone();
                if let v @ Some(_) =
                    sim::judge_request_rate(&label, &sent_us, Profile::timings().retry_period)
                {
                    return v;
                }
            }
            let p = &mut w.procs[node];
            let msg = Msg {
                node,
                restarts: p.restarts,
                current: true,
                sent_ms: w.now_ms,
                late: false,
                request,
            };
            if w.log.is_some() {
                let line = format!("{} sends {}", p.label, describe_request(&msg));
                self.log(w, || line);
            }
            w.net.push(msg);
            sort_net(&mut w.net);
            return None;
        }
        // The call is over: its caller sees the answer and calls again when it says.
        let reply = e.finish(local);
        let (sent, next) = match &reply {
            Ok(Reply::Status(status)) => (status.requests > 0, status.next_step_in),
            _ => (true, e.status(local).next_step_in),
        };
        let v = self.record(w, node, reply);
        let p = &mut w.procs[node];
        if p.stopping {
            // The shutdown's step is over: the process ends (its resignation's release, if
            // it could not be confirmed, is left as it is, like a crash).
            p.stopping = false;
            p.crashed = true;
            p.elector = None;
            return v;
        }
        if p.elector.is_some() {
            p.due = local + next;
        }
        if !sent {
            p.idle_at_ms = Some(w.now_ms);
        }
        if self.bounds.stateless {
            p.elector = None;
        }
        v
    }

    /// The process's status between calls (`status`), judged at once.
    fn record_status(&self, w: &mut World, node: usize) -> Option<SimViolation> {
        let local = self.local(w, node);
        let status = w.procs[node].elector.as_ref()?.status(local);
        self.record(w, node, Ok(Reply::Status(status)))
    }

    /// What a call returned (or a status), as its caller sees it, judged at once.
    fn record(
        &self,
        w: &mut World,
        node: usize,
        seen: Result<Reply, Error>,
    ) -> Option<SimViolation> {
        let now_ms = w.now_ms;
        let p = &w.procs[node];
        let ppm = p.ppm;
        let label = p.label.clone();
        let status = match &seen {
            Ok(Reply::Status(status)) => Ok(status),
            Ok(Reply::Leader(_)) => return None,
            Err(e) => Err(e),
        };
        // Validity in true time, rounded up: conservative.
        let valid_ms = match status {
            Ok(status) if status.role == Role::Leader => {
                let local_ns = status.valid_for.as_nanos();
                let true_ns = (local_ns * 1_000_000).div_ceil((1_000_000 + ppm) as u128);
                true_ns.div_ceil(1_000_000) as u64
            }
            _ => 0,
        };
        let o = sim::observation(status, label, now_ms, valid_ms);
        if let Some(h) = w.history.as_mut() {
            h.push(o.clone());
        }
        self.judge(w, o)
    }

    fn judge(&self, w: &mut World, o: Observation) -> Option<SimViolation> {
        let label = o.node.clone();
        // (f) A leader elected after the heal is never demoted.
        if w.healed {
            if let Some(&term) = w.elected_after_heal.get(&label) {
                if o.events.iter().any(|e| e.starts_with("demoted")) {
                    return Some(SimViolation::UnstableLeader {
                        at_ms: o.at_ms,
                        before: (label.clone(), term),
                        after: (label.clone(), o.term.unwrap_or(0)),
                    });
                }
            }
            if o.events.iter().any(|e| e.starts_with("elected")) {
                w.elected_after_heal
                    .insert(label.clone(), o.term.unwrap_or(0));
            }
        }
        // The summary keeps only what the checks read.
        let point = Observation {
            events: Vec::new(),
            error: None,
            last_error: None,
            leader: None,
            problems: Vec::new(),
            ..o
        };
        if !point.is_leader() {
            w.open.remove(&label);
            w.last_leader.remove(&label);
            return None;
        }
        if w.healed {
            w.led_since_heal = true;
        }
        w.last_leader.insert(label.clone(), point.clone());
        let reach = |o: &Observation| o.at_ms + o.valid_ms;
        if w.open.get(&label).is_none_or(|x| reach(x) <= reach(&point)) {
            w.open.insert(label.clone(), point.clone());
        }
        // (a), (b): the shared checker on every window still open, the start (as a point: who
        // began it, when) of the highest term and of this answer's term, and this answer.
        // Every earlier start was judged when it happened, so terms grew up to the highest;
        // older starts would add nothing but a false order: starts in one instant (a
        // resignation and the takeover it allows) tie, and ties are broken by node name.
        let mut compact: Vec<Observation> = w.open.values().cloned().collect();
        let own_term = point.term.and_then(|t| w.terms.get(&t));
        let highest = w.terms.values().next_back();
        compact.extend(own_term.into_iter().chain(highest).cloned());
        compact.push(point.clone());
        if let Err(v) = history::check(&compact) {
            return Some(SimViolation::History(v));
        }
        if let Some(term) = point.term {
            w.terms.entry(term).or_insert_with(|| Observation {
                valid_ms: 0,
                ..point.clone()
            });
        }
        // (g), (j): the shared quorum checker on this answer.
        if self.profile.quorum > 1 {
            let process = |l: &str| w.procs.iter().position(|p| p.label == l);
            if let Some(v) = sim::judge_quorum(
                &self.profile,
                std::slice::from_ref(&point),
                process,
                &w.heartbeats,
                &w.listings,
            ) {
                return Some(v);
            }
        }
        None
    }

    fn apply(&self, w: &mut World, m: usize, skew: i8, lose_answer: bool) -> Option<SimViolation> {
        let Msg {
            node,
            restarts,
            current,
            request,
            ..
        } = w.net.remove(m);
        let gateway = i64::from(skew) * self.profile.gateway_skew_ms as i64;
        let store_ms = ((STORE_EPOCH_S * 1000 + w.now_ms) as i64 + gateway) as u64;
        let label = self.label(node, restarts);
        let outcome = if matches!(request, Request::ListMembers { .. }) && w.list_outage {
            Outcome::Transient(sim::server_error())
        } else {
            let outcome = w.store.apply(&self.keys[node], &request, store_ms);
            match (&outcome, &request) {
                (Outcome::Written { .. }, Request::Put { mode, body }) => {
                    let last = w.last_leader.get(&label);
                    if let Some(v) =
                        sim::judge_lease_write(mode, body, false, w.now_ms, &label, last)
                    {
                        return Some(v);
                    }
                }
                (Outcome::Listed { .. }, Request::ListMembers { .. }) => {
                    w.listings[node] = vec![w.now_ms];
                }
                (Outcome::Written { .. }, Request::PutMember { .. }) => {
                    let id = self.profile.node_ids[node].clone();
                    w.heartbeats.entry(id).or_default().push(w.now_ms);
                }
                _ => {}
            }
            outcome
        };
        self.log(w, || {
            format!(
                "store applies {label}'s {} at {store_ms} ms: {}{}",
                request_kind(&request),
                outcome_text(&outcome),
                if !current {
                    " (nobody waits)"
                } else if lose_answer {
                    " (the answer is lost)"
                } else {
                    ""
                }
            )
        });
        if current && !lose_answer {
            return self.answer(w, node, outcome);
        }
        None
    }

    fn answer(&self, w: &mut World, node: usize, outcome: Outcome) -> Option<SimViolation> {
        if w.procs[node].paused_until_ms.is_some_and(|t| w.now_ms < t) {
            // It sits in the process's socket until the process runs again.
            w.procs[node].held_answer = Some(outcome);
            return None;
        }
        w.procs[node].waiting = None;
        for m in w.net.iter_mut().filter(|m| m.node == node) {
            m.current = false;
        }
        sort_net(&mut w.net);
        self.set_wall_clock(w, node);
        let local = self.local(w, node);
        if let Some(e) = w.procs[node].elector.as_mut() {
            e.handle_response(local, outcome);
        }
        if !self.bounds.stateless {
            if let Some(v) = self.record_status(w, node) {
                return Some(v);
            }
        }
        if let v @ Some(_) = self.continue_tick(w, node) {
            return v;
        }
        self.settle(w, node)
    }

    /// What the process does on its own now: its request's timeout fires, or its next tick
    /// starts, until it waits for an answer or for a later time.
    fn settle(&self, w: &mut World, node: usize) -> Option<SimViolation> {
        let timeout = Profile::timings().request_timeout;
        loop {
            let local = self.local(w, node);
            let p = &w.procs[node];
            if p.crashed || p.paused_until_ms.is_some_and(|t| w.now_ms < t) {
                return None;
            }
            // Back from a pause: the answer that came meanwhile is read first (its timeout
            // firing first instead is a pause plus a lost answer: explored where the world
            // allows two faults).
            if p.held_answer.is_some() {
                if w.log.is_some() {
                    let line = format!("{} runs again and reads the answer", p.label);
                    self.log(w, || line);
                }
                let outcome = w.procs[node].held_answer.take()?;
                return self.answer(w, node, outcome);
            }
            match p.waiting {
                Some(sent) if local >= sent + timeout => {
                    // Its request may still reach the store; an answer would be dropped.
                    if w.log.is_some() {
                        let line = format!("{}'s request times out", p.label);
                        self.log(w, || line);
                    }
                    let timeout = Outcome::Transient(Error::Transport("timeout".into()));
                    w.procs[node].waiting = None;
                    for m in w.net.iter_mut().filter(|m| m.node == node) {
                        m.current = false;
                    }
                    sort_net(&mut w.net);
                    self.set_wall_clock(w, node);
                    if let Some(e) = w.procs[node].elector.as_mut() {
                        e.handle_response(local, timeout);
                    }
                    if !self.bounds.stateless {
                        if let Some(v) = self.record_status(w, node) {
                            return Some(v);
                        }
                    }
                    if let v @ Some(_) = self.continue_tick(w, node) {
                        return v;
                    }
                }
                None if local >= p.due && p.idle_at_ms != Some(w.now_ms) => {
                    if w.log.is_some() {
                        let line = format!("{} ticks", p.label);
                        self.log(w, || line);
                    }
                    if let v @ Some(_) = self.wake(w, node) {
                        return v;
                    }
                }
                _ => return None,
            }
        }
    }

    fn settle_all(&self, w: &mut World) -> Option<SimViolation> {
        for node in 0..w.procs.len() {
            if let v @ Some(_) = self.settle(w, node) {
                return v;
            }
        }
        None
    }

    fn advance(&self, w: &mut World) -> Option<SimViolation> {
        w.now_ms += if w.healed {
            self.bounds.heal_step_ms
        } else {
            self.bounds.step_ms
        };
        let now = w.now_ms;
        self.log(w, || format!("[{now:>5} ms] tick: true time advances"));
        let start_by = match self.bounds.start_within_ms {
            0 => self.bounds.heal_ms,
            t => t.min(self.bounds.heal_ms),
        };
        if w.now_ms >= start_by {
            for node in 0..w.procs.len() {
                if !w.procs[node].started {
                    self.boot(w, node);
                }
            }
        }
        if !w.healed && w.now_ms >= self.bounds.heal_ms {
            w.healed = true;
            w.list_outage = false;
            for p in w.procs.iter_mut() {
                p.paused_until_ms = None;
            }
            for node in 0..w.procs.len() {
                if w.procs[node].crashed {
                    if w.procs[node].started {
                        w.procs[node].restarts += 1;
                    }
                    self.boot(w, node);
                }
            }
        }
        self.plant_phantoms(w);
        if let Some(v) = self.settle_all(w) {
            return Some(v);
        }
        // Heartbeats older than any future quorum check looks back to are forgotten.
        let keep = self.profile.quorum_allowance_ms()
            + self.profile.quorum_config().member_ttl.as_millis() as u64;
        for beats in w.heartbeats.values_mut() {
            beats.retain(|&h| h + keep > w.now_ms);
        }
        // (c) Liveness: a leader within the bound once faults stopped.
        if self.judges_liveness()
            && w.healed
            && !w.led_since_heal
            && w.now_ms > self.bounds.heal_ms + self.liveness_bound_ms
        {
            return Some(SimViolation::NoLeaderAfterHeal {
                heal_ms: self.bounds.heal_ms,
                bound_ms: self.liveness_bound_ms,
            });
        }
        None
    }

    fn plant_phantoms(&self, w: &mut World) {
        if self.bounds.phantoms == 0 {
            return;
        }
        let metadata = "m".repeat(4096);
        for i in 0..self.bounds.phantoms {
            let node = format!("phantom{i:03}");
            let body = s3_election::members::MemberRecord {
                format: s3_election::members::MEMBER_FORMAT.into(),
                node: node.clone(),
                metadata: metadata.clone(),
            }
            .encode();
            w.store.put_raw(
                &format!("{NAME}/members/{node}"),
                body,
                STORE_EPOCH_S * 1000 + w.now_ms,
            );
        }
    }

    /// Requests that must reach the store (or be lost) before true time advances: those not
    /// held, those held to the late-apply bound, and after the heal all of them.
    fn urgent(&self, w: &World) -> bool {
        let late = Profile::timings().request_timeout.as_millis() as u64
            + self.profile.late_delay_max_ms();
        w.net
            .iter()
            .any(|m| w.healed || !m.late || w.now_ms + self.bounds.step_ms > m.sent_ms + late)
    }
}

fn sort_net(net: &mut [Msg]) {
    net.sort_by_key(|m| m.order());
}

fn request_kind(r: &Request) -> String {
    match r {
        Request::Get { if_none_match } => format!(
            "GET lease{}",
            if if_none_match.is_some() {
                " (if-none-match)"
            } else {
                ""
            }
        ),
        Request::Put { mode, .. } => match mode {
            PutMode::Create => "PUT lease (if-none-match *)".into(),
            PutMode::Update(e) => format!("PUT lease (if-match {})", e.0),
            #[allow(unreachable_patterns)]
            _ => "PUT lease (UNCONDITIONAL)".into(),
        },
        Request::PutMember { .. } => "PUT member".into(),
        Request::GetMember { node } => format!("GET member {node}"),
        Request::ListMembers { .. } => "LIST members".into(),
        Request::DeleteMember => "DELETE member".into(),
        other => format!("{other:?}"),
    }
}

fn describe_request(m: &Msg) -> String {
    match m {
        Msg {
            request: Request::Put { mode, body },
            ..
        } => {
            let record = LeaseRecord::decode(body)
                .map(|r| {
                    format!(
                        "holder={} term={} released={} vacant={}",
                        r.holder, r.term, r.released, r.vacant
                    )
                })
                .unwrap_or_else(|e| format!("unreadable record: {}", e.0));
            format!(
                "{} [{record}]",
                request_kind(&Request::Put {
                    mode: mode.clone(),
                    body: Vec::new()
                })
            )
        }
        Msg { request, .. } => request_kind(request),
    }
}

fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Found { etag, .. } => format!("200 {}", etag.0),
        Outcome::Written { etag } => format!("written {}", etag.0),
        Outcome::Transient(e) => format!("transient: {e}"),
        other => other.kind().to_string(),
    }
}

impl Model for ElectionWorld {
    type State = World;
    type Action = Action;

    fn init(&self) -> Vec<World> {
        let n = self.bounds.nodes;
        let half = i64::from(Profile::timings().max_drift_ppm) / 2;
        let choices: Vec<i64> = if self.bounds.drift {
            vec![-half, half]
        } else {
            vec![0]
        };
        let mut rates: Vec<Vec<i64>> = vec![Vec::new()];
        for _ in 0..n {
            rates = rates
                .into_iter()
                .flat_map(|r| {
                    choices.iter().map(move |c| {
                        let mut r = r.clone();
                        r.push(*c);
                        r
                    })
                })
                .collect();
        }
        rates
            .into_iter()
            .map(|ppms| {
                let mut w = World {
                    now_ms: 0,
                    healed: false,
                    faults_left: self.bounds.faults,
                    conflicts_left: self.bounds.conflicts_after_heal,
                    list_outage: false,
                    procs: ppms
                        .iter()
                        .enumerate()
                        .map(|(i, &ppm)| Proc {
                            label: String::new(),
                            ppm,
                            clock_offset_ns: (i as u64 + 1) * 7_000_000_000,
                            elector: None,
                            crashed: false,
                            started: false,
                            restarts: 0,
                            instances: 0,
                            waiting: None,
                            due: Instant::default(),
                            idle_at_ms: None,
                            paused_until_ms: None,
                            stopping: false,
                            held_answer: None,
                        })
                        .collect(),
                    net: Vec::new(),
                    store: MemStore::with_page_size(2).matching(self.profile.etag_matching),
                    open: BTreeMap::new(),
                    last_leader: BTreeMap::new(),
                    terms: BTreeMap::new(),
                    led_since_heal: false,
                    elected_after_heal: BTreeMap::new(),
                    heartbeats: BTreeMap::new(),
                    listings: vec![Vec::new(); n],
                    sent_ms: vec![Vec::new(); n],
                    history: None,
                    log: None,
                };
                // A released lease from an earlier deployment, ten seconds old: the election
                // starts the way it does after a clean shutdown.
                let old = LeaseRecord {
                    format: FORMAT.into(),
                    holder: "n9".into(),
                    term: (STORE_EPOCH_S - 10) * TERMS_PER_SECOND,
                    lease_ms: Profile::timings().lease.as_millis() as u64,
                    renewals: 3,
                    nonce: "0123456789abcdef0123456789abcdef".into(),
                    released: true,
                    vacant: false,
                    instance: Some("i-earlier".into()),
                    metadata: String::new(),
                    members: Vec::new(),
                    members_omitted: 0,
                };
                w.store
                    .put_raw(KEY, old.encode(), (STORE_EPOCH_S - 10) * 1000);
                self.plant_phantoms(&mut w);
                for i in 0..n {
                    if i == 0 || !self.bounds.staggered {
                        self.boot(&mut w, i);
                    } else {
                        w.procs[i].crashed = true;
                        w.procs[i].label = self.label(i, 0);
                    }
                }
                // (Nothing can be violated before anyone wrote.)
                let _ = self.settle_all(&mut w);
                w
            })
            .collect()
    }

    fn actions(&self, w: &World, out: &mut Vec<Action>) {
        for (m, msg) in w.net.iter().enumerate() {
            if self.bounds.gateway_skew {
                out.push(Action::Apply(m, -1));
                out.push(Action::Apply(m, 1));
            } else {
                out.push(Action::Apply(m, 0));
            }
            let conflict = is_current_lease_write(msg)
                && if w.healed {
                    w.conflicts_left > 0
                } else {
                    self.bounds.conflicts && w.faults_left > 0
                };
            if conflict {
                out.push(Action::Conflict(m));
            }
            if !w.healed && w.faults_left > 0 {
                out.push(Action::Lose(m));
                if !msg.late {
                    out.push(Action::Delay(m));
                }
                if msg.current {
                    out.push(Action::ApplyLoseAnswer(m));
                }
            }
        }
        if !w.healed {
            if w.faults_left > 0 {
                for (i, p) in w.procs.iter().enumerate() {
                    if self.bounds.crashes && p.started && !p.crashed {
                        out.push(Action::Crash(i));
                    }
                    let running = p.started && !p.crashed && p.waiting.is_none();
                    let alive = p.started && !p.crashed;
                    if self.bounds.pauses && alive && p.paused_until_ms.is_none() {
                        out.push(Action::Pause(i));
                    }
                    let awake = p.paused_until_ms.is_none_or(|t| w.now_ms >= t);
                    if self.bounds.resignations && running && awake {
                        out.push(Action::Resign(i));
                    }
                }
                if self.bounds.deletions && w.store.get_object(KEY).is_some() {
                    out.push(Action::Delete);
                }
                if self.bounds.list_outage && !w.list_outage {
                    out.push(Action::ListOutage);
                }
            }
            for (i, p) in w.procs.iter().enumerate() {
                if !p.started {
                    out.push(Action::Start(i));
                } else if p.crashed && self.bounds.restarts {
                    out.push(Action::Restart(i));
                }
            }
        }
        let step = if w.healed {
            self.bounds.heal_step_ms
        } else {
            self.bounds.step_ms
        };
        if !self.urgent(w) && w.now_ms + step <= self.bounds.horizon_ms {
            out.push(Action::Tick);
        }
    }

    fn step(&self, w: &mut World, a: &Action) -> Option<SimViolation> {
        if w.log.is_some() && *a != Action::Tick {
            let now = w.now_ms;
            self.log(w, || format!("[{now:>5} ms] {a}"));
        }
        match *a {
            Action::Apply(m, skew) => self.apply(w, m, skew, false),
            Action::ApplyLoseAnswer(m) => {
                w.faults_left -= 1;
                self.apply(w, m, 0, true)
            }
            Action::Lose(m) => {
                w.net.remove(m);
                w.faults_left -= 1;
                None
            }
            Action::Delay(m) => {
                w.net[m].late = true;
                sort_net(&mut w.net);
                w.faults_left -= 1;
                None
            }
            Action::Conflict(m) => {
                let node = w.net.remove(m).node;
                if w.healed {
                    w.conflicts_left -= 1;
                } else {
                    w.faults_left -= 1;
                }
                self.log(w, || "the store answers 409 Conflict".into());
                self.answer(w, node, Outcome::Conflict)
            }
            Action::Crash(n) => {
                let p = &mut w.procs[n];
                p.crashed = true;
                p.elector = None;
                p.waiting = None;
                p.held_answer = None;
                for m in w.net.iter_mut().filter(|m| m.node == n) {
                    m.current = false;
                }
                sort_net(&mut w.net);
                w.faults_left -= 1;
                None
            }
            Action::Pause(n) => {
                w.procs[n].paused_until_ms = Some(w.now_ms + PAUSE_MS);
                w.faults_left -= 1;
                None
            }
            Action::Resign(n) => {
                w.faults_left -= 1;
                self.shut_down(w, n)
            }
            Action::Restart(n) => {
                w.procs[n].restarts += 1;
                self.boot(w, n);
                self.settle(w, n)
            }
            Action::Start(n) => {
                self.boot(w, n);
                self.settle(w, n)
            }
            Action::Delete => {
                w.store.delete(KEY);
                w.faults_left -= 1;
                None
            }
            Action::ListOutage => {
                w.list_outage = true;
                w.faults_left -= 1;
                None
            }
            Action::Tick => self.advance(w),
        }
    }

    fn fingerprint(&self, w: &World) -> u128 {
        let mut f = Fingerprint::default();
        f.u64(w.now_ms);
        f.bytes(&[
            w.healed as u8,
            w.faults_left,
            w.conflicts_left,
            w.list_outage as u8,
            w.led_since_heal as u8,
        ]);
        for p in &w.procs {
            f.debug(p);
        }

        f.debug(&w.net);
        for key in &self.watched {
            match w.store.get_object(key) {
                Some(o) => {
                    f.bytes(o.etag.0.as_bytes());
                    f.u64(o.last_modified_ms);
                }
                None => f.bytes(b"-"),
            }
        }
        for o in w.open.values().chain(w.last_leader.values()) {
            f.debug(&(&o.node, o.at_ms, o.term, o.valid_ms));
        }
        for (term, o) in &w.terms {
            f.debug(&(term, &o.node, o.at_ms));
        }
        f.debug(&w.elected_after_heal);
        f.debug(&w.heartbeats);
        f.debug(&w.listings);
        f.finish()
    }
}

fn is_current_lease_write(m: &Msg) -> bool {
    m.current && matches!(m.request, Request::Put { .. })
}

impl World {
    /// True time, ms.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::model::explore;

    fn small() -> Bounds {
        Bounds {
            nodes: 2,
            quorum: 1,
            stateless: false,
            step_ms: 100,
            heal_step_ms: 250,
            heal_ms: 600,
            horizon_ms: 600,
            faults: 1,
            crashes: true,
            restarts: false,
            staggered: false,
            start_within_ms: 0,
            pauses: false,
            resignations: false,
            deletions: false,
            conflicts: false,
            list_outage: false,
            gateway_skew: false,
            phantoms: 0,
            conflicts_after_heal: 0,
            liveness: true,
            drift: false,
            wall_offsets_ms: vec![0, 0],
            bare_etags_only: false,
            leases_ms: Vec::new(),
        }
    }

    /// The liveness check can fail: with a bound shorter than a takeover (a process that
    /// crashed before the heal restarts with a new instance, which waits a lease and grace),
    /// some schedule has no leader in time.
    #[test]
    fn liveness_is_judged() {
        let mut world = ElectionWorld::new(small(), None);
        world.liveness_bound_ms = 300;
        world.bounds.horizon_ms = 600 + 300 + 250;
        let e = explore(&world, 1_000_000);
        let v = e.violation.expect("a schedule without a leader in time");
        assert!(
            matches!(v.violation, SimViolation::NoLeaderAfterHeal { .. }),
            "{}",
            v.violation
        );
    }

    /// Takes the schedule without faults (the first store application, else a time step)
    /// until `done` holds of the history.
    fn run_until(world: &ElectionWorld, w: &mut World, done: impl Fn(&[Observation]) -> bool) {
        let mut actions = Vec::new();
        while !done(w.history.as_deref().unwrap_or_default()) {
            actions.clear();
            world.actions(w, &mut actions);
            let next = actions
                .iter()
                .find(|a| matches!(a, Action::Apply(..) | Action::Tick))
                .expect("time has not reached the horizon")
                .clone();
            assert!(world.step(w, &next).is_none(), "{next}");
        }
    }

    /// A resignation is explored as a clean shutdown: the leader's status turns at once, the
    /// process stops, and the other node takes over inside the lease the leader held (it
    /// needs no expiry).
    #[test]
    fn a_resignation_hands_over_without_waiting_for_the_lease() {
        let mut bounds = small();
        bounds.resignations = true;
        bounds.crashes = false;
        bounds.drift = false;
        bounds.heal_ms = 5_000;
        bounds.horizon_ms = 5_000;
        let world = ElectionWorld::new(bounds, None);
        let mut w = world.init().remove(0);
        w.history = Some(Vec::new());
        let leads =
            |h: &[Observation], node: &str| h.iter().any(|o| o.node == node && o.is_leader());
        run_until(&world, &mut w, |h| leads(h, "n0") || leads(h, "n1"));
        let (leader, other) = if leads(w.history.as_deref().unwrap_or_default(), "n0") {
            (0, "n1")
        } else {
            (1, "n0")
        };
        // A release is trusted at once only by a node that saw the holder's record it
        // replaces (otherwise it could be an old released record restored): the other node
        // first sees the leader.
        let leader_id = format!("n{leader}");
        let follows = |h: &[Observation]| {
            h.iter()
                .any(|o| o.node == other && o.leader.as_deref() == Some(leader_id.as_str()))
        };
        run_until(&world, &mut w, follows);
        let mut actions = Vec::new();
        world.actions(&w, &mut actions);
        assert!(actions.contains(&Action::Resign(leader)), "{actions:?}");
        let resigned_at = w.now_ms;
        assert!(world.step(&mut w, &Action::Resign(leader)).is_none());
        let after = w.history.as_ref().map_or(0, Vec::len);
        let last = w.history.as_ref().and_then(|h| h.last()).cloned();
        assert!(
            last.is_some_and(|o| !o.is_leader()),
            "no follower status at the resignation"
        );
        run_until(&world, &mut w, |h| {
            h.get(after..).is_some_and(|h| leads(h, other))
        });
        let took_over = w.now_ms - resigned_at;
        let lease_ms = Profile::timings().lease.as_millis() as u64;
        assert!(
            took_over < lease_ms,
            "the takeover took {took_over} ms after the resignation"
        );
        assert!(w.procs[leader].crashed, "the resigned process has stopped");
        let record = LeaseRecord::decode(&w.store.get_object(KEY).expect("a lease").body);
        assert!(record.is_ok_and(|r| r.holder == other && !r.released));
    }

    /// Actions print and parse back (a schedule file is their text).
    #[test]
    fn actions_round_trip_through_text() {
        for a in [
            Action::Apply(2, -1),
            Action::ApplyLoseAnswer(0),
            Action::Lose(1),
            Action::Delay(3),
            Action::Conflict(0),
            Action::Crash(1),
            Action::Pause(0),
            Action::Resign(1),
            Action::Restart(1),
            Action::Start(2),
            Action::Delete,
            Action::ListOutage,
            Action::Tick,
        ] {
            assert_eq!(a.to_string().parse::<Action>(), Ok(a.clone()), "{a}");
        }
        assert!("fly 3".parse::<Action>().is_err());
    }

    /// The same state reached by two orders of independent steps is explored once: the
    /// fingerprint ignores the order messages were sent in and the store's write counter.
    #[test]
    fn fingerprints_are_stable() {
        let world = ElectionWorld::new(small(), None);
        let a = world.init().remove(0);
        let b = a.clone();
        assert_eq!(world.fingerprint(&a), world.fingerprint(&b));
        let mut c = a.clone();
        assert!(world.step(&mut c, &Action::Apply(0, 0)).is_none());
        assert_ne!(world.fingerprint(&a), world.fingerprint(&c));
    }
}
