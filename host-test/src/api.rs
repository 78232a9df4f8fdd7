//! The component's exported interface (`s3-election:election/election@0.2.1`) as Rust types,
//! generated from `wit/`, and small helpers to build its records and print its answers. Every
//! other module speaks these types; this one imports nothing from the crate.

pub(crate) mod bindings {
    // The host only calls the exports; WASI imports come from wasmtime-wasi(-http)'s own
    // linker functions, so the bindings are generated for a world that only exports.
    wasmtime::component::bindgen!({
        inline: "
            package host-test:view;
            world election-host {
                export s3-election:election/election@0.2.1;
            }
        ",
        path: "../wit",
        world: "host-test:view/election-host",
        exports: { default: async },
    });
}

pub use bindings::exports::s3_election::election::election::*;

/// An election config with every timing left to the component's defaults.
pub fn election_config(name: &str, node_id: &str, prefix: &str) -> ElectionConfig {
    ElectionConfig {
        election: election_ref(name, prefix),
        node_id: node_id.into(),
        metadata: String::new(),
        stateless: false,
        probe_store: false,
        timings: None,
        quorum: None,
    }
}

pub fn election_ref(name: &str, prefix: &str) -> ElectionRef {
    ElectionRef {
        name: name.into(),
        key_prefix: prefix.into(),
    }
}

/// A quorum of `size` with default timings.
pub fn quorum(size: u32) -> Quorum {
    Quorum {
        size,
        heartbeat_interval_ms: None,
        member_ttl_ms: None,
        grace_ms: None,
    }
}

/// A singleton job's identity for `claim-slot`.
pub fn job(name: &str, node_id: &str, prefix: &str) -> Job {
    Job {
        election: election_ref(name, prefix),
        node_id: node_id.into(),
        metadata: String::new(),
    }
}

/// Edit the optional parts of an election config in place.
pub trait ConfigExt {
    /// The timings, created (all defaults) if unset.
    fn timing_mut(&mut self) -> &mut Timings;
    /// The quorum; panics if none was set (set `quorum = Some(quorum(n))` first).
    fn quorum_mut(&mut self) -> &mut Quorum;
    fn lease_ms(&self) -> Option<u32>;
}

impl ConfigExt for ElectionConfig {
    fn timing_mut(&mut self) -> &mut Timings {
        self.timings.get_or_insert(Timings {
            lease_ms: None,
            renew_deadline_ms: None,
            retry_period_ms: None,
            renew_interval_ms: None,
            grace_ms: None,
            max_drift_ppm: None,
            request_timeout_ms: None,
            store_clock_skew_ms: None,
        })
    }

    fn quorum_mut(&mut self) -> &mut Quorum {
        self.quorum.as_mut().expect("a quorum is set")
    }

    fn lease_ms(&self) -> Option<u32> {
        self.timings.as_ref().and_then(|t| t.lease_ms)
    }
}

/// One line for an error, e.g. `access-denied: 403 SignatureDoesNotMatch: ...`.
pub fn describe_error(e: &Error) -> String {
    let store = |s: &StoreError| format!("{} {}: {}", s.status, s.code, s.message);
    match e {
        Error::InvalidConfig(c) => format!("invalid-config: {}: {}", c.field, c.problem),
        Error::AccessDenied(s) => format!("access-denied: {}", store(s)),
        Error::BucketMissing(b) => format!("bucket-missing: {b}"),
        Error::ForeignRecord(why) => format!("foreign-record: {why}"),
        Error::ConditionalWritesUnsupported(why) => {
            format!("conditional-writes-unsupported: {why}")
        }
        Error::Transport(why) => format!("transport: {why}"),
        Error::BadAnswer(why) => format!("bad-answer: {why}"),
        Error::Store(s) => format!("store: {}", store(s)),
    }
}

/// One event as text, e.g. `elected(term=3)`.
pub fn event_text(e: &Event) -> String {
    match e {
        Event::Elected(term) => format!("elected(term={term})"),
        Event::Demoted(d) => {
            let reason = match &d.reason {
                DemoteReason::RenewDeadlineExceeded => "renew-deadline-exceeded".to_string(),
                DemoteReason::LeaseLost(Some(h)) => format!("lease-lost to {h}"),
                DemoteReason::LeaseLost(None) => "lease-lost".to_string(),
                DemoteReason::Resigned => "resigned".to_string(),
                DemoteReason::Error => "error".to_string(),
                DemoteReason::QuorumLost => "quorum-lost".to_string(),
            };
            format!("demoted(term={}, {reason})", d.term)
        }
        Event::LeaderChanged(Some(l)) => {
            format!("leader-changed({}, term={})", l.node_id, l.term)
        }
        Event::LeaderChanged(None) => "leader-changed(none)".to_string(),
        Event::QuorumLost(q) => format!("quorum-lost({}/{})", q.fresh, q.needed),
        Event::QuorumRestored(fresh) => format!("quorum-restored({fresh})"),
    }
}
