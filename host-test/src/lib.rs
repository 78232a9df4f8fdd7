//! host-test: a native wasmtime host for the s3-election component. It runs many nodes
//! ([`cluster`]), injects faults ([`faults`]), records what each node believed and judges it
//! ([`history`]), and starts a local S3 server when none is configured ([`ministack`]).

pub mod api;
pub mod check;
pub mod cmd;
pub mod host;
pub mod stores;

pub use api::{describe_error, election_config, election_ref, event_text, job, quorum, ConfigExt};
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
