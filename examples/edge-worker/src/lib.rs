//! An edge worker that takes part in a leader election: a wasi:http incoming handler that
//! imports the s3-election interface through the s3-election-sdk crate.
//!
//! Every request gets a fresh instance, so the worker elects in stateless mode: the lease and
//! the store's clock are all it knows. Each replica of the worker is one node: give each its
//! own `S3E_NODE_ID` (its host name, say); invocations of one replica share it.
//!
//! - `GET /`      who leads (one read, never a write, no node id needed)
//! - `POST /tick` one election step for this replica: acquire the lease if it is free, renew
//!   it if this replica holds it (a cron trigger or load balancer calls this every few
//!   seconds). `is_leader` says whether this call may act as leader, for `valid_ms`.
//!
//! A failed step is an error (HTTP 5xx with the typed error), never "nobody leads".
//! Settings: environment variables, see [`s3_election_sdk::Settings`] (or wasi:config/store
//! with the `wasi-config` feature, for `wasmtime serve -S config`; or Spin variables with the
//! `spin` feature, whose names are the same in lower case: `s3e_node_id`).

#[cfg(not(any(feature = "wasi-config", feature = "spin")))]
wit_bindgen::generate!({
    world: "s3-election:edge-worker/edge-worker",
    path: ["../../wit", "wit"],
    generate_all,
});

#[cfg(all(feature = "wasi-config", not(feature = "spin")))]
wit_bindgen::generate!({
    world: "s3-election:edge-worker/edge-worker-config",
    path: ["../../wit", "wit"],
    generate_all,
});

#[cfg(feature = "spin")]
wit_bindgen::generate!({
    world: "s3-election:edge-worker/edge-worker-spin",
    path: ["../../wit", "wit"],
    generate_all,
});

use exports::wasi::http::incoming_handler::Guest;
use s3_election_sdk::{self as sdk, Election, ElectionRef, Role, Settings};
use std::collections::HashMap;
use wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Worker;
export!(Worker);

impl Guest for Worker {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let (status, body) = match (request.method(), path.as_str()) {
            (Method::Get, "/") => who_leads(),
            (Method::Post, "/tick") => tick(),
            _ => (404, r#"{"error":"try GET / or POST /tick"}"#.to_string()),
        };
        respond(response_out, status, &body);
    }
}

/// The settings, as name/value pairs from the environment (or, built with `wasi-config` or
/// `spin`, from wasi:config/store). A name is also looked up in lower case, the only case
/// Spin variables have.
fn settings() -> Settings<impl Fn(&str) -> Option<String>> {
    #[cfg(not(any(feature = "wasi-config", feature = "spin")))]
    let pairs = wasi::cli::environment::get_environment();
    #[cfg(all(feature = "wasi-config", not(feature = "spin")))]
    let pairs = wasi::config0_2_0_rc_1::store::get_all().unwrap_or_default();
    #[cfg(feature = "spin")]
    let pairs = wasi::config0_2_0_draft_2024_09_27::store::get_all().unwrap_or_default();
    let values: HashMap<String, String> = pairs.into_iter().collect();
    Settings::new(move |name: &str| {
        values
            .get(name)
            .or_else(|| values.get(&name.to_ascii_lowercase()))
            .cloned()
    })
}

/// Who leads, read once; never writes.
fn who_leads() -> (u16, String) {
    let s = settings();
    let (s3, election) = match (s.s3(), s.election()) {
        (Ok(s3), Ok(e)) => (s3, e),
        (Err(e), _) | (_, Err(e)) => return (500, error_json(&e)),
    };
    let which = ElectionRef::new(election.election.name).with_prefix(election.election.key_prefix);
    match sdk::who_leads(&s3, &which) {
        Ok(leader) => (
            200,
            format!(
                r#"{{"leader":{},"term":{},"metadata":{}}}"#,
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
        Err(e) => (status_of(&e), error_json(&sdk::describe(&e))),
    }
}

/// One election step for this replica.
fn tick() -> (u16, String) {
    let s = settings();
    let (s3, election) = match (s.s3(), s.election()) {
        // A fresh instance per request: nothing survives between ticks.
        (Ok(s3), Ok(e)) => (s3, e.stateless()),
        (Err(e), _) | (_, Err(e)) => return (500, error_json(&e)),
    };
    let me = election.node_id.clone();
    let status = match Election::open(&s3, &election).and_then(|mut e| e.tick().cloned()) {
        Ok(status) => status,
        Err(e) => return (status_of(&e), error_json(&sdk::describe(&e))),
    };
    let problems: Vec<String> = status
        .problems
        .iter()
        .map(|p| json_string(&format!("{p:?}")))
        .collect();
    (
        200,
        format!(
            r#"{{"node":{},"is_leader":{},"leader":{},"term":{},"valid_ms":{},"next_tick_ms":{},"problems":[{}]}}"#,
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
            status.next_tick_ms,
            problems.join(","),
        ),
    )
}

/// A setting that cannot work is this worker's fault (500); anything the store or the
/// network did is a bad gateway (502), or unavailable while it is only transient (503).
fn status_of(e: &sdk::Error) -> u16 {
    match e {
        sdk::Error::InvalidConfig(_) => 500,
        sdk::Error::Transport(_) => 503,
        _ => 502,
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
