//! The election state machine. Sans-IO: it reads no clock, sends nothing and never blocks.
//! Time comes in as [`Instant`]s from a monotonic clock; requests go out as [`Request`]s and
//! come back as [`Outcome`]s, so the same code runs inside the WebAssembly component, in unit
//! tests and in the deterministic simulator.
//!
//! # Call order
//! 1. [`Elector::handle_timeout`] with the current time (an extra call is harmless).
//! 2. While [`Elector::poll_request`] returns a request: send it, then hand the answer to
//!    [`Elector::handle_response`]. One request is in flight at a time. Stop after
//!    [`MAX_REQUESTS_PER_TICK`] to keep a step bounded.
//! 3. Drain [`Elector::poll_event`], read [`Elector::status`] and [`Elector::take_error`],
//!    and call again at [`Elector::poll_timeout`].
//!
//! # What is guaranteed
//! At most one node believes it leads at any instant, provided (a) node ids are unique among
//! live nodes, (b) the store honours `If-None-Match` / `If-Match` atomically, and (c) clocks
//! run at rates within `max_drift_ppm` of each other. Absolute clock offsets do not matter:
//! no node ever compares its clock with a timestamp written by another node.
//! - Every write to the lease is conditional (create with `If-None-Match: *`, then `If-Match`
//!   the ETag this node last read or wrote), so of two racing writers at most one wins.
//! - A leader believes it leads until `send time of its last confirmed write + lease × (1 −
//!   drift)`, and steps down earlier, at `+ renew_deadline`, if it cannot confirm a renewal.
//! - A follower takes over only a released record, or one it has seen unchanged for
//!   `lease + grace` on its own clock (client-go's observed-time rule), or, in stateless mode,
//!   one the store's own clock says is older than `lease + grace + 1 s`.
//! - The term is a fencing token: +1 on every acquisition, unchanged across renewals. Pass it
//!   to whatever the leader writes to, so a deposed leader that still acts (a long pause) is
//!   refused there. This library cannot stop a paused process from acting; fencing can.

use crate::config::ElectionConfig;
use crate::error::Error;
use crate::members::{CheckResult, MemberInfo, MemberRequest, Members};
use crate::probe::{Probe, StoreProfile};
use crate::protocol::{ETag, Outcome, PutMode, Request};
use crate::record::{LeaseRecord, FORMAT};
use crate::time::Instant;
use std::collections::VecDeque;
use std::time::Duration;

/// Upper bound on requests in one step, so that a `tick` returns in bounded time.
pub const MAX_REQUESTS_PER_TICK: usize = 4;

/// How often a write that got `409 ConditionalRequestConflict` is sent again at once before it
/// is settled by reading the record back.
const MAX_CONFLICT_RETRIES: u8 = 3;

/// Deliberate protocol bugs, one at a time, to show that the simulator's checker catches each.
/// They can only be switched on with the `mutations` feature ([`Elector::set_mutation`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mutation {
    /// Renew with an unconditional PUT.
    UnconditionalRenewal,
    /// Count the whole lease as valid and wait no grace: no allowance for clock drift.
    NoDriftMargin,
    /// Judge expiry by the record's `Last-Modified` against the local wall clock (gonsensus).
    TakeoverByRecordTimestamp,
    /// Take `409 Conflict` as a lost race instead of retrying.
    ConflictAsLost,
    /// Keep leading below quorum (never release for a lost quorum).
    IgnoreQuorum,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
}

/// The leader as this node currently sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderInfo {
    pub node_id: String,
    pub term: u64,
    pub metadata: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DemoteReason {
    /// No renewal could be confirmed within the renew deadline.
    RenewDeadlineExceeded,
    /// The lease record no longer names this node (taken over, or removed).
    LeaseLost { holder: Option<String> },
    /// [`Elector::resign`] was called.
    Resigned,
    /// A fatal error while leading (see [`Elector::take_error`]).
    Error,
    /// Fewer than the quorum of members were fresh for longer than the grace.
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
    /// Fewer than the quorum of members are fresh (a leader reports it when it releases).
    QuorumLost { fresh: u32, needed: u32 },
    /// Enough members are fresh again.
    QuorumRestored { fresh: u32 },
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
    /// The store's `Last-Modified` of this version (1 s resolution).
    last_modified: Option<u64>,
    /// `Date - Last-Modified` at the last read: the record's age by the store's clock.
    store_age: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteKind {
    /// Take a lease that is missing, released or expired: next term.
    Acquire,
    /// Continue a lease that already names this node (a fresh instance): same term.
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
#[derive(Debug)]
pub struct Elector {
    config: ElectionConfig,
    rng: SplitMix64,
    view: View,
    leadership: Option<Leadership>,
    in_flight: Option<Pending>,
    /// A write decided on the last answer, to be sent next (acquire after a read, 409 retry).
    planned: Option<(Instant, Write)>,
    /// A write whose answer was not a clear yes: settled by the next read (nonce comparison).
    unconfirmed: Option<Write>,
    /// When to read next (follower poll, read-back, retry after a failed read).
    read_due: Instant,
    /// Set by [`Elector::resign`]: release what names us, then only observe.
    resigned: bool,
    /// Set by [`Elector::query`]: read at once, and let nothing the read shows lead to a write.
    query_pending: bool,
    /// The last term this node led and gave up; re-acquiring it means a new term.
    stepped_down_term: Option<u64>,
    /// Highest term seen in any record, so a deleted lease object does not reset terms.
    highest_term_seen: u64,
    reported_leader: Option<(String, u64)>,
    events: VecDeque<Event>,
    fatal: Option<Error>,
    last_error: Option<Error>,
    /// Heartbeats and quorum checks (inert when quorum is off).
    members: Members,
    /// The store probe still to run before anything else (with `probe_store`).
    probe: Option<Probe>,
    /// What the probe found.
    profile: Option<StoreProfile>,
    /// The probe refused the store: this elector never sends an election request.
    refused: Option<Error>,
    /// Since when a leader's checks have found fewer than the quorum.
    below_quorum_since: Option<Instant>,
    /// The last quorum check found too few members (reported once per change).
    quorum_lost: bool,
    mutation: Option<Mutation>,
    /// Local wall clock, only for [`Mutation::TakeoverByRecordTimestamp`].
    wall_clock_ms: u64,
}

impl Elector {
    /// A new elector. `config` must have passed [`ElectionConfig::validate`]; `seed` (from a
    /// real random source in production) drives nonces and jitter.
    pub fn new(config: ElectionConfig, now: Instant, seed: u64) -> Elector {
        let members = Members::new(
            config.quorum,
            &config.node_id,
            &config.metadata,
            config.keys().members,
            now,
        );
        Elector {
            probe: config.probe_store.then(Probe::new),
            profile: None,
            refused: None,
            members,
            below_quorum_since: None,
            quorum_lost: false,
            config,
            rng: SplitMix64(seed),
            view: View::Unknown,
            leadership: None,
            in_flight: None,
            planned: None,
            unconfirmed: None,
            read_due: now,
            resigned: false,
            query_pending: false,
            stepped_down_term: None,
            highest_term_seen: 0,
            reported_leader: None,
            events: VecDeque::new(),
            fatal: None,
            last_error: None,
            mutation: None,
            wall_clock_ms: 0,
        }
    }

    /// Break one protocol rule (simulator mutation tests only).
    #[cfg(feature = "mutations")]
    pub fn set_mutation(&mut self, mutation: Option<Mutation>) {
        self.mutation = mutation;
    }

    /// The local wall clock, read only by [`Mutation::TakeoverByRecordTimestamp`].
    #[cfg(feature = "mutations")]
    pub fn set_wall_clock(&mut self, unix_ms: u64) {
        self.wall_clock_ms = unix_ms;
    }

    fn mutated(&self, m: Mutation) -> bool {
        self.mutation == Some(m)
    }

    pub fn config(&self) -> &ElectionConfig {
        &self.config
    }

    // ----- handlers -------------------------------------------------------------------------

    /// What the store probe found, once it ran (with `probe_store`).
    pub fn store_profile(&self) -> Option<&StoreProfile> {
        self.profile.as_ref()
    }

    /// Advance time: step down when the renew deadline has passed, drop stale plans.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(e) = &self.refused {
            // Sticky: a store that ignores conditions is never written to.
            self.fatal.get_or_insert_with(|| e.clone());
        }
        if let Some(l) = &self.leadership {
            if now >= l.deadline {
                self.step_down(DemoteReason::RenewDeadlineExceeded);
            }
        }
        if let Some((planned_at, _)) = &self.planned {
            // A plan based on an old read is dropped; the next read decides afresh.
            if now > *planned_at + self.config.timings.retry_period {
                self.planned = None;
            }
        }
        self.refresh_leader(now);
    }

    /// Feed the answer to the request last returned by [`Elector::poll_request`]. `now` is
    /// when the answer arrived.
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
    pub fn resign(&mut self, now: Instant) {
        self.resigned = true;
        self.planned = None;
        self.step_down(DemoteReason::Resigned);
        match self.release() {
            Some(w) => self.planned = Some((now, w)),
            // Unknown, or not ours as far as we know: read, and release if it names us.
            None => self.read_now(now),
        }
        self.refresh_leader(now);
    }

    /// Resign, and remove this node's member object so it no longer counts towards a quorum.
    pub fn leave(&mut self, now: Instant) {
        self.resign(now);
        self.members.leave();
    }

    /// Read the record at the next step, whatever the poll schedule.
    fn read_now(&mut self, now: Instant) {
        self.read_due = self.read_due.min(now);
    }

    /// An observer query ("who leads?"): read the record at once. What the read shows never
    /// leads to a write, not even taking a free lease; a leader knows the answer already.
    pub fn query(&mut self) {
        self.query_pending = self.leadership.is_none();
    }

    /// The query's read has not been answered yet.
    pub fn query_pending(&self) -> bool {
        self.query_pending
    }

    /// The answer to a query: the holder named by the record while its lease is live as far
    /// as this node can judge, whoever it names (in stateless mode, an earlier instance of
    /// this very node).
    pub fn queried_leader(&self, now: Instant) -> Option<LeaderInfo> {
        if self.leadership.is_some() {
            return self.current_leader(now);
        }
        match &self.view {
            View::Present(o) if !o.record.released && !self.expired(now, o) => Some(LeaderInfo {
                node_id: o.record.holder.clone(),
                term: o.record.term,
                metadata: o.record.metadata.clone(),
            }),
            _ => None,
        }
    }

    // ----- pollers --------------------------------------------------------------------------

    /// The next request to send, if one is due at `now`. `now` is taken as its send time.
    #[must_use]
    pub fn poll_request(&mut self, now: Instant) -> Option<Request> {
        if self.in_flight.is_some() {
            return None;
        }
        let mut pending = self.next_action(now)?;
        if let Pending::Write(w) = &mut pending {
            w.first_sent.get_or_insert(now);
        }
        let request = match &pending {
            Pending::Read => Request::Get {
                if_none_match: match &self.view {
                    View::Present(o) if self.unconfirmed.is_none() => Some(o.etag.clone()),
                    _ => None, // a read-back needs the body to compare the nonce
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
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When the next step is needed. Changes after any handler call.
    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        if let Some((at, _)) = &self.planned {
            return *at;
        }
        let lease = match &self.leadership {
            Some(l) if self.unconfirmed.is_none() => l.renew_due.min(l.deadline),
            Some(l) => self.read_due.min(l.deadline),
            None => self.read_due,
        };
        self.members.next_due().map_or(lease, |m| m.min(lease))
    }

    /// A fatal error from the last step, once; the elector retries on later steps.
    pub fn take_error(&mut self) -> Option<Error> {
        self.fatal.take()
    }

    /// Whether a record that names this node is still unreleased (after [`Elector::resign`]:
    /// the release is not confirmed yet).
    pub fn release_pending(&self) -> bool {
        self.resigned && self.names_me_unreleased()
    }

    pub fn status(&self, now: Instant) -> Status {
        let leading = self.leadership.as_ref().filter(|l| now < l.valid_until);
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
        if let Some(l) = self.leadership.as_ref().filter(|_| !settling) {
            if now >= l.renew_due {
                #[allow(unused_mut)]
                let mut mode = PutMode::Update(l.etag.clone());
                #[cfg(feature = "mutations")]
                if self.mutated(Mutation::UnconditionalRenewal) {
                    mode = PutMode::Overwrite;
                }
                let term = l.term;
                return Some(Pending::Write(self.write(WriteKind::Renew, mode, term)));
            }
        }
        // 6. Member duties: heartbeat, a quorum check in progress or due.
        if let Some(r) = self.members.poll(now) {
            return Some(Pending::Member(r));
        }
        // 7. Followers poll (a leader does not); a read may lead to a takeover or a release
        //    (see `after_read`).
        (!settling && self.leadership.is_none() && now >= self.read_due).then_some(Pending::Read)
    }

    /// May this follower take the lease now, and with which write? Steps as in client-go's
    /// `tryAcquireOrRenew`.
    fn takeover(&mut self, now: Instant) -> Option<Write> {
        let (kind, mode, term) = match &self.view {
            View::Unknown => return None,
            // 1. No lease object: create it. Terms continue from the highest we saw, in case
            //    someone deleted the object.
            View::Missing => (
                WriteKind::Acquire,
                PutMode::Create,
                self.highest_term_seen + 1,
            ),
            View::Present(o) => {
                let r = &o.record;
                let update = PutMode::Update(o.etag.clone());
                if r.released {
                    // 2. Released cleanly: free for anyone, next term.
                    (WriteKind::Acquire, update, r.term + 1)
                } else if r.holder == self.config.node_id {
                    // 3. It names us. A fresh instance resumes it (same term); a node that
                    //    stepped down from that term takes it with a new one.
                    if self.stepped_down_term == Some(r.term) {
                        (WriteKind::Acquire, update, r.term + 1)
                    } else {
                        (WriteKind::Resume, update, r.term)
                    }
                } else if self.expired(now, o) {
                    // 4. Someone else's lease, expired by our own observation (or, stateless,
                    //    by the store's clock).
                    (WriteKind::Acquire, update, r.term + 1)
                } else {
                    return None;
                }
            }
        };
        Some(self.write(kind, mode, term))
    }

    /// Mark the record that still names us released (after resigning, or on a lost quorum).
    fn release(&mut self) -> Option<Write> {
        match &self.view {
            View::Present(o) if self.names_me_unreleased() => {
                let (mode, term) = (PutMode::Update(o.etag.clone()), o.record.term);
                Some(self.write(WriteKind::Release, mode, term))
            }
            _ => None,
        }
    }

    fn write(&mut self, kind: WriteKind, mode: PutMode, term: u64) -> Write {
        Write {
            kind,
            mode,
            record: self.next_record(term, kind),
            conflicts: 0,
            first_sent: None,
        }
    }

    /// How long a follower must see a record unchanged before taking it over.
    fn takeover_wait(&self, record: &LeaseRecord) -> Duration {
        let lease = Duration::from_millis(record.lease_ms);
        let t = &self.config.timings;
        if self.mutated(Mutation::NoDriftMargin) {
            return lease;
        }
        lease + t.grace.max(t.drift_allowance(lease))
    }

    fn expired(&self, now: Instant, o: &Observed) -> bool {
        let wait = self.takeover_wait(&o.record);
        if self.mutated(Mutation::TakeoverByRecordTimestamp) {
            // Someone else's timestamp against our clock: wrong whenever clocks disagree.
            let age_s =
                (self.wall_clock_ms / 1000).saturating_sub(o.last_modified.unwrap_or(u64::MAX));
            return Duration::from_secs(age_s) >= wait;
        }
        if now >= o.observed_at + wait {
            return true;
        }
        // Stateless: both times are the store's; +1 s for Last-Modified's resolution.
        self.config.stateless
            && o.store_age
                .is_some_and(|age| age >= wait + Duration::from_secs(1))
    }

    /// The record this node writes next.
    fn next_record(&mut self, term: u64, kind: WriteKind) -> LeaseRecord {
        let renewals = match (&self.view, kind) {
            (View::Present(o), WriteKind::Renew | WriteKind::Resume | WriteKind::Release)
                if o.record.term == term =>
            {
                o.record.renewals + 1
            }
            _ => 0,
        };
        LeaseRecord {
            format: FORMAT.to_string(),
            holder: self.config.node_id.clone(),
            term,
            lease_ms: self.config.timings.lease.as_millis() as u64,
            renewals,
            nonce: self.rng.nonce(),
            released: kind == WriteKind::Release,
            metadata: self.config.metadata.clone(),
            members: if kind == WriteKind::Release {
                Vec::new()
            } else {
                self.members.view().to_vec()
            },
        }
    }

    // ----- answers ----------------------------------------------------------------------------

    fn on_read(&mut self, now: Instant, outcome: Outcome) {
        // Answered, well or not: a query is over (its caller sees any error).
        let query = std::mem::take(&mut self.query_pending);
        match outcome {
            Outcome::Found {
                etag,
                body,
                last_modified,
                date,
            } => match LeaseRecord::decode(&body) {
                Ok(record) => {
                    self.observe(now, etag, record, last_modified, date);
                    self.after_read(now, query);
                }
                Err(foreign) => {
                    // Never written over; a human must look. Retried at the poll interval.
                    self.view = View::Unknown;
                    self.fail(
                        now,
                        Error::ForeignRecord {
                            key: self.config.lease_key(),
                            reason: foreign.0,
                        },
                    );
                }
            },
            Outcome::NotModified { date } => {
                if let View::Present(o) = &mut self.view {
                    o.store_age = age(o.last_modified, date);
                    self.after_read(now, query);
                } else {
                    // 304 to a request without If-None-Match: read again in full.
                    self.retry_read_later(now, store_bug("304 to an unconditional GET"));
                }
            }
            Outcome::NotFound => {
                self.view = View::Missing;
                self.after_read(now, query);
            }
            Outcome::Fatal(e) => self.fail(now, e),
            Outcome::Transient(e) => {
                if query {
                    // Not "nobody leads": the query's caller gets the error.
                    self.fatal = Some(e.clone());
                }
                self.retry_read_later(now, e)
            }
            Outcome::Conflict => self.retry_read_later(now, store_bug("409 to a GET")),
            Outcome::Written { .. }
            | Outcome::PreconditionFailed
            | Outcome::Listed { .. }
            | Outcome::Deleted => {
                self.retry_read_later(now, store_bug("an answer to another request"))
            }
        }
    }

    fn observe(
        &mut self,
        now: Instant,
        etag: ETag,
        record: LeaseRecord,
        last_modified: Option<u64>,
        date: Option<u64>,
    ) {
        self.highest_term_seen = self.highest_term_seen.max(record.term);
        let observed_at = match &self.view {
            // Same version as before: the observed-time clock keeps running.
            View::Present(o) if o.etag == etag => o.observed_at,
            _ => now,
        };
        self.view = View::Present(Box::new(Observed {
            etag,
            record,
            observed_at,
            last_modified,
            store_age: age(last_modified, date),
        }));
    }

    fn after_read(&mut self, now: Instant, query: bool) {
        // A read that settles a failed write is no success yet: the error stays visible
        // until the write is confirmed or retried successfully.
        if self.unconfirmed.is_none() {
            self.last_error = None;
        }
        self.read_due = self.next_poll(now);
        // A write we could not confirm: our nonce in the record means it was applied.
        if let Some(w) = self.unconfirmed.take() {
            if let View::Present(o) = &self.view {
                if o.record.nonce == w.record.nonce {
                    let etag = o.etag.clone();
                    self.write_confirmed(now, w, etag);
                    return;
                }
            }
        }
        if let Some(l) = &mut self.leadership {
            // A leader reads only to settle a write: check that the lease is still ours.
            match &self.view {
                View::Present(o)
                    if o.record.holder == self.config.node_id
                        && o.record.term == l.term
                        && !o.record.released =>
                {
                    if o.etag != l.etag {
                        // An earlier write of ours landed late: renew on top of it at once.
                        l.etag = o.etag.clone();
                        l.record = o.record.clone();
                        l.renew_due = now;
                    } else {
                        l.renew_due = now + self.config.timings.retry_period;
                    }
                }
                View::Present(o) => {
                    let holder = Some(o.record.holder.clone());
                    self.step_down(DemoteReason::LeaseLost { holder });
                }
                _ => self.step_down(DemoteReason::LeaseLost { holder: None }),
            }
            return;
        }
        self.quorum_seen_in_record();
        if query {
            return; // it only looks
        }
        let next = if self.resigned {
            self.release()
        } else {
            self.takeover(now)
        };
        // With quorum on, a candidate acquires only right after a check found enough fresh
        // members; otherwise it checks first and reads again once the check succeeds.
        let next = match next {
            Some(w)
                if matches!(w.kind, WriteKind::Acquire | WriteKind::Resume)
                    && !self.quorum_confirmed(now) =>
            {
                self.members.want_check(now);
                None
            }
            other => other,
        };
        self.planned = next.map(|w| (now, w));
    }

    /// A follower that reported the quorum lost learns it is back from a new leader's record
    /// (a leader only leads with a quorum, and publishes the members it counted).
    fn quorum_seen_in_record(&mut self) {
        if !self.quorum_lost {
            return;
        }
        if let View::Present(o) = &self.view {
            let fresh = o.record.members.iter().filter(|m| m.fresh).count() as u32;
            if !o.record.released && fresh >= self.members.config().size {
                self.quorum_lost = false;
                self.events.push_back(Event::QuorumRestored { fresh });
            }
        }
    }

    fn on_probe(&mut self, now: Instant, outcome: Outcome) {
        let Some(probe) = self.probe.as_mut() else {
            return;
        };
        probe.handle_response(outcome);
        match probe.result().cloned() {
            None => {}
            Some(Ok(profile)) => {
                self.profile = Some(profile);
                self.probe = None;
            }
            Some(Err(e @ Error::ConditionalWritesUnsupported(_))) => {
                self.probe = None;
                self.refused = Some(e.clone());
                self.fatal = Some(e);
                self.query_pending = false; // the query's answer is this error
            }
            Some(Err(e)) => {
                // Could not finish (credentials, network): try again from the start later.
                self.probe = Some(Probe::new());
                self.fail(now, e);
                self.query_pending = false;
            }
        }
    }

    fn quorum_confirmed(&self, now: Instant) -> bool {
        let q = self.members.config();
        !q.enabled()
            || self.members.last_check().is_some_and(|c| {
                c.fresh >= q.size && now <= c.at + self.config.timings.retry_period
            })
    }

    fn on_member(&mut self, now: Instant, request: MemberRequest, outcome: Outcome) {
        let retry = self.config.timings.retry_period;
        if let Outcome::Fatal(e) = outcome {
            self.members.check_failed(now, retry);
            if request == MemberRequest::Heartbeat {
                self.members.heartbeat_done(now, false, retry);
            }
            self.fail(now, e);
            return;
        }
        match (request, outcome) {
            (MemberRequest::Heartbeat, outcome) => {
                let ok = matches!(outcome, Outcome::Written { .. });
                self.note_transient(&outcome);
                self.members.heartbeat_done(now, ok, retry);
            }
            (MemberRequest::Leave, outcome) => {
                let ok = matches!(outcome, Outcome::Deleted | Outcome::NotFound);
                self.note_transient(&outcome);
                self.members.left_done(ok);
            }
            (
                MemberRequest::List { .. },
                Outcome::Listed {
                    entries,
                    continuation,
                    date,
                },
            ) => self.members.listed(entries, continuation, date),
            (MemberRequest::Get { node }, Outcome::Found { etag, body, .. }) => {
                self.members.got(&node, Some(etag), Some(&body))
            }
            (MemberRequest::Get { node }, Outcome::NotFound) => self.members.got(&node, None, None),
            (_, outcome) => {
                self.note_transient(&outcome);
                self.members.check_failed(now, retry);
            }
        }
        let periodic = self.leadership.is_some();
        if let Some(result) = self.members.finish_check(now, periodic) {
            self.on_quorum_check(now, result);
        }
    }

    fn note_transient(&mut self, outcome: &Outcome) {
        if let Outcome::Transient(e) = outcome {
            self.last_error = Some(e.clone());
        }
    }

    /// A quorum check finished: a leader below quorum for longer than the grace releases;
    /// a candidate with enough members reads again and acquires.
    fn on_quorum_check(&mut self, now: Instant, result: CheckResult) {
        let q = *self.members.config();
        let enough = result.fresh >= q.size;
        if enough && self.quorum_lost {
            self.quorum_lost = false;
            self.events.push_back(Event::QuorumRestored {
                fresh: result.fresh,
            });
        }
        let lost = Event::QuorumLost {
            fresh: result.fresh,
            needed: q.size,
        };
        if self.leadership.is_none() {
            if enough {
                self.read_now(now);
            } else if !self.quorum_lost {
                self.quorum_lost = true;
                self.events.push_back(lost);
            }
            return;
        }
        if enough {
            self.below_quorum_since = None;
            return;
        }
        let since = *self.below_quorum_since.get_or_insert(now);
        if now.saturating_since(since) >= q.grace && !self.mutated(Mutation::IgnoreQuorum) {
            self.quorum_lost = true;
            self.events.push_back(lost);
            self.step_down(DemoteReason::QuorumLost);
            // Release with a conditional write, so a candidate with quorum need not wait.
            self.planned = self.release().map(|w| (now, w));
        }
    }

    fn on_write(&mut self, now: Instant, mut w: Write, outcome: Outcome) {
        match outcome {
            Outcome::Written { etag } => {
                self.write_confirmed(now, w, etag);
            }
            Outcome::Conflict if self.mutated(Mutation::ConflictAsLost) => {
                self.step_down(DemoteReason::LeaseLost { holder: None });
                self.read_due = now + self.config.timings.retry_period;
            }
            Outcome::Conflict if w.conflicts < MAX_CONFLICT_RETRIES => {
                // 409: a concurrent write was in progress and ours was not applied; send the
                // same write again (same nonce, so a later read-back still recognises it).
                w.conflicts += 1;
                self.planned = Some((now, w));
            }
            Outcome::Fatal(e) => self.fail(now, e),
            other => {
                // 412, 404, 409 again, timeout, 5xx: whether it landed is read back, never
                // guessed. A 412 can even be our own earlier attempt.
                if let Outcome::Transient(e) = other {
                    self.last_error = Some(e);
                }
                self.unconfirmed = Some(w);
                self.read_due = now;
            }
        }
    }

    fn write_confirmed(&mut self, now: Instant, w: Write, etag: ETag) {
        self.last_error = None;
        let sent_at = w.first_sent.unwrap_or(now);
        let term = w.record.term;
        self.highest_term_seen = self.highest_term_seen.max(term);
        self.view = View::Present(Box::new(Observed {
            etag: etag.clone(),
            record: w.record.clone(),
            observed_at: now,
            last_modified: None,
            store_age: None,
        }));
        self.read_due = self.next_poll(now);
        let t = self.config.timings;
        let deadline = sent_at + t.renew_deadline;
        let may_lead = match w.kind {
            WriteKind::Release => false,
            // A renewal confirmed after we stepped down does not make us leader again; the
            // record names us, so the next takeover re-acquires with a new term.
            WriteKind::Renew => self.leadership.is_some(),
            WriteKind::Acquire | WriteKind::Resume => !self.resigned,
        };
        if !may_lead || now >= deadline {
            // Confirmed too late to act on (or not a leading write): we hold no leadership on
            // this term, and a new one starts with the next term.
            if self.leadership.is_some() {
                self.step_down(DemoteReason::RenewDeadlineExceeded);
            }
            if w.kind != WriteKind::Release {
                self.stepped_down_term = Some(term);
            }
            return;
        }
        let newly_elected = self.leadership.is_none();
        self.leadership = Some(Leadership {
            term,
            etag,
            record: w.record,
            valid_until: sent_at
                + if self.mutated(Mutation::NoDriftMargin) {
                    t.lease
                } else {
                    t.shrink_by_drift(t.lease)
                },
            deadline,
            renew_due: sent_at + t.renew_interval,
        });
        if newly_elected {
            self.events.push_back(Event::Elected { term });
            self.below_quorum_since = None;
            self.members
                .want_check(now + self.config.quorum.heartbeat_interval);
        }
    }

    // ----- helpers ----------------------------------------------------------------------------

    fn step_down(&mut self, reason: DemoteReason) {
        if let Some(l) = self.leadership.take() {
            self.members.stop_checking();
            self.stepped_down_term = Some(l.term);
            self.events.push_back(Event::Demoted {
                term: l.term,
                reason,
            });
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

    /// Next follower poll: one retry period (less up to 20 % jitter so nodes spread out), or
    /// earlier, when the observed lease expires.
    fn next_poll(&mut self, now: Instant) -> Instant {
        let period = self.config.timings.retry_period;
        let jitter = period.mul_f64(self.rng.unit() * 0.2);
        let mut due = now + (period - jitter);
        if let View::Present(o) = &self.view {
            if !o.record.released && o.record.holder != self.config.node_id {
                let expiry = o.observed_at + self.takeover_wait(&o.record);
                if expiry > now {
                    due = due.min(expiry);
                }
            }
        }
        due
    }

    fn names_me_unreleased(&self) -> bool {
        matches!(&self.view, View::Present(o) if o.record.holder == self.config.node_id && !o.record.released)
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
                if !o.record.released
                    && o.record.holder != self.config.node_id
                    && now < o.observed_at + self.takeover_wait(&o.record) =>
            {
                Some(LeaderInfo {
                    node_id: o.record.holder.clone(),
                    term: o.record.term,
                    metadata: o.record.metadata.clone(),
                })
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

fn age(last_modified: Option<u64>, date: Option<u64>) -> Option<Duration> {
    Some(Duration::from_secs(date?.saturating_sub(last_modified?)))
}

fn store_bug(what: &str) -> Error {
    Error::Store {
        status: 0,
        code: "UnexpectedAnswer".into(),
        message: what.into(),
    }
}

/// A small deterministic generator for nonces and jitter (Vigna's SplitMix64). The seed comes
/// from wasi:random in the component and from the schedule seed in the simulator.
#[derive(Debug)]
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

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests;
