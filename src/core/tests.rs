//! One test per protocol rule, driving real electors against the in-memory store on a virtual
//! clock (the store's clock is the virtual clock plus an epoch). `World::faults` lets a test
//! lose, fail or replace answers.

use super::*;
use crate::config::QuorumConfig;
use crate::config::{ElectionConfig, Keys, Timings};
use crate::memstore::{EtagMatching, MemStore};

const KEY: &str = "t/e/lease";
const LEASE: Duration = Duration::from_secs(3);

fn config(node: &str) -> ElectionConfig {
    ElectionConfig {
        name: "e".into(),
        node_id: node.into(),
        key_prefix: "t/".into(),
        timings: Timings::for_lease(LEASE),
        metadata: format!("meta-{node}"),
        stateless: false,
        probe_store: false,
        quorum: QuorumConfig::disabled_for_lease(LEASE),
        etag_form: Default::default(),
    }
}

fn keys() -> Keys {
    config("a").keys()
}

fn at(ms: u64) -> Instant {
    Instant::from_nanos(ms * 1_000_000)
}

/// What happens to the next request on its way.
#[derive(Clone, Debug, PartialEq)]
enum Fault {
    /// Applied by the store, answer lost (ambiguous).
    LoseAnswer,
    /// Never reaches the store.
    Drop,
    /// Answered with this, without touching the store.
    Answer(Outcome),
}

struct World {
    store: MemStore,
    /// Store clock offset from the virtual clock, seconds.
    store_epoch_s: u64,
    faults: VecDeque<Fault>,
    sent: Vec<Request>,
    /// When each request in `sent` was sent.
    sent_at: Vec<Instant>,
    /// The error the last call returned.
    last_error: Option<Error>,
}

impl World {
    fn new() -> Self {
        World {
            store: MemStore::new(),
            store_epoch_s: 1_790_000_000,
            faults: VecDeque::new(),
            sent: Vec::new(),
            sent_at: Vec::new(),
            last_error: None,
        }
    }

    /// Store clock, Unix ms.
    fn store_now(&self, now: Instant) -> u64 {
        self.store_epoch_s * 1000 + now.as_nanos() / 1_000_000
    }

    /// One call, driven as the component's glue drives it.
    fn call(&mut self, e: &mut Elector, kind: CallKind, now: Instant) -> Result<Reply, Error> {
        e.begin(kind, now);
        while let Some(req) = e.poll_request(now) {
            self.sent.push(req.clone());
            self.sent_at.push(now);
            let outcome = match self.faults.pop_front() {
                None => self
                    .store
                    .apply(&e.config().keys(), &req, self.store_now(now)),
                Some(Fault::LoseAnswer) => {
                    self.store
                        .apply(&e.config().keys(), &req, self.store_now(now));
                    Outcome::Transient(Error::Transport("answer lost".into()))
                }
                Some(Fault::Drop) => Outcome::Transient(Error::Transport("dropped".into())),
                Some(Fault::Answer(o)) => o,
            };
            e.handle_response(now, outcome);
        }
        let reply = e.finish(now);
        self.last_error = reply.as_ref().err().cloned();
        reply
    }

    /// A tick; returns its events (none when it failed: see `take_error`).
    fn step(&mut self, e: &mut Elector, now: Instant) -> Vec<Event> {
        match self.call(e, CallKind::Tick, now) {
            Ok(Reply::Status(s)) => s.events,
            _ => Vec::new(),
        }
    }

    /// `resign`; returns its events.
    fn resign(&mut self, e: &mut Elector, now: Instant) -> Vec<Event> {
        match self.call(e, CallKind::Resign, now) {
            Ok(Reply::Status(s)) => s.events,
            _ => Vec::new(),
        }
    }

    /// `leave`; returns its events.
    fn leave(&mut self, e: &mut Elector, now: Instant) -> Vec<Event> {
        match self.call(e, CallKind::Leave, now) {
            Ok(Reply::Status(s)) => s.events,
            _ => Vec::new(),
        }
    }

    /// The error the last call returned, once.
    fn take_error(&mut self) -> Option<Error> {
        self.last_error.take()
    }

    fn step_when_due(&mut self, e: &mut Elector) -> Vec<Event> {
        let due = e.poll_timeout();
        self.step(e, due)
    }

    /// Step `e` at each of its own wake-ups until `until`.
    fn run(&mut self, e: &mut Elector, from: Instant, until: Instant) -> Instant {
        let mut now = from;
        while now <= until {
            self.step(e, now);
            now = e.poll_timeout().max(now + Duration::from_millis(1));
        }
        now
    }

    /// An observer query, as `query-leader` runs it.
    fn query(&mut self, e: &mut Elector, now: Instant) -> Option<LeaderInfo> {
        match self.call(e, CallKind::Query, now) {
            Ok(Reply::Leader(leader)) => leader,
            other => panic!("query: {other:?}"),
        }
    }

    /// Step `e` at its own wake-ups from `from` until it leads; the instant it does.
    fn elect(&mut self, e: &mut Elector, from: Instant) -> Instant {
        let mut now = from;
        for _ in 0..1000 {
            self.step(e, now);
            if role(e, now) == Role::Leader {
                return now;
            }
            now = e.poll_timeout().max(now + Duration::from_millis(1));
        }
        panic!("{} did not lead by {now:?}", e.config().node_id);
    }

    /// The lowest term the store's clock allows at `now`.
    fn clock_term(&self, now: Instant) -> u64 {
        self.store_now(now) / 1000 * crate::record::TERMS_PER_SECOND
    }

    fn record(&self) -> LeaseRecord {
        LeaseRecord::decode(&self.store.get_object(KEY).expect("lease object").body).unwrap()
    }

    fn puts_sent(&self) -> Vec<&PutMode> {
        self.sent
            .iter()
            .filter_map(|r| match r {
                Request::Put { mode, .. } => Some(mode),
                _ => None,
            })
            .collect()
    }
}

/// A seed per node name (each elector's instance id comes from it).
fn seed(node: &str) -> u64 {
    node.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn elector(node: &str) -> Elector {
    Elector::new(config(node), at(0), seed(node))
}

/// Another process with the same node id (its own instance id).
fn twin(node: &str) -> Elector {
    Elector::new(config(node), at(0), 424_242)
}

fn stateless(node: &str, now: Instant, seed: u64) -> Elector {
    let mut c = config(node);
    c.stateless = true;
    Elector::new(c, now, seed)
}

/// When a lone node on an empty bucket first leads: it writes a vacancy at once, and takes
/// it once that has aged lease + grace.
fn first_leader_at() -> Instant {
    at(0) + LEASE + timings().grace
}

fn elected(events: &[Event]) -> Option<u64> {
    events.iter().find_map(|e| match e {
        Event::Elected { term } => Some(*term),
        _ => None,
    })
}

fn role(e: &Elector, now: Instant) -> Role {
    e.status(now).role
}

fn timings() -> Timings {
    Timings::for_lease(LEASE)
}

#[test]
fn a_new_election_writes_a_vacancy_and_leads_after_it_has_aged_a_lease() {
    let mut w = World::new();
    let mut a = elector("a");
    let events = w.step(&mut a, at(0));
    assert_eq!(elected(&events), None, "nobody leads on a vacancy");
    assert_eq!(w.puts_sent(), vec![&PutMode::Create]);
    let r = w.record();
    assert!(r.vacant && !r.is_held(), "{r:?}");
    let t0 = w.elect(&mut a, at(1));
    assert_eq!(
        t0,
        first_leader_at(),
        "a wakes itself exactly at the vacancy's expiry"
    );
    let r = w.record();
    assert!(r.is_held());
    assert_eq!((r.holder.as_str(), r.released), ("a", false));
    assert_eq!(r.metadata, "meta-a");
    assert_eq!(r.instance.as_deref(), a.instance());
    // The first term comes from the store's clock: above any term of an earlier object.
    assert_eq!(r.term, w.clock_term(t0));
    assert_eq!(a.status(t0).fencing_token, Some(r.term));
    assert!(w.puts_sent()[1..]
        .iter()
        .all(|m| matches!(m, PutMode::Update(_))));
}

#[test]
fn renewal_is_one_conditional_put_that_keeps_the_term() {
    let mut w = World::new();
    let mut a = elector("a");
    let t0 = w.elect(&mut a, at(0));
    let term = w.record().term;
    let etag_before = w.store.get_object(KEY).unwrap().etag.clone();
    let sent_before = w.sent.len();
    let due = a.poll_timeout();
    assert_eq!(due, t0 + timings().renew_interval);
    w.step(&mut a, due);
    assert_eq!(w.sent.len() - sent_before, 1, "one request per renewal");
    match w.sent.last() {
        Some(Request::Put { mode, .. }) => assert_eq!(mode, &PutMode::Update(etag_before)),
        other => panic!("{other:?}"),
    }
    let r = w.record();
    assert_eq!((r.term, r.renewals), (term, 1));
    assert_eq!(role(&a, due), Role::Leader);
    // Validity is counted from the renewal's send time, less drift.
    assert_eq!(a.status(due).valid_for, timings().shrink_by_drift(LEASE));
}

#[test]
fn a_live_leader_is_never_taken_over() {
    let mut w = World::new();
    let (mut a, mut b) = (elector("a"), elector("bb"));
    let t0 = w.elect(&mut a, at(0));
    let term = w.record().term;
    let mut now = t0;
    while now < t0 + Duration::from_secs(60) {
        w.step(&mut a, now);
        w.step(&mut b, now);
        assert_eq!(role(&a, now), Role::Leader);
        assert_eq!(role(&b, now), Role::Follower);
        assert_eq!(b.status(now).leader.map(|l| l.node_id), Some("a".into()));
        now = now + Duration::from_millis(100);
    }
    assert_eq!(w.record().term, term);
}

#[test]
fn follower_waits_lease_plus_grace_of_its_own_observation() {
    let mut w = World::new();
    let (mut a, mut b) = (elector("a"), elector("bb"));
    let t0 = w.elect(&mut a, at(0));
    let term = w.record().term;
    // b first sees a's record 1 s later; a crashes right after.
    let seen = t0 + Duration::from_secs(1);
    w.step(&mut b, seen);
    let wait = LEASE + timings().grace;
    let mut now = seen;
    while now < seen + wait {
        w.step(&mut b, now);
        assert_eq!(role(&b, now), Role::Follower, "took over early at {now:?}");
        now = now + Duration::from_millis(50);
    }
    // b wakes itself exactly at the expiry and takes over with a higher term.
    assert_eq!(b.poll_timeout(), seen + wait);
    let events = w.step(&mut b, seen + wait);
    let new = elected(&events).expect("b took over");
    assert!(new > term);
    assert_eq!(
        new,
        w.clock_term(seen + wait),
        "a term from the store's clock"
    );
}

#[test]
fn observed_time_restarts_when_the_record_changes() {
    let mut w = World::new();
    let (mut a, mut b) = (elector("a"), elector("bb"));
    let t0 = w.elect(&mut a, at(0));
    w.step(&mut b, t0);
    // a renews 1 s later; b notices 200 ms after that; the wait starts again from there.
    w.step(&mut a, t0 + Duration::from_millis(1000));
    let noticed = t0 + Duration::from_millis(1200);
    w.step(&mut b, noticed);
    w.step(&mut b, t0 + Duration::from_millis(3400));
    assert_eq!(role(&b, t0 + Duration::from_millis(3400)), Role::Follower);
    let wait = LEASE + timings().grace;
    w.step(&mut b, noticed + wait);
    assert_eq!(role(&b, noticed + wait), Role::Leader);
}

#[test]
fn polls_are_conditional_gets() {
    let mut w = World::new();
    let (mut a, mut b) = (elector("a"), elector("bb"));
    let t0 = w.elect(&mut a, at(0));
    w.step(&mut b, t0);
    let etag = w.store.get_object(KEY).unwrap().etag.clone();
    w.step_when_due(&mut b);
    assert_eq!(
        w.sent.last(),
        Some(&Request::Get {
            if_none_match: Some(etag)
        })
    );
}

#[test]
fn a_release_seen_happening_is_taken_at_once_with_a_higher_term() {
    let mut w = World::new();
    let (mut a, mut b) = (elector("a"), elector("bb"));
    let t0 = w.elect(&mut a, at(0));
    let term = w.record().term;
    w.step(&mut b, t0);
    let t = t0 + Duration::from_millis(500);
    let events = w.resign(&mut a, t);
    assert!(events.contains(&Event::Demoted {
        term,
        reason: DemoteReason::Resigned
    }));
    let r = w.record();
    assert!(r.released);
    assert_eq!(r.term, term, "release keeps the term");
    assert!(!a.release_pending());
    // b saw a's held record, so it sees the release happen: it acquires on its next poll,
    // well before any lease could expire.
    let next = b.poll_timeout();
    assert!(next <= t0 + timings().retry_period);
    let events = w.step(&mut b, next);
    assert!(elected(&events).is_some_and(|t| t > term), "{events:?}");
    // a stays out.
    w.run(
        &mut a,
        t + Duration::from_millis(100),
        t + Duration::from_secs(20),
    );
    assert_eq!(role(&a, t + Duration::from_secs(20)), Role::Follower);
}

#[test]
fn a_release_first_seen_as_such_is_waited_out_like_a_lease() {
    // It may be an older record put back (a version restore) while a newer holder leads.
    let mut w = World::new();
    let mut a = elector("a");
    let t0 = w.elect(&mut a, at(0));
    let t = t0 + Duration::from_millis(100);
    w.resign(&mut a, t);
    let mut b = elector("bb");
    w.step(&mut b, t);
    assert_eq!(role(&b, t), Role::Follower);
    let wait = LEASE + timings().grace;
    let took = w.elect(&mut b, t);
    assert_eq!(took, t + wait);
}

#[test]
fn resign_is_a_conditional_write_never_a_delete() {
    let mut w = World::new();
    let mut a = elector("a");
    let t0 = w.elect(&mut a, at(0));
    w.resign(&mut a, t0);
    assert!(w.puts_sent()[1..]
        .iter()
        .all(|m| matches!(m, PutMode::Update(_))));
    assert!(w.store.get_object(KEY).is_some());
}

#[test]
fn leader_steps_down_at_the_renew_deadline_before_anyone_may_take_over() {
    let mut w = World::new();
    let (mut a, mut b) = (elector("a"), elector("bb"));
    let t0 = w.elect(&mut a, at(0));
    let term = w.record().term;
    w.step(&mut b, t0);
    // From now on every request of a is lost.
    let mut now = t0 + Duration::from_millis(1);
    let mut a_stepped_down = None;
    let mut b_took_over = None;
    while now < t0 + Duration::from_secs(20) {
        if a_stepped_down.is_none() {
            w.faults
                .extend([Fault::Drop, Fault::Drop, Fault::Drop, Fault::Drop]);
            let ev = w.step(&mut a, now);
            w.faults.clear();
            if ev.iter().any(|e| {
                matches!(
                    e,
                    Event::Demoted {
                        reason: DemoteReason::RenewDeadlineExceeded,
                        ..
                    }
                )
            }) {
                a_stepped_down = Some(now);
            }
            if role(&a, now) == Role::Leader {
                assert!(b_took_over.is_none(), "two leaders at {now:?}");
            }
        }
        w.step(&mut b, now);
        if role(&b, now) == Role::Leader && b_took_over.is_none() {
            b_took_over = Some(now);
        }
        now = now + Duration::from_millis(10);
    }
    let (down, up) = (a_stepped_down.unwrap(), b_took_over.unwrap());
    assert!(down <= t0 + timings().renew_deadline + Duration::from_millis(10));
    assert!(
        down < up,
        "a stepped down at {down:?}, b took over at {up:?}"
    );
    assert!(w.record().term > term);
}

#[test]
fn an_ambiguous_write_that_landed_is_recognised_by_its_nonce() {
    let mut w = World::new();
    let mut a = elector("a");
    w.step(&mut a, at(0)); // the vacancy
    w.run(&mut a, at(1), first_leader_at() - Duration::from_millis(1));
    let sent = w.sent.len();
    w.faults.push_back(Fault::Answer(Outcome::NotModified {
        date: Some(w.store_now(first_leader_at()) / 1000),
    }));
    w.faults.push_back(Fault::LoseAnswer);
    let events = w.step(&mut a, first_leader_at());
    // GET (304), PUT (applied, answer lost), GET read-back: our nonce → leader.
    assert_eq!(w.sent.len() - sent, 3, "{:?}", &w.sent[sent..]);
    assert!(matches!(
        w.sent[sent + 2],
        Request::Get {
            if_none_match: None
        }
    ));
    assert!(elected(&events).is_some(), "{events:?}");
}

#[test]
fn an_ambiguous_write_that_did_not_land_is_not_taken_as_won() {
    let mut w = World::new();
    let mut other = elector("zz");
    let t0 = w.elect(&mut other, at(0));
    // a reads the vacancy-free store as missing (a stale answer), and its write is lost.
    let mut a = elector("a");
    w.faults.push_back(Fault::Answer(Outcome::NotFound));
    w.faults.push_back(Fault::Drop);
    let events = w.step(&mut a, t0);
    assert_eq!(elected(&events), None, "{events:?}");
    assert_eq!(role(&a, t0), Role::Follower);
    assert_eq!(a.status(t0).leader.unwrap().node_id, "zz");
}

#[test]
fn a_conflict_is_retried_not_taken_as_lost() {
    let mut w = World::new();
    let mut a = elector("a");
    w.faults.push_back(Fault::Answer(Outcome::NotFound));
    w.faults.push_back(Fault::Answer(Outcome::Conflict));
    w.step(&mut a, at(0));
    // GET, PUT (409), the same PUT again: the vacancy is written.
    assert_eq!(w.sent.len(), 3);
    assert_eq!(
        w.sent[1], w.sent[2],
        "a 409 is retried with the same body and nonce"
    );
    assert!(w.record().vacant);
}

#[test]
fn a_race_for_a_vacancy_has_exactly_one_winner() {
    let mut w = World::new();
    let (mut a, mut b) = (elector("a"), elector("bb"));
    w.step(&mut a, at(0));
    w.step(&mut b, at(0));
    // Both wait out the vacancy and read it at the same instant, before either writes.
    let t = first_leader_at() + Duration::from_millis(10);
    let store_now = w.store_now(t);
    a.begin(CallKind::Tick, t);
    b.begin(CallKind::Tick, t);
    let ra = a.poll_request(t).unwrap();
    let rb = b.poll_request(t).unwrap();
    a.handle_response(t, w.store.apply(&keys(), &ra, store_now));
    b.handle_response(t, w.store.apply(&keys(), &rb, store_now));
    let wa = a.poll_request(t).unwrap();
    let wb = b.poll_request(t).unwrap();
    assert!(
        matches!(
            &wa,
            Request::Put {
                mode: PutMode::Update(_),
                ..
            }
        ),
        "{wa:?}"
    );
    a.handle_response(t, w.store.apply(&keys(), &wa, store_now));
    b.handle_response(t, w.store.apply(&keys(), &wb, store_now));
    // b's 412 is read back before b concludes anything.
    w.step(&mut b, t);
    assert_eq!(role(&a, t), Role::Leader);
    assert_eq!(role(&b, t), Role::Follower);
    assert_eq!(b.status(t).leader.unwrap().node_id, "a");
}

#[test]
fn a_foreign_record_is_reported_and_never_overwritten() {
    let mut w = World::new();
    w.store.put_raw(KEY, b"not a lease".to_vec(), 0);
    let mut a = elector("a");
    let mut now = at(0);
    let mut errors = 0;
    while now < at(30_000) {
        w.step(&mut a, now);
        if let Some(e) = w.take_error() {
            assert!(matches!(e, Error::ForeignRecord { .. }), "{e:?}");
            errors += 1;
        }
        now = a.poll_timeout().max(now + Duration::from_millis(1));
    }
    assert!(errors > 5);
    assert!(w.puts_sent().is_empty(), "wrote over a foreign record");
    assert_eq!(w.store.get_object(KEY).unwrap().body, b"not a lease");
}

#[test]
fn a_leader_whose_record_turns_foreign_steps_down() {
    let mut w = World::new();
    let mut a = elector("a");
    w.elect(&mut a, at(0));
    w.store.put_raw(KEY, b"{}".to_vec(), 0);
    // The renewal fails (412) and the read-back finds the foreign object: the call's answer
    // is the error (not leading), and the demotion waits for the next call that succeeds.
    w.step_when_due(&mut a);
    assert!(matches!(w.take_error(), Some(Error::ForeignRecord { .. })));
    let later = a.poll_timeout();
    assert_eq!(role(&a, later), Role::Follower);
    assert!(
        std::iter::from_fn(|| a.poll_event()).any(|e| matches!(e, Event::Demoted { .. })),
        "the demotion is still queued"
    );
    assert_eq!(w.store.get_object(KEY).unwrap().body, b"{}");
}

#[test]
fn stateless_nodes_judge_expiry_by_the_store_clock_with_a_skew_margin() {
    let mut w = World::new();
    let mut a = elector("a");
    let t0 = w.elect(&mut a, at(0));
    let term = w.record().term;
    let t = timings();
    // lease + grace, + 1 s for the resolution of Date and Last-Modified, + the skew margin.
    let wait = LEASE + t.grace + Duration::from_secs(1) + t.store_clock_skew;
    let just_before = t0 + wait - Duration::from_secs(1);
    let mut b = stateless("bb", just_before, 1);
    w.step(&mut b, just_before);
    assert_eq!(role(&b, just_before), Role::Follower);
    let after = t0 + wait + Duration::from_secs(1);
    let events = w.step(&mut stateless("bb", after, 2), after);
    assert!(elected(&events).is_some_and(|t| t > term), "{events:?}");
    // A stateful node never trusts the store's clock alone: it waits its own observation.
    let mut w2 = World::new();
    w2.elect(&mut elector("a"), at(0));
    let mut c = elector("cc");
    w2.step(&mut c, after);
    assert_eq!(role(&c, after), Role::Follower);
}

#[test]
fn a_stateless_takeover_without_the_store_clock_is_an_error_not_never() {
    let mut w = World::new();
    let t0 = w.elect(&mut elector("a"), at(0));
    let later = t0 + LEASE * 3;
    let mut b = stateless("bb", later, 1);
    let etag = w.store.get_object(KEY).unwrap().etag.clone();
    let body = w.store.get_object(KEY).unwrap().body.clone();
    // A proxy that strips Date.
    w.faults.push_back(Fault::Answer(Outcome::Found {
        etag,
        body,
        last_modified: Some(w.store_now(t0) / 1000),
        date: None,
    }));
    w.step(&mut b, later);
    let e = w.take_error().expect("an error");
    assert!(
        matches!(&e, Error::BadAnswer(why) if why.contains("Date")),
        "{e:?}"
    );
}

#[test]
fn a_stateless_instance_resumes_its_nodes_live_lease_with_the_same_term() {
    let mut w = World::new();
    let mut a = stateless("a", at(0), 1);
    w.step(&mut a, at(0)); // vacancy; stateless judges it by the store's clock
    let t = timings();
    let ready = at(0) + LEASE + t.grace + Duration::from_secs(1) + t.store_clock_skew;
    let t0 = w.elect(&mut stateless("a", ready, 2), ready);
    let term = w.record().term;
    let later = t0 + Duration::from_millis(1000);
    let events = w.step(&mut stateless("a", later, 3), later);
    assert_eq!(elected(&events), Some(term), "{events:?}");
    assert_eq!(w.record().renewals, 1);
}

/// Found by the `elector` fuzz target: a stateless instance that led at term T and then
/// read an older record of its node (a restored version, term below T, live by the store's
/// clock) resumed that lower term, so its fencing token went back. It must not: a record
/// below a term it has seen is an old one, taken over only once expired, with a new term.
#[test]
fn a_stateless_instance_never_resumes_a_term_below_one_it_has_seen() {
    let mut w = World::new();
    w.step(&mut stateless("a", at(0), 1), at(0));
    let t = timings();
    let ready = at(0) + LEASE + t.grace + Duration::from_secs(1) + t.store_clock_skew;
    let mut a = stateless("a", ready, 2);
    let t0 = w.elect(&mut a, ready);
    let term = w.record().term;
    // An operator restores an earlier version: a record of this node, ten seconds of terms
    // older, written (as far as the store's clock says) when the instance runs again.
    let mut old = w.record();
    old.term = term - 10 * crate::record::TERMS_PER_SECOND;
    old.instance = None;
    old.nonce = "0123456789abcdef0123456789abcdef".into();
    // Meanwhile the instance was not called: its leadership ran out.
    let later = t0 + LEASE * 2;
    w.store.put_raw(KEY, old.encode(), w.store_now(later));
    let mut now = later;
    let mut led_again = None;
    while now < later + LEASE * 4 {
        let events = w.step(&mut a, now);
        if let Some(again) = elected(&events) {
            assert!(again > term, "elected at term {again} after {term}");
            led_again.get_or_insert(again);
        }
        assert!(w.record().term == old.term || w.record().term > term);
        now = a.poll_timeout().max(now + Duration::from_millis(1));
    }
    // ... and once the restored record has expired it takes it over with a new term.
    assert!(led_again.is_some(), "never led again");
}

/// Two invocations of one stateless node that overlap: each CAS round has one winner; the
/// other is not leader in that call, although the record names its node.
#[test]
fn overlapping_stateless_invocations_of_one_node_have_one_winner_per_round() {
    let mut w = World::new();
    let t = timings();
    let ready = at(0) + LEASE + t.grace + Duration::from_secs(1) + t.store_clock_skew;
    w.step(&mut stateless("a", at(0), 1), at(0));
    w.elect(&mut stateless("a", ready, 2), ready);
    for round in 0..5u64 {
        let now = ready + Duration::from_millis(500 * (round + 1));
        let (mut x, mut y) = (
            stateless("a", now, 10 + round),
            stateless("a", now, 20 + round),
        );
        // Both read before either writes.
        x.begin(CallKind::Tick, now);
        y.begin(CallKind::Tick, now);
        let store_now = w.store_now(now);
        let (rx, ry) = (x.poll_request(now).unwrap(), y.poll_request(now).unwrap());
        x.handle_response(now, w.store.apply(&keys(), &rx, store_now));
        y.handle_response(now, w.store.apply(&keys(), &ry, store_now));
        let (wx, wy) = (x.poll_request(now).unwrap(), y.poll_request(now).unwrap());
        x.handle_response(now, w.store.apply(&keys(), &wx, store_now));
        y.handle_response(now, w.store.apply(&keys(), &wy, store_now));
        // The loser reads back, finds the winner's write, and does not try again.
        w.step(&mut x, now);
        w.step(&mut y, now);
        let leaders = [role(&x, now), role(&y, now)]
            .iter()
            .filter(|r| **r == Role::Leader)
            .count();
        assert_eq!(leaders, 1, "round {round}");
    }
}

/// Two processes share a node id (a copied config, a replica that still runs). Each tells
/// its own writes by its instance id: never both lead, and the second says what is wrong.
#[test]
fn a_process_sharing_a_node_id_is_treated_as_another_node_and_reported() {
    let mut w = World::new();
    let (mut a, mut a2) = (elector("a"), twin("a"));
    assert_ne!(a.instance(), a2.instance());
    let t0 = w.elect(&mut a, at(0));
    let term = w.record().term;
    let mut now = t0;
    let mut promised_until = t0;
    while now < t0 + Duration::from_secs(30) {
        w.step(&mut a, now);
        w.step(&mut a2, now);
        assert_eq!(role(&a2, now), Role::Follower, "both lead at {now:?}");
        promised_until = promised_until.max(now + a.status(now).valid_for);
        now = now + Duration::from_millis(100);
    }
    assert_eq!(w.record().term, term);
    let s = a2.status(now);
    assert_eq!(s.problems, vec![Problem::DuplicateNodeId]);
    assert_eq!(s.leader.map(|l| l.node_id), Some("a".into()));
    assert!(
        a.status(now).problems.is_empty(),
        "the writer sees nothing odd"
    );
    // When the first process stops, the second takes over like any follower: a lease
    // later, with a higher term.
    let took = w.elect(&mut a2, now);
    assert!(took >= promised_until, "{took:?} < {promised_until:?}");
    assert!(w.record().term > term);
}

#[test]
fn a_restarted_node_waits_out_its_earlier_self() {
    let mut w = World::new();
    let t0 = w.elect(&mut elector("a"), at(0));
    let term = w.record().term;
    let restart = t0 + Duration::from_millis(500);
    let mut again = twin("a");
    let took = w.elect(&mut again, restart);
    assert_eq!(took, restart + LEASE + timings().grace);
    assert!(w.record().term > term);
}

/// A leader adopts a record after a 412 only if this elector wrote it.
#[test]
fn a_leader_adopts_only_records_of_its_own_instance() {
    let mut w = World::new();
    let mut a = elector("a");
    w.elect(&mut a, at(0));
    // A delayed write of ours lands: same holder, term and instance, new ETag: adopted.
    let mut r = w.record();
    r.nonce = "late".into();
    w.store.put_raw(KEY, r.encode(), 0);
    let due = a.poll_timeout();
    let events = w.step(&mut a, due);
    assert!(
        !events.iter().any(|e| matches!(e, Event::Demoted { .. })),
        "{events:?}"
    );
    assert_eq!(role(&a, due), Role::Leader);
    // The renewal the store refused is sent again on top of the late write, a retry period
    // later (a refused write is never repeated at once).
    assert_eq!(a.poll_timeout(), due + timings().retry_period);
    w.step_when_due(&mut a);
    assert_eq!(
        w.record().nonce.len(),
        32,
        "renewed on top of the late write"
    );
    // The same record from another process with our id: not ours.
    let mut r = w.record();
    r.instance = Some("i-someone-else".into());
    r.nonce = "theirs".into();
    w.store.put_raw(KEY, r.encode(), 0);
    let events = w.step_when_due(&mut a);
    assert!(
        events.contains(&Event::Demoted {
            term: r.term,
            reason: DemoteReason::LeaseLost {
                holder: Some("a".into())
            }
        }),
        "{events:?}"
    );
    assert_eq!(
        a.status(a.poll_timeout()).problems,
        vec![Problem::DuplicateNodeId]
    );
}

#[test]
fn a_node_that_stepped_down_retakes_its_own_record_with_a_new_term() {
    let mut w = World::new();
    let mut a = elector("a");
    let t0 = w.elect(&mut a, at(0));
    let term = w.record().term;
    // Let a miss its renew deadline without reaching the store.
    let deadline = t0 + timings().renew_deadline;
    a.handle_timeout(deadline);
    assert!(matches!(
        a.poll_event(),
        Some(Event::Demoted {
            reason: DemoteReason::RenewDeadlineExceeded,
            ..
        })
    ));
    let events = w.step(&mut a, deadline);
    assert!(elected(&events).is_some_and(|t| t > term), "{events:?}");
}

/// An operator deletes the lease object while a leader runs. Nobody leads until the old
/// leader's promised window is over, and terms keep growing, also for nodes that never saw
/// the old object.
#[test]
fn a_deleted_lease_is_waited_out_and_terms_keep_growing() {
    let mut w = World::new();
    let (mut a, mut b) = (elector("a"), elector("bb"));
    let t0 = w.elect(&mut a, at(0));
    w.step(&mut b, t0);
    let renewed = a.poll_timeout();
    w.step(&mut a, renewed);
    let promised_until = renewed + a.status(renewed).valid_for;
    let term = w.record().term;
    w.store.delete(KEY);
    let deleted = renewed + Duration::from_millis(10);
    // a fresh node that never saw the old object, and b that did.
    let mut c = elector("ccc");
    let mut now = deleted;
    let mut first = None;
    while first.is_none() && now < deleted + Duration::from_secs(30) {
        for e in [&mut b, &mut c] {
            w.step(e, now);
            if role(e, now) == Role::Leader {
                first = Some(now);
            }
        }
        now = now + Duration::from_millis(20);
    }
    let first = first.expect("a new leader");
    assert!(
        first >= promised_until,
        "new leader at {first:?}, old window until {promised_until:?}"
    );
    assert!(
        w.record().term > term,
        "the token went from {term} to {}",
        w.record().term
    );
    // The old leader learns at its next renewal.
    let events = w.step_when_due(&mut a);
    assert!(
        events.iter().any(|e| matches!(e, Event::Demoted { .. })),
        "{events:?}"
    );
}

/// An operator restores an older version of the lease (here a released one) while a newer
/// holder leads: stateful nodes that saw the newer term, and fresh ones, wait it out.
#[test]
fn a_restored_older_version_is_waited_out() {
    let mut w = World::new();
    let (mut a, mut b, mut c) = (elector("a"), elector("bb"), elector("ccc"));
    let t0 = w.elect(&mut a, at(0));
    w.step(&mut b, t0);
    let t1 = t0 + Duration::from_millis(100);
    w.resign(&mut a, t1);
    let released = w.store.get_object(KEY).unwrap().clone();
    let t2 = w.elect(&mut b, t1);
    let term_b = w.record().term;
    let promised_until = t2 + b.status(t2).valid_for;
    // Roll back to a's release.
    w.store.restore(KEY, released);
    let mut now = t2 + Duration::from_millis(10);
    while now < promised_until + Duration::from_millis(500) {
        w.step(&mut c, now);
        w.step(&mut a, now);
        assert!(
            now >= promised_until || (role(&c, now) == Role::Follower && role(&a, now) == Role::Follower),
            "someone took the restored record at {now:?} while b's window ran until {promised_until:?}"
        );
        now = now + Duration::from_millis(20);
    }
    let took = w.elect(&mut c, now);
    assert!(took >= promised_until);
    assert!(w.record().term > term_b);
}

#[test]
fn a_write_confirmed_after_the_deadline_does_not_make_a_leader() {
    let mut w = World::new();
    let mut a = elector("a");
    w.step(&mut a, at(0));
    w.run(&mut a, at(1), first_leader_at() - Duration::from_millis(1));
    let t = first_leader_at();
    a.begin(CallKind::Tick, t);
    let get = a.poll_request(t).unwrap();
    a.handle_response(t, w.store.apply(&keys(), &get, w.store_now(t)));
    let put = a.poll_request(t).unwrap();
    let answer = w.store.apply(&keys(), &put, w.store_now(t));
    // The answer arrives after the renew deadline of that write.
    let late = t + timings().renew_deadline;
    a.handle_response(late, answer);
    assert_eq!(role(&a, late), Role::Follower);
    assert!(!std::iter::from_fn(|| a.poll_event()).any(|e| matches!(e, Event::Elected { .. })));
}

#[test]
fn validity_counts_from_when_the_request_was_sent() {
    let mut w = World::new();
    let mut a = elector("a");
    w.step(&mut a, at(0));
    w.run(&mut a, at(1), first_leader_at() - Duration::from_millis(1));
    let t = first_leader_at();
    a.begin(CallKind::Tick, t);
    let get = a.poll_request(t).unwrap();
    a.handle_response(t, w.store.apply(&keys(), &get, w.store_now(t)));
    let put = a.poll_request(t + Duration::from_millis(100)).unwrap();
    let answer = w.store.apply(&keys(), &put, w.store_now(t));
    let answered = t + Duration::from_millis(900);
    a.handle_response(answered, answer);
    let valid = a.status(answered).valid_for;
    assert_eq!(
        valid,
        timings().shrink_by_drift(LEASE) - Duration::from_millis(800)
    );
}

#[test]
fn a_renewal_412_on_someone_elses_record_demotes() {
    let mut w = World::new();
    let mut a = elector("a");
    w.elect(&mut a, at(0));
    let mut r = w.record();
    let term = r.term;
    r.holder = "zz".into();
    r.instance = None;
    r.term += 1;
    w.store.put_raw(KEY, r.encode(), 0);
    let events = w.step_when_due(&mut a);
    assert!(events.contains(&Event::Demoted {
        term,
        reason: DemoteReason::LeaseLost {
            holder: Some("zz".into())
        }
    }));
    assert!(a.status(a.poll_timeout()).problems.is_empty());
}

#[test]
fn a_fatal_error_while_leading_steps_down_and_is_reported() {
    let mut w = World::new();
    let mut a = elector("a");
    w.elect(&mut a, at(0));
    let denied = Error::AccessDenied {
        code: "AccessDenied".into(),
        message: "revoked".into(),
    };
    w.faults
        .push_back(Fault::Answer(Outcome::Fatal(denied.clone())));
    w.step_when_due(&mut a);
    assert_eq!(w.take_error(), Some(denied));
    // The next call that succeeds tells what happened.
    let events = w.step_when_due(&mut a);
    assert_eq!(w.take_error(), None);
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Demoted {
            reason: DemoteReason::Error,
            ..
        }
    )));
}

#[test]
fn transient_read_errors_are_retried_and_reported_in_status() {
    let mut w = World::new();
    let mut a = elector("a");
    w.faults.push_back(Fault::Drop);
    w.step(&mut a, at(0));
    let s = a.status(at(0));
    assert_eq!(s.role, Role::Follower);
    assert!(matches!(s.last_error, Some(Error::Transport(_))));
    assert_eq!(s.next_step_in, timings().retry_period);
    let retry = at(0) + timings().retry_period;
    w.step(&mut a, retry);
    assert!(w.record().vacant, "the retry wrote the vacancy");
    assert_eq!(a.status(retry).last_error, None);
}

#[test]
fn leader_changes_are_reported_to_followers() {
    let mut w = World::new();
    let (mut a, mut b) = (elector("a"), elector("bb"));
    let t0 = w.elect(&mut a, at(0));
    let term = w.record().term;
    let events = w.step(&mut b, t0);
    assert!(events.iter().any(|e| matches!(e, Event::LeaderChanged { leader: Some(l) } if l.node_id == "a" && l.term == term && l.metadata == "meta-a")));
}

#[test]
fn resign_on_a_fresh_stateless_instance_releases_its_nodes_lease() {
    let mut w = World::new();
    let t = timings();
    let ready = at(0) + LEASE + t.grace + Duration::from_secs(1) + t.store_clock_skew;
    w.step(&mut stateless("a", at(0), 1), at(0));
    let t0 = w.elect(&mut stateless("a", ready, 2), ready);
    let mut a2 = stateless("a", t0, 3);
    // It knows nothing yet: it reads, sees its node's unreleased record, and releases it.
    w.resign(&mut a2, t0 + Duration::from_millis(100));
    assert!(w.record().released);
    assert!(!a2.release_pending());
}

#[test]
fn resign_never_releases_another_process_that_shares_the_id() {
    let mut w = World::new();
    let t0 = w.elect(&mut elector("a"), at(0));
    let mut a2 = twin("a");
    w.resign(&mut a2, t0);
    assert!(w.record().is_held());
}

// ----- quorum ------------------------------------------------------------------------------------

fn quorum_elector(node: &str, size: u32) -> Elector {
    let mut c = config(node);
    c.quorum.size = size;
    Elector::new(c, at(0), seed(node))
}

fn member_requests(w: &World) -> usize {
    w.sent
        .iter()
        .filter(|r| !matches!(r, Request::Get { .. } | Request::Put { .. }))
        .count()
}

#[test]
fn quorum_off_costs_no_member_requests() {
    let mut w = World::new();
    let (mut a, mut b) = (elector("a"), elector("bb"));
    let mut now = at(0);
    while now < at(20_000) {
        w.step(&mut a, now);
        w.step(&mut b, now);
        now = now + Duration::from_millis(50);
    }
    assert_eq!(member_requests(&w), 0);
    assert!(a.status(now).members.is_empty());
}

#[test]
fn a_candidate_without_quorum_never_acquires() {
    let mut w = World::new();
    let mut a = quorum_elector("a", 2);
    let mut lost = 0;
    let mut now = at(0);
    while now < at(20_000) {
        for e in w.step(&mut a, now) {
            if matches!(
                e,
                Event::QuorumLost {
                    fresh: 1,
                    needed: 2
                }
            ) {
                lost += 1;
            }
        }
        assert_eq!(role(&a, now), Role::Follower);
        now = a.poll_timeout().max(now + Duration::from_millis(1));
    }
    assert_eq!(lost, 1, "quorum-lost is reported once, not on every check");
    assert!(w.record().vacant, "no lease was taken");
    // Heartbeats went only to its own member object.
    assert!(w.store.get_object("t/e/members/a").is_some());
    assert_eq!(w.puts_sent(), vec![&PutMode::Create], "only the vacancy");
}

/// Step both nodes every 50 ms until `until`; returns the events of `a`.
fn run_pair(
    w: &mut World,
    a: &mut Elector,
    b: Option<&mut Elector>,
    from: u64,
    until: u64,
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut b = b;
    let mut t = from;
    while t < until {
        events.extend(w.step(a, at(t)));
        if let Some(b) = b.as_deref_mut() {
            w.step(b, at(t));
        }
        t += 50;
    }
    events
}

/// Time by which a quorum of two has its first leader (vacancy, then a check).
const QUORUM_UP_MS: u64 = 6000;

#[test]
fn with_quorum_a_leader_is_elected_and_publishes_its_members() {
    let mut w = World::new();
    let (mut a, mut b) = (quorum_elector("a", 2), quorum_elector("bb", 2));
    run_pair(&mut w, &mut a, Some(&mut b), 0, QUORUM_UP_MS);
    let t = at(QUORUM_UP_MS);
    let (sa, sb) = (a.status(t), b.status(t));
    assert_eq!(
        [sa.role, sb.role]
            .iter()
            .filter(|r| **r == Role::Leader)
            .count(),
        1
    );
    let leader = if sa.role == Role::Leader { &sa } else { &sb };
    let ids: Vec<&str> = leader.members.iter().map(|m| m.node_id.as_str()).collect();
    assert_eq!(ids, ["a", "bb"]);
    assert!(leader
        .members
        .iter()
        .all(|m| m.fresh && m.problem.is_none()));
    assert_eq!(leader.members[0].metadata, "meta-a");
    // The follower sees the same members, published in the lease record.
    let follower = if sa.role == Role::Leader { &sb } else { &sa };
    assert_eq!(follower.members, leader.members);
}

/// Elect one of a quorum of two; returns (leader, follower).
fn quorum_pair(w: &mut World) -> (Elector, Elector) {
    let (mut a, mut b) = (quorum_elector("a", 2), quorum_elector("bb", 2));
    run_pair(w, &mut a, Some(&mut b), 0, QUORUM_UP_MS);
    if role(&a, at(QUORUM_UP_MS)) == Role::Leader {
        (a, b)
    } else {
        assert_eq!(role(&b, at(QUORUM_UP_MS)), Role::Leader);
        (b, a)
    }
}

/// Quorum lost: the leader stops at once, but releases only when the window its last answer
/// promised is over, so no candidate can take over while the caller may still act.
#[test]
fn a_leader_below_quorum_stops_at_once_and_releases_after_its_promise() {
    let mut w = World::new();
    let (mut leader, mut follower) = quorum_pair(&mut w);
    // The follower stops heartbeating. Step the leader every 50 ms and record its promises.
    let mut promised_until = at(0);
    let mut stopped = None;
    let mut released = None;
    let mut t = QUORUM_UP_MS;
    let limit = t + 20_000;
    while t < limit && released.is_none() {
        let now = at(t);
        let events = w.step(&mut leader, now);
        let s = leader.status(now);
        if s.role == Role::Leader {
            promised_until = promised_until.max(now + s.valid_for);
        }
        if stopped.is_none()
            && events.iter().any(|e| {
                matches!(
                    e,
                    Event::Demoted {
                        reason: DemoteReason::QuorumLost,
                        ..
                    }
                )
            })
        {
            assert!(
                events.contains(&Event::QuorumLost {
                    fresh: 1,
                    needed: 2
                }),
                "{events:?}"
            );
            stopped = Some(now);
        }
        if stopped.is_some() && w.record().released {
            released = Some(now);
        }
        t += 50;
    }
    let (stopped, released) = (stopped.expect("stopped"), released.expect("released"));
    assert!(
        stopped < promised_until,
        "it stopped before its promise ran out"
    );
    assert!(
        released >= promised_until,
        "released at {released:?}, promised until {promised_until:?}"
    );
    // The member returns: quorum is restored and the election proceeds.
    let t = (released.as_nanos() / 1_000_000) + 50;
    let events = run_pair(&mut w, &mut leader, Some(&mut follower), t, t + 6000);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::QuorumRestored { fresh: 2 })),
        "{events:?}"
    );
    let roles = [role(&leader, at(t + 6000)), role(&follower, at(t + 6000))];
    assert_eq!(roles.iter().filter(|r| **r == Role::Leader).count(), 1);
}

/// Quorum checks that keep failing confirm nothing: the leader stops after the grace.
#[test]
fn a_leader_whose_quorum_checks_keep_failing_stops_after_the_grace() {
    let mut w = World::new();
    let (mut leader, _follower) = quorum_pair(&mut w);
    let q = leader.config().quorum;
    let from = QUORUM_UP_MS;
    let mut stopped = None;
    let mut t = from;
    while t < from + 20_000 && stopped.is_none() {
        // Every LIST fails (heartbeats of the follower would still arrive: it is alive).
        let now = at(t);
        leader.begin(CallKind::Tick, now);
        while let Some(req) = leader.poll_request(now) {
            let outcome = match req {
                Request::ListMembers { .. } => Outcome::Transient(Error::Store {
                    status: 503,
                    code: "SlowDown".into(),
                    message: "".into(),
                }),
                other => w.store.apply(&keys(), &other, w.store_now(now)),
            };
            leader.handle_response(now, outcome);
        }
        // Keep the follower's member object fresh by hand.
        w.store.put_raw(
            "t/e/members/bb",
            MemberRecordBody::of("bb"),
            w.store_now(now),
        );
        if std::iter::from_fn(|| leader.poll_event()).any(|e| {
            matches!(
                e,
                Event::Demoted {
                    reason: DemoteReason::QuorumLost,
                    ..
                }
            )
        }) {
            stopped = Some(t);
        }
        t += 50;
    }
    let stopped = stopped.expect("the leader stopped");
    let bound =
        from + (q.grace + q.heartbeat_interval + timings().retry_period).as_millis() as u64 + 100;
    assert!(
        stopped <= bound,
        "stopped at {stopped} ms, bound {bound} ms"
    );
}

/// The body of a member object, for tests that keep one fresh by hand.
struct MemberRecordBody;
impl MemberRecordBody {
    fn of(node: &str) -> Vec<u8> {
        crate::members::MemberRecord {
            format: crate::members::MEMBER_FORMAT.into(),
            node: node.into(),
            metadata: format!("meta-{node}"),
        }
        .encode()
    }
}

#[test]
fn a_garbage_member_object_is_reported_and_not_counted() {
    let mut w = World::new();
    w.store.put_raw("t/e/members/zz", b"garbage".to_vec(), 0);
    let mut a = quorum_elector("a", 2);
    let events = run_pair(&mut w, &mut a, None, 0, 8000);
    assert_eq!(
        role(&a, at(8000)),
        Role::Follower,
        "garbage must not make a quorum"
    );
    assert!(events.contains(&Event::QuorumLost {
        fresh: 1,
        needed: 2
    }));
    // The garbage object is read once per ETag, not on every check.
    let gets = w
        .sent
        .iter()
        .filter(|r| matches!(r, Request::GetMember { node } if node == "zz"))
        .count();
    assert_eq!(gets, 1);
    assert_eq!(
        w.store.get_object("t/e/members/zz").unwrap().body,
        b"garbage"
    );
}

/// Many members with long metadata: the leader's record stays one a reader accepts, so the
/// election can always move on.
#[test]
fn a_large_membership_never_jams_the_lease_record() {
    let mut w = World::new();
    let metadata = "x".repeat(crate::config::MAX_METADATA_LEN);
    // 300 members heartbeat (their bodies never change, so their ETags stay the same).
    let heartbeat = |w: &mut World, now: Instant| {
        for i in 0..300 {
            let node = format!("m{i:03}");
            let body = crate::members::MemberRecord {
                format: crate::members::MEMBER_FORMAT.into(),
                node: node.clone(),
                metadata: metadata.clone(),
            }
            .encode();
            let now_ms = w.store_now(now);
            w.store
                .put_raw(&format!("t/e/members/{node}"), body, now_ms);
        }
    };
    let mut a = quorum_elector("a", 2);
    for second in 0..16 {
        heartbeat(&mut w, at(second * 1000));
        run_pair(&mut w, &mut a, None, second * 1000, (second + 1) * 1000);
    }
    assert_eq!(role(&a, at(16_000)), Role::Leader);
    let body = w.store.get_object(KEY).unwrap().body.clone();
    assert!(body.len() <= crate::record::MAX_RECORD_BYTES);
    let r = LeaseRecord::decode(&body).expect("a reader accepts the leader's record");
    assert_eq!(r.members.len() + r.members_omitted as usize, 301);
}

#[test]
fn quorum_checks_follow_pagination() {
    let mut w = World::new();
    w.store = MemStore::with_page_size(2);
    let mut nodes: Vec<Elector> = (0..5)
        .map(|i| quorum_elector(&format!("m{i}"), 5))
        .collect();
    let mut t = 0;
    while t < 8000 {
        for e in nodes.iter_mut() {
            w.step(e, at(t));
        }
        t += 50;
    }
    let leaders: Vec<Status> = nodes
        .iter()
        .map(|e| e.status(at(t)))
        .filter(|s| s.role == Role::Leader)
        .collect();
    assert_eq!(
        leaders.len(),
        1,
        "five members in pages of two make a quorum of five"
    );
    assert_eq!(leaders[0].members.len(), 5);
    assert!(w.sent.iter().any(|r| matches!(
        r,
        Request::ListMembers {
            continuation: Some(_)
        }
    )));
}

#[test]
fn leave_removes_the_member_object_and_stops_heartbeats() {
    let mut w = World::new();
    let mut a = quorum_elector("a", 2);
    w.step(&mut a, at(0));
    assert!(w.store.get_object("t/e/members/a").is_some());
    w.leave(&mut a, at(100));
    assert!(w.store.get_object("t/e/members/a").is_none());
    let before = w.sent.len();
    run_pair(&mut w, &mut a, None, 200, 5000);
    assert!(w.sent[before..]
        .iter()
        .all(|r| !matches!(r, Request::PutMember { .. })));
}

// ----- store probe -----------------------------------------------------------------------------

fn probing(node: &str) -> Elector {
    let mut c = config(node);
    c.probe_store = true;
    Elector::new(c, at(0), 5)
}

#[test]
fn with_probe_store_an_honest_store_is_probed_once_then_elected_on() {
    let mut w = World::new();
    let mut a = probing("a");
    // The probe takes six requests, on top of the tick's own budget: the first tick probes,
    // then reads and writes the vacancy.
    w.step(&mut a, at(0));
    let profile = a.store_profile().expect("probed").clone();
    assert!(!profile.unquoted_etags);
    let probes = w
        .sent
        .iter()
        .filter(|r| matches!(r, Request::PutProbe { .. } | Request::DeleteProbe { .. }))
        .count();
    assert_eq!(probes, 6, "{:?}", w.sent);
    assert!(
        w.store.keys().iter().all(|k| !k.contains("/probe/")),
        "scratch object removed"
    );
    assert!(w
        .store
        .get_object(KEY)
        .is_some_and(|o| LeaseRecord::decode(&o.body).unwrap().vacant));
    w.elect(&mut a, at(1));
    let before = w.sent.len();
    w.step_when_due(&mut a);
    assert!(w.sent[before..]
        .iter()
        .all(|r| !matches!(r, Request::PutProbe { .. })));
}

#[test]
fn with_probe_store_a_store_that_ignores_conditions_is_never_written() {
    let mut w = World::new();
    let mut a = probing("a");
    let mut now = at(0);
    let mut refusals = 0;
    while now < at(10_000) {
        // This store applies every write, whatever its condition.
        a.begin(CallKind::Tick, now);
        while let Some(req) = a.poll_request(now) {
            w.sent.push(req.clone());
            let outcome = match &req {
                Request::PutProbe {
                    scratch,
                    missing_key,
                    body,
                    ..
                } => Outcome::Written {
                    etag: w.store.put_raw(
                        &keys().probe_scratch(scratch, *missing_key),
                        body.clone(),
                        0,
                    ),
                },
                other => w.store.apply(&keys(), other, 0),
            };
            a.handle_response(now, outcome);
        }
        if let Err(e) = a.finish(now) {
            assert!(matches!(e, Error::ConditionalWritesUnsupported(_)), "{e:?}");
            refusals += 1;
        }
        assert_eq!(role(&a, now), Role::Follower);
        now = now + Duration::from_millis(250);
    }
    assert!(refusals > 10, "the refusal is repeated on every step");
    assert!(
        w.store.get_object(KEY).is_none(),
        "the lease was never written"
    );
    assert!(w
        .sent
        .iter()
        .all(|r| !matches!(r, Request::Put { .. } | Request::Get { .. })));
}

#[test]
fn a_query_reads_once_and_never_writes_not_even_a_free_lease() {
    let mut w = World::new();
    // No lease object: nobody leads, and the query does not create one.
    let mut observer = elector("obs");
    assert_eq!(w.query(&mut observer, at(0)), None);
    assert!(matches!(w.sent[..], [Request::Get { .. }]), "{:?}", w.sent);
    assert!(w.store.get_object(KEY).is_none());

    // A live lease: its holder, also when asked by another process with the holder's id.
    let mut a = elector("a");
    let t0 = w.elect(&mut a, at(100));
    let term = w.record().term;
    let later = t0 + Duration::from_millis(100);
    let holder = w.query(&mut elector("obs"), later).expect("a leads");
    assert_eq!((holder.node_id.as_str(), holder.term), ("a", term));
    let itself = w.query(&mut twin("a"), later).expect("a leads");
    assert_eq!(itself.node_id, "a");
    // The leader itself answers without a request.
    let sent = w.sent.len();
    assert_eq!(w.query(&mut a, later).map(|l| l.term), Some(term));
    assert_eq!(w.sent.len(), sent);

    // Released: nobody leads, and the query does not take it.
    w.resign(&mut a, later);
    assert_eq!(
        w.query(&mut elector("obs"), later + Duration::from_millis(100)),
        None
    );
    assert!(w.record().released && w.record().term == term);
}

/// A fresh elector judges a record it has only just seen by the store's clock: an expired
/// lease does not name a leader, whether asked by a query or shown in the status.
#[test]
fn a_fresh_elector_does_not_name_the_holder_of_an_expired_lease() {
    let mut w = World::new();
    let t0 = w.elect(&mut elector("a"), at(0));
    let puts = w.puts_sent().len();
    let later = t0 + LEASE * 3;
    assert_eq!(w.query(&mut elector("obs"), later), None);
    let mut fresh = elector("obs");
    w.step(&mut fresh, later);
    assert_eq!(fresh.status(later).leader, None);
    assert_eq!(w.puts_sent().len(), puts, "nothing written");
    assert_eq!(w.record().holder, "a");
}

#[test]
fn a_query_whose_read_fails_is_an_error_not_nobody() {
    let mut w = World::new();
    w.step(&mut elector("a"), at(0));
    let mut observer = elector("obs");
    observer.begin(CallKind::Query, at(100));
    let read = observer.poll_request(at(100));
    assert!(matches!(read, Some(Request::Get { .. })), "{read:?}");
    observer.handle_response(
        at(100),
        Outcome::Transient(Error::Transport("timeout".into())),
    );
    assert_eq!(observer.poll_request(at(100)), None, "one read per query");
    assert!(matches!(observer.finish(at(100)), Err(Error::Transport(_))));
}

/// Regression (found by the simulator's seed 74111): a candidate paused half-way through a
/// quorum check must not acquire on the old listing when it wakes; a listing is as old as
/// its check's start.
#[test]
fn a_quorum_check_interrupted_by_a_long_pause_is_not_trusted() {
    let mut w = World::new();
    let (mut a, mut b) = (quorum_elector("a", 2), quorum_elector("bb", 2));
    // Both heartbeat; the vacancy is written and ages.
    let ready = first_leader_at() - Duration::from_millis(50);
    let mut t = at(0);
    while t < ready {
        w.step(&mut b, t);
        w.step(&mut a, t);
        t = t + Duration::from_millis(50);
    }
    // From here a is driven one request at a time: it lists (bb fresh), then pauses for ten
    // seconds in which bb dies, then reads the member bodies and finishes its check.
    let mut listed = false;
    let mut now = t;
    for _ in 0..40 {
        a.begin(CallKind::Tick, now);
        let Some(req) = a.poll_request(now) else {
            now = a.poll_timeout().max(now + Duration::from_millis(1));
            continue;
        };
        let answer = w.store.apply(&keys(), &req, w.store_now(now));
        let list = matches!(req, Request::ListMembers { .. });
        a.handle_response(now, answer);
        if list && !listed {
            listed = true;
            now = now + Duration::from_secs(10); // paused; bb's heartbeats stop meanwhile
        }
        assert_eq!(
            role(&a, now),
            Role::Follower,
            "acquired on a stale listing at {now:?}"
        );
        if w.sent.len() > 1000 {
            break;
        }
    }
    assert!(listed, "a listed the members");
    assert!(!w.record().is_held(), "nobody leads: bb is gone");
}

// ----- request rate --------------------------------------------------------------------------

/// The most requests sent in any window of `periods` retry periods.
fn busiest_window(w: &World, periods: u32) -> usize {
    let window = timings().retry_period * periods;
    w.sent_at
        .iter()
        .map(|&start| {
            w.sent_at
                .iter()
                .filter(|&&t| t >= start && t < start + window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Issue 25: on a store that matches only bare ETags (Ceph RGW), an elector configured for
/// quoted ones, with no probe, finds out from the first refused write and elects at once.
#[test]
fn a_store_matching_only_bare_etags_is_elected_on_without_a_probe() {
    let mut w = World::new();
    w.store.etag_matching = EtagMatching::BareOnly;
    let mut a = elector("a");
    let took = w.elect(&mut a, at(0));
    assert!(
        took <= first_leader_at() + timings().retry_period,
        "led at {took:?}, vacancy over at {:?}",
        first_leader_at()
    );
    // Renewals go out bare from then on, and succeed the first time.
    let before = w.sent.len();
    w.run(&mut a, took, took + LEASE * 4);
    assert_eq!(role(&a, took + LEASE * 4), Role::Leader);
    let renewals = w.sent[before..]
        .iter()
        .filter(|r| matches!(r, Request::Put { .. }))
        .count();
    assert_eq!(
        renewals,
        w.sent.len() - before,
        "only renewals, no read-backs"
    );
    // A quoted start costs one refused write and its read-back, nothing more.
    let refused = w.sent[..before]
        .iter()
        .filter(|r| matches!(r, Request::Put { mode: PutMode::Update(e), .. } if e.form() == EtagForm::Quoted))
        .count();
    assert_eq!(refused, 1, "{:?}", w.sent);
}

/// Issue 25: whatever a store answers, an elector that does not lead sends a few requests
/// per retry period. Here every conditional update is refused (both ETag forms).
#[test]
fn a_store_refusing_every_update_costs_a_few_requests_per_retry_period() {
    let mut w = World::new();
    let mut a = elector("a");
    w.step(&mut a, at(0)); // the vacancy (a create) is written
    let mut now = at(1);
    let mut errors = Vec::new();
    while now < at(60_000) {
        // Reads are answered by the store, writes refused.
        let due = a.poll_timeout().max(now);
        a.begin(CallKind::Tick, due);
        while let Some(req) = a.poll_request(due) {
            w.sent.push(req.clone());
            w.sent_at.push(due);
            let outcome = if matches!(req, Request::Put { .. }) {
                Outcome::PreconditionFailed
            } else {
                w.store.apply(&keys(), &req, w.store_now(due))
            };
            a.handle_response(due, outcome);
        }
        if let Ok(Reply::Status(s)) = a.finish(due) {
            errors.extend(s.last_error);
            assert_eq!(s.role, Role::Follower);
        }
        now = due + Duration::from_millis(1);
    }
    let periods = (at(60_000).saturating_since(at(1)).as_millis()
        / timings().retry_period.as_millis()) as usize;
    assert!(
        w.sent.len() <= periods * 4,
        "{} requests in {periods} retry periods",
        w.sent.len()
    );
    assert!(busiest_window(&w, 5) <= 20, "{}", busiest_window(&w, 5));
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, Error::ConditionalWritesUnsupported(why) if why.contains("quoted or bare"))),
        "the refusal is reported: {errors:?}"
    );
}

/// The same store with the old behaviour (mutation `busy-retry`): every tick spends its
/// whole budget and asks for the next at once.
#[test]
fn with_busy_retry_a_refusing_store_is_hammered() {
    let mut w = World::new();
    w.store.etag_matching = EtagMatching::BareOnly;
    let mut a = elector("a");
    a.set_mutation(Some(Mutation::BusyRetry));
    let end = first_leader_at() + timings().retry_period * 5;
    let mut now = at(0);
    let mut ticks = 0;
    while now < end && ticks < 10_000 {
        w.step(&mut a, now);
        ticks += 1;
        now = a.poll_timeout().max(now + Duration::from_micros(10));
    }
    assert_eq!(role(&a, now), Role::Follower, "never leads");
    assert!(busiest_window(&w, 5) > 1000, "{}", busiest_window(&w, 5));
}

/// Issue 25: a stateless instance that leaves a write unsettled (here: 409 to every write)
/// asks for its next invocation a retry period later, not at once.
#[test]
fn a_stateless_instance_that_leaves_a_write_unsettled_is_not_called_again_at_once() {
    let mut w = World::new();
    w.step(&mut elector("a"), at(0)); // a vacancy
    let later = first_leader_at() + Duration::from_secs(3);
    let mut b = stateless("bb", later, 1);
    b.begin(CallKind::Tick, later);
    let mut sent = 0;
    while let Some(req) = b.poll_request(later) {
        sent += 1;
        let outcome = match req {
            Request::Put { .. } => Outcome::Conflict,
            other => w.store.apply(&keys(), &other, w.store_now(later)),
        };
        b.handle_response(later, outcome);
    }
    assert_eq!(sent, MAX_REQUESTS_PER_TICK);
    let Ok(Reply::Status(status)) = b.finish(later) else {
        panic!("a status")
    };
    assert!(
        status.next_step_in >= timings().retry_period,
        "{:?}",
        status.next_step_in
    );
}

/// A stateless instance with `probe-store` (a fresh probe on every call) probes and still
/// has a full tick's budget for the election: it elects.
#[test]
fn a_stateless_instance_with_the_probe_elects() {
    let mut w = World::new();
    w.store.etag_matching = EtagMatching::BareOnly;
    let fresh = |now: Instant, n: u64| {
        let mut c = config("a");
        c.stateless = true;
        c.probe_store = true;
        Elector::new(c, now, n)
    };
    let mut now = at(0);
    for n in 0..100 {
        let mut e = fresh(now, n);
        w.step(&mut e, now);
        if role(&e, now) == Role::Leader {
            return;
        }
        now = now + e.status(now).next_step_in.max(Duration::from_millis(100));
    }
    panic!("never led: {:?}", w.sent.last());
}

// ----- operators' changes (issue 18) -------------------------------------------------------

fn with_lease(node: &str, lease: Duration, longest: Option<Duration>) -> Elector {
    let mut c = config(node);
    c.timings = Timings::for_lease(lease);
    if let Some(l) = longest {
        c.timings.longest_lease = l;
    }
    Elector::new(c, at(0), seed(node))
}

/// Step every elector at 20 ms intervals from `from` until one of `candidates` leads; that
/// instant and who.
fn first_new_leader(
    w: &mut World,
    electors: &mut [&mut Elector],
    from: Instant,
    limit: Duration,
) -> Option<(Instant, String)> {
    let mut now = from;
    while now < from + limit {
        for e in electors.iter_mut() {
            w.step(e, now);
            if role(e, now) == Role::Leader {
                return Some((now, e.config().node_id.clone()));
            }
        }
        now = now + Duration::from_millis(20);
    }
    None
}

/// The vacancy's lease, as written.
fn vacancy_lease(w: &World) -> Option<u64> {
    let r = w.record();
    r.vacant.then_some(r.lease_ms)
}

/// Case 1: a 12 s leader, a 2 s follower that saw its record, the object deleted right after
/// a renewal: the follower's vacancy carries the 12 s it saw, and nobody leads inside the old
/// leader's promise.
#[test]
fn a_vacancy_carries_the_longest_lease_its_writer_saw() {
    let mut w = World::new();
    let long = Duration::from_secs(12);
    let mut a = with_lease("a", long, None);
    let mut b = with_lease("bb", Duration::from_secs(2), None);
    let t0 = w.elect(&mut a, at(0));
    w.step(&mut b, t0);
    let renewed = a.poll_timeout();
    w.step(&mut a, renewed);
    let promised_until = renewed + a.status(renewed).valid_for;
    w.store.delete(KEY);
    let after = renewed + Duration::from_millis(10);
    w.step(&mut b, after); // finds it missing, writes the vacancy
    assert_eq!(vacancy_lease(&w), Some(12_000));
    let (led, _) = first_new_leader(&mut w, &mut [&mut b], after, Duration::from_secs(30))
        .expect("b leads in the end");
    assert!(
        led >= promised_until,
        "led at {led:?}, promise until {promised_until:?}"
    );
    // The old rule (mutation vacancy-own-lease): a 2 s vacancy, taken inside the promise.
    let mut w = World::new();
    let mut a = with_lease("a", long, None);
    let mut b = with_lease("bb", Duration::from_secs(2), None);
    b.set_mutation(Some(Mutation::VacancyOwnLease));
    let t0 = w.elect(&mut a, at(0));
    w.step(&mut b, t0);
    let renewed = a.poll_timeout();
    w.step(&mut a, renewed);
    let promised_until = renewed + a.status(renewed).valid_for;
    w.store.delete(KEY);
    let (led, _) =
        first_new_leader(&mut w, &mut [&mut b], renewed, Duration::from_secs(30)).expect("b leads");
    assert!(led < promised_until, "the mutant waited: {led:?}");
}

/// Case 1: a node that never saw the 12 s record writes a short vacancy; a node that saw it
/// raises the vacancy to 12 s before anyone may take it, so the newcomer waits too.
#[test]
fn a_vacancy_shorter_than_a_lease_seen_is_raised() {
    let mut w = World::new();
    let long = Duration::from_secs(12);
    let short = Duration::from_secs(2);
    let mut a = with_lease("a", long, None);
    let mut b = with_lease("bb", short, None);
    let t0 = w.elect(&mut a, at(0));
    w.step(&mut b, t0);
    let renewed = a.poll_timeout();
    w.step(&mut a, renewed);
    let promised_until = renewed + a.status(renewed).valid_for;
    w.store.delete(KEY);
    let mut c = with_lease("ccc", short, None);
    let after = renewed + Duration::from_millis(5);
    w.step(&mut c, after); // the newcomer finds it missing first
    assert_eq!(vacancy_lease(&w), Some(2_000));
    w.step(&mut b, after + Duration::from_millis(10));
    assert_eq!(
        vacancy_lease(&w),
        Some(12_000),
        "raised by the node that saw 12 s"
    );
    let (led, who) = first_new_leader(
        &mut w,
        &mut [&mut c, &mut b],
        after + Duration::from_millis(20),
        Duration::from_secs(30),
    )
    .expect("a new leader");
    assert!(
        led >= promised_until,
        "{who} led at {led:?}, promise until {promised_until:?}"
    );
}

/// Case 1, the operator's rule: during a change of lease lengths every node is told the
/// longest lease in use, so even a node that never saw the long record waits it out.
#[test]
fn the_longest_lease_setting_covers_nodes_that_never_saw_the_record() {
    let mut w = World::new();
    let long = Duration::from_secs(12);
    let mut a = with_lease("a", long, None);
    let t0 = w.elect(&mut a, at(0));
    let renewed = a.poll_timeout();
    w.step(&mut a, renewed);
    let promised_until = renewed + a.status(renewed).valid_for;
    w.store.delete(KEY);
    let mut c = with_lease("ccc", Duration::from_secs(2), Some(long));
    let (led, _) =
        first_new_leader(&mut w, &mut [&mut c], renewed, Duration::from_secs(30)).expect("c leads");
    assert!(led >= promised_until);
    assert!(t0 < renewed);
}

/// Case 2: the store's clock steps back an hour after a deletion. A node that never saw the
/// old term writes the vacancy with term 1 and would take a term from the (stepped back)
/// clock; a node that saw the old term raises the vacancy's term first, so terms still grow.
#[test]
fn terms_survive_a_store_clock_step_back_through_a_node_that_saw_them() {
    let run = |witness: bool, mutation: Option<Mutation>| {
        let mut w = World::new();
        let (mut a, mut b) = (elector("a"), elector("bb"));
        let t0 = w.elect(&mut a, at(0));
        w.step(&mut b, t0);
        let old = w.record().term;
        w.store.delete(KEY);
        w.store_epoch_s -= 3600;
        let mut c = elector("ccc");
        c.set_mutation(mutation);
        b.set_mutation(mutation);
        let later = t0 + Duration::from_millis(100);
        w.step(&mut c, later);
        assert_eq!(w.record().term, 1, "the newcomer's vacancy knows no term");
        let mut electors: Vec<&mut Elector> = vec![&mut c];
        if witness {
            electors.push(&mut b);
        }
        first_new_leader(&mut w, &mut electors, later, Duration::from_secs(30))
            .expect("a new leader");
        (old, w.record().term)
    };
    let (old, new) = run(true, None);
    assert!(new > old, "term went from {old} to {new}");
    // The old rule (mutation vacancy-keeps-its-term): the term goes back with the clock.
    let (old, new) = run(true, Some(Mutation::VacancyKeepsItsTerm));
    assert!(new < old, "{old} then {new}");
    // The assumption, shown: with nobody alive who saw the old term, it comes from the
    // store's clock alone, and goes back with it.
    let (old, new) = run(false, None);
    assert!(new < old, "{old} then {new}");
}

/// A vacancy is taken once it has aged its lease (no waiting for the store's `Date` to pass
/// its `Last-Modified`), with a term above the store's clock a skew past its write.
#[test]
fn a_vacancy_is_taken_with_a_term_above_its_write_by_the_store_clock() {
    let mut w = World::new();
    let mut a = elector("a");
    w.step(&mut a, at(0));
    let written_s = w.store.get_object(KEY).unwrap().last_modified_ms / 1000;
    let took = w.elect(&mut a, at(1));
    assert_eq!(took, first_leader_at());
    let skew_s = timings().store_clock_skew.as_secs();
    assert!(w.record().term >= (written_s + skew_s + 1) * crate::record::TERMS_PER_SECOND);
}

/// Case 7: a store clock past the year 4824 is named as what it is.
#[test]
fn a_store_clock_beyond_any_term_is_reported_as_such() {
    let mut w = World::new();
    let mut a = elector("a");
    w.store_epoch_s = crate::record::MAX_TERM / crate::record::TERMS_PER_SECOND + 10;
    let mut now = at(0);
    let mut error = None;
    while error.is_none() && now < at(20_000) {
        w.step(&mut a, now);
        error = w.take_error();
        now = a.poll_timeout().max(now + Duration::from_millis(1));
    }
    let error = error.expect("an error").to_string();
    assert!(error.contains("store's clock"), "{error}");
}

/// Case 7: after a deletion, an observer is told "vacant, and how long nobody may take it"
/// rather than only "nobody leads" (the deleted object's leader may act until then).
#[test]
fn a_vacancy_is_shown_as_such_with_its_wait() {
    let mut w = World::new();
    let mut a = elector("a");
    let t0 = w.elect(&mut a, at(0));
    let mut obs = elector("obs");
    w.step(&mut obs, t0);
    assert!(matches!(
        obs.lease_view(t0),
        LeaseView::Held { live: true, .. }
    ));
    w.store.delete(KEY);
    // The observer's next polls find it missing, write a vacancy and read it.
    let t1 = w.run(&mut obs, t0, t0 + timings().retry_period * 3);
    let wait = LEASE + timings().grace;
    match obs.lease_view(t1) {
        LeaseView::Vacant { wait: left, lease } => {
            assert_eq!(lease, LEASE);
            let since = t1.saturating_since(t0);
            assert!(left <= wait && left + since >= wait, "{left:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(obs.status(t1).leader, None, "nobody leads on a vacancy");
}
