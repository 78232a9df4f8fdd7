//! Exhaustive model checking of the REAL election core (`s3_election::core::Elector`) and of
//! singleton-job claims (`s3_election::slot::SlotClaim`), in small worlds: every interleaving
//! of sends, store applications and answers, lost requests and answers, timeouts with the
//! write applied or not, crashes and restarts with the same node id, the lease deleted by an
//! operator, and true time advancing in discrete steps while each node's clock runs at its
//! own rate within the configured drift bound. Where the random simulator ([`super::sim`])
//! samples schedules by seed, this enumerates all of them up to a bound.
//!
//! # Design: an explorer of our own, not `stateright`
//! `stateright` 0.31 is reachable through cargo and its `Model` trait (init states, actions,
//! next state, properties) fits the shape of the problem. It was not used because:
//! - its checker needs `State: Hash`; the elector holds a `HashMap` (the quorum's verified
//!   member bodies), so it cannot derive `Hash`, and we would wrap it in a Debug fingerprint
//!   anyway (below);
//! - its `eventually` properties are judged on terminal states and acyclic paths only; our
//!   liveness property is a *bounded* eventually ("a leader within lease + grace + retries
//!   of true time once faults stop"), which is a safety property of the time-stamped state,
//!   checked on every transition here;
//! - a counterexample must be a schedule the simulator's history format prints and
//!   `host-test sim --replay` re-executes: our own action vocabulary ([`world::Action`],
//!   [`slots::Action`]) is that schedule;
//! - it would add a dozen crates (tiny_http, dashmap, rand 0.9, ...) to host-test for a BFS
//!   of about a hundred lines (below), on a two-core machine where its parallel checker
//!   buys little.
//!
//! The explorer is a breadth-first search with state hashing: the first violation found is
//! one of the shortest (its depth is the number of actions), and the path back to the initial
//! state is kept as (parent, action) per state, so a counterexample is re-executed from the
//! start with the full history recorded ([`replay`]).
//!
//! # State hashing
//! A state's fingerprint is a 128-bit hash of what its future depends on: each elector's
//! whole state (through its `Debug` output, streamed into the hasher without allocating:
//! the elector holds a `HashMap` and so cannot derive `Hash`), the store's objects (ETag and
//! `Last-Modified` per key, not its write counter), the messages in flight (kept in a
//! canonical order), true time, the faults left, and the summary of the history the
//! invariants still need (each process's last answer and its open leadership window, the
//! first holder of each term, recent heartbeats and listings). The full history is not
//! hashed: it is only recorded when a counterexample is replayed. Two paths that reach the
//! same fingerprint are explored once. The `Debug` of a `HashMap` iterates in an order that
//! depends on its hasher's random keys, so in the quorum world two equal states may print
//! differently: they are then explored twice (never merged wrongly), and state counts of
//! that world vary slightly from run to run.
//!
//! # What "exhaustive" means here
//! All schedules within a world's bounds (true-time horizon, time step, fault budget) are
//! explored, with two rules that keep the state space finite and small: a node wakes when
//! its `poll_timeout` is due and a request times out when its timeout is due, before true
//! time advances (hosts call `tick` on time; a pause is the same as a slower step), and once
//! faults stop (the heal time) the store answers within the time step. Time is discrete, so
//! a schedule here is also a schedule of the continuous world: nothing reported is spurious.
//! Clock rates are fixed per node at the drift bound's extremes (every combination is an
//! initial state): a clock that changed rate mid-run would be no worse than one that is
//! slow (or fast) throughout.

//! # Worlds ([`replay::configs`]; `--ci` shortens horizons and budgets)
//! | world | what it holds | the mutation it shows |
//! |---|---|---|
//! | `two` | 2 stateful nodes, clocks at either end of the drift bound, the second starting at any step, 50 ms steps; one fault: a lost request or answer, a late apply, a crash (then a restart with the same node id), a deletion (full bounds: also a 409) | unconditional-renewal, no-drift-margin, record-timestamp, trust-node-id, create-lease-on-missing |
//! | `pairs` (full bounds) | 2 nodes, 100 ms steps, any two faults, a pause longer than a lease or a clean shutdown (resign, then stop) among them | |
//! | `three` | 3 nodes, one fault (a pause or a clean shutdown among them) | |
//! | `pause` | 2 nodes to 2.5 s (full: 3 s, two faults): one fault, a pause past the lease among them, also while a write is in flight (its answer is read when the process runs again) | time-from-answer |
//! | `liveness` | 2 nodes, one fault before the heal; after it the store answers within the step and one 409 (normal behaviour) may come: liveness (c) and stability (f) are judged | conflict-as-lost |
//! | `quorum` | 2 nodes with a quorum of 2, 250 ms steps to 5.5 s (full: 8 s); one fault: a crash, a clean shutdown that leaves (resign and delete the member object), a lost request or answer, or member listings failing until the heal | ignore-quorum, release-at-quorum-loss, ignore-failed-quorum-checks |
//! | `stateless` | 2 stateless nodes, every answer stamped by one of two gateways the store clock skew apart; a clean shutdown (a fresh instance's resign) among the faults | no-store-clock-skew-margin |
//! | `members` | quorum 2 and 20 members with 4 KiB of metadata each | unbounded-members |
//! | `ceph` | 2 nodes configured with quoted ETags on a store that matches only bare ones (Ceph RGW without the probe); one fault; liveness (c) and the request rate (l) are judged | busy-retry |
//! | `slots` | 3 workers (2 sharing a node id) claim 2 slots; lost requests or answers, timeouts with the write still on its way, 409s | slot-won-by-node-id |
//!
//! Not explored (the random simulator covers them): foreign objects at the lease key, two
//! processes sharing an id at the same time (only a restart with the same id), gateway skew
//! with stateful nodes, symmetry reduction between nodes.

pub mod replay;
pub mod slots;
pub mod world;

use crate::check::sim::SimViolation;
use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

/// A world to explore: initial states, the actions enabled in a state, and what an action
/// does (returning the violation it caused, if any).
pub trait Model {
    type State: Clone;
    type Action: Clone + fmt::Display;
    fn init(&self) -> Vec<Self::State>;
    fn actions(&self, state: &Self::State, out: &mut Vec<Self::Action>);
    fn step(&self, state: &mut Self::State, action: &Self::Action) -> Option<SimViolation>;
    fn fingerprint(&self, state: &Self::State) -> u128;
}

/// What an exploration found.
pub struct Exploration<A> {
    /// Distinct states reached (fingerprints).
    pub states: u64,
    /// Transitions taken (including those into already seen states).
    pub transitions: u64,
    /// Deepest state (actions from an initial state).
    pub max_depth: u32,
    pub elapsed: Duration,
    /// False when the state limit stopped the search early.
    pub complete: bool,
    pub violation: Option<Counterexample<A>>,
}

/// A violation and the shortest schedule found that reaches it.
#[derive(Clone, Debug)]
pub struct Counterexample<A> {
    pub violation: SimViolation,
    /// Which initial state.
    pub init: usize,
    pub actions: Vec<A>,
}

/// Breadth-first search over all states reachable within the model's bounds. Stops at the
/// first violation, or after `max_states` distinct states (then `complete` is false).
pub fn explore<M: Model>(model: &M, max_states: u64) -> Exploration<M::Action> {
    let started = Instant::now();
    let mut seen: HashSet<u128, BuildHasherDefault<Prehashed>> = HashSet::default();
    // Per discovered state: its parent's index and the action from it (initial states: none).
    let mut trace: Vec<(u32, Option<M::Action>, u32)> = Vec::new();
    let mut queue: VecDeque<(M::State, u32, u32)> = VecDeque::new();
    for (i, s) in model.init().into_iter().enumerate() {
        if seen.insert(model.fingerprint(&s)) {
            trace.push((u32::MAX, None, i as u32));
            queue.push_back((s, trace.len() as u32 - 1, 0));
        }
    }
    let mut transitions = 0;
    let mut max_depth = 0;
    let mut actions = Vec::new();
    let mut complete = true;
    while let Some((state, index, depth)) = queue.pop_front() {
        max_depth = max_depth.max(depth);
        actions.clear();
        model.actions(&state, &mut actions);
        for a in actions.drain(..) {
            let mut next = state.clone();
            transitions += 1;
            if let Some(violation) = model.step(&mut next, &a) {
                let (init, mut path) = path_to(&trace, index);
                path.push(a);
                return Exploration {
                    states: seen.len() as u64,
                    transitions,
                    max_depth: max_depth.max(depth + 1),
                    elapsed: started.elapsed(),
                    complete: true,
                    violation: Some(Counterexample {
                        violation,
                        init,
                        actions: path,
                    }),
                };
            }
            if seen.insert(model.fingerprint(&next)) {
                trace.push((index, Some(a), 0));
                queue.push_back((next, trace.len() as u32 - 1, depth + 1));
            }
        }
        if seen.len() as u64 >= max_states {
            complete = false;
            break;
        }
    }
    Exploration {
        states: seen.len() as u64,
        transitions,
        max_depth,
        elapsed: started.elapsed(),
        complete,
        violation: None,
    }
}

/// The initial state's index and the actions from it to state `index`.
fn path_to<A: Clone>(trace: &[(u32, Option<A>, u32)], mut index: u32) -> (usize, Vec<A>) {
    let mut path = Vec::new();
    loop {
        let (parent, action, init) = &trace[index as usize];
        match action {
            Some(a) => path.push(a.clone()),
            None => {
                path.reverse();
                return (*init as usize, path);
            }
        }
        index = *parent;
    }
}

/// The fingerprints are hashes already: the set uses their low bits as they are.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = (v as u64) ^ ((v >> 64) as u64);
    }
}

/// A 128-bit fingerprint built from `Debug` output and raw values: two multiply-rotate
/// lanes (FxHash's step, eight bytes at a time, with different constants). `Debug` output
/// arrives in many small pieces, so it is gathered in a buffer first.
pub struct Fingerprint {
    lanes: (u64, u64),
    buf: Vec<u8>,
}

impl Default for Fingerprint {
    fn default() -> Self {
        Fingerprint {
            lanes: (0xcbf2_9ce4_8422_2325, 0x6c62_272e_07bb_0142),
            buf: Vec::with_capacity(8192),
        }
    }
}

impl Fingerprint {
    fn flush(&mut self) {
        let (mut a, mut b) = self.lanes;
        let mut chunks = self.buf.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            let w = u64::from_le_bytes(w);
            a = (a.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
            b = (b.rotate_left(23) ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        let w = u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59);
        a = (a.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
        b = (b.rotate_left(23) ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.lanes = (a, b);
        self.buf.clear();
    }
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= 4096 {
            self.flush();
        }
    }
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    /// Any value by its `Debug` output.
    pub fn debug(&mut self, v: &impl fmt::Debug) {
        use std::fmt::Write;
        let _ = write!(self, "{v:?}");
        self.bytes(&[0xff]);
    }
    pub fn finish(mut self) -> u128 {
        self.flush();
        (u128::from(self.lanes.0) << 64) | u128::from(self.lanes.1)
    }
}

impl fmt::Write for Fingerprint {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

/// One configuration's result, as `host-test model-check` prints it.
pub struct Summary {
    pub config: String,
    pub mutation: Option<s3_election::mutation::Mutation>,
    pub states: u64,
    pub transitions: u64,
    pub max_depth: u32,
    pub elapsed: Duration,
    pub complete: bool,
    /// The violation and the length of its schedule.
    pub violation: Option<(SimViolation, usize)>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mutation = self
            .mutation
            .map(|m| format!(" [{}]", m.name()))
            .unwrap_or_default();
        let result = match &self.violation {
            Some((v, depth)) => format!("VIOLATION at depth {depth}: {v}"),
            None if self.complete => "all invariants hold".into(),
            None => "state limit reached: all invariants hold so far (incomplete)".into(),
        };
        write!(
            f,
            "{:<10}{mutation} {:>9} states {:>10} transitions  max depth {:>3}  {:>7.1} s  {result}",
            self.config,
            self.states,
            self.transitions,
            self.max_depth,
            self.elapsed.as_secs_f64()
        )
    }
}

impl<A> Exploration<A> {
    pub fn summary(
        &self,
        config: &str,
        mutation: Option<s3_election::mutation::Mutation>,
    ) -> Summary {
        Summary {
            config: config.to_string(),
            mutation,
            states: self.states,
            transitions: self.transitions,
            max_depth: self.max_depth,
            elapsed: self.elapsed,
            complete: self.complete,
            violation: self
                .violation
                .as_ref()
                .map(|c| (c.violation.clone(), c.actions.len())),
        }
    }
}
