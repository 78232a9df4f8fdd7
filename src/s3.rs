//! The S3 layer, pure: [`build`] turns a core [`Request`] into a signed HTTP request, and
//! [`classify`] turns an HTTP answer into a core [`Outcome`]. Store quirks are normalised
//! here, in one place, so the core sees one S3.

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

/// A signed request, split the way wasi:http wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// An answer as received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
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
                headers.push(("if-none-match".into(), etag_header(cfg, etag)));
            }
            (Method::Get, keys.lease.clone(), None, Vec::new())
        }
        Request::Put { mode, body } => {
            headers.extend(condition(mode, |e| etag_header(cfg, e)));
            put_json(&mut headers, body);
            (Method::Put, keys.lease.clone(), None, body.clone())
        }
        Request::PutMember { body } => {
            put_json(&mut headers, body);
            (Method::Put, keys.own_member.clone(), None, body.clone())
        }
        Request::PutProbe {
            missing_key,
            mode,
            body,
        } => {
            // The ETag is sent exactly as given: the probe tries quoted and bare forms itself.
            headers.extend(condition(mode, |e| e.0.clone()));
            put_json(&mut headers, body);
            let key = if *missing_key {
                format!("{}-missing", keys.probe)
            } else {
                keys.probe.clone()
            };
            (Method::Put, key, None, body.clone())
        }
        Request::DeleteProbe => (Method::Delete, keys.probe.clone(), None, Vec::new()),
        Request::GetSlot => (Method::Get, keys.slot.clone(), None, Vec::new()),
        Request::PutSlot { mode, body } => {
            headers.extend(condition(mode, |e| etag_header(cfg, e)));
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

/// The conditional header of a PUT: `If-None-Match: *` to create, `If-Match` to update.
fn condition(mode: &PutMode, etag: impl Fn(&ETag) -> String) -> Option<(String, String)> {
    match mode {
        PutMode::Create => Some(("if-none-match".into(), "*".into())),
        PutMode::Update(e) => Some(("if-match".into(), etag(e))),
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
    Error::InvalidConfig(crate::config::ConfigError {
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
        return Err(Error::InvalidConfig(crate::config::ConfigError {
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

/// The ETag as the store wants it in `If-Match` / `If-None-Match`: RFC and AWS quote it;
/// Ceph RGW only matches it unquoted.
fn etag_header(cfg: &S3Config, etag: &ETag) -> String {
    let bare = etag.0.trim_matches('"');
    if cfg.unquoted_etags {
        bare.to_string()
    } else {
        format!("\"{bare}\"")
    }
}

/// Normalise the answer to `request`. `bucket` is for the error message only.
pub fn classify(request: &Request, response: &HttpResponse, bucket: &str) -> Outcome {
    let status = response.status;
    let etag = || response.header("etag").map(|e| ETag(e.to_string()));
    let date = || response.header("date").and_then(unix_seconds);
    let method = match request {
        Request::Put { .. }
        | Request::PutMember { .. }
        | Request::PutSlot { .. }
        | Request::PutProbe { .. } => Method::Put,
        Request::DeleteMember | Request::DeleteProbe => Method::Delete,
        _ => Method::Get,
    };
    match (request, status) {
        (Request::ListMembers { .. }, 200) => match parse_list(&response.body) {
            Some((entries, continuation)) => Outcome::Listed {
                entries,
                continuation,
                date: date(),
            },
            None => Outcome::Transient(Error::Store {
                status,
                code: "MalformedListResult".into(),
                message: "ListObjectsV2 answer could not be read".into(),
            }),
        },
        (Request::Get { .. } | Request::GetMember { .. } | Request::GetSlot, 200) => match etag() {
            Some(etag) => Outcome::Found {
                etag,
                body: response.body.clone(),
                last_modified: response.header("last-modified").and_then(unix_seconds),
                date: date(),
            },
            None => Outcome::Fatal(Error::ConditionalWritesUnsupported(
                "GET answer without an ETag".into(),
            )),
        },
        (Request::Get { .. }, 304) => Outcome::NotModified { date: date() },
        // Every PUT (lease, member, slot, probe) succeeds the same way.
        (_, 200 | 201 | 204) if method == Method::Put => match etag() {
            Some(etag) => Outcome::Written { etag },
            None => Outcome::Fatal(Error::ConditionalWritesUnsupported(
                "PUT answer without an ETag".into(),
            )),
        },
        (_, 200 | 204) if method == Method::Delete => Outcome::Deleted,
        _ => classify_error(method, status, &parse_error_body(&response.body), bucket),
    }
}

/// The objects and the next continuation token of a ListObjectsV2 answer.
fn parse_list(body: &[u8]) -> Option<(Vec<ListEntry>, Option<String>)> {
    let text = std::str::from_utf8(body).ok()?;
    if !text.contains("<ListBucketResult") {
        return None;
    }
    let mut entries = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<Contents>") {
        let end = rest[start..].find("</Contents>")? + start;
        let block = &rest[start..end];
        entries.push(ListEntry {
            key: xml_field(block, "Key")?,
            etag: ETag(xml_field(block, "ETag")?),
            last_modified_ms: iso8601_ms(&xml_field(block, "LastModified")?)?,
        });
        rest = &rest[end..];
    }
    let truncated = xml_field(text, "IsTruncated").is_some_and(|t| t == "true");
    let next = if truncated {
        Some(xml_field(text, "NextContinuationToken")?)
    } else {
        None
    };
    Some((entries, next))
}

/// `2026-11-26T05:45:12.345Z` as Unix milliseconds.
pub fn iso8601_ms(value: &str) -> Option<u64> {
    let v = value.trim().strip_suffix('Z')?;
    let (date, time) = v.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let ms: i64 = format!("{:0<3}", &frac[..frac.len().min(3)]).parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 24 + hh) * 60 + mm) * 60 + ss)
        .ok()?
        .checked_mul(1000)?
        .checked_add(ms as u64)
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
        408 | 429 | 500 | 502 | 503 | 504 => Outcome::Transient(store()),
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

pub fn parse_error_body(body: &[u8]) -> S3ErrorBody {
    let text = String::from_utf8_lossy(&body[..body.len().min(8 * 1024)]);
    S3ErrorBody {
        code: xml_field(&text, "Code").unwrap_or_default(),
        message: xml_field(&text, "Message").unwrap_or_default(),
    }
}

fn xml_field(text: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&close)?;
    let raw: String = text[start..start + len].chars().take(300).collect();
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// An HTTP date (`Date`, `Last-Modified`) as Unix seconds.
pub fn unix_seconds(value: &str) -> Option<u64> {
    let t = httpdate::parse_http_date(value.trim()).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// Unix milliseconds to `SystemTime` (the component gets wall-clock time as numbers).
pub fn system_time(unix_ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(unix_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

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
        for request in [Request::DeleteMember, Request::DeleteProbe] {
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
    fn update_sends_if_match_quoted_or_bare() {
        let update = put(PutMode::Update(ETag("\"abc\"".into())));
        let r = build(&cfg(), &keys(), &update, system_time(T)).unwrap();
        assert_eq!(header(&r, "if-match"), Some("\"abc\""));
        let mut ceph = cfg();
        ceph.unquoted_etags = true;
        let r = build(&ceph, &keys(), &update, system_time(T)).unwrap();
        assert_eq!(header(&r, "if-match"), Some("abc"));
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
        let long = format!("<Code>{}</Code>", "x".repeat(5000));
        assert_eq!(parse_error_body(long.as_bytes()).code.len(), 300);
    }
}
