//! Faults a test or the CLI can switch on for one node, applied in the outgoing-request hook,
//! plus counters of what the node sent.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct Faults {
    partitioned: AtomicBool,
    gets: AtomicU64,
    puts: AtomicU64,
    others: AtomicU64,
}

/// Requests a node tried to send (including those a fault stopped).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    pub gets: u64,
    pub puts: u64,
    pub others: u64,
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

    pub(crate) fn count(&self, method: &http::Method) {
        let counter = match *method {
            http::Method::GET => &self.gets,
            http::Method::PUT => &self.puts,
            _ => &self.others,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn requests(&self) -> RequestCounts {
        RequestCounts {
            gets: self.gets.load(Ordering::Relaxed),
            puts: self.puts.load(Ordering::Relaxed),
            others: self.others.load(Ordering::Relaxed),
        }
    }
}
