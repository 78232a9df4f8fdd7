//! Each fault kind of host-test's request hook, against the real component and a real S3
//! server (ministack, SigV4 verified). Every run is judged by the invariant checker.

mod common;

use common::*;
use host_test::check::history::Observation;
use host_test::host::faults::{Fault, Faults, Rule, Target};
use std::time::Duration;

const LEASE: u32 = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_renewals_make_the_leader_step_down_before_a_takeover() {
    let b = bucket("fault-drop");
    let mut c = cluster_with_leader(&b, "drop", 3, LEASE).await;
    tokio::time::sleep(ms(LEASE / 2)).await;
    let old = leaders_now(&c).pop().unwrap();
    let from = c.now_ms();
    let faults = c.faults(&old.node).unwrap();
    faults.inject(Rule::always(Fault::Drop, Target::Any));
    c.wait_for(ms(LEASE) * 4, |h| {
        new_leader_after(h, from, &old.node).is_some()
    })
    .await
    .expect("a new leader");
    let h = c.history();
    let down = h
        .iter()
        .find(|o| o.node == old.node && o.at_ms > from && has_event(o, "renew-deadline-exceeded"))
        .expect("the old leader stepped down");
    assert!(down.at_ms < new_leader_after(&h, from, &old.node).unwrap().at_ms);
    assert!(faults.applied() > 0);
    faults.clear();
    c.stop_all().await;
    assert_invariants(&c.history());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_requests_shorten_validity_but_keep_the_leader() {
    let b = bucket("fault-delay");
    let mut c = cluster_with_leader(&b, "delay", 2, LEASE).await;
    let leader = leaders_now(&c).pop().unwrap();
    let from = c.now_ms();
    c.faults(&leader.node).unwrap().inject(Rule::always(
        Fault::Delay(Duration::from_millis(150)),
        Target::Any,
    ));
    tokio::time::sleep(ms(LEASE) * 2).await;
    let h = c.history();
    let mine = answers_of(&h, &leader.node, from);
    assert!(
        mine.len() >= 3 && mine.iter().all(|o| o.is_leader() && o.term == leader.term),
        "{}",
        pretty(&h)
    );
    // Validity is counted from when a renewal was sent: 150 ms of delay shows up in it.
    let full = u64::from(LEASE) * 99 / 100;
    assert!(
        mine.iter().all(|o| o.valid_ms <= full - 140),
        "{}",
        pretty(&h)
    );
    c.stop_all().await;
    assert_invariants(&c.history());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses_are_retried_without_losing_the_lease() {
    let b = bucket("fault-status");
    let mut c = cluster_with_leader(&b, "status", 2, LEASE).await;
    let leader = leaders_now(&c).pop().unwrap();
    let faults = c.faults(&leader.node).unwrap();
    let from = c.now_ms();
    // A conflict is retried at once; 500 and 503 are read back and retried.
    faults.inject(Rule::times(Fault::Status(409), Target::LeaseWrites, 1));
    faults.inject(Rule::times(Fault::Status(500), Target::LeaseWrites, 1));
    faults.inject(Rule::times(Fault::Status(503), Target::LeaseWrites, 1));
    c.wait_for(ms(LEASE) * 4, |_| faults.applied() == 3)
        .await
        .expect("all three answers injected");
    tokio::time::sleep(ms(LEASE)).await;
    let h = c.history();
    let mine = answers_of(&h, &leader.node, from);
    assert!(
        mine.iter().all(|o| o.is_leader() && o.term == leader.term),
        "{}",
        pretty(&h)
    );
    assert!(!mine.iter().any(|o| has_event(o, "demoted")));
    assert!(
        mine.iter().any(|o| o
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("500") || e.contains("503"))),
        "the transient failures are reported while retried:\n{}",
        pretty(&h)
    );
    c.stop_all().await;
    assert_invariants(&c.history());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_answer_is_settled_by_reading_the_nonce_back() {
    let b = bucket("fault-cut");
    let mut c = cluster(&b);
    let faults = Faults::new();
    c.start_with_faults(election("cut", "solo", LEASE), faults.clone())
        .await
        .unwrap();
    // The node first writes a vacancy; once it is there, cut the answer to the next lease
    // write (the acquisition): the store applies it, the node never hears.
    let vacancy = || {
        env()
            .store
            .get_object(&b, "tests/cut/lease")
            .unwrap()
            .is_some()
    };
    for _ in 0..100 {
        if vacancy() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(vacancy(), "the vacancy was written");
    faults.inject(Rule::times(Fault::CutResponse, Target::LeaseWrites, 1));
    c.wait_for(ms(LEASE) * 3, |h| h.iter().any(Observation::is_leader))
        .await
        .expect("the node leads");
    let h = c.history();
    let first = h.iter().find(|o| o.is_leader()).unwrap();
    // The cut write was applied by the store; the read-back found our nonce: that write's
    // term, not a later one.
    assert_eq!(faults.applied(), 1);
    let body = env()
        .store
        .get_object(&b, "tests/cut/lease")
        .unwrap()
        .unwrap();
    let record: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(record["term"].as_u64(), first.term, "{}", pretty(&h));
    c.stop_all().await;
    assert_invariants(&c.history());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_past_its_lease_is_replaced_and_steps_down_on_waking() {
    let b = bucket("fault-pause");
    let mut c = cluster_with_leader(&b, "pause", 3, LEASE).await;
    tokio::time::sleep(ms(LEASE / 2)).await;
    let old = leaders_now(&c).pop().unwrap();
    let from = c.now_ms();
    c.faults(&old.node).unwrap().pause(ms(LEASE) * 2);
    c.wait_for(ms(LEASE) * 4, |h| {
        new_leader_after(h, from, &old.node).is_some()
    })
    .await
    .expect("a new leader while the old one is paused");
    c.wait_for(ms(LEASE) * 3, |h| {
        h.iter()
            .any(|o| o.node == old.node && o.at_ms > from && has_event(o, "demoted"))
    })
    .await
    .expect("the paused leader steps down when it runs again");
    c.stop_all().await;
    // Its last answer before the pause promised validity that ended before the takeover.
    assert_invariants(&c.history());
}
