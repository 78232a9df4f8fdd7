//! Safety where users really deploy the component, on a real store (ministack with a verified
//! IAM key; Ceph radosgw under `make test-ceph`): processes sharing a node id, an operator
//! deleting the lease, failing quorum checks, proxies and gateways that disturb the store's
//! clock, memberships too large to publish. Every run is judged by the invariant checker on
//! the windows each node promised (`valid_ms`), with processes that share a node id counted
//! as two.

mod common;

use common::*;
use host_test::api;
use host_test::check::history::Observation;
use host_test::host::faults::{Fault, Faults, Rule, Target};
use host_test::ConfigExt;

const LEASE: u32 = 2000;

fn record(bucket: &str, key: &str) -> Option<serde_json::Value> {
    env()
        .store
        .get_object(bucket, key)
        .unwrap()
        .map(|body| serde_json::from_slice(&body).unwrap())
}

/// The latest moment any leader answer of `node` promised to lead until.
fn promised_until(h: &[Observation], node: &str) -> u64 {
    h.iter()
        .filter(|o| o.node == node && o.is_leader())
        .map(|o| o.at_ms + o.valid_ms)
        .max()
        .unwrap_or(0)
}

/// Two processes with one node id (a copied config, a replica that still runs): they are
/// told apart by their instance ids, never lead together, and the second reports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_a_node_id_never_lead_together() {
    let b = bucket("shared-id");
    let mut c = cluster(&b);
    c.start_as("same#1", election("dup", "same", LEASE), Faults::new())
        .await
        .unwrap();
    c.wait_for(ms(LEASE) * 3, |h| h.iter().any(Observation::is_leader))
        .await
        .expect("the first process leads");
    let term = leaders_now(&c).pop().and_then(|o| o.term);
    c.start_as("same#2", election("dup", "same", LEASE), Faults::new())
        .await
        .unwrap();
    tokio::time::sleep(ms(LEASE) * 3).await;
    let h = c.history();
    let second: Vec<&Observation> = h.iter().filter(|o| o.node == "same#2").collect();
    assert!(second.iter().all(|o| !o.is_leader()), "{}", pretty(&h));
    assert!(
        second
            .iter()
            .any(|o| o.problems.iter().any(|p| p == "duplicate-node-id")),
        "the second process reports the shared id:\n{}",
        pretty(&h)
    );
    assert!(answers_of(&h, "same#1", 0)
        .iter()
        .filter(|o| o.is_leader())
        .all(|o| o.term == term));
    // The first one stops without releasing: the second takes over like any other node,
    // after the first one's promise, with a higher term.
    let killed = c.now_ms();
    c.kill("same#1");
    c.wait_for(ms(LEASE) * 4, |h| {
        h.iter().any(|o| o.node == "same#2" && o.is_leader())
    })
    .await
    .expect("the second process takes over");
    let h = c.history();
    let took = h
        .iter()
        .find(|o| o.node == "same#2" && o.is_leader())
        .unwrap();
    assert!(took.at_ms >= promised_until(&h, "same#1"), "{}", pretty(&h));
    assert!(took.term > term && killed < took.at_ms);
    c.stop_all().await;
    assert_invariants(&c.history());
}

/// The same with two real `host-test node` processes (the README's sidecar), judged from
/// their JSON lines.
#[test]
fn two_sidecar_processes_sharing_a_node_id_never_lead_together() {
    let mut nodes = Nodes::new(bucket("shared-id-procs"), "dup", LEASE);
    nodes.spawn_as(host_test_node(), "same", "process-1");
    nodes.wait_for("process-1 leads", ms(LEASE) * 4, |h| {
        h.iter().any(|o| o.node == "process-1" && o.is_leader())
    });
    nodes.spawn_as(host_test_node(), "same", "process-2");
    nodes.wait_for("process-2 reports the shared id", ms(LEASE) * 4, |h| {
        h.iter()
            .any(|o| o.node == "process-2" && o.problems.iter().any(|p| p == "duplicate-node-id"))
    });
    std::thread::sleep(ms(LEASE));
    nodes.signal("process-1", "-KILL");
    nodes.wait_for("process-2 takes over", ms(LEASE) * 4, |h| {
        h.iter().any(|o| o.node == "process-2" && o.is_leader())
    });
    nodes.signal("process-2", "-TERM");
    assert_invariants(&nodes.history());
}

/// Replicas of a cron job that share a node id: still one claim wins each slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_claims_by_replicas_sharing_a_node_id_win_once() {
    let b = bucket("slot-shared-id");
    let s3 = s3_config(&b);
    for slot in 1..=3 {
        let claims = (0..4).map(|_| {
            let (s3, job) = (s3.clone(), host_test::job("report", "replica", "tests/"));
            async move {
                env()
                    .runtime
                    .claim_slot(&s3, &job, slot, Faults::new())
                    .await
                    .unwrap()
                    .unwrap()
            }
        });
        let results = futures_join(claims).await;
        let won = results.iter().filter(|r| r.won).count();
        assert_eq!(won, 1, "slot {slot}: {results:?}");
    }
}

async fn futures_join<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// An operator deletes the lease object (`aws s3 rm`) while a leader runs. Nobody leads
/// until the old leader's promise is over, the old leader steps down at its next renewal,
/// and terms keep growing, also for a node that never saw the old object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_deleted_under_a_running_leader_is_waited_out() {
    let b = bucket("deleted");
    let mut c = cluster_with_leader(&b, "del", 2, LEASE).await;
    tokio::time::sleep(ms(LEASE / 2)).await;
    let old = leaders_now(&c).pop().expect("a leader");
    env()
        .store
        .delete_object(&b, "tests/del/lease")
        .expect("delete the lease");
    let deleted = c.now_ms();
    // A node that starts after the deletion knows no earlier term.
    c.start(election("del", "fresh", LEASE)).await.unwrap();
    c.wait_for(ms(LEASE) * 5, |h| {
        h.iter().any(|o| {
            o.at_ms > deleted && o.is_leader() && (o.node != old.node || o.term != old.term)
        })
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "no new leader after the deletion:\n{}",
            pretty(&c.history())
        )
    });
    let h = c.history();
    let new = h
        .iter()
        .find(|o| o.at_ms > deleted && o.is_leader() && (o.node != old.node || o.term != old.term))
        .unwrap();
    assert!(new.at_ms >= promised_until(&h, &old.node), "{}", pretty(&h));
    assert!(new.term > old.term, "{new:?} after {old:?}");
    assert!(
        h.iter()
            .any(|o| o.node == old.node && o.at_ms > deleted && has_event(o, "demoted")),
        "the old leader stepped down"
    );
    c.stop_all().await;
    assert_invariants(&c.history());
}

/// Issue 18, case 1, with real `host-test node` processes: a leader with a 12 s lease, nodes
/// with 2 s leases (one told the longest lease in use, the documented rule for a rolling
/// change; one not told, but running when the long record was there), and the lease object
/// deleted right after a renewal while the leader is stopped (SIGSTOP: it cannot notice, and
/// keeps its promise). Nobody leads inside the 12 s promise; terms still grow.
#[test]
fn nodes_with_shorter_leases_wait_out_a_deleted_long_lease() {
    const LONG: u32 = 12_000;
    const SHORT: u32 = 2_000;
    let b = bucket("mixed-leases");
    let mut nodes = Nodes::new(b.clone(), "mixed", LONG);
    nodes.spawn(host_test_node(), "long");
    // The first election waits out one (long) lease on its vacancy.
    nodes.wait_for("the long-lease node leads", ms(LONG) * 3, |h| {
        h.iter().any(|o| o.node == "long" && o.is_leader())
    });
    let mut told = host_test_node();
    told.args(["--longest-lease", &format!("{LONG}ms")]);
    nodes.spawn_with_lease(told, "short-told", SHORT);
    nodes.spawn_with_lease(host_test_node(), "short-saw", SHORT);
    nodes.wait_for("the short-lease nodes follow", ms(SHORT) * 3, |h| {
        ["short-told", "short-saw"].iter().all(|n| {
            h.iter()
                .any(|o| o.node == *n && o.leader.as_deref() == Some("long"))
        })
    });
    // Right after a renewal: the next leader answer with a fresh (nearly full) promise.
    let seen = nodes.history().len();
    nodes.wait_for("a renewal", ms(LONG), |h| {
        h[seen..]
            .iter()
            .any(|o| o.node == "long" && o.is_leader() && o.valid_ms > u64::from(LONG) * 9 / 10)
    });
    nodes.pause("long", true);
    env()
        .store
        .delete_object(&b, "procs/mixed/lease")
        .expect("delete the lease");
    let h = nodes.history();
    let old = h
        .iter()
        .rfind(|o| o.node == "long" && o.is_leader())
        .cloned()
        .unwrap();
    let promised = promised_until(&h, "long");
    // One of the short nodes leads, after the long promise.
    nodes.wait_for("a short-lease node leads", ms(LONG) * 3, |h| {
        h.iter()
            .any(|o| o.node.starts_with("short") && o.is_leader())
    });
    nodes.pause("long", false);
    let h = nodes.history();
    let first = h
        .iter()
        .find(|o| o.node.starts_with("short") && o.is_leader())
        .unwrap();
    assert!(
        first.at_ms >= promised,
        "{} led at {} ms, inside the long lease promised until {promised} ms:\n{}",
        first.node,
        first.at_ms,
        pretty(&h)
    );
    assert!(first.term > old.term, "{first:?} after {old:?}");
    nodes.signal("short-told", "-TERM");
    nodes.signal("short-saw", "-TERM");
    nodes.signal("long", "-TERM");
    assert_invariants(&nodes.history());
}

/// A fresh node on an election whose lease was deleted after its leader died starts above
/// the old term (the term comes from the store's clock), never back at 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terms_grow_across_a_deletion_for_nodes_that_never_saw_the_old_lease() {
    let b = bucket("deleted-fresh");
    let mut c = cluster_with_leader(&b, "delf", 1, LEASE).await;
    let old = leaders_now(&c).pop().unwrap();
    c.kill(&old.node);
    env().store.delete_object(&b, "tests/delf/lease").unwrap();
    let mut fresh = cluster(&b);
    fresh
        .start(election("delf", "newcomer", LEASE))
        .await
        .unwrap();
    fresh
        .wait_for(ms(LEASE) * 4, |h| h.iter().any(Observation::is_leader))
        .await
        .expect("the newcomer leads");
    let new = leaders_now(&fresh).pop().unwrap();
    assert!(new.term > old.term, "{new:?} after {old:?}");
    fresh.stop_all().await;
}

/// A leader whose member listings keep failing (5xx) has its quorum unconfirmed: it stops
/// after the quorum grace, and nobody takes over while its promise runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_quorum_checks_end_leadership_after_the_grace() {
    let b = bucket("quorum-failing");
    let mut c = cluster(&b);
    let member = |id: &str| {
        let mut e = election("qf", id, LEASE);
        e.quorum = Some(host_test::quorum(2));
        e
    };
    c.start_all(vec![member("m1"), member("m2"), member("m3")])
        .await
        .unwrap();
    c.wait_for(ms(LEASE) * 5, |h| h.iter().any(Observation::is_leader))
        .await
        .expect("a leader with a quorum");
    let leader = leaders_now(&c).pop().unwrap();
    let from = c.now_ms();
    c.faults(&leader.node)
        .unwrap()
        .inject(Rule::always(Fault::Status(503), Target::MemberLists));
    // Quorum grace (one lease) + a check interval (lease/3) + retries and slack.
    let bound = ms(LEASE) + ms(LEASE / 3) + ms(LEASE) + ms(1500);
    c.wait_for(bound, |h| {
        h.iter()
            .any(|o| o.node == leader.node && o.at_ms > from && has_event(o, "quorum-lost"))
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "the leader kept leading unchecked:\n{}",
            pretty(&c.history())
        )
    });
    c.wait_for(ms(LEASE) * 4, |h| {
        new_leader_after(h, from, &leader.node).is_some()
    })
    .await
    .expect("another member leads");
    c.stop_all().await;
    assert_invariants(&c.history());
}

/// A proxy in front of the store that strips `Date`: a stateless node cannot judge expiry
/// and says so, instead of silently never taking over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_node_behind_a_proxy_without_date_reports_it() {
    let b = bucket("no-date");
    let mut c = cluster_with_leader(&b, "nd", 1, LEASE).await;
    let faults = Faults::new();
    faults.inject(Rule::always(Fault::StripHeader("date"), Target::LeaseReads));
    let mut e = election("nd", "stateless", LEASE);
    e.stateless = true;
    c.start_with_faults(e, faults).await.unwrap();
    c.wait_for(ms(LEASE) * 3, |h| {
        h.iter().any(|o| {
            o.node == "stateless" && o.error.as_deref().is_some_and(|e| e.contains("Date"))
        })
    })
    .await
    .unwrap_or_else(|| panic!("no clear error:\n{}", pretty(&c.history())));
    let h = c.history();
    let e = h
        .iter()
        .find_map(|o| o.error.clone().filter(|_| o.node == "stateless"))
        .unwrap();
    assert!(e.starts_with("bad-answer:"), "{e}");
    c.stop_all().await;
}

/// A gateway whose clock runs ahead (within the configured skew) stamps `Date` later than
/// `Last-Modified`: a stateless takeover still waits until the old leader's promise ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_store_clock_does_not_hasten_a_stateless_takeover() {
    let b = bucket("skew");
    let mut c = cluster_with_leader(&b, "sk", 1, LEASE).await;
    let old = leaders_now(&c).pop().unwrap();
    // The gateway is 3 s ahead; the configured skew allows for that.
    let faults = Faults::new();
    faults.inject(Rule::always(Fault::ShiftDate(3), Target::LeaseReads));
    let mut e = election("sk", "stateless", LEASE);
    e.stateless = true;
    e.timing_mut().store_clock_skew_ms = Some(3000);
    c.kill(&old.node);
    c.start_with_faults(e, faults).await.unwrap();
    c.wait_for(ms(LEASE) * 8, |h| {
        h.iter().any(|o| o.node == "stateless" && o.is_leader())
    })
    .await
    .unwrap_or_else(|| panic!("no takeover:\n{}", pretty(&c.history())));
    let h = c.history();
    let took = h
        .iter()
        .find(|o| o.node == "stateless" && o.is_leader())
        .unwrap();
    assert!(
        took.at_ms >= promised_until(&h, &old.node),
        "{}",
        pretty(&h)
    );
    assert!(took.term > old.term);
    c.stop_all().await;
    assert_invariants(&c.history());
}

/// Members with long metadata, and objects under the members prefix that are not members:
/// the leader publishes a bounded list, so its record stays one every reader accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_membership_never_jams_the_lease_record() {
    let b = bucket("big-members");
    for i in 0..40 {
        let body = serde_json::json!({
            "format": "s3-election/member/v1",
            "node": format!("m{i:02}"),
            "metadata": "x".repeat(4096),
        });
        env()
            .store
            .put_object(
                &b,
                &format!("tests/big/members/m{i:02}"),
                body.to_string().as_bytes(),
            )
            .unwrap();
    }
    let mut c = cluster(&b);
    let member = |id: &str| {
        let mut e = election("big", id, LEASE);
        e.quorum = Some(host_test::quorum(2));
        e.metadata = "y".repeat(4096);
        e
    };
    c.start_all(vec![member("a"), member("b")]).await.unwrap();
    c.wait_for(ms(LEASE) * 6, |h| h.iter().any(Observation::is_leader))
        .await
        .expect("a leader");
    tokio::time::sleep(ms(LEASE)).await;
    let body = env()
        .store
        .get_object(&b, "tests/big/lease")
        .unwrap()
        .unwrap();
    assert!(body.len() <= 64 * 1024, "{} bytes", body.len());
    let r: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let published = r["members"].as_array().map_or(0, Vec::len) as u64;
    let omitted = r["members_omitted"].as_u64().unwrap_or(0);
    assert_eq!(published + omitted, 42, "{r}");
    // The follower reads it without error.
    let h = c.history();
    assert!(h.iter().all(|o| o.error.is_none()), "{}", pretty(&h));
    c.stop_all().await;
    assert_invariants(&c.history());
}

/// Settings that cannot be safe are refused before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_names_and_zero_drift_are_refused() {
    let b = bucket("refused");
    let faults = Faults::new();
    for (e, field) in [
        (election("members", "n", LEASE), "name"),
        (election("probe", "n", LEASE), "name"),
        (
            {
                let mut e = election("x", "n", LEASE);
                e.timing_mut().max_drift_ppm = Some(0);
                e
            },
            "max-drift-ppm",
        ),
    ] {
        let refused = env()
            .runtime
            .open(&s3_config(&b), &e, faults.clone())
            .await
            .unwrap();
        assert!(
            matches!(&refused, Err(api::Error::InvalidConfig(c)) if c.field == field),
            "{field}"
        );
    }
    assert_eq!(faults.requests().total(), 0);
}

/// Who leads, asked by an instance that never saw the lease: an expired lease names nobody
/// (the store's clock says it is old), a live one names its holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_leads_names_nobody_for_an_expired_lease() {
    let b = bucket("who-leads");
    let mut c = cluster_with_leader(&b, "wl", 1, LEASE).await;
    let old = leaders_now(&c).pop().unwrap();
    let ask = || async {
        env()
            .runtime
            .who_leads(
                &s3_config(&b),
                &host_test::election_ref("wl", "tests/"),
                Faults::new(),
            )
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(ask().await.map(|l| l.node_id), Some(old.node.clone()));
    c.kill(&old.node);
    // lease + grace, + 1 s of resolution and 1 s of skew, + a second of slack.
    tokio::time::sleep(ms(LEASE) + ms(LEASE / 15) + ms(3000)).await;
    assert!(ask().await.is_none(), "an expired lease names nobody");
}

/// Any 5xx but 501 is the store having a bad moment, not a lost lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusual_5xx_is_retried_without_losing_the_lease() {
    let b = bucket("odd-5xx");
    let mut c = cluster_with_leader(&b, "odd", 1, LEASE).await;
    let leader = leaders_now(&c).pop().unwrap();
    let from = c.now_ms();
    let faults = c.faults(&leader.node).unwrap();
    faults.inject(Rule::times(Fault::Status(507), Target::LeaseWrites, 1));
    faults.inject(Rule::times(Fault::Status(599), Target::LeaseWrites, 1));
    tokio::time::sleep(ms(LEASE) * 2).await;
    let h = c.history();
    assert!(answers_of(&h, &leader.node, from)
        .iter()
        .all(|o| o.is_leader() && o.term == leader.term && !has_event(o, "demoted")));
    assert_eq!(faults.applied(), 2);
    c.stop_all().await;
    assert_invariants(&c.history());
    assert_eq!(
        record(&b, "tests/odd/lease").map(|r| r["term"].as_u64()),
        Some(leader.term)
    );
}
