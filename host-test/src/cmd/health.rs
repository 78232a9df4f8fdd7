//! The sidecar's HTTP endpoints, for supervisors and Prometheus:
//!
//! - `GET /healthz`: 200 while the elector ticks on time, 503 when it is stuck or trapped;
//! - `GET /leader`: who leads, the term, and how long this node's leadership stays valid, as
//!   JSON;
//! - `GET /metrics`: Prometheus text: `s3_election_is_leader` (client-go's
//!   `leader_election_master_status`), `s3_election_term`, requests by kind and status,
//!   tick latency, transitions, tick errors, traps.
//!
//! A deliberately small HTTP/1.1 server (one request per connection) on tokio: it serves three
//! read-only pages to local tools.

use crate::host::faults::Faults;
use crate::host::stats::{NodeStats, Snapshot, TICK_BUCKETS};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The node the endpoints describe.
pub struct Node {
    pub node: String,
    pub election: String,
    pub stats: Arc<NodeStats>,
    pub faults: Arc<Faults>,
    pub lease: Duration,
}

/// Start serving on `addr`; returns the bound address (port 0 picks one).
pub async fn serve(addr: SocketAddr, node: Node) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let bound = listener.local_addr()?;
    let node = Arc::new(node);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let node = node.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                let read = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf))
                    .await
                    .ok()
                    .and_then(|r| r.ok())
                    .unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..read]);
                let path = request
                    .lines()
                    .next()
                    .and_then(|l| l.split_whitespace().nth(1))
                    .unwrap_or("/");
                let (status, kind, body) = node.page(path, Instant::now());
                let reason = match status {
                    200 => "OK",
                    404 => "Not Found",
                    _ => "Service Unavailable",
                };
                let head = format!(
                    "HTTP/1.1 {status} {reason}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Ok(bound)
}

impl Node {
    /// Status, content type and body of a page.
    pub fn page(&self, path: &str, now: Instant) -> (u16, &'static str, String) {
        let s = self.stats.snapshot();
        match path {
            "/healthz" => {
                // A tick may take up to four request timeouts: a lease covers that.
                if s.on_time(now, self.lease + Duration::from_secs(1)) {
                    (200, "text/plain", "ok\n".into())
                } else if let Some(trap) = &s.trap {
                    (503, "text/plain", format!("trapped: {trap}\n"))
                } else {
                    (
                        503,
                        "text/plain",
                        "stuck: no tick finished on time\n".into(),
                    )
                }
            }
            "/leader" => (200, "application/json", self.leader_json(&s, now)),
            "/metrics" => (200, "text/plain; version=0.0.4", self.metrics(&s, now)),
            _ => (
                404,
                "text/plain",
                "try /healthz, /leader or /metrics\n".into(),
            ),
        }
    }

    fn leader_json(&self, s: &Snapshot, now: Instant) -> String {
        serde_json::json!({
            "node": self.node,
            "election": self.election,
            "is_leader": s.valid_for(now) > Duration::ZERO,
            "leader": s.leader,
            "term": s.term,
            "valid_ms": s.valid_for(now).as_millis() as u64,
            "last_error": s.last_error,
        })
        .to_string()
    }

    fn metrics(&self, s: &Snapshot, now: Instant) -> String {
        let labels = format!(
            "election=\"{}\",node=\"{}\"",
            escape(&self.election),
            escape(&self.node)
        );
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, kind: &str, value: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        };
        let leading = u8::from(s.valid_for(now) > Duration::ZERO);
        gauge(
            "s3_election_is_leader",
            "1 while this node may act as leader (its promised window runs), else 0.",
            "gauge",
            leading.to_string(),
        );
        gauge(
            "s3_election_term",
            "The current leader's term as this node sees it (its fencing token when leading).",
            "gauge",
            s.term.unwrap_or(0).to_string(),
        );
        gauge(
            "s3_election_valid_seconds",
            "How much longer this node's leadership is valid.",
            "gauge",
            format!("{:.3}", s.valid_for(now).as_secs_f64()),
        );
        gauge(
            "s3_election_elected_total",
            "Times this node became leader.",
            "counter",
            s.elected.to_string(),
        );
        gauge(
            "s3_election_demoted_total",
            "Times this node stopped leading.",
            "counter",
            s.demoted.to_string(),
        );
        gauge(
            "s3_election_tick_errors_total",
            "Ticks that returned an error.",
            "counter",
            s.tick_errors.to_string(),
        );
        gauge(
            "s3_election_trapped",
            "1 if the component trapped (the node no longer ticks).",
            "gauge",
            u8::from(s.trap.is_some()).to_string(),
        );
        let _ = writeln!(
            out,
            "# HELP s3_election_tick_seconds Duration of one tick.\n# TYPE s3_election_tick_seconds histogram"
        );
        for (bound, count) in TICK_BUCKETS.iter().zip(s.tick_buckets) {
            let _ = writeln!(
                out,
                "s3_election_tick_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "s3_election_tick_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
             s3_election_tick_seconds_sum{{{labels}}} {:.6}\n\
             s3_election_tick_seconds_count{{{labels}}} {}",
            s.ticks, s.tick_seconds_sum, s.ticks
        );
        let _ = writeln!(
            out,
            "# HELP s3_election_requests_total Requests to the store by kind and answer status \
             (`error`: no answer).\n# TYPE s3_election_requests_total counter"
        );
        for ((kind, status), n) in self.faults.answers() {
            let _ = writeln!(
                out,
                "s3_election_requests_total{{{labels},kind=\"{kind}\",status=\"{status}\"}} {n}"
            );
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api;

    fn node() -> Node {
        Node {
            node: "a".into(),
            election: "e".into(),
            stats: Arc::default(),
            faults: crate::host::faults::Faults::new(),
            lease: Duration::from_secs(2),
        }
    }

    fn leader(valid_ms: u64) -> Result<api::Status, api::Error> {
        Ok(api::Status {
            role: api::Role::Leader,
            leader: Some(api::LeaderInfo {
                node_id: "a".into(),
                term: 7,
                metadata: String::new(),
            }),
            fencing_token: Some(7),
            valid_ms,
            next_tick_ms: 500,
            events: vec![api::Event::Elected(7)],
            last_error: None,
            requests: 1,
            members: vec![],
            problems: vec![],
        })
    }

    #[test]
    fn healthz_is_503_before_the_first_tick_when_stuck_and_after_a_trap() {
        let n = node();
        let now = Instant::now();
        assert_eq!(n.page("/healthz", now).0, 503, "no tick yet");
        n.stats.answered(Duration::from_millis(20), &leader(1500));
        assert_eq!(n.page("/healthz", Instant::now()).0, 200);
        // Nothing for longer than the next tick + the lease + 1 s: stuck.
        let later = Instant::now() + Duration::from_secs(4);
        let (status, _, body) = n.page("/healthz", later);
        assert_eq!(
            (status, body.as_str()),
            (503, "stuck: no tick finished on time\n")
        );
        n.stats.trapped("wasm trap: unreachable".into());
        let (status, _, body) = n.page("/healthz", Instant::now());
        assert_eq!(status, 503);
        assert!(body.contains("trapped"), "{body}");
    }

    #[test]
    fn leadership_ends_in_the_metrics_when_its_window_runs_out() {
        let n = node();
        n.stats.answered(Duration::from_millis(20), &leader(1000));
        let (_, _, m) = n.page("/metrics", Instant::now());
        assert!(
            m.contains("s3_election_is_leader{election=\"e\",node=\"a\"} 1"),
            "{m}"
        );
        assert!(
            m.contains("s3_election_term{election=\"e\",node=\"a\"} 7"),
            "{m}"
        );
        let (_, _, m) = n.page("/metrics", Instant::now() + Duration::from_secs(2));
        assert!(
            m.contains("s3_election_is_leader{election=\"e\",node=\"a\"} 0"),
            "{m}"
        );
    }
}
