//! Shared by the fuzz targets: how fuzz input becomes an S3 answer, and the invariants every
//! answer `s3::classify` accepts must satisfy.
//!
//! The `classify` target reads its input in one of two forms:
//!
//! - **text**, what the seeds use: a first line `<request> <status>` (`list 200`, requests
//!   named in [`Kind::NAMES`]), header lines `Name: value`, an empty line, the body;
//! - **structured**, anything else: decoded with `arbitrary` into a [`Structured`] answer.

use arbitrary::{Arbitrary, Unstructured};
use s3_election::config::{Keys, S3Config, Secret};
use s3_election::protocol::{ETag, EtagForm, Outcome, PutMode, Request};
use s3_election::s3::{self, HttpRequest, HttpResponse};
use s3_election::Error;
use std::collections::HashSet;

/// The latest store time any answer may carry, in Unix milliseconds.
pub const LATEST_MS: u64 = s3::LATEST_UNIX_SECONDS * 1000 + 999;

/// Which request the answer is for.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Get,
    GetIfNoneMatch,
    PutCreate,
    PutUpdate,
    PutMember,
    GetMember,
    List,
    ListNext,
    DeleteMember,
    GetSlot,
    PutSlot,
    PutProbe,
    PutProbeMissing,
    DeleteProbe,
}

impl Kind {
    pub const NAMES: [(&'static str, Kind); 14] = [
        ("get", Kind::Get),
        ("get-if-none-match", Kind::GetIfNoneMatch),
        ("put-create", Kind::PutCreate),
        ("put-update", Kind::PutUpdate),
        ("put-member", Kind::PutMember),
        ("get-member", Kind::GetMember),
        ("list", Kind::List),
        ("list-next", Kind::ListNext),
        ("delete-member", Kind::DeleteMember),
        ("get-slot", Kind::GetSlot),
        ("put-slot", Kind::PutSlot),
        ("put-probe", Kind::PutProbe),
        ("put-probe-missing", Kind::PutProbeMissing),
        ("delete-probe", Kind::DeleteProbe),
    ];

    pub fn request(self) -> Request {
        let etag = || ETag("\"0f343b0931126a20f133d67c2b018a3b\"".into());
        let body = br#"{"format":"s3-election/lease/v1"}"#.to_vec();
        match self {
            Kind::Get => Request::Get {
                if_none_match: None,
            },
            Kind::GetIfNoneMatch => Request::Get {
                if_none_match: Some(etag()),
            },
            Kind::PutCreate => Request::Put {
                mode: PutMode::Create,
                body,
            },
            Kind::PutUpdate => Request::Put {
                mode: PutMode::Update(etag()),
                body,
            },
            Kind::PutMember => Request::PutMember { body },
            Kind::GetMember => Request::GetMember { node: "n2".into() },
            Kind::List => Request::ListMembers { continuation: None },
            Kind::ListNext => Request::ListMembers {
                continuation: Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=".into()),
            },
            Kind::DeleteMember => Request::DeleteMember,
            Kind::GetSlot => Request::GetSlot,
            Kind::PutSlot => Request::PutSlot {
                mode: PutMode::Create,
                body,
            },
            Kind::PutProbe => Request::PutProbe {
                scratch: "0123456789abcdef".into(),
                missing_key: false,
                mode: PutMode::Create,
                body,
            },
            Kind::PutProbeMissing => Request::PutProbe {
                scratch: "0123456789abcdef".into(),
                missing_key: true,
                mode: PutMode::Update(etag()),
                body,
            },
            Kind::DeleteProbe => Request::DeleteProbe {
                scratch: "0123456789abcdef".into(),
            },
        }
    }

    fn is_get(self) -> bool {
        matches!(
            self,
            Kind::Get | Kind::GetIfNoneMatch | Kind::GetMember | Kind::GetSlot
        )
    }

    fn is_put(self) -> bool {
        matches!(
            self,
            Kind::PutCreate
                | Kind::PutUpdate
                | Kind::PutMember
                | Kind::PutSlot
                | Kind::PutProbe
                | Kind::PutProbeMissing
        )
    }

    fn is_list(self) -> bool {
        matches!(self, Kind::List | Kind::ListNext)
    }

    fn is_delete(self) -> bool {
        matches!(self, Kind::DeleteMember | Kind::DeleteProbe)
    }
}

#[derive(Arbitrary, Debug)]
pub enum HeaderName<'a> {
    ETag,
    Date,
    LastModified,
    ContentType,
    Location,
    Other(&'a str),
}

/// Statuses S3 sends, and any other.
#[derive(Arbitrary, Debug)]
pub enum Status {
    Common(u8),
    Any(u16),
}

const COMMON: [u16; 16] = [
    200, 201, 204, 304, 301, 307, 400, 403, 404, 408, 409, 412, 429, 500, 501, 503,
];

#[derive(Arbitrary, Debug)]
pub struct Structured<'a> {
    pub kind: Kind,
    pub status: Status,
    pub headers: Vec<(HeaderName<'a>, &'a str)>,
    pub body: &'a [u8],
}

/// The request kind and answer an input stands for (text form first, then structured).
pub fn answer(data: &[u8]) -> Option<(Kind, HttpResponse)> {
    if let Some(parsed) = from_text(data) {
        return Some(parsed);
    }
    let s = Structured::arbitrary_take_rest(Unstructured::new(data)).ok()?;
    let status = match s.status {
        Status::Common(i) => COMMON[usize::from(i) % COMMON.len()],
        Status::Any(s) => s,
    };
    let headers = s
        .headers
        .into_iter()
        .map(|(n, v)| {
            let name = match n {
                HeaderName::ETag => "ETag",
                HeaderName::Date => "Date",
                HeaderName::LastModified => "Last-Modified",
                HeaderName::ContentType => "Content-Type",
                HeaderName::Location => "Location",
                HeaderName::Other(o) => o,
            };
            (name.to_string(), v.to_string())
        })
        .collect();
    Some((
        s.kind,
        HttpResponse {
            status,
            headers,
            body: s.body.to_vec(),
        },
    ))
}

fn split_line(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = data.iter().position(|b| *b == b'\n')?;
    Some((&data[..at], &data[at + 1..]))
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The text form: `<request> <status>\n`, `Name: value` lines, an empty line, the body.
pub fn from_text(data: &[u8]) -> Option<(Kind, HttpResponse)> {
    let (first, mut rest) = split_line(data)?;
    let first = std::str::from_utf8(strip_cr(first)).ok()?;
    let (word, status) = first.split_once(' ')?;
    let kind = Kind::NAMES.iter().find(|(n, _)| *n == word)?.1;
    let status: u16 = status.trim().parse().ok()?;
    let mut headers = Vec::new();
    let body = loop {
        let (line, after) = match split_line(rest) {
            Some(split) => split,
            None => (rest, &rest[rest.len()..]),
        };
        let line = strip_cr(line);
        if line.is_empty() {
            break after;
        }
        // As the guest does: header values are read as lossy UTF-8.
        let text = String::from_utf8_lossy(line);
        if let Some((n, v)) = text.split_once(':') {
            headers.push((n.trim().to_string(), v.trim_start().to_string()));
        }
        rest = after;
    };
    Some((
        kind,
        HttpResponse {
            status,
            headers,
            body: body.to_vec(),
        },
    ))
}

pub fn cfg(unquoted_etags: bool) -> S3Config {
    S3Config {
        endpoint: "http://127.0.0.1:4566".into(),
        region: "us-east-1".into(),
        bucket: "elections".into(),
        path_style: true,
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        session_token: Some(Secret::new("session-token")),
        unquoted_etags,
    }
}

pub fn keys() -> Keys {
    Keys {
        lease: "p/e/lease".into(),
        members: "p/e/members/".into(),
        own_member: "p/e/members/n1".into(),
        slot: "p/e/slot".into(),
        job: "p/e/job".into(),
        probe: "p/e/probe/n1".into(),
    }
}

/// A request built from what an answer gave us must be one the runtime can send: valid
/// header names and values, a valid path, in either ETag form.
pub fn assert_sendable(request: &Request) {
    for form in [EtagForm::Quoted, EtagForm::Bare] {
        let request = match request {
            Request::Get {
                if_none_match: Some(e),
            } => Request::Get {
                if_none_match: Some(e.in_form(form)),
            },
            Request::Put {
                mode: PutMode::Update(e),
                body,
            } => Request::Put {
                mode: PutMode::Update(e.in_form(form)),
                body: body.clone(),
            },
            other => other.clone(),
        };
        let request = &request;
        let r: HttpRequest = s3::build(&cfg(false), &keys(), request, s3::system_time(0))
            .unwrap_or_else(|e| panic!("cannot build {request:?}: {e}"));
        for (name, value) in &r.headers {
            assert!(
                http::HeaderName::from_bytes(name.as_bytes()).is_ok(),
                "header name {name:?}"
            );
            assert!(
                http::HeaderValue::from_str(value).is_ok(),
                "header {name}: {value:?}"
            );
        }
        assert!(
            http::uri::PathAndQuery::try_from(r.path.as_str()).is_ok(),
            "path {:?}",
            r.path
        );
        assert!(!format!("{r:?}").contains("session-token"));
    }
}

pub fn assert_etag(etag: &ETag) {
    assert!(!etag.0.is_empty() && etag.0.len() <= s3::MAX_ETAG_BYTES);
    assert!(!etag.0.chars().any(char::is_control), "{etag:?}");
    assert_sendable(&Request::Put {
        mode: PutMode::Update(etag.clone()),
        body: Vec::new(),
    });
}

fn assert_readable(text: &str) {
    assert!(text.len() <= 4096, "{} bytes of error text", text.len());
    assert!(!text.chars().any(char::is_control), "{text:?}");
}

/// A store's code or message as shown: cut at MAX_DISPLAY_CHARS (plus an ellipsis).
pub fn assert_displayable(text: &str) {
    assert!(
        text.chars().count() <= s3::MAX_DISPLAY_CHARS + 1,
        "{text:?}"
    );
    assert_readable(text);
}

fn assert_error(e: &Error) {
    match e {
        Error::Store { code, message, .. } | Error::AccessDenied { code, message } => {
            assert_displayable(code);
            assert_displayable(message);
        }
        Error::ConditionalWritesUnsupported(why) | Error::BadAnswer(why) => assert_readable(why),
        Error::BucketMissing { .. } => {}
        other => panic!("classify made up {other:?}"),
    }
}

/// Everything `classify` may conclude from an answer to a request of `kind`.
pub fn check(kind: Kind, response: &HttpResponse) -> Outcome {
    let request = kind.request();
    let outcome = s3::classify(&request, response, "elections");
    assert_eq!(
        outcome,
        s3::classify(&request, response, "elections"),
        "classify is a function"
    );
    let status = response.status;
    match &outcome {
        Outcome::Found {
            etag,
            last_modified,
            date,
            body,
        } => {
            assert!(kind.is_get() && status == 200);
            assert_eq!(body, &response.body);
            assert_etag(etag);
            assert!(last_modified.is_none_or(|t| t <= s3::LATEST_UNIX_SECONDS));
            assert!(date.is_none_or(|t| t <= s3::LATEST_UNIX_SECONDS));
        }
        Outcome::NotModified { date } => {
            assert!(kind == Kind::Get || kind == Kind::GetIfNoneMatch);
            assert_eq!(status, 304);
            assert!(date.is_none_or(|t| t <= s3::LATEST_UNIX_SECONDS));
        }
        Outcome::Written { etag } => {
            assert!(kind.is_put() && matches!(status, 200 | 201 | 204));
            assert_etag(etag);
        }
        Outcome::Listed {
            entries,
            continuation,
            date,
        } => {
            assert!(kind.is_list() && status == 200);
            assert!(entries.len() <= s3::MAX_LIST_ENTRIES);
            // Signing is slow: every distinct key and ETag is sent back, up to a few.
            let (mut keys, mut etags) = (HashSet::new(), HashSet::new());
            for e in entries {
                assert!(!e.key.is_empty() && e.key.len() <= s3::MAX_KEY_BYTES);
                assert!(e.last_modified_ms <= LATEST_MS);
                assert!(!e.etag.0.is_empty() && e.etag.0.len() <= s3::MAX_ETAG_BYTES);
                assert!(!e.etag.0.chars().any(char::is_control), "{:?}", e.etag);
                if etags.len() < 2 && etags.insert(&e.etag) {
                    assert_etag(&e.etag);
                }
                if keys.len() < 2 && keys.insert(&e.key) {
                    assert_sendable(&Request::GetMember {
                        node: e.key.clone(),
                    });
                }
            }
            if let Some(token) = continuation {
                assert!(!token.is_empty() && token.len() <= s3::MAX_CONTINUATION_BYTES);
                assert_sendable(&Request::ListMembers {
                    continuation: Some(token.clone()),
                });
            }
            assert!(date.is_none_or(|t| t <= s3::LATEST_UNIX_SECONDS));
        }
        Outcome::Deleted => assert!(kind.is_delete() && matches!(status, 200 | 204)),
        Outcome::NotFound => assert_eq!(status, 404),
        Outcome::PreconditionFailed => assert!(matches!(status, 404 | 412)),
        Outcome::Conflict => assert_eq!(status, 409),
        Outcome::Transient(e) => {
            assert_error(e);
            if let Error::Store { status: s, .. } = e {
                assert_eq!(*s, status);
                assert!(matches!(status, 400 | 408 | 429 | 500 | 502..=599));
            }
        }
        Outcome::Fatal(e) => {
            assert_error(e);
            assert!(
                !(502..=599).contains(&status) && status != 500,
                "{status} is transient"
            );
        }
    }
    outcome
}

/// XML text for `s`, escaped in `style` (0: named entities, 1: decimal, 2: hex, 3: only what
/// must be).
pub fn escape(s: &str, style: u8) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let must = matches!(c, '&' | '<' | '>' | '"' | '\'');
        match (style % 4, c) {
            (0 | 3, '&') => out.push_str("&amp;"),
            (0 | 3, '<') => out.push_str("&lt;"),
            (0, '>') => out.push_str("&gt;"),
            (0, '"') => out.push_str("&quot;"),
            (0, '\'') => out.push_str("&apos;"),
            (1, c) if must => out.push_str(&format!("&#{};", u32::from(c))),
            (2, c) if must => out.push_str(&format!("&#x{:x};", u32::from(c))),
            (_, c) => out.push(c),
        }
    }
    out
}

/// Unix milliseconds as S3 writes them in a list (`2026-11-26T05:45:12.345Z`).
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}
