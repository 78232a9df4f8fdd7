//! Faults a test or the CLI can switch on for one node, applied in the outgoing-request hook,
//! plus counters of what the node sent.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Faults {
    partitioned: AtomicBool,
    gets: AtomicU64,
    puts: AtomicU64,
    others: AtomicU64,
    members: AtomicU64,
    lease_write_latencies: Mutex<Vec<Duration>>,
}

/// Requests a node tried to send (including those a fault stopped).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    pub gets: u64,
    pub puts: u64,
    pub others: u64,
    /// Of all these, the requests for member objects (heartbeats, lists, reads, deletes).
    pub members: u64,
}

impl RequestCounts {
    pub fn total(&self) -> u64 {
        self.gets + self.puts + self.others
    }
}

impl Faults {
    pub fn new() -> Arc<Faults> {
        Arc::new(Faults::default())
    }

    /// Cut the node off from the store: every request fails to connect.
    pub fn partition(&self, on: bool) {
        self.partitioned.store(on, Ordering::SeqCst);
    }

    pub fn is_partitioned(&self) -> bool {
        self.partitioned.load(Ordering::SeqCst)
    }

    pub(crate) fn count(&self, method: &http::Method, uri: &http::Uri) {
        let counter = match *method {
            http::Method::GET => &self.gets,
            http::Method::PUT => &self.puts,
            _ => &self.others,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if is_member_request(uri) {
            self.members.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Time from sending a write of the lease to its answer (renewal latency).
    pub(crate) fn lease_write_took(&self, d: Duration) {
        self.lease_write_latencies.lock().unwrap().push(d);
    }

    pub fn lease_write_latencies(&self) -> Vec<Duration> {
        self.lease_write_latencies.lock().unwrap().clone()
    }

    pub fn requests(&self) -> RequestCounts {
        RequestCounts {
            gets: self.gets.load(Ordering::Relaxed),
            puts: self.puts.load(Ordering::Relaxed),
            others: self.others.load(Ordering::Relaxed),
            members: self.members.load(Ordering::Relaxed),
        }
    }
}

/// A request for a member object or the member list (not the lease).
pub fn is_member_request(uri: &http::Uri) -> bool {
    uri.path().contains("/members/") || uri.query().is_some_and(|q| q.contains("list-type=2"))
}

/// A write of the lease object.
pub fn is_lease_write(method: &http::Method, uri: &http::Uri) -> bool {
    *method == http::Method::PUT && uri.path().ends_with("/lease")
}
