//! Deterministic simulation of the election: N nodes run the REAL core (`s3_election::core`)
//! against the in-memory model of S3's conditional writes, on virtual time, under faults that
//! one `u64` seed derives (swarm testing: each seed switches fault kinds on or off and picks
//! their intensity). The recorded history is judged by the same checker as real-server runs,
//! plus the checks only a simulator can make.
//!
//! Fault model: requests dropped, delayed (reordered across nodes) or held past their timeout
//! and applied late; answers lost after the store applied the request; 409 and 5xx answers
//! (5xx before or after applying); partitions; process pauses longer than the lease; crashes
//! with and without release, and restarts with the same node id; clock-rate drift within the
//! configured bound and wall-clock offsets; stateless nodes mixed with stateful ones; a foreign
//! object planted at the lease key. And what operators and edge deployments do: two processes
//! (stateful) or two replicas (stateless) sharing one node id; the lease object deleted while
//! a leader runs; a store whose gateways stamp `Date` and `Last-Modified` with clocks up to
//! the configured skew apart; member heartbeats lost so members flap around their TTL; member
//! listings failing for one node at a time; hundreds of members with long metadata. And what
//! stores do: match only bare (Ceph RGW) or only quoted ETags in conditional headers while
//! nodes start with either form (no probe, or the probe on some nodes).
//!
//! Invariants: (a) never two leaders at one instant of true time (processes that share a node
//! id count as two), (b) one holder per term and terms only grow, (c) once faults stop a node
//! leads within a bound, (d) no unconditional write reaches the store, (e) a foreign object is
//! never overwritten, (f) once faults stop the leader is stable: a normal store answer (such
//! as 409) never demotes it, (g) nobody leads below the quorum for longer than the grace,
//! (h) every lease record written is one a reader accepts, (i) a release never cuts short a
//! promised window, (j) a leader's quorum was checked within the grace, (k) one claim wins
//! each slot and the stored slot never goes back, (l) no node sends more requests in a window
//! of retry periods than the core's rate bound (`core::RATE_WINDOW_RETRY_PERIODS`), idle
//! calls included.

use crate::check::history::{self, Observation};
use s3_election::config::QuorumConfig;
use s3_election::config::{ElectionConfig, Keys, Timings};
use s3_election::core::{
    counts_towards_rate, CallKind, Elector, Event, Reply, Role, Status,
    MAX_REQUESTS_PER_RATE_WINDOW, RATE_WINDOW_RETRY_PERIODS,
};
use s3_election::memstore::{EtagMatching, MemStore};
use s3_election::mutation::Mutation;
use s3_election::protocol::{EtagForm, Outcome, PutMode, Request};
use s3_election::record::LeaseRecord;
use s3_election::time::Instant;
use s3_election::Error;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt;
use std::time::Duration;

pub const NAME: &str = "sim";
pub const KEY: &str = "sim/lease";
const LEASE_MS: u64 = 1000;
/// Clock-rate error assumed by the protocol in the simulation (nodes drift within ±half).
const MAX_DRIFT_PPM: u32 = 50_000;
/// The store clock at true time zero, Unix seconds.
pub const STORE_EPOCH_S: u64 = 1_790_000_000;
/// Store clock skew the protocol allows in the simulation; gateways' clocks stay within half
/// of it from the store's, both ways.
const STORE_CLOCK_SKEW_MS: u32 = 2_000;
pub const GATEWAY_SKEW_MS: u32 = STORE_CLOCK_SKEW_MS / 2;

/// Small deterministic generator (SplitMix64), so a seed replays exactly.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5EED_5EED_5EED_5EED)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }
}

/// Everything a seed decides about one schedule. Printed with every failure.
#[derive(Clone, Debug)]
pub struct Profile {
    pub seed: u64,
    pub mutation: Option<Mutation>,
    pub nodes: usize,
    pub stateless: Vec<bool>,
    /// Clock rate of each node's monotonic clock (1.0 = true time).
    pub rates: Vec<f64>,
    /// Offset of each node's wall clock from true time, ms.
    pub wall_offsets_ms: Vec<i64>,
    pub drop_request: f64,
    pub lose_answer: f64,
    pub max_delay_ms: u64,
    /// Chance a request is held past its timeout and applied late.
    pub late_apply: f64,
    /// The store answers a write 409 without applying it. AWS documents this as a normal
    /// answer under concurrent writes, so it continues after the fault phase.
    pub conflict: f64,
    pub server_error: f64,
    pub server_error_after_apply: f64,
    /// (node, at ms, duration ms)
    pub pauses: Vec<(usize, u64, u64)>,
    /// (node, at ms, with release, restart after ms)
    pub crashes: Vec<(usize, u64, bool, Option<u64>)>,
    /// (node, from ms, to ms)
    pub partitions: Vec<(usize, u64, u64)>,
    pub foreign_at_ms: Option<u64>,
    /// Quorum size (1: off). With quorum on, every node is stateful.
    pub quorum: u32,
    /// The node id each node is configured with: `n<i>`, or another node's when two share one.
    pub node_ids: Vec<String>,
    /// When an operator deletes the lease object (ms).
    pub deletions: Vec<u64>,
    /// Each request is served by one of several gateways whose clocks are up to this far
    /// from the store's (both ways): `Date` and `Last-Modified` may disagree by twice this.
    pub gateway_skew_ms: u64,
    /// Chance that a member heartbeat is lost (members flap around their TTL).
    pub heartbeat_loss: f64,
    /// (node, from ms, to ms): that node's member listings fail (503).
    pub list_outages: Vec<(usize, u64, u64)>,
    /// Members that are not simulated nodes but heartbeat with 4 KiB of metadata each.
    pub phantom_members: usize,
    /// Which ETag forms the store matches in conditional headers (Ceph RGW: bare only). It
    /// is how the store is, so it stays after healing.
    pub etag_matching: EtagMatching,
    /// Each node's configured ETag form (`unquoted-etags`), right or wrong for the store.
    pub bare_etags: Vec<bool>,
    /// Nodes that run the store probe first (`probe-store`).
    pub probing: Vec<bool>,
    /// Each node's lease (ms), and the lease it has after a restart: an operator's rolling
    /// change of `lease`, or apps configured differently. Every node is told the longest in
    /// use (`longest_lease`), as the README's rule for such changes says.
    pub leases_ms: Vec<u64>,
    pub restart_leases_ms: Vec<u64>,
    /// The store's clock steps (at true ms, by ms; negative: back), as when a gateway's clock
    /// was an hour fast and is corrected. Only with stateful nodes: stateless takeover trusts
    /// the store's clock (the README says so).
    pub clock_steps: Vec<(u64, i64)>,
    /// LIST pages overlap: each page repeats the last key of the page before.
    pub repeated_list_keys: bool,
    /// The lease object is deleted right after the first renewal applied from this true ms.
    pub delete_after_renewal: Option<u64>,
    /// Chance that a member heartbeat is stamped by a gateway whose clock runs far (30 s)
    /// ahead of the store's (before the heal): a member that dies right after looks fresh
    /// for that much longer, unless such a stamp is refused.
    pub fast_heartbeat_gateway: f64,
    /// Nodes sharing a node id start at the same instant (replicas a trigger fires at once).
    pub start_together: bool,
    /// Faults happen before this; then only the normal store behaviour.
    pub heal_ms: u64,
    pub end_ms: u64,
}

impl Profile {
    pub fn from_seed(seed: u64, mutation: Option<Mutation>) -> Profile {
        let mut r = Rng::new(seed);
        let nodes = r.range(2, 5) as usize;
        let quorum = if r.chance(0.3) {
            r.range(2, nodes as u64) as u32
        } else {
            1
        };
        let mixed = quorum == 1 && r.chance(0.4);
        let mut stateless: Vec<bool> = (0..nodes).map(|_| mixed && r.chance(0.5)).collect();
        let half_drift = f64::from(MAX_DRIFT_PPM) / 2e6;
        let rates = (0..nodes)
            .map(|_| 1.0 + half_drift * (2.0 * r.unit() - 1.0))
            .collect();
        let skewed = r.chance(0.5);
        let wall_offsets_ms = (0..nodes)
            .map(|_| {
                if skewed {
                    r.range(0, 6000) as i64 - 3000
                } else {
                    0
                }
            })
            .collect();
        let on = |p: f64, max: f64, r: &mut Rng| if r.chance(p) { max * r.unit() } else { 0.0 };
        let drop_request = on(0.5, 0.3, &mut r);
        let lose_answer = on(0.5, 0.3, &mut r);
        let late_apply = on(0.3, 0.2, &mut r);
        let conflict = on(0.3, 0.02, &mut r);
        let server_error = on(0.3, 0.2, &mut r);
        let server_error_after_apply = on(0.3, 0.2, &mut r);
        let max_delay_ms = [1, 5, 20, 60][r.range(0, 3) as usize];
        // Quorum faults (members stale for their TTL and the grace) need longer to show.
        let heal_ms = if quorum > 1 {
            r.range(5_000, 14_000)
        } else {
            r.range(3_000, 10_000)
        };
        let mut pauses = Vec::new();
        if r.chance(0.5) {
            for _ in 0..r.range(1, 4) {
                let n = r.range(0, nodes as u64 - 1) as usize;
                pauses.push((n, r.range(0, heal_ms - 2500), r.range(100, 2500)));
            }
        }
        let mut crashes: Vec<(usize, u64, bool, Option<u64>)> = Vec::new();
        if r.chance(0.5) {
            for _ in 0..r.range(1, 3) {
                let n = r.range(0, nodes as u64 - 1) as usize;
                let restart = r.chance(0.6).then(|| r.range(100, 3000));
                crashes.push((n, r.range(0, heal_ms - 500), r.chance(0.4), restart));
            }
        }
        let mut partitions = Vec::new();
        if r.chance(0.4) {
            for _ in 0..r.range(1, 3) {
                let n = r.range(0, nodes as u64 - 1) as usize;
                let from = r.range(0, heal_ms - 200);
                partitions.push((n, from, r.range(from + 100, heal_ms)));
            }
        }
        let foreign_at_ms = r.chance(0.03).then(|| r.range(0, heal_ms));
        // Shared node ids: a stateful node may run twice (both count as processes), and
        // stateless replicas may share an id (one logical node).
        let mut node_ids: Vec<String> = (0..nodes).map(|i| format!("n{i}")).collect();
        // (Twins share one member object, so only where the other ids still make a quorum.)
        if nodes >= 2 && (nodes as u32 - 1) >= quorum && r.chance(0.25) {
            let twin = r.range(1, nodes as u64 - 1) as usize;
            let of = r.range(0, twin as u64 - 1) as usize;
            node_ids[twin] = node_ids[of].clone();
        }
        let mut deletions = if r.chance(0.25) {
            (0..r.range(1, 2))
                .map(|_| r.range(500, heal_ms - 200))
                .collect()
        } else {
            Vec::new()
        };
        let gateway_skew_ms = if r.chance(if stateless.iter().any(|s| *s) {
            0.5
        } else {
            0.2
        }) {
            r.range(u64::from(GATEWAY_SKEW_MS) / 2, u64::from(GATEWAY_SKEW_MS))
        } else {
            0
        };
        let heartbeat_loss = on(0.3, 0.6, &mut r);
        let mut list_outages = Vec::new();
        if quorum > 1 && r.chance(0.5) {
            // The store's LIST fails for everyone (usize::MAX) or for one node.
            let n = if r.chance(0.5) {
                usize::MAX
            } else {
                r.range(0, nodes as u64 - 1) as usize
            };
            let from = r.range(0, heal_ms / 2);
            list_outages.push((n, from, r.range(from + 100, heal_ms)));
        }
        // Twenty members with 4 KiB of metadata each would make a lease record larger than a
        // reader accepts, were the published members not bounded.
        let phantom_members = if quorum > 1 && r.chance(0.1) { 20 } else { 0 };
        // Classes added later draw from a generator of their own, so that the seeds above
        // keep the profiles they had.
        let mut r2 = Rng::new(seed ^ 0x0E7A_6F0E_7A6F_0E7A);
        let etag_matching = match r2.range(0, 9) {
            0..=2 => EtagMatching::BareOnly,
            3 => EtagMatching::QuotedOnly,
            _ => EtagMatching::Both,
        };
        let bare_etags = (0..nodes).map(|_| r2.chance(0.3)).collect();
        let mut probing: Vec<bool> = (0..nodes).map(|_| r2.chance(0.15)).collect();
        // Operators' changes (issue 18): leases that differ between nodes and across a
        // restart, the store's clock stepping, LIST pages that overlap.
        let mut r3 = Rng::new(seed ^ 0x18_0018_0018_0018);
        // Replicas that share a node id, stateless and probing on every call: their probes
        // overlap (each has a scratch object of its own).
        let twins: Vec<usize> = (0..nodes)
            .filter(|&i| node_ids.iter().filter(|id| **id == node_ids[i]).count() > 1)
            .collect();
        let start_together = !twins.is_empty() && quorum == 1 && r3.chance(0.5);
        if start_together {
            for &i in &twins {
                stateless[i] = true;
                probing[i] = true;
            }
        }
        // (Not below the default: its request timeout is what the network's delays fit in.)
        let choices = [LEASE_MS, 1_600, 4_000];
        let pick = |r: &mut Rng| choices[r.range(0, 2) as usize];
        let mixed_leases = quorum == 1 && r3.chance(0.3);
        let leases_ms: Vec<u64> = (0..nodes)
            .map(|_| {
                if mixed_leases {
                    pick(&mut r3)
                } else {
                    LEASE_MS
                }
            })
            .collect();
        let restart_leases_ms = (0..nodes)
            .map(|i| {
                if mixed_leases {
                    pick(&mut r3)
                } else {
                    leases_ms[i]
                }
            })
            .collect();
        // The case that matters: the lease object deleted right after a long lease's renewal.
        let delete_after_renewal =
            (mixed_leases && r3.chance(0.6)).then(|| r3.range(500, heal_ms - 2_000));
        let mut clock_steps = Vec::new();
        // (Not with a quorum: a step back makes members that died up to a step before it
        // fresh again, an assumption of quorum mode the README states; far-ahead heartbeat
        // stamps below are the class a quorum is checked under.)
        if stateless.iter().all(|s| !s) && quorum == 1 && r3.chance(0.4) {
            let hour = 3_600_000i64;
            let at = r3.range(200, heal_ms - 200);
            match r3.range(0, 3) {
                // A gateway an hour fast, then corrected.
                0 | 3 => {
                    let until = r3.range(at, heal_ms);
                    clock_steps.push((at, hour));
                    clock_steps.push((until, -hour));
                    if r3.chance(0.7) && until + 400 < heal_ms {
                        // The case that matters: a term taken while the clock was fast, a
                        // node that forgets it (a restart), the lease object deleted after
                        // the correction.
                        let n = r3.range(0, nodes as u64 - 1) as usize;
                        let restart = r3.range(100, 400);
                        crashes.push((n, r3.range(at, until + 1), false, Some(restart)));
                        deletions.push(r3.range(until, heal_ms - 200));
                    }
                }
                1 => clock_steps.push((at, -hour)),
                _ => clock_steps.push((
                    at,
                    r3.range(1_000, 10_000) as i64 * if r3.chance(0.5) { 1 } else { -1 },
                )),
            }
        }
        let repeated_list_keys = quorum > 1 && r3.chance(0.3);

        let fast_heartbeat_gateway = if quorum > 1 && r3.chance(0.3) {
            if r3.chance(0.7) {
                // The case that matters: a member that dies after a far-ahead stamp.
                let n = r3.range(0, nodes as u64 - 1) as usize;
                crashes.push((n, r3.range(500, heal_ms - 4_000), false, None));
            }
            0.2 + 0.3 * r3.unit()
        } else {
            0.0
        };
        let mut p = Profile {
            seed,
            mutation,
            nodes,
            stateless,
            rates,
            wall_offsets_ms,
            drop_request,
            lose_answer,
            max_delay_ms,
            late_apply,
            conflict,
            server_error,
            server_error_after_apply,
            pauses,
            crashes,
            partitions,
            foreign_at_ms,
            quorum,
            node_ids,
            deletions,
            gateway_skew_ms,
            heartbeat_loss,
            list_outages,
            phantom_members,
            etag_matching,
            bare_etags,
            probing,
            leases_ms,
            restart_leases_ms,
            clock_steps,
            repeated_list_keys,
            delete_after_renewal,
            fast_heartbeat_gateway,
            start_together,
            heal_ms,
            end_ms: 0,
        };
        if !p.clock_steps.is_empty() {
            // The terms' guarantee across a clock step back needs a node that saw the old term
            // to read the vacancy in time (see `Sim::term_may_go_back`): a clean network.
            p.drop_request = 0.0;
            p.lose_answer = 0.0;
            p.late_apply = 0.0;
            p.server_error = 0.0;
            p.server_error_after_apply = 0.0;
            p.partitions.clear();
            p.pauses.clear();
        }
        // Run past the liveness bound long enough to judge the leader's stability.
        p.end_ms = p.heal_ms + p.liveness_bound_ms() + 4_000;
        p
    }

    /// The timings of a node with the default lease.
    pub fn timings() -> Timings {
        Profile::timings_for(LEASE_MS, LEASE_MS)
    }

    /// The timings of a node with this lease, told the longest lease in use.
    pub fn timings_for(lease_ms: u64, longest_ms: u64) -> Timings {
        let mut t = Timings::for_lease(Duration::from_millis(lease_ms));
        t.max_drift_ppm = MAX_DRIFT_PPM;
        t.store_clock_skew = Duration::from_millis(u64::from(STORE_CLOCK_SKEW_MS));
        t.longest_lease = Duration::from_millis(longest_ms.max(lease_ms));
        t
    }

    /// The longest lease any node uses in this schedule, ms.
    pub fn longest_lease_ms(&self) -> u64 {
        self.leases_ms
            .iter()
            .chain(&self.restart_leases_ms)
            .copied()
            .max()
            .unwrap_or(LEASE_MS)
    }

    /// Node `node`'s timings, before or after a restart.
    pub fn node_timings(&self, node: usize, restarted: bool) -> Timings {
        let lease = if restarted {
            self.restart_leases_ms[node]
        } else {
            self.leases_ms[node]
        };
        Profile::timings_for(lease, self.longest_lease_ms())
    }

    /// The store clock's offset from true time at true `at_ms`, ms.
    pub fn clock_offset_ms(&self, at_ms: u64) -> i64 {
        self.clock_steps
            .iter()
            .filter(|(t, _)| *t <= at_ms)
            .map(|(_, d)| d)
            .sum()
    }

    /// The history label of node `i`: its own for stateful processes (two processes that
    /// share an id are still two), the node id for stateless ones (replicas of one logical
    /// node, whose invocations may overlap).
    pub fn label(&self, i: usize) -> String {
        if self.stateless[i] {
            format!("{}*", self.node_ids[i])
        } else {
            format!("n{i}")
        }
    }

    /// Time after healing within which some node must lead.
    pub fn quorum_config(&self) -> QuorumConfig {
        let mut q = QuorumConfig::disabled_for_lease(Duration::from_millis(LEASE_MS));
        q.size = self.quorum;
        // The least the configuration allows: a heartbeat, the store clock skew and 1 s.
        q.member_ttl =
            q.heartbeat_interval + Duration::from_millis(u64::from(STORE_CLOCK_SKEW_MS) + 1000);
        q
    }

    pub fn liveness_bound_ms(&self) -> u64 {
        let longest = self.longest_lease_ms();
        let t = Profile::timings_for(longest, longest);
        let ms = |d: Duration| d.as_millis() as u64;
        let mut stateless_extra = if self.stateless.iter().any(|s| *s) {
            // Stateless takeover waits the store-clock margins: 1 s resolution and the skew.
            2000 + ms(t.store_clock_skew)
        } else {
            0
        };
        // A first quorum check reads every member body once, one request each.
        stateless_extra += self.phantom_members as u64 * 2 * self.max_delay_ms;
        // A vacancy (a new election, or a deleted lease) is waited out like a lease, and until
        // the store's clock is a skew past its second: nodes that all crashed before writing
        // one write it only after healing.
        stateless_extra += ms(t.store_clock_skew) + 1000;
        if !self.deletions.is_empty() {
            stateless_extra += longest + ms(t.grace);
        }
        if self.quorum > 1 {
            // A leader may release for a quorum lost before healing; a candidate then waits
            // for members to be fresh again and checks them.
            let q = self.quorum_config();
            stateless_extra += ms(q.member_ttl) + ms(q.grace) + 2 * ms(q.heartbeat_interval) + 1000;
        }
        // A lease renewed just before healing, then lease + grace of observation, a poll,
        // late requests still landing, and a request timeout.
        2 * longest
            + ms(t.grace)
            + 2 * ms(t.retry_period)
            + ms(t.request_timeout)
            + self.late_delay_max_ms()
            + stateless_extra
    }

    pub fn late_delay_max_ms(&self) -> u64 {
        let longest = self.longest_lease_ms();
        3 * Profile::timings_for(longest, longest)
            .request_timeout
            .as_millis() as u64
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimViolation {
    /// (a) or (b), from the shared checker.
    History(history::Violation),
    /// (c) No leader within the bound after the faults stopped.
    NoLeaderAfterHeal { heal_ms: u64, bound_ms: u64 },
    /// (d) A write reached the store without a condition.
    UnconditionalWrite { at_ms: u64, node: String },
    /// (e) A foreign object was overwritten.
    ForeignOverwritten { at_ms: u64, node: String },
    /// (f) Leadership changed although nothing was wrong.
    UnstableLeader {
        at_ms: u64,
        before: (String, u64),
        after: (String, u64),
    },
    /// (i) A leader's lease was released while the window its last answer promised was still
    /// open (only a resignation, which the caller asked for, may end it early).
    ReleasedInsidePromise {
        at_ms: u64,
        node: String,
        promised_until_ms: u64,
    },
    /// (j) A node led although none of its member listings had succeeded for longer than the
    /// quorum grace (plus the time to notice): its quorum was unchecked.
    LedWithQuorumUnchecked {
        at_ms: u64,
        node: String,
        last_listing_ms: Option<u64>,
    },
    /// (k) Several claims won one slot of a singleton job.
    SlotWonTwice { slot: u64, winners: Vec<String> },
    /// (k) The stored slot of a singleton job went back.
    SlotWentBack { from: u64, to: u64 },
    /// (k) The store says a slot was claimed, but no claim won it: the job ran nowhere.
    SlotRanNowhere { slot: u64 },
    /// (h) A node wrote a lease record that readers refuse (nobody could take it over).
    UnreadableRecord {
        at_ms: u64,
        node: String,
        why: String,
    },
    /// (g) A node led while fewer than the quorum of members were fresh, for longer than
    /// the grace (plus the time to notice).
    LedWithoutQuorum {
        at_ms: u64,
        node: String,
        below_since_ms: u64,
    },
    /// (m) A node refused the (honest) simulated store as one that ignores conditions.
    HonestStoreRefused { at_ms: u64, node: String },
    /// (l) A node sent more requests in a window of retry periods than the rate bound
    /// allows (`core::RATE_WINDOW_RETRY_PERIODS`): a busy loop.
    RequestRateExceeded {
        at_ms: u64,
        node: String,
        requests: usize,
        window_ms: u64,
    },
}

impl fmt::Display for SimViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimViolation::History(v) => write!(f, "{v}"),
            SimViolation::NoLeaderAfterHeal { heal_ms, bound_ms } => {
                write!(f, "liveness: no leader within {bound_ms} ms after faults stopped at {heal_ms} ms")
            }
            SimViolation::UnconditionalWrite { at_ms, node } => {
                write!(f, "unconditional write to the lease by {node} at {at_ms} ms")
            }
            SimViolation::ForeignOverwritten { at_ms, node } => {
                write!(f, "{node} overwrote a foreign object at {at_ms} ms")
            }
            SimViolation::ReleasedInsidePromise { at_ms, node, promised_until_ms } => write!(
                f,
                "{node}'s lease was released at {at_ms} ms, inside the window it promised until {promised_until_ms} ms"
            ),
            SimViolation::LedWithQuorumUnchecked { at_ms, node, last_listing_ms } => write!(
                f,
                "quorum: {node} led at {at_ms} ms with no member listing since {last_listing_ms:?} ms"
            ),
            SimViolation::SlotWonTwice { slot, winners } => {
                write!(f, "slot {slot} won by {}", winners.join(" and "))
            }
            SimViolation::SlotWentBack { from, to } => {
                write!(f, "the job's slot went back from {from} to {to}")
            }
            SimViolation::SlotRanNowhere { slot } => write!(
                f,
                "slot {slot} is claimed in the store but no claim won it: the job ran nowhere"
            ),
            SimViolation::UnreadableRecord { at_ms, node, why } => {
                write!(f, "{node} wrote a lease record readers refuse at {at_ms} ms: {why}")
            }
            SimViolation::LedWithoutQuorum { at_ms, node, below_since_ms } => write!(
                f,
                "quorum: {node} led at {at_ms} ms although fewer than the quorum were fresh since {below_since_ms} ms"
            ),
            SimViolation::UnstableLeader { at_ms, before, after } => write!(
                f,
                "stability: after faults stopped, leadership went from {} (term {}) to {} (term {}) at {at_ms} ms",
                before.0, before.1, after.0, after.1
            ),
            SimViolation::HonestStoreRefused { at_ms, node } => write!(
                f,
                "probe: {node} refused an honest store as one that ignores conditional writes at {at_ms} ms"
            ),
            SimViolation::RequestRateExceeded { at_ms, node, requests, window_ms } => write!(
                f,
                "request rate: {node} sent {requests} requests in the {window_ms} ms up to {at_ms} ms (at most {MAX_REQUESTS_PER_RATE_WINDOW})"
            ),
        }
    }
}

impl SimViolation {
    /// When it happened, ms, to print the history around it.
    pub fn at_ms(&self) -> u64 {
        match self {
            SimViolation::History(history::Violation::TwoLeaders { second, .. }) => second.from_ms,
            SimViolation::History(history::Violation::TermWentBack { span, .. }) => span.from_ms,
            SimViolation::History(history::Violation::LeaderWithoutTerm { at_ms, .. }) => *at_ms,
            SimViolation::History(history::Violation::TermShared { .. }) => 0,
            SimViolation::NoLeaderAfterHeal { heal_ms, .. } => *heal_ms,
            SimViolation::SlotWonTwice { .. }
            | SimViolation::SlotWentBack { .. }
            | SimViolation::SlotRanNowhere { .. } => 0,
            SimViolation::UnconditionalWrite { at_ms, .. }
            | SimViolation::ForeignOverwritten { at_ms, .. }
            | SimViolation::UnreadableRecord { at_ms, .. }
            | SimViolation::ReleasedInsidePromise { at_ms, .. }
            | SimViolation::LedWithQuorumUnchecked { at_ms, .. }
            | SimViolation::UnstableLeader { at_ms, .. }
            | SimViolation::LedWithoutQuorum { at_ms, .. }
            | SimViolation::RequestRateExceeded { at_ms, .. }
            | SimViolation::HonestStoreRefused { at_ms, .. } => *at_ms,
        }
    }
}

/// The result of one schedule.
pub struct Run {
    pub profile: Profile,
    pub history: Vec<Observation>,
    pub violation: Option<SimViolation>,
    pub events: u64,
}

impl Run {
    /// A hash of the whole history, to check that a seed replays exactly.
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for o in &self.history {
            for b in format!("{o:?}").bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
        }
        h
    }

    /// A readable account of a failure: seed, how to replay it, the profile, and the
    /// observations around the violation.
    pub fn report(&self) -> String {
        let Some(v) = &self.violation else {
            return format!("seed {} passed", self.profile.seed);
        };
        let at = v.at_ms();
        let window: Vec<String> = self
            .history
            .iter()
            .filter(|o| o.at_ms + 2500 >= at && o.at_ms <= at + 1500)
            .map(|o| format!("  {}", describe(o)))
            .collect();
        let mutation = self
            .profile
            .mutation
            .map(|m| format!(" --mutation {}", m.name()))
            .unwrap_or_default();
        format!(
            "VIOLATION (seed {seed}): {v}\nreplay: cargo run -p host-test -- sim --seed {seed}{mutation}\n\
             profile: {profile:?}\nhistory around {at} ms (true time):\n{window}",
            seed = self.profile.seed,
            profile = self.profile,
            window = window.join("\n")
        )
    }
}

/// What a caller of an elector sees at `at_ms` of true time, as an observation: the status
/// a call returned (with its events) or a status read between calls (`status`, no events),
/// or the error a call returned (then it does not lead). `valid_ms` is the status's validity
/// already converted to true time. Shared with the model checker.
pub fn observation(
    seen: Result<&Status, &Error>,
    node: String,
    at_ms: u64,
    valid_ms: u64,
) -> Observation {
    let Ok(status) = seen else {
        return Observation {
            unix_ms: at_ms,
            at_ms,
            node,
            role: "follower",
            term: None,
            leader: None,
            valid_ms: 0,
            events: Vec::new(),
            error: seen.err().map(|e| e.to_string()),
            last_error: None,
            requests: 0,
            members: Vec::new(),
            problems: Vec::new(),
        };
    };
    Observation {
        unix_ms: at_ms,
        at_ms,
        node,
        role: if status.role == Role::Leader {
            "leader"
        } else {
            "follower"
        },
        term: status
            .fencing_token
            .or(status.leader.as_ref().map(|l| l.term)),
        leader: status.leader.as_ref().map(|l| l.node_id.clone()),
        valid_ms,
        events: status.events.iter().map(event_text).collect(),
        error: None,
        last_error: status.last_error.as_ref().map(|e| e.to_string()),
        requests: status.requests,
        members: Vec::new(),
        problems: status.problems.iter().map(|p| format!("{p:?}")).collect(),
    }
}

pub fn describe(o: &Observation) -> String {
    format!(
        "{:>6} ms  {:<3} {:<8} term={:<3} leader={:<5} valid={:>4}ms {}{}",
        o.at_ms,
        o.node,
        o.role,
        o.term.map_or("-".into(), |t| t.to_string()),
        o.leader.clone().unwrap_or_else(|| "-".into()),
        o.valid_ms,
        o.events.join(" "),
        o.error
            .as_deref()
            .map(|e| format!(" ERROR {e}"))
            .unwrap_or_default()
    )
}

/// (d), (e), (h), (i) for one write of the lease that the store applied at `at_ms`, by the
/// process labelled `node` whose last recorded observation is `last`: it was conditional, did
/// not overwrite a foreign object, is a record readers accept, and, if a release, did not cut
/// short the window the releaser's last answer promised (a resignation records a follower
/// answer first: the caller asked to stop). Shared by the simulator and the model checker.
pub fn judge_lease_write(
    mode: &PutMode,
    body: &[u8],
    foreign_planted: bool,
    at_ms: u64,
    node: &str,
    last: Option<&Observation>,
) -> Option<SimViolation> {
    if foreign_planted {
        return Some(SimViolation::ForeignOverwritten {
            at_ms,
            node: node.to_string(),
        });
    }
    if !matches!(mode, PutMode::Create | PutMode::Update(_)) {
        return Some(SimViolation::UnconditionalWrite {
            at_ms,
            node: node.to_string(),
        });
    }
    match LeaseRecord::decode(body) {
        Err(why) => Some(SimViolation::UnreadableRecord {
            at_ms,
            node: node.to_string(),
            why: why.0,
        }),
        Ok(r) if r.released => {
            let last = last?;
            // 1 ms for the rounding of validity up to whole milliseconds.
            let promised_until_ms = last.at_ms + last.valid_ms;
            (last.is_leader() && at_ms + 1 < promised_until_ms).then(|| {
                SimViolation::ReleasedInsidePromise {
                    at_ms,
                    node: node.to_string(),
                    promised_until_ms,
                }
            })
        }
        Ok(_) => None,
    }
}

/// (l) The request-rate bound for the requests one process sent at `sent_us` (true time,
/// ascending), with retry period `retry`: no window of `RATE_WINDOW_RETRY_PERIODS` retry
/// periods holds more than `MAX_REQUESTS_PER_RATE_WINDOW` of them. Shared by the simulator,
/// the model checker and the hostile-store tests.
pub fn judge_request_rate(node: &str, sent_us: &[u64], retry: Duration) -> Option<SimViolation> {
    let window_us = (retry * RATE_WINDOW_RETRY_PERIODS).as_micros() as u64;
    let mut start = 0;
    for (end, &t) in sent_us.iter().enumerate() {
        while sent_us[start] + window_us <= t {
            start += 1;
        }
        let requests = end + 1 - start;
        if requests > MAX_REQUESTS_PER_RATE_WINDOW {
            return Some(SimViolation::RequestRateExceeded {
                at_ms: t / 1000,
                node: node.to_string(),
                requests,
                window_ms: window_us / 1000,
            });
        }
    }
    None
}

/// (k) for one slot once its claims are over: at most one winner, and the slot stored (if
/// any) is not below the highest stored before (`highest` is updated).
pub fn judge_slot(
    slot: u64,
    winners: Vec<String>,
    stored: Option<u64>,
    highest: &mut u64,
) -> Option<SimViolation> {
    if winners.len() > 1 {
        return Some(SimViolation::SlotWonTwice { slot, winners });
    }
    if let Some(stored) = stored {
        if stored < *highest {
            return Some(SimViolation::SlotWentBack {
                from: *highest,
                to: stored,
            });
        }
        *highest = stored;
    }
    None
}

// ----- the simulation ----------------------------------------------------------------------------

#[derive(Debug)]
enum Kind {
    Wake {
        node: usize,
        generation: u64,
    },
    Arrive {
        id: u64,
    },
    Answer {
        node: usize,
        incarnation: u64,
        id: u64,
        outcome: Outcome,
        /// The lease term the answer tells its receiver (a record read, or its own written).
        learnt: Option<u64>,
    },
    Timeout {
        node: usize,
        incarnation: u64,
        id: u64,
    },
    Pause {
        node: usize,
        ms: u64,
    },
    Crash {
        node: usize,
        release: bool,
        restart_after: Option<u64>,
    },
    Restart {
        node: usize,
    },
    PlantForeign,
    /// An operator deletes the lease object.
    Delete,
    /// The phantom members heartbeat.
    PhantomHeartbeat,
    Heal,
}

struct Scheduled {
    at_us: u64,
    seq: u64,
    kind: Kind,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at_us, self.seq) == (o.at_us, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at_us, self.seq).cmp(&(o.at_us, o.seq))
    }
}

struct Node {
    id: String,
    stateless: bool,
    rate: f64,
    /// Local monotonic clock at true time zero, ns.
    clock_offset_ns: u64,
    wall_offset_ms: i64,
    elector: Option<Elector>,
    crashed: bool,
    /// Resign at the next step, then stop.
    stopping: bool,
    resign_sent: bool,
    /// Bumped by crashes: answers addressed to an earlier incarnation are dropped.
    incarnation: u64,
    /// Bumped whenever a new wake is scheduled: older wakes are stale.
    generation: u64,
    paused_until_us: u64,
    in_flight: Option<u64>,
    seed_counter: u64,
    /// Restarted at least once: it runs with its lease after a restart.
    restarted: bool,
}

struct InFlight {
    node: usize,
    request: Request,
}

struct Sim {
    p: Profile,
    rng: Rng,
    now_us: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    nodes: Vec<Node>,
    store: MemStore,
    keys: Vec<Keys>,
    /// True times (ms) of each member's applied heartbeats, by node id: the ground truth of
    /// freshness.
    heartbeats: BTreeMap<String, Vec<u64>>,
    /// True times (ms) of each node's member listings the store answered.
    listings: Vec<Vec<u64>>,
    /// True times (us) of each node's requests that count towards the rate bound.
    sent_us: Vec<Vec<u64>>,
    /// Per node: (true ms, term) of every lease term it learnt from an answer, and the true
    /// ms at which it stopped or booted (it forgets then): who knew a term, and when.
    learnt_terms: Vec<Vec<(u64, u64)>>,
    lifecycle_ms: Vec<Vec<u64>>,
    requests: HashMap<u64, InFlight>,
    next_request: u64,
    history: Vec<Observation>,
    healed: bool,
    foreign_planted: bool,
    violation: Option<SimViolation>,
    events: u64,
}

/// Run one schedule.
pub fn run(seed: u64, mutation: Option<Mutation>) -> Run {
    let profile = Profile::from_seed(seed, mutation);
    let mut sim = Sim::new(profile);
    sim.run();
    let violation = sim
        .violation
        .take()
        .or_else(|| sim.judge())
        .or_else(|| run_slots(seed, mutation));
    Run {
        profile: sim.p,
        history: sim.history,
        violation,
        events: sim.events,
    }
}

/// Singleton jobs (`claim-slot`, `claim-slot-as`) under the same seed: 2–5 workers, some
/// sharing a node id, claim each slot at once, their requests interleaved at random, with lost
/// answers (applied or not) and 409s. A worker whose claim errs retries it with its claim id
/// (the last retry on a quiet store). Sometimes the slot record is deleted after a slot
/// (an operator, a lifecycle rule) and stragglers claim that slot again. (k) At most one
/// claim wins each slot, the stored slot never goes back, and a slot the store says was
/// claimed was won by someone (a claim whose answer was lost is not left running nowhere).
pub fn run_slots(seed: u64, mutation: Option<Mutation>) -> Option<SimViolation> {
    use s3_election::slot::{Claim, SlotClaim, SlotRecord};
    let mut r = Rng::new(seed ^ 0x5107_5107);
    let workers = r.range(2, 5) as usize;
    let shared = r.chance(0.5);
    let (lose, drop, conflict) = (r.unit() * 0.3, r.unit() * 0.2, r.unit() * 0.1);
    let slots = r.range(3, 8);
    let lost_after = r.chance(0.3).then(|| r.range(1, slots));
    let mut store = MemStore::new();
    let config = |i: usize| ElectionConfig {
        node_id: if shared && i > 0 {
            "w0".into()
        } else {
            format!("w{i}")
        },
        ..sim_config(&Profile::from_seed(seed, None), 0)
    };
    let keys = config(0).keys();
    let mut highest = 0;
    // One round: every worker claims `slot` (attempt `attempt`), retrying what errs.
    let round = |slot: u64, attempt: u32, store: &mut MemStore, r: &mut Rng| {
        let mut results: Vec<Option<Result<Claim, Error>>> = vec![None; workers];
        for retry in 0..3 {
            let quiet = retry == 2;
            let mut claims: Vec<(usize, SlotClaim)> = (0..workers)
                .filter(|&i| !matches!(results[i], Some(Ok(_))))
                .filter(|&i| {
                    // Only a claim that erred is retried (not one that was refused for good).
                    retry == 0 || matches!(&results[i], Some(Err(Error::Transport(_))))
                })
                .map(|i| {
                    // The caller's claim id, the same for every retry of one attempt; the old
                    // way (mutation retry-without-claim-id) a new random one each time.
                    let nonce = if mutation == Some(Mutation::RetryWithoutClaimId) {
                        format!("{:016x}", r.next_u64())
                    } else {
                        format!("w{i}-slot{slot}-attempt{attempt}")
                    };
                    let mut claim = SlotClaim::new(&config(i), slot, nonce);
                    claim.set_mutation(mutation);
                    (i, claim)
                })
                .collect();
            loop {
                let ready: Vec<usize> = (0..claims.len())
                    .filter(|&c| claims[c].1.wants_to_send())
                    .collect();
                let Some(&c) = ready.get(r.range(0, ready.len().max(1) as u64 - 1) as usize) else {
                    break;
                };
                let claim = &mut claims[c].1;
                let Some(request) = claim.poll_request() else {
                    continue;
                };
                let is_write = matches!(request, Request::PutSlot { .. });
                let outcome = if !quiet && is_write && r.chance(conflict) {
                    Outcome::Conflict
                } else if !quiet && r.chance(drop) {
                    Outcome::Transient(Error::Transport("dropped".into()))
                } else {
                    let answer = store.apply(&keys, &request, STORE_EPOCH_S * 1000);
                    if !quiet && r.chance(lose) {
                        Outcome::Transient(Error::Transport("answer lost".into()))
                    } else {
                        answer
                    }
                };
                claim.handle_response(outcome);
            }
            for (i, mut claim) in claims {
                claim.abandon(Error::Transport("out of requests".into()));
                results[i] = claim.result().cloned();
            }
        }
        results
    };
    for slot in 1..=slots {
        let mut results = round(slot, 0, &mut store, &mut r);
        if lost_after == Some(slot) {
            // The slot record disappears; stragglers (a catching-up cron runner) claim the
            // slot that already ran. Their winners count for this slot too, unless no win
            // could write the job's marker (the stated exception: then nothing tells a lost
            // record from a new job).
            let marked = store.get_object(&keys.job).is_some();
            store.delete(&keys.slot);
            let stragglers = round(slot, 1, &mut store, &mut r);
            if marked {
                results.extend(stragglers);
            }
        }
        let winners: Vec<String> = results
            .iter()
            .enumerate()
            .filter(|(_, res)| matches!(res, Some(Ok(Claim::Won))))
            .map(|(i, _)| format!("claim {i}"))
            .collect();
        let stored = store
            .get_object(&keys.slot)
            .map(|o| SlotRecord::decode(&o.body).map_or(0, |s| s.slot));
        if winners.is_empty() && stored == Some(slot) {
            return Some(SimViolation::SlotRanNowhere { slot });
        }
        if let Some(v) = judge_slot(slot, winners, stored, &mut highest) {
            return Some(v);
        }
        if lost_after == Some(slot) {
            // Claims refuse from here on (until an operator acts): nothing more to judge.
            break;
        }
    }
    None
}

impl Sim {
    fn new(p: Profile) -> Sim {
        let mut rng = Rng::new(p.seed.wrapping_mul(31).wrapping_add(7));
        let nodes = (0..p.nodes)
            .map(|i| Node {
                id: p.label(i),
                stateless: p.stateless[i],
                rate: p.rates[i],
                clock_offset_ns: rng.range(0, 1 << 40),
                wall_offset_ms: p.wall_offsets_ms[i],
                elector: None,
                crashed: false,
                stopping: false,
                resign_sent: false,
                incarnation: 0,
                generation: 0,
                paused_until_us: 0,
                in_flight: None,
                seed_counter: 0,
                restarted: false,
            })
            .collect();
        let mut sim = Sim {
            rng,
            now_us: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            // Small pages exercise pagination.
            store: {
                let mut store = MemStore::with_page_size(if p.phantom_members > 0 { 8 } else { 2 })
                    .matching(p.etag_matching);
                store.repeat_listed_keys = p.repeated_list_keys;
                store
            },
            keys: (0..p.nodes).map(|i| sim_config(&p, i).keys()).collect(),
            heartbeats: BTreeMap::new(),
            listings: vec![Vec::new(); p.nodes],
            sent_us: vec![Vec::new(); p.nodes],
            learnt_terms: vec![Vec::new(); p.nodes],
            lifecycle_ms: vec![Vec::new(); p.nodes],
            requests: HashMap::new(),
            next_request: 0,
            history: Vec::new(),
            healed: false,
            foreign_planted: false,
            violation: None,
            events: 0,
            p,
        };
        let mut starts: Vec<u64> = Vec::new();
        for n in 0..sim.nodes.len() {
            sim.boot(n);
            let mut start = sim.rng.range(0, 300_000);
            if sim.p.start_together {
                if let Some(first) = (0..n).find(|&m| sim.p.node_ids[m] == sim.p.node_ids[n]) {
                    start = starts[first];
                }
            }
            starts.push(start);
            sim.schedule_wake(n, start);
        }
        let ms = |v: u64| v * 1000;
        for &(node, at, dur) in &sim.p.pauses.clone() {
            sim.schedule(ms(at), Kind::Pause { node, ms: dur });
        }
        for &(node, at, release, restart_after) in &sim.p.crashes.clone() {
            sim.schedule(
                ms(at),
                Kind::Crash {
                    node,
                    release,
                    restart_after,
                },
            );
        }
        if let Some(at) = sim.p.foreign_at_ms {
            sim.schedule(ms(at), Kind::PlantForeign);
        }
        for &at in &sim.p.deletions.clone() {
            sim.schedule(ms(at), Kind::Delete);
        }
        if sim.p.phantom_members > 0 {
            sim.schedule(0, Kind::PhantomHeartbeat);
        }
        sim.schedule(ms(sim.p.heal_ms), Kind::Heal);
        sim
    }

    fn schedule(&mut self, at_us: u64, kind: Kind) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at_us,
            seq: self.seq,
            kind,
        }));
    }

    fn schedule_wake(&mut self, node: usize, at_us: u64) {
        let n = &mut self.nodes[node];
        n.generation += 1;
        let generation = n.generation;
        self.schedule(at_us, Kind::Wake { node, generation });
    }

    fn run(&mut self) {
        let end_us = self.p.end_ms * 1000;
        while let Some(Reverse(ev)) = self.queue.pop() {
            if ev.at_us > end_us || self.violation.is_some() {
                break;
            }
            self.now_us = ev.at_us;
            self.events += 1;
            match ev.kind {
                Kind::Wake { node, generation } => self.wake(node, generation),
                Kind::Arrive { id } => self.arrive(id),
                Kind::Answer {
                    node,
                    incarnation,
                    id,
                    outcome,
                    learnt,
                } => self.answer(node, incarnation, id, outcome, learnt),
                Kind::Timeout {
                    node,
                    incarnation,
                    id,
                } => {
                    let timeout = Outcome::Transient(Error::Transport("timeout".into()));
                    self.answer(node, incarnation, id, timeout, None)
                }
                Kind::Pause { node, ms } => {
                    let n = &mut self.nodes[node];
                    n.paused_until_us = n.paused_until_us.max(self.now_us + ms * 1000);
                }
                Kind::Crash {
                    node,
                    release,
                    restart_after,
                } => self.crash(node, release, restart_after),
                Kind::Restart { node } => self.restart(node),
                Kind::Delete => {
                    self.store.delete(KEY);
                    self.foreign_planted = false; // nothing foreign is left to protect
                }
                Kind::PhantomHeartbeat => self.phantom_heartbeat(),
                Kind::PlantForeign => {
                    self.store
                        .put_raw(KEY, b"<not a lease>".to_vec(), self.now_us / 1000);
                    self.foreign_planted = true;
                }
                Kind::Heal => self.heal(),
            }
        }
    }

    // ----- clocks ------------------------------------------------------------------------------

    fn local(&self, node: usize) -> Instant {
        let n = &self.nodes[node];
        Instant::from_nanos(n.clock_offset_ns + (self.now_us as f64 * 1000.0 * n.rate) as u64)
    }

    /// The first true time at which `node`'s clock reads at least `t`.
    fn true_us(&self, node: usize, t: Instant) -> u64 {
        let n = &self.nodes[node];
        let local_ns = t.as_nanos().saturating_sub(n.clock_offset_ns) as f64;
        (local_ns / (1000.0 * n.rate)).ceil() as u64 + 1
    }

    /// Store clock, Unix ms.
    fn store_now_ms(&self) -> u64 {
        let now_ms = self.now_us / 1000;
        ((STORE_EPOCH_S * 1000 + now_ms) as i64 + self.p.clock_offset_ms(now_ms)) as u64
    }

    /// The clock of the gateway that serves one request: the store's, up to the gateway skew
    /// off either way. `Date` and `Last-Modified` of one request come from the same gateway.
    fn gateway_now_ms(&mut self) -> u64 {
        let skew = self.p.gateway_skew_ms;
        if skew == 0 {
            return self.store_now_ms();
        }
        (self.store_now_ms() + self.rng.range(0, 2 * skew)).saturating_sub(skew)
    }

    fn list_outage(&self, node: usize) -> bool {
        let now_ms = self.now_us / 1000;
        !self.healed
            && self.p.list_outages.iter().any(|&(n, from, to)| {
                (n == node || n == usize::MAX) && now_ms >= from && now_ms < to
            })
    }

    /// Hundreds of members, each with 4 KiB of metadata, heartbeat (always fresh).
    fn phantom_heartbeat(&mut self) {
        let metadata = "m".repeat(4096);
        let now_ms = self.store_now_ms();
        for i in 0..self.p.phantom_members {
            let node = format!("phantom{i:03}");
            let body = s3_election::members::MemberRecord {
                format: s3_election::members::MEMBER_FORMAT.into(),
                node: node.clone(),
                metadata: metadata.clone(),
            }
            .encode();
            self.store
                .put_raw(&format!("{NAME}/members/{node}"), body, now_ms);
        }
        let every = self.p.quorum_config().heartbeat_interval.as_micros() as u64;
        self.schedule(self.now_us + every, Kind::PhantomHeartbeat);
    }

    fn faulty(&self) -> bool {
        !self.healed
    }

    fn partitioned(&self, node: usize) -> bool {
        let now_ms = self.now_us / 1000;
        self.p
            .partitions
            .iter()
            .any(|&(n, from, to)| n == node && now_ms >= from && now_ms < to && !self.healed)
    }

    // ----- nodes -------------------------------------------------------------------------------

    fn fresh_elector(&mut self, node: usize) -> Elector {
        let config = sim_config_after(&self.p, node, self.nodes[node].restarted);
        debug_assert_eq!(config.validate(), Ok(()), "the simulator's own config");
        let n = &mut self.nodes[node];
        n.seed_counter += 1;
        let seed = self.p.seed ^ ((node as u64) << 48) ^ (n.seed_counter << 32);
        let mut e = Elector::new(config, self.local(node), seed);
        e.set_mutation(self.p.mutation);
        e
    }

    fn boot(&mut self, node: usize) {
        let e = if self.nodes[node].stateless {
            None
        } else {
            Some(self.fresh_elector(node))
        };
        let n = &mut self.nodes[node];
        n.elector = e;
        n.crashed = false;
        n.stopping = false;
        n.resign_sent = false;
        n.in_flight = None;
    }

    fn set_wall_clock(&mut self, node: usize) {
        let n = &self.nodes[node];
        let wall = (STORE_EPOCH_S * 1000 + self.now_us / 1000) as i64 + n.wall_offset_ms;
        let local = self.local(node);
        if let Some(e) = self.nodes[node].elector.as_mut() {
            e.set_wall_clock(wall.max(0) as u64);
            e.handle_timeout(local);
        }
    }

    fn wake(&mut self, node: usize, generation: u64) {
        let n = &self.nodes[node];
        if n.generation != generation || n.crashed || n.in_flight.is_some() {
            return;
        }
        if self.now_us < n.paused_until_us {
            let until = n.paused_until_us;
            self.schedule_wake(node, until);
            return;
        }
        if n.stateless {
            let e = self.fresh_elector(node);
            self.nodes[node].elector = Some(e);
        }
        self.set_wall_clock(node);
        let local = self.local(node);
        let n = &mut self.nodes[node];
        let resigning = n.stopping && !n.resign_sent;
        n.resign_sent |= resigning;
        let kind = if resigning {
            CallKind::Resign
        } else {
            CallKind::Tick
        };
        if let Some(e) = n.elector.as_mut() {
            e.begin(kind, local);
        }
        // The caller stops acting as leader when it calls resign, not when resign returns.
        // Otherwise it learns only what a call returns: the status at the end of the call
        // (it may act on the last answer's promise until then).
        if resigning {
            self.record_status(node);
        }
        self.continue_tick(node);
    }

    /// Send the next request of this call, or end the call.
    fn continue_tick(&mut self, node: usize) {
        let local = self.local(node);
        let n = &mut self.nodes[node];
        let Some(e) = n.elector.as_mut() else { return };
        if let Some(request) = e.poll_request(local) {
            self.send(node, request);
            return;
        }
        // The call is over: the caller sees its answer, and calls again when it says.
        let reply = e.finish(local);
        let next = match &reply {
            Ok(Reply::Status(status)) => status.next_step_in,
            _ => e.status(local).next_step_in,
        };
        if matches!(&reply, Ok(Reply::Status(s)) if s.requests == 0) {
            // A call that sent nothing counts towards the rate bound too: a caller told to
            // call again at once, for nothing, is in a busy loop as well.
            self.sent_us[node].push(self.now_us);
            if std::env::var_os("SIM_TRACE").is_some() {
                eprintln!(
                    "{:>9} us {} an idle call, next in {next:?}",
                    self.now_us, self.nodes[node].id
                );
                if next.is_zero() && std::env::var_os("SIM_DUMP").is_some() {
                    eprintln!("{:#?}", self.nodes[node].elector);
                    std::process::exit(3);
                }
            }
        }
        self.record(node, reply);
        let n = &self.nodes[node];
        if n.stopping && n.resign_sent {
            self.stop(node);
            return;
        }
        let due = n.elector.as_ref().map(|_| local + next);
        if n.stateless {
            self.nodes[node].elector = None;
        }
        if let Some(due) = due {
            let at = self.true_us(node, due).max(self.now_us + 1);
            self.schedule_wake(node, at);
        }
    }

    fn send(&mut self, node: usize, request: Request) {
        if counts_towards_rate(&request) {
            self.sent_us[node].push(self.now_us);
        }
        if std::env::var_os("SIM_TRACE").is_some() {
            // Every request as sent, for debugging a replayed seed.
            let what = match &request {
                Request::Put { body, .. } => {
                    format!("PUT lease {}", String::from_utf8_lossy(body))
                }
                other => format!("{other:?}").chars().take(120).collect(),
            };
            eprintln!("{:>9} us {} {what}", self.now_us, self.nodes[node].id);
        }
        self.next_request += 1;
        let id = self.next_request;
        let n = &mut self.nodes[node];
        n.in_flight = Some(id);
        let incarnation = n.incarnation;
        let timeout_us = sim_config_after(&self.p, node, self.nodes[node].restarted)
            .timings
            .request_timeout
            .as_micros() as u64;
        self.schedule(
            self.now_us + timeout_us,
            Kind::Timeout {
                node,
                incarnation,
                id,
            },
        );
        let dropped =
            self.partitioned(node) || (self.faulty() && self.rng.chance(self.p.drop_request));
        if dropped {
            return;
        }
        let delay = if self.faulty() && self.rng.chance(self.p.late_apply) {
            // Held in the network past the timeout, applied after the node gave up.
            timeout_us + self.rng.range(1, self.p.late_delay_max_ms() * 1000)
        } else {
            self.rng.range(0, self.p.max_delay_ms * 1000)
        };
        self.requests.insert(id, InFlight { node, request });
        self.schedule(self.now_us + delay, Kind::Arrive { id });
    }

    fn arrive(&mut self, id: u64) {
        let Some(InFlight { node, request }) = self.requests.remove(&id) else {
            return;
        };
        let is_write = matches!(request, Request::Put { .. });
        let now_ms = self.now_us / 1000;
        let lost_heartbeat = matches!(request, Request::PutMember { .. })
            && self.faulty()
            && self.rng.chance(self.p.heartbeat_loss);
        let outcome = if is_write && self.rng.chance(self.p.conflict) {
            Outcome::Conflict
        } else if self.faulty() && self.rng.chance(self.p.server_error)
            || lost_heartbeat
            || matches!(request, Request::ListMembers { .. }) && self.list_outage(node)
        {
            Outcome::Transient(server_error())
        } else {
            let mut gateway_now = self.gateway_now_ms();
            if matches!(request, Request::PutMember { .. })
                && self.faulty()
                && self.rng.chance(self.p.fast_heartbeat_gateway)
            {
                gateway_now += 30_000;
            }
            let outcome = self.store.apply(&self.keys[node], &request, gateway_now);
            let who = self.nodes[node].id.clone();
            match (&outcome, &request) {
                (Outcome::Written { .. }, Request::Put { mode, body }) => {
                    let last = self.history.iter().rev().find(|o| o.node == who);
                    if let Some(v) =
                        judge_lease_write(mode, body, self.foreign_planted, now_ms, &who, last)
                    {
                        self.violation.get_or_insert(v);
                    }
                    let renewal =
                        LeaseRecord::decode(body).is_ok_and(|r| r.is_held() && r.renewals > 0);
                    if renewal && self.p.delete_after_renewal.is_some_and(|t| t <= now_ms) {
                        self.p.delete_after_renewal = None;
                        self.schedule(self.now_us + 1_000, Kind::Delete);
                    }
                }
                (Outcome::Listed { .. }, Request::ListMembers { .. }) => {
                    self.listings[node].push(now_ms)
                }
                (Outcome::Written { .. }, Request::PutMember { .. }) => {
                    let id = self.p.node_ids[node].clone();
                    self.heartbeats.entry(id).or_default().push(now_ms)
                }
                _ => {}
            }
            if self.faulty() && self.rng.chance(self.p.server_error_after_apply) {
                Outcome::Transient(server_error())
            } else {
                outcome
            }
        };
        if self.faulty() && self.rng.chance(self.p.lose_answer) {
            return; // applied (or not), but the answer never arrives
        }
        let term = |body: &[u8]| LeaseRecord::decode(body).ok().map(|r| r.term);
        let learnt = match (&outcome, &request) {
            (Outcome::Found { body, .. }, Request::Get { .. }) => term(body),
            (Outcome::Written { .. }, Request::Put { body, .. }) => term(body),
            _ => None,
        };
        let incarnation = self.nodes[node].incarnation;
        let delay = self.rng.range(0, self.p.max_delay_ms * 1000);
        self.schedule(
            self.now_us + delay,
            Kind::Answer {
                node,
                incarnation,
                id,
                outcome,
                learnt,
            },
        );
    }

    fn answer(
        &mut self,
        node: usize,
        incarnation: u64,
        id: u64,
        outcome: Outcome,
        learnt: Option<u64>,
    ) {
        let n = &self.nodes[node];
        if n.crashed || n.incarnation != incarnation || n.in_flight != Some(id) {
            return; // stale: the node gave up on this request, or restarted
        }
        if self.now_us < n.paused_until_us {
            // A paused process handles the answer when it runs again.
            let until = n.paused_until_us;
            self.schedule(
                until,
                Kind::Answer {
                    node,
                    incarnation,
                    id,
                    outcome,
                    learnt,
                },
            );
            return;
        }
        self.nodes[node].in_flight = None;
        if let Some(term) = learnt {
            self.learnt_terms[node].push((self.now_us / 1000, term));
        }
        self.set_wall_clock(node);
        let local = self.local(node);
        if let Some(e) = self.nodes[node].elector.as_mut() {
            e.handle_response(local, outcome);
        }
        if !self.nodes[node].stateless {
            self.record_status(node);
        }
        self.continue_tick(node);
    }

    fn crash(&mut self, node: usize, release: bool, restart_after: Option<u64>) {
        if self.nodes[node].crashed {
            return;
        }
        if release {
            // A clean shutdown: resign at the next step, then stop.
            self.nodes[node].stopping = true;
            let now = self.now_us;
            if self.nodes[node].in_flight.is_none() {
                self.schedule_wake(node, now);
            }
        } else {
            // No observation is recorded: the checker treats a crashed leader as acting until
            // its validity ends, like a paused one.
            self.stop(node);
        }
        if let Some(after) = restart_after {
            self.schedule(self.now_us + after * 1000, Kind::Restart { node });
        }
    }

    fn stop(&mut self, node: usize) {
        self.lifecycle_ms[node].push(self.now_us / 1000);
        let n = &mut self.nodes[node];
        n.crashed = true;
        n.elector = None;
        n.in_flight = None;
        n.incarnation += 1;
        n.generation += 1;
    }

    fn restart(&mut self, node: usize) {
        if !self.nodes[node].crashed && !self.nodes[node].stopping {
            return;
        }
        if !self.nodes[node].crashed {
            self.stop(node);
        }
        self.nodes[node].incarnation += 1;
        self.nodes[node].restarted = true;
        self.boot(node);
        let now = self.now_us;
        self.schedule_wake(node, now);
    }

    fn heal(&mut self) {
        self.healed = true;
        let now = self.now_us;
        for node in 0..self.nodes.len() {
            self.nodes[node].paused_until_us = self.nodes[node].paused_until_us.min(now);
            if self.nodes[node].crashed || self.nodes[node].stopping {
                self.restart(node);
            }
        }
    }

    /// What the caller could read between calls (`status`): recorded after every answer,
    /// stricter than waiting for the call's end.
    fn record_status(&mut self, node: usize) {
        let local = self.local(node);
        let Some(e) = self.nodes[node].elector.as_ref() else {
            return;
        };
        let status = e.status(local);
        self.record(node, Ok(Reply::Status(status)));
    }

    /// What a call returned (or a status), as the history's observation.
    fn record(&mut self, node: usize, seen: Result<Reply, Error>) {
        let at_ms = self.now_us / 1000;
        let n = &self.nodes[node];
        let status = match &seen {
            Ok(Reply::Status(status)) => Ok(status),
            Ok(Reply::Leader(_)) => return,
            Err(e) => Err(e),
        };
        // Validity in true time, rounded up, from the floor of the true instant: conservative.
        let valid_ms = match status {
            Ok(status) if status.role == Role::Leader => {
                let valid_true_us =
                    (status.valid_for.as_nanos() as f64 / 1000.0 / n.rate).ceil() as u64;
                (self.now_us % 1000 + valid_true_us).div_ceil(1000)
            }
            _ => 0,
        };
        let o = observation(status, n.id.clone(), at_ms, valid_ms);
        self.history.push(o);
    }

    // ----- judging -----------------------------------------------------------------------------

    fn judge(&self) -> Option<SimViolation> {
        let excused = |span: &history::LeaderSpan, higher: u64| self.term_may_go_back(span, higher);
        if let Err(v) = history::check_allowing(&self.history, &excused) {
            return Some(SimViolation::History(v));
        }
        if let Some(o) = self.history.iter().find(|o| {
            o.error
                .iter()
                .chain(&o.last_error)
                .any(|e| e.contains("does not honour conditional writes"))
        }) {
            // (m) The simulated store is honest: refusing it is a bug (two probes that
            // shared a scratch object did that).
            return Some(SimViolation::HonestStoreRefused {
                at_ms: o.at_ms,
                node: o.node.clone(),
            });
        }
        for (node, sent) in self.sent_us.iter().enumerate() {
            let retry = self
                .p
                .node_timings(node, false)
                .retry_period
                .min(self.p.node_timings(node, true).retry_period);
            if let Some(v) = judge_request_rate(&self.nodes[node].id, sent, retry) {
                return Some(v);
            }
        }
        if let Some(v) = self.judge_quorum() {
            return Some(v);
        }
        if self.p.foreign_at_ms.is_some() {
            return None; // nobody may lead on a foreign record: liveness does not apply
        }
        let heal = self.p.heal_ms;
        let bound = self.p.liveness_bound_ms();
        let mut after: Vec<&Observation> = self
            .history
            .iter()
            .filter(|o| o.at_ms >= heal && o.is_leader())
            .collect();
        after.sort_by_key(|o| o.at_ms);
        if after.first().is_none_or(|o| o.at_ms > heal + bound) {
            return Some(SimViolation::NoLeaderAfterHeal {
                heal_ms: heal,
                bound_ms: bound,
            });
        }
        let settled: Vec<&&Observation> =
            after.iter().filter(|o| o.at_ms >= heal + bound).collect();
        if let Some(first) = settled.first() {
            let key = |o: &Observation| (o.node.clone(), o.term.unwrap_or(0));
            for o in &settled {
                if key(o) != key(first) {
                    return Some(SimViolation::UnstableLeader {
                        at_ms: o.at_ms,
                        before: key(first),
                        after: key(o),
                    });
                }
            }
            // A demotion of the settled leader is instability too, even if it won again.
            if let Some(o) = self.history.iter().find(|o| {
                o.at_ms >= first.at_ms
                    && o.node == first.node
                    && o.events.iter().any(|e| e.starts_with("demoted"))
            }) {
                return Some(SimViolation::UnstableLeader {
                    at_ms: o.at_ms,
                    before: key(first),
                    after: (o.node.clone(), o.term.unwrap_or(0)),
                });
            }
        }
        None
    }
}

impl Sim {
    /// The fencing guarantee's stated exception: a leadership `span` may begin with a term
    /// not above `higher` only if the store's clock stepped back before it and no stateful
    /// node that had learnt a term of at least `higher` ran on from then until the span
    /// began (such a node raises a vacancy's term to what it saw; see `core`).
    fn term_may_go_back(&self, span: &history::LeaderSpan, higher: u64) -> bool {
        let stepped_back = self
            .p
            .clock_steps
            .iter()
            .any(|&(at, by)| by < 0 && at <= span.from_ms);
        if !stepped_back {
            return false;
        }
        let knew = |node: usize| {
            self.learnt_terms[node].iter().any(|&(at, term)| {
                term >= higher
                    && at <= span.from_ms
                    && !self.lifecycle_ms[node]
                        .iter()
                        .any(|&t| t > at && t <= span.from_ms)
            })
        };
        !(0..self.nodes.len()).any(|n| !self.nodes[n].stateless && knew(n))
    }

    fn judge_quorum(&self) -> Option<SimViolation> {
        let process = |label: &str| self.nodes.iter().position(|n| n.id == label);
        judge_quorum(
            &self.p,
            &self.history,
            process,
            &self.heartbeats,
            &self.listings,
        )
    }
}

impl Profile {
    /// How long a leader may go on below the quorum, or without a successful member listing:
    /// the quorum grace plus the time to notice (a check interval, the 1 s resolution of
    /// `Date`, and a check's requests (LIST pages and body reads), each up to a timeout).
    pub fn quorum_allowance_ms(&self) -> u64 {
        let q = self.quorum_config();
        let t = Profile::timings();
        let notice = q.heartbeat_interval.as_millis() as u64
            + 1000
            + 2 * self.gateway_skew_ms
            + 8 * t.request_timeout.as_millis() as u64
            + self.late_delay_max_ms();
        q.grace.as_millis() as u64 + notice
    }
}

/// (g) and (j): for every leader answer in `history`, when did the members (the leader
/// counting itself, as the core does) last reach the quorum by the store's heartbeat log,
/// and when did the leader's own last member listing succeed? `process` maps a history label
/// to its node index; `heartbeats` are the true times (ms) of each member's applied
/// heartbeats by node id, `listings` those of each node's answered member listings. Shared
/// by the simulator and the model checker.
pub fn judge_quorum(
    p: &Profile,
    history: &[Observation],
    process: impl Fn(&str) -> Option<usize>,
    heartbeats: &BTreeMap<String, Vec<u64>>,
    listings: &[Vec<u64>],
) -> Option<SimViolation> {
    let q = p.quorum_config();
    if !q.enabled() {
        return None;
    }
    let ttl = q.member_ttl.as_millis() as u64;
    let allowed = p.quorum_allowance_ms();
    // Members are counted by node id (processes that share one share a member object);
    // phantom members are always fresh.
    let fresh_at = |leader_id: &str, at: u64| -> u32 {
        let others = heartbeats
            .iter()
            .filter(|(id, _)| id.as_str() != leader_id)
            .filter(|(_, beats)| beats.iter().any(|&h| h <= at && at < h + ttl))
            .count();
        1 + others as u32 + p.phantom_members as u32
    };
    for o in history.iter().filter(|o| o.is_leader()) {
        let leader = process(&o.node)?;
        let leader_id = p.node_ids[leader].as_str();
        // (j) A leader's own listings: one must have succeeded within the allowance.
        let last_listing = listings[leader]
            .iter()
            .copied()
            .filter(|&l| l <= o.at_ms)
            .max();
        if last_listing.is_none_or(|l| o.at_ms - l > allowed) {
            return Some(SimViolation::LedWithQuorumUnchecked {
                at_ms: o.at_ms,
                node: o.node.clone(),
                last_listing_ms: last_listing,
            });
        }
        // Walk back in 10 ms steps to the last instant with a quorum.
        let mut at = o.at_ms;
        while at > 0 && fresh_at(leader_id, at) < q.size && o.at_ms - at <= allowed {
            at = at.saturating_sub(10);
        }
        if o.at_ms - at > allowed {
            return Some(SimViolation::LedWithoutQuorum {
                at_ms: o.at_ms,
                node: o.node.clone(),
                below_since_ms: at,
            });
        }
    }
    None
}

/// The configuration of node `node` of a schedule (also the model checker's).
pub fn sim_config(p: &Profile, node: usize) -> ElectionConfig {
    sim_config_after(p, node, false)
}

/// The configuration of node `node`, before or after a restart (its lease may change then).
pub fn sim_config_after(p: &Profile, node: usize, restarted: bool) -> ElectionConfig {
    ElectionConfig {
        name: NAME.into(),
        node_id: p.node_ids[node].clone(),
        key_prefix: String::new(),
        timings: p.node_timings(node, restarted),
        metadata: String::new(),
        stateless: p.stateless[node],
        probe_store: p.probing[node],
        quorum: p.quorum_config(),
        etag_form: EtagForm::from_unquoted(p.bare_etags[node]),
    }
}

pub fn server_error() -> Error {
    Error::Store {
        status: 500,
        code: "InternalError".into(),
        message: "injected".into(),
    }
}

/// An event as the history prints it.
pub fn event_text(e: &Event) -> String {
    match e {
        Event::Elected { term } => format!("elected(term={term})"),
        Event::Demoted { term, reason } => format!("demoted(term={term}, {reason:?})"),
        Event::LeaderChanged { leader: Some(l) } => {
            format!("leader-changed({}, term={})", l.node_id, l.term)
        }
        Event::LeaderChanged { leader: None } => "leader-changed(none)".into(),
        Event::QuorumLost { fresh, needed } => format!("quorum-lost({fresh}/{needed})"),
        Event::QuorumRestored { fresh } => format!("quorum-restored({fresh})"),
    }
}

/// Many schedules on all cores: seeds `first..first + count`.
pub struct Campaign {
    pub schedules: u64,
    pub events: u64,
    pub elapsed: Duration,
    /// How many schedules failed.
    pub failed: u64,
    /// Failing runs' reports, in seed order (at most a few are kept).
    pub failures: Vec<(u64, String)>,
}

impl Campaign {
    pub fn per_second(&self) -> f64 {
        self.schedules as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Run seeds `first..first+count`, stopping early after the first failure when `stop_early`.
pub fn campaign(
    first: u64,
    count: u64,
    mutation: Option<Mutation>,
    threads: usize,
    stop_early: bool,
) -> Campaign {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Mutex;
    let started = std::time::Instant::now();
    let next = AtomicU64::new(first);
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let events = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= first + count {
                    break;
                }
                let r = run(seed, mutation);
                done.fetch_add(1, Ordering::Relaxed);
                events.fetch_add(r.events, Ordering::Relaxed);
                if r.violation.is_some() {
                    failures.lock().unwrap().push((seed, r.report()));
                    if stop_early {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort_by_key(|(seed, _)| *seed);
    let failed = failures.len() as u64;
    failures.truncate(5);
    Campaign {
        schedules: done.into_inner(),
        events: events.into_inner(),
        elapsed: started.elapsed(),
        failed,
        failures,
    }
}
