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
