//! The election core's calls driven by arbitrary store answers: whatever a store (or something
//! posing as one) sends, in any order, at any time, the elector never panics, never writes the
//! lease without a condition, never promises more than a lease, never leads without a fencing
//! token, its terms only grow (a stateless one may resume its node's term), and, called when
//! it asks, it keeps to the request-rate bound.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use s3_election::config::{ElectionConfig, Timings};
use s3_election::core::{
    counts_towards_rate, CallKind, Elector, Event, Reply, Role, MAX_REQUESTS_PER_RATE_WINDOW,
    RATE_WINDOW_RETRY_PERIODS,
};
use s3_election::config::QuorumConfig;
use s3_election::protocol::{ETag, EtagForm, ListEntry, Outcome, PutMode, Request};
use s3_election::record::{LeaseRecord, FORMAT};
use s3_election::time::Instant;
use s3_election::Error;
use std::time::Duration;

/// A lease record with arbitrary values (the decoder decides what is foreign).
#[derive(Arbitrary, Debug)]
struct AnyRecord {
    holder: u8,
    instance: Option<u8>,
    term: u64,
    lease_ms: u64,
    renewals: u64,
    nonce: u8,
    released: bool,
    vacant: bool,
}

#[derive(Arbitrary, Debug)]
enum Body {
    Record(AnyRecord),
    /// The body of the elector's own last write (a write that landed).
    Echo,
    Bytes(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Answer {
    Found {
        etag: u8,
        body: Body,
        last_modified: Option<u32>,
        date: Option<u32>,
    },
    NotModified { date: Option<u32> },
    NotFound,
    Written { etag: u8 },
    PreconditionFailed,
    Conflict,
    Transient,
    Fatal,
    Listed {
        keys: Vec<(u8, u32)>,
        more: bool,
        date: Option<u32>,
    },
    Deleted,
}

#[derive(Arbitrary, Debug)]
struct Step {
    /// Milliseconds to the next step.
    advance_ms: u16,
    answers: Vec<Answer>,
    resign: bool,
}

#[derive(Arbitrary, Debug)]
struct Run {
    stateless: bool,
    bare_etags: bool,
    quorum: bool,
    probe: bool,
    seed: u64,
    steps: Vec<Step>,
}

const EPOCH_S: u64 = 1_790_000_000;

fn outcome(answer: Answer, last_body: &[u8], node: &str) -> Outcome {
    let time = |s: Option<u32>| s.map(|s| EPOCH_S + u64::from(s));
    match answer {
        Answer::Found {
            etag,
            body,
            last_modified,
            date,
        } => Outcome::Found {
            etag: ETag(format!("\"e{etag}\"")),
            body: match body {
                Body::Echo => last_body.to_vec(),
                Body::Bytes(b) => b,
                Body::Record(r) => LeaseRecord {
                    format: FORMAT.into(),
                    holder: if r.holder % 2 == 0 {
                        node.to_string()
                    } else {
                        format!("n{}", r.holder)
                    },
                    term: r.term,
                    lease_ms: r.lease_ms,
                    renewals: r.renewals,
                    nonce: format!("{:x}", r.nonce),
                    released: r.released,
                    vacant: r.vacant,
                    instance: r.instance.map(|i| format!("i-{i}")),
                    metadata: String::new(),
                    members: Vec::new(),
                    members_omitted: 0,
                }
                .encode(),
            },
            last_modified: time(last_modified),
            date: time(date),
        },
        Answer::NotModified { date } => Outcome::NotModified { date: time(date) },
        Answer::NotFound => Outcome::NotFound,
        Answer::Written { etag } => Outcome::Written {
            etag: ETag(format!("\"w{etag}\"")),
        },
        Answer::PreconditionFailed => Outcome::PreconditionFailed,
        Answer::Conflict => Outcome::Conflict,
        Answer::Transient => Outcome::Transient(Error::Transport("fuzz".into())),
        Answer::Fatal => Outcome::Fatal(Error::AccessDenied {
            code: "AccessDenied".into(),
            message: "fuzz".into(),
        }),
        Answer::Listed { keys, more, date } => Outcome::Listed {
            entries: keys
                .into_iter()
                .take(50)
                .map(|(k, lm)| ListEntry {
                    key: format!("f/members/m{k}"),
                    etag: ETag(format!("\"m{k}\"")),
                    last_modified_ms: (EPOCH_S + u64::from(lm)) * 1000,
                })
                .collect(),
            continuation: more.then(|| "next".to_string()),
            date: time(date),
        },
        Answer::Deleted => Outcome::Deleted,
    }
}

fuzz_target!(|run: Run| {
    let lease = Duration::from_secs(3);
    let mut quorum = QuorumConfig::disabled_for_lease(lease);
    if run.quorum && !run.stateless {
        quorum.size = 2;
    }
    let config = ElectionConfig {
        name: "f".into(),
        node_id: "me".into(),
        key_prefix: String::new(),
        timings: Timings::for_lease(lease),
        metadata: String::new(),
        stateless: run.stateless,
        probe_store: run.probe,
        quorum,
        etag_form: EtagForm::from_unquoted(run.bare_etags),
    };
    let retry = config.timings.retry_period;
    let mut e = Elector::new(config, Instant::from_nanos(0), run.seed);
    let mut now = Instant::from_nanos(1_000_000_000);
    let mut next_call = now;
    let mut last_body = Vec::new();
    let mut highest_elected = 0;
    // Send times of the requests that count towards the rate bound (ticks only: a resign is
    // the caller's own call, at its own time).
    let mut counted: Vec<Instant> = Vec::new();
    for step in run.steps.into_iter().take(64) {
        // The caller calls when the elector asked, or later; never earlier.
        now = (now + Duration::from_millis(u64::from(step.advance_ms))).max(next_call);
        let kind = if step.resign {
            CallKind::Resign
        } else {
            CallKind::Tick
        };
        e.begin(kind, now);
        let mut answers = step.answers.into_iter();
        while let Some(request) = e.poll_request(now) {
            if let Request::Put { mode, body } = &request {
                // Every lease write carries a condition, and is a record a reader accepts.
                assert!(matches!(mode, PutMode::Create | PutMode::Update(_)));
                assert!(LeaseRecord::decode(body).is_ok(), "wrote a record readers refuse");
                last_body = body.clone();
            }
            if kind == CallKind::Tick && counts_towards_rate(&request) {
                counted.push(now);
            }
            // No answer left: the request timed out.
            let outcome = match answers.next() {
                Some(answer) => outcome(answer, &last_body, "me"),
                None => Outcome::Transient(Error::Transport("timeout".into())),
            };
            e.handle_response(now, outcome);
        }
        let status = match e.finish(now) {
            Ok(Reply::Status(status)) => status,
            Ok(Reply::Leader(_)) => unreachable!("a tick or resign answers with a status"),
            // An error: the caller is not leader; it asks `status` when to call again.
            Err(_) => {
                let status = e.status(now);
                assert_eq!(status.role, Role::Follower, "an error while leading");
                next_call = now + status.next_step_in;
                continue;
            }
        };
        assert!(status.valid_for <= lease, "promised more than a lease");
        if status.role == Role::Leader {
            assert!(status.fencing_token.is_some(), "a leader without a fencing token");
        }
        for event in status.events {
            if let Event::Elected { term } = event {
                // A stateful elector starts every leadership with a new term. A stateless one
                // may resume its node's term (that is what stateless mode is), never a lower one.
                if run.stateless {
                    assert!(term >= highest_elected, "term {term} after {highest_elected}");
                } else {
                    assert!(term > highest_elected, "term {term} after {highest_elected}");
                }
                highest_elected = term;
            }
        }
        next_call = now + status.next_step_in;
        // The request-rate bound, whatever the answers were (a stateless elector's calls are
        // one elector here, which only makes the bound stricter).
        let window = retry * RATE_WINDOW_RETRY_PERIODS;
        let recent = counted.iter().filter(|&&t| t + window > now).count();
        assert!(
            recent <= MAX_REQUESTS_PER_RATE_WINDOW,
            "{recent} requests in the last {window:?}"
        );
    }
});
