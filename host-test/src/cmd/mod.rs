//! The `host-test` command line: one subcommand per job, each with its own `--help`.
//!
//! Exit codes (for a supervisor): 0 done (or, for `node`, resigned cleanly on SIGTERM/SIGINT);
//! 1 the command failed (an invariant violated, no leader, a store refused); 2 bad usage or a
//! configuration the component refused before any request; 3 the component trapped.

pub mod bench;
pub mod cron;
mod demo;
mod health;
mod model_check;
mod node;
mod other;
pub mod scenario;

use crate::stores::Store;
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_TRAP: u8 = 3;

/// A failure that carries its own exit code (a configuration refused, a trap).
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

pub fn exit(code: u8, message: impl Into<String>) -> anyhow::Error {
    Exit {
        code,
        message: message.into(),
    }
    .into()
}

#[derive(Parser, Debug)]
#[command(
    name = "host-test",
    version,
    // A flag given twice takes its last value (scripts that add to a base command line).
    args_override_self = true,
    about = "Run the s3-election WebAssembly component in wasmtime: a demo, a sidecar node, \
             singleton jobs, fault scenarios, the store probe, benchmarks and the simulator",
    after_help = "Exit codes: 0 done (node: resigned on SIGTERM/SIGINT), 1 failed, \
                  2 bad usage or configuration, 3 the component trapped."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Three nodes on a local S3 server: election, crash failover, clean handover, quorum.
    #[command(after_help = "Examples:\n  host-test demo\n  \
        AWS_ENDPOINT_URL_S3=https://s3.eu-west-1.amazonaws.com AWS_REGION=eu-west-1 \\\n    \
        host-test demo --bucket my-bucket --lease 5s")]
    Demo(demo::DemoArgs),
    /// One node as a sidecar: a JSON line per tick on stdout, until SIGTERM/SIGINT (then it
    /// resigns, leaves the quorum and exits 0). `--listen` serves /healthz, /leader, /metrics.
    #[command(after_help = "Examples:\n  \
        host-test node --node-id \"$HOSTNAME\" --election reports --bucket my-bucket\n  \
        host-test node --node-id a --election jobs --bucket b --lease 5s --quorum 2 \
        --listen 127.0.0.1:9090")]
    Node(node::NodeArgs),
    /// Does this store honour conditional writes, and does it need unquoted ETags?
    #[command(after_help = "Example:\n  host-test probe --bucket my-bucket")]
    Probe(other::ProbeArgs),
    /// The benchmark table (BENCHMARKS.md), also as JSON.
    Bench(other::BenchArgs),
    /// Timed kills, resigns, partitions, faults, pauses and clock changes from a file.
    #[command(
        after_help = "Example:\n  host-test scenario host-test/scenarios/failover.txt --virtual"
    )]
    Scenario(other::ScenarioArgs),
    /// A singleton job: every period N fresh instances fire, exactly one runs the job.
    #[command(after_help = "Example:\n  host-test cron --every 2s --workers 3 --runs 5")]
    Cron(other::CronArgs),
    /// The deterministic simulator: a campaign of seeds, one seed replayed, or a schedule
    /// the model checker saved replayed.
    #[command(after_help = "Examples:\n  host-test sim --seeds 100000\n  \
        host-test sim --seed 5831 --verbose\n  host-test sim --seeds 10000 --mutation no-drift-margin\n  \
        host-test sim --replay target/model-check/two-no-drift-margin.json")]
    Sim(other::SimArgs),
    /// Exhaustive model checking of the real election core: every schedule of small worlds
    /// within bounds, judged by the simulator's invariants.
    #[command(
        after_help = "Examples:\n  host-test model-check\n  host-test model-check --ci\n  \
        host-test model-check --mutation no-drift-margin\n  host-test model-check --ci --mutations"
    )]
    ModelCheck(model_check::ModelCheckArgs),
}

/// The S3 store to use. Without an endpoint, commands that can start a local ministack do.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// S3 endpoint, `http(s)://host[:port]`.
    #[arg(long, env = "AWS_ENDPOINT_URL_S3")]
    pub endpoint: Option<String>,
    /// Region for signing.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Access key id (with --endpoint). The secret is read from AWS_SECRET_ACCESS_KEY (and
    /// AWS_SESSION_TOKEN) only: secrets are never flags.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub access_key_id: Option<String>,
    /// Virtual-hosted addressing (`bucket.endpoint`) instead of path style.
    #[arg(long)]
    pub virtual_hosted: bool,
}

impl StoreArgs {
    /// The configured store, if an endpoint was given.
    pub fn store(&self) -> Result<Option<Store>> {
        let Some(endpoint) = &self.endpoint else {
            return Ok(None);
        };
        let key = self
            .access_key_id
            .clone()
            .context("--endpoint needs AWS_ACCESS_KEY_ID (or --access-key-id)")?;
        let secret = std::env::var("AWS_SECRET_ACCESS_KEY")
            .context("--endpoint needs AWS_SECRET_ACCESS_KEY in the environment")?;
        Ok(Some(Store {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            region: self.region.clone(),
            path_style: !self.virtual_hosted,
            credentials: crate::stores::Credentials {
                access_key_id: key,
                secret_access_key: secret,
                session_token: std::env::var("AWS_SESSION_TOKEN").ok(),
            },
        }))
    }
}

/// `15s`, `500ms`, `2m`, `1h`.
pub fn duration(value: &str) -> Result<Duration, String> {
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{value}` is not a duration (say 15s, 500ms, 2m)"))?;
    let ms = match unit {
        "ms" => n,
        "s" => n.saturating_mul(1000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        "" => return Err(format!("`{value}` needs a unit: 15s, 500ms, 2m")),
        _ => return Err(format!("`{value}`: unknown unit `{unit}` (ms, s, m, h)")),
    };
    Ok(Duration::from_millis(ms))
}

/// A mutation by its name (`--mutation` of `sim` and `model-check`).
pub fn sim_mutation(name: &str) -> Result<s3_election::mutation::Mutation, String> {
    s3_election::mutation::Mutation::parse(name).ok_or_else(|| {
        let names: Vec<&str> = s3_election::mutation::Mutation::ALL
            .iter()
            .map(|m| m.name())
            .collect();
        format!("unknown mutation `{name}` (one of: {})", names.join(", "))
    })
}

/// Milliseconds for the WIT interface.
pub fn millis(d: Duration) -> Result<u32> {
    u32::try_from(d.as_millis()).with_context(|| format!("{d:?} is too long"))
}

/// The component to load: `--component`, `$S3_ELECTION_WASM`, or this workspace's build.
#[derive(Args, Debug, Clone)]
pub struct ComponentArg {
    /// The s3-election component file (default: $S3_ELECTION_WASM, or `make component`'s).
    #[arg(long, value_name = "PATH")]
    pub component: Option<PathBuf>,
}

impl ComponentArg {
    pub fn path(&self) -> PathBuf {
        self.component
            .clone()
            .unwrap_or_else(crate::host::runtime::default_component_path)
    }
}

/// Whether this command wants virtual time (one thread, paused clock).
pub fn wants_virtual_time(cli: &Cli) -> bool {
    matches!(&cli.command, Command::Scenario(s) if s.r#virtual)
}

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo(a) => demo::run(a).await,
        Command::Node(a) => node::run(a).await,
        Command::Probe(a) => other::probe(a).await,
        Command::Bench(a) => other::bench(a).await,
        Command::Scenario(a) => other::scenario(a).await,
        Command::Cron(a) => other::cron(a).await,
        Command::Sim(a) => other::sim(a),
        Command::ModelCheck(a) => model_check::run(a),
    }
}

/// The store from the arguments, or a local ministack with `default_bucket` created.
pub fn store_or_ministack(
    store: &StoreArgs,
    bucket: Option<&str>,
    default_bucket: &str,
) -> Result<(Store, String, Option<crate::stores::ministack::Ministack>)> {
    match store.store()? {
        Some(s) => {
            let Some(bucket) = bucket else {
                bail!("with --endpoint (or AWS_ENDPOINT_URL_S3), give --bucket too");
            };
            println!("store: {} (bucket {bucket})", s.endpoint);
            Ok((s, bucket.to_string(), None))
        }
        None => {
            println!(
                "No store configured (--endpoint or AWS_ENDPOINT_URL_S3): starting a local \
                 ministack (SigV4 verified with an IAM-created key) ..."
            );
            let m = crate::stores::ministack::Ministack::start()?;
            println!(
                "ministack on {} (log {})",
                m.store.endpoint,
                m.log.display()
            );
            let bucket = bucket.unwrap_or(default_bucket).to_string();
            m.store.create_bucket(&bucket)?;
            Ok((m.store.clone(), bucket, Some(m)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert!(duration("15").unwrap_err().contains("needs a unit"));
        assert!(duration("1d").unwrap_err().contains("unknown unit"));
        assert!(duration("soon").is_err());
    }
}
