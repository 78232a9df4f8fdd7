//! The smaller commands: probe, bench, scenario, cron, sim.

use super::{duration, store_or_ministack, ComponentArg, StoreArgs};
use crate::check::sim;
use crate::election_config;
use crate::host::cluster::Cluster;
use crate::host::runtime::Runtime;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ProbeArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long)]
    bucket: Option<String>,
    /// Key prefix for the probe's scratch object.
    #[arg(long, default_value = "")]
    prefix: String,
    /// The election whose keys the scratch object goes under (`<prefix><election>/probe/`).
    #[arg(long, default_value = "store-check")]
    election: String,
    #[command(flatten)]
    component: ComponentArg,
}

pub async fn probe(args: ProbeArgs) -> Result<()> {
    let (store, bucket, _ministack) =
        store_or_ministack(&args.store, args.bucket.as_deref(), "s3-election-probe")?;
    let runtime = Runtime::load(&args.component.path())?;
    let e = election_config(&args.election, "host-test", &args.prefix);
    let answer = runtime
        .probe_store(
            &store.s3_config(&bucket),
            &e,
            crate::host::faults::Faults::new(),
        )
        .await?;
    match answer {
        Ok(p) => {
            println!("{} honours conditional writes", store.endpoint);
            println!("  If-Match needs unquoted ETags: {}", p.unquoted_etags);
            println!(
                "  If-Match on a missing key answers: {}",
                if p.missing_key_not_found { 404 } else { 412 }
            );
            Ok(())
        }
        Err(e) => bail!("{} refused: {}", store.endpoint, crate::describe_error(&e)),
    }
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long)]
    bucket: Option<String>,
    /// Trials for the failover and handover rows.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(2..))]
    trials: u32,
    /// Where to write the table as JSON (default target/bench.json).
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    component: ComponentArg,
}

pub async fn bench(args: BenchArgs) -> Result<()> {
    let (store, bucket, _ministack) =
        store_or_ministack(&args.store, args.bucket.as_deref(), "s3-election-bench")?;
    let runtime = Arc::new(Runtime::load(&args.component.path())?);
    let started = std::time::Instant::now();
    let rows = crate::cmd::bench::run(
        runtime,
        store.s3_config(&bucket),
        args.trials as usize,
        |what| {
            eprintln!(
                "[{:>5.1}s] measuring {what} ...",
                started.elapsed().as_secs_f64()
            );
        },
    )
    .await?;
    let table = crate::cmd::bench::markdown(&rows);
    println!("\n{table}");
    let json = args
        .json
        .unwrap_or_else(|| crate::workspace_dir().join("target/bench.json"));
    std::fs::write(&json, serde_json::to_string_pretty(&rows)?)?;
    println!(
        "({} s; JSON in {})",
        started.elapsed().as_secs(),
        json.display()
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct ScenarioArgs {
    /// The scenario file (format: host-test/src/scenario.rs).
    file: PathBuf,
    /// Virtual time against an in-process S3 (no network, no waiting).
    #[arg(long)]
    pub r#virtual: bool,
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long)]
    bucket: Option<String>,
    #[command(flatten)]
    component: ComponentArg,
}

pub async fn scenario(args: ScenarioArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let s = crate::cmd::scenario::parse(&text)?;
    let runtime = Arc::new(Runtime::load(&args.component.path())?);
    let _ministack;
    let mut cluster = if args.r#virtual {
        println!("virtual time, in-process S3");
        Cluster::in_process(
            runtime,
            Arc::new(crate::stores::memserver::InProcessS3::new()),
        )
    } else {
        let (store, bucket, m) =
            store_or_ministack(&args.store, args.bucket.as_deref(), "s3-election-scenario")?;
        _ministack = m;
        Cluster::new(runtime, store.s3_config(&bucket))
    };
    let real = std::time::Instant::now();
    let history = crate::cmd::scenario::run(&mut cluster, &s, |line| println!("{line}")).await;
    let picture =
        super::demo::write_timeline(&cluster, &format!("scenario: {}", args.file.display()))?;
    println!("timeline: {}", picture.display());
    let history = history?;
    println!(
        "{} observations over {:.0} s ({:.1} s real): invariants hold",
        history.len(),
        s.duration.as_secs_f64(),
        real.elapsed().as_secs_f64()
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct CronArgs {
    /// The schedule's period.
    #[arg(long, default_value = "5s", value_parser = duration)]
    every: Duration,
    /// Workers that fire for every slot, each in a fresh instance.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    workers: u32,
    /// Slots to run.
    #[arg(long, default_value_t = 5)]
    runs: u64,
    /// The job's name.
    #[arg(long, default_value = "nightly-report")]
    job: String,
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long)]
    bucket: Option<String>,
    #[command(flatten)]
    component: ComponentArg,
}

pub async fn cron(args: CronArgs) -> Result<()> {
    let (store, bucket, _ministack) =
        store_or_ministack(&args.store, args.bucket.as_deref(), "s3-election-cron")?;
    let runtime = Arc::new(Runtime::load(&args.component.path())?);
    let prefix = format!("cron-{}/", std::process::id());
    println!(
        "job `{}`: {} workers fire every {} ms, each in a fresh instance; {} slots\n",
        args.job,
        args.workers,
        args.every.as_millis(),
        args.runs
    );
    let schedule = crate::cmd::cron::Schedule {
        job: args.job.clone(),
        prefix,
        workers: args.workers as usize,
        every: args.every,
        slots: args.runs,
    };
    let results = crate::cmd::cron::run(runtime, store.s3_config(&bucket), &schedule, |r| {
        let winner = match r.winners.as_slice() {
            [one] => format!("{one} runs the job"),
            [] => "NOBODY ran the job".into(),
            many => format!("SEVERAL ran the job: {}", many.join(", ")),
        };
        let errors = if r.errors.is_empty() {
            String::new()
        } else {
            format!("  ({} errors: {:?})", r.errors.len(), r.errors)
        };
        println!(
            "slot {}: {winner}  [{} ms]{errors}",
            r.slot,
            r.took.as_millis()
        );
    })
    .await;
    let exactly_one = results.iter().filter(|r| r.winners.len() == 1).count();
    println!(
        "\n{exactly_one} of {} slots ran exactly once",
        results.len()
    );
    if exactly_one != results.len() {
        bail!("some slots did not run exactly once");
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct SimArgs {
    /// Schedules in the campaign.
    #[arg(long, default_value_t = 100_000)]
    seeds: u64,
    /// First seed of the campaign.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Replay this one seed instead of a campaign.
    #[arg(long, conflicts_with_all = ["seeds", "start"])]
    seed: Option<u64>,
    /// Re-execute a schedule saved by `host-test model-check` (its world and mutation are in
    /// the file) and print its history and violation.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["seeds", "start", "seed", "mutation"])]
    replay: Option<PathBuf>,
    /// With --seed: print the whole history.
    #[arg(long, requires = "seed")]
    verbose: bool,
    /// Break one protocol rule, to see the invariants catch it.
    #[arg(long, value_parser = super::sim_mutation)]
    mutation: Option<s3_election::mutation::Mutation>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// Deterministic simulation: one seed (replay, printing the history), or a campaign.
pub fn sim(args: SimArgs) -> Result<()> {
    if let Some(file) = &args.replay {
        return super::model_check::replay(file);
    }
    let mutation = args.mutation;
    if let Some(seed) = args.seed {
        let run = sim::run(seed, mutation);
        if args.verbose {
            for o in &run.history {
                println!("{}", sim::describe(o));
            }
        }
        println!("profile: {:?}", run.profile);
        println!(
            "{} events, {} observations, fingerprint {:016x}",
            run.events,
            run.history.len(),
            run.fingerprint()
        );
        if run.violation.is_some() {
            bail!("{}", run.report());
        }
        println!("seed {seed}: all invariants hold");
        return Ok(());
    }
    let (count, start) = (args.seeds, args.start);
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    println!(
        "simulating seeds {start}..{} on {threads} threads{} ...",
        start + count,
        mutation
            .map(|m| format!(" with mutation {}", m.name()))
            .unwrap_or_default()
    );
    // In blocks, to show progress on long campaigns.
    let block = 10_000;
    let mut c = sim::campaign(start, count.min(block), mutation, threads, false);
    let mut done = c.schedules;
    while done < count {
        let more = sim::campaign(
            start + done,
            (count - done).min(block),
            mutation,
            threads,
            false,
        );
        done += more.schedules;
        c.schedules += more.schedules;
        c.events += more.events;
        c.elapsed += more.elapsed;
        c.failed += more.failed;
        c.failures.extend(more.failures);
        eprintln!(
            "  {done}/{count} schedules, {:.0}/s, {} failed",
            c.per_second(),
            c.failed
        );
    }
    println!(
        "{} schedules, {} events in {:.1} s: {:.0} schedules/s, {:.0} events/s",
        c.schedules,
        c.events,
        c.elapsed.as_secs_f64(),
        c.per_second(),
        c.events as f64 / c.elapsed.as_secs_f64()
    );
    if c.failures.len() > 1 {
        // Which invariants failed, by seed: a campaign's failures at a glance.
        for (seed, report) in c.failures.iter().take(40) {
            let first = report.lines().next().unwrap_or_default();
            eprintln!(
                "  seed {seed}: {}",
                first.chars().take(140).collect::<String>()
            );
        }
    }
    if let Some((_, report)) = c.failures.first() {
        bail!(
            "{} of {} schedules failed; the first:\n{report}",
            c.failed,
            c.schedules
        );
    }
    println!("all invariants hold");
    Ok(())
}
