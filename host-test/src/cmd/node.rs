//! `host-test node`: one node as a sidecar. A JSON line per tick on stdout; on SIGTERM or
//! SIGINT it resigns (and leaves the quorum) and exits 0; a trap exits 3. With `--listen` it
//! serves `/healthz`, `/leader` and `/metrics` (see [`super::health`]).

use super::{duration, exit, millis, ComponentArg, StoreArgs, EXIT_TRAP, EXIT_USAGE};
use crate::host::cluster::Cluster;
use crate::host::runtime::Runtime;
use crate::{election_config, ConfigExt};
use anyhow::{Context, Result};
use clap::Args;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct NodeArgs {
    /// This node's id, unique per running instance (a host or pod name): letters, digits, `-`, `_` and `.`
    #[arg(long)]
    node_id: String,
    /// The election's name (one lease object per name).
    #[arg(long)]
    election: String,
    /// Bucket.
    #[arg(long)]
    bucket: String,
    /// Key prefix: empty, or segments ending in `/`.
    #[arg(long, default_value = "")]
    prefix: String,
    /// Lease duration (15s by default; the other timings follow it).
    #[arg(long, value_parser = duration)]
    lease: Option<Duration>,
    /// Step down when no renewal was confirmed for this long (< lease).
    #[arg(long, value_parser = duration)]
    renew_deadline: Option<Duration>,
    /// Pause between retries and follower polls.
    #[arg(long, value_parser = duration)]
    retry: Option<Duration>,
    /// The longest lease any node of this election uses (default: --lease). While nodes run
    /// with different leases (a rolling change of --lease), give every node the longest.
    #[arg(long, value_parser = duration)]
    longest_lease: Option<Duration>,
    /// Send ETags without quotes in If-Match (Ceph RGW; the node also finds out by itself).
    #[arg(long)]
    unquoted_etags: bool,
    /// Published in the lease record while this node leads.
    #[arg(long, default_value = "")]
    metadata: String,
    /// A fresh component instance for every tick (as an edge trigger would).
    #[arg(long)]
    stateless: bool,
    /// Lead only while this many members (this one included) are alive.
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=1000))]
    quorum: Option<u32>,
    /// Check the store's conditional writes before the first election request.
    #[arg(long)]
    probe_store: bool,
    /// Serve /healthz, /leader and /metrics on this address (e.g. 127.0.0.1:9090).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    component: ComponentArg,
}

pub async fn run(args: NodeArgs) -> Result<()> {
    // A node needs a store; the generic AWS_ENDPOINT_URL counts too, as for the AWS SDKs.
    let mut store_args = args.store.clone();
    if store_args.endpoint.is_none() {
        store_args.endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
    }
    let store = store_args.store()?.ok_or_else(|| {
        exit(
            EXIT_USAGE,
            "`node` needs a store: set AWS_ENDPOINT_URL_S3 (or --endpoint) and the AWS_* credentials",
        )
    })?;
    let runtime = Arc::new(Runtime::load(&args.component.path())?);
    let mut election = election_config(&args.election, &args.node_id, &args.prefix);
    if let Some(d) = args.lease {
        election.timing_mut().lease_ms = Some(millis(d)?);
    }
    if let Some(d) = args.renew_deadline {
        election.timing_mut().renew_deadline_ms = Some(millis(d)?);
    }
    if let Some(d) = args.retry {
        election.timing_mut().retry_period_ms = Some(millis(d)?);
    }
    election.metadata = args.metadata.clone();
    election.stateless = args.stateless;
    election.quorum = args.quorum.map(crate::quorum);
    election.probe_store = args.probe_store;
    let id = election.node_id.clone();
    let lease = args.lease.unwrap_or(Duration::from_secs(15));
    let mut s3 = store.s3_config(&args.bucket);
    s3.unquoted_etags = args.unquoted_etags;
    let mut cluster = Cluster::new(runtime, s3);
    cluster.recorder.echo_json = true;
    if let Some(d) = args.longest_lease {
        cluster.options.longest_lease_ms = Some(millis(d)?);
    }
    cluster
        .start(election)
        .await
        .map_err(|e| exit(EXIT_USAGE, format!("{e:#}")))?;
    if let Some(addr) = args.listen {
        let stats = cluster.stats(&id).context("the node's stats")?;
        let faults = cluster.faults(&id).context("the node's counters")?;
        let served = super::health::serve(
            addr,
            super::health::Node {
                node: id.clone(),
                election: args.election.clone(),
                stats,
                faults,
                lease,
            },
        )
        .await?;
        eprintln!("health and metrics on http://{served}/ (healthz, leader, metrics)");
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        trap = cluster.recorder.trapped() => {
            return Err(exit(
                EXIT_TRAP,
                format!("node {}: the component trapped in {}: {}", trap.node, trap.call, trap.message),
            ));
        }
    }
    // Stopping resigns first, so a leader hands over at once.
    cluster.stop(&id).await;
    Ok(())
}
