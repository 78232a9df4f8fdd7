//! Shared by tests/spin.rs and tests/wasmcloud.rs: the example edge worker served by a runtime
//! this project does not control (`spin up`, `wash dev`, `wash host`), driven over HTTP the way
//! a cron trigger or load balancer would, and judged by the same invariant checker as every
//! other run.
#![allow(dead_code)]

use crate::common::*;
use host_test::check::history::Observation;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether a runtime's test should run: false (and says so) when `skip_var` is `1`; otherwise
/// every path in `needed` must exist, or the test fails with `hint`.
pub fn required(skip_var: &str, needed: &[PathBuf], hint: &str) -> bool {
    if std::env::var(skip_var).as_deref() == Ok("1") {
        eprintln!("SKIPPED: {skip_var}=1");
        return false;
    }
    for path in needed {
        assert!(path.exists(), "{} is missing: {hint}", path.display());
    }
    true
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A scratch folder for one test run, under target/ (removed when dropped).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(what: &str) -> Scratch {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = host_test::workspace_dir()
            .join("target/runtime-tests")
            .join(format!("{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A process in its own process group (runtimes start helpers: `spin up` runs `spin trigger`,
/// which runs the cron plugin), its output in a log file. Dropping it kills the whole group.
pub struct Proc {
    pub name: String,
    child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Proc {
        let out = File::create(&log).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {cmd:?}: {e}"));
        Proc {
            name: name.to_string(),
            child,
            log,
        }
    }

    /// What it printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics (with its output) if it has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited with {status}; its output:\n{}",
                self.name,
                self.output()
            );
        }
    }

    /// Waits until `pred` holds on its output; panics with the output after `limit`.
    pub fn wait_output(&mut self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) {
        let started = Instant::now();
        loop {
            if pred(&self.output()) {
                return;
            }
            self.assert_running();
            assert!(
                started.elapsed() < limit,
                "{}: {what} not within {limit:?}; its output:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until it accepts connections on `port`.
    pub fn wait_listening(&mut self, port: u16, limit: Duration) {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            self.assert_running();
            assert!(
                started.elapsed() < limit,
                "{} did not listen on {port} within {limit:?}; its output:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL to the whole group: a crash, nothing is released.
    pub fn kill(&mut self) {
        // (`kill -KILL -PGID` is not understood by every kill(1): say -s and --.)
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.kill();
        }
    }
}

/// The example edge worker as served by some runtime, as node `id`.
pub struct HttpWorker {
    pub id: String,
    pub base: String,
    /// The `Host` header, for hosts that route by it (`wash host`).
    pub host: Option<String>,
}

impl HttpWorker {
    pub fn new(id: &str, port: u16, host: Option<&str>) -> HttpWorker {
        HttpWorker {
            id: id.to_string(),
            base: format!("http://127.0.0.1:{port}"),
            host: host.map(str::to_string),
        }
    }

    /// One request; its status and the answer's JSON.
    pub fn request(&self, method: &str, path: &str) -> (u16, serde_json::Value) {
        let url = format!("{}{path}", self.base);
        let mut req = ureq::request(method, &url).timeout(Duration::from_secs(20));
        if let Some(host) = &self.host {
            req = req.set("Host", host);
        }
        let response = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{} {method} {url}: {e}", self.id),
        };
        let status = response.status();
        let text = response.into_string().unwrap();
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} {method} {path}: {status} {text:?}: {e}", self.id));
        (status, json)
    }

    /// `POST /tick`, which must succeed, recorded as an observation of this node.
    pub fn tick(&self, history: &mut Vec<Observation>, epoch_unix_ms: u64) -> serde_json::Value {
        let (status, answer) = self.request("POST", "/tick");
        assert_eq!(status, 200, "{} POST /tick: {answer}", self.id);
        let leading = answer["is_leader"].as_bool().unwrap();
        assert_eq!(answer["node"], self.id.as_str(), "{answer}");
        let line = serde_json::json!({
            "unix_ms": unix_ms(),
            "node": self.id,
            "role": if leading { "leader" } else { "follower" },
            "term": answer["term"],
            "leader": answer["leader"],
            "valid_ms": answer["valid_ms"],
        });
        history.push(Observation::from_json(&line, epoch_unix_ms).unwrap());
        answer
    }

    /// `GET /`: who leads (read only).
    pub fn who_leads(&self) -> serde_json::Value {
        let (status, answer) = self.request("GET", "/");
        assert_eq!(status, 200, "{} GET /: {answer}", self.id);
        answer
    }

    /// A failed step must be an error (5xx with the typed error), never "nobody leads".
    pub fn assert_fails_with(&self, kind: &str) {
        for (method, path) in [("POST", "/tick"), ("GET", "/")] {
            let (status, json) = self.request(method, path);
            assert!(
                (500..600).contains(&status),
                "{} {method} {path}: {status} {json}",
                self.id
            );
            assert!(
                json["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with(&format!("{kind}:"))),
                "{} {method} {path}: {status} {json}",
                self.id
            );
        }
    }
}

/// How an election between two workers went.
pub struct Failover {
    /// From the first tick to the first leader (stateless: a vacancy first, waited out).
    pub first_leader: Duration,
    /// From the crash of the leader to the survivor leading.
    pub failover: Duration,
    pub history: Vec<Observation>,
}

const TICK_EVERY: Duration = Duration::from_millis(250);

/// Two workers electing: ticks both until one leads, checks that exactly one leads for a
/// while (the other follows it, the leader keeps its term), crashes the leader with
/// `crash(leader id)`, ticks the survivor until it leads with a higher term. Checks the
/// invariants over every answer, and the bounds: the first leader within `first_limit`, the
/// takeover within `failover_limit` of the crash.
pub fn elect_and_fail_over(
    workers: [&HttpWorker; 2],
    lease_ms: u32,
    first_limit: Duration,
    failover_limit: Duration,
    crash: impl FnOnce(&str),
) -> Failover {
    let epoch = unix_ms();
    let mut h = Vec::new();
    let started = Instant::now();

    // Both tick until one leads.
    let leader = 'elected: loop {
        for w in workers {
            if w.tick(&mut h, epoch)["is_leader"] == true {
                break 'elected w;
            }
        }
        assert!(
            started.elapsed() < first_limit,
            "no leader within {first_limit:?}\n{}",
            pretty(&h)
        );
        std::thread::sleep(TICK_EVERY);
    };
    let first_leader = started.elapsed();
    let survivor = if std::ptr::eq(leader, workers[0]) {
        workers[1]
    } else {
        workers[0]
    };
    let term = h.last().unwrap().term.unwrap();

    // Exactly one leads: for two leases, fresh instances of the leader renew with the same
    // term and the other follows it.
    let steady = Instant::now();
    while steady.elapsed() < ms(lease_ms) * 2 {
        let l = leader.tick(&mut h, epoch);
        assert_eq!(
            (&l["is_leader"], &l["term"]),
            (&true.into(), &term.into()),
            "{}: {l}\n{}",
            leader.id,
            pretty(&h)
        );
        let s = survivor.tick(&mut h, epoch);
        assert_eq!(
            (&s["is_leader"], &s["leader"]),
            (&false.into(), &leader.id.as_str().into()),
            "{}: {s}\n{}",
            survivor.id,
            pretty(&h)
        );
        std::thread::sleep(TICK_EVERY);
    }
    let seen = survivor.who_leads();
    assert_eq!(
        (&seen["leader"], &seen["term"]),
        (&leader.id.as_str().into(), &term.into()),
        "{seen}"
    );

    // The leader crashes (no release): the survivor takes over once the lease has expired.
    let last_renewal = Instant::now();
    leader.tick(&mut h, epoch);
    crash(&leader.id);
    let crashed = Instant::now();
    let taken = loop {
        let t = survivor.tick(&mut h, epoch);
        if t["is_leader"] == true {
            break t;
        }
        assert!(
            crashed.elapsed() < failover_limit,
            "{} did not take over within {failover_limit:?}\n{}",
            survivor.id,
            pretty(&h)
        );
        std::thread::sleep(TICK_EVERY);
    };
    let failover = crashed.elapsed();
    assert!(taken["term"].as_u64().unwrap() > term, "{taken}");
    // Never before the lease (as renewed last) could have expired.
    assert!(
        last_renewal.elapsed() >= ms(lease_ms),
        "{} took over {:?} after the last renewal of a {lease_ms} ms lease\n{}",
        survivor.id,
        last_renewal.elapsed(),
        pretty(&h)
    );
    assert_eq!(survivor.who_leads()["leader"], survivor.id.as_str());
    assert_invariants(&h);
    Failover {
        first_leader,
        failover,
        history: h,
    }
}

/// `path`'s text with each `(from, to)` replaced; every `from` must occur (so that a changed
/// example fails here rather than being tested half-changed).
pub fn rewrite(path: &Path, replacements: &[(&str, &str)]) -> String {
    let mut text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    for (from, to) in replacements {
        assert!(
            text.contains(from),
            "{} no longer contains {from:?}: update this test",
            path.display()
        );
        text = text.replace(from, to);
    }
    text
}
