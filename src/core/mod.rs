//! The election state machine. Sans-IO: it reads no clock, sends nothing and never blocks.
//! Time comes in as [`Instant`]s from a monotonic clock; requests go out as [`Request`]s and
//! come back as [`Outcome`]s, so the same code runs inside the WebAssembly component, in unit
//! tests, in the deterministic simulator and in the model checker.
//!
//! # Call order
//! Everything a caller does is a call ([`CallKind`]: tick, resign, leave, query), driven to
//! its end like this (see `call`):
//! 1. [`Elector::begin`] the call, with the current time.
//! 2. While [`Elector::poll_request`] returns a request: send it, then hand the answer to
//!    [`Elector::handle_response`]. One request is in flight at a time; a call sends at most
//!    [`MAX_REQUESTS_PER_TICK`] election requests (plus, once, the store probe's).
//! 3. [`Elector::finish`] gives the call's [`Reply`] (or its error). Tick again after the
//!    status's `next_step_in`. [`Elector::status`] reads the status between calls.
//!
//! # Request rate
//! After a write the store did not apply, the elector writes again only a retry period
//! later, and a stateless instance that leaves a write unsettled asks for its next call no
//! sooner either: whatever the store answers (412, 409, 5xx, an ETag it never matches), an
//! elector that does not lead sends a few requests per retry period, never a busy loop. A
//! 412 on the very ETag the store shows again means it compares ETags in the other form
//! (Ceph RGW matches only bare ones): the elector switches form once and writes again.
//!
//! # What is guaranteed
//! The leadership windows this elector promises (`valid_for` in [`Status`]) never overlap
//! with another elector's, provided (a) the store honours `If-None-Match` / `If-Match`
//! atomically, (b) clocks run at rates within `max_drift_ppm` of each other, and (c) in
//! stateless mode, the store's clock (`Date`, `Last-Modified`) is one clock within
//! `store_clock_skew`. Absolute offsets of node clocks do not matter: no node compares its
//! clock with a timestamp written by another node. Node ids need not be unique for this: an
//! elector tells its own writes by a random instance id (stateful) or by its nonces
//! (stateless), never by the node id alone.
//! - Every write to the lease is conditional (create with `If-None-Match: *`, then `If-Match`
//!   the ETag this node last read or wrote), so of two racing writers at most one wins.
//! - A leader believes it leads until `send time of its last confirmed write + lease × (1 −
//!   drift)`, and steps down earlier, at `+ renew_deadline`, if it cannot confirm a renewal.
//!   A leader that loses its quorum stops at once but releases only after that window.
//! - A follower takes over only a release it saw happen, or a record it has seen unchanged
//!   for `lease + grace` on its own clock (client-go's observed-time rule), or, in stateless
//!   mode, one the store's own clock says is older than `lease + grace + 1 s + skew`.
//! - Where the store has no lease object (a new election, or someone deleted it while a
//!   leader still held it), a node first writes a *vacant* record and waits out a lease on it
//!   like on any other: nobody leads until a deleted object's leader has stopped.
//! - The term is a fencing token: at every acquisition it rises above the record's term,
//!   above every term this node saw, and to at least the store's clock (Unix seconds ×
//!   [`TERMS_PER_SECOND`]), so it grows across deletions and restarts too. Pass it to
//!   whatever the leader writes to, so a deposed leader that still acts (a long pause) is
//!   refused there. This library cannot stop a paused process from acting; fencing can.
//!
//! # Where the code is
//! This file holds the elector's state and its public calls. The decisions are split by
//! phase: `follow` (reading the record, judging it, taking it over), `lead` (writing,
//! confirming, renewing, stepping down) and `quorum` (members and quorum checks).
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod call;
mod follow;
mod lead;
mod quorum;

pub use call::{CallKind, Reply};

use crate::config::ElectionConfig;
use crate::error::Error;
use crate::members::{MemberRequest, Members};
use crate::mutation::Mutation;
use crate::probe::{Probe, StoreProfile};
use crate::protocol::{ETag, EtagForm, Outcome, PutMode, Request};
use crate::record::MemberInfo;
use crate::record::{LeaseRecord, TERMS_PER_SECOND};
use crate::time::Instant;
use std::collections::VecDeque;
use std::time::Duration;

/// Upper bound on requests in one step, so that a `tick` returns in bounded time.
pub const MAX_REQUESTS_PER_TICK: usize = 4;

/// The request-rate bound, whatever the store answers: in any window of this many retry
/// periods, an elector sends at most [`MAX_REQUESTS_PER_RATE_WINDOW`] requests for the lease
/// object and its own member object (4 per retry period on average). On top come quorum
/// checks (LIST pages and member bodies, which grow with the members: at most one check per
/// heartbeat interval, or per retry period while checks fail) and, with `probe_store`, the
/// probe (at most [`crate::probe::MAX_PROBE_REQUESTS`] once per elector: on every call of a
/// stateless one). A stateless elector, a fresh instance per call, cannot count across
/// calls: it sends at most [`MAX_REQUESTS_PER_TICK`] per call and, after a call that made no
/// progress, asks to be called again no sooner than a retry period later, so a caller that
/// follows `next_step_in` stays within one call of the bound. The simulator, the model
/// checker, the fuzzer and the hostile-store tests all hold electors to it.
pub const RATE_WINDOW_RETRY_PERIODS: u32 = 5;
/// See [`RATE_WINDOW_RETRY_PERIODS`].
pub const MAX_REQUESTS_PER_RATE_WINDOW: usize = 20;

/// Whether `request` counts towards the request-rate bound (see
/// [`RATE_WINDOW_RETRY_PERIODS`]): all but the quorum check's listings and member reads and
/// the probe's requests.
pub fn counts_towards_rate(request: &Request) -> bool {
    !matches!(
        request,
        Request::ListMembers { .. }
            | Request::GetMember { .. }
            | Request::PutProbe { .. }
            | Request::DeleteProbe { .. }
    )
}

/// The leader as this node currently sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderInfo {
    pub node_id: String,
    pub term: u64,
    pub metadata: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DemoteReason {
    /// No renewal could be confirmed within the renew deadline.
    RenewDeadlineExceeded,
    /// The lease record no longer names this elector (taken over, removed, or written by
    /// another process with the same node id).
    LeaseLost { holder: Option<String> },
    /// [`Elector::resign`] was called.
    Resigned,
    /// A fatal error while leading (see [`Elector::take_error`]).
    Error,
    /// Fewer than the quorum of members were confirmed fresh for longer than the grace.
    QuorumLost,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// This node became leader; `term` is its fencing token.
    Elected { term: u64 },
    /// This node stopped leading.
    Demoted { term: u64, reason: DemoteReason },
    /// The leader as seen from here changed (another node, another term, or none).
    LeaderChanged { leader: Option<LeaderInfo> },
    /// Fewer than the quorum of members are fresh (a leader reports it when it steps down).
    QuorumLost { fresh: u32, needed: u32 },
    /// Enough members are fresh again.
    QuorumRestored { fresh: u32 },
}

/// The lease object as an elector last read it, judged at some instant: more than "who
/// leads", for observers that want to know why nobody does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseView {
    /// Not read yet (or no read succeeded).
    Unknown,
    /// No lease object: a new election, or someone deleted it (not yet marked vacant).
    Missing,
    /// Held by `leader`; `live`: its lease has not run out as far as this node can judge.
    Held { leader: LeaderInfo, live: bool },
    /// Released by `by` (its last term): anyone may take it.
    Released { by: LeaderInfo },
    /// Marked vacant where the object was missing (a new election, or a deletion): nobody
    /// leads on it, but a leader of a deleted object may still act for up to `lease`. No node
    /// takes it for `wait` more, as far as this node can judge.
    Vacant { wait: Duration, lease: Duration },
}

/// Something wrong with the deployment that the elector works around but a human should fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Another process writes the lease with this node's id (a copied config, a replica
    /// that was not really stopped). It is treated as any other node; give each its own id.
    DuplicateNodeId,
    /// The store refused `If-Match` with the quoted ETag it had just returned and took the
    /// bare one (Ceph RGW): the elector switched; the setting `unquoted-etags` saves a
    /// stateless elector a refused write and a read on every write.
    StoreNeedsUnquotedEtags,
    /// This (stateful) elector's first read found a lease that had expired long before by
    /// the store's clock: it takes over only after watching it for lease + grace, so if every
    /// call opens a new elector (an HTTP handler), none ever will: open it stateless.
    OpenedOnAnExpiredLease,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub role: Role,
    pub leader: Option<LeaderInfo>,
    /// The term, while leading.
    pub fencing_token: Option<u64>,
    /// How much longer this node's leadership is valid without a further renewal; zero when
    /// not leading.
    pub valid_for: Duration,
    /// When the elector next needs a step.
    pub next_step_in: Duration,
    /// The last transient problem, if the last attempt failed (the elector is retrying).
    pub last_error: Option<Error>,
    /// With quorum on: the members as this node (leading) or the leader (following) last
    /// judged them.
    pub members: Vec<MemberInfo>,
    pub problems: Vec<Problem>,
    /// What changed since the previous call that returned events (empty from
    /// [`Elector::status`]).
    pub events: Vec<Event>,
    /// Requests sent by the call that returned this status.
    pub requests: u32,
}

/// What we last saw of the lease object.
#[derive(Clone, Debug)]
enum View {
    /// Not read yet.
    Unknown,
    /// The store said there is no lease object.
    Missing,
    Present(Box<Observed>),
}

#[derive(Clone, Debug)]
struct Observed {
    etag: ETag,
    record: LeaseRecord,
    /// When this ETag was first seen, on our clock: the start of the observed-time rule.
    observed_at: Instant,
    /// The store's `Last-Modified` of this version (Unix seconds).
    last_modified: Option<u64>,
    /// The store's `Date` at the last read of this version; `None` when we know the version
    /// only from our own write.
    date: Option<u64>,
    /// We watched this record replace a held record of the same holder and term: a release
    /// we saw happen (so not an older record restored by someone).
    release_seen: bool,
    /// Known only from our own write, not yet read back: no store clock to judge it by.
    from_write: bool,
}

impl Observed {
    /// The record's age by the store's own clock, `Date − Last-Modified`.
    fn store_age(&self) -> Option<Duration> {
        let (date, modified) = (self.date?, self.last_modified?);
        Some(Duration::from_secs(date.saturating_sub(modified)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteKind {
    /// Mark a missing lease object vacant (nobody leads on it).
    Vacate,
    /// Take a lease that is released, expired or vacant: a new term.
    Acquire,
    /// Stateless: continue this node's own lease from an earlier invocation: same term.
    Resume,
    /// Renew our own lease: same term.
    Renew,
    /// Mark our lease released: same term.
    Release,
}

#[derive(Clone, Debug)]
struct Write {
    kind: WriteKind,
    mode: PutMode,
    record: LeaseRecord,
    conflicts: u8,
    /// When this write was first sent. Validity is counted from here: the earliest moment the
    /// write can have been applied, so the safe end of any 409-retried attempts.
    first_sent: Option<Instant>,
    /// The store answered 412 (or 404): its condition did not hold, as the store judged it.
    refused: bool,
}

#[derive(Clone, Debug)]
enum Pending {
    Read,
    Write(Write),
    Member(MemberRequest),
    Probe,
}

#[derive(Clone, Debug)]
struct Leadership {
    term: u64,
    /// ETag of our last confirmed write: the condition of the next renewal.
    etag: ETag,
    /// The record as we last wrote it.
    record: LeaseRecord,
    /// `send time of the last confirmed write + lease × (1 − drift)`.
    valid_until: Instant,
    /// `send time of the last confirmed write + renew_deadline`: step down here.
    deadline: Instant,
    renew_due: Instant,
}

/// One node's view of one election. See the module docs for the call order and guarantees.
#[derive(Clone, Debug)]
pub struct Elector {
    config: ElectionConfig,
    rng: SplitMix64,
    /// Stateful electors: a random id written into every record, by which this elector (and
    /// only this one) recognises its own records. Stateless: none (see `own_nonces`).
    instance: Option<String>,
    view: View,
    leadership: Option<Leadership>,
    in_flight: Option<Pending>,
    /// A write decided on the last answer, to be sent next (acquire after a read, 409 retry).
    planned: Option<(Instant, Write)>,
    /// A write whose answer was not a clear yes: settled by the next read (nonce comparison).
    unconfirmed: Option<Write>,
    /// When to read next (follower poll, read-back, retry after a failed read).
    read_due: Instant,
    /// Set by [`Elector::resign`]: release what is ours, then only observe.
    resigned: bool,
    /// Set by [`Elector::query`]: read at once, and let nothing the read shows lead to a write.
    query_pending: bool,
    /// Highest term seen in any record, so a new term is above it whatever the store holds.
    highest_term_seen: u64,
    /// Longest lease seen in any record, or set as the longest in use: what a vacancy this
    /// node writes (or raises) must cover.
    longest_lease_seen: Duration,
    /// Nonces of this elector's recent writes: a record carrying one was written here.
    own_nonces: VecDeque<String>,
    /// Stateless: a write of ours lost to a write naming our node id that we did not make
    /// (an overlapping invocation of this node). This instance resumes nothing after that.
    lost_round_to_own_id: bool,
    /// A record naming our node id but written elsewhere changed while we watched.
    duplicate_id: bool,
    /// The first record this (stateful) elector read had expired by the store's clock long
    /// before; cleared when the record changes (see [`Problem::OpenedOnAnExpiredLease`]).
    opened_on_expired: bool,
    /// After a quorum loss: release our record once the validity we promised has passed.
    release_due: Option<Instant>,
    reported_leader: Option<(String, u64)>,
    events: VecDeque<Event>,
    fatal: Option<Error>,
    last_error: Option<Error>,
    /// How `If-Match` and `If-None-Match` carry ETags: the form the store accepts, as far as
    /// this elector knows (see `follow::settle`).
    etag_form: EtagForm,
    /// Writes the store refused on an unchanged object since one was applied: the first
    /// switches the ETag form; more mean the store refuses both forms.
    etag_refusals: u8,
    /// After a write the store did not apply, no lease write goes out before this (the rate
    /// bound: a round that made no progress is not repeated at once).
    write_backoff_until: Option<Instant>,
    /// Heartbeats and quorum checks (inert when quorum is off).
    members: Members,
    /// The store probe still to run before anything else (with `probe_store`).
    probe: Option<Probe>,
    /// What the probe found.
    profile: Option<StoreProfile>,
    /// The probe refused the store: this elector never sends an election request.
    refused: Option<Error>,
    /// While leading: since when no quorum check has confirmed the quorum (a check found too
    /// few members, or failed).
    quorum_unconfirmed_since: Option<Instant>,
    /// The last quorum check found too few members (reported once per change).
    quorum_lost: bool,
    mutation: Option<Mutation>,
    /// Local wall clock, only for [`Mutation::TakeoverByRecordTimestamp`].
    wall_clock_ms: u64,
    /// The call in progress (see `call`).
    call: Option<call::Call>,
}

/// How many of our own write nonces are remembered (a tick sends at most a handful).
const OWN_NONCES: usize = 16;

impl Elector {
    /// A new elector. `config` must have passed [`ElectionConfig::validate`]; `seed` (from a
    /// real random source in production) drives nonces, jitter and the instance id.
    pub fn new(config: ElectionConfig, now: Instant, seed: u64) -> Elector {
        let members = Members::new(
            config.quorum,
            config.timings.store_clock_skew,
            &config.node_id,
            &config.metadata,
            config.keys().members,
            now,
        );
        let mut rng = SplitMix64(seed);
        let instance = (!config.stateless).then(|| format!("i-{:016x}", rng.next_u64()));
        let longest_lease = config.timings.longest_lease.max(config.timings.lease);
        Elector {
            probe: config.probe_store.then(|| Probe::new(rng.scratch_name())),
            etag_form: config.etag_form,
            etag_refusals: 0,
            write_backoff_until: None,
            profile: None,
            refused: None,
            members,
            quorum_unconfirmed_since: None,
            quorum_lost: false,
            config,
            rng,
            instance,
            view: View::Unknown,
            leadership: None,
            in_flight: None,
            planned: None,
            unconfirmed: None,
            read_due: now,
            resigned: false,
            query_pending: false,
            highest_term_seen: 0,
            longest_lease_seen: longest_lease,
            own_nonces: VecDeque::new(),
            lost_round_to_own_id: false,
            duplicate_id: false,
            opened_on_expired: false,
            release_due: None,
            reported_leader: None,
            events: VecDeque::new(),
            fatal: None,
            last_error: None,
            mutation: None,
            wall_clock_ms: 0,
            call: None,
        }
    }

    /// Break one protocol rule (simulator and model-checker mutation tests only).
    #[cfg(feature = "mutations")]
    pub fn set_mutation(&mut self, mutation: Option<Mutation>) {
        self.mutation = mutation;
        self.members.set_mutation(mutation);
        if self.probe.is_some() {
            self.probe = Some(self.new_probe());
        }
    }

    /// The local wall clock, read only by [`Mutation::TakeoverByRecordTimestamp`].
    #[cfg(feature = "mutations")]
    pub fn set_wall_clock(&mut self, unix_ms: u64) {
        self.wall_clock_ms = unix_ms;
    }

    fn mutated(&self, m: Mutation) -> bool {
        self.mutation == Some(m)
    }

    /// A store probe with a scratch object of its own.
    fn new_probe(&mut self) -> Probe {
        if self.mutated(Mutation::SharedProbeScratch) {
            return Probe::new("shared".into()); // the old key: one per node id
        }
        Probe::new(self.rng.scratch_name())
    }

    pub fn config(&self) -> &ElectionConfig {
        &self.config
    }

    /// This elector's instance id (stateful electors), as written into its records.
    pub fn instance(&self) -> Option<&str> {
        self.instance.as_deref()
    }

    /// What the store probe found, once it ran (with `probe_store`).
    pub fn store_profile(&self) -> Option<&StoreProfile> {
        self.profile.as_ref()
    }

    // ----- handlers -------------------------------------------------------------------------

    /// Advance time: step down when the renew deadline has passed or the quorum has been
    /// unconfirmed for too long, drop stale plans.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(e) = &self.refused {
            // Sticky: a store that ignores conditions is never written to, and every call
            // says so. The next due time stays a lease ahead, never in a loop.
            self.fatal.get_or_insert_with(|| e.clone());
            if now >= self.read_due {
                let t = &self.config.timings;
                self.read_due = now + t.lease.max(t.retry_period);
            }
        }
        if let Some(l) = &self.leadership {
            if now >= l.deadline {
                self.step_down(DemoteReason::RenewDeadlineExceeded);
            }
        }
        self.check_quorum_grace(now);
        if let Some((planned_at, _)) = &self.planned {
            // A plan based on an old read is dropped; the next read decides afresh.
            if now > *planned_at + self.config.timings.retry_period {
                self.planned = None;
            }
        }
        self.refresh_leader(now);
    }

    /// Feed the answer to the request last returned by [`Elector::poll_request`]. `now` is
    /// when the answer arrived. (An answer to no request is ignored.)
    pub fn handle_response(&mut self, now: Instant, outcome: Outcome) {
        match self.in_flight.take() {
            Some(Pending::Read) => self.on_read(now, outcome),
            Some(Pending::Write(w)) => self.on_write(now, w, outcome),
            Some(Pending::Member(r)) => self.on_member(now, r, outcome),
            Some(Pending::Probe) => self.on_probe(now, outcome),
            None => {} // No request outstanding: nothing to match the answer to.
        }
        self.handle_timeout(now);
    }

    /// Stop leading now and release the lease (a conditional write of a released record, so
    /// terms stay monotonic). The elector then only observes; open a new one to stand again.
    fn resign(&mut self, now: Instant) {
        self.resigned = true;
        self.planned = None;
        self.release_due = None;
        self.step_down(DemoteReason::Resigned);
        match self.release() {
            Some(w) => self.planned = Some((now, w)),
            // Unknown, or not ours as far as we know: read, and release if it is ours.
            None => self.read_now(now),
        }
        self.refresh_leader(now);
    }

    /// Resign, and remove this node's member object so it no longer counts towards a quorum.
    fn leave(&mut self, now: Instant) {
        self.resign(now);
        self.members.leave();
    }

    /// An observer query ("who leads?"): read the record at once. What the read shows never
    /// leads to a write, not even taking a free lease; a leader knows the answer already.
    fn query(&mut self) {
        self.query_pending = self.leadership.is_none();
    }

    /// The answer to a query: the holder named by a held record while its lease is live as
    /// far as this node can judge (by its own observation and by the store's clock), whoever
    /// it names (in stateless mode, an earlier instance of this very node).
    fn queried_leader(&self, now: Instant) -> Option<LeaderInfo> {
        if self.leadership.is_some() {
            return self.current_leader(now);
        }
        match &self.view {
            View::Present(o) if o.record.is_held() && self.looks_live(now, o) => {
                Some(leader_of(&o.record))
            }
            _ => None,
        }
    }

    // ----- pollers --------------------------------------------------------------------------

    /// The next request to send, if one is due at `now`, whatever call asks (see
    /// [`Elector::poll_request`] for a call's). `now` is taken as its send time.
    fn next_request(&mut self, now: Instant) -> Option<Request> {
        if self.in_flight.is_some() {
            return None;
        }
        let mut pending = self.next_action(now)?;
        if let Pending::Write(w) = &mut pending {
            w.first_sent.get_or_insert(now);
            self.remember_nonce(w.record.nonce.clone());
        }
        let request = match &pending {
            Pending::Read => Request::Get {
                if_none_match: match &self.view {
                    // A read-back needs the body to compare the nonce, and a version known
                    // only from our own write needs its Last-Modified: read those in full.
                    View::Present(o) if self.unconfirmed.is_none() && !o.from_write => {
                        Some(o.etag.in_form(self.etag_form))
                    }
                    _ => None,
                },
            },
            Pending::Write(w) => Request::Put {
                mode: w.mode.clone(),
                body: w.record.encode(),
            },
            Pending::Member(MemberRequest::Heartbeat) => Request::PutMember {
                body: self.members.body().to_vec(),
            },
            Pending::Member(MemberRequest::Get { node }) => {
                Request::GetMember { node: node.clone() }
            }
            Pending::Member(MemberRequest::List { continuation }) => Request::ListMembers {
                continuation: continuation.clone(),
            },
            Pending::Member(MemberRequest::Leave) => Request::DeleteMember,
            Pending::Probe => self.probe.as_ref()?.poll_request()?,
        };
        self.in_flight = Some(pending);
        Some(request)
    }

    /// The next event, oldest first.
    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When the next step is needed. Changes after any handler call.
    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        if self.refused.is_some() || self.probe.is_some() {
            // Nothing else goes out before the probe has passed (or ever, once it refused
            // the store): the next step is the probe's retry (or the refusal's report).
            return self.read_due;
        }
        if let Some((at, _)) = &self.planned {
            return *at;
        }
        // The due times of what `next_action` may send, and nothing else: a due time it would
        // not act on would make the caller call again at once, for nothing.
        let settling = self.unconfirmed.is_some();
        let mut due = match &self.leadership {
            // A leader renews, reads only to settle a write, and steps down at its deadline.
            Some(l) => {
                let mut due = if settling { self.read_due } else { l.renew_due };
                due = due.min(l.deadline);
                if let Some(since) = self.quorum_unconfirmed_since {
                    due = due.min(since + self.members.config().grace);
                }
                due
            }
            // A follower polls (or settles a write), and releases after a quorum loss.
            None => match self.release_due {
                Some(at) if !settling => self.read_due.min(at),
                _ => self.read_due,
            },
        };
        if let Some(m) = self.members.next_due() {
            due = due.min(m);
        }
        due
    }

    /// The lease object as this elector last read it, judged at `now` (see [`LeaseView`]).
    pub fn lease_view(&self, now: Instant) -> LeaseView {
        let o = match &self.view {
            View::Unknown => return LeaseView::Unknown,
            View::Missing => return LeaseView::Missing,
            View::Present(o) => o,
        };
        let r = &o.record;
        if r.vacant {
            let wait = self.takeover_wait(r);
            let by_observation = (o.observed_at + wait).saturating_since(now);
            let left = match (self.config.stateless, o.store_age()) {
                (true, Some(age)) => self.store_clock_wait(wait).saturating_sub(age),
                _ => by_observation,
            };
            return LeaseView::Vacant {
                wait: left,
                lease: Duration::from_millis(r.lease_ms).max(self.longest_lease_seen),
            };
        }
        if r.released {
            return LeaseView::Released { by: leader_of(r) };
        }
        let live = match &self.leadership {
            Some(l) => now < l.valid_until,
            None => self.looks_live(now, o),
        };
        LeaseView::Held {
            leader: leader_of(r),
            live,
        }
    }

    /// Whether this elector has read the lease at least once (so its status is knowledge,
    /// not ignorance: a fresh instance whose read failed knows nothing about who leads).
    fn knows_lease(&self) -> bool {
        !matches!(self.view, View::Unknown)
    }

    /// A fatal error from the last step, once; the elector retries on later steps.
    fn take_error(&mut self) -> Option<Error> {
        self.fatal.take()
    }

    /// Whether a record of ours is still unreleased (after [`Elector::resign`]: the release
    /// is not confirmed yet).
    fn release_pending(&self) -> bool {
        self.resigned
            && matches!(&self.view, View::Present(o) if o.record.is_held() && self.is_mine(&o.record))
    }

    pub fn status(&self, now: Instant) -> Status {
        let leading = self.leadership.as_ref().filter(|l| now < l.valid_until);
        let mut problems = Vec::new();
        if self.duplicate_id {
            problems.push(Problem::DuplicateNodeId);
        }
        if self.etag_form == EtagForm::Bare && self.config.etag_form == EtagForm::Quoted {
            problems.push(Problem::StoreNeedsUnquotedEtags);
        }
        if self.opened_on_expired {
            problems.push(Problem::OpenedOnAnExpiredLease);
        }
        Status {
            role: if leading.is_some() {
                Role::Leader
            } else {
                Role::Follower
            },
            leader: self.current_leader(now),
            fencing_token: leading.map(|l| l.term),
            valid_for: leading.map_or(Duration::ZERO, |l| l.valid_until.saturating_since(now)),
            next_step_in: self.poll_timeout().saturating_since(now),
            last_error: self.last_error.clone(),
            members: match (&self.leadership, &self.view) {
                (Some(_), _) => self.members.view().to_vec(),
                (None, View::Present(o)) => o.record.members.clone(),
                _ => Vec::new(),
            },
            problems,
            events: Vec::new(),
            requests: 0,
        }
    }

    // ----- the decision -----------------------------------------------------------------------

    /// What to send now, in order of precedence.
    fn next_action(&mut self, now: Instant) -> Option<Pending> {
        // 1. A leader past its renew deadline steps down before anything else.
        self.handle_timeout(now);
        //    A store that failed the probe gets nothing; one not probed yet gets the probe.
        if self.refused.is_some() {
            return None;
        }
        if self.probe.is_some() {
            return (now >= self.read_due || self.query_pending).then_some(Pending::Probe);
        }
        // 2. An observer query reads at once.
        if self.query_pending {
            return Some(Pending::Read);
        }
        // 3. A write decided on the last answer goes out at once.
        if let Some((_, w)) = self.planned.take() {
            return Some(Pending::Write(w));
        }
        // 4. A write without a clear answer is settled by reading the record back; no other
        //    lease request goes out until then.
        let settling = self.unconfirmed.is_some();
        if settling && now >= self.read_due {
            return Some(Pending::Read);
        }
        // 5. A leader renews when due.
        if !settling {
            if let Some(w) = self.renewal_due(now) {
                return Some(Pending::Write(w));
            }
        }
        // 6. Member duties: heartbeat, a quorum check in progress or due.
        if let Some(r) = self.members.poll(now) {
            return Some(Pending::Member(r));
        }
        // 7. After a quorum loss, the release waits for the end of the promised window.
        if !settling {
            if let Some(w) = self.delayed_release(now) {
                return Some(Pending::Write(w));
            }
        }
        // 8. Followers poll (a leader does not); a read may lead to a takeover or a release
        //    (see `follow::after_read`).
        (!settling && self.leadership.is_none() && now >= self.read_due).then_some(Pending::Read)
    }

    /// Read the record at the next step, whatever the poll schedule.
    fn read_now(&mut self, now: Instant) {
        self.read_due = self.read_due.min(now);
    }

    fn remember_nonce(&mut self, nonce: String) {
        if !self.own_nonces.contains(&nonce) {
            if self.own_nonces.len() == OWN_NONCES {
                self.own_nonces.pop_front();
            }
            self.own_nonces.push_back(nonce);
        }
    }

    /// The condition of a write over the version with `etag`, in the form the store accepts.
    fn if_match(&self, etag: &ETag) -> PutMode {
        PutMode::Update(etag.in_form(self.etag_form))
    }

    /// Was `record` written by this elector? Stateful: it carries our instance id. Stateless:
    /// it carries one of our nonces (an instance lives for one invocation).
    fn is_mine(&self, record: &LeaseRecord) -> bool {
        if self.mutated(Mutation::TrustNodeId) {
            return record.holder == self.config.node_id;
        }
        match &self.instance {
            Some(i) => record.instance.as_ref() == Some(i),
            None => self.own_nonces.contains(&record.nonce),
        }
    }

    fn fail(&mut self, now: Instant, e: Error) {
        self.step_down(DemoteReason::Error);
        self.planned = None;
        self.fatal = Some(e);
        self.read_due = now + self.config.timings.retry_period;
    }

    fn retry_read_later(&mut self, now: Instant, e: Error) {
        self.last_error = Some(e);
        self.read_due = now + self.config.timings.retry_period;
    }

    fn current_leader(&self, now: Instant) -> Option<LeaderInfo> {
        if let Some(l) = &self.leadership {
            return Some(LeaderInfo {
                node_id: self.config.node_id.clone(),
                term: l.term,
                metadata: l.record.metadata.clone(),
            });
        }
        match &self.view {
            View::Present(o)
                if o.record.is_held() && !self.is_mine(&o.record) && self.looks_live(now, o) =>
            {
                Some(leader_of(&o.record))
            }
            _ => None,
        }
    }

    fn refresh_leader(&mut self, now: Instant) {
        let leader = self.current_leader(now);
        let key = leader.as_ref().map(|l| (l.node_id.clone(), l.term));
        if key != self.reported_leader {
            self.reported_leader = key;
            self.events.push_back(Event::LeaderChanged { leader });
        }
    }
}

fn leader_of(record: &LeaseRecord) -> LeaderInfo {
    LeaderInfo {
        node_id: record.holder.clone(),
        term: record.term,
        metadata: record.metadata.clone(),
    }
}

/// The lowest term the store's clock allows at Unix second `date`.
fn clock_term(date: u64) -> u64 {
    date.saturating_mul(TERMS_PER_SECOND)
}

fn store_bug(what: &str) -> Error {
    Error::BadAnswer(what.into())
}

/// A small deterministic generator for nonces, jitter and instance ids (Vigna's SplitMix64).
/// The seed comes from wasi:random in the component and from the schedule seed in the
/// simulator.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn nonce(&mut self) -> String {
        format!("{:016x}{:016x}", self.next_u64(), self.next_u64())
    }

    /// A name for one probe run's scratch object.
    fn scratch_name(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests;
