//! The `host-test` command line: every subcommand's `--help`, unknown flags and bad values,
//! and the `node` sidecar: JSON lines on stdout, clean resign on SIGTERM, health and metrics
//! endpoints, exit codes. Runs the real binary against a local ministack (SigV4 verified with
//! an IAM key).

use host_test::stores::ministack::Ministack;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

type Lines = mpsc::Receiver<serde_json::Value>;

fn spawn_node(m: &Ministack, bucket: &str, id: &str) -> (Child, Lines) {
    spawn_node_with(m, bucket, id, &[])
}

fn spawn_node_with(m: &Ministack, bucket: &str, id: &str, extra: &[&str]) -> (Child, Lines) {
    let s = &m.store;
    let mut child = Command::new(env!("CARGO_BIN_EXE_host-test"))
        .args([
            "node",
            "--node-id",
            id,
            "--election",
            "sidecar",
            "--bucket",
            bucket,
        ])
        .args([
            "--prefix",
            "cli/",
            "--lease",
            "1500ms",
            "--metadata",
            "addr=127.0.0.1",
        ])
        .args(extra) // later flags win: extra settings override the defaults above
        .env("AWS_ENDPOINT_URL_S3", &s.endpoint)
        .env("AWS_ACCESS_KEY_ID", &s.credentials.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &s.credentials.secret_access_key)
        .env("AWS_REGION", &s.region)
        .stdout(Stdio::piped())
        .spawn()
        .expect("run host-test node");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let value: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
            if tx.send(value).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Lines until `pred` holds on one (returned) or the time runs out.
fn until(
    rx: &mpsc::Receiver<serde_json::Value>,
    limit: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Option<serde_json::Value> {
    let deadline = Instant::now() + limit;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(v) if pred(&v) => return Some(v),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn node_prints_json_lines_and_resigns_on_sigterm() {
    let m = Ministack::start().expect("ministack");
    let bucket = "cli-sidecar";
    m.store.create_bucket(bucket).unwrap();

    let (mut a, a_lines) = spawn_node(&m, bucket, "alpha");
    let leading =
        until(&a_lines, Duration::from_secs(20), |v| v["role"] == "leader").expect("alpha leads");
    for field in [
        "unix_ms", "node", "role", "term", "leader", "valid_ms", "events",
    ] {
        assert!(leading.get(field).is_some(), "missing {field} in {leading}");
    }
    assert_eq!(leading["node"], "alpha");
    assert_eq!(leading["leader"], "alpha");
    let term = leading["term"].as_u64().expect("a term");
    assert!(leading["valid_ms"].as_u64().unwrap() > 0);
    assert!(leading["unix_ms"].as_u64().unwrap() > 1_700_000_000_000);

    let (mut b, b_lines) = spawn_node(&m, bucket, "beta");
    let following = until(&b_lines, Duration::from_secs(10), |v| {
        v["leader"] == "alpha"
    })
    .expect("beta sees alpha");
    assert_eq!(following["role"], "follower");
    assert_eq!(following["valid_ms"], 0);

    // SIGTERM: alpha resigns and exits 0; beta takes over at once with the next term.
    sigterm(&a);
    let last = until(&a_lines, Duration::from_secs(10), |v| {
        v["events"].as_array().is_some_and(|e| {
            e.iter()
                .any(|e| e.as_str().is_some_and(|s| s.contains("resigned")))
        })
    })
    .expect("alpha reports its resignation");
    assert_eq!(last["role"], "follower");
    assert!(a.wait().unwrap().success());
    let took_over = until(&b_lines, Duration::from_secs(5), |v| v["role"] == "leader")
        .expect("beta leads after alpha resigned");
    assert!(took_over["term"].as_u64() > Some(term), "{took_over}");

    sigterm(&b);
    assert!(b.wait().unwrap().success());
    let body = m
        .store
        .get_object(bucket, "cli/sidecar/lease")
        .unwrap()
        .unwrap();
    let record: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(record["released"], true);
    assert_eq!(record["holder"], "beta");
}

#[test]
fn node_with_a_quorum_prints_the_members() {
    let m = Ministack::start().expect("ministack");
    let bucket = "cli-quorum";
    m.store.create_bucket(bucket).unwrap();
    let quorum = ["--quorum", "2", "--prefix", "q/"];
    let (mut a, a_lines) = spawn_node_with(&m, bucket, "alpha", &quorum);
    let (mut b, b_lines) = spawn_node_with(&m, bucket, "beta", &quorum);
    let with_members = |v: &serde_json::Value| {
        v["role"] == "leader" && v["members"].as_array().is_some_and(|m| m.len() == 2)
    };
    let line = until(&a_lines, Duration::from_secs(20), with_members)
        .or_else(|| until(&b_lines, Duration::from_secs(5), with_members))
        .expect("a leader line listing both members");
    let members = line["members"].as_array().unwrap();
    assert_eq!(members[0]["node"], "alpha");
    assert_eq!(members[1]["node"], "beta");
    assert!(members.iter().all(|m| m["fresh"] == true));
    for child in [&a, &b] {
        sigterm(child);
    }
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    // A clean exit leaves: the member objects are gone.
    assert!(m
        .store
        .get_object(bucket, "q/sidecar/members/alpha")
        .unwrap()
        .is_none());
}

#[test]
fn node_without_a_store_fails_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_host-test"))
        .args(["node", "--node-id", "x", "--election", "e", "--bucket", "b"])
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("AWS_ENDPOINT_URL_S3"), "{stderr}");
}

fn host_test(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_host-test"))
        .args(args)
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap()
}

#[test]
fn every_subcommand_has_help_with_examples_and_the_version_is_shown() {
    for (command, flag) in [
        ("demo", "--lease"),
        ("node", "--listen"),
        ("probe", "--bucket"),
        ("bench", "--trials"),
        ("scenario", "--virtual"),
        ("cron", "--every"),
        ("sim", "--replay"),
        ("model-check", "--mutation"),
    ] {
        let out = host_test(&[command, "--help"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{command} --help: {out:?}");
        assert!(
            text.contains(flag),
            "{command} --help lacks {flag}:\n{text}"
        );
        assert!(
            text.contains("--endpoint") || ["sim", "model-check"].contains(&command),
            "{command}: {text}"
        );
    }
    let top = host_test(&["--help"]);
    let text = String::from_utf8_lossy(&top.stdout);
    assert!(text.contains("Exit codes"), "{text}");
    let version = host_test(&["--version"]);
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("host-test "));
}

/// The command the README and `host-test probe --help` show, run as written against a real
/// store (its default election name was once reserved, and it failed).
#[test]
fn the_documented_probe_command_passes_on_a_real_store() {
    let m = Ministack::start().expect("ministack");
    let s = &m.store;
    let bucket = "my-bucket";
    s.create_bucket(bucket).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_host-test"))
        .args(["probe", "--bucket", bucket])
        .env("AWS_ENDPOINT_URL_S3", &s.endpoint)
        .env("AWS_REGION", &s.region)
        .env("AWS_ACCESS_KEY_ID", &s.credentials.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &s.credentials.secret_access_key)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("honours conditional writes"), "{text}");
}

#[test]
fn a_typo_or_a_bad_value_is_refused_with_a_suggestion() {
    let out = host_test(&[
        "node",
        "--node-id",
        "a",
        "--election",
        "e",
        "--bucket",
        "b",
        "--quorom",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--quorom") && stderr.contains("--quorum"),
        "{stderr}"
    );
    let out = host_test(&[
        "node",
        "--node-id",
        "a",
        "--election",
        "e",
        "--bucket",
        "b",
        "--lease",
        "15",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a unit"));
    let out = host_test(&["sim", "--mutation", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown mutation"));
}

/// A plain HTTP GET on the sidecar's health port: (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    match ureq::get(&format!("http://{addr}{path}"))
        .timeout(Duration::from_secs(5))
        .call()
    {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("GET {path}: {e}"),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn node_serves_health_leader_and_metrics() {
    let m = Ministack::start().expect("ministack");
    let bucket = "cli-health";
    m.store.create_bucket(bucket).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let (mut a, lines) =
        spawn_node_with(&m, bucket, "alpha", &["--prefix", "h/", "--listen", &addr]);
    until(&lines, Duration::from_secs(20), |v| v["role"] == "leader").expect("alpha leads");
    let (status, body) = get(&addr, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, body) = get(&addr, "/leader");
    assert_eq!(status, 200);
    let leader: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&leader["node"], &leader["leader"], &leader["is_leader"]),
        (&"alpha".into(), &"alpha".into(), &true.into()),
        "{leader}"
    );
    assert!(
        leader["term"].as_u64().is_some() && leader["valid_ms"].as_u64() > Some(0),
        "{leader}"
    );
    let (status, metrics) = get(&addr, "/metrics");
    assert_eq!(status, 200);
    for line in [
        "s3_election_is_leader{election=\"sidecar\",node=\"alpha\"} 1",
        "s3_election_elected_total{election=\"sidecar\",node=\"alpha\"} 1",
        "kind=\"lease-write\",status=\"200\"",
        "s3_election_tick_seconds_count",
    ] {
        assert!(metrics.contains(line), "no {line:?} in\n{metrics}");
    }
    assert_eq!(get(&addr, "/nope").0, 404);
    sigterm(&a);
    assert!(a.wait().unwrap().success(), "exit 0 after a clean resign");
}

/// A component that traps: the sidecar says which node trapped in which call, exits 3, and
/// does not hang.
#[test]
fn a_trap_is_reported_and_ends_the_node_with_exit_code_3() {
    let trapping = host_test::workspace_dir().join("target/component/trap-on-tick.wasm");
    assert!(
        trapping.exists(),
        "{} is missing: run `make trap-component` (make test does)",
        trapping.display()
    );
    let m = Ministack::start().expect("ministack");
    m.store.create_bucket("cli-trap").unwrap();
    let started = std::time::Instant::now();
    let s = &m.store;
    let out = Command::new(env!("CARGO_BIN_EXE_host-test"))
        .args([
            "node",
            "--node-id",
            "t",
            "--election",
            "trap",
            "--bucket",
            "cli-trap",
            "--component",
        ])
        .arg(&trapping)
        .env("AWS_ENDPOINT_URL_S3", &s.endpoint)
        .env("AWS_ACCESS_KEY_ID", &s.credentials.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &s.credentials.secret_access_key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("node t: the component trapped in tick"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("trap:"),
        "the trap is in the JSON lines too: {stdout}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}
