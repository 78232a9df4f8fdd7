//! The WIT exports: thin glue that drives the sans-IO core with wasi:http, wasi:clocks and
//! wasi:random. Nothing here decides anything about the election.

use crate::config::{ElectionConfig, Keys, S3Config, Secret, Timings};
use crate::core::{self, Elector as Core, MAX_REQUESTS_PER_TICK};
use crate::error::Error;
use crate::members::QuorumConfig;
use crate::probe::{Probe, MAX_PROBE_REQUESTS};
use crate::protocol::{Outcome, Request};
use crate::s3::{self, HttpRequest, HttpResponse, Method};
use crate::slot::{Claim, SlotClaim, MAX_SLOT_REQUESTS};
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
use wasi::io::streams::StreamError;

struct Component;
export!(Component);

impl api::Guest for Component {
    type Elector = ElectorResource;

    fn claim_slot(
        s3: api::S3Config,
        job: api::ElectionConfig,
        slot: u64,
    ) -> Result<api::SlotClaim, api::Error> {
        let (s3, job) = (s3_config(s3), election_config(job));
        s3.validate().map_err(|e| to_wit(Error::InvalidConfig(e)))?;
        job.validate()
            .map_err(|e| to_wit(Error::InvalidConfig(e)))?;
        let random = wasi::random::random::get_random_u64;
        let mut claim = SlotClaim::new(&job, slot, format!("{:016x}{:016x}", random(), random()));
        let keys = job.keys();
        for _ in 0..MAX_SLOT_REQUESTS {
            let Some(request) = claim.poll_request() else {
                break;
            };
            claim.handle_response(exchange(&s3, &keys, job.timings.request_timeout, &request));
        }
        claim.abandon(Error::Transport("slot claim did not settle".into()));
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

    fn probe_store(
        s3: api::S3Config,
        election: api::ElectionConfig,
    ) -> Result<api::StoreProfile, api::Error> {
        let (s3, election) = (s3_config(s3), election_config(election));
        s3.validate().map_err(|e| to_wit(Error::InvalidConfig(e)))?;
        election
            .validate()
            .map_err(|e| to_wit(Error::InvalidConfig(e)))?;
        let keys = election.keys();
        let mut probe = Probe::new();
        for _ in 0..MAX_PROBE_REQUESTS {
            let Some(request) = probe.poll_request() else {
                break;
            };
            let (status, outcome) =
                exchange_raw(&s3, &keys, election.timings.request_timeout, &request);
            if let (
                Request::PutProbe {
                    missing_key: true, ..
                },
                Some(status),
            ) = (&request, status)
            {
                probe.saw_missing_key_status(status);
            }
            probe.handle_response(outcome);
        }
        match probe.result() {
            Some(Ok(p)) => Ok(api::StoreProfile {
                unquoted_etags: p.unquoted_etags,
                missing_key_is_404: p.missing_key_is_404,
            }),
            Some(Err(e)) => Err(to_wit(e.clone())),
            None => Err(to_wit(Error::Transport("the probe did not finish".into()))),
        }
    }
}

pub struct ElectorResource {
    inner: RefCell<Driver>,
}

/// Owns the core and does its IO.
struct Driver {
    core: Core,
    s3: S3Config,
    keys: Keys,
    request_timeout: Duration,
}

impl api::GuestElector for ElectorResource {
    fn open(s3: api::S3Config, election: api::ElectionConfig) -> Result<api::Elector, api::Error> {
        let s3 = s3_config(s3);
        let election = election_config(election);
        s3.validate().map_err(|e| to_wit(Error::InvalidConfig(e)))?;
        election
            .validate()
            .map_err(|e| to_wit(Error::InvalidConfig(e)))?;
        let driver = Driver {
            keys: election.keys(),
            request_timeout: election.timings.request_timeout,
            core: Core::new(election, now(), wasi::random::random::get_random_u64()),
            s3,
        };
        Ok(api::Elector::new(ElectorResource {
            inner: RefCell::new(driver),
        }))
    }

    fn tick(&self) -> Result<api::Status, api::Error> {
        let mut d = self.inner.borrow_mut();
        let requests = d.step();
        d.finish(requests)
    }

    fn resign(&self) -> Result<api::Status, api::Error> {
        let mut d = self.inner.borrow_mut();
        d.core.resign(now());
        d.finish_release()
    }

    fn leave(&self) -> Result<api::Status, api::Error> {
        let mut d = self.inner.borrow_mut();
        d.core.leave(now());
        d.finish_release()
    }

    fn query_leader(&self) -> Result<Option<api::LeaderInfo>, api::Error> {
        let mut d = self.inner.borrow_mut();
        d.core.query();
        // Only the query's own requests (the probe if it has not run, then one read): no
        // takeover, renewal or heartbeat goes out on a query.
        d.send_while(MAX_PROBE_REQUESTS + 1, Core::query_pending);
        if let Some(e) = d.core.take_error() {
            return Err(to_wit(e));
        }
        if d.core.query_pending() {
            return Err(to_wit(Error::Transport(
                "the query could not read the lease".into(),
            )));
        }
        Ok(d.core.queried_leader(now()).map(leader_to_wit))
    }
}

impl Driver {
    /// After resign or leave: send the release, and say whether it was confirmed.
    fn finish_release(&mut self) -> Result<api::Status, api::Error> {
        let requests = self.step();
        if self.core.release_pending() {
            let why = self.core.status(now()).last_error;
            return Err(to_wit(why.unwrap_or_else(|| {
                Error::Transport("release could not be confirmed".into())
            })));
        }
        self.finish(requests)
    }

    /// The documented call order of the core, with real IO. Returns the number of requests.
    fn step(&mut self) -> u32 {
        self.core.handle_timeout(now());
        self.send_while(MAX_REQUESTS_PER_TICK, |_| true)
    }

    /// Send what the core asks for, at most `limit` requests, while `more` holds.
    fn send_while(&mut self, limit: usize, more: impl Fn(&Core) -> bool) -> u32 {
        let mut sent = 0;
        while sent < limit && more(&self.core) {
            let Some(request) = self.core.poll_request(now()) else {
                break;
            };
            sent += 1;
            let outcome = self.exchange(&request);
            self.core.handle_response(now(), outcome);
            if self.core.store_profile().is_some_and(|p| p.unquoted_etags) {
                self.s3.unquoted_etags = true; // the probe found the store needs bare ETags
            }
        }
        sent as u32
    }

    fn exchange(&self, request: &Request) -> Outcome {
        exchange(&self.s3, &self.keys, self.request_timeout, request)
    }

    fn finish(&mut self, requests: u32) -> Result<api::Status, api::Error> {
        if let Some(e) = self.core.take_error() {
            // Events stay queued for the next successful call.
            return Err(to_wit(e));
        }
        let now = now();
        let status = self.core.status(now);
        let events = std::iter::from_fn(|| self.core.poll_event())
            .map(event_to_wit)
            .collect();
        Ok(api::Status {
            role: match status.role {
                core::Role::Leader => api::Role::Leader,
                core::Role::Follower => api::Role::Follower,
            },
            leader: status.leader.map(leader_to_wit),
            fencing_token: status.fencing_token,
            valid_ms: status.valid_for.as_millis() as u64,
            next_tick_ms: status.next_step_in.as_millis() as u64,
            events,
            last_error: status.last_error.map(to_wit),
            requests,
            members: status.members.into_iter().map(member_to_wit).collect(),
        })
    }
}

fn now() -> Instant {
    Instant::from_nanos(monotonic_clock::now())
}

/// Sign, send and classify one request.
fn exchange(s3: &S3Config, keys: &Keys, timeout: Duration, request: &Request) -> Outcome {
    exchange_raw(s3, keys, timeout, request).1
}

/// [`exchange`], also returning the HTTP status when an answer came.
fn exchange_raw(
    s3: &S3Config,
    keys: &Keys,
    timeout: Duration,
    request: &Request,
) -> (Option<u16>, Outcome) {
    let wall = wall_clock::now();
    let unix_ms = wall.seconds * 1000 + u64::from(wall.nanoseconds / 1_000_000);
    let http_request = match s3::build(s3, keys, request, s3::system_time(unix_ms)) {
        Ok(r) => r,
        Err(e) => return (None, Outcome::Fatal(e)),
    };
    match send(&http_request, timeout) {
        Ok(response) => (
            Some(response.status),
            s3::classify(request, &response, &s3.bucket),
        ),
        Err(e) => (None, Outcome::Transient(e)),
    }
}

// ----- wasi:http ---------------------------------------------------------------------------------

/// Send one request and read the whole answer (bounded), with timeouts on every phase.
fn send(request: &HttpRequest, timeout: Duration) -> Result<HttpResponse, Error> {
    let transport = |what: &str, detail: String| Error::Transport(format!("{what}: {detail}"));
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

    let options = http::RequestOptions::new();
    let nanos = timeout.as_nanos() as u64;
    let _ = options.set_connect_timeout(Some(nanos));
    let _ = options.set_first_byte_timeout(Some(nanos));
    let _ = options.set_between_bytes_timeout(Some(nanos));

    let body = outgoing
        .body()
        .map_err(|_| transport("request body", "unavailable".into()))?;
    let pending = outgoing_handler::handle(outgoing, Some(options))
        .map_err(|e| transport("request refused", format!("{e:?}")))?;
    {
        let stream = body
            .write()
            .map_err(|_| transport("request body", "no stream".into()))?;
        for chunk in request.body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| transport("writing request body", format!("{e:?}")))?;
        }
    }
    http::OutgoingBody::finish(body, None)
        .map_err(|e| transport("finishing request body", format!("{e:?}")))?;

    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(code))) => return Err(transport("no answer", format!("{code:?}"))),
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
            match stream.blocking_read(16 * 1024) {
                Ok(chunk) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > s3::MAX_BODY_BYTES {
                        return Err(transport("answer body", "too large".into()));
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

// ----- WIT <-> crate types -----------------------------------------------------------------------

fn s3_config(c: api::S3Config) -> S3Config {
    S3Config {
        endpoint: c.endpoint,
        region: c.region,
        bucket: c.bucket,
        path_style: c.path_style,
        access_key_id: c.access_key_id,
        secret_access_key: Secret::new(c.secret_access_key),
        session_token: c.session_token.map(Secret::new),
        unquoted_etags: c.unquoted_etags,
    }
}

fn election_config(c: api::ElectionConfig) -> ElectionConfig {
    let ms = |v: u32| Duration::from_millis(u64::from(v));
    let mut t = Timings::for_lease(c.lease_ms.map_or(Timings::default().lease, ms));
    if let Some(v) = c.renew_deadline_ms {
        t.renew_deadline = ms(v);
    }
    if let Some(v) = c.retry_period_ms {
        t.retry_period = ms(v);
        if c.request_timeout_ms.is_none() {
            t.request_timeout = ms(v);
        }
    }
    if let Some(v) = c.renew_interval_ms {
        t.renew_interval = ms(v);
    }
    if let Some(v) = c.grace_ms {
        t.grace = ms(v);
    }
    if let Some(v) = c.max_drift_ppm {
        t.max_drift_ppm = v;
    }
    if let Some(v) = c.request_timeout_ms {
        t.request_timeout = ms(v);
    }
    let mut quorum = QuorumConfig::disabled_for_lease(t.lease);
    if let Some(v) = c.quorum {
        quorum.size = v;
    }
    if let Some(v) = c.heartbeat_interval_ms {
        quorum.heartbeat_interval = ms(v);
        if c.member_ttl_ms.is_none() {
            quorum.member_ttl = (ms(v) * 3).max(Duration::from_secs(3));
        }
    }
    if let Some(v) = c.member_ttl_ms {
        quorum.member_ttl = ms(v);
    }
    if let Some(v) = c.quorum_grace_ms {
        quorum.grace = ms(v);
    }
    ElectionConfig {
        name: c.name,
        node_id: c.node_id,
        key_prefix: c.key_prefix,
        timings: t,
        metadata: c.metadata,
        stateless: c.stateless,
        probe_store: c.probe_store.unwrap_or(false),
        quorum,
    }
}

fn member_to_wit(m: crate::members::MemberInfo) -> api::MemberInfo {
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
        Error::BadAnswer(why) => api::Error::Store(store(0, "BadAnswer".into(), why)),
        Error::Store {
            status,
            code,
            message,
        } => api::Error::Store(store(status, code, message)),
    }
}
