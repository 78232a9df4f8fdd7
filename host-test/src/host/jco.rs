//! jco (npm): the component transpiled to JavaScript and run by Node.js on
//! `@bytecodealliance/preview2-shim`, a runtime this project did not write. Installed under
//! `target/jco` on first use, at the versions pinned in `examples/jco-node/package.json`.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/jco`, with jco and preview2-shim at the pinned versions.
fn ensure_installed() -> Result<PathBuf> {
    let dir = crate::workspace_dir().join("target/jco");
    std::fs::create_dir_all(&dir)?;
    // npm installs what package.json pins.
    std::fs::copy(
        crate::workspace_dir().join("examples/jco-node/package.json"),
        dir.join("package.json"),
    )?;
    crate::npm_install(&dir, "jco", &[])?;
    Ok(dir)
}

/// `jco transpile` the component into a folder of this process; returns the ES module to
/// import (it resolves the preview2-shim from `target/jco/node_modules`).
pub fn transpile(component: &Path) -> Result<PathBuf> {
    let dir = ensure_installed()?;
    let out = dir.join(format!("out-{}", std::process::id()));
    let status = Command::new(dir.join("node_modules/.bin/jco"))
        .arg("transpile")
        .arg(component)
        .arg("-o")
        .arg(&out)
        .args(["--name", "s3election", "--quiet"])
        .status()
        .context("running jco transpile")?;
    if !status.success() {
        bail!("jco transpile {} failed ({status})", component.display());
    }
    // An ES module, so Node loads it without guessing.
    std::fs::write(out.join("package.json"), r#"{"type":"module"}"#)?;
    Ok(out.join("s3election.js"))
}

/// `node examples/jco-node/elector.mjs --component <module>`; the caller adds the election
/// flags and the AWS_* store variables.
pub fn elector_command(module: &Path) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(crate::workspace_dir().join("examples/jco-node/elector.mjs"))
        .arg("--component")
        .arg(module);
    cmd
}
