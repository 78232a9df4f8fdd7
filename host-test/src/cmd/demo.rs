//! `host-test demo`: three nodes on a store (a local ministack unless one is given): first
//! election, crash failover, clean handover, then a quorum losing and regaining a member.

use super::{duration, millis, store_or_ministack, ComponentArg, StoreArgs};
use crate::check::history::{self, Observation};
use crate::host::cluster::Cluster;
use crate::host::runtime::Runtime;
use crate::{election_config, ConfigExt};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct DemoArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Bucket (created on a local ministack; must exist on your store).
    #[arg(long)]
    bucket: Option<String>,
    /// Nodes in the election (at least 2).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=20))]
    nodes: u32,
    /// Lease duration: 3s, 1500ms, …
    #[arg(long, default_value = "3s", value_parser = duration)]
    lease: Duration,
    #[command(flatten)]
    component: ComponentArg,
}

pub async fn run(args: DemoArgs) -> Result<()> {
    let nodes = args.nodes;
    let lease_ms = millis(args.lease)?;
    let (store, bucket, _ministack) =
        store_or_ministack(&args.store, args.bucket.as_deref(), "s3-election-demo")?;
    let runtime = Arc::new(Runtime::load(&args.component.path())?);
    println!(
        "component {} ({} KiB), compiled in {} ms",
        runtime.component_path.display(),
        runtime.component_bytes / 1024,
        runtime.compile_time.as_millis()
    );
    let prefix = format!("demo-{}/", std::process::id());
    println!(
        "election `demo` in s3://{bucket}/{prefix}demo/lease, {nodes} nodes, lease {lease_ms} ms\n\
         (a new election first writes a vacant lease and waits one lease on it: a leader of a\n\
         deleted lease object could still be within its promise)\n"
    );

    let mut cluster = Cluster::new(runtime.clone(), store.s3_config(&bucket));
    for i in 1..=nodes {
        let mut e = election_config("demo", &format!("node-{i}"), &prefix);
        e.timing_mut().lease_ms = Some(lease_ms);
        e.metadata = format!("pid={} slot={i}", std::process::id());
        cluster.start(e).await?;
    }
    let lease = args.lease;
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
        failover as f64 / f64::from(lease_ms)
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

/// Three members, quorum of three: a member stops, the leader stops leading and releases
/// once its promise is over; the member returns, a leader is elected again.
async fn quorum_demo(
    runtime: &Arc<Runtime>,
    s3: crate::api::S3Config,
    prefix: &str,
    lease_ms: u32,
) -> Result<()> {
    println!("\n=== quorum: 3 members, quorum 3 (each member heartbeats its own object) ===");
    let mut cluster = Cluster::new(runtime.clone(), s3);
    let member = |i: u32| {
        let mut e = election_config("demo-quorum", &format!("member-{i}"), prefix);
        e.timing_mut().lease_ms = Some(lease_ms);
        e.quorum = Some(crate::quorum(3));
        e.metadata = format!("slot={i}");
        e
    };
    cluster.start_all((1..=3).map(member).collect()).await?;
    let lease = Duration::from_millis(u64::from(lease_ms));
    cluster
        .wait_for(lease * 5, |h| h.iter().any(Observation::is_leader))
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
        ">>> quorum lost after {} ms (member TTL + grace): the leader stopped, and releases \
         once its last promise is over",
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
pub fn write_timeline(cluster: &Cluster, title: &str) -> Result<PathBuf> {
    let dir = crate::workspace_dir().join("target/timelines");
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
            "t={:>5.1}s  leader {leader:<26} | {}",
            cluster.now_ms() as f64 / 1000.0,
            nodes.join(" | ")
        );
    }
}
