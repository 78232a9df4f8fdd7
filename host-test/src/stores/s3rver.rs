//! s3rver (npm), a local S3 server that ignores `If-None-Match` and `If-Match`: the store the
//! conformance probe must refuse. Installed under `target/s3rver` on first use.

use crate::stores::{Credentials, Store};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const S3RVER_VERSION: &str = "3.7.1";

pub struct S3rver {
    child: Child,
    pub store: Store,
    /// Created at start.
    pub bucket: String,
    _data: PathBuf,
}

fn ensure_installed() -> Result<PathBuf> {
    crate::npm_install(
        &crate::workspace_dir().join("target/s3rver"),
        "s3rver",
        &[&format!("s3rver@{S3RVER_VERSION}")],
    )
}

impl S3rver {
    pub fn start() -> Result<S3rver> {
        let bin = ensure_installed()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let data = std::env::temp_dir().join(format!("s3rver-{port}"));
        std::fs::create_dir_all(&data)?;
        let bucket = "refused".to_string();
        let child = Command::new("sh")
            .arg("-c")
            .arg(
                r#""$0" "$@" & child=$!
                   trap 'kill $child 2>/dev/null' EXIT INT TERM
                   while kill -0 "$WATCH_PID" 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1; done"#,
            )
            .arg(&bin)
            .args(["-d"])
            .arg(&data)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "--silent", "--configure-bucket", &bucket])
            .env("WATCH_PID", std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting s3rver")?;
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("s3rver did not start on port {port}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(S3rver {
            child,
            store: Store {
                endpoint: format!("http://127.0.0.1:{port}"),
                region: "us-east-1".into(),
                path_style: true,
                credentials: Credentials {
                    access_key_id: "S3RVER".into(),
                    secret_access_key: "S3RVER".into(),
                    session_token: None,
                },
            },
            bucket,
            _data: data,
        })
    }
}

impl Drop for S3rver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
