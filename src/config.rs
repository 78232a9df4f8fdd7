//! Configuration and its validation. Everything here is checked before any request is sent, so
//! a bad setting is a [`ConfigError`] at open time, never a surprise during an election.

use crate::error::ConfigError;
use crate::protocol::EtagForm;
use std::fmt;
use std::time::Duration;

/// A credential that never shows itself in `Debug` or `Display` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself; call only where it is used for signing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where the bucket is and how to sign requests to it.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// `http://host[:port]` or `https://host[:port]`, without the bucket.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// `true`: `endpoint/bucket/key` (ministack, Ceph, most self-hosted stores).
    /// `false`: `bucket.endpoint/key` (AWS's virtual-hosted style).
    pub path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    /// Ceph RGW and some others only match `If-Match` against the ETag without its quotes.
    pub unquoted_etags: bool,
}

/// Quorum settings; `size == 1` disables quorum and every member request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuorumConfig {
    /// Fresh members (the leader included) needed to lead.
    pub size: u32,
    pub heartbeat_interval: Duration,
    /// A member whose object is older than this by the store's clock is not fresh.
    pub member_ttl: Duration,
    /// How long a leader may stay below quorum before it releases the lease.
    pub grace: Duration,
}

impl QuorumConfig {
    /// Quorum off. Heartbeat every lease/3, members fresh for three heartbeats (at least 3 s,
    /// since `Date` has a resolution of one second), grace of one lease.
    pub fn disabled_for_lease(lease: Duration) -> QuorumConfig {
        let heartbeat_interval = lease.checked_div(3).unwrap_or_default();
        QuorumConfig {
            size: 1,
            heartbeat_interval,
            member_ttl: heartbeat_interval
                .saturating_mul(3)
                .max(Duration::from_secs(3)),
            grace: lease,
        }
    }

    pub fn enabled(&self) -> bool {
        self.size > 1
    }
}

/// Timing of the election. See [`Timings::for_lease`] for the defaults and why they are safe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// How long a lease lasts after the write that took or renewed it.
    pub lease: Duration,
    /// A leader that has not confirmed a renewal for this long steps down. Must be shorter
    /// than the lease (after drift), so the leader stops before anyone else may take over.
    pub renew_deadline: Duration,
    /// Pause between retries of a failed request, and between follower polls.
    pub retry_period: Duration,
    /// How often a healthy leader renews.
    pub renew_interval: Duration,
    /// Extra time a follower waits beyond the lease before taking over. Covers clock-rate
    /// differences between nodes and request latency.
    pub grace: Duration,
    /// Largest clock-rate error assumed between any two nodes, in parts per million.
    pub max_drift_ppm: u32,
    /// Deadline for one request, whole: connect, headers and the complete body.
    pub request_timeout: Duration,
    /// Stateless takeover compares the store's `Date` with a record's `Last-Modified`. A proxy
    /// that rewrites `Date` (nginx does by default) or a store with several gateways can stamp
    /// them with different clocks; takeover waits this much longer to cover that.
    pub store_clock_skew: Duration,
    /// The longest lease any node of this election may use (at least `lease`; by default
    /// `lease`). Where the lease object is missing (deleted under a running leader), the
    /// vacancy this node writes is waited out for this long at least, so that a leader with a
    /// longer lease than this node's has stopped. While nodes run with different leases (a
    /// rolling change of the lease, two apps sharing an election), set it on every node to
    /// the longest lease in use. (A node that saw a longer lease in the record uses that too.)
    pub longest_lease: Duration,
}

impl Timings {
    /// Client-go's proportions (15 s / 10 s / 2 s), scaled to `lease`: renew deadline 2/3 of the
    /// lease, retry period 2/15, renew interval 1/3 (three renewals per lease instead of
    /// client-go's one per retry period: cheaper, still two retries before the deadline),
    /// grace 1/15, drift 1 %, store clock skew 1 s.
    pub fn for_lease(lease: Duration) -> Timings {
        let retry_period = lease * 2 / 15;
        Timings {
            lease,
            renew_deadline: lease * 2 / 3,
            retry_period,
            renew_interval: lease / 3,
            grace: lease / 15,
            max_drift_ppm: 10_000,
            request_timeout: retry_period,
            store_clock_skew: Duration::from_secs(1),
            longest_lease: lease,
        }
    }

    /// `d` shrunk by the drift bound: what a node may count on from a duration measured by
    /// a clock that may run fast.
    pub fn shrink_by_drift(&self, d: Duration) -> Duration {
        d.saturating_sub(self.drift_of(d))
    }

    /// The least grace that covers the drift of a lease of this length.
    pub fn drift_allowance(&self, lease: Duration) -> Duration {
        self.drift_of(lease)
            .saturating_add(Duration::from_millis(1))
    }

    /// `d × max_drift_ppm / 10^6`, without overflow for any `d`.
    fn drift_of(&self, d: Duration) -> Duration {
        let nanos = d.as_nanos().saturating_mul(u128::from(self.max_drift_ppm)) / 1_000_000;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

impl Default for Timings {
    fn default() -> Self {
        Timings::for_lease(Duration::from_secs(15))
    }
}

/// Who this node is and which election it takes part in.
#[derive(Clone, Debug)]
pub struct ElectionConfig {
    /// Name of the election; one lease object per name.
    pub name: String,
    /// Unique among the live nodes of this election.
    pub node_id: String,
    /// Prepended to every key; empty, or ending in `/`.
    pub key_prefix: String,
    pub timings: Timings,
    /// Free text the leader publishes in the lease record (an address, a version…).
    pub metadata: String,
    /// A fresh instance per call that remembers nothing: takeover is judged by the store's own
    /// clock (`Date - Last-Modified`), since no local observation survives between calls.
    pub stateless: bool,
    /// Run the store conformance probe ([`crate::probe`]) before the first election request,
    /// refuse a store that ignores conditional writes, and adopt its ETag quoting.
    pub probe_store: bool,
    /// Quorum of observers; `size == 1` (the default) turns it off.
    pub quorum: QuorumConfig,
    /// How `If-Match` carries ETags at first (from the S3 settings' `unquoted-etags`). An
    /// elector whose write the store refuses although the object still had the ETag it sent
    /// switches to the other form (see `crate::core`), so a wrong setting costs two requests,
    /// not the election.
    pub etag_form: EtagForm,
}

/// The keys one elector uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    /// `<prefix><name>/lease`
    pub lease: String,
    /// `<prefix><name>/members/`: every member object is under it.
    pub members: String,
    /// This node's own member object.
    pub own_member: String,
    /// `<prefix><name>/slot`: the last slot claimed by a singleton job.
    pub slot: String,
    /// `<prefix><name>/job`: written when a singleton job first runs (see `crate::slot`).
    pub job: String,
    /// `<prefix><name>/probe/<node-id>`: the store probe's scratch objects start with it.
    pub probe: String,
}

impl Keys {
    /// The scratch object of the probe run named `scratch` (or the key it expects to be
    /// missing): each run has its own, see [`crate::probe::Probe`].
    pub fn probe_scratch(&self, scratch: &str, missing_key: bool) -> String {
        let missing = if missing_key { "-missing" } else { "" };
        format!("{}-{scratch}{missing}", self.probe)
    }
}

impl ElectionConfig {
    /// The key of the lease object.
    pub fn lease_key(&self) -> String {
        self.keys().lease
    }

    pub fn keys(&self) -> Keys {
        let base = format!("{}{}", self.key_prefix, self.name);
        Keys {
            lease: format!("{base}/lease"),
            members: format!("{base}/members/"),
            own_member: format!("{base}/members/{}", self.node_id),
            slot: format!("{base}/slot"),
            job: format!("{base}/job"),
            probe: format!("{base}/probe/{}", self.node_id),
        }
    }
}

fn invalid(field: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        problem: problem.into(),
    }
}

pub const MAX_NAME_LEN: usize = 128;
/// Smallest clock-rate bound accepted (see [`Timings::validate`]).
pub const MIN_DRIFT_PPM: u32 = 1_000;
/// Election names that would put an election's keys among another election's member or probe
/// objects (`<prefix>a/members/…`, `<prefix>a/probe/…` with prefix `<prefix>a/`).
pub const RESERVED_NAMES: [&str; 2] = ["members", "probe"];
pub const MAX_PREFIX_LEN: usize = 512;
pub const MAX_METADATA_LEN: usize = 4096;

/// Names end up in S3 keys and URLs: keep them to characters that need no escaping anywhere.
fn check_name(field: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(invalid(field, format!("longer than {MAX_NAME_LEN} bytes")));
    }
    if value == "." || value == ".." {
        return Err(invalid(field, "must not be `.` or `..`"));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(invalid(
            field,
            format!("character {c:?} not allowed (use A-Z a-z 0-9 - _ .)"),
        ));
    }
    Ok(())
}

fn check_prefix(value: &str) -> Result<(), ConfigError> {
    const FIELD: &str = "key-prefix";
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > MAX_PREFIX_LEN {
        return Err(invalid(
            FIELD,
            format!("longer than {MAX_PREFIX_LEN} bytes"),
        ));
    }
    if !value.ends_with('/') || value.starts_with('/') {
        return Err(invalid(FIELD, "must end with `/` and not start with `/`"));
    }
    for segment in value[..value.len() - 1].split('/') {
        check_name(FIELD, segment)?;
    }
    Ok(())
}

impl ElectionConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_name("name", &self.name)?;
        if RESERVED_NAMES.contains(&self.name.as_str()) {
            return Err(invalid(
                "name",
                format!(
                    "`{}` is reserved: its keys would mix with another election's members or probe",
                    self.name
                ),
            ));
        }
        check_name("node-id", &self.node_id)?;
        check_prefix(&self.key_prefix)?;
        if self.metadata.len() > MAX_METADATA_LEN {
            return Err(invalid(
                "metadata",
                format!("longer than {MAX_METADATA_LEN} bytes"),
            ));
        }
        self.timings.validate()?;
        self.validate_quorum()
    }

    fn validate_quorum(&self) -> Result<(), ConfigError> {
        let q = &self.quorum;
        if q.size == 0 || q.size > 1000 {
            return Err(invalid("quorum", "must be between 1 (off) and 1000"));
        }
        if !q.enabled() {
            return Ok(());
        }
        if q.heartbeat_interval < Duration::from_millis(100) {
            return Err(invalid("heartbeat-interval-ms", "must be at least 100 ms"));
        }
        // Freshness is judged by the store's `Date`, which has a resolution of one second.
        if q.member_ttl < Duration::from_secs(2) {
            return Err(invalid("member-ttl-ms", "must be at least 2000 ms"));
        }
        if q.heartbeat_interval * 3 > q.member_ttl {
            return Err(invalid(
                "heartbeat-interval-ms",
                "must be at most a third of the member TTL, so one lost heartbeat does not make a member stale",
            ));
        }
        // Freshness is `Date − Last-Modified` by the store's clock, which may be off by the
        // store clock skew and by one second of resolution: a live member must never look
        // older than the TTL.
        let least_ttl =
            q.heartbeat_interval + self.timings.store_clock_skew + Duration::from_secs(1);
        if q.member_ttl < least_ttl {
            return Err(invalid(
                "member-ttl-ms",
                format!(
                    "must be at least heartbeat interval + store clock skew + 1 s ({} ms)",
                    least_ttl.as_millis()
                ),
            ));
        }
        if self.stateless {
            return Err(invalid(
                "quorum",
                "needs a stateful elector (a stateless instance cannot heartbeat between calls)",
            ));
        }
        Ok(())
    }
}

impl Timings {
    /// The relations that make the protocol safe and live (client-go's checks, plus drift).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ms = |d: Duration| d.as_millis();
        if self.lease < Duration::from_millis(100) || self.lease > Duration::from_secs(3600) {
            return Err(invalid("lease-ms", "must be between 100 ms and 1 hour"));
        }
        // NTP slews a clock by up to 500 ppm, so two nodes' clocks may differ by 1000 ppm
        // even when both are synchronised.
        if !(MIN_DRIFT_PPM..=100_000).contains(&self.max_drift_ppm) {
            return Err(invalid(
                "max-drift-ppm",
                format!("must be between {MIN_DRIFT_PPM} (NTP's slew between two clocks) and 100000 (10 %)"),
            ));
        }
        let usable_lease = self.shrink_by_drift(self.lease);
        if self.renew_deadline >= usable_lease {
            return Err(invalid(
                "renew-deadline-ms",
                format!(
                    "must be shorter than the lease less drift ({} ms), so a leader steps down before its lease can be taken",
                    ms(usable_lease)
                ),
            ));
        }
        if self.retry_period.is_zero() || self.retry_period >= self.renew_deadline {
            return Err(invalid(
                "retry-period-ms",
                "must be above zero and shorter than the renew deadline",
            ));
        }
        if self.renew_interval.is_zero()
            || self.renew_interval + self.retry_period > self.renew_deadline
        {
            return Err(invalid(
                "renew-interval-ms",
                "renew interval + retry period must fit in the renew deadline (at least one retry before stepping down)",
            ));
        }
        let least_grace = self.drift_allowance(self.lease);
        if self.grace < least_grace {
            return Err(invalid(
                "grace-ms",
                format!(
                    "must be at least {} ms to cover clock drift over one lease",
                    ms(least_grace)
                ),
            ));
        }
        if self.request_timeout.is_zero() || self.request_timeout > self.renew_deadline {
            return Err(invalid(
                "request-timeout-ms",
                "must be above zero and at most the renew deadline",
            ));
        }
        if self.store_clock_skew > Duration::from_secs(3600) {
            return Err(invalid("store-clock-skew-ms", "must be at most one hour"));
        }
        if self.longest_lease < self.lease || self.longest_lease > Duration::from_secs(3600) {
            return Err(invalid(
                "longest-lease-ms",
                "must be at least this node's lease and at most one hour",
            ));
        }
        Ok(())
    }
}

/// Timings as the WIT interface carries them: every field optional. Unset ones take the
/// defaults of [`Timings::for_lease`], and a few follow the ones that are set (the request
/// timeout follows the retry period, as client-go's do).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimingSettings {
    pub lease_ms: Option<u32>,
    pub renew_deadline_ms: Option<u32>,
    pub retry_period_ms: Option<u32>,
    pub renew_interval_ms: Option<u32>,
    pub grace_ms: Option<u32>,
    pub max_drift_ppm: Option<u32>,
    pub request_timeout_ms: Option<u32>,
    pub store_clock_skew_ms: Option<u32>,
    /// Not in the WIT `timings` record (0.2.0): set through `open-with`'s options.
    pub longest_lease_ms: Option<u32>,
}

/// A quorum as the WIT interface carries it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuorumSettings {
    pub size: u32,
    pub heartbeat_interval_ms: Option<u32>,
    pub member_ttl_ms: Option<u32>,
    pub grace_ms: Option<u32>,
}

fn ms(v: u32) -> Duration {
    Duration::from_millis(u64::from(v))
}

impl TimingSettings {
    pub fn resolve(&self) -> Timings {
        let mut t = Timings::for_lease(self.lease_ms.map_or(Timings::default().lease, ms));
        if let Some(v) = self.renew_deadline_ms {
            t.renew_deadline = ms(v);
        }
        if let Some(v) = self.retry_period_ms {
            t.retry_period = ms(v);
            t.request_timeout = ms(v);
        }
        if let Some(v) = self.renew_interval_ms {
            t.renew_interval = ms(v);
        }
        if let Some(v) = self.grace_ms {
            t.grace = ms(v);
        }
        if let Some(v) = self.max_drift_ppm {
            t.max_drift_ppm = v;
        }
        if let Some(v) = self.request_timeout_ms {
            t.request_timeout = ms(v);
        }
        if let Some(v) = self.store_clock_skew_ms {
            t.store_clock_skew = ms(v);
        }
        t.longest_lease = self.longest_lease_ms.map_or(t.lease, ms);
        t
    }
}

impl QuorumSettings {
    /// The quorum for an election with this lease; `None` settings: quorum off.
    pub fn resolve(settings: Option<&QuorumSettings>, lease: Duration) -> QuorumConfig {
        let mut q = QuorumConfig::disabled_for_lease(lease);
        let Some(s) = settings else {
            return q;
        };
        q.size = s.size;
        if let Some(v) = s.heartbeat_interval_ms {
            q.heartbeat_interval = ms(v);
            q.member_ttl = (ms(v) * 3).max(Duration::from_secs(3));
        }
        if let Some(v) = s.member_ttl_ms {
            q.member_ttl = ms(v);
        }
        if let Some(v) = s.grace_ms {
            q.grace = ms(v);
        }
        q
    }
}

impl S3Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let rest = self
            .endpoint
            .strip_prefix("http://")
            .or_else(|| self.endpoint.strip_prefix("https://"))
            .ok_or_else(|| invalid("endpoint", "must start with http:// or https://"))?;
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
            return Err(invalid(
                "endpoint",
                "must be scheme://host[:port] with no path, query or user info",
            ));
        }
        if host.parse::<http::uri::Authority>().is_err() {
            return Err(invalid("endpoint", "host is not a valid authority"));
        }
        if self.region.is_empty()
            || !self
                .region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(invalid("region", "must be non-empty: a-z 0-9 -"));
        }
        // S3's bucket naming rules (3-63 of a-z 0-9 . -), which also keep virtual-hosted URLs valid.
        let b = &self.bucket;
        let ok_chars = b
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        let ok_ends = b.starts_with(|c: char| c.is_ascii_alphanumeric())
            && b.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !(3..=63).contains(&b.len()) || !ok_chars || !ok_ends {
            return Err(invalid(
                "bucket",
                "must be 3-63 characters of a-z 0-9 . - starting and ending with a letter or digit",
            ));
        }
        if self.access_key_id.is_empty() || self.access_key_id.contains(char::is_whitespace) {
            return Err(invalid("access-key-id", "must be non-empty without spaces"));
        }
        if self.secret_access_key.expose().is_empty() {
            return Err(invalid("secret-access-key", "must not be empty"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn election() -> ElectionConfig {
        ElectionConfig {
            name: "jobs".into(),
            node_id: "node-1".into(),
            key_prefix: "elections/".into(),
            timings: Timings::default(),
            metadata: String::new(),
            stateless: false,
            probe_store: false,
            quorum: QuorumConfig::disabled_for_lease(Duration::from_secs(15)),
            etag_form: EtagForm::Quoted,
        }
    }

    fn s3() -> S3Config {
        S3Config {
            endpoint: "http://127.0.0.1:4566".into(),
            region: "us-east-1".into(),
            bucket: "my-bucket".into(),
            path_style: true,
            access_key_id: "AKID".into(),
            secret_access_key: Secret::new("very-secret"),
            session_token: None,
            unquoted_etags: false,
        }
    }

    fn field_of(r: Result<(), ConfigError>) -> &'static str {
        r.expect_err("config should be rejected").field
    }

    #[test]
    fn defaults_are_valid_for_many_lease_lengths() {
        for ms in [100, 1000, 1500, 3000, 15_000, 60_000, 3_600_000] {
            let t = Timings::for_lease(Duration::from_millis(ms));
            assert_eq!(t.validate(), Ok(()), "lease {ms} ms");
        }
        assert_eq!(election().validate(), Ok(()));
        assert_eq!(s3().validate(), Ok(()));
    }

    #[test]
    fn renew_deadline_must_be_shorter_than_the_drifted_lease() {
        let mut c = election();
        c.timings.renew_deadline = c.timings.lease;
        assert_eq!(field_of(c.validate()), "renew-deadline-ms");
        // Shorter than the lease, but not shorter than the lease less 1 % drift.
        c.timings.renew_deadline = c.timings.lease - Duration::from_millis(100);
        assert_eq!(field_of(c.validate()), "renew-deadline-ms");
    }

    #[test]
    fn retry_period_must_be_shorter_than_renew_deadline() {
        let mut c = election();
        c.timings.retry_period = c.timings.renew_deadline;
        assert_eq!(field_of(c.validate()), "retry-period-ms");
        c.timings.retry_period = Duration::ZERO;
        assert_eq!(field_of(c.validate()), "retry-period-ms");
    }

    #[test]
    fn renew_interval_must_leave_room_for_a_retry() {
        let mut c = election();
        c.timings.renew_interval = c.timings.renew_deadline;
        assert_eq!(field_of(c.validate()), "renew-interval-ms");
    }

    #[test]
    fn grace_must_cover_drift() {
        let mut c = election();
        c.timings.grace = Duration::from_millis(100); // 1 % of 15 s is 150 ms
        assert_eq!(field_of(c.validate()), "grace-ms");
    }

    #[test]
    fn lease_bounds_and_drift_bound() {
        let mut c = election();
        c.timings = Timings::for_lease(Duration::from_millis(50));
        assert_eq!(field_of(c.validate()), "lease-ms");
        let mut c = election();
        c.timings.max_drift_ppm = 200_000;
        assert_eq!(field_of(c.validate()), "max-drift-ppm");
        // Zero drift cannot be true of two NTP-slewed clocks.
        for ppm in [0, 500, 999] {
            let mut c = election();
            c.timings.max_drift_ppm = ppm;
            assert_eq!(field_of(c.validate()), "max-drift-ppm", "{ppm}");
        }
    }

    #[test]
    fn drift_arithmetic_never_overflows() {
        let t = Timings {
            max_drift_ppm: 100_000,
            ..Timings::default()
        };
        assert_eq!(
            t.shrink_by_drift(Duration::MAX),
            Duration::MAX - t.drift_of(Duration::MAX)
        );
        assert!(t.drift_allowance(Duration::MAX) > Duration::ZERO);
    }

    #[test]
    fn names_that_collide_with_member_and_probe_keys_are_reserved() {
        for reserved in RESERVED_NAMES {
            let mut c = election();
            c.name = reserved.into();
            assert_eq!(field_of(c.validate()), "name", "{reserved}");
        }
    }

    #[test]
    fn the_longest_lease_is_at_least_this_nodes_and_at_most_an_hour() {
        let mut c = election();
        c.timings.longest_lease = c.timings.lease - Duration::from_millis(1);
        assert_eq!(field_of(c.validate()), "longest-lease-ms");
        c.timings.longest_lease = Duration::from_secs(3601);
        assert_eq!(field_of(c.validate()), "longest-lease-ms");
        c.timings.longest_lease = Duration::from_secs(60);
        assert_eq!(c.validate(), Ok(()));
        let t = TimingSettings {
            lease_ms: Some(2000),
            ..TimingSettings::default()
        };
        assert_eq!(
            t.resolve().longest_lease,
            Duration::from_secs(2),
            "defaults to the lease"
        );
    }

    #[test]
    fn request_timeout_is_bounded_by_renew_deadline() {
        let mut c = election();
        c.timings.request_timeout = c.timings.lease;
        assert_eq!(field_of(c.validate()), "request-timeout-ms");
    }

    #[test]
    fn names_must_be_safe_as_s3_keys() {
        for bad in ["", ".", "..", "a/b", "a b", "ä", "x?y", &"n".repeat(129)] {
            let mut c = election();
            c.name = bad.into();
            assert_eq!(field_of(c.validate()), "name", "{bad:?}");
            let mut c = election();
            c.node_id = bad.into();
            assert_eq!(field_of(c.validate()), "node-id", "{bad:?}");
        }
    }

    #[test]
    fn prefix_must_be_empty_or_segments_ending_in_slash() {
        for good in ["", "a/", "a/b-c/", "x.y_z/"] {
            let mut c = election();
            c.key_prefix = good.into();
            assert_eq!(c.validate(), Ok(()), "{good:?}");
        }
        for bad in ["a", "/a/", "a//", "a/../", "a b/"] {
            let mut c = election();
            c.key_prefix = bad.into();
            assert_eq!(field_of(c.validate()), "key-prefix", "{bad:?}");
        }
        assert_eq!(election().lease_key(), "elections/jobs/lease");
    }

    #[test]
    fn quorum_settings_are_checked_only_when_quorum_is_on() {
        let mut c = election();
        c.quorum.member_ttl = Duration::from_millis(10); // ignored while quorum is off
        assert_eq!(c.validate(), Ok(()));
        c.quorum = QuorumConfig::disabled_for_lease(c.timings.lease);
        c.quorum.size = 3;
        assert_eq!(c.validate(), Ok(()));
        let mut bad = c.clone();
        bad.quorum.size = 0;
        assert_eq!(field_of(bad.validate()), "quorum");
        let mut bad = c.clone();
        bad.quorum.heartbeat_interval = bad.quorum.member_ttl / 2;
        assert_eq!(field_of(bad.validate()), "heartbeat-interval-ms");
        let mut bad = c.clone();
        bad.quorum.member_ttl = Duration::from_secs(1);
        assert_eq!(field_of(bad.validate()), "member-ttl-ms");
        let mut bad = c.clone();
        bad.timings.store_clock_skew = bad.quorum.member_ttl;
        assert_eq!(
            field_of(bad.validate()),
            "member-ttl-ms",
            "a skewed store clock"
        );
        let mut bad = c.clone();
        bad.stateless = true;
        assert_eq!(field_of(bad.validate()), "quorum");
        let keys = c.keys();
        assert_eq!(keys.members, "elections/jobs/members/");
        assert_eq!(keys.own_member, "elections/jobs/members/node-1");
    }

    #[test]
    fn metadata_is_bounded() {
        let mut c = election();
        c.metadata = "m".repeat(MAX_METADATA_LEN + 1);
        assert_eq!(field_of(c.validate()), "metadata");
    }

    #[test]
    fn s3_settings_are_checked() {
        type Breaker = fn(&mut S3Config);
        let cases: [(&str, Breaker); 7] = [
            ("endpoint", |c| c.endpoint = "127.0.0.1:4566".into()),
            ("endpoint", |c| c.endpoint = "http://h/path".into()),
            ("endpoint", |c| c.endpoint = "http://".into()),
            ("region", |c| c.region = "".into()),
            ("bucket", |c| c.bucket = "No_Caps".into()),
            ("access-key-id", |c| c.access_key_id = "".into()),
            ("secret-access-key", |c| {
                c.secret_access_key = Secret::new("")
            }),
        ];
        for (field, break_it) in cases {
            let mut c = s3();
            break_it(&mut c);
            assert_eq!(field_of(c.validate()), field);
        }
    }

    #[test]
    fn unset_settings_take_the_defaults_and_follow_the_ones_set() {
        assert_eq!(TimingSettings::default().resolve(), Timings::default());
        let t = TimingSettings {
            lease_ms: Some(3000),
            retry_period_ms: Some(300),
            ..TimingSettings::default()
        }
        .resolve();
        assert_eq!(t.lease, Duration::from_secs(3));
        assert_eq!(t.renew_deadline, Duration::from_secs(2));
        assert_eq!(
            t.request_timeout,
            Duration::from_millis(300),
            "follows the retry period"
        );
        let q = QuorumSettings::resolve(None, t.lease);
        assert!(!q.enabled());
        let q = QuorumSettings::resolve(
            Some(&QuorumSettings {
                size: 3,
                heartbeat_interval_ms: Some(2000),
                ..QuorumSettings::default()
            }),
            t.lease,
        );
        assert_eq!((q.size, q.member_ttl), (3, Duration::from_secs(6)));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let mut c = s3();
        c.session_token = Some(Secret::new("session-xyz"));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("very-secret") && !shown.contains("session-xyz"),
            "{shown}"
        );
        assert!(shown.contains("AKID"));
    }
}
