//! A local ministack, started on demand: installed into a venv under `target/` when missing,
//! bound to 127.0.0.1 on a free port, with an IAM-created key so that SigV4 signatures are
//! really verified (ministack never checks its root key `test`/`test`).

use crate::stores::{signed_request, xml_value, Credentials, Store};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const MINISTACK_VERSION: &str = "1.5.33";
const REGION: &str = "us-east-1";

pub struct Ministack {
    child: Child,
    pub port: u16,
    pub store: Store,
    pub log: PathBuf,
}

/// `target/ministack-venv` (or `$MINISTACK_VENV`), installed if missing.
pub fn ensure_installed() -> Result<PathBuf> {
    let venv = match std::env::var_os("MINISTACK_VENV") {
        Some(v) => PathBuf::from(v),
        None => crate::workspace_dir().join("target/ministack-venv"),
    };
    let python = venv.join("bin/python");
    // One installer per process; across processes the rename below settles who wins.
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if python.exists() {
        return Ok(python);
    }
    eprintln!(
        "installing ministack {MINISTACK_VERSION} into {} ...",
        venv.display()
    );
    // Install beside the final place and rename, so concurrent runs never see half a venv.
    let staging = venv.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::create_dir_all(venv.parent().unwrap_or(Path::new(".")))?;
    run(Command::new("python3").args(["-m", "venv"]).arg(&staging))?;
    run(Command::new(staging.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("ministack=={MINISTACK_VERSION}"),
    ]))?;
    if std::fs::rename(&staging, &venv).is_err() {
        // Someone else finished first.
        let _ = std::fs::remove_dir_all(&staging);
    }
    Ok(python)
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Ministack {
    /// Start a fresh ministack and create an IAM user with an access key.
    pub fn start() -> Result<Ministack> {
        let python = ensure_installed()?;
        let port = free_port()?;
        let log = std::env::temp_dir().join(format!("ministack-{port}.log"));
        let log_file = std::fs::File::create(&log)?;
        // A small shell watchdog stops ministack when this process exits, even by a crash.
        let child = Command::new("sh")
            .arg("-c")
            .arg(
                r#""$0" -c 'from ministack.app import main; main()' & child=$!
                   trap 'kill $child 2>/dev/null' EXIT INT TERM
                   while kill -0 "$WATCH_PID" 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1; done"#,
            )
            .arg(&python)
            .env("WATCH_PID", std::process::id().to_string())
            .env("AUTH", "true")
            .env("BIND_HOST", "127.0.0.1")
            .env("GATEWAY_PORT", port.to_string())
            .env("SERVICES", "s3,iam,sts")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("starting ministack")?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let root = Store {
            endpoint: endpoint.clone(),
            region: REGION.into(),
            path_style: true,
            credentials: Credentials {
                access_key_id: "test".into(),
                secret_access_key: "test".into(),
                session_token: None,
            },
        };
        let mut ministack = Ministack {
            child,
            port,
            store: root,
            log,
        };
        ministack.wait_healthy(Duration::from_secs(60))?;
        ministack.store.credentials = ministack.create_iam_key("s3-election-tests")?;
        Ok(ministack)
    }

    fn wait_healthy(&mut self, limit: Duration) -> Result<()> {
        let started = Instant::now();
        let url = format!("{}/_ministack/health", self.store.endpoint);
        loop {
            if let Ok(r) = ureq::get(&url).timeout(Duration::from_secs(2)).call() {
                if r.status() == 200 {
                    return Ok(());
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("ministack exited ({status}); see {}", self.log.display());
            }
            if started.elapsed() > limit {
                bail!(
                    "ministack did not become healthy; see {}",
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// An IAM user with an allow-all policy and a fresh access key (signed with the root key).
    pub fn create_iam_key(&self, user: &str) -> Result<Credentials> {
        let iam = |params: &[(&str, &str)]| -> Result<String> {
            let mut body = String::from("Version=2010-05-08");
            for (k, v) in params {
                body.push_str(&format!("&{k}={}", form_encode(v)));
            }
            let reply = signed_request(
                "POST",
                &format!("{}/", self.store.endpoint),
                &[("content-type", "application/x-www-form-urlencoded")],
                body.as_bytes(),
                "iam",
                REGION,
                &self.store.credentials,
            )?;
            if reply.status != 200 {
                bail!("IAM {params:?}: {} {}", reply.status, reply.body_text());
            }
            Ok(reply.body_text())
        };
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        iam(&[("Action", "CreateUser"), ("UserName", user)])?;
        iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", user),
            ("PolicyName", "allow-all"),
            ("PolicyDocument", policy),
        ])?;
        let xml = iam(&[("Action", "CreateAccessKey"), ("UserName", user)])?;
        Ok(Credentials {
            access_key_id: xml_value(&xml, "AccessKeyId")
                .context("no AccessKeyId in CreateAccessKey")?,
            secret_access_key: xml_value(&xml, "SecretAccessKey")
                .context("no SecretAccessKey in CreateAccessKey")?,
            session_token: None,
        })
    }
}

fn form_encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Drop for Ministack {
    fn drop(&mut self) {
        // SIGTERM, so the watchdog's trap stops ministack itself.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
