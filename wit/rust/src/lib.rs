//! # s3-election-sdk
//!
//! For Rust WebAssembly components (Spin, wasmCloud, wasmtime plugins) that use the
//! s3-election component for leader election. One dependency gives you:
//!
//! - typed bindings to the `s3-election:election/election@0.2.1` interface (your component
//!   imports it; compose it with the s3-election component: `wac plug`, or a Spin component
//!   dependency);
//! - constructors with a default for every setting ([`ElectionConfig::new`],
//!   [`S3Config::new`], [`Settings`] to read them from name/value pairs such as environment
//!   variables);
//! - [`Election`]: the tick loop's bookkeeping, so that "may I act as leader right now?" is
//!   [`Election::is_leader_now`], answered from the monotonic clock without a request.
//!
//! ```ignore
//! use s3_election_sdk::{Credentials, Election, ElectionConfig, S3Config};
//!
//! let s3 = S3Config::new("https://s3.eu-west-1.amazonaws.com", "eu-west-1", "my-bucket",
//!                        Credentials::new(key_id, secret));
//! let mut election = Election::open(&s3, &ElectionConfig::new("reports", &node_id))?;
//! loop {
//!     election.tick()?;                       // call again after election.next_tick_in()
//!     if election.is_leader_now() {
//!         write_with_fencing_token(election.fencing_token_now().unwrap());
//!     }
//! }
//! ```
//!
//! Node ids: give every running instance its own (a pod or host name, or
//! [`random_node_id`] for a long-lived instance). Processes that share one are told apart and
//! never lead together, but they wait for each other like strangers; in stateless mode one id
//! is one logical node whose invocations may overlap.

mod bindings {
    wit_bindgen::generate!({
        world: "election-user",
        path: "..",
        generate_all,
    });
}

mod settings;
mod validity;

pub use bindings::s3_election::election::election::*;
pub use settings::Settings;
pub use validity::Validity;

use bindings::wasi::clocks::monotonic_clock;
use std::time::Duration;

impl Credentials {
    /// An access key id and its secret (no session token).
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// With an STS session token.
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }
}

impl S3Config {
    /// Path-style addressing (`endpoint/bucket/key`), quoted ETags: what most stores want.
    /// Use [`S3Config::virtual_hosted`] for AWS's `bucket.endpoint`, and set
    /// `unquoted_etags` for Ceph RGW (or let `probe_store` find out).
    pub fn new(
        endpoint: impl Into<String>,
        region: impl Into<String>,
        bucket: impl Into<String>,
        credentials: Credentials,
    ) -> Self {
        S3Config {
            endpoint: endpoint.into(),
            region: region.into(),
            bucket: bucket.into(),
            path_style: true,
            credentials,
            unquoted_etags: false,
        }
    }

    /// `bucket.endpoint/key` (AWS's virtual-hosted style).
    pub fn virtual_hosted(mut self) -> Self {
        self.path_style = false;
        self
    }
}

impl ElectionRef {
    pub fn new(name: impl Into<String>) -> Self {
        ElectionRef {
            name: name.into(),
            key_prefix: String::new(),
        }
    }

    /// Keys under a prefix: empty, or segments each ending in `/` (`elections/`).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }
}

impl Default for Timings {
    /// Every timing left to the component's defaults (client-go's proportions of a 15 s
    /// lease).
    fn default() -> Self {
        Timings {
            lease_ms: None,
            renew_deadline_ms: None,
            retry_period_ms: None,
            renew_interval_ms: None,
            grace_ms: None,
            max_drift_ppm: None,
            request_timeout_ms: None,
            store_clock_skew_ms: None,
        }
    }
}

impl ElectionConfig {
    /// Election `name` as node `node_id`, every other setting at its default: stateful, no
    /// quorum, no probe, a 15 s lease.
    pub fn new(name: impl Into<String>, node_id: impl Into<String>) -> Self {
        ElectionConfig {
            election: ElectionRef::new(name),
            node_id: node_id.into(),
            metadata: String::new(),
            stateless: false,
            probe_store: false,
            timings: None,
            quorum: None,
        }
    }

    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.election.key_prefix = prefix.into();
        self
    }

    /// The lease; the other timings follow it unless set.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.timings_mut().lease_ms = Some(millis(lease));
        self
    }

    /// Published by the leader in the lease record (at most 4096 bytes).
    pub fn with_metadata(mut self, metadata: impl Into<String>) -> Self {
        self.metadata = metadata.into();
        self
    }

    /// Every call runs in a fresh instance (an HTTP or cron trigger): takeover is judged by
    /// the store's clock.
    pub fn stateless(mut self) -> Self {
        self.stateless = true;
        self
    }

    /// Probe the store before the first election request.
    pub fn probing_the_store(mut self) -> Self {
        self.probe_store = true;
        self
    }

    /// Lead only while `size` members (this one included) are alive.
    pub fn with_quorum(mut self, size: u32) -> Self {
        self.quorum = Some(Quorum {
            size,
            heartbeat_interval_ms: None,
            member_ttl_ms: None,
            grace_ms: None,
        });
        self
    }

    /// The timings, all defaults until set.
    pub fn timings_mut(&mut self) -> &mut Timings {
        self.timings.get_or_insert_with(Timings::default)
    }
}

impl Job {
    /// A singleton job's identity for [`claim_slot`].
    pub fn new(name: impl Into<String>, node_id: impl Into<String>) -> Self {
        Job {
            election: ElectionRef::new(name),
            node_id: node_id.into(),
            metadata: String::new(),
        }
    }
}

/// One line for an error, e.g. `access-denied: 403 SignatureDoesNotMatch: …` (errors never
/// carry secrets).
pub fn describe(e: &Error) -> String {
    let store = |s: &StoreError| format!("{} {}: {}", s.status, s.code, s.message);
    match e {
        Error::InvalidConfig(c) => format!("invalid-config: {}: {}", c.field, c.problem),
        Error::AccessDenied(s) => format!("access-denied: {}", store(s)),
        Error::BucketMissing(b) => format!("bucket-missing: {b}"),
        Error::ForeignRecord(w) => format!("foreign-record: {w}"),
        Error::ConditionalWritesUnsupported(w) => format!("conditional-writes-unsupported: {w}"),
        Error::Transport(w) => format!("transport: {w}"),
        Error::BadAnswer(w) => format!("bad-answer: {w}"),
        Error::Store(s) => format!("store: {}", store(s)),
    }
}

/// An elector and the bookkeeping of its last answer.
pub struct Election {
    elector: Elector,
    validity: Validity,
    last: Option<Status>,
}

impl Election {
    /// Validate the settings (no request) and open an elector.
    pub fn open(s3: &S3Config, election: &ElectionConfig) -> Result<Election, Error> {
        Ok(Election {
            elector: Elector::open(s3, election)?,
            validity: Validity::default(),
            last: None,
        })
    }

    /// [`Election::open`] with the options added in 0.2.1 (the longest lease in use: see
    /// [`Settings::options`]).
    pub fn open_with(
        s3: &S3Config,
        election: &ElectionConfig,
        options: &Options,
    ) -> Result<Election, Error> {
        Ok(Election {
            elector: Elector::open_with(s3, election, *options)?,
            validity: Validity::default(),
            last: None,
        })
    }

    /// One election step. An error means this node is not leader now (the next tick retries).
    pub fn tick(&mut self) -> Result<&Status, Error> {
        let answer = self.elector.tick();
        self.note(answer)
    }

    /// Stop leading now and release the lease; afterwards this elector only observes.
    pub fn resign(&mut self) -> Result<&Status, Error> {
        let answer = self.elector.resign();
        self.validity.lose();
        self.note(answer)
    }

    /// Resign and delete this node's member object (quorum elections). Like every call that
    /// ends leadership, it ends [`Election::is_leader_now`] at once, whatever it answers.
    pub fn leave(&mut self) -> Result<&Status, Error> {
        let answer = self.elector.leave();
        self.validity.lose();
        self.note(answer)
    }

    fn note(&mut self, answer: Result<Status, Error>) -> Result<&Status, Error> {
        let now = monotonic_clock::now();
        match answer {
            Ok(status) => {
                self.validity.record(now, &status);
                Ok(self.last.insert(status))
            }
            Err(e) => {
                self.validity.lose();
                self.last = None;
                Err(e)
            }
        }
    }

    /// Whether this node may act as leader at this moment: the last answer said so, and the
    /// window it promised has not run out (by the monotonic clock, no request).
    pub fn is_leader_now(&self) -> bool {
        self.validity.is_leader_at(monotonic_clock::now())
    }

    /// The fencing token, while [`Election::is_leader_now`]: pass it to whatever the leader
    /// writes to.
    pub fn fencing_token_now(&self) -> Option<u64> {
        self.validity.token_at(monotonic_clock::now())
    }

    /// How much longer the promised window runs (zero when not leading).
    pub fn valid_for(&self) -> Duration {
        self.validity.left_at(monotonic_clock::now())
    }

    /// When to call [`Election::tick`] again (at once if there was no answer yet).
    pub fn next_tick_in(&self) -> Duration {
        self.validity.next_tick_at(monotonic_clock::now())
    }

    /// The last successful answer.
    pub fn last_status(&self) -> Option<&Status> {
        self.last.as_ref()
    }

    /// The elector, for the calls this helper does not wrap (`query-leader`,
    /// `set-credentials`, `status`). Call `tick`, `resign` and `leave` through the helper: a
    /// call past it leaves [`Election::is_leader_now`] to the last answer the helper saw.
    pub fn elector(&self) -> &Elector {
        &self.elector
    }
}

/// `prefix-<16 hex digits>` from a random source: an id for a long-lived instance that has
/// no name of its own. (Not for stateless workers: there, every invocation would be a new
/// node; name the replica instead.)
pub fn random_node_id(prefix: &str, random: u64) -> String {
    format!("{prefix}-{random:016x}")
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}
