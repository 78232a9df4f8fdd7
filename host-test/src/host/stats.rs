//! What one node has done so far, for the sidecar's health and metrics endpoints: ticks and
//! their latency, transitions, the last answer, and whether the component trapped.

use crate::api;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bounds (seconds) of the tick latency histogram's buckets.
pub const TICK_BUCKETS: [f64; 8] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Debug, Default)]
pub struct NodeStats {
    inner: Mutex<Inner>,
}

/// A copy of a node's stats at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub ticks: u64,
    pub tick_errors: u64,
    pub tick_seconds_sum: f64,
    /// Cumulative counts per [`TICK_BUCKETS`] bound.
    pub tick_buckets: [u64; TICK_BUCKETS.len()],
    pub elected: u64,
    pub demoted: u64,
    pub last_tick_end: Option<Instant>,
    /// When the elector asked to be called again, after the last tick.
    pub next_tick: Duration,
    pub leading: bool,
    pub term: Option<u64>,
    pub leader: Option<String>,
    /// End of the window the last leader answer promised.
    pub valid_until: Option<Instant>,
    pub last_error: Option<String>,
    pub trap: Option<String>,
}

#[derive(Debug, Default)]
struct Inner(Snapshot);

impl NodeStats {
    /// A tick (or resign) answered after `took`.
    pub fn answered(&self, took: Duration, answer: &Result<api::Status, api::Error>) {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let s = &mut s.0;
        let now = Instant::now();
        s.ticks += 1;
        let secs = took.as_secs_f64();
        s.tick_seconds_sum += secs;
        for (i, bound) in TICK_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                s.tick_buckets[i] += 1;
            }
        }
        s.last_tick_end = Some(now);
        match answer {
            Ok(status) => {
                s.leading = status.role == api::Role::Leader;
                s.term = status
                    .fencing_token
                    .or(status.leader.as_ref().map(|l| l.term));
                s.leader = status.leader.as_ref().map(|l| l.node_id.clone());
                s.valid_until = s
                    .leading
                    .then(|| now + Duration::from_millis(status.valid_ms));
                s.next_tick = Duration::from_millis(status.next_tick_ms);
                s.last_error = status.last_error.as_ref().map(crate::describe_error);
                for e in &status.events {
                    match e {
                        api::Event::Elected(_) => s.elected += 1,
                        api::Event::Demoted(_) => s.demoted += 1,
                        _ => {}
                    }
                }
            }
            Err(e) => {
                s.tick_errors += 1;
                s.leading = false;
                s.valid_until = None;
                s.last_error = Some(crate::describe_error(e));
            }
        }
    }

    pub fn trapped(&self, what: String) {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        s.0.trap = Some(what);
        s.0.leading = false;
        s.0.valid_until = None;
    }

    pub fn snapshot(&self) -> Snapshot {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }
}

impl Snapshot {
    /// The elector ticks on time: it has not trapped, and its last tick ended no later than
    /// the next one was due plus `slack` (a tick in progress may take that long).
    pub fn on_time(&self, now: Instant, slack: Duration) -> bool {
        self.trap.is_none()
            && self
                .last_tick_end
                .is_some_and(|t| now <= t + self.next_tick + slack)
    }

    /// How much of the promised window is left now.
    pub fn valid_for(&self, now: Instant) -> Duration {
        self.valid_until
            .map_or(Duration::ZERO, |u| u.saturating_duration_since(now))
    }
}
