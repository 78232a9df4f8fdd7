//! Quorum of observers with the real component against a real S3 server (ministack, SigV4
//! verified). Member objects only: no member ever writes the lease to heartbeat.

mod common;

use common::*;
use host_test::check::history::Observation;
use host_test::host::faults::Faults;
use std::time::Duration;

const LEASE: u32 = 2000;
/// Heartbeat 666 ms, member TTL 3000 ms (the floor), grace one lease: derived defaults.
const TTL: Duration = Duration::from_millis(3000);
const GRACE: Duration = Duration::from_millis(LEASE as u64);
const SLACK: Duration = Duration::from_millis(2500);

fn member(name: &str, node: &str, quorum: u32) -> host_test::api::ElectionConfig {
    let mut e = election(name, node, LEASE);
    e.quorum = Some(host_test::quorum(quorum));
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_of_three_elect_lose_the_quorum_and_recover() {
    let b = bucket("quorum-3");
    let mut c = cluster(&b);
    c.start_all((1..=3).map(|i| member("q3", &format!("m{i}"), 3)).collect())
        .await
        .unwrap();
    c.wait_for(ms(LEASE) * 4, |h| h.iter().any(Observation::is_leader))
        .await
        .expect("a leader with a quorum of three");
    tokio::time::sleep(ms(LEASE)).await;
    let leader = leaders_now(&c).pop().expect("a leader");
    let ids: Vec<&str> = leader.members.iter().map(|m| m.node.as_str()).collect();
    assert_eq!(ids, ["m1", "m2", "m3"], "{leader:?}");
    assert!(leader
        .members
        .iter()
        .all(|m| m.fresh && m.metadata.starts_with("meta-")));

    // A member stops (no leave): its object goes stale, the leader releases after the grace.
    let victim = c
        .node_ids()
        .into_iter()
        .find(|id| *id != leader.node)
        .unwrap();
    let stopped_at = c.now_ms();
    c.kill(&victim);
    let bound = TTL + GRACE + ms(LEASE / 3) + SLACK;
    c.wait_for(bound + SLACK, |h| {
        h.iter()
            .any(|o| o.at_ms > stopped_at && o.node == leader.node && has_event(o, "quorum-lost"))
    })
    .await
    .expect("the leader reports the quorum lost");
    let h = c.history();
    let lost = h
        .iter()
        .find(|o| o.at_ms > stopped_at && o.node == leader.node && has_event(o, "quorum-lost"))
        .unwrap();
    assert!(
        Duration::from_millis(lost.at_ms - stopped_at) <= bound,
        "{lost:?} after {stopped_at}"
    );
    assert!(
        Duration::from_millis(lost.at_ms - stopped_at) >= TTL,
        "released before the member could be stale"
    );
    let term = leader.term.expect("a term");
    assert!(
        has_event(lost, &format!("demoted(term={term}, quorum-lost)")),
        "{lost:?}"
    );
    // It stopped at once, but releases only once the window its last leader answer promised
    // is over: no candidate may take over while its caller may still act.
    let promised_until = h
        .iter()
        .filter(|o| o.node == leader.node && o.is_leader())
        .map(|o| o.at_ms + o.valid_ms)
        .max()
        .unwrap();
    let released = || {
        let body = env()
            .store
            .get_object(&b, "tests/q3/lease")
            .unwrap()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["released"] == true
    };
    let mut released_at = None;
    for _ in 0..200 {
        if released() {
            released_at = Some(c.now_ms());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let released_at = released_at.expect("released with a conditional write");
    assert!(
        released_at >= promised_until,
        "released at {released_at} ms, promised until {promised_until} ms"
    );
    // Nobody leads without the quorum.
    tokio::time::sleep(ms(LEASE)).await;
    assert!(leaders_now(&c).is_empty(), "{}", pretty(&c.latest()));

    // The member returns: the election proceeds with the next term.
    let back_at = c.now_ms();
    c.start(member("q3", &victim, 3)).await.unwrap();
    c.wait_for(ms(LEASE) * 4, |h| {
        h.iter().any(|o| o.at_ms > back_at && o.is_leader())
    })
    .await
    .expect("a leader once the quorum is back");
    let new = leaders_now(&c).pop().unwrap();
    assert!(new.term > Some(term), "{new:?}");
    c.wait_for(ms(LEASE) * 2, |h| {
        h.iter()
            .any(|o| o.at_ms > back_at && o.node == leader.node && has_event(o, "quorum-restored"))
    })
    .await
    .expect("the old leader reports the quorum restored");
    c.stop_all().await;
    assert_invariants(&c.history());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_one_is_a_plain_election_without_member_requests() {
    let b = bucket("quorum-1");
    let mut c = cluster(&b);
    let plain = |i: u32| {
        let mut e = election("q1", &format!("p{i}"), LEASE);
        e.quorum = Some(host_test::quorum(1));
        e
    };
    c.start_all((1..=3).map(plain).collect()).await.unwrap();
    c.wait_for(ms(LEASE) * 3, |h| h.iter().any(Observation::is_leader))
        .await
        .unwrap();
    tokio::time::sleep(ms(LEASE) * 2).await;
    for id in c.node_ids() {
        let counts = c.faults(&id).unwrap().requests();
        assert!(counts.total() > 0);
        assert_eq!(counts.members, 0, "{id}: {counts:?}");
    }
    assert!(c.latest().iter().all(|o| o.members.is_empty()));
    c.stop_all().await;
    assert_invariants(&c.history());
    assert!(env()
        .store
        .get_object(&b, "tests/q1/members/p1")
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_member_object_is_reported_and_not_counted() {
    let b = bucket("quorum-garbage");
    env()
        .store
        .put_object(
            &b,
            "tests/qg/members/intruder",
            b"\x00 definitely not a member",
        )
        .unwrap();
    let mut c = cluster(&b);
    // Two real members and one garbage object: a quorum of three must not be reached.
    c.start_all((1..=2).map(|i| member("qg", &format!("g{i}"), 3)).collect())
        .await
        .unwrap();
    tokio::time::sleep(ms(LEASE) * 3).await;
    let h = c.history();
    assert!(h.iter().all(|o| !o.is_leader()), "{}", pretty(&h));
    assert!(
        h.iter().any(|o| has_event(o, "quorum-lost(2/3)")),
        "{}",
        pretty(&h)
    );
    c.stop_all().await;
    // With a quorum of two the same nodes elect, and the leader lists the intruder as garbage.
    let mut c = cluster(&b);
    c.start_all((1..=2).map(|i| member("qg", &format!("g{i}"), 2)).collect())
        .await
        .unwrap();
    c.wait_for(ms(LEASE) * 4, |h| h.iter().any(Observation::is_leader))
        .await
        .expect("a leader with two real members");
    tokio::time::sleep(ms(LEASE / 2)).await;
    let leader = leaders_now(&c).pop().unwrap();
    let intruder = leader
        .members
        .iter()
        .find(|m| m.node == "intruder")
        .expect("listed");
    assert!(!intruder.fresh);
    assert!(
        intruder
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("not a JSON member record")),
        "{intruder:?}"
    );
    assert_eq!(leader.members.iter().filter(|m| m.fresh).count(), 2);
    c.stop_all().await;
    // Never overwritten, and a clean exit removed the real members' objects.
    assert_eq!(
        env()
            .store
            .get_object(&b, "tests/qg/members/intruder")
            .unwrap()
            .as_deref(),
        Some(&b"\x00 definitely not a member"[..])
    );
    assert!(
        env()
            .store
            .get_object(&b, "tests/qg/members/g1")
            .unwrap()
            .is_none(),
        "leave deletes the member object"
    );
}

/// p50 and p99 of a set of durations, in ms.
fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_heartbeating_members_do_not_disturb_renewals() {
    let b = bucket("quorum-20");
    let mut runs = Vec::new();
    for members in [0u32, 20] {
        let mut c = cluster(&b);
        let name = format!("busy{members}");
        let mut leader = member(&name, "leader", 2);
        leader.quorum = Some(host_test::quorum(if members == 0 { 1 } else { 2 }));
        c.start(leader).await.unwrap();
        let observers = (1..=members)
            .map(|i| member(&name, &format!("o{i:02}"), 2))
            .collect();
        c.start_all(observers).await.unwrap();
        // Any of the nodes may win (all are candidates): measure whichever leads.
        c.wait_for(ms(LEASE) * 4, |h| h.iter().any(Observation::is_leader))
            .await
            .expect("a leader");
        let first = leaders_now(&c).pop().expect("a leader");
        let leader = first.node;
        let started = c.now_ms();
        tokio::time::sleep(Duration::from_secs(6)).await;
        let h = c.history();
        let faults: &Faults = &c.faults(&leader).unwrap();
        let latencies = faults.lease_write_latencies();
        // The leader kept its term and was never demoted while the members heartbeated.
        let mine = answers_of(&h, &leader, started);
        assert!(
            mine.iter().all(|o| o.is_leader() && o.term == first.term),
            "{}",
            pretty(&h)
        );
        assert!(!mine.iter().any(|o| has_event(o, "demoted")));
        if members > 0 {
            let seen = mine
                .last()
                .unwrap()
                .members
                .iter()
                .filter(|m| m.fresh)
                .count();
            assert_eq!(seen, members as usize + 1, "the leader counts every member");
        }
        runs.push((members, percentiles(latencies)));
        c.stop_all().await;
        assert_invariants(&c.history());
    }
    for (members, (p50, p99)) in runs {
        println!("renewal latency with {members:>2} members heartbeating: p50 {p50:.1} ms, p99 {p99:.1} ms");
    }
}
