//! `host-test`: run the s3-election component in wasmtime.
//!
//! - `host-test demo`: three nodes, a crash failover and a clean handover, printed second by
//!   second. Uses the store from the AWS_* variables, or starts a local ministack.
//! - `host-test node`: one node against the store from the AWS_* variables, one JSON line per
//!   tick on stdout, until SIGINT/SIGTERM (then it resigns and exits 0).

use anyhow::{bail, Context, Result};
use host_test::cluster::Cluster;
use host_test::election_config;
use host_test::history::{self, Observation};
use host_test::ministack::Ministack;
use host_test::runtime::{default_component_path, Runtime};
use host_test::store::Store;
use host_test::ConfigExt;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const USAGE: &str = "usage:
  host-test demo [--bucket B] [--nodes N] [--lease-ms N] [--component PATH]
  host-test node --node-id ID --election NAME --bucket B [--prefix P] [--lease-ms N]
                 [--renew-deadline-ms N] [--retry-ms N] [--metadata M] [--stateless]
                 [--quorum Q] [--probe-store] [--component PATH]
  host-test probe [--bucket B] [--prefix P]   (does this store honour conditional writes?)
  host-test bench [--trials N] [--json PATH]
  host-test scenario FILE [--virtual] [--bucket B]   (format: host-test/src/scenario.rs)
  host-test cron [--every 5s] [--workers N] [--runs K] [--job NAME] [--bucket B]
  host-test sim [--seeds N] [--start S] [--seed S [--verbose]] [--mutation NAME] [--threads N]
                 (NAME: unconditional-renewal, no-drift-margin, record-timestamp, conflict-as-lost,
                  ignore-quorum)
Store: AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN, AWS_REGION. Without an endpoint, `demo` and `cron` start a local ministack.";

/// `--name value` and `--flag` arguments.
struct Args {
    values: HashMap<String, String>,
    flags: Vec<String>,
}

impl Args {
    fn parse(raw: &[String], flags: &[&str]) -> Result<Args> {
        let mut args = Args {
            values: HashMap::new(),
            flags: Vec::new(),
        };
        let mut it = raw.iter();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                bail!("unexpected argument {a:?}\n{USAGE}");
            };
            if flags.contains(&name) {
                args.flags.push(name.to_string());
            } else {
                let value = it
                    .next()
                    .with_context(|| format!("--{name} needs a value"))?;
                args.values.insert(name.to_string(), value.clone());
            }
        }
        Ok(args)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    fn require(&self, name: &str) -> Result<&str> {
        self.get(name)
            .with_context(|| format!("--{name} is required\n{USAGE}"))
    }

    fn number(&self, name: &str) -> Result<Option<u32>> {
        self.get(name)
            .map(|v| {
                v.parse()
                    .with_context(|| format!("--{name} must be a number"))
            })
            .transpose()
    }

    fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    fn component(&self) -> PathBuf {
        self.get("component")
            .map(PathBuf::from)
            .unwrap_or_else(default_component_path)
    }
}

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    // Virtual time: one thread, paused clock (it jumps ahead whenever every task waits).
    let virtual_time = raw.iter().any(|a| a == "--virtual");
    let runtime = if virtual_time {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    let result = match raw.first().map(String::as_str) {
        Some("demo") => runtime.block_on(demo(&raw[1..])),
        Some("node") => runtime.block_on(node(&raw[1..])),
        Some("sim") => sim(&raw[1..]),
        Some("cron") => runtime.block_on(cron(&raw[1..])),
        Some("bench") => runtime.block_on(bench(&raw[1..])),
        Some("scenario") => runtime.block_on(scenario(&raw[1..])),
        Some("probe") => runtime.block_on(probe(&raw[1..])),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Deterministic simulation: one seed (replay, printing the history), or a campaign.
fn sim(raw: &[String]) -> Result<()> {
    use host_test::sim;
    let args = Args::parse(raw, &["verbose"])?;
    let mutation = match args.get("mutation") {
        Some(name) => Some(
            sim::parse_mutation(name)
                .with_context(|| format!("unknown mutation {name}\n{USAGE}"))?,
        ),
        None => None,
    };
    let number = |name: &str, default: u64| -> Result<u64> {
        args.get(name)
            .map(|v| {
                v.parse()
                    .with_context(|| format!("--{name} must be a number"))
            })
            .transpose()
            .map(|v| v.unwrap_or(default))
    };
    if let Some(seed) = args.get("seed") {
        let seed: u64 = seed.parse().context("--seed must be a number")?;
        let run = sim::run(seed, mutation);
        if args.flag("verbose") {
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
    let count = number("seeds", 100_000)?;
    let start = number("start", 0)?;
    let threads = number(
        "threads",
        std::thread::available_parallelism().map_or(2, |n| n.get() as u64),
    )? as usize;
    println!(
        "simulating seeds {start}..{} on {threads} threads{} ...",
        start + count,
        mutation
            .map(|m| format!(" with mutation {}", sim::mutation_name(m)))
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

/// The store from the environment (with `--bucket`), or a local ministack with a new bucket.
fn store_or_ministack(
    args: &Args,
    default_bucket: &str,
) -> Result<(Store, String, Option<Ministack>)> {
    match Store::from_env() {
        Some(store) => Ok((store?, args.require("bucket")?.to_string(), None)),
        None => {
            println!("No AWS_ENDPOINT_URL_S3 set: starting a local ministack (SigV4 verified with an IAM-created key)...");
            let m = Ministack::start()?;
            println!(
                "ministack on {} (log {})",
                m.store.endpoint,
                m.log.display()
            );
            let bucket = args.get("bucket").unwrap_or(default_bucket).to_string();
            m.store.create_bucket(&bucket)?;
            Ok((m.store.clone(), bucket, Some(m)))
        }
    }
}

/// `--every 5s` / `500ms` / `2` (seconds).
fn duration(value: &str) -> Result<Duration> {
    let (number, unit) = match value.strip_suffix("ms") {
        Some(n) => (n, 1),
        None => (value.strip_suffix('s').unwrap_or(value), 1000),
    };
    let n: u64 = number
        .parse()
        .with_context(|| format!("not a duration: {value}"))?;
    Ok(Duration::from_millis(n * unit))
}

async fn probe(raw: &[String]) -> Result<()> {
    let args = Args::parse(raw, &[])?;
    let (store, bucket, _ministack) = store_or_ministack(&args, "s3-election-probe")?;
    let runtime = Runtime::load(&args.component())?;
    let e = election_config("probe", "host-test", args.get("prefix").unwrap_or(""));
    let answer = runtime
        .probe_store(
            &store.s3_config(&bucket),
            &e,
            host_test::faults::Faults::new(),
        )
        .await?;
    match answer {
        Ok(p) => {
            println!("{} honours conditional writes", store.endpoint);
            println!("  If-Match needs unquoted ETags: {}", p.unquoted_etags);
            println!(
                "  If-Match on a missing key answers: {}",
                if p.missing_key_is_404 { 404 } else { 412 }
            );
            Ok(())
        }
        Err(e) => bail!(
            "{} refused: {}",
            store.endpoint,
            host_test::describe_error(&e)
        ),
    }
}

async fn scenario(raw: &[String]) -> Result<()> {
    let (file, rest) = raw.split_first().context("scenario needs a file")?;
    let args = Args::parse(rest, &["virtual"])?;
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    let s = host_test::scenario::parse(&text)?;
    let runtime = Arc::new(Runtime::load(&args.component())?);
    let _ministack;
    let mut cluster = if args.flag("virtual") {
        println!("virtual time, in-process S3");
        Cluster::in_process(runtime, Arc::new(host_test::memserver::InProcessS3::new()))
    } else {
        let (store, bucket, m) = store_or_ministack(&args, "s3-election-scenario")?;
        _ministack = m;
        Cluster::new(runtime, store.s3_config(&bucket))
    };
    let real = std::time::Instant::now();
    let history = host_test::scenario::run(&mut cluster, &s, |line| println!("{line}")).await;
    let picture = write_timeline(&cluster, &format!("scenario: {file}"))?;
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

async fn bench(raw: &[String]) -> Result<()> {
    let args = Args::parse(raw, &[])?;
    let trials = args.number("trials")?.unwrap_or(20).max(2) as usize;
    let (store, bucket, _ministack) = store_or_ministack(&args, "s3-election-bench")?;
    let runtime = Arc::new(Runtime::load(&args.component())?);
    let started = std::time::Instant::now();
    let rows = host_test::bench::run(runtime, store.s3_config(&bucket), trials, |what| {
        eprintln!(
            "[{:>5.1}s] measuring {what} ...",
            started.elapsed().as_secs_f64()
        );
    })
    .await?;
    let table = host_test::bench::markdown(&rows);
    println!("\n{table}");
    let json = args
        .get("json")
        .map(PathBuf::from)
        .unwrap_or_else(|| host_test::workspace_dir().join("target/bench.json"));
    std::fs::write(&json, serde_json::to_string_pretty(&rows)?)?;
    println!(
        "({} s; JSON in {})",
        started.elapsed().as_secs(),
        json.display()
    );
    Ok(())
}

async fn cron(raw: &[String]) -> Result<()> {
    let args = Args::parse(raw, &[])?;
    let every = duration(args.get("every").unwrap_or("5s"))?;
    let workers = args.number("workers")?.unwrap_or(3).max(1) as usize;
    let runs = u64::from(args.number("runs")?.unwrap_or(5));
    let job = args.get("job").unwrap_or("nightly-report").to_string();
    let (store, bucket, _ministack) = store_or_ministack(&args, "s3-election-cron")?;
    let runtime = Arc::new(Runtime::load(&args.component())?);
    let prefix = format!("cron-{}/", std::process::id());
    println!(
        "job `{job}`: {workers} workers fire every {} ms, each in a fresh instance; {runs} slots\n",
        every.as_millis()
    );
    let schedule = host_test::cron::Schedule {
        job,
        prefix,
        workers,
        every,
        slots: runs,
    };
    let results = host_test::cron::run(runtime, store.s3_config(&bucket), &schedule, |r| {
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

async fn node(raw: &[String]) -> Result<()> {
    let args = Args::parse(raw, &["stateless", "probe-store"])?;
    let store = Store::from_env()
        .context("`node` needs a store: set AWS_ENDPOINT_URL_S3 and the AWS_* credentials")??;
    let runtime = Arc::new(Runtime::load(&args.component())?);
    let mut election = election_config(
        args.require("election")?,
        args.require("node-id")?,
        args.get("prefix").unwrap_or(""),
    );
    election.timing_mut().lease_ms = args.number("lease-ms")?;
    election.timing_mut().renew_deadline_ms = args.number("renew-deadline-ms")?;
    election.timing_mut().retry_period_ms = args.number("retry-ms")?;
    election.metadata = args.get("metadata").unwrap_or("").to_string();
    election.stateless = args.flag("stateless");
    election.quorum = args.number("quorum")?.map(host_test::quorum);
    election.probe_store = args.flag("probe-store");
    let id = election.node_id.clone();
    let mut cluster = Cluster::new(runtime, store.s3_config(args.require("bucket")?));
    cluster.recorder.echo_json = true;
    cluster.start(election).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    // Stopping resigns first, so a leader hands over at once.
    cluster.stop(&id).await;
    Ok(())
}

async fn demo(raw: &[String]) -> Result<()> {
    let args = Args::parse(raw, &[])?;
    let nodes = args.number("nodes")?.unwrap_or(3).max(2);
    let lease_ms = args.number("lease-ms")?.unwrap_or(3000);

    // The store: the one configured, or a local ministack with a verified IAM key.
    let (store, bucket, _ministack) = store_or_ministack(&args, "s3-election-demo")?;
    let runtime = Arc::new(Runtime::load(&args.component())?);
    println!(
        "component {} ({} KiB), compiled in {} ms",
        runtime.component_path.display(),
        runtime.component_bytes / 1024,
        runtime.compile_time.as_millis()
    );
    let prefix = format!("demo-{}/", std::process::id());
    println!(
        "election `demo` in s3://{bucket}/{prefix}demo/lease, {nodes} nodes, lease {lease_ms} ms\n"
    );

    let mut cluster = Cluster::new(runtime.clone(), store.s3_config(&bucket));
    for i in 1..=nodes {
        let mut e = election_config("demo", &format!("node-{i}"), &prefix);
        e.timing_mut().lease_ms = Some(lease_ms);
        e.metadata = format!("pid={} slot={i}", std::process::id());
        cluster.start(e).await?;
    }
    let lease = Duration::from_millis(u64::from(lease_ms));
    let limit = lease * 4;

    let first = cluster
        .wait_for(limit, |h| h.iter().any(Observation::is_leader))
        .await
        .context("no leader was elected")?;
    println!("first leader after {first} ms");
    show(&cluster, 4).await;

    let leader = current_leader(&cluster).context("no leader to kill")?;
    let counts_before: Vec<_> = cluster
        .node_ids()
        .iter()
        .map(|id| (id.clone(), cluster.faults(id).map(|f| f.requests())))
        .collect();
    println!("\n>>> killing {leader} (no release: its lease has to expire)");
    let killed_at = cluster.now_ms();
    cluster.kill(&leader);
    let failover = cluster
        .wait_for(limit, |h| {
            h.iter()
                .any(|o| o.at_ms > killed_at && o.is_leader() && o.node != leader)
        })
        .await
        .context("no failover")?
        - killed_at;
    println!(
        ">>> failover took {failover} ms ({:.2} × lease)",
        failover as f64 / lease_ms as f64
    );
    show(&cluster, 4).await;

    let leader2 = current_leader(&cluster).context("no leader to resign")?;
    println!("\n>>> {leader2} resigns (conditional write of a released record)");
    let resigned_at = cluster.now_ms();
    cluster.resign(&leader2).await??;
    let handover = cluster
        .wait_for(limit, |h| {
            h.iter()
                .any(|o| o.at_ms > resigned_at && o.is_leader() && o.node != leader2)
        })
        .await
        .context("no handover")?
        - resigned_at;
    println!(">>> handover took {handover} ms");
    show(&cluster, 3).await;

    let elapsed_s = (cluster.now_ms() - killed_at) as f64 / 1000.0;
    println!("\nrequests since the kill (GET / PUT), per node:");
    for (id, before) in counts_before {
        if let (Some(before), Some(now)) = (before, cluster.faults(&id).map(|f| f.requests())) {
            let (gets, puts) = (now.gets - before.gets, now.puts - before.puts);
            println!(
                "  {id}: {gets} GET, {puts} PUT in {elapsed_s:.1} s ({:.2} requests/s)",
                (gets + puts) as f64 / elapsed_s
            );
        }
    }
    cluster.stop_all().await;
    let history = cluster.history();
    let picture = write_timeline(
        &cluster,
        "s3-election demo: election, crash failover, resign handover",
    )?;
    println!("\ntimeline: {}", picture.display());
    match history::check(&history) {
        Ok(()) => println!(
            "\ninvariants hold over {} observations: never two leaders, terms only grow",
            history.len()
        ),
        Err(v) => bail!("INVARIANT VIOLATED: {v}"),
    }
    println!("summary: first election {first} ms, failover {failover} ms, handover {handover} ms (lease {lease_ms} ms)");

    quorum_demo(&runtime, store.s3_config(&bucket), &prefix, lease_ms).await
}

/// Three members, quorum of three: a member stops, the leader releases; it returns, a leader
/// is elected again.
async fn quorum_demo(
    runtime: &Arc<Runtime>,
    s3: host_test::runtime::api::S3Config,
    prefix: &str,
    lease_ms: u32,
) -> Result<()> {
    println!("\n=== quorum: 3 members, quorum 3 (each member heartbeats its own object) ===");
    let mut cluster = Cluster::new(runtime.clone(), s3);
    let member = |i: u32| {
        let mut e = election_config("demo-quorum", &format!("member-{i}"), prefix);
        e.timing_mut().lease_ms = Some(lease_ms);
        e.quorum = Some(host_test::quorum(3));
        e.metadata = format!("slot={i}");
        e
    };
    cluster.start_all((1..=3).map(member).collect()).await?;
    let lease = Duration::from_millis(u64::from(lease_ms));
    cluster
        .wait_for(lease * 4, |h| h.iter().any(Observation::is_leader))
        .await
        .context("no leader with quorum")?;
    show(&cluster, 2).await;
    if let Some(o) = cluster.latest().into_iter().find(|o| o.is_leader()) {
        let members: Vec<String> = o
            .members
            .iter()
            .map(|m| format!("{}{}", m.node, if m.fresh { "" } else { " (stale)" }))
            .collect();
        println!("members seen by the leader: {}", members.join(", "));
    }
    let leader = current_leader(&cluster).context("no leader")?;
    let victim = cluster
        .node_ids()
        .into_iter()
        .find(|id| *id != leader)
        .context("no follower")?;
    println!("\n>>> stopping {victim} without leaving: its heartbeats stop, the quorum is lost");
    let stopped_at = cluster.now_ms();
    cluster.kill(&victim);
    let released = cluster
        .wait_for(lease * 8, |h| {
            h.iter()
                .any(|o| o.at_ms > stopped_at && o.events.iter().any(|e| e.contains("quorum-lost")))
        })
        .await
        .context("the leader never reported the quorum lost")?;
    println!(
        ">>> quorum lost after {} ms (member TTL + grace): the leader released",
        released - stopped_at
    );
    show(&cluster, 2).await;
    println!("\n>>> {victim} comes back");
    let back_at = cluster.now_ms();
    cluster.recorder.mark(&victim, "back");
    let id = victim.trim_start_matches("member-").parse().unwrap_or(1);
    cluster.start(member(id)).await?;
    let elected = cluster
        .wait_for(lease * 6, |h| {
            h.iter().any(|o| o.at_ms > back_at && o.is_leader())
        })
        .await
        .context("no leader after the quorum returned")?;
    println!(
        ">>> quorum restored, leader elected {} ms later",
        elected - back_at
    );
    show(&cluster, 2).await;
    cluster.stop_all().await;
    let picture = write_timeline(
        &cluster,
        "s3-election demo: quorum of 3, a member stops and returns",
    )?;
    println!("timeline: {}", picture.display());
    match history::check(&cluster.history()) {
        Ok(()) => println!("invariants hold in the quorum run too"),
        Err(v) => bail!("INVARIANT VIOLATED: {v}"),
    }
    Ok(())
}

/// Write the run's timeline as SVG under `target/` and return its path.
fn write_timeline(cluster: &Cluster, title: &str) -> Result<PathBuf> {
    let dir = host_test::workspace_dir().join("target/timelines");
    std::fs::create_dir_all(&dir)?;
    let name: String = title
        .split(':')
        .next_back()
        .unwrap_or(title)
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let path = dir.join(format!("{name}.svg"));
    std::fs::write(&path, cluster.timeline_svg(title))?;
    Ok(path)
}

fn current_leader(cluster: &Cluster) -> Option<String> {
    cluster
        .latest()
        .into_iter()
        .find(|o| o.is_leader())
        .map(|o| o.node)
}

/// Print who leads, once a second, for `seconds` seconds.
async fn show(cluster: &Cluster, seconds: u32) {
    for _ in 0..seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let latest = cluster.latest();
        let leader = latest
            .iter()
            .find(|o| o.is_leader())
            .map(|o| format!("{} (term {})", o.node, o.term.unwrap_or(0)))
            .unwrap_or_else(|| "none".into());
        let nodes: Vec<String> = latest
            .iter()
            .map(|o| match (o.is_leader(), &o.error) {
                (true, _) => format!(
                    "{}: LEADER valid {:.1}s",
                    o.node,
                    o.valid_ms as f64 / 1000.0
                ),
                (false, Some(e)) => format!("{}: error {e}", o.node),
                (false, None) => format!("{}: follower", o.node),
            })
            .collect();
        println!(
            "t={:>5.1}s  leader {leader:<18} | {}",
            cluster.now_ms() as f64 / 1000.0,
            nodes.join(" | ")
        );
    }
}
