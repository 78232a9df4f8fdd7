//! The stateless edge pattern: every `every`, N workers fire at once, each in a fresh
//! component instance that remembers nothing (like a Spin cron trigger), and claim the slot;
//! the winner runs the job.

use crate::api;
use crate::describe_error;
use crate::host::faults::Faults;
use crate::host::runtime::Runtime;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What happened in one slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotRun {
    pub slot: u64,
    /// Workers that won (and ran the job): exactly one when all is well.
    pub winners: Vec<String>,
    /// Workers whose claim failed with an error, with the error.
    pub errors: Vec<(String, String)>,
    /// Time from firing to the last worker's answer.
    pub took: Duration,
}

/// A singleton job and how it is fired.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub job: String,
    pub prefix: String,
    pub workers: usize,
    pub every: Duration,
    pub slots: u64,
}

/// Fire `schedule.slots` slots, one every `schedule.every`, with all workers each time.
/// `on_slot` sees each slot as it completes (progress output).
pub async fn run(
    runtime: Arc<Runtime>,
    s3: api::S3Config,
    schedule: &Schedule,
    mut on_slot: impl FnMut(&SlotRun),
) -> Vec<SlotRun> {
    let Schedule {
        job: job_name,
        prefix,
        workers,
        every,
        slots: ticks,
    } = schedule;
    let (workers, every, ticks) = (*workers, *every, *ticks);
    let mut runs = Vec::new();
    let first_slot = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        d.as_millis() as u64 / every.as_millis().max(1) as u64
    });
    let mut next = tokio::time::Instant::now();
    for tick in 0..ticks {
        tokio::time::sleep_until(next).await;
        next += every;
        let slot = first_slot + tick;
        let fired = Instant::now();
        let claims = (0..workers).map(|w| {
            let (runtime, s3) = (runtime.clone(), s3.clone());
            let job = crate::job(job_name, &format!("worker-{w}"), prefix);
            tokio::spawn(async move {
                let answer = runtime.claim_slot(&s3, &job, slot, Faults::new()).await;
                (job.node_id, answer)
            })
        });
        let mut run = SlotRun {
            slot,
            winners: Vec::new(),
            errors: Vec::new(),
            took: Duration::ZERO,
        };
        for handle in claims.collect::<Vec<_>>() {
            match handle.await {
                Ok((worker, Ok(Ok(claim)))) if claim.won => run.winners.push(worker),
                Ok((_, Ok(Ok(_)))) => {}
                Ok((worker, Ok(Err(e)))) => run.errors.push((worker, describe_error(&e))),
                Ok((worker, Err(trap))) => run.errors.push((worker, format!("trap: {trap:#}"))),
                Err(join) => run.errors.push(("?".into(), join.to_string())),
            }
        }
        run.took = fired.elapsed();
        run.winners.sort();
        on_slot(&run);
        runs.push(run);
    }
    runs
}
