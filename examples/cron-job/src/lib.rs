//! A singleton job on Spin's cron trigger. Every replica of the app fires on the same
//! schedule; each run claims its slot (the scheduled time divided by the period) with one
//! conditional write, and only the claim that wins runs the job. A replica that dies costs
//! nothing: there is no lease to wait out (the slot is simply claimed by another replica, or
//! not run if none fired: at most once).
//!
//! Settings (the component's Spin variables, named as in [`s3_election_sdk::Settings`] but in
//! lower case: `aws_endpoint_url_s3`, `s3e_bucket`, ...): the store's, plus `s3e_election` (the
//! job's name), `s3e_node_id` (this replica, for the record), and `s3e_period_s`: the
//! schedule's period in seconds (default 60), so that every replica numbers a run alike.
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
        let env: HashMap<String, String> = wasi::config::store::get_all()
            .map_err(|e| Error::Other(format!("reading the Spin variables: {e:?}")))?
            .into_iter()
            .collect();
        // Spin variables are lower case; the SDK names them in upper case.
        let get = |name: &str| env.get(&name.to_ascii_lowercase()).cloned();
        let settings = Settings::new(get);
        let s3 = settings.s3().map_err(Error::Other)?;
        let election = settings.election().map_err(Error::Other)?;
        let period: u64 = get("S3E_PERIOD_S")
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse()
                    .map_err(|_| Error::Other(format!("s3e_period_s: {p}")))
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
