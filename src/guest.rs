//! The WIT exports: thin glue that moves bytes and reads clocks. Every decision (what to send,
//! how many requests a call may send, what a call returns) is made by the sans-IO machines
//! (`core`'s calls, `slot`, `probe`), which this drives with wasi:http, wasi:clocks and
//! wasi:random, and converts to and from the WIT types.

use crate::config::{
    ElectionConfig, Keys, QuorumSettings, S3Config, Secret, TimingSettings, Timings,
};
use crate::core::{self, CallKind, Elector as Core, Reply};
use crate::error::Error;
use crate::probe::Probe;
use crate::protocol::{self, EtagForm, Outcome, Request};
use crate::s3::{self, HttpRequest, HttpResponse, Method};
use crate::slot::{Claim, SlotClaim};
use crate::time::Instant;
use std::cell::RefCell;
use std::time::Duration;

wit_bindgen::generate!({
    world: "election-component",
    path: "wit",
    generate_all,
});

use exports::s3_election::election::election as api;
use wasi::clocks::{monotonic_clock, wall_clock};
use wasi::http::outgoing_handler;
use wasi::http::types as http;
use wasi::io::poll::{self, Pollable};
use wasi::io::streams::StreamError;

struct Component;
export!(Component);

impl api::Guest for Component {
    type Elector = ElectorResource;

    fn claim_slot(
        s3: api::S3Config,
        job: api::Job,
        slot: u64,
    ) -> Result<api::SlotClaim, api::Error> {
        claim(s3, job, slot, random_nonce())
    }

    fn claim_slot_as(
        s3: api::S3Config,
        job: api::Job,
        slot: u64,
        claim_id: String,
    ) -> Result<api::SlotClaim, api::Error> {
        crate::slot::check_claim_id(&claim_id).map_err(|e| to_wit(Error::InvalidConfig(e)))?;
        claim(s3, job, slot, claim_id)
    }

    fn probe_store(
        s3: api::S3Config,
        election: api::ElectionRef,
        prober: String,
    ) -> Result<api::StoreProfile, api::Error> {
        let s3 = valid_s3(s3)?;
        let election = valid(ElectionConfig {
            node_id: prober,
            ..config_for(&election, &s3)
        })?;
        let mut probe = Probe::new(random_nonce());
        let io = Io::new(s3, &election);
        protocol::drive(&mut probe, now, |r| io.exchange(r));
        match probe.result() {
            Some(Ok(p)) => Ok(api::StoreProfile {
                unquoted_etags: p.unquoted_etags,
                missing_key_not_found: p.missing_key_not_found,
            }),
            Some(Err(e)) => Err(to_wit(e.clone())),
            None => Err(to_wit(Error::Transport("the probe did not finish".into()))),
        }
    }

    fn who_leads(
        s3: api::S3Config,
        election: api::ElectionRef,
    ) -> Result<Option<api::LeaderInfo>, api::Error> {
        let s3 = valid_s3(s3)?;
        // A stateless observer that never writes: its node id is never used in a request.
        let config = valid(ElectionConfig {
            node_id: "who-leads".into(),
            stateless: true,
            ..config_for(&election, &s3)
        })?;
        let mut driver = Driver::new(s3, config);
        match driver.call(CallKind::Query)? {
            Reply::Leader(leader) => Ok(leader.map(leader_to_wit)),
            Reply::Status(_) => Err(to_wit(Error::Transport("no answer to the query".into()))),
        }
    }

    fn read_lease(
        s3: api::S3Config,
        election: api::ElectionRef,
    ) -> Result<api::LeaseState, api::Error> {
        let s3 = valid_s3(s3)?;
        // The same stateless observer as `who-leads`: its vacancy wait is judged by the
        // store's clock.
        let config = valid(ElectionConfig {
            node_id: "read-lease".into(),
            stateless: true,
            ..config_for(&election, &s3)
        })?;
        let mut driver = Driver::new(s3, config);
        driver.call(CallKind::Query)?;
        Ok(lease_state_to_wit(driver.core.lease_view(now())))
    }
}

/// One slot claim, driven to its end; `nonce` is random or the caller's claim id.
fn claim(
    s3: api::S3Config,
    job: api::Job,
    slot: u64,
    nonce: String,
) -> Result<api::SlotClaim, api::Error> {
    let s3 = valid_s3(s3)?;
    let job = valid(ElectionConfig {
        node_id: job.node_id,
        metadata: job.metadata,
        ..config_for(&job.election, &s3)
    })?;
    #[allow(unused_mut)]
    let mut claim = SlotClaim::new(&job, slot, nonce);
    #[cfg(feature = "mutations")]
    claim.set_mutation(mutant::compiled_in());
    let io = Io::new(s3, &job);
    protocol::drive(&mut claim, now, |r| io.exchange(r));
    match claim.result() {
        Some(Ok(Claim::Won)) => Ok(api::SlotClaim {
            won: true,
            holder: job.node_id,
            slot,
        }),
        Some(Ok(Claim::Lost { holder, slot })) => Ok(api::SlotClaim {
            won: false,
            holder: holder.clone(),
            slot: *slot,
        }),
        Some(Err(e)) => Err(to_wit(e.clone())),
        None => Err(to_wit(Error::Transport("slot claim did not settle".into()))),
    }
}

pub struct ElectorResource {
    inner: RefCell<Driver>,
}

/// Owns an elector and does its IO.
struct Driver {
    core: Core,
    io: Io,
}

impl api::GuestElector for ElectorResource {
    fn open(s3: api::S3Config, election: api::ElectionConfig) -> Result<api::Elector, api::Error> {
        Self::open_with(
            s3,
            election,
            api::Options {
                longest_lease_ms: None,
            },
        )
    }

    fn open_with(
        s3: api::S3Config,
        election: api::ElectionConfig,
        options: api::Options,
    ) -> Result<api::Elector, api::Error> {
        let s3 = valid_s3(s3)?;
        let mut election = election_config(election, &s3);
        election.timings.longest_lease = options
            .longest_lease_ms
            .map_or(election.timings.lease, |ms| {
                Duration::from_millis(u64::from(ms))
            });
        let election = valid(election)?;
        Ok(api::Elector::new(ElectorResource {
            inner: RefCell::new(Driver::new(s3, election)),
        }))
    }

    fn lease_state(&self) -> api::LeaseState {
        lease_state_to_wit(self.inner.borrow().core.lease_view(now()))
    }

    fn notices(&self) -> Vec<api::Notice> {
        let status = self.inner.borrow().core.status(now());
        status.problems.into_iter().map(notice_to_wit).collect()
    }

    fn tick(&self) -> Result<api::Status, api::Error> {
        // A component that traps on purpose, to test how hosts report traps (never built
        // outside `make test`: the feature is off in a release).
        #[cfg(feature = "mutations")]
        if option_env!("S3E_MUTATION") == Some("trap-on-tick") {
            unreachable!("trap-on-tick: a trap on purpose");
        }
        self.inner.borrow_mut().call_for_status(CallKind::Tick)
    }

    fn status(&self) -> api::Status {
        status_to_wit(self.inner.borrow().core.status(now()))
    }

    fn resign(&self) -> Result<api::Status, api::Error> {
        self.inner.borrow_mut().call_for_status(CallKind::Resign)
    }

    fn leave(&self) -> Result<api::Status, api::Error> {
        self.inner.borrow_mut().call_for_status(CallKind::Leave)
    }

    fn query_leader(&self) -> Result<Option<api::LeaderInfo>, api::Error> {
        match self.inner.borrow_mut().call(CallKind::Query)? {
            Reply::Leader(leader) => Ok(leader.map(leader_to_wit)),
            Reply::Status(status) => Ok(status.leader.map(leader_to_wit)),
        }
    }

    fn set_credentials(&self, credentials: api::Credentials) {
        let mut d = self.inner.borrow_mut();
        let (key, secret, token) = credentials_of(credentials);
        d.io.s3.access_key_id = key;
        d.io.s3.secret_access_key = secret;
        d.io.s3.session_token = token;
    }
}

impl Driver {
    fn new(s3: S3Config, election: ElectionConfig) -> Driver {
        #[allow(unused_mut)]
        let mut core = Core::new(
            election.clone(),
            now(),
            wasi::random::random::get_random_u64(),
        );
        #[cfg(feature = "mutations")]
        core.set_mutation(mutant::compiled_in());
        Driver {
            io: Io::new(s3, &election),
            core,
        }
    }

    /// One call, driven to its end.
    fn call(&mut self, kind: CallKind) -> Result<Reply, api::Error> {
        self.core.begin(kind, now());
        let io = &self.io;
        protocol::drive(&mut self.core, now, |r| io.exchange(r));
        self.core.finish(now()).map_err(to_wit)
    }

    fn call_for_status(&mut self, kind: CallKind) -> Result<api::Status, api::Error> {
        match self.call(kind)? {
            Reply::Status(status) => Ok(status_to_wit(status)),
            Reply::Leader(_) => Ok(status_to_wit(self.core.status(now()))),
        }
    }
}

/// Where requests go and how they are signed.
struct Io {
    s3: S3Config,
    keys: Keys,
    request_timeout: Duration,
}

impl Io {
    fn new(s3: S3Config, election: &ElectionConfig) -> Io {
        Io {
            s3,
            keys: election.keys(),
            request_timeout: election.timings.request_timeout,
        }
    }

    /// Sign, send and classify one request.
    fn exchange(&self, request: &Request) -> Outcome {
        let wall = wall_clock::now();
        let unix_ms = wall
            .seconds
            .saturating_mul(1000)
            .saturating_add(u64::from(wall.nanoseconds / 1_000_000));
        let http_request = match s3::build(&self.s3, &self.keys, request, s3::system_time(unix_ms))
        {
            Ok(r) => r,
            Err(e) => return Outcome::Fatal(e),
        };
        match send(&http_request, self.request_timeout) {
            Ok(response) => s3::classify(request, &response, &self.s3.bucket),
            Err(e) => Outcome::Transient(e),
        }
    }
}

fn now() -> Instant {
    Instant::from_nanos(monotonic_clock::now())
}

/// 128 random bits as hex: a slot claim's nonce, a probe's scratch name.
fn random_nonce() -> String {
    let random = wasi::random::random::get_random_u64;
    format!("{:016x}{:016x}", random(), random())
}

/// Mutant components (`make mutants`): one protocol bug compiled in, named by `S3E_MUTATION`
/// at build time, to show that the integration tests catch it on a real store. Never in a
/// release: the `mutations` feature is off there.
#[cfg(feature = "mutations")]
mod mutant {
    use crate::mutation::Mutation;

    pub fn compiled_in() -> Option<Mutation> {
        Mutation::parse(option_env!("S3E_MUTATION")?)
    }
}

// ----- wasi:http ---------------------------------------------------------------------------------

/// The deadline passed.
#[derive(Debug, PartialEq, Eq)]
struct Late;

/// Write `bytes` as the request body and finish it. `Ok` also when the stream refused the
/// bytes (the store answered early and closed it): the answer tells what happened.
fn write_body(body: http::OutgoingBody, bytes: &[u8], deadline: u64) -> Result<(), Late> {
    let mut refused = false;
    if let Ok(stream) = body.write() {
        let mut rest = bytes;
        while !rest.is_empty() {
            if !ready_by(&stream.subscribe(), deadline) {
                return Err(Late);
            }
            let Ok(room) = stream.check_write() else {
                refused = true;
                break;
            };
            let n = usize::try_from(room).unwrap_or(usize::MAX).min(rest.len());
            let (chunk, tail) = rest.split_at(n);
            if stream.write(chunk).is_err() {
                refused = true;
                break;
            }
            rest = tail;
        }
        // An empty body (GET, DELETE with `Content-Length: 0`) is closed as soon as it is
        // opened: there is nothing to flush.
        if !refused && !bytes.is_empty() {
            refused = stream.flush().is_err();
            if !refused && !ready_by(&stream.subscribe(), deadline) {
                return Err(Late);
            }
        }
    }
    if !refused {
        let _ = http::OutgoingBody::finish(body, None);
    }
    Ok(())
}

/// Waits for `pollable` until the monotonic clock reaches `deadline`; false if it did not
/// become ready in time.
fn ready_by(pollable: &Pollable, deadline: u64) -> bool {
    if pollable.ready() {
        return true;
    }
    let timer = monotonic_clock::subscribe_instant(deadline);
    let ready = poll::poll(&[pollable, &timer]);
    ready.contains(&0)
}

/// Send one request and read the whole answer (at most `s3::MAX_BODY_BYTES`), all within one
/// deadline: a store that dribbles its answer, or never finishes it, costs at most `timeout`.
fn send(request: &HttpRequest, timeout: Duration) -> Result<HttpResponse, Error> {
    let transport = |what: &str, detail: String| Error::Transport(format!("{what}: {detail}"));
    let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    let deadline = monotonic_clock::now().saturating_add(nanos);
    let late = || {
        Error::Transport(format!(
            "no complete answer within the request timeout ({} ms)",
            timeout.as_millis()
        ))
    };
    let headers = http::Fields::new();
    for (name, value) in &request.headers {
        headers
            .append(name, value.as_bytes())
            .map_err(|e| transport("header refused by the runtime", format!("{name}: {e:?}")))?;
    }
    let outgoing = http::OutgoingRequest::new(headers);
    let method = match request.method {
        Method::Get => http::Method::Get,
        Method::Put => http::Method::Put,
        Method::Delete => http::Method::Delete,
    };
    let scheme = if request.https {
        http::Scheme::Https
    } else {
        http::Scheme::Http
    };
    // These only fail on values the runtime cannot represent; the request then fails below.
    let _ = outgoing.set_method(&method);
    let _ = outgoing.set_scheme(Some(&scheme));
    let _ = outgoing.set_authority(Some(&request.authority));
    let _ = outgoing.set_path_with_query(Some(&request.path));

    // The runtime's own timeouts too, so that it gives up on its side as well.
    let options = http::RequestOptions::new();
    let _ = options.set_connect_timeout(Some(nanos));
    let _ = options.set_first_byte_timeout(Some(nanos));
    let _ = options.set_between_bytes_timeout(Some(nanos));

    let body = outgoing
        .body()
        .map_err(|_| transport("request body", "unavailable".into()))?;
    let pending = outgoing_handler::handle(outgoing, Some(options))
        .map_err(|e| transport("request refused", format!("{e:?}")))?;
    // A store may answer (a 412, say) before it has read the body, and close it: a failed
    // body write is not the outcome. The answer is, or its absence.
    let written = write_body(body, &request.body, deadline);
    if written == Err(Late) {
        return Err(late());
    }
    if !ready_by(&pending.subscribe(), deadline) {
        return Err(late());
    }
    let response = match pending.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(code))) => return Err(transport("no answer", http_error(&code))),
        Some(Err(())) | None => return Err(transport("no answer", "response lost".into())),
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|_| transport("answer body", "unavailable".into()))?;
    let mut bytes = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|_| transport("answer body", "no stream".into()))?;
        loop {
            if !ready_by(&stream.subscribe(), deadline) {
                return Err(late());
            }
            match stream.read(16 * 1024) {
                Ok(chunk) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > s3::MAX_BODY_BYTES {
                        return Err(Error::BadAnswer(format!(
                            "answer body larger than {} bytes",
                            s3::MAX_BODY_BYTES
                        )));
                    }
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(transport("reading answer body", e.to_debug_string()))
                }
            }
        }
    }
    drop(incoming);
    Ok(HttpResponse {
        status,
        headers,
        body: bytes,
    })
}

/// The common ways a request fails, in words (the rest by name only: `Debug` for all of
/// `ErrorCode` would cost kilobytes of the component).
fn http_error(code: &http::ErrorCode) -> String {
    use http::ErrorCode as E;
    match code {
        E::DnsTimeout => "DNS timeout".into(),
        E::DnsError(e) => format!("DNS error {}", e.rcode.as_deref().unwrap_or("")),
        E::DestinationNotFound => "destination not found".into(),
        E::DestinationUnavailable => "destination unavailable".into(),
        E::DestinationIpUnroutable => "destination unroutable".into(),
        E::ConnectionRefused => "connection refused".into(),
        E::ConnectionTerminated => "connection terminated".into(),
        E::ConnectionTimeout => "connection timeout".into(),
        E::ConnectionReadTimeout => "read timeout".into(),
        E::ConnectionWriteTimeout => "write timeout".into(),
        E::TlsCertificateError => "TLS certificate error".into(),
        E::TlsProtocolError => "TLS protocol error".into(),
        E::HttpRequestDenied => {
            "request denied by the runtime (is the store's host allowed?)".into()
        }
        E::HttpResponseTimeout => "response timeout".into(),
        E::HttpProtocolError => "HTTP protocol error".into(),
        E::InternalError(why) => format!("runtime error {}", why.as_deref().unwrap_or("")),
        _ => "request failed in the runtime".into(),
    }
}

// ----- WIT <-> crate types -----------------------------------------------------------------------

fn valid_s3(c: api::S3Config) -> Result<S3Config, api::Error> {
    let (access_key_id, secret_access_key, session_token) = credentials_of(c.credentials);
    let s3 = S3Config {
        endpoint: c.endpoint,
        region: c.region,
        bucket: c.bucket,
        path_style: c.path_style,
        access_key_id,
        secret_access_key,
        session_token,
        unquoted_etags: c.unquoted_etags,
    };
    s3.validate().map_err(|e| to_wit(Error::InvalidConfig(e)))?;
    Ok(s3)
}

fn credentials_of(c: api::Credentials) -> (String, Secret, Option<Secret>) {
    (
        c.access_key_id,
        Secret::new(c.secret_access_key),
        c.session_token.map(Secret::new),
    )
}

fn valid(config: ElectionConfig) -> Result<ElectionConfig, api::Error> {
    config
        .validate()
        .map_err(|e| to_wit(Error::InvalidConfig(e)))?;
    Ok(config)
}

/// An election config with all defaults (and no node id yet).
fn config_for(election: &api::ElectionRef, s3: &S3Config) -> ElectionConfig {
    let timings = Timings::default();
    ElectionConfig {
        name: election.name.clone(),
        node_id: String::new(),
        key_prefix: election.key_prefix.clone(),
        timings,
        metadata: String::new(),
        stateless: false,
        probe_store: false,
        quorum: QuorumSettings::resolve(None, timings.lease),
        etag_form: EtagForm::from_unquoted(s3.unquoted_etags),
    }
}

fn election_config(c: api::ElectionConfig, s3: &S3Config) -> ElectionConfig {
    let timings = c
        .timings
        .map_or_else(TimingSettings::default, |t| TimingSettings {
            lease_ms: t.lease_ms,
            renew_deadline_ms: t.renew_deadline_ms,
            retry_period_ms: t.retry_period_ms,
            renew_interval_ms: t.renew_interval_ms,
            grace_ms: t.grace_ms,
            max_drift_ppm: t.max_drift_ppm,
            request_timeout_ms: t.request_timeout_ms,
            store_clock_skew_ms: t.store_clock_skew_ms,
            longest_lease_ms: None,
        });
    let timings = timings.resolve();
    let quorum = c.quorum.map(|q| QuorumSettings {
        size: q.size,
        heartbeat_interval_ms: q.heartbeat_interval_ms,
        member_ttl_ms: q.member_ttl_ms,
        grace_ms: q.grace_ms,
    });
    ElectionConfig {
        node_id: c.node_id,
        metadata: c.metadata,
        stateless: c.stateless,
        probe_store: c.probe_store,
        timings,
        quorum: QuorumSettings::resolve(quorum.as_ref(), timings.lease),
        ..config_for(&c.election, s3)
    }
}

fn status_to_wit(status: core::Status) -> api::Status {
    api::Status {
        role: match status.role {
            core::Role::Leader => api::Role::Leader,
            core::Role::Follower => api::Role::Follower,
        },
        leader: status.leader.map(leader_to_wit),
        fencing_token: status.fencing_token,
        valid_ms: u64::try_from(status.valid_for.as_millis()).unwrap_or(u64::MAX),
        next_tick_ms: u64::try_from(status.next_step_in.as_millis()).unwrap_or(u64::MAX),
        events: status.events.into_iter().map(event_to_wit).collect(),
        last_error: status.last_error.map(to_wit),
        requests: status.requests,
        members: status.members.into_iter().map(member_to_wit).collect(),
        // 0.2.0's `problem` names one; `notices` (0.2.1) lists them all.
        problems: status
            .problems
            .into_iter()
            .filter_map(|p| match p {
                core::Problem::DuplicateNodeId => Some(api::Problem::DuplicateNodeId),
                _ => None,
            })
            .collect(),
    }
}

fn notice_to_wit(p: core::Problem) -> api::Notice {
    match p {
        core::Problem::DuplicateNodeId => api::Notice::DuplicateNodeId,
        core::Problem::StoreNeedsUnquotedEtags => api::Notice::StoreNeedsUnquotedEtags,
        core::Problem::OpenedOnAnExpiredLease => api::Notice::OpenedOnAnExpiredLease,
    }
}

fn lease_state_to_wit(view: core::LeaseView) -> api::LeaseState {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    match view {
        core::LeaseView::Unknown => api::LeaseState::Unknown,
        core::LeaseView::Missing => api::LeaseState::Missing,
        core::LeaseView::Held { leader, live } => api::LeaseState::Held(api::HeldLease {
            leader: leader_to_wit(leader),
            live,
        }),
        core::LeaseView::Released { by } => api::LeaseState::Released(leader_to_wit(by)),
        core::LeaseView::Vacant { wait, lease } => api::LeaseState::Vacant(api::Vacancy {
            wait_ms: ms(wait),
            lease_ms: ms(lease),
        }),
    }
}

fn member_to_wit(m: crate::record::MemberInfo) -> api::MemberInfo {
    api::MemberInfo {
        node_id: m.node_id,
        metadata: m.metadata,
        fresh: m.fresh,
        age_ms: m.age_ms,
        problem: m.problem,
    }
}

fn leader_to_wit(l: core::LeaderInfo) -> api::LeaderInfo {
    api::LeaderInfo {
        node_id: l.node_id,
        term: l.term,
        metadata: l.metadata,
    }
}

fn event_to_wit(e: core::Event) -> api::Event {
    match e {
        core::Event::Elected { term } => api::Event::Elected(term),
        core::Event::Demoted { term, reason } => api::Event::Demoted(api::Demotion {
            term,
            reason: match reason {
                core::DemoteReason::RenewDeadlineExceeded => {
                    api::DemoteReason::RenewDeadlineExceeded
                }
                core::DemoteReason::LeaseLost { holder } => api::DemoteReason::LeaseLost(holder),
                core::DemoteReason::Resigned => api::DemoteReason::Resigned,
                core::DemoteReason::Error => api::DemoteReason::Error,
                core::DemoteReason::QuorumLost => api::DemoteReason::QuorumLost,
            },
        }),
        core::Event::QuorumLost { fresh, needed } => {
            api::Event::QuorumLost(api::QuorumCount { fresh, needed })
        }
        core::Event::QuorumRestored { fresh } => api::Event::QuorumRestored(fresh),
        core::Event::LeaderChanged { leader } => {
            api::Event::LeaderChanged(leader.map(leader_to_wit))
        }
    }
}

fn to_wit(e: Error) -> api::Error {
    let store = |status: u16, code: String, message: String| api::StoreError {
        status,
        code,
        message,
    };
    match e {
        Error::InvalidConfig(c) => api::Error::InvalidConfig(api::ConfigError {
            field: c.field.to_string(),
            problem: c.problem,
        }),
        Error::AccessDenied { code, message } => {
            api::Error::AccessDenied(store(403, code, message))
        }
        Error::BucketMissing { bucket } => api::Error::BucketMissing(bucket),
        e @ Error::ForeignRecord { .. } => api::Error::ForeignRecord(e.to_string()),
        Error::ConditionalWritesUnsupported(why) => api::Error::ConditionalWritesUnsupported(why),
        Error::Transport(why) => api::Error::Transport(why),
        Error::BadAnswer(why) => api::Error::BadAnswer(why),
        Error::Store {
            status,
            code,
            message,
        } => api::Error::Store(store(status, code, message)),
    }
}
