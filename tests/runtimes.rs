//! The unmodified component in runtimes this project did not write, electing against the
//! same bucket as host-test's wasmtime: jco (transpiled to JavaScript, run by Node.js on
//! preview2-shim). Every process prints JSON lines; the lines of all of them are judged
//! together by the same invariant checker as every other run.

mod apps;
mod common;

use common::*;
use host_test::check::history::Observation;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LEASE_MS: u32 = 1500;

fn jco_module() -> PathBuf {
    static MODULE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    MODULE
        .get_or_init(|| {
            host_test::host::jco::transpile(&host_test::host::runtime::default_component_path())
                .expect("jco transpile (needs Node.js and npm)")
        })
        .clone()
}

/// When `node` first reported leading after `after_ms`, and with which term.
fn led_after(h: &[Observation], node: &str, after_ms: u64) -> Option<(u64, u64)> {
    h.iter()
        .filter(|o| o.node == node && o.is_leader() && o.at_ms > after_ms)
        .min_by_key(|o| o.at_ms)
        .map(|o| (o.at_ms, o.term.unwrap_or(0)))
}

fn sees_leader(h: &[Observation], node: &str, leader: &str) -> bool {
    h.iter()
        .any(|o| o.node == node && !o.is_leader() && o.leader.as_deref() == Some(leader))
}

#[test]
fn a_jco_node_and_wasmtime_nodes_share_one_election() {
    let mut nodes = Nodes::new(bucket("runtimes"), "mixed", LEASE_MS);
    let limit = Duration::from_millis(u64::from(LEASE_MS) * 8);
    let module = jco_module();

    // A wasmtime node leads; the jco node follows it.
    nodes.spawn(host_test_node(), "wasmtime-1");
    nodes.wait_for("wasmtime-1 leads", limit, |h| {
        led_after(h, "wasmtime-1", 0).is_some()
    });
    nodes.spawn(host_test::host::jco::elector_command(&module), "jco-1");
    nodes.wait_for("jco-1 follows wasmtime-1", limit, |h| {
        sees_leader(h, "jco-1", "wasmtime-1")
    });

    // The wasmtime leader crashes without releasing: the jco node takes over when the lease
    // has expired, with a higher term.
    let crashed_at = unix_ms() - nodes.epoch_unix_ms;
    nodes.signal("wasmtime-1", "-KILL");
    nodes.wait_for("jco-1 takes over", limit, |h| {
        led_after(h, "jco-1", crashed_at).is_some()
    });

    // A new wasmtime node follows the jco leader; the jco leader resigns and hands over.
    nodes.spawn(host_test_node(), "wasmtime-2");
    nodes.wait_for("wasmtime-2 follows jco-1", limit, |h| {
        sees_leader(h, "wasmtime-2", "jco-1")
    });
    let resigned_at = unix_ms() - nodes.epoch_unix_ms;
    nodes.signal("jco-1", "-TERM");
    nodes.wait_for("wasmtime-2 takes over", limit, |h| {
        led_after(h, "wasmtime-2", resigned_at).is_some()
    });
    nodes.signal("wasmtime-2", "-TERM");

    let h = nodes.history();
    assert_invariants(&h);
    let (_, first) = led_after(&h, "wasmtime-1", 0).unwrap();
    let (_, second) = led_after(&h, "jco-1", crashed_at).unwrap();
    let (_, third) = led_after(&h, "wasmtime-2", resigned_at).unwrap();
    assert!(
        first < second && second < third,
        "terms {first}, {second}, {third}\n{}",
        pretty(&h)
    );
    // The jco node resigned on SIGTERM: it reported the demotion before it exited.
    assert!(
        h.iter()
            .any(|o| o.node == "jco-1" && o.events.iter().any(|e| e.contains("resigned"))),
        "{}",
        pretty(&h)
    );
}

/// `wasmtime serve` of the composed edge worker (`make edge-worker`: the example worker with
/// its election import filled by the component, through `wac plug`) as node `id`.
struct Worker {
    http: apps::HttpWorker,
    child: Child,
}

impl Worker {
    /// The worker on `wasmtime serve`, its settings as wasi:config variables: it imports
    /// nothing from wasi:cli, so no `-S cli`.
    fn serve(bucket: &str, id: &str) -> Worker {
        let store = &env().store;
        Worker::serve_with(
            id,
            &[
                ("AWS_ENDPOINT_URL_S3", store.endpoint.clone()),
                ("AWS_REGION", store.region.clone()),
                ("AWS_ACCESS_KEY_ID", store.credentials.access_key_id.clone()),
                (
                    "AWS_SECRET_ACCESS_KEY",
                    store.credentials.secret_access_key.clone(),
                ),
                ("S3E_BUCKET", bucket.to_string()),
                ("S3E_ELECTION", "edge".to_string()),
                ("S3E_NODE_ID", id.to_string()),
                ("S3E_PREFIX", "edge/".to_string()),
                ("S3E_LEASE_MS", LEASE_MS.to_string()),
                ("S3E_UNQUOTED_ETAGS", unquoted_etags().to_string()),
            ],
        )
    }

    fn serve_with(id: &str, vars: &[(&str, String)]) -> Worker {
        let root = host_test::workspace_dir();
        let wasmtime = root.join("target/tools/bin/wasmtime");
        let composed = root.join("target/component/edge-worker-serve.wasm");
        for path in [&wasmtime, &composed] {
            assert!(
                path.exists(),
                "{} is missing: run `make edge-worker tools` (make test does)",
                path.display()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(&wasmtime);
        cmd.args([
            "serve",
            "-S",
            "config",
            "--addr",
            &format!("127.0.0.1:{port}"),
        ]);
        for (name, value) in vars {
            cmd.args(["-S", &format!("config-var={name}={value}")]);
        }
        let mut child = cmd
            .arg(&composed)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start wasmtime serve");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("wasmtime serve exited with {status} (its stderr is above)");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "wasmtime serve did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Worker {
            http: apps::HttpWorker::new(id, port, None),
            child,
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_composed_edge_worker_elects_under_wasmtime_serve() {
    let b = bucket("edge-worker");
    let (a, z) = (Worker::serve(&b, "worker-a"), Worker::serve(&b, "worker-z"));
    let epoch = unix_ms();
    let mut h = Vec::new();

    // Nobody leads yet: GET / reads once and writes nothing.
    let before = z.http.who_leads();
    assert_eq!(before["leader"], serde_json::Value::Null, "{before}");
    assert!(env()
        .store
        .get_object(&b, "edge/edge/lease")
        .unwrap()
        .is_none());

    // The first ticks write a vacancy and wait it out (stateless: by the store's clock).
    let deadline = Instant::now() + Duration::from_millis(u64::from(LEASE_MS) * 6);
    let first = loop {
        let t = a.http.tick(&mut h, epoch);
        if t["is_leader"] == true || Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(first["is_leader"], true, "{first}");
    let term = first["term"].as_u64().unwrap();
    let other = z.http.tick(&mut h, epoch);
    assert_eq!(other["is_leader"], false, "{other}");
    assert_eq!(other["leader"], "worker-a", "{other}");

    // GET / answers who leads and with which term, without a node id.
    let seen = z.http.who_leads();
    assert_eq!(
        (&seen["leader"], &seen["term"]),
        (&"worker-a".into(), &term.into()),
        "{seen}"
    );

    // A fresh instance of the leader renews its own lease: same term.
    let renewed = a.http.tick(&mut h, epoch);
    assert_eq!(
        (&renewed["is_leader"], &renewed["term"]),
        (&true.into(), &term.into()),
        "{renewed}"
    );

    // The leader stops ticking: once the lease has expired by the store's clock, the other
    // worker takes over with a higher term.
    let deadline = Instant::now() + Duration::from_millis(u64::from(LEASE_MS) * 6);
    let taken = loop {
        let t = z.http.tick(&mut h, epoch);
        if t["is_leader"] == true || Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(taken["is_leader"], true, "{taken}");
    assert!(taken["term"].as_u64().unwrap() > term, "{taken}");
    assert_eq!(a.http.who_leads()["leader"], "worker-z");
    assert_invariants(&h);
}

/// A tick that fails is an error (5xx with the typed error), never "not leader, nobody
/// leads": here the store is unreachable, and the settings incomplete.
#[test]
fn the_edge_worker_reports_failures_as_errors() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let vars = [
        ("AWS_ENDPOINT_URL_S3", format!("http://127.0.0.1:{closed}")),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "secret".to_string()),
        ("S3E_BUCKET", "nowhere".to_string()),
        ("S3E_ELECTION", "edge".to_string()),
        ("S3E_NODE_ID", "worker-x".to_string()),
    ];
    let w = Worker::serve_with("worker-x", &vars);
    for (method, path) in [("POST", "/tick"), ("GET", "/")] {
        let (status, json) = w.http.request(method, path);
        assert!(
            (500..600).contains(&status),
            "{method} {path}: {status} {json}"
        );
        assert!(
            json["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("transport:")),
            "{json}"
        );
    }
    let incomplete = Worker::serve_with("worker-y", &vars[..3]);
    let (status, json) = incomplete.http.request("POST", "/tick");
    assert_eq!(status, 500, "{json}");
    assert!(
        json["error"].as_str().unwrap().contains("S3E_BUCKET"),
        "{json}"
    );
}
