//! The S3 layer, pure: [`build`] turns a core [`Request`] into a signed HTTP request, and
//! [`classify`] turns an HTTP answer into a core [`Outcome`]. Store quirks are normalised
//! here, in one place, so the core sees one S3.

use crate::config::S3Config;
use crate::core::{ETag, Outcome, PutMode, Request};
use crate::error::Error;
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
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
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
    /// Percent-encoded path, starting with `/`.
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

/// Build and sign the HTTP request for `request` on `key`. `now` is wall-clock time, needed
/// only for the SigV4 date.
pub fn build(
    cfg: &S3Config,
    key: &str,
    request: &Request,
    now: SystemTime,
) -> Result<HttpRequest, Error> {
    let (https, host) = split_endpoint(&cfg.endpoint)?;
    let encoded_key = encode_key(key);
    let (authority, path) = if cfg.path_style {
        (host.to_string(), format!("/{}/{}", cfg.bucket, encoded_key))
    } else {
        (
            format!("{}.{}", cfg.bucket, host),
            format!("/{encoded_key}"),
        )
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    let (method, body) = match request {
        Request::Get { if_none_match } => {
            if let Some(etag) = if_none_match {
                headers.push(("if-none-match".into(), etag_header(cfg, etag)));
            }
            (Method::Get, Vec::new())
        }
        Request::Put { mode, body } => {
            match mode {
                PutMode::Create => headers.push(("if-none-match".into(), "*".into())),
                PutMode::Update(etag) => headers.push(("if-match".into(), etag_header(cfg, etag))),
                #[cfg(feature = "mutations")]
                PutMode::Overwrite => {}
            }
            headers.push(("content-type".into(), "application/json".into()));
            headers.push(("content-length".into(), body.len().to_string()));
            (Method::Put, body.clone())
        }
    };
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

/// Percent-encode a key for the path, keeping `/` between segments (RFC 3986 unreserved
/// characters pass; config validation already limits names to those).
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
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

/// Normalise an answer. `bucket` is for the error message only.
pub fn classify(method: Method, response: &HttpResponse, bucket: &str) -> Outcome {
    let status = response.status;
    let etag = || response.header("etag").map(|e| ETag(e.to_string()));
    match (method, status) {
        (Method::Get, 200) => match etag() {
            Some(etag) => Outcome::Found {
                etag,
                body: response.body.clone(),
                last_modified: response.header("last-modified").and_then(unix_seconds),
                date: response.header("date").and_then(unix_seconds),
            },
            None => Outcome::Fatal(Error::ConditionalWritesUnsupported(
                "GET answer without an ETag".into(),
            )),
        },
        (Method::Get, 304) => Outcome::NotModified {
            date: response.header("date").and_then(unix_seconds),
        },
        (Method::Put, 200 | 201 | 204) => match etag() {
            Some(etag) => Outcome::Written { etag },
            None => Outcome::Fatal(Error::ConditionalWritesUnsupported(
                "PUT answer without an ETag".into(),
            )),
        },
        _ => classify_error(method, status, &parse_error_body(&response.body), bucket),
    }
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
            Method::Get => Outcome::NotFound,
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

    #[test]
    fn create_is_a_signed_put_with_if_none_match_star() {
        let put = Request::Put {
            mode: PutMode::Create,
            body: b"{}".to_vec(),
        };
        let r = build(&cfg(), "p/e/lease", &put, system_time(T)).unwrap();
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
        let put = Request::Put {
            mode: PutMode::Update(ETag("\"abc\"".into())),
            body: vec![],
        };
        let r = build(&cfg(), "k", &put, system_time(T)).unwrap();
        assert_eq!(header(&r, "if-match"), Some("\"abc\""));
        let mut ceph = cfg();
        ceph.unquoted_etags = true;
        let r = build(&ceph, "k", &put, system_time(T)).unwrap();
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
        let r = build(&c, "a/lease", &get, system_time(T)).unwrap();
        assert!(r.https);
        assert_eq!(r.authority, "elections.s3.eu-west-1.amazonaws.com");
        assert_eq!(r.path, "/a/lease");
        assert_eq!(header(&r, "if-none-match"), Some("\"e\""));
    }

    #[test]
    fn session_token_is_signed_and_sent() {
        let mut c = cfg();
        c.session_token = Some(Secret::new("tok"));
        let r = build(
            &c,
            "k",
            &Request::Get {
                if_none_match: None,
            },
            system_time(T),
        )
        .unwrap();
        assert_eq!(header(&r, "x-amz-security-token"), Some("tok"));
    }

    #[test]
    fn signature_changes_with_the_secret() {
        let get = Request::Get {
            if_none_match: None,
        };
        let a = build(&cfg(), "k", &get, system_time(T)).unwrap();
        let mut other = cfg();
        other.secret_access_key = Secret::new("other");
        let b = build(&other, "k", &get, system_time(T)).unwrap();
        assert_ne!(header(&a, "authorization"), header(&b, "authorization"));
    }

    #[test]
    fn keys_are_percent_encoded() {
        assert_eq!(encode_key("a b/c+d"), "a%20b/c%2Bd");
    }

    #[test]
    fn answers_are_normalised() {
        use Method::*;
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
        match classify(Get, &found, b) {
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
        assert_eq!(
            classify(Get, &response(304, &[], ""), b),
            Outcome::NotModified { date: None }
        );
        let no_key = response(404, &[], "<Error><Code>NoSuchKey</Code></Error>");
        assert_eq!(classify(Get, &no_key, b), Outcome::NotFound);
        assert_eq!(classify(Put, &no_key, b), Outcome::PreconditionFailed);
        let no_bucket = response(404, &[], "<Error><Code>NoSuchBucket</Code></Error>");
        assert_eq!(
            classify(Get, &no_bucket, b),
            Outcome::Fatal(Error::BucketMissing { bucket: b.into() })
        );
        assert_eq!(
            classify(Put, &response(412, &[], ""), b),
            Outcome::PreconditionFailed
        );
        assert_eq!(classify(Put, &response(409, &[], ""), b), Outcome::Conflict);
        assert_eq!(
            classify(Put, &response(200, &[("etag", "\"n\"")], ""), b),
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
            classify(Get, &denied, b),
            Outcome::Fatal(Error::AccessDenied {
                code: "SignatureDoesNotMatch".into(),
                message: "bad & sad".into()
            })
        );
        assert!(matches!(
            classify(Put, &response(503, &[], "<Code>SlowDown</Code>"), b),
            Outcome::Transient(_)
        ));
        assert!(matches!(
            classify(Put, &response(500, &[], ""), b),
            Outcome::Transient(_)
        ));
        assert!(matches!(
            classify(Put, &response(501, &[], ""), b),
            Outcome::Fatal(Error::ConditionalWritesUnsupported(_))
        ));
        assert!(matches!(
            classify(Put, &response(400, &[], "<Code>InvalidArgument</Code>"), b),
            Outcome::Fatal(Error::Store { status: 400, .. })
        ));
        // A store that answers a write without an ETag cannot be used for compare-and-swap.
        assert!(matches!(
            classify(Put, &response(200, &[], ""), b),
            Outcome::Fatal(_)
        ));
    }

    #[test]
    fn error_bodies_are_read_defensively() {
        assert_eq!(parse_error_body(b"\xff\xfe<Code>"), S3ErrorBody::default());
        let long = format!("<Code>{}</Code>", "x".repeat(5000));
        assert_eq!(parse_error_body(long.as_bytes()).code.len(), 300);
    }
}
