//! An edge worker that takes part in a leader election: a wasi:http incoming handler that
//! imports the s3-election interface (filled in by `wac plug` with the real component).
//!
//! Every request gets a fresh instance, so the worker elects in stateless mode: the lease and
//! the store's clock are all it knows.
//!
//! - `GET /`      who leads, am I the leader, which term (reads the lease, never writes)
//! - `POST /tick` one election step: acquire the lease if it is free, renew it if this node
//!   holds it (a cron trigger calls this every few seconds)
//!
//! Configuration comes from the environment (`wasmtime serve --env NAME=VALUE`):
//! `AWS_ENDPOINT_URL_S3`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `S3E_BUCKET`, `S3E_NODE_ID`, `S3E_ELECTION` (default `edge`),
//! `S3E_PREFIX`, `S3E_LEASE_MS`, `S3E_UNQUOTED_ETAGS` (`true` for Ceph RGW).

wit_bindgen::generate!({
    world: "s3-election:edge-worker/edge-worker",
    path: ["../../wit", "wit"],
    generate_all,
});

use exports::wasi::http::incoming_handler::Guest;
use s3_election::election::election::{self as election, Elector, Role};
use wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Worker;
export!(Worker);

impl Guest for Worker {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let (status, body) = match (request.method(), path.as_str()) {
            (Method::Get, "/") => report(),
            (Method::Post, "/tick") => tick(),
            _ => (404, r#"{"error":"try GET / or POST /tick"}"#.to_string()),
        };
        respond(response_out, status, &body);
    }
}

/// Who leads, without writing anything.
fn report() -> (u16, String) {
    let (s3, config) = match config() {
        Ok(c) => c,
        Err(e) => return (500, error_json(&e)),
    };
    let me = config.node_id.clone();
    let answer = Elector::open(&s3, &config).and_then(|elector| elector.query_leader());
    match answer {
        Ok(leader) => (
            200,
            format!(
                r#"{{"node":{},"is_leader":{},"leader":{},"term":{},"metadata":{}}}"#,
                json_string(&me),
                leader.as_ref().is_some_and(|l| l.node_id == me),
                leader
                    .as_ref()
                    .map_or("null".into(), |l| json_string(&l.node_id)),
                leader
                    .as_ref()
                    .map_or("null".into(), |l| l.term.to_string()),
                leader
                    .as_ref()
                    .map_or("null".into(), |l| json_string(&l.metadata)),
            ),
        ),
        Err(e) => (502, error_json(&describe(&e))),
    }
}

/// One election step for this node.
fn tick() -> (u16, String) {
    let (s3, config) = match config() {
        Ok(c) => c,
        Err(e) => return (500, error_json(&e)),
    };
    let me = config.node_id.clone();
    match Elector::open(&s3, &config).and_then(|elector| elector.tick()) {
        Ok(status) => (
            200,
            format!(
                r#"{{"node":{},"is_leader":{},"leader":{},"term":{},"valid_ms":{}}}"#,
                json_string(&me),
                status.role == Role::Leader,
                status
                    .leader
                    .as_ref()
                    .map_or("null".into(), |l| json_string(&l.node_id)),
                status
                    .leader
                    .as_ref()
                    .map_or("null".into(), |l| l.term.to_string()),
                status.valid_ms,
            ),
        ),
        Err(e) => (502, error_json(&describe(&e))),
    }
}

fn config() -> Result<(election::S3Config, election::ElectionConfig), String> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let optional = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let lease_ms = match optional("S3E_LEASE_MS") {
        Some(v) => Some(
            v.parse::<u32>()
                .map_err(|_| format!("S3E_LEASE_MS is not a number: {v}"))?,
        ),
        None => None,
    };
    let s3 = election::S3Config {
        endpoint: var("AWS_ENDPOINT_URL_S3")?,
        region: optional("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
        bucket: var("S3E_BUCKET")?,
        path_style: true,
        access_key_id: var("AWS_ACCESS_KEY_ID")?,
        secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
        session_token: optional("AWS_SESSION_TOKEN"),
        unquoted_etags: optional("S3E_UNQUOTED_ETAGS").is_some_and(|v| v == "true"),
    };
    let config = election::ElectionConfig {
        name: optional("S3E_ELECTION").unwrap_or_else(|| "edge".into()),
        node_id: var("S3E_NODE_ID")?,
        key_prefix: optional("S3E_PREFIX").unwrap_or_default(),
        lease_ms,
        renew_deadline_ms: None,
        retry_period_ms: None,
        renew_interval_ms: None,
        grace_ms: None,
        max_drift_ppm: None,
        request_timeout_ms: None,
        metadata: String::new(),
        // A fresh instance per request: nothing survives between ticks.
        stateless: true,
        quorum: None,
        heartbeat_interval_ms: None,
        member_ttl_ms: None,
        quorum_grace_ms: None,
        probe_store: None,
    };
    Ok((s3, config))
}

/// The error's kind and detail; the component never puts secrets in errors.
fn describe(e: &election::Error) -> String {
    use election::Error as E;
    match e {
        E::InvalidConfig(c) => format!("invalid-config: {}: {}", c.field, c.problem),
        E::AccessDenied(s) => format!("access-denied: {} {}: {}", s.status, s.code, s.message),
        E::Store(s) => format!("store: {} {}: {}", s.status, s.code, s.message),
        E::BucketMissing(b) => format!("bucket-missing: {b}"),
        E::ForeignRecord(w) => format!("foreign-record: {w}"),
        E::ConditionalWritesUnsupported(w) => format!("conditional-writes-unsupported: {w}"),
        E::Transport(w) => format!("transport: {w}"),
    }
}

fn error_json(message: &str) -> String {
    format!(r#"{{"error":{}}}"#, json_string(message))
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn respond(out: ResponseOutparam, status: u16, body: &str) {
    let headers = Fields::new();
    let _ = headers.set("content-type", &[b"application/json".to_vec()]);
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        let _ = stream.blocking_write_and_flush(body.as_bytes());
    }
    let _ = OutgoingBody::finish(outgoing, None);
}
