//! One test per protocol rule, driving real electors against the in-memory store on a virtual
//! clock. `Net` lets a test lose, fail or delay answers.

use super::*;
use crate::config::{ElectionConfig, Keys, Timings};
use crate::members::QuorumConfig;
use crate::memstore::MemStore;

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
}

impl World {
    fn new() -> Self {
        World {
            store: MemStore::new(),
            store_epoch_s: 1_790_000_000,
            faults: VecDeque::new(),
            sent: Vec::new(),
        }
    }

    /// Store clock, Unix ms.
    fn store_now(&self, now: Instant) -> u64 {
        self.store_epoch_s * 1000 + now.as_nanos() / 1_000_000
    }

    /// One step of the documented call order; returns the events.
    fn step(&mut self, e: &mut Elector, now: Instant) -> Vec<Event> {
        e.handle_timeout(now);
        for _ in 0..MAX_REQUESTS_PER_TICK {
            let Some(req) = e.poll_request(now) else {
                break;
            };
            self.sent.push(req.clone());
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
        std::iter::from_fn(|| e.poll_event()).collect()
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

    /// An observer query as the glue drives it: only the query's own requests.
    fn query(&mut self, e: &mut Elector, now: Instant) -> Option<LeaderInfo> {
        e.query();
        while e.query_pending() {
            let Some(req) = e.poll_request(now) else {
                break;
            };
            self.sent.push(req.clone());
            let outcome = self
                .store
                .apply(&e.config().keys(), &req, self.store_now(now));
            e.handle_response(now, outcome);
        }
        e.queried_leader(now)
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

fn elector(node: &str) -> Elector {
    Elector::new(config(node), at(0), node.len() as u64 * 7919)
}

fn role(e: &Elector, now: Instant) -> Role {
    e.status(now).role
}

fn timings() -> Timings {
    Timings::for_lease(LEASE)
}

#[test]
fn first_election_creates_the_lease_with_term_one() {
    let mut w = World::new();
    let mut a = elector("a");
    let events = w.step(&mut a, at(0));
    assert!(events.contains(&Event::Elected { term: 1 }), "{events:?}");
    assert_eq!(role(&a, at(0)), Role::Leader);
    assert_eq!(a.status(at(0)).fencing_token, Some(1));
    assert_eq!(w.puts_sent(), vec![&PutMode::Create]);
    let r = w.record();
    assert_eq!((r.holder.as_str(), r.term, r.released), ("a", 1, false));
    assert_eq!(r.metadata, "meta-a");
}

#[test]
fn renewal_is_one_conditional_put_that_keeps_the_term() {
    let mut w = World::new();
    let mut a = elector("a");
    w.step(&mut a, at(0));
    let etag_before = w.store.get_object(KEY).unwrap().etag.clone();
    let sent_before = w.sent.len();
    let due = a.poll_timeout();
    assert_eq!(due, at(0) + timings().renew_interval);
    w.step(&mut a, due);
    assert_eq!(w.sent.len() - sent_before, 1, "one request per renewal");
    assert_eq!(
        w.sent.last(),
        Some(&Request::Put {
            mode: PutMode::Update(etag_before),
            body: match w.sent.last() {
                Some(Request::Put { body, .. }) => body.clone(),
                _ => unreachable!(),
            }
        })
    );
    let r = w.record();
    assert_eq!((r.term, r.renewals), (1, 1));
    assert_eq!(role(&a, due), Role::Leader);
    // Validity is counted from the renewal's send time, less drift.
    assert_eq!(a.status(due).valid_for, timings().shrink_by_drift(LEASE));
}

#[test]
fn a_live_leader_is_never_taken_over() {
    let mut w = World::new();
    let (mut a, mut b) = (elector("a"), elector("bb"));
    let mut now = at(0);
    while now < at(60_000) {
        w.step(&mut a, now);
        w.step(&mut b, now);
        assert_eq!(role(&a, now), Role::Leader);
        assert_eq!(role(&b, now), Role::Follower);
        assert_eq!(b.status(now).leader.map(|l| l.node_id), Some("a".into()));
        now = now + Duration::from_millis(100);
    }
    assert_eq!(w.record().term, 1);
}

#[test]
fn follower_waits_lease_plus_grace_of_its_own_observation() {
    let mut w = World::new();
    let (mut a, mut b) = (elector("a"), elector("bb"));
    w.step(&mut a, at(0));
    // b first sees a's record at 1 s, a crashes right after.
    w.step(&mut b, at(1000));
    let wait = LEASE + timings().grace;
    let mut now = at(1000);
    while now < at(1000) + wait {
        w.step(&mut b, now);
        assert_eq!(role(&b, now), Role::Follower, "took over early at {now:?}");
        now = now + Duration::from_millis(50);
    }
    // b wakes itself exactly at the expiry and takes over with the next term.
    assert_eq!(b.poll_timeout(), at(1000) + wait);
    let events = w.step(&mut b, at(1000) + wait);
    assert!(events.contains(&Event::Elected { term: 2 }), "{events:?}");
}

#[test]
fn observed_time_restarts_when_the_record_changes() {
    let mut w = World::new();
    let (mut a, mut b) = (elector("a"), elector("bb"));
    w.step(&mut a, at(0));
    w.step(&mut b, at(0));
    // a renews at 1 s; b notices at 1.2 s; the wait starts again from there.
    w.step(&mut a, at(1000));
    w.step(&mut b, at(1200));
    w.step(&mut b, at(3400));
    assert_eq!(role(&b, at(3400)), Role::Follower);
    let wait = LEASE + timings().grace;
    w.step(&mut b, at(1200) + wait);
    assert_eq!(role(&b, at(1200) + wait), Role::Leader);
}

#[test]
fn polls_are_conditional_gets() {
    let mut w = World::new();
    let (mut a, mut b) = (elector("a"), elector("bb"));
    w.step(&mut a, at(0));
    w.step(&mut b, at(10));
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
fn released_lease_is_taken_at_once_with_the_next_term() {
    let mut w = World::new();
    let (mut a, mut b) = (elector("a"), elector("bb"));
    w.step(&mut a, at(0));
    w.step(&mut b, at(0));
    a.resign(at(500));
    let events = w.step(&mut a, at(500));
    assert!(events.contains(&Event::Demoted {
        term: 1,
        reason: DemoteReason::Resigned
    }));
    let r = w.record();
    assert!(r.released);
    assert_eq!(r.term, 1, "release keeps the term");
    assert!(!a.release_pending());
    // b acquires on its next poll, well before any lease could expire.
    let next = b.poll_timeout();
    assert!(next <= at(0) + timings().retry_period);
    let events = w.step(&mut b, next);
    assert!(events.contains(&Event::Elected { term: 2 }), "{events:?}");
    // a stays out.
    w.run(&mut a, at(600), at(20_000));
    assert_eq!(role(&a, at(20_000)), Role::Follower);
}

#[test]
fn resign_is_a_conditional_write_never_a_delete() {
    let mut w = World::new();
    let mut a = elector("a");
    w.step(&mut a, at(0));
    a.resign(at(100));
    w.step(&mut a, at(100));
    assert!(w
        .puts_sent()
        .iter()
        .skip(1)
        .all(|m| matches!(m, PutMode::Update(_))));
    assert!(w.store.get_object(KEY).is_some());
}

#[test]
fn leader_steps_down_at_the_renew_deadline_before_anyone_may_take_over() {
    let mut w = World::new();
    let (mut a, mut b) = (elector("a"), elector("bb"));
    w.step(&mut a, at(0));
    w.step(&mut b, at(0));
    // From now on every request of a is lost.
    let mut now = at(1);
    let mut a_stepped_down = None;
    let mut b_took_over = None;
    while now < at(20_000) {
        if a_stepped_down.is_none() {
            w.faults.push_back(Fault::Drop);
            w.faults.push_back(Fault::Drop);
            w.faults.push_back(Fault::Drop);
            w.faults.push_back(Fault::Drop);
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
    assert!(down <= at(0) + timings().renew_deadline + Duration::from_millis(10));
    assert!(
        down < up,
        "a stepped down at {down:?}, b took over at {up:?}"
    );
    assert_eq!(w.record().term, 2);
}

#[test]
fn an_ambiguous_write_that_landed_is_recognised_by_its_nonce() {
    let mut w = World::new();
    let mut a = elector("a");
    w.faults.push_back(Fault::Answer(Outcome::NotFound));
    w.faults.push_back(Fault::LoseAnswer);
    let events = w.step(&mut a, at(0));
    // GET (404), PUT (applied, answer lost), GET read-back: our nonce → leader.
    assert_eq!(w.sent.len(), 3);
    assert!(matches!(
        w.sent[2],
        Request::Get {
            if_none_match: None
        }
    ));
    assert!(events.contains(&Event::Elected { term: 1 }), "{events:?}");
}

#[test]
fn an_ambiguous_write_that_did_not_land_is_not_taken_as_won() {
    let mut w = World::new();
    let mut a = elector("a");
    w.faults.push_back(Fault::Answer(Outcome::NotFound));
    w.faults.push_back(Fault::Drop);
    // The read-back finds someone else's record.
    let mut other = elector("zz");
    w.step(&mut other, at(0));
    w.sent.clear();
    let events = w.step(&mut a, at(1));
    assert!(
        !events.iter().any(|e| matches!(e, Event::Elected { .. })),
        "{events:?}"
    );
    assert_eq!(role(&a, at(1)), Role::Follower);
    assert_eq!(a.status(at(1)).leader.unwrap().node_id, "zz");
}

#[test]
fn a_conflict_is_retried_not_taken_as_lost() {
    let mut w = World::new();
    let mut a = elector("a");
    w.faults.push_back(Fault::Answer(Outcome::NotFound));
    w.faults.push_back(Fault::Answer(Outcome::Conflict));
    let events = w.step(&mut a, at(0));
    assert!(events.contains(&Event::Elected { term: 1 }), "{events:?}");
    // GET, PUT (409), the same PUT again.
    assert_eq!(w.sent.len(), 3);
    assert_eq!(
        w.sent[1], w.sent[2],
        "a 409 is retried with the same body and nonce"
    );
}

#[test]
fn a_race_for_creation_has_exactly_one_winner() {
    let mut w = World::new();
    let (mut a, mut b) = (elector("a"), elector("bb"));
    // Both read "missing" before either writes.
    a.handle_timeout(at(0));
    b.handle_timeout(at(0));
    let ra = a.poll_request(at(0)).unwrap();
    let rb = b.poll_request(at(0)).unwrap();
    a.handle_response(at(0), w.store.apply(&keys(), &ra, 0));
    b.handle_response(at(0), w.store.apply(&keys(), &rb, 0));
    let wa = a.poll_request(at(0)).unwrap();
    let wb = b.poll_request(at(0)).unwrap();
    assert!(matches!(
        &wa,
        Request::Put {
            mode: PutMode::Create,
            ..
        }
    ));
    a.handle_response(at(0), w.store.apply(&keys(), &wa, 0));
    b.handle_response(at(0), w.store.apply(&keys(), &wb, 0));
    // b's 412 is read back before b concludes anything.
    w.step(&mut b, at(0));
    assert_eq!(role(&a, at(0)), Role::Leader);
    assert_eq!(role(&b, at(0)), Role::Follower);
    assert_eq!(b.status(at(0)).leader.unwrap().node_id, "a");
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
        if let Some(e) = a.take_error() {
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
    w.step(&mut a, at(0));
    w.store.put_raw(KEY, b"{}".to_vec(), 0);
    // The renewal fails (412) and the read-back finds the foreign object.
    let events = w.step_when_due(&mut a);
    assert!(
        events.iter().any(|e| matches!(e, Event::Demoted { .. })),
        "{events:?}"
    );
    assert!(matches!(a.take_error(), Some(Error::ForeignRecord { .. })));
    assert_eq!(w.store.get_object(KEY).unwrap().body, b"{}");
}

#[test]
fn stateless_nodes_judge_expiry_by_the_store_clock() {
    let mut w = World::new();
    let mut a = elector("a");
    w.step(&mut a, at(0));
    let wait = LEASE + timings().grace + Duration::from_secs(1);
    let fresh = |stateless| {
        let mut c = config("bb");
        c.stateless = stateless;
        Elector::new(c, at(0), 1)
    };
    // Younger than lease + grace + 1 s by the store's clock: not yet.
    let mut b = fresh(true);
    let just_before = at(0) + wait - Duration::from_secs(1);
    w.step(&mut b, just_before);
    assert_eq!(role(&b, just_before), Role::Follower);
    // Old enough: a fresh stateless instance takes over on its first step.
    let mut b = fresh(true);
    let after = at(0) + wait + Duration::from_secs(1);
    let events = w.step(&mut b, after);
    assert!(events.contains(&Event::Elected { term: 2 }), "{events:?}");
    // A stateful node never trusts the store's clock alone: it waits its own observation.
    let mut w2 = World::new();
    w2.step(&mut elector("a"), at(0));
    let mut c = fresh(false);
    w2.step(&mut c, after);
    assert_eq!(role(&c, after), Role::Follower);
}

#[test]
fn a_fresh_instance_resumes_its_own_lease_with_the_same_term() {
    let mut w = World::new();
    let mut a = elector("a");
    w.step(&mut a, at(0));
    let mut a2 = elector("a");
    let events = w.step(&mut a2, at(1000));
    assert!(events.contains(&Event::Elected { term: 1 }), "{events:?}");
    assert_eq!(w.record().term, 1);
    assert_eq!(w.record().renewals, 1);
}

#[test]
fn a_node_that_stepped_down_reacquires_with_a_new_term() {
    let mut w = World::new();
    let mut a = elector("a");
    w.step(&mut a, at(0));
    // Let a miss its renew deadline without reaching the store.
    let deadline = at(0) + timings().renew_deadline;
    a.handle_timeout(deadline);
    assert!(matches!(
        a.poll_event(),
        Some(Event::Demoted {
            reason: DemoteReason::RenewDeadlineExceeded,
            ..
        })
    ));
    let events = w.step(&mut a, deadline);
    assert!(events.contains(&Event::Elected { term: 2 }), "{events:?}");
}

#[test]
fn a_deleted_lease_object_does_not_reset_terms() {
    let mut w = World::new();
    let (mut a, mut b) = (elector("a"), elector("bb"));
    w.step(&mut a, at(0));
    w.step(&mut b, at(0));
    a.resign(at(10));
    w.step(&mut a, at(10));
    w.step_when_due(&mut b);
    assert_eq!(w.record().term, 2);
    w.store.delete(KEY);
    let mut now = at(1000);
    while role(&b, now) == Role::Leader {
        w.step(&mut b, now);
        now = now + Duration::from_millis(100);
    }
    let due = b.poll_timeout().max(now);
    let events = w.step(&mut b, due);
    assert!(events.contains(&Event::Elected { term: 3 }), "{events:?}");
}

#[test]
fn a_write_confirmed_after_the_deadline_does_not_make_a_leader() {
    let mut w = World::new();
    let mut a = elector("a");
    a.handle_timeout(at(0));
    let get = a.poll_request(at(0)).unwrap();
    a.handle_response(at(0), w.store.apply(&keys(), &get, 0));
    let put = a.poll_request(at(0)).unwrap();
    let answer = w.store.apply(&keys(), &put, 0);
    // The answer arrives after the renew deadline of that write.
    let late = at(0) + timings().renew_deadline;
    a.handle_response(late, answer);
    assert_eq!(role(&a, late), Role::Follower);
    assert!(!std::iter::from_fn(|| a.poll_event()).any(|e| matches!(e, Event::Elected { .. })));
}

#[test]
fn validity_counts_from_when_the_request_was_sent() {
    let mut w = World::new();
    let mut a = elector("a");
    a.handle_timeout(at(0));
    let get = a.poll_request(at(0)).unwrap();
    a.handle_response(at(0), w.store.apply(&keys(), &get, 0));
    let put = a.poll_request(at(100)).unwrap();
    let answer = w.store.apply(&keys(), &put, 0);
    a.handle_response(at(900), answer);
    let valid = a.status(at(900)).valid_for;
    assert_eq!(
        valid,
        timings().shrink_by_drift(LEASE) - Duration::from_millis(800)
    );
}

#[test]
fn a_renewal_412_on_a_record_still_ours_keeps_leading() {
    let mut w = World::new();
    let mut a = elector("a");
    w.step(&mut a, at(0));
    // A delayed write of ours lands: same holder and term, new ETag.
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
    assert_eq!(
        w.record().nonce.len(),
        32,
        "renewed on top of the late write"
    );
}

#[test]
fn a_renewal_412_on_someone_elses_record_demotes() {
    let mut w = World::new();
    let mut a = elector("a");
    w.step(&mut a, at(0));
    let mut r = w.record();
    r.holder = "zz".into();
    r.term = 2;
    w.store.put_raw(KEY, r.encode(), 0);
    let events = w.step_when_due(&mut a);
    assert!(events.contains(&Event::Demoted {
        term: 1,
        reason: DemoteReason::LeaseLost {
            holder: Some("zz".into())
        }
    }));
}

#[test]
fn a_fatal_error_while_leading_steps_down_and_is_reported() {
    let mut w = World::new();
    let mut a = elector("a");
    w.step(&mut a, at(0));
    let denied = Error::AccessDenied {
        code: "AccessDenied".into(),
        message: "revoked".into(),
    };
    w.faults
        .push_back(Fault::Answer(Outcome::Fatal(denied.clone())));
    let events = w.step_when_due(&mut a);
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Demoted {
            reason: DemoteReason::Error,
            ..
        }
    )));
    assert_eq!(a.take_error(), Some(denied));
    assert_eq!(a.take_error(), None);
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
    w.step(&mut a, at(0) + timings().retry_period);
    assert_eq!(role(&a, at(0) + timings().retry_period), Role::Leader);
    assert_eq!(a.status(at(0) + timings().retry_period).last_error, None);
}

#[test]
fn leader_changes_are_reported_to_followers() {
    let mut w = World::new();
    let (mut a, mut b) = (elector("a"), elector("bb"));
    w.step(&mut a, at(0));
    let events = w.step(&mut b, at(0));
    assert!(events.iter().any(|e| matches!(e, Event::LeaderChanged { leader: Some(l) } if l.node_id == "a" && l.term == 1 && l.metadata == "meta-a")));
}

#[test]
fn resign_on_a_fresh_instance_releases_a_lease_that_names_it() {
    let mut w = World::new();
    let mut a = elector("a");
    w.step(&mut a, at(0));
    let mut a2 = elector("a");
    a2.resign(at(100));
    // It knows nothing yet: it reads, sees its own unreleased record, and releases it.
    w.step(&mut a2, at(100));
    assert!(w.record().released);
    assert!(!a2.release_pending());
}

// ----- quorum ------------------------------------------------------------------------------------

fn quorum_elector(node: &str, size: u32) -> Elector {
    let mut c = config(node);
    c.quorum.size = size;
    Elector::new(c, at(0), node.len() as u64 * 31)
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
    assert!(w.store.get_object(KEY).is_none(), "no lease was written");
    // Heartbeats went only to its own member object.
    assert!(w.store.get_object("t/e/members/a").is_some());
    assert!(w.sent.iter().all(|r| !matches!(r, Request::Put { .. })));
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

#[test]
fn with_quorum_a_leader_is_elected_and_publishes_its_members() {
    let mut w = World::new();
    let (mut a, mut b) = (quorum_elector("a", 2), quorum_elector("bb", 2));
    run_pair(&mut w, &mut a, Some(&mut b), 0, 3000);
    let (sa, sb) = (a.status(at(3000)), b.status(at(3000)));
    let leader = if sa.role == Role::Leader { &sa } else { &sb };
    assert_eq!(
        [sa.role, sb.role]
            .iter()
            .filter(|r| **r == Role::Leader)
            .count(),
        1
    );
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

#[test]
fn a_leader_below_quorum_for_the_grace_releases_and_says_why() {
    let mut w = World::new();
    let (mut a, mut b) = (quorum_elector("a", 2), quorum_elector("bb", 2));
    run_pair(&mut w, &mut a, Some(&mut b), 0, 3000);
    let (leader, follower) = if role(&a, at(3000)) == Role::Leader {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert_eq!(role(leader, at(3000)), Role::Leader);
    // The follower stops heartbeating; after its TTL and the grace, the leader releases.
    let q = leader.config().quorum;
    let quiet = (q.member_ttl + q.grace).as_millis() as u64 + 3000;
    let events = run_pair(&mut w, leader, None, 3000, 3000 + quiet);
    assert!(
        events.contains(&Event::QuorumLost {
            fresh: 1,
            needed: 2
        }),
        "{events:?}"
    );
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Demoted {
            reason: DemoteReason::QuorumLost,
            ..
        }
    )));
    assert!(w.record().released, "released with a conditional write");
    // The member returns: quorum is restored and the election proceeds.
    let t = 3000 + quiet;
    let events = run_pair(&mut w, leader, Some(follower), t, t + 4000);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::QuorumRestored { fresh: 2 })),
        "{events:?}"
    );
    let roles = [role(leader, at(t + 4000)), role(follower, at(t + 4000))];
    assert_eq!(roles.iter().filter(|r| **r == Role::Leader).count(), 1);
}

#[test]
fn a_garbage_member_object_is_reported_and_not_counted() {
    let mut w = World::new();
    w.store.put_raw("t/e/members/zz", b"garbage".to_vec(), 0);
    let mut a = quorum_elector("a", 2);
    let events = run_pair(&mut w, &mut a, None, 0, 5000);
    assert_eq!(
        role(&a, at(5000)),
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

#[test]
fn quorum_checks_follow_pagination() {
    let mut w = World::new();
    w.store = MemStore::with_page_size(2);
    let mut nodes: Vec<Elector> = (0..5)
        .map(|i| quorum_elector(&format!("m{i}"), 5))
        .collect();
    let mut t = 0;
    while t < 4000 {
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
    a.leave(at(100));
    w.step(&mut a, at(100));
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
    // The probe takes six requests: more than one step's budget.
    let mut events = w.step(&mut a, at(0));
    assert!(a.store_profile().is_none());
    assert_eq!(a.poll_timeout(), at(0), "the next step is due at once");
    events.extend(w.step(&mut a, at(0)));
    let profile = a.store_profile().expect("probed").clone();
    assert!(!profile.unquoted_etags);
    let probes = w
        .sent
        .iter()
        .filter(|r| matches!(r, Request::PutProbe { .. } | Request::DeleteProbe))
        .count();
    assert_eq!(probes, 6, "{:?}", w.sent);
    assert!(
        w.store.get_object("t/e/probe/a").is_none(),
        "scratch object removed"
    );
    events.extend(w.step(&mut a, at(1)));
    assert!(events.contains(&Event::Elected { term: 1 }), "{events:?}");
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
        a.handle_timeout(now);
        while let Some(req) = a.poll_request(now) {
            w.sent.push(req.clone());
            let outcome = match &req {
                Request::PutProbe {
                    missing_key, body, ..
                } => {
                    let key = if *missing_key {
                        "t/e/probe/a-missing"
                    } else {
                        "t/e/probe/a"
                    };
                    Outcome::Written {
                        etag: w.store.put_raw(key, body.clone(), 0),
                    }
                }
                other => w.store.apply(&keys(), other, 0),
            };
            a.handle_response(now, outcome);
        }
        if let Some(e) = a.take_error() {
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

    // A live lease: its holder, also when asked by a fresh instance of the holder itself.
    let mut a = elector("a");
    w.step(&mut a, at(100));
    let holder = w.query(&mut elector("obs"), at(200)).expect("a leads");
    assert_eq!((holder.node_id.as_str(), holder.term), ("a", 1));
    let itself = w.query(&mut elector("a"), at(200)).expect("a leads");
    assert_eq!(itself.node_id, "a");
    // The leader itself answers without a request.
    let sent = w.sent.len();
    assert_eq!(w.query(&mut a, at(300)).map(|l| l.term), Some(1));
    assert_eq!(w.sent.len(), sent);

    // Released: nobody leads, and the query does not take it.
    a.resign(at(400));
    w.step(&mut a, at(400));
    let term = w.record().term;
    assert_eq!(w.query(&mut elector("obs"), at(500)), None);
    assert!(w.record().released && w.record().term == term);

    // Expired by the store's clock: a stateless query reports nobody and writes nothing,
    // where a stateless tick would take over.
    let mut w = World::new();
    w.step(&mut elector("a"), at(0));
    let puts = w.puts_sent().len();
    let mut c = config("b");
    c.stateless = true;
    let later = at(0) + LEASE * 3;
    let mut b = Elector::new(c.clone(), later, 1);
    assert_eq!(w.query(&mut b, later), None);
    assert_eq!(w.puts_sent().len(), puts);
    assert_eq!(w.record().holder, "a");
    let events = w.step(&mut Elector::new(c, later, 1), later);
    assert!(events.contains(&Event::Elected { term: 2 }), "{events:?}");
}

#[test]
fn a_query_whose_read_fails_is_an_error_not_nobody() {
    let mut w = World::new();
    w.step(&mut elector("a"), at(0));
    let mut observer = elector("obs");
    observer.query();
    let read = observer.poll_request(at(100));
    assert!(matches!(read, Some(Request::Get { .. })), "{read:?}");
    observer.handle_response(
        at(100),
        Outcome::Transient(Error::Transport("timeout".into())),
    );
    assert!(!observer.query_pending());
    assert!(matches!(observer.take_error(), Some(Error::Transport(_))));
}
