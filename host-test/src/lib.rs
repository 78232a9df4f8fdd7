//! host-test: a native wasmtime host for the s3-election component. It runs many nodes
//! ([`cluster`]), injects faults ([`faults`]), records what each node believed and judges it
//! ([`history`]), and starts a local S3 server when none is configured ([`ministack`]).

pub mod bench;
pub mod clocks;
pub mod cluster;
pub mod cmd;
pub mod cron;
pub mod faults;
pub mod history;
pub mod hostile;
pub mod jco;
pub mod memserver;
pub mod ministack;
pub mod runtime;
pub mod s3rver;
pub mod scenario;
pub mod sim;
pub mod stats;
pub mod store;
pub mod timeline;

use runtime::api;
use std::path::PathBuf;

/// The workspace root (the folder holding `wit/` and `target/`).
pub fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// `npm install <packages>` into `dir` unless `dir/node_modules/.bin/<bin>` exists; returns
/// that binary. One installer per process (tests share the folder).
pub(crate) fn npm_install(
    dir: &std::path::Path,
    bin: &str,
    packages: &[&str],
) -> anyhow::Result<PathBuf> {
    use anyhow::{bail, Context};
    let path = dir.join("node_modules/.bin").join(bin);
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(dir)?;
    eprintln!(
        "installing {} into {} ...",
        packages.join(" "),
        dir.display()
    );
    let status = std::process::Command::new("npm")
        .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
        .arg(dir)
        .args(packages)
        .status()
        .context("running npm (is Node.js installed?)")?;
    if !status.success() || !path.exists() {
        bail!("npm install {} failed ({status})", packages.join(" "));
    }
    Ok(path)
}

/// An election config with every timing left to the component's defaults.
pub fn election_config(name: &str, node_id: &str, prefix: &str) -> api::ElectionConfig {
    api::ElectionConfig {
        election: election_ref(name, prefix),
        node_id: node_id.into(),
        metadata: String::new(),
        stateless: false,
        probe_store: false,
        timings: None,
        quorum: None,
    }
}

pub fn election_ref(name: &str, prefix: &str) -> api::ElectionRef {
    api::ElectionRef {
        name: name.into(),
        key_prefix: prefix.into(),
    }
}

/// A quorum of `size` with default timings.
pub fn quorum(size: u32) -> api::Quorum {
    api::Quorum {
        size,
        heartbeat_interval_ms: None,
        member_ttl_ms: None,
        grace_ms: None,
    }
}

/// A singleton job's identity for `claim-slot`.
pub fn job(name: &str, node_id: &str, prefix: &str) -> api::Job {
    api::Job {
        election: election_ref(name, prefix),
        node_id: node_id.into(),
        metadata: String::new(),
    }
}

/// Edit the optional parts of an election config in place.
pub trait ConfigExt {
    /// The timings, created (all defaults) if unset.
    fn timing_mut(&mut self) -> &mut api::Timings;
    /// The quorum; panics if none was set (set `quorum = Some(quorum(n))` first).
    fn quorum_mut(&mut self) -> &mut api::Quorum;
    fn lease_ms(&self) -> Option<u32>;
}

impl ConfigExt for api::ElectionConfig {
    fn timing_mut(&mut self) -> &mut api::Timings {
        self.timings.get_or_insert(api::Timings {
            lease_ms: None,
            renew_deadline_ms: None,
            retry_period_ms: None,
            renew_interval_ms: None,
            grace_ms: None,
            max_drift_ppm: None,
            request_timeout_ms: None,
            store_clock_skew_ms: None,
        })
    }

    fn quorum_mut(&mut self) -> &mut api::Quorum {
        self.quorum.as_mut().expect("a quorum is set")
    }

    fn lease_ms(&self) -> Option<u32> {
        self.timings.as_ref().and_then(|t| t.lease_ms)
    }
}

/// One line for an error, e.g. `access-denied: 403 SignatureDoesNotMatch: ...`.
pub fn describe_error(e: &api::Error) -> String {
    let store = |s: &api::StoreError| format!("{} {}: {}", s.status, s.code, s.message);
    match e {
        api::Error::InvalidConfig(c) => format!("invalid-config: {}: {}", c.field, c.problem),
        api::Error::AccessDenied(s) => format!("access-denied: {}", store(s)),
        api::Error::BucketMissing(b) => format!("bucket-missing: {b}"),
        api::Error::ForeignRecord(why) => format!("foreign-record: {why}"),
        api::Error::ConditionalWritesUnsupported(why) => {
            format!("conditional-writes-unsupported: {why}")
        }
        api::Error::Transport(why) => format!("transport: {why}"),
        api::Error::BadAnswer(why) => format!("bad-answer: {why}"),
        api::Error::Store(s) => format!("store: {}", store(s)),
    }
}

/// One event as text, e.g. `elected(term=3)`.
pub fn event_text(e: &api::Event) -> String {
    match e {
        api::Event::Elected(term) => format!("elected(term={term})"),
        api::Event::Demoted(d) => {
            let reason = match &d.reason {
                api::DemoteReason::RenewDeadlineExceeded => "renew-deadline-exceeded".to_string(),
                api::DemoteReason::LeaseLost(Some(h)) => format!("lease-lost to {h}"),
                api::DemoteReason::LeaseLost(None) => "lease-lost".to_string(),
                api::DemoteReason::Resigned => "resigned".to_string(),
                api::DemoteReason::Error => "error".to_string(),
                api::DemoteReason::QuorumLost => "quorum-lost".to_string(),
            };
            format!("demoted(term={}, {reason})", d.term)
        }
        api::Event::LeaderChanged(Some(l)) => {
            format!("leader-changed({}, term={})", l.node_id, l.term)
        }
        api::Event::LeaderChanged(None) => "leader-changed(none)".to_string(),
        api::Event::QuorumLost(q) => format!("quorum-lost({}/{})", q.fresh, q.needed),
        api::Event::QuorumRestored(fresh) => format!("quorum-restored({fresh})"),
    }
}
