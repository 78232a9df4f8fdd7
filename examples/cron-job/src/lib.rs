//! A singleton job on Spin's cron trigger. Every replica of the app fires on the same
//! schedule; each run claims its slot (the scheduled time divided by the period) with one
//! conditional write, and only the claim that wins runs the job. A replica that dies costs
//! nothing: there is no lease to wait out (the slot is simply claimed by another replica, or
//! not run if none fired: at most once).
//!
//! Settings (environment variables, see [`s3_election_sdk::Settings`]): the store's, plus
//! `S3E_ELECTION` (the job's name), `S3E_NODE_ID` (this replica, for the record), and
//! `S3E_PERIOD_S`: the schedule's period in seconds (default 60), so that every replica
//! numbers a run alike.
//!
//! It prints one line per run: `won slot N` (and runs the job) or `lost slot N to HOLDER`.

wit_bindgen::generate!({
    world: "s3-election:cron-job/cron-job",
    path: ["../../wit", "wit"],
    generate_all,
});

use s3_election_sdk::{self as sdk, Job, Settings};
use std::collections::HashMap;

struct CronJob;
export!(CronJob);

impl Guest for CronJob {
    fn handle_cron_event(metadata: Metadata) -> Result<(), Error> {
        let env: HashMap<String, String> = wasi::cli::environment::get_environment()
            .into_iter()
            .collect();
        let settings = Settings::new(|name: &str| env.get(name).cloned());
        let s3 = settings.s3().map_err(Error::Other)?;
        let election = settings.election().map_err(Error::Other)?;
        let period: u64 = env
            .get("S3E_PERIOD_S")
            .map(|p| {
                p.parse()
                    .map_err(|_| Error::Other(format!("S3E_PERIOD_S: {p}")))
            })
            .transpose()?
            .unwrap_or(60)
            .max(1);
        // The trigger may fire a little late: round to the nearest scheduled time.
        let slot = (metadata.timestamp + period / 2) / period;
        let job = Job {
            election: election.election,
            node_id: election.node_id,
            metadata: String::new(),
        };
        match sdk::claim_slot(&s3, &job, slot) {
            Ok(claim) if claim.won => {
                say(&format!("won slot {slot}"));
                run_the_job(slot);
                Ok(())
            }
            Ok(claim) => {
                say(&format!("lost slot {slot} to {}", claim.holder));
                Ok(())
            }
            // Not claimed (store unreachable, bad credentials…): an error, never a quiet skip.
            Err(e) => Err(Error::Other(sdk::describe(&e))),
        }
    }
}

/// The singleton work (here: nothing but the line above).
fn run_the_job(_slot: u64) {}

/// One line on stdout (through wasi:cli/stdout: the component has no other way out).
fn say(line: &str) {
    let out = wasi::cli::stdout::get_stdout();
    let _ = out.blocking_write_and_flush(format!("{line}\n").as_bytes());
}
