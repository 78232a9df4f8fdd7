//! Singleton jobs on a schedule: workers in fresh component instances (a Spin cron trigger's
//! way) fire together; exactly one runs the job in each slot. Real component, real S3.

mod common;

use common::*;
use host_test::cmd::cron::{self, Schedule};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_worker_runs_the_job_in_each_slot() {
    let b = bucket("cron");
    let schedule = Schedule {
        job: "report".into(),
        prefix: "tests/".into(),
        workers: 6,
        every: Duration::from_millis(400),
        slots: 8,
    };
    let runs = cron::run(env().runtime.clone(), s3_config(&b), &schedule, |_| {}).await;
    assert_eq!(runs.len(), 8);
    for r in &runs {
        assert_eq!(r.winners.len(), 1, "slot {}: {r:?}", r.slot);
        assert!(r.errors.is_empty(), "{r:?}");
    }
    // Slots only move forward: the object names the last one.
    let body = env()
        .store
        .get_object(&b, "tests/report/slot")
        .unwrap()
        .unwrap();
    let record: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(record["slot"], runs.last().unwrap().slot);
    assert_eq!(
        record["holder"].as_str(),
        runs.last().unwrap().winners.first().map(String::as_str)
    );
    // Firing an old slot again finds it taken.
    let job = host_test::job("report", "late-worker", "tests/");
    let late = env()
        .runtime
        .claim_slot(
            &s3_config(&b),
            &job,
            runs[0].slot,
            host_test::host::faults::Faults::new(),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(!late.won);
}

/// Issue 18, case 3: the slot record disappears after slots ran (an operator, a lifecycle
/// rule). A straggler for a slot that ran, and the next slot, are refused with
/// `SlotRecordLost` and write nothing, until an operator removes the job marker; a retry
/// with the same claim id (`claim-slot-as`) recognises its own earlier win.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_slot_record_is_refused_until_an_operator_acts() {
    use host_test::api::Error;
    use host_test::host::faults::Faults;
    let b = bucket("cron-lost");
    let s3 = s3_config(&b);
    let claim = |worker: &str, slot: u64, id: &str| {
        let (s3, job, id) = (
            s3.clone(),
            host_test::job("nightly", worker, "tests/"),
            id.to_string(),
        );
        async move {
            env()
                .runtime
                .claim_slot_as(&s3, &job, slot, &id, Faults::new())
                .await
                .unwrap()
        }
    };
    let won = claim("a", 1, "a-slot-1").await.unwrap();
    assert!(won.won, "{won:?}");
    // The same claim id again (a retry after a lost answer): still this caller's win.
    let again = claim("a", 1, "a-slot-1").await.unwrap();
    assert!(again.won, "a retry with the claim id: {again:?}");
    let other = claim("b", 1, "b-slot-1").await.unwrap();
    assert!(!other.won, "{other:?}");
    assert!(env()
        .store
        .get_object(&b, "tests/nightly/job")
        .unwrap()
        .is_some());

    env().store.delete_object(&b, "tests/nightly/slot").unwrap();
    for slot in [1, 2] {
        let refused = claim("c", slot, &format!("c-slot-{slot}")).await;
        assert!(
            matches!(&refused, Err(Error::Store(e)) if e.code == "SlotRecordLost"),
            "slot {slot}: {refused:?}"
        );
    }
    assert!(
        env()
            .store
            .get_object(&b, "tests/nightly/slot")
            .unwrap()
            .is_none(),
        "a refused claim writes nothing"
    );
    // The operator starts the job afresh: the next claim wins.
    env().store.delete_object(&b, "tests/nightly/job").unwrap();
    let fresh = claim("c", 2, "c-slot-2-again").await.unwrap();
    assert!(fresh.won, "{fresh:?}");
}
