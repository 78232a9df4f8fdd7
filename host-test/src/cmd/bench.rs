//! `host-test bench`: the numbers behind BENCHMARKS.md. It reports; correctness is asserted by
//! the tests, not here.

use crate::api;
use crate::check::history::{self, Observation};
use crate::host::cluster::Cluster;
use crate::host::faults::Faults;
use crate::host::runtime::Runtime;
use crate::stores::memserver::InProcessS3;
use crate::ConfigExt;
use anyhow::{bail, Context, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One line of the table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    pub measure: String,
    pub value: String,
    pub note: String,
}

fn row(measure: &str, value: String, note: &str) -> Row {
    Row {
        measure: measure.into(),
        value,
        note: note.into(),
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Process CPU time (user + system) from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn election(name: &str, node: &str, lease_ms: u32) -> api::ElectionConfig {
    let mut e = crate::election_config(name, node, "bench/");
    e.timing_mut().lease_ms = Some(lease_ms);
    e
}

/// Everything; `s3` is a real store (the failover, handover and contention rows use it).
pub async fn run(
    runtime: Arc<Runtime>,
    s3: api::S3Config,
    trials: usize,
    progress: impl Fn(&str),
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    rows.push(row(
        "component size",
        format!(
            "{} KiB ({} bytes)",
            runtime.component_bytes / 1024,
            runtime.component_bytes
        ),
        "release build, LTO, opt-level z, stripped",
    ));
    rows.push(row(
        "compile (Cranelift)",
        format!("{} ms", runtime.compile_time.as_millis()),
        "once per host process",
    ));

    progress("instantiation");
    let n = 200;
    let started = Instant::now();
    for _ in 0..n {
        runtime.instantiate_only().await?;
    }
    rows.push(row(
        "instantiate through InstancePre",
        format!("{:.0} µs", started.elapsed().as_secs_f64() * 1e6 / n as f64),
        "mean of 200: the per-invocation cost of a stateless (cron) call",
    ));

    progress("tick CPU time, in-process S3");
    rows.extend(tick_costs(&runtime).await?);
    rows.extend(requests_per_hour());

    progress("crash failover");
    let (p50, p99, lease) = failover(&runtime, &s3, trials, false).await?;
    rows.push(row(
        "crash failover p50 / p99",
        format!(
            "{p50:.0} / {p99:.0} ms ({:.2} / {:.2} × lease)",
            p50 / lease,
            p99 / lease
        ),
        &format!("{trials} trials, 3 nodes, lease {lease:.0} ms, real S3 (ministack)"),
    ));
    progress("resign handover");
    let (p50, p99, lease) = failover(&runtime, &s3, trials, true).await?;
    rows.push(row(
        "resign handover p50 / p99",
        format!("{p50:.0} / {p99:.0} ms"),
        &format!("{trials} trials, 3 nodes, lease {lease:.0} ms: one follower poll"),
    ));

    progress("100 nodes contending");
    rows.push(contention(&runtime, &s3, 100).await?);
    progress("1000 elections in one process");
    rows.push(many_elections(&runtime, 1000, Duration::from_secs(10)).await?);
    Ok(rows)
}

/// Cost of one tick without the network: a renewal and a follower poll, each one request.
async fn tick_costs(runtime: &Runtime) -> Result<Vec<Row>> {
    let s3 = Arc::new(InProcessS3::new());
    let in_process = || {
        let f = Faults::new();
        f.serve_in_process(s3.clone());
        f
    };
    let cfg = crate::stores::memserver::in_process_config();
    // A short lease so renewals and polls come often.
    let e = |node: &str| election("ticks", node, 300);
    let mut leader = runtime
        .open(&cfg, &e("leader"), in_process())
        .await?
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut follower = runtime
        .open(&cfg, &e("follower"), in_process())
        .await?
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut renewals = Vec::new();
    let mut polls = Vec::new();
    let until = Instant::now() + Duration::from_secs(3);
    let (mut renewal_requests, mut poll_requests) = (0u32, 0u32);
    while Instant::now() < until {
        for (node, times, requests) in [
            (&mut leader, &mut renewals, &mut renewal_requests),
            (&mut follower, &mut polls, &mut poll_requests),
        ] {
            let started = Instant::now();
            let status = node.tick().await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            if status.requests > 0 && status.events.is_empty() {
                times.push(started.elapsed().as_secs_f64() * 1e6);
                *requests += status.requests;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if renewals.is_empty() || polls.is_empty() {
        bail!("no steady ticks measured");
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    Ok(vec![
        row(
            "tick CPU time, leader renewal",
            format!("{:.0} µs", mean(&renewals)),
            &format!(
                "{} ticks against an in-process S3 (no network): sign, send, parse",
                renewals.len()
            ),
        ),
        row(
            "tick CPU time, follower poll",
            format!("{:.0} µs", mean(&polls)),
            &format!("{} ticks (conditional GET answered 304)", polls.len()),
        ),
        row(
            "requests per renewal / per follower poll",
            format!(
                "{:.2} / {:.2}",
                f64::from(renewal_requests) / renewals.len() as f64,
                f64::from(poll_requests) / polls.len() as f64
            ),
            "measured: one conditional PUT / one conditional GET",
        ),
    ])
}

/// Requests per hour per role at the default timings (lease 15 s), next to gonsensus at the
/// same TTL and poll interval: 4 requests per renewal every TTL/3, 1 GET per poll, 2 per
/// observer heartbeat every TTL/3. Ours: one request per renewal and per poll (measured above).
fn requests_per_hour() -> Vec<Row> {
    let t = s3_election::config::Timings::default();
    let per_hour = |every: Duration, requests: f64| requests * 3600.0 / every.as_secs_f64();
    let renew = t.renew_interval;
    // Polls come every retry period less 0–20 % jitter: 0.9 × retry on average.
    let poll = t.retry_period.mul_f64(0.9);
    let heartbeat = t.lease / 3;
    let ttl3 = t.lease / 3;
    vec![
        row(
            "requests/hour, leader",
            format!("{:.0} (gonsensus {:.0})", per_hour(renew, 1.0), per_hour(ttl3, 4.0)),
            "lease 15 s: 1 PUT per renewal every 5 s; gonsensus: 4 requests every TTL/3",
        ),
        row(
            "requests/hour, follower",
            format!("{:.0} (gonsensus {:.0})", per_hour(poll, 1.0), per_hour(t.retry_period, 1.0)),
            "1 conditional GET per poll (retry period 2 s less jitter); gonsensus: 1 GET per 2 s poll",
        ),
        row(
            "requests/hour, quorum member",
            format!("{:.0} (gonsensus {:.0})", per_hour(heartbeat, 1.0), per_hour(ttl3, 2.0)),
            "1 PUT of its own object per heartbeat (lease/3), plus its follower polls; the leader adds 1 LIST per heartbeat",
        ),
    ]
}

/// Failover (kill the leader) or handover (the leader resigns): p50, p99 in ms, and the lease.
async fn failover(
    runtime: &Arc<Runtime>,
    s3: &api::S3Config,
    trials: usize,
    resign: bool,
) -> Result<(f64, f64, f64)> {
    let lease_ms = 1000;
    let mut times = Vec::new();
    for trial in 0..trials {
        let mut c = Cluster::new(runtime.clone(), s3.clone());
        let name = format!(
            "{}-{trial}-{}",
            if resign { "handover" } else { "failover" },
            std::process::id()
        );
        c.start_all(
            (1..=3)
                .map(|i| election(&name, &format!("n{i}"), lease_ms))
                .collect(),
        )
        .await?;
        c.wait_for(Duration::from_secs(5), |h| {
            h.iter().any(Observation::is_leader)
        })
        .await
        .context("no leader")?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let leader = c
            .latest()
            .into_iter()
            .find(|o| o.is_leader())
            .context("no leader")?
            .node;
        let at = c.now_ms();
        if resign {
            let _ = c.resign(&leader).await?;
        } else {
            c.kill(&leader);
        }
        let took = c
            .wait_for(Duration::from_secs(10), |h| {
                h.iter()
                    .any(|o| o.at_ms > at && o.is_leader() && o.node != leader)
            })
            .await
            .context("no new leader")?
            - at;
        c.stop_all().await;
        if let Err(v) = history::check(&c.history()) {
            bail!("invariant violated in trial {trial}: {v}");
        }
        times.push(took as f64);
    }
    times.sort_by(f64::total_cmp);
    Ok((
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        f64::from(lease_ms),
    ))
}

/// N nodes started at once on one lease: time to the first leader, and that exactly one leads.
async fn contention(runtime: &Arc<Runtime>, s3: &api::S3Config, n: usize) -> Result<Row> {
    let mut c = Cluster::new(runtime.clone(), s3.clone());
    let name = format!("contention-{}", std::process::id());
    c.start_all(
        (0..n)
            .map(|i| election(&name, &format!("n{i:03}"), 3000))
            .collect(),
    )
    .await?;
    let started = c.now_ms();
    let elected = c
        .wait_for(Duration::from_secs(20), |h| {
            h.iter().any(Observation::is_leader)
        })
        .await
        .context("no leader")?
        - started;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let leaders = c.latest().iter().filter(|o| o.is_leader()).count();
    c.stop_all().await;
    let verdict = match history::check(&c.history()) {
        Ok(()) => "invariants hold",
        Err(_) => "INVARIANT VIOLATED",
    };
    Ok(row(
        &format!("{n} nodes contending on one lease"),
        format!("elected in {elected} ms; {leaders} leader(s) 2 s later"),
        &format!("real S3 (ministack), lease 3 s; {verdict}"),
    ))
}

/// Many named elections, one node each, ticked once a second: CPU used by the host process.
async fn many_elections(runtime: &Arc<Runtime>, n: usize, duration: Duration) -> Result<Row> {
    let s3 = Arc::new(InProcessS3::new());
    let cfg = crate::stores::memserver::in_process_config();
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let f = Faults::new();
        f.serve_in_process(s3.clone());
        let e = crate::election_config(&format!("job-{i:04}"), "host-1", "many/");
        nodes.push(
            runtime
                .open(&cfg, &e, f)
                .await?
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        );
    }
    let cpu_before = cpu_time();
    let started = Instant::now();
    let mut leading = 0;
    while started.elapsed() < duration {
        let round = Instant::now();
        leading = 0;
        for node in nodes.iter_mut() {
            let status = node.tick().await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            leading += usize::from(status.role == api::Role::Leader);
        }
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(round.elapsed())).await;
    }
    let cpu = cpu_time() - cpu_before;
    let wall = started.elapsed();
    Ok(row(
        &format!("{n} elections in one host, ticked once a second"),
        format!(
            "{:.1} % of one core ({leading} leading)",
            100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
        ),
        &format!(
            "default timings, in-process S3, {:.0} s; includes signing every request",
            wall.as_secs_f64()
        ),
    ))
}

/// The table as Markdown.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from("| measure | value | how |\n|---|---|---|\n");
    for r in rows {
        out.push_str(&format!("| {} | {} | {} |\n", r.measure, r.value, r.note));
    }
    out
}
