//! The S3 layer, pure: [`build`] turns a core [`Request`] into a signed HTTP request, and
//! [`classify`] turns an HTTP answer into a core [`Outcome`]. Store quirks are normalised
//! here, in one place, so the core sees one S3.
//!
//! Whatever a store (or something posing as one) answers, nothing here may panic: outside
//! tests the lints below forbid indexing and slicing, unchecked arithmetic, `unwrap`,
//! `expect` and `panic!`, and every answer is bounded (entries per page, key, token and ETag
//! lengths, years) before it reaches the core. An answer out of bounds is
//! [`Error::BadAnswer`], transient: nothing is concluded from it.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use crate::config::{Keys, S3Config};
use crate::error::Error;
use crate::protocol::{ETag, ListEntry, Outcome, PutMode, Request};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest answer body we read; lease records are tiny and error bodies are short.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// A signed request, split the way wasi:http wants it. Its `Debug` shows everything but the
/// value of `x-amz-security-token` (a secret).
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    pub https: bool,
    /// `host[:port]`; sent by the runtime as the `host` header (guests may not set it).
    pub authority: String,
    /// Percent-encoded path, starting with `/`, with the query string if any.
    pub path: String,
    /// Headers to send, the SigV4 ones included (never `host`).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Headers whose values are secrets: never shown by `Debug`.
const SECRET_HEADERS: [&str; 1] = ["x-amz-security-token"];

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Headers<'a>(&'a [(String, String)]);
        impl fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|(name, value)| {
                        let secret = SECRET_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s));
                        (name, if secret { "<redacted>" } else { value.as_str() })
                    }))
                    .finish()
            }
        }
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("https", &self.https)
            .field("authority", &self.authority)
            .field("path", &self.path)
            .field("headers", &Headers(&self.headers))
            .field("body", &self.body)
            .finish()
    }
}

/// An answer as received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The value of header `name` (case-insensitive). A repeated header counts by its first
    /// occurrence, the same for every reader of this answer.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Build and sign the HTTP request for `request`. `now` is wall-clock time, needed only for
/// the SigV4 date.
pub fn build(
    cfg: &S3Config,
    keys: &Keys,
    request: &Request,
    now: SystemTime,
) -> Result<HttpRequest, Error> {
    let (https, host) = split_endpoint(&cfg.endpoint)?;
    let mut headers: Vec<(String, String)> = Vec::new();
    let put_json = |headers: &mut Vec<(String, String)>, body: &[u8]| {
        headers.push(("content-type".into(), "application/json".into()));
        headers.push(("content-length".into(), body.len().to_string()));
    };
    let member = |node: &str| format!("{}{node}", keys.members);
    let (method, key, query, body) = match request {
        Request::Get { if_none_match } => {
            if let Some(etag) = if_none_match {
                headers.push(("if-none-match".into(), etag.0.clone()));
            }
            (Method::Get, keys.lease.clone(), None, Vec::new())
        }
        Request::Put { mode, body } => {
            headers.extend(condition(mode));
            put_json(&mut headers, body);
            (Method::Put, keys.lease.clone(), None, body.clone())
        }
        Request::PutMember { body } => {
            put_json(&mut headers, body);
            (Method::Put, keys.own_member.clone(), None, body.clone())
        }
        Request::PutProbe {
            scratch,
            missing_key,
            mode,
            body,
        } => {
            headers.extend(condition(mode));
            put_json(&mut headers, body);
            (
                Method::Put,
                keys.probe_scratch(scratch, *missing_key),
                None,
                body.clone(),
            )
        }
        Request::DeleteProbe { scratch } => (
            Method::Delete,
            keys.probe_scratch(scratch, false),
            None,
            Vec::new(),
        ),
        Request::GetSlot => (Method::Get, keys.slot.clone(), None, Vec::new()),
        Request::GetJobMarker => (Method::Get, keys.job.clone(), None, Vec::new()),
        Request::PutJobMarker { body } => {
            headers.extend(condition(&PutMode::Create));
            put_json(&mut headers, body);
            (Method::Put, keys.job.clone(), None, body.clone())
        }
        Request::PutSlot { mode, body } => {
            headers.extend(condition(mode));
            put_json(&mut headers, body);
            (Method::Put, keys.slot.clone(), None, body.clone())
        }
        Request::GetMember { node } => (Method::Get, member(node), None, Vec::new()),
        Request::DeleteMember => (Method::Delete, keys.own_member.clone(), None, Vec::new()),
        Request::ListMembers { continuation } => {
            // Parameters in canonical (sorted) order.
            let mut q = String::new();
            if let Some(token) = continuation {
                q.push_str(&format!("continuation-token={}&", encode(token, false)));
            }
            q.push_str(&format!(
                "list-type=2&prefix={}",
                encode(&keys.members, false)
            ));
            (Method::Get, String::new(), Some(q), Vec::new())
        }
    };
    if method == Method::Delete {
        // Without it the body goes out chunked, and Ceph RGW refuses a chunked DELETE with
        // 501 ("AWS4 completion for this operation NOT IMPLEMENTED").
        headers.push(("content-length".into(), "0".into()));
    }
    let encoded_key = encode(&key, true);
    let (authority, mut path) = if cfg.path_style {
        let path = if key.is_empty() {
            format!("/{}", cfg.bucket)
        } else {
            format!("/{}/{encoded_key}", cfg.bucket)
        };
        (host.to_string(), path)
    } else {
        (
            format!("{}.{}", cfg.bucket, host),
            format!("/{encoded_key}"),
        )
    };
    if let Some(q) = query {
        path = format!("{path}?{q}");
    }
    let url = format!(
        "{}://{}{}",
        if https { "https" } else { "http" },
        authority,
        path
    );
    let signed = sign_headers(cfg, method, &url, &headers, &body, now)?;
    headers.extend(signed);
    Ok(HttpRequest {
        method,
        https,
        authority,
        path,
        headers,
        body,
    })
}

/// The conditional header of a PUT: `If-None-Match: *` to create, `If-Match` to update. The
/// ETag goes out exactly as the machine that asked wrote it: each machine chooses the form
/// (quoted or bare) the store accepts, see [`crate::protocol::EtagForm`].
fn condition(mode: &PutMode) -> Option<(String, String)> {
    match mode {
        PutMode::Create => Some(("if-none-match".into(), "*".into())),
        PutMode::Update(e) => Some(("if-match".into(), e.0.clone())),
        #[cfg(feature = "mutations")]
        PutMode::Overwrite => None,
    }
}

fn sign_headers(
    cfg: &S3Config,
    method: Method,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    now: SystemTime,
) -> Result<Vec<(String, String)>, Error> {
    let identity: Identity = Credentials::new(
        &cfg.access_key_id,
        cfg.secret_access_key.expose(),
        cfg.session_token.as_ref().map(|t| t.expose().to_string()),
        None,
        "s3-election",
    )
    .into();
    let mut settings = SigningSettings::default();
    // S3 wants the payload hash in x-amz-content-sha256, and keys signed as sent.
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&cfg.region)
        .name("s3")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| signing_error(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        method.as_str(),
        url,
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| signing_error(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| signing_error(e.to_string()))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect())
}

fn signing_error(why: String) -> Error {
    Error::InvalidConfig(crate::error::ConfigError {
        field: "s3",
        problem: format!("cannot sign request: {why}"),
    })
}

/// `(https, host[:port])` from a validated endpoint.
fn split_endpoint(endpoint: &str) -> Result<(bool, &str), Error> {
    let (https, rest) = if let Some(r) = endpoint.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = endpoint.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(Error::InvalidConfig(crate::error::ConfigError {
            field: "endpoint",
            problem: "must start with http:// or https://".into(),
        }));
    };
    Ok((https, rest.trim_end_matches('/')))
}

/// Percent-encode (RFC 3986 unreserved characters pass), keeping `/` in paths.
fn encode(value: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Normalise the answer to `request`. `bucket` is for the error message only.
///
/// Headers are looked up by [`HttpResponse::header`]: case-insensitive, and when a header is
/// repeated the first occurrence counts (everywhere, so two readings never disagree).
pub fn classify(request: &Request, response: &HttpResponse, bucket: &str) -> Outcome {
    let status = response.status;
    let date = || response.header("date").and_then(unix_seconds);
    let bad = |why: String| Outcome::Transient(Error::BadAnswer(why));
    let method = match request {
        Request::Put { .. }
        | Request::PutMember { .. }
        | Request::PutSlot { .. }
        | Request::PutJobMarker { .. }
        | Request::PutProbe { .. } => Method::Put,
        Request::DeleteMember | Request::DeleteProbe { .. } => Method::Delete,
        _ => Method::Get,
    };
    match (request, status) {
        (Request::ListMembers { .. }, 200) => match parse_list(&response.body) {
            Ok((entries, continuation)) => Outcome::Listed {
                entries,
                continuation,
                date: date(),
            },
            Err(why) => bad(format!("ListObjectsV2 page: {why}")),
        },
        (
            Request::Get { .. }
            | Request::GetMember { .. }
            | Request::GetSlot
            | Request::GetJobMarker,
            200,
        ) => match response.header("etag").map(read_etag) {
            Some(Ok(etag)) => Outcome::Found {
                etag,
                body: response.body.clone(),
                last_modified: response.header("last-modified").and_then(unix_seconds),
                date: date(),
            },
            Some(Err(why)) => bad(format!("GET answer: {why}")),
            None => Outcome::Fatal(Error::ConditionalWritesUnsupported(
                "GET answer without an ETag".into(),
            )),
        },
        (Request::Get { .. }, 304) => Outcome::NotModified { date: date() },
        // Every PUT (lease, member, slot, probe) succeeds the same way. A garbled ETag says
        // nothing about whether the write was applied: transient, so the writer reads back.
        (_, 200 | 201 | 204) if method == Method::Put => {
            match response.header("etag").map(read_etag) {
                Some(Ok(etag)) => Outcome::Written { etag },
                Some(Err(why)) => bad(format!("PUT answer: {why}")),
                None => Outcome::Fatal(Error::ConditionalWritesUnsupported(
                    "PUT answer without an ETag".into(),
                )),
            }
        }
        (_, 200 | 204) if method == Method::Delete => Outcome::Deleted,
        // The probe wants to know which answer a store gives to `If-Match` on a missing key
        // (everywhere else 404 and 412 mean the same, see `classify_error`).
        (
            Request::PutProbe {
                missing_key: true, ..
            },
            404,
        ) => Outcome::NotFound,
        (_, 100..=599) => classify_error(method, status, &parse_error_body(&response.body), bucket),
        _ => bad(format!("HTTP status {status} is outside 100..=599")),
    }
}

/// Most objects a ListObjectsV2 page may hold (S3's `max-keys` limit, and its default).
pub const MAX_LIST_ENTRIES: usize = 1000;
/// Longest S3 key, in bytes (UTF-8).
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest continuation token we send back. AWS's are ~100 bytes; 4 KiB is generous.
pub const MAX_CONTINUATION_BYTES: usize = 4096;
/// Longest ETag we accept (an MD5 ETag is 34 bytes, a multipart one a few more).
pub const MAX_ETAG_BYTES: usize = 1024;
/// Error codes and messages from the store are cut to this many characters for display.
pub const MAX_DISPLAY_CHARS: usize = 512;
/// How much of an error body is searched for `<Code>` and `<Message>`.
const MAX_ERROR_BODY_BYTES: usize = 8 * 1024;
/// Longer values of `Date` / `Last-Modified` are not HTTP dates (those are 29 bytes).
const MAX_HTTP_DATE_BYTES: usize = 64;
/// Longer values are not ISO 8601 timestamps of the kind S3 writes.
const MAX_ISO8601_BYTES: usize = 64;
/// 9999-12-31T23:59:59Z: a store time after it is not believed.
pub const LATEST_UNIX_SECONDS: u64 = 253_402_300_799;

/// An ETag as received (header, or decoded list field), if it is one we can send back in
/// `If-Match`: not empty, at most [`MAX_ETAG_BYTES`] bytes, no control characters.
pub fn read_etag(value: &str) -> Result<ETag, String> {
    if value.is_empty() {
        return Err("empty ETag".into());
    }
    if value.len() > MAX_ETAG_BYTES {
        return Err(format!(
            "ETag of {} bytes (at most {MAX_ETAG_BYTES})",
            value.len()
        ));
    }
    if value.chars().any(char::is_control) {
        return Err("ETag with control characters".into());
    }
    Ok(ETag(value.to_string()))
}

/// The objects and the next continuation token of a ListObjectsV2 answer, or why the page
/// cannot be used (nothing from such a page reaches the core).
fn parse_list(body: &[u8]) -> Result<(Vec<ListEntry>, Option<String>), String> {
    let text = std::str::from_utf8(body).map_err(|_| "not UTF-8".to_string())?;
    if !text.contains("<ListBucketResult") {
        return Err("not a ListBucketResult".into());
    }
    let mut entries = Vec::new();
    let mut rest = text;
    while let Some((_, after)) = rest.split_once("<Contents>") {
        if entries.len() >= MAX_LIST_ENTRIES {
            return Err(format!("more than {MAX_LIST_ENTRIES} entries"));
        }
        let (block, after) = after
            .split_once("</Contents>")
            .ok_or_else(|| "<Contents> without </Contents>".to_string())?;
        let key = list_field(block, "Key")?;
        if key.is_empty() {
            return Err("an empty key".into());
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(format!(
                "a key of {} bytes (at most {MAX_KEY_BYTES})",
                key.len()
            ));
        }
        let etag = read_etag(&list_field(block, "ETag")?)?;
        let modified = list_field(block, "LastModified")?;
        let last_modified_ms = iso8601_ms(&modified).ok_or_else(|| {
            format!(
                "LastModified {:?} is not a time in years 1970..=9999",
                for_display(&modified, 64)
            )
        })?;
        entries.push(ListEntry {
            key,
            etag,
            last_modified_ms,
        });
        rest = after;
    }
    let truncated = match xml_raw(text, "IsTruncated").map(str::trim) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(format!("IsTruncated is {:?}", for_display(other, 16))),
    };
    let next = if truncated {
        let token = list_field(text, "NextContinuationToken")?;
        if token.is_empty() {
            return Err("IsTruncated with an empty NextContinuationToken".into());
        }
        if token.len() > MAX_CONTINUATION_BYTES {
            return Err(format!(
                "a continuation token of {} bytes (at most {MAX_CONTINUATION_BYTES})",
                token.len()
            ));
        }
        Some(token)
    } else {
        None
    };
    Ok((entries, next))
}

/// A text field of a list page, entities decoded; missing, holding markup or a malformed
/// entity is an error.
fn list_field(text: &str, tag: &str) -> Result<String, String> {
    let raw = xml_raw(text, tag).ok_or_else(|| format!("no <{tag}>"))?;
    if raw.contains('<') {
        return Err(format!("markup inside <{tag}>"));
    }
    decode_entities(raw).ok_or_else(|| format!("a malformed entity in <{tag}>"))
}

/// `2026-11-26T05:45:12.345Z` as Unix milliseconds; `None` unless it is such a UTC time in
/// the years 1970..=9999 (digits only, fields in range, up to nine fraction digits).
pub fn iso8601_ms(value: &str) -> Option<u64> {
    let v = value.trim();
    if v.len() > MAX_ISO8601_BYTES {
        return None;
    }
    let v = v.strip_suffix('Z')?;
    let (date, time) = v.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let (y, m, day) = (
        number(d.next()?, 4)?,
        number(d.next()?, 2)?,
        number(d.next()?, 2)?,
    );
    let (hms, frac) = match time.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (time, None),
    };
    let mut t = hms.splitn(3, ':');
    let (hh, mm, ss) = (
        number(t.next()?, 2)?,
        number(t.next()?, 2)?,
        number(t.next()?, 2)?,
    );
    let ms = match frac {
        None => 0,
        Some(f) if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) => {
            return None
        }
        // Milliseconds: the first three digits, padded with zeros.
        Some(f) => f
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .try_fold(0u64, |acc, b| {
                acc.checked_mul(10)?
                    .checked_add(u64::from(b.checked_sub(b'0')?))
            })?,
    };
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || day < 1
        || day > days_in_month(y, m)
        || hh > 23
        || mm > 59
        || ss > 60
    {
        return None;
    }
    let days = days_from_civil(y, m, day)?;
    let seconds = days
        .checked_mul(86_400)?
        .checked_add(hh.checked_mul(3600)?)?
        .checked_add(mm.checked_mul(60)?)?
        .checked_add(ss)?;
    // A leap second at the very end of 9999 would be in year 10000 (found by fuzzing).
    if seconds > LATEST_UNIX_SECONDS {
        return None;
    }
    seconds.checked_mul(1000)?.checked_add(ms)
}

/// 1 to `max_digits` ASCII digits (no sign, no spaces).
fn number(s: &str, max_digits: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn days_in_month(y: u64, m: u64) -> u64 {
    let leap = y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
    match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date in year ≥ 1970 (Howard Hinnant's days_from_civil).
fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y.checked_div(400)?;
    let yoe = y.checked_rem(400)?;
    let mp = if m > 2 {
        m.checked_sub(3)?
    } else {
        m.checked_add(9)?
    };
    let doy = mp
        .checked_mul(153)?
        .checked_add(2)?
        .checked_div(5)?
        .checked_add(d)?
        .checked_sub(1)?;
    let doe = yoe
        .checked_mul(365)?
        .checked_add(yoe.checked_div(4)?)?
        .checked_sub(yoe.checked_div(100)?)?
        .checked_add(doy)?;
    era.checked_mul(146_097)?
        .checked_add(doe)?
        .checked_sub(719_468)
}

fn classify_error(method: Method, status: u16, err: &S3ErrorBody, bucket: &str) -> Outcome {
    let store = || Error::Store {
        status,
        code: err.code.clone(),
        message: err.message.clone(),
    };
    match status {
        404 if err.code == "NoSuchBucket" => Outcome::Fatal(Error::BucketMissing {
            bucket: bucket.to_string(),
        }),
        404 => match method {
            Method::Get | Method::Delete => Outcome::NotFound,
            // AWS answers If-Match on a missing key with 404, Ceph with 412: both mean the
            // condition did not hold.
            Method::Put => Outcome::PreconditionFailed,
        },
        412 => Outcome::PreconditionFailed,
        // ConditionalRequestConflict (and OperationAborted): a concurrent write; retry.
        409 => Outcome::Conflict,
        403 => Outcome::Fatal(Error::AccessDenied {
            code: err.code.clone(),
            message: err.message.clone(),
        }),
        400 if err.code == "ExpiredToken" || err.code == "InvalidToken" => {
            Outcome::Fatal(Error::AccessDenied {
                code: err.code.clone(),
                message: err.message.clone(),
            })
        }
        400 if err.code == "RequestTimeout" => Outcome::Transient(store()),
        501 => Outcome::Fatal(Error::ConditionalWritesUnsupported(format!(
            "{status} {}: {}",
            err.code, err.message
        ))),
        // Every other 5xx is the store's (or a proxy's) trouble: retry.
        408 | 429 | 500..=599 => Outcome::Transient(store()),
        _ => Outcome::Fatal(store()),
    }
}

/// `<Error><Code>…</Code><Message>…</Message></Error>`, read without an XML parser: we need
/// two short text fields, and a malformed body only costs us a less helpful message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S3ErrorBody {
    pub code: String,
    pub message: String,
}

/// The code and message of an error body, for display: cut to [`MAX_DISPLAY_CHARS`]
/// characters (then ending in `…`), control characters replaced by spaces.
pub fn parse_error_body(body: &[u8]) -> S3ErrorBody {
    let head = body.get(..MAX_ERROR_BODY_BYTES).unwrap_or(body);
    let text = String::from_utf8_lossy(head);
    let field = |tag: &str| {
        xml_raw(&text, tag)
            .map(|raw| {
                let decoded = decode_entities(raw);
                for_display(decoded.as_deref().unwrap_or(raw), MAX_DISPLAY_CHARS)
            })
            .unwrap_or_default()
    };
    S3ErrorBody {
        code: field("Code"),
        message: field("Message"),
    }
}

/// The text between the first `<tag>` and the next `</tag>`, as sent (not decoded, not cut).
fn xml_raw<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    let (_, after) = text.split_once(format!("<{tag}>").as_str())?;
    let (inner, _) = after.split_once(format!("</{tag}>").as_str())?;
    Some(inner)
}

/// XML text with its entities decoded in one pass: the five named ones (`&amp;quot;` is
/// `&quot;`, not `"`) and numeric ones (`&#34;`, `&#x22;`, as MinIO writes list ETags).
/// `None` for a bare `&`, an unknown entity or a character reference that is no character.
pub fn decode_entities(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((before, after)) = rest.split_once('&') {
        out.push_str(before);
        let (name, tail) = after.split_once(';')?;
        let c = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let reference = name.strip_prefix('#')?;
                let (digits, radix) = match reference.strip_prefix('x') {
                    Some(hex) => (hex, 16),
                    None => (reference, 10),
                };
                // from_str_radix would take a sign; an entity has only digits.
                if digits.is_empty()
                    || digits.len() > 8
                    || !digits.chars().all(|c| c.is_digit(radix))
                {
                    return None;
                }
                let code = u32::from_str_radix(digits, radix).ok()?;
                char::from_u32(code).filter(|c| *c != '\0')?
            }
        };
        out.push(c);
        rest = tail;
    }
    out.push_str(rest);
    Some(out)
}

/// `s` cut to `max` characters (char boundaries, then `…`), control characters as spaces:
/// safe to put in an error message a person reads.
fn for_display(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// An HTTP date (`Date`, `Last-Modified`) as Unix seconds; `None` unless it is one, in the
/// years 1970..=9999.
pub fn unix_seconds(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.len() > MAX_HTTP_DATE_BYTES || !value.is_ascii() {
        return None;
    }
    let t = httpdate::parse_http_date(value).ok()?;
    let seconds = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    (seconds <= LATEST_UNIX_SECONDS).then_some(seconds)
}

/// Unix milliseconds to `SystemTime` (the component gets wall-clock time as numbers). A
/// value past what `SystemTime` holds (hundreds of millions of years) gives the epoch.
pub fn system_time(unix_ms: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(unix_ms))
        .unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::protocol::EtagForm;

    fn cfg() -> S3Config {
        S3Config {
            endpoint: "http://127.0.0.1:4566".into(),
            region: "us-east-1".into(),
            bucket: "elections".into(),
            path_style: true,
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: None,
            unquoted_etags: false,
        }
    }

    fn keys() -> Keys {
        Keys {
            lease: "p/e/lease".into(),
            members: "p/e/members/".into(),
            own_member: "p/e/members/n1".into(),
            slot: "p/e/slot".into(),
            job: "p/e/job".into(),
            probe: "p/e/probe/n1".into(),
        }
    }

    fn header<'a>(r: &'a HttpRequest, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    const T: u64 = 1_790_000_000_000;
    const GET: Request = Request::Get {
        if_none_match: None,
    };

    fn put(mode: PutMode) -> Request {
        Request::Put {
            mode,
            body: b"{}".to_vec(),
        }
    }

    #[test]
    fn deletes_say_their_body_is_empty() {
        // A DELETE without Content-Length goes out chunked, which Ceph RGW refuses (501).
        let probe = Request::DeleteProbe {
            scratch: "s".into(),
        };
        for request in [Request::DeleteMember, probe] {
            let r = build(&cfg(), &keys(), &request, system_time(T)).unwrap();
            assert_eq!(r.method, Method::Delete);
            assert_eq!(header(&r, "content-length"), Some("0"));
        }
    }

    #[test]
    fn create_is_a_signed_put_with_if_none_match_star() {
        let r = build(&cfg(), &keys(), &put(PutMode::Create), system_time(T)).unwrap();
        assert_eq!(r.method, Method::Put);
        assert_eq!(r.authority, "127.0.0.1:4566");
        assert_eq!(r.path, "/elections/p/e/lease");
        assert_eq!(header(&r, "if-none-match"), Some("*"));
        assert_eq!(header(&r, "content-length"), Some("2"));
        assert!(header(&r, "x-amz-content-sha256").is_some());
        assert!(header(&r, "x-amz-date").is_some());
        let auth = header(&r, "authorization").unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(auth.contains("host;"), "host must be signed: {auth}");
        assert!(header(&r, "host").is_none(), "guests may not set host");
        assert!(!format!("{r:?}").contains("wJalrXUtnFEMI"));
    }

    #[test]
    fn update_sends_if_match_in_the_form_the_machine_chose() {
        let etag = ETag("\"abc\"".into());
        for (form, sent) in [(EtagForm::Quoted, "\"abc\""), (EtagForm::Bare, "abc")] {
            let update = put(PutMode::Update(etag.in_form(form)));
            let r = build(&cfg(), &keys(), &update, system_time(T)).unwrap();
            assert_eq!(header(&r, "if-match"), Some(sent));
        }
        assert_eq!(ETag("abc".into()), etag, "compared without quotes");
    }

    #[test]
    fn virtual_hosted_style_puts_the_bucket_in_the_authority() {
        let mut c = cfg();
        c.path_style = false;
        c.endpoint = "https://s3.eu-west-1.amazonaws.com".into();
        let get = Request::Get {
            if_none_match: Some(ETag("\"e\"".into())),
        };
        let r = build(&c, &keys(), &get, system_time(T)).unwrap();
        assert!(r.https);
        assert_eq!(r.authority, "elections.s3.eu-west-1.amazonaws.com");
        assert_eq!(r.path, "/p/e/lease");
        assert_eq!(header(&r, "if-none-match"), Some("\"e\""));
        let list = Request::ListMembers { continuation: None };
        let r = build(&c, &keys(), &list, system_time(T)).unwrap();
        assert_eq!(r.path, "/?list-type=2&prefix=p%2Fe%2Fmembers%2F");
    }

    #[test]
    fn member_requests_address_member_objects_and_nothing_else() {
        let k = keys();
        let r = build(
            &cfg(),
            &k,
            &Request::PutMember {
                body: b"{}".to_vec(),
            },
            system_time(T),
        )
        .unwrap();
        assert_eq!(
            (r.method, r.path.as_str()),
            (Method::Put, "/elections/p/e/members/n1")
        );
        assert!(header(&r, "if-match").is_none() && header(&r, "if-none-match").is_none());
        let r = build(
            &cfg(),
            &k,
            &Request::GetMember { node: "n7".into() },
            system_time(T),
        )
        .unwrap();
        assert_eq!(
            (r.method, r.path.as_str()),
            (Method::Get, "/elections/p/e/members/n7")
        );
        let r = build(&cfg(), &k, &Request::DeleteMember, system_time(T)).unwrap();
        assert_eq!(
            (r.method, r.path.as_str()),
            (Method::Delete, "/elections/p/e/members/n1")
        );
        let page2 = Request::ListMembers {
            continuation: Some("a b/=".into()),
        };
        let r = build(&cfg(), &k, &page2, system_time(T)).unwrap();
        assert_eq!(
            r.path,
            "/elections?continuation-token=a%20b%2F%3D&list-type=2&prefix=p%2Fe%2Fmembers%2F"
        );
    }

    #[test]
    fn session_token_is_signed_and_sent() {
        let mut c = cfg();
        c.session_token = Some(Secret::new("tok"));
        let r = build(&c, &keys(), &GET, system_time(T)).unwrap();
        assert_eq!(header(&r, "x-amz-security-token"), Some("tok"));
    }

    #[test]
    fn signature_changes_with_the_secret() {
        let a = build(&cfg(), &keys(), &GET, system_time(T)).unwrap();
        let mut other = cfg();
        other.secret_access_key = Secret::new("other");
        let b = build(&other, &keys(), &GET, system_time(T)).unwrap();
        assert_ne!(header(&a, "authorization"), header(&b, "authorization"));
    }

    #[test]
    fn keys_are_percent_encoded() {
        assert_eq!(encode("a b/c+d", true), "a%20b/c%2Bd");
        assert_eq!(encode("a b/c+d", false), "a%20b%2Fc%2Bd");
    }

    #[test]
    fn answers_are_normalised() {
        let b = "elections";
        let found = response(
            200,
            &[
                ("ETag", "\"x\""),
                ("Last-Modified", "Thu, 26 Nov 2026 04:51:40 GMT"),
                ("Date", "Thu, 26 Nov 2026 04:51:49 GMT"),
            ],
            "{}",
        );
        match classify(&GET, &found, b) {
            Outcome::Found {
                etag,
                last_modified: Some(lm),
                date: Some(d),
                ..
            } => {
                assert_eq!(etag, ETag("\"x\"".into()));
                assert_eq!(d - lm, 9);
            }
            other => panic!("{other:?}"),
        }
        let create = put(PutMode::Create);
        assert_eq!(
            classify(&GET, &response(304, &[], ""), b),
            Outcome::NotModified { date: None }
        );
        let no_key = response(404, &[], "<Error><Code>NoSuchKey</Code></Error>");
        assert_eq!(classify(&GET, &no_key, b), Outcome::NotFound);
        assert_eq!(classify(&create, &no_key, b), Outcome::PreconditionFailed);
        assert_eq!(
            classify(&Request::DeleteMember, &no_key, b),
            Outcome::NotFound
        );
        assert_eq!(
            classify(&Request::DeleteMember, &response(204, &[], ""), b),
            Outcome::Deleted
        );
        let no_bucket = response(404, &[], "<Error><Code>NoSuchBucket</Code></Error>");
        assert_eq!(
            classify(&GET, &no_bucket, b),
            Outcome::Fatal(Error::BucketMissing { bucket: b.into() })
        );
        assert_eq!(
            classify(&create, &response(412, &[], ""), b),
            Outcome::PreconditionFailed
        );
        assert_eq!(
            classify(&create, &response(409, &[], ""), b),
            Outcome::Conflict
        );
        assert_eq!(
            classify(&create, &response(200, &[("etag", "\"n\"")], ""), b),
            Outcome::Written {
                etag: ETag("\"n\"".into())
            }
        );
        let denied = response(
            403,
            &[],
            "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>bad &amp; sad</Message></Error>",
        );
        assert_eq!(
            classify(&GET, &denied, b),
            Outcome::Fatal(Error::AccessDenied {
                code: "SignatureDoesNotMatch".into(),
                message: "bad & sad".into()
            })
        );
        assert!(matches!(
            classify(&create, &response(503, &[], "<Code>SlowDown</Code>"), b),
            Outcome::Transient(_)
        ));
        assert!(matches!(
            classify(&create, &response(500, &[], ""), b),
            Outcome::Transient(_)
        ));
        assert!(matches!(
            classify(&create, &response(501, &[], ""), b),
            Outcome::Fatal(Error::ConditionalWritesUnsupported(_))
        ));
        assert!(matches!(
            classify(
                &create,
                &response(400, &[], "<Code>InvalidArgument</Code>"),
                b
            ),
            Outcome::Fatal(Error::Store { status: 400, .. })
        ));
        // A store that answers a write without an ETag cannot be used for compare-and-swap.
        assert!(matches!(
            classify(&create, &response(200, &[], ""), b),
            Outcome::Fatal(_)
        ));
    }

    #[test]
    fn list_answers_are_parsed_with_pagination() {
        let list = Request::ListMembers { continuation: None };
        let page = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/e/members/</Prefix>
<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>p/e/members/a</Key><LastModified>2026-11-26T05:45:12.345Z</LastModified><ETag>&quot;e1&quot;</ETag><Size>40</Size></Contents>
<Contents><Key>p/e/members/b</Key><LastModified>2026-11-26T05:45:13Z</LastModified><ETag>"e2"</ETag><Size>40</Size></Contents>
<NextContinuationToken>tok==</NextContinuationToken></ListBucketResult>"#;
        let r = response(200, &[("Date", "Thu, 26 Nov 2026 05:45:14 GMT")], page);
        match classify(&list, &r, "b") {
            Outcome::Listed {
                entries,
                continuation,
                date,
            } => {
                assert_eq!(entries.len(), 2);
                assert_eq!(entries[0].key, "p/e/members/a");
                assert_eq!(entries[0].etag, ETag("\"e1\"".into()));
                assert_eq!(
                    entries[1].last_modified_ms - entries[0].last_modified_ms,
                    655
                );
                assert_eq!(continuation.as_deref(), Some("tok=="));
                assert_eq!(date.unwrap() * 1000 - entries[1].last_modified_ms, 1000);
            }
            other => panic!("{other:?}"),
        }
        let last = r#"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"#;
        assert_eq!(
            classify(&list, &response(200, &[], last), "b"),
            Outcome::Listed {
                entries: vec![],
                continuation: None,
                date: None
            }
        );
        for bad in [
            "",
            "<html>proxy error</html>",
            "<ListBucketResult><Contents><Key>x</Key></Contents>",
        ] {
            assert!(
                matches!(
                    classify(&list, &response(200, &[], bad), "b"),
                    Outcome::Transient(_)
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn iso8601_times_are_read_exactly() {
        assert_eq!(iso8601_ms("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(iso8601_ms("2000-03-01T00:00:00Z"), Some(951_868_800_000));
        assert_eq!(
            iso8601_ms("2026-11-26T05:45:12.3Z"),
            Some(1_795_671_912_300)
        );
        for bad in [
            "",
            "2026-11-26",
            "2026-13-01T00:00:00Z",
            "2026-11-26T05:45:12",
            "x-y-zTa:b:cZ",
        ] {
            assert_eq!(iso8601_ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn error_bodies_are_read_defensively() {
        assert_eq!(parse_error_body(b"\xff\xfe<Code>"), S3ErrorBody::default());
        // Only what is shown is cut: at MAX_DISPLAY_CHARS characters, then an ellipsis.
        let long = format!("<Code>{}</Code>", "x".repeat(5000));
        let code = parse_error_body(long.as_bytes()).code;
        assert_eq!(code.chars().count(), MAX_DISPLAY_CHARS + 1);
        assert!(code.ends_with('…'));
        // On a character boundary, whatever the characters.
        let wide = format!("<Message>{}</Message>", "é€😀".repeat(400));
        let message = parse_error_body(wide.as_bytes()).message;
        assert_eq!(message.chars().count(), MAX_DISPLAY_CHARS + 1);
        // Control characters (a terminal escape, say) never reach a log line.
        let sneaky = "<Code>Slow\u{1b}[31mDown</Code><Message>a\nb\u{0}</Message>";
        let e = parse_error_body(sneaky.as_bytes());
        assert_eq!(e.code, "Slow [31mDown");
        assert_eq!(e.message, "a b ");
        // A malformed entity only costs the decoding.
        assert_eq!(parse_error_body(b"<Code>a & b</Code>").code, "a & b");
    }

    #[test]
    fn entities_are_decoded_once() {
        assert_eq!(
            decode_entities("&lt;&gt;&amp;&quot;&apos;").as_deref(),
            Some("<>&\"'")
        );
        assert_eq!(decode_entities("&amp;quot;").as_deref(), Some("&quot;"));
        assert_eq!(decode_entities("&amp;amp;").as_deref(), Some("&amp;"));
        assert_eq!(decode_entities("&#34;abc&#34;").as_deref(), Some("\"abc\""));
        assert_eq!(decode_entities("&#x22;&#x1F600;").as_deref(), Some("\"😀"));
        assert_eq!(decode_entities("plain").as_deref(), Some("plain"));
        for bad in [
            "&",
            "a & b",
            "&nbsp;",
            "&#;",
            "&#x;",
            "&#+34;",
            "&#x+22;",
            "&#-1;",
            "&#0;",
            "&#xD800;",
            "&#x110000;",
            "&#99999999999;",
            "&#X22;",
            "&#34",
        ] {
            assert_eq!(decode_entities(bad), None, "{bad:?}");
        }
    }

    fn list_page(contents: &str, tail: &str) -> HttpResponse {
        response(
            200,
            &[],
            &format!("<ListBucketResult><Name>b</Name>{contents}{tail}</ListBucketResult>"),
        )
    }

    fn entry(key: &str, etag: &str, modified: &str) -> String {
        format!(
            "<Contents><Key>{key}</Key><LastModified>{modified}</LastModified><ETag>{etag}</ETag></Contents>"
        )
    }

    fn bad_answer(outcome: Outcome) -> String {
        match outcome {
            Outcome::Transient(Error::BadAnswer(why)) => why,
            other => panic!("not a BadAnswer: {other:?}"),
        }
    }

    #[test]
    fn list_etags_match_get_etags_whatever_the_escaping() {
        // MinIO escapes the quotes of list ETags numerically, AWS by name, others not at all.
        let list = Request::ListMembers { continuation: None };
        let get = response(200, &[("ETag", "\"abc\"")], "{}");
        let Outcome::Found { etag: got, .. } = classify(&GET, &get, "b") else {
            panic!()
        };
        for written in [
            "&#34;abc&#34;",
            "&quot;abc&quot;",
            "\"abc\"",
            "&#x22;abc&#x22;",
        ] {
            let page = list_page(&entry("k", written, "2026-11-26T05:45:12Z"), "");
            match classify(&list, &page, "b") {
                Outcome::Listed { entries, .. } => assert_eq!(entries[0].etag, got, "{written}"),
                other => panic!("{written}: {other:?}"),
            }
        }
    }

    #[test]
    fn list_pages_out_of_bounds_are_bad_answers() {
        let list = Request::ListMembers { continuation: None };
        let t = "2026-11-26T05:45:12Z";
        let ok = |contents: &str, tail: &str| match classify(&list, &list_page(contents, tail), "b")
        {
            Outcome::Listed {
                entries,
                continuation,
                ..
            } => (entries.len(), continuation),
            other => panic!("{other:?}"),
        };
        // Exactly at the limits is fine.
        let full = entry("k", "\"e\"", t).repeat(MAX_LIST_ENTRIES);
        assert_eq!(ok(&full, "").0, MAX_LIST_ENTRIES);
        let long_key = "k".repeat(MAX_KEY_BYTES);
        assert_eq!(ok(&entry(&long_key, "\"e\"", t), "").0, 1);
        let token = "t".repeat(MAX_CONTINUATION_BYTES);
        let tail = format!(
            "<IsTruncated>true</IsTruncated><NextContinuationToken>{token}</NextContinuationToken>"
        );
        assert_eq!(
            ok("", &tail).1.map(|t| t.len()),
            Some(MAX_CONTINUATION_BYTES)
        );
        // Keys longer than 300 characters are kept whole (the old parser cut them).
        let key = format!("p/e/members/{}", "n".repeat(700));
        match classify(&list, &list_page(&entry(&key, "\"e\"", t), ""), "b") {
            Outcome::Listed { entries, .. } => assert_eq!(entries[0].key, key),
            other => panic!("{other:?}"),
        }
        // One past any of them is not.
        let too_many = format!("{full}{}", entry("k", "\"e\"", t));
        let too_long_key = "k".repeat(MAX_KEY_BYTES + 1);
        let too_long_token = format!(
            "<IsTruncated>true</IsTruncated><NextContinuationToken>{}</NextContinuationToken>",
            "t".repeat(MAX_CONTINUATION_BYTES + 1)
        );
        let long_etag = format!("\"{}\"", "e".repeat(MAX_ETAG_BYTES));
        let cases = [
            (too_many, String::new(), "more than 1000 entries"),
            (
                entry(&too_long_key, "\"e\"", t),
                String::new(),
                "a key of 1025 bytes",
            ),
            (
                String::new(),
                too_long_token,
                "continuation token of 4097 bytes",
            ),
            (
                String::new(),
                "<IsTruncated>true</IsTruncated>".into(),
                "no <NextContinuationToken>",
            ),
            (
                String::new(),
                "<IsTruncated>true</IsTruncated><NextContinuationToken></NextContinuationToken>"
                    .into(),
                "empty NextContinuationToken",
            ),
            (
                String::new(),
                "<IsTruncated>maybe</IsTruncated>".into(),
                "IsTruncated",
            ),
            (
                entry("k", "\"e\"", "1969-12-31T23:59:59Z"),
                String::new(),
                "LastModified",
            ),
            (
                entry("k", "\"e\"", "10000-01-01T00:00:00Z"),
                String::new(),
                "LastModified",
            ),
            (
                entry("k", "\"e\"", "2026-1１-26T05:45:12Z"),
                String::new(),
                "LastModified",
            ),
            (entry("k", &long_etag, t), String::new(), "ETag of"),
            (entry("k", "\"e\u{7}\"", t), String::new(), "control"),
            (entry("k", "", t), String::new(), "empty ETag"),
            (entry("", "\"e\"", t), String::new(), "an empty key"),
            (
                entry("a & b", "\"e\"", t),
                String::new(),
                "malformed entity in <Key>",
            ),
            (
                entry("<b>k</b>", "\"e\"", t),
                String::new(),
                "markup inside <Key>",
            ),
            (
                "<Contents><Key>k</Key>".into(),
                String::new(),
                "without </Contents>",
            ),
        ];
        for (contents, tail, why) in cases {
            let got = bad_answer(classify(&list, &list_page(&contents, &tail), "b"));
            assert!(got.contains(why), "{got:?} should say {why:?}");
        }
        assert!(
            bad_answer(classify(&list, &response(200, &[], "\u{fffd}"), "b"))
                .contains("not a ListBucketResult")
        );
        assert!(bad_answer(classify(
            &list,
            &HttpResponse {
                status: 200,
                headers: vec![],
                body: vec![0xff]
            },
            "b"
        ))
        .contains("UTF-8"));
    }

    #[test]
    fn etag_headers_are_checked() {
        let create = put(PutMode::Create);
        for bad in [
            String::new(),
            format!("\"{}\"", "e".repeat(MAX_ETAG_BYTES)),
            "\"a\rb\"".into(),
            "\"a\u{0}\"".into(),
        ] {
            let answer = response(200, &[("ETag", bad.as_str())], "{}");
            assert!(bad_answer(classify(&GET, &answer, "b")).starts_with("GET answer"));
            assert!(bad_answer(classify(&create, &answer, "b")).starts_with("PUT answer"));
        }
        // A missing ETag keeps its meaning: the store cannot do compare-and-swap.
        assert!(matches!(
            classify(&GET, &response(200, &[], "{}"), "b"),
            Outcome::Fatal(Error::ConditionalWritesUnsupported(_))
        ));
        // Repeated headers: the first one counts, for every header.
        let twice = response(
            200,
            &[
                ("ETag", "\"first\""),
                ("etag", "\"second\""),
                ("Date", "Thu, 26 Nov 2026 04:51:49 GMT"),
                ("DATE", "Thu, 26 Nov 2026 04:59:59 GMT"),
            ],
            "{}",
        );
        match classify(&GET, &twice, "b") {
            Outcome::Found { etag, date, .. } => {
                assert_eq!(etag, ETag("\"first\"".into()));
                assert_eq!(date, unix_seconds("Thu, 26 Nov 2026 04:51:49 GMT"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_5xx_but_501_is_transient() {
        let create = put(PutMode::Create);
        for status in (500..=599).filter(|s| *s != 501) {
            for request in [&GET, &create, &Request::DeleteMember] {
                assert!(
                    matches!(
                        classify(request, &response(status, &[], ""), "b"),
                        Outcome::Transient(Error::Store { status: s, .. }) if s == status
                    ),
                    "{status}"
                );
            }
        }
        assert!(matches!(
            classify(&create, &response(501, &[], ""), "b"),
            Outcome::Fatal(Error::ConditionalWritesUnsupported(_))
        ));
        // Redirects and other statuses S3 does not send us need a human, with the code shown.
        assert!(matches!(
            classify(&GET, &response(307, &[("Location", "http://x/")], ""), "b"),
            Outcome::Fatal(Error::Store { status: 307, .. })
        ));
        // Not an HTTP status at all: nothing is concluded.
        for status in [0, 99, 600, 999, u16::MAX] {
            bad_answer(classify(&GET, &response(status, &[], ""), "b"));
        }
    }

    #[test]
    fn http_dates_are_read_or_ignored() {
        assert_eq!(unix_seconds("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            unix_seconds("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(LATEST_UNIX_SECONDS)
        );
        for bad in [
            "",
            "yesterday",
            "Thu, 26 Nov 2026 04:51:49 GMT\u{e9}",
            "Thu, 26 Nov 2026 04:51:49 GMTé",
            "Thü, 26 Nov 2026 04:51:49 GMT",
            "Thu, 26 Nov 2026 04:51:49 GMT                                                         x",
        ] {
            assert_eq!(unix_seconds(bad), None, "{bad:?}");
        }
        let answer = response(
            200,
            &[
                ("ETag", "\"x\""),
                ("Last-Modified", "Thu, 26 Nov 2026 04:51:40 GMT€"),
                ("Date", "…"),
            ],
            "{}",
        );
        assert!(matches!(
            classify(&GET, &answer, "b"),
            Outcome::Found {
                last_modified: None,
                date: None,
                ..
            }
        ));
    }

    #[test]
    fn iso8601_never_panics_on_odd_text() {
        for odd in [
            "2026-11-26T05:45:12.éZ",
            "2026-11-26T05:45:12.1éZ",
            "2026-11-26T05:45:12.€€€€Z",
            "2026-11-26T05:45:12.Z",
            "2026-11-26T05:45:12.1234567890Z",
            "+2026-11-26T05:45:12Z",
            "2026-+1-26T05:45:12Z",
            "2026-02-30T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "9999999999999999999-01-01T00:00:00Z",
            "2026-11-26T24:00:00Z",
            // The leap second after the last second of 9999 is in year 10000.
            "9999-12-31T23:59:60.999Z",
            "é",
            "Z",
            "T",
        ] {
            assert_eq!(iso8601_ms(odd), None, "{odd:?}");
        }
        assert_eq!(iso8601_ms("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(
            iso8601_ms("9999-12-31T23:59:59.999Z"),
            Some(LATEST_UNIX_SECONDS * 1000 + 999)
        );
        assert_eq!(
            iso8601_ms("2026-11-26T05:45:12.345678Z"),
            iso8601_ms("2026-11-26T05:45:12.345Z")
        );
    }

    #[test]
    fn debug_output_never_shows_the_session_token() {
        let mut c = cfg();
        c.session_token = Some(Secret::new("FwoGZXIvYXdzEBYaDSECRETSESSIONTOKEN"));
        let r = build(&c, &keys(), &GET, system_time(T)).unwrap();
        let shown = format!("{r:?}");
        let pretty = format!("{r:#?}");
        for text in [&shown, &pretty] {
            assert!(!text.contains("SECRETSESSIONTOKEN"), "{text}");
            assert!(text.contains("x-amz-security-token"), "{text}");
            assert!(text.contains("<redacted>"), "{text}");
            // Everything else is still shown.
            assert!(text.contains("authorization") && text.contains("/elections/p/e/lease"));
        }
    }
}
