//! Faults a test or the CLI can switch on for one node, applied in the outgoing-request hook
//! (the one place every request of a node passes), plus counters of what the node sent.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What happens to a request that a [`Rule`] matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Lost on the way: it never reaches the store; the node sees its request time out.
    Drop,
    /// Held this long before it is sent.
    Delay(Duration),
    /// Answered with this status (500, 503, 409, …) without reaching the store.
    Status(u16),
    /// Reaches the store and is applied, but the answer is lost: an ambiguous result.
    CutResponse,
    /// The answer arrives without this header (a proxy that strips it).
    StripHeader(&'static str),
    /// The answer's `Date` is this many seconds off (a proxy or gateway with its own clock).
    ShiftDate(i64),
}

/// Which requests a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Any,
    /// PUTs of the lease (acquire, renew, release).
    LeaseWrites,
    /// GETs of the lease.
    LeaseReads,
    /// Member objects and the member list.
    Members,
    /// Only the member list (ListObjectsV2): quorum checks.
    MemberLists,
}

/// A fault applied to the next `times` matching requests (all of them when `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub fault: Fault,
    pub target: Target,
    pub times: Option<u32>,
}

impl Rule {
    pub fn always(fault: Fault, target: Target) -> Rule {
        Rule {
            fault,
            target,
            times: None,
        }
    }

    pub fn times(fault: Fault, target: Target, times: u32) -> Rule {
        Rule {
            fault,
            target,
            times: Some(times),
        }
    }

    fn matches(&self, method: &http::Method, uri: &http::Uri) -> bool {
        match self.target {
            Target::Any => true,
            Target::LeaseWrites => is_lease_write(method, uri),
            Target::LeaseReads => *method == http::Method::GET && uri.path().ends_with("/lease"),
            Target::Members => is_member_request(uri),
            Target::MemberLists => uri.query().is_some_and(|q| q.contains("list-type=2")),
        }
    }
}

#[derive(Debug, Default)]
pub struct Faults {
    partitioned: AtomicBool,
    rules: Mutex<Vec<Rule>>,
    /// The node does not tick until then (a process pause).
    paused_until: Mutex<Option<Instant>>,
    /// Faults applied so far.
    applied: AtomicU64,
    /// Where requests go instead of the network (measurements without network).
    in_process: Mutex<Option<Arc<crate::stores::memserver::InProcessS3>>>,
    /// The node's clocks: drift rate, jumps.
    pub clock: Arc<crate::host::clocks::ClockControl>,
    gets: AtomicU64,
    puts: AtomicU64,
    others: AtomicU64,
    members: AtomicU64,
    lease_write_latencies: Mutex<Vec<Duration>>,
    /// Writes of the lease without `If-Match` or `If-None-Match` (the protocol has none).
    unconditional_lease_writes: AtomicU64,
    /// Answers by request kind and HTTP status (`error` when none came).
    answers: Mutex<std::collections::BTreeMap<(&'static str, String), u64>>,
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

    /// Send this node's requests to an in-process S3 instead of the network.
    pub fn serve_in_process(&self, s3: Arc<crate::stores::memserver::InProcessS3>) {
        *self.in_process.lock().unwrap() = Some(s3);
    }

    pub(crate) fn in_process(&self) -> Option<Arc<crate::stores::memserver::InProcessS3>> {
        self.in_process.lock().unwrap().clone()
    }

    /// Add a rule; the first matching rule applies to a request.
    pub fn inject(&self, rule: Rule) {
        self.rules.lock().unwrap().push(rule);
    }

    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }

    /// The fault for this request, if a rule matches (and counts it against `times`).
    pub(crate) fn take(&self, method: &http::Method, uri: &http::Uri) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        let i = rules.iter().position(|r| r.matches(method, uri))?;
        let fault = rules[i].fault.clone();
        if let Some(n) = rules[i].times.as_mut() {
            *n -= 1;
            if *n == 0 {
                rules.remove(i);
            }
        }
        self.applied.fetch_add(1, Ordering::Relaxed);
        Some(fault)
    }

    /// How many requests a fault was applied to.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }

    /// Freeze the node's ticks for `d`, like a stopped process (requests in flight finish).
    pub fn pause(&self, d: Duration) {
        *self.paused_until.lock().unwrap() = Some(Instant::now() + d);
    }

    /// How long the node must still stay paused.
    pub fn paused_for(&self) -> Option<Duration> {
        let until = (*self.paused_until.lock().unwrap())?;
        until.checked_duration_since(Instant::now())
    }

    /// Writes of the lease that carried no condition: always 0 for a correct elector.
    pub fn unconditional_lease_writes(&self) -> u64 {
        self.unconditional_lease_writes.load(Ordering::Relaxed)
    }

    pub(crate) fn saw_unconditional_lease_write(&self) {
        self.unconditional_lease_writes
            .fetch_add(1, Ordering::Relaxed);
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

    /// Count one answer to a request of `kind` (see [`request_kind`]).
    pub(crate) fn answered(&self, kind: &'static str, status: Option<u16>) {
        let status = status.map_or_else(|| "error".to_string(), |s| s.to_string());
        *self
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((kind, status))
            .or_default() += 1;
    }

    /// Answers so far, by request kind and status.
    pub fn answers(&self) -> Vec<((&'static str, String), u64)> {
        let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        answers.iter().map(|(k, v)| (k.clone(), *v)).collect()
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

/// What a request is for, in the words of the metrics: `lease-read`, `lease-write`,
/// `member-write`, `member-read`, `member-list`, `member-delete`, `slot-read`, `slot-write`,
/// `probe`, `other`.
pub fn request_kind(method: &http::Method, uri: &http::Uri) -> &'static str {
    let path = uri.path();
    let get = *method == http::Method::GET;
    if uri.query().is_some_and(|q| q.contains("list-type=2")) {
        "member-list"
    } else if path.ends_with("/lease") {
        if get {
            "lease-read"
        } else {
            "lease-write"
        }
    } else if path.contains("/members/") {
        match *method {
            http::Method::GET => "member-read",
            http::Method::DELETE => "member-delete",
            _ => "member-write",
        }
    } else if path.ends_with("/slot") {
        if get {
            "slot-read"
        } else {
            "slot-write"
        }
    } else if path.contains("/probe/") {
        "probe"
    } else {
        "other"
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
