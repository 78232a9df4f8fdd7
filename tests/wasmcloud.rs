//! The example edge worker (composed with the component: `make edge-worker`) on wasmCloud v2
//! (wash 2.10.3), against the test store: two `wash dev` sessions, and two `wash host` hosts
//! with nats-server and a local OCI registry (the path wasmCloud's Kubernetes operator drives:
//! the component pushed as an OCI artifact, workloads started over NATS by
//! examples/edge-worker/wasmcloud/start-workload.py). Each time the two instances elect one
//! leader, and the other takes over when the leader's process is killed. And with egress
//! denied, the worker answers a tick with an error, not with "nobody leads".
//!
//! Needs `.ci/wasmcloud.sh` (make test-wasmcloud runs it): without it this fails, unless
//! `S3E_SKIP_WASMCLOUD=1`.

mod apps;
mod common;

use apps::*;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const LEASE_MS: u32 = 2000;

/// One test at a time: the timings are judged against the wall clock.
static SERIAL: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    host_test::workspace_dir()
}

fn venv(bin: &str) -> PathBuf {
    root().join("target/wasmcloud-venv/bin").join(bin)
}

fn composed() -> PathBuf {
    root().join("target/component/edge-worker-composed.wasm")
}

fn registry() -> PathBuf {
    std::env::var_os("S3E_DOCKER_REGISTRY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/docker-registry"))
}

/// Whether to run (see `required`).
fn wasmcloud_installed(host: bool) -> bool {
    let mut needed = vec![venv("wash"), composed()];
    if host {
        needed.extend([venv("nats-server"), venv("python"), registry()]);
    }
    required(
        "S3E_SKIP_WASMCLOUD",
        &needed,
        "run `.ci/wasmcloud.sh` (wash, nats-server, nats-py, docker-registry) and `make \
         examples`, or `make test-wasmcloud` for both; S3E_SKIP_WASMCLOUD=1 skips the wasmCloud \
         tests",
    )
}

/// `wash <args>`, its home (caches, config) in `home`.
fn wash(home: &Path) -> Command {
    let mut cmd = Command::new(venv("wash"));
    cmd.env("HOME", home).arg("--non-interactive");
    cmd
}

/// host:port of the test store (what `allowedHosts` names).
fn store_authority() -> String {
    let endpoint = &env().store.endpoint;
    endpoint
        .split_once("://")
        .map_or(endpoint.as_str(), |(_, rest)| rest)
        .trim_end_matches('/')
        .to_string()
}

#[test]
fn two_wash_dev_sessions_elect_one_leader_and_fail_over() {
    if !wasmcloud_installed(false) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("wash-dev");
    let b = bucket("wash-dev");
    let store = &env().store;
    let example = root().join("examples/edge-worker/wasmcloud/.wash/config.yaml");

    // Each session: a copy of the example's project config with its own address, the test
    // store as the only allowed host, and a short lease.
    let started = Instant::now();
    let mut sessions = std::collections::BTreeMap::new();
    let mut workers = Vec::new();
    for id in ["dev-a", "dev-b"] {
        let port = free_port();
        let project = scratch.path(id);
        std::fs::create_dir_all(project.join(".wash")).unwrap();
        let component = format!("component_path: {}", composed().display());
        let address = format!("address: 127.0.0.1:{port}");
        let allowed = format!("allowedHosts: [\"{}\"]", store_authority());
        let region = format!("AWS_REGION: {}", store.region);
        let lease = format!("S3E_LEASE_MS: \"{LEASE_MS}\"");
        let etags = format!("S3E_UNQUOTED_ETAGS: \"{}\"", unquoted_etags());
        let config = rewrite(
            &example,
            &[
                (
                    "component_path: ../../../target/component/edge-worker-composed.wasm",
                    &component,
                ),
                ("address: 127.0.0.1:8080", &address),
                ("allowedHosts: [\"127.0.0.1:9000\"]", &allowed),
                ("AWS_REGION: us-east-1", &region),
                ("S3E_ELECTION: edge-worker", "S3E_ELECTION: wash-dev"),
                ("S3E_PREFIX: \"\"", "S3E_PREFIX: wasmcloud/"),
                ("S3E_LEASE_MS: \"15000\"", &lease),
                ("S3E_UNQUOTED_ETAGS: \"false\"", &etags),
            ],
        );
        std::fs::write(project.join(".wash/config.yaml"), config).unwrap();
        let mut cmd = wash(&scratch.path("home"));
        cmd.arg("-C")
            .arg(&project)
            .arg("dev")
            .current_dir(&project)
            .env("AWS_ENDPOINT_URL_S3", &store.endpoint)
            .env("AWS_ACCESS_KEY_ID", &store.credentials.access_key_id)
            .env(
                "AWS_SECRET_ACCESS_KEY",
                &store.credentials.secret_access_key,
            )
            .env("S3E_BUCKET", &b)
            .env("S3E_NODE_ID", id);
        sessions.insert(
            id.to_string(),
            Proc::spawn(id, cmd, scratch.path(&format!("{id}.log"))),
        );
        workers.push(HttpWorker::new(id, port, None));
    }
    for session in sessions.values_mut() {
        session.wait_output("the component deployed", Duration::from_secs(90), |out| {
            out.contains("listening for HTTP requests")
        });
    }
    let ready = started.elapsed();

    let run = elect_and_fail_over(
        [&workers[0], &workers[1]],
        LEASE_MS,
        ms(LEASE_MS) * 8,
        ms(LEASE_MS) * 5,
        |leader| sessions.get_mut(leader).unwrap().kill(),
    );
    eprintln!(
        "wash dev: both sessions serving after {ready:?}; first leader after {:?}; failover \
         {:?} (lease {LEASE_MS} ms); {} answers",
        run.first_leader,
        run.failover,
        run.history.len()
    );
}

/// The id a `wash host` logged (`Host started host_id="…"`).
fn host_id(host: &mut Proc) -> String {
    host.wait_output("Host started", Duration::from_secs(60), |out| {
        out.contains("Host started host_id=")
    });
    let out = host.output();
    let rest = &out[out.find("host_id=\"").unwrap() + "host_id=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Where the workloads of the `wash host` test come from and go to.
struct Lattice {
    home: PathBuf,
    nats: String,
    image: String,
    bucket: String,
}

/// start-workload.py with `workload` (the example's, or a variant) on host `host_id`, as node
/// `node_id`, answering HTTP for `http_host`.
fn start_workload(
    lattice: &Lattice,
    host_id: &str,
    node_id: &str,
    http_host: &str,
    workload: &Path,
) {
    let Lattice {
        home,
        nats,
        image,
        bucket,
    } = lattice;
    let store = &env().store;
    let out = Command::new(venv("python"))
        .arg(root().join("examples/edge-worker/wasmcloud/start-workload.py"))
        .args(["--nats", nats, "--host-id", host_id, "--timeout", "60"])
        .arg(workload)
        .env("HOME", home)
        .env("IMAGE", image)
        .env("AWS_ENDPOINT_URL_S3", &store.endpoint)
        .env("AWS_REGION", &store.region)
        .env("AWS_ACCESS_KEY_ID", &store.credentials.access_key_id)
        .env(
            "AWS_SECRET_ACCESS_KEY",
            &store.credentials.secret_access_key,
        )
        .env("S3E_BUCKET", bucket)
        .env("S3E_NODE_ID", node_id)
        .env("S3E_ELECTION", "wash-host")
        .env("S3E_PREFIX", "wasmcloud/")
        .env("S3E_LEASE_MS", LEASE_MS.to_string())
        .env("S3E_UNQUOTED_ETAGS", unquoted_etags().to_string())
        .env("HTTP_HOST", http_host)
        .output()
        .expect("run start-workload.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("WORKLOAD_STATE_RUNNING"),
        "start-workload.py for {node_id}: {}\n{text}",
        out.status
    );
    eprintln!("{node_id}: {}", text.trim());
}

#[test]
fn two_wash_hosts_elect_one_leader_and_fail_over_and_denied_egress_is_an_error() {
    if !wasmcloud_installed(true) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("wash-host");
    let b = bucket("wash-host");
    let home = scratch.path("home");
    let started = Instant::now();

    // NATS and a local OCI registry.
    let nats_port = free_port();
    let nats = format!("nats://127.0.0.1:{nats_port}");
    let mut nats_server = Proc::spawn(
        "nats-server",
        {
            let mut cmd = Command::new(venv("nats-server"));
            cmd.args(["-a", "127.0.0.1", "-p", &nats_port.to_string()]);
            cmd
        },
        scratch.path("nats.log"),
    );
    let registry_port = free_port();
    let registry_config = scratch.path("registry.yml");
    std::fs::write(
        &registry_config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{registry_port}\n",
            scratch.path("registry").display()
        ),
    )
    .unwrap();
    let mut registry = Proc::spawn(
        "docker-registry",
        {
            let mut cmd = Command::new(registry());
            cmd.arg("serve").arg(&registry_config);
            cmd
        },
        scratch.path("registry.log"),
    );
    nats_server.wait_listening(nats_port, Duration::from_secs(30));
    registry.wait_listening(registry_port, Duration::from_secs(30));

    // The composed worker, pushed as an OCI artifact.
    let image = format!("localhost:{registry_port}/edge-worker:0.2.0");
    let push = wash(&home)
        .args(["oci", "push", "--insecure", &image])
        .arg(composed())
        .output()
        .expect("run wash oci push");
    assert!(
        push.status.success(),
        "wash oci push: {}\n{}{}",
        push.status,
        String::from_utf8_lossy(&push.stdout),
        String::from_utf8_lossy(&push.stderr)
    );

    // Two hosts, one workload each, each its own node id.
    let mut hosts = std::collections::BTreeMap::new();
    let mut ids = std::collections::BTreeMap::new();
    let mut workers = Vec::new();
    for (host_name, node) in [("host-a", "wash-a"), ("host-b", "wash-b")] {
        let port = free_port();
        let mut cmd = wash(&home);
        cmd.args([
            "host",
            "--scheduler-nats-url",
            &nats,
            "--data-nats-url",
            &nats,
        ])
        .args(["--http-addr", &format!("127.0.0.1:{port}")])
        .args(["--allow-insecure-registries", "--host-name", host_name]);
        let mut host = Proc::spawn(node, cmd, scratch.path(&format!("{host_name}.log")));
        ids.insert(node.to_string(), host_id(&mut host));
        hosts.insert(node.to_string(), host);
        workers.push(HttpWorker::new(node, port, Some("edge.localhost")));
    }
    let hosts_ready = started.elapsed();
    let workload = root().join("examples/edge-worker/wasmcloud/workload.json");
    let lattice = Lattice {
        home: home.clone(),
        nats: nats.clone(),
        image: image.clone(),
        bucket: b.clone(),
    };
    for w in &workers {
        start_workload(&lattice, &ids[&w.id], &w.id, "edge.localhost", &workload);
    }
    let ready = started.elapsed();

    let run = elect_and_fail_over(
        [&workers[0], &workers[1]],
        LEASE_MS,
        ms(LEASE_MS) * 8,
        ms(LEASE_MS) * 5,
        |leader| hosts.get_mut(leader).unwrap().kill(),
    );
    eprintln!(
        "wash host: NATS, registry, push and two hosts after {hosts_ready:?}, workloads \
         running after {ready:?}; first leader after {:?}; failover {:?} (lease {LEASE_MS} ms); \
         {} answers",
        run.first_leader,
        run.failover,
        run.history.len()
    );

    // The same workload with egress denied (an empty `allowedHosts`) on the surviving host: a
    // tick is an error (503, `transport`), never "not leader, nobody leads".
    let survivor = &run
        .history
        .iter()
        .rev()
        .find(|o| o.is_leader())
        .unwrap()
        .node;
    let survivor = workers.iter().find(|w| &w.id == survivor).unwrap();
    let mut denied: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&workload).unwrap()).unwrap();
    denied["workload"]["witWorld"]["components"][0]["localResources"]["allowedHosts"] =
        serde_json::json!([]);
    let denied_path = scratch.path("denied.json");
    std::fs::write(&denied_path, denied.to_string()).unwrap();
    start_workload(
        &lattice,
        &ids[&survivor.id],
        "wash-denied",
        "denied.localhost",
        &denied_path,
    );
    let denied_worker = HttpWorker {
        id: "wash-denied".into(),
        base: survivor.base.clone(),
        host: Some("denied.localhost".into()),
    };
    denied_worker.assert_fails_with("transport");
    // It wrote nothing: the election is still the survivor's.
    assert_eq!(survivor.who_leads()["leader"], survivor.id.as_str());
}
