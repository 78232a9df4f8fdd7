//! A hostile S3 endpoint: a tiny HTTP/1.1 server on 127.0.0.1 whose answers are written by
//! hand, byte by byte, so that it can misbehave in ways no real server library would: endless
//! or dribbled bodies, endless list pages, malformed XML, extreme JSON, missing or repeated
//! headers, redirects, resets, silence, non-ASCII dates. It answers every request the
//! component sends (path-style `/bucket/key`, ListObjectsV2 with `list-type=2`) and checks no
//! signature.
//!
//! It never lets a lease write succeed: whatever it answers, no elector may come to lead on
//! it. The tests (`tests/hostile.rs`) check that, and that every call returns in bounded time
//! with a status or a typed error, and that the host's memory stays bounded.

use crate::api;
use crate::stores::{Credentials, Store};
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// How the store misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// `200` and a body that never ends (chunked), or claims a gigabyte and streams it.
    HugeBody,
    /// `200`, a body announced at 100 kB and sent one byte every [`DRIBBLE_EVERY`]: each read
    /// arrives well within any between-bytes timeout, the body practically never ends. Only a
    /// deadline on the whole request ends it.
    Dribble,
    /// Every ListObjectsV2 page holds 1000 new members, says IsTruncated and has a new token.
    /// Member heartbeats succeed and member objects read fine; the lease is released (so a
    /// node with a quorum checks its members before it tries to acquire) and cannot be
    /// written.
    EndlessListPages,
    /// Error and list bodies that are not XML, or are XML gone wrong (unclosed, garbage
    /// entities, 10 000-character codes, control characters, not UTF-8).
    MalformedXml,
    /// Lease and member objects whose JSON is extreme: terms and lease durations of
    /// `u64::MAX`, a released lease at the last term, 60 kB strings, 10 000-deep arrays,
    /// 10 000 members.
    ExtremeJson,
    /// `200` answers without `ETag`, `Date` or `Last-Modified`.
    MissingHeaders,
    /// Every header twice, with different values (sometimes `Content-Length` too).
    DuplicateHeaders,
    /// `301` or `307` with a `Location`, for everything.
    Redirect,
    /// The connection is closed (with a TCP reset) partway through the answer.
    Reset,
    /// The request is read, and then nothing is ever sent (the connection stays open).
    SlowHeaders,
    /// `Date` / `Last-Modified` headers and list `LastModified` times with non-ASCII text
    /// (some as UTF-8, some as bare Latin-1 bytes).
    NonAsciiDates,
    /// Each request gets one of the behaviours above, picked by a generator seeded with this
    /// and the request's number (so the sequence also depends on the order requests arrive).
    Mixed(u64),
    /// Like `Mixed`, without `Dribble` (whose every request costs a whole request timeout).
    MixedBounded(u64),
}

impl Behaviour {
    /// Every single behaviour (what `Mixed` picks from).
    pub const ALL: [Behaviour; 11] = [
        Behaviour::HugeBody,
        Behaviour::Dribble,
        Behaviour::EndlessListPages,
        Behaviour::MalformedXml,
        Behaviour::ExtremeJson,
        Behaviour::MissingHeaders,
        Behaviour::DuplicateHeaders,
        Behaviour::Redirect,
        Behaviour::Reset,
        Behaviour::SlowHeaders,
        Behaviour::NonAsciiDates,
    ];
}

/// The pause between two bytes of a dribbled body.
pub const DRIBBLE_EVERY: Duration = Duration::from_millis(50);

/// Requests the server has seen, by kind.
#[derive(Debug, Default)]
pub struct Seen {
    pub connections: AtomicU64,
    pub lease_reads: AtomicU64,
    pub lease_writes: AtomicU64,
    pub member_reads: AtomicU64,
    pub member_writes: AtomicU64,
    pub lists: AtomicU64,
    pub deletes: AtomicU64,
    pub other: AtomicU64,
    /// Every request that counts towards an elector's request-rate bound (reads and writes
    /// of a lease, writes and deletes of a member object), by key, with when it came.
    pub rated: std::sync::Mutex<Vec<(std::time::Instant, String)>>,
}

impl Seen {
    pub fn total(&self) -> u64 {
        [
            &self.lease_reads,
            &self.lease_writes,
            &self.member_reads,
            &self.member_writes,
            &self.lists,
            &self.deletes,
            &self.other,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

/// A running hostile endpoint; stops (and drops every open connection) when dropped.
pub struct HostileS3 {
    addr: SocketAddr,
    behaviour: Behaviour,
    seen: Arc<Seen>,
    task: JoinHandle<()>,
}

impl HostileS3 {
    /// Listen on an ephemeral port of 127.0.0.1 (inside a tokio runtime).
    pub async fn start(behaviour: Behaviour) -> Result<HostileS3> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the hostile S3 endpoint")?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Seen::default());
        let server = Server {
            behaviour,
            seen: seen.clone(),
            counter: AtomicU64::new(0),
        };
        let task = tokio::spawn(serve(listener, Arc::new(server)));
        Ok(HostileS3 {
            addr,
            behaviour,
            seen,
            task,
        })
    }

    /// `http://127.0.0.1:<port>`
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn behaviour(&self) -> Behaviour {
        self.behaviour
    }

    pub fn seen(&self) -> &Seen {
        &self.seen
    }

    /// This endpoint as a store (path-style; its key is never checked).
    pub fn store(&self) -> Store {
        Store {
            endpoint: self.endpoint(),
            region: "us-east-1".into(),
            path_style: true,
            credentials: Credentials {
                access_key_id: "AKIDHOSTILE".into(),
                secret_access_key: "hostile-not-checked".into(),
                session_token: None,
            },
        }
    }

    /// The component's S3 config for `bucket` here.
    pub fn s3_config(&self, bucket: &str) -> api::S3Config {
        self.store().s3_config(bucket)
    }
}

impl Drop for HostileS3 {
    fn drop(&mut self) {
        // The accept loop owns every connection task: aborting it drops them all.
        self.task.abort();
    }
}

struct Server {
    behaviour: Behaviour,
    seen: Arc<Seen>,
    /// Requests answered so far: varies the answers, and seeds `Mixed`.
    counter: AtomicU64,
}

async fn serve(listener: TcpListener, server: Arc<Server>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                server.seen.connections.fetch_add(1, Ordering::Relaxed);
                connections.spawn(connection(stream, server.clone()));
            }
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One request per connection (every answer says `Connection: close`).
async fn connection(mut stream: TcpStream, server: Arc<Server>) {
    let _ = stream.set_nodelay(true);
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let n = server.counter.fetch_add(1, Ordering::Relaxed);
    let kind = request.kind();
    let counter = match kind {
        Kind::LeaseRead => &server.seen.lease_reads,
        Kind::LeaseWrite => &server.seen.lease_writes,
        Kind::MemberRead => &server.seen.member_reads,
        Kind::MemberWrite => &server.seen.member_writes,
        Kind::List => &server.seen.lists,
        Kind::Delete => &server.seen.deletes,
        Kind::Other => &server.seen.other,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    if matches!(
        kind,
        Kind::LeaseRead | Kind::LeaseWrite | Kind::MemberWrite | Kind::Delete
    ) && !request.key.contains("/probe/")
        && !request.key.ends_with("/slot")
        && !request.key.ends_with("/job")
    {
        if let Ok(mut rated) = server.seen.rated.lock() {
            rated.push((std::time::Instant::now(), request.key.clone()));
        }
    }
    let behaviour = match server.behaviour {
        Behaviour::Mixed(seed) => pick(seed, n, &Behaviour::ALL),
        Behaviour::MixedBounded(seed) => {
            let bounded: Vec<Behaviour> = Behaviour::ALL
                .into_iter()
                .filter(|b| *b != Behaviour::Dribble)
                .collect();
            pick(seed, n, &bounded)
        }
        b => b,
    };
    let answer = answer(behaviour, &request, kind, n);
    let _ = send(&mut stream, answer).await;
}

fn pick(seed: u64, n: u64, from: &[Behaviour]) -> Behaviour {
    // splitmix64 of (seed, n).
    let mut z = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    from[(z % from.len() as u64) as usize]
}

// ----- requests ----------------------------------------------------------------------------------

#[derive(Debug)]
struct Request {
    method: String,
    /// Percent-decoded key (empty for the bucket itself).
    key: String,
    /// Percent-decoded query parameters.
    query: Vec<(String, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    LeaseRead,
    LeaseWrite,
    MemberRead,
    MemberWrite,
    List,
    Delete,
    Other,
}

impl Request {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn kind(&self) -> Kind {
        let member = self.key.contains("/members/");
        match self.method.as_str() {
            "GET" if self.param("list-type") == Some("2") => Kind::List,
            "GET" if member => Kind::MemberRead,
            "GET" if !self.key.is_empty() => Kind::LeaseRead,
            "PUT" if member => Kind::MemberWrite,
            "PUT" if !self.key.is_empty() => Kind::LeaseWrite,
            "DELETE" => Kind::Delete,
            _ => Kind::Other,
        }
    }

    /// The node a member request is about (the last key segment).
    fn node(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or_default()
    }
}

const MAX_HEAD: usize = 64 * 1024;
const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// Read one request (head and body); `None` if the client goes away or sends nonsense.
async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(at) = find(&buf, b"\r\n\r\n") {
            break at;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_string();
    let target = request_line.next()?.to_string();
    let mut content_length = 0usize;
    let mut chunked = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.trim().parse().ok()?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    // The body is read (so the client is never stuck writing it) and thrown away.
    let mut body = buf.split_off(head_end + 4);
    if chunked {
        while find(&body, b"0\r\n\r\n").is_none() && body.len() <= MAX_REQUEST_BODY {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        if content_length > MAX_REQUEST_BODY {
            return None;
        }
        while body.len() < content_length {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    // Path-style: /bucket/key.
    let key = path
        .trim_start_matches('/')
        .split_once('/')
        .map(|(_, k)| percent_decode(k))
        .unwrap_or_default();
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(n), percent_decode(v))
        })
        .collect();
    Some(Request { method, key, query })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ----- answers -----------------------------------------------------------------------------------

/// How the body of an answer goes out.
enum Body {
    Bytes(Vec<u8>),
    /// `Transfer-Encoding: chunked`, 64 KiB chunks, forever.
    EndlessChunked,
    /// A `Content-Length` of `len` (set by the head), streamed as fast as it is read.
    Huge {
        len: u64,
    },
    /// A `Content-Length` of `len`, one byte every [`DRIBBLE_EVERY`].
    Dribble {
        len: u64,
    },
    /// Head and body up to here, then a TCP reset.
    ResetAfter(Vec<u8>),
    /// Nothing at all, ever (the connection is held open).
    Silence,
}

struct Answer {
    /// Status line and headers, without the final empty line: written as is.
    head: Vec<u8>,
    body: Body,
}

/// A head: `HTTP/1.1 <status> <reason>`, the headers (raw bytes allowed), and
/// `Connection: close`. `Content-Length` is added for `Body::Bytes` unless `headers` has one.
fn head(status: u16, reason: &str, headers: &[(&str, Vec<u8>)], body: &Body) -> Vec<u8> {
    let mut h = format!("HTTP/1.1 {status} {reason}\r\n").into_bytes();
    let has_length = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
    for (name, value) in headers {
        h.extend_from_slice(name.as_bytes());
        h.extend_from_slice(b": ");
        h.extend_from_slice(value);
        h.extend_from_slice(b"\r\n");
    }
    match body {
        Body::Bytes(b) if !has_length => {
            h.extend_from_slice(format!("Content-Length: {}\r\n", b.len()).as_bytes())
        }
        Body::EndlessChunked => h.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Body::Huge { len } | Body::Dribble { len } if !has_length => {
            h.extend_from_slice(format!("Content-Length: {len}\r\n").as_bytes())
        }
        _ => {}
    }
    h.extend_from_slice(b"Connection: close\r\n");
    h
}

fn answer_with(status: u16, reason: &str, headers: &[(&str, Vec<u8>)], body: Body) -> Answer {
    Answer {
        head: head(status, reason, headers, &body),
        body,
    }
}

fn now_http() -> Vec<u8> {
    httpdate::fmt_http_date(SystemTime::now()).into_bytes()
}

/// The ETag of the one lease object this store pretends to hold (it never changes: nobody
/// can write it).
const LEASE_ETAG: &[u8] = b"\"5e1ea5e0c0ffee000000000000000001\"";

fn etag(n: u64) -> Vec<u8> {
    format!("\"{n:032x}\"").into_bytes()
}

fn error_xml(code: &str, message: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>hostile</RequestId></Error>"
    )
    .into_bytes()
}

fn xml_headers() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("Date", now_http()),
        ("Content-Type", b"application/xml".to_vec()),
        ("Server", b"HostileS3".to_vec()),
    ]
}

/// A well-formed lease record held by someone else, released (so a node wants to write).
fn released_lease() -> Vec<u8> {
    serde_json::json!({
        "format": "s3-election/lease/v1",
        "holder": "hostile",
        "term": 7,
        "lease_ms": 1500,
        "renewals": 0,
        "nonce": "0badc0de",
        "released": true,
        "metadata": "",
    })
    .to_string()
    .into_bytes()
}

fn member_body(node: &str) -> Vec<u8> {
    serde_json::json!({
        "format": "s3-election/member/v1",
        "node": node,
        "metadata": "hostile",
    })
    .to_string()
    .into_bytes()
}

/// A lease write is never accepted: it is refused with the behaviour's own twist.
fn refused_write(headers: Vec<(&str, Vec<u8>)>, body: Vec<u8>) -> Answer {
    answer_with(412, "Precondition Failed", &headers, Body::Bytes(body))
}

fn answer(behaviour: Behaviour, request: &Request, kind: Kind, n: u64) -> Answer {
    match behaviour {
        Behaviour::HugeBody => {
            let headers = [
                ("ETag", etag(n)),
                ("Date", now_http()),
                ("Last-Modified", now_http()),
                ("Content-Type", b"application/octet-stream".to_vec()),
            ];
            let body = if n.is_multiple_of(2) {
                Body::EndlessChunked
            } else {
                Body::Huge { len: 1 << 30 }
            };
            answer_with(200, "OK", &headers, body)
        }
        Behaviour::Dribble => {
            let headers = [
                ("ETag", etag(n)),
                ("Date", now_http()),
                ("Last-Modified", now_http()),
                ("Content-Type", b"application/json".to_vec()),
            ];
            answer_with(200, "OK", &headers, Body::Dribble { len: 100_000 })
        }
        Behaviour::EndlessListPages => endless_list(request, kind, n),
        Behaviour::MalformedXml => malformed_xml(kind, n),
        Behaviour::ExtremeJson => extreme_json(request, kind, n),
        Behaviour::MissingHeaders => missing_headers(request, kind, n),
        Behaviour::DuplicateHeaders => duplicate_headers(request, kind, n),
        Behaviour::Redirect => {
            let (status, reason, code) = if n.is_multiple_of(2) {
                (301, "Moved Permanently", "PermanentRedirect")
            } else {
                (307, "Temporary Redirect", "TemporaryRedirect")
            };
            let mut headers = xml_headers();
            headers.push((
                "Location",
                format!("http://127.0.0.1:9/elsewhere/{}", request.key).into_bytes(),
            ));
            answer_with(
                status,
                reason,
                &headers,
                Body::Bytes(error_xml(
                    code,
                    "Please send all future requests to this endpoint.",
                )),
            )
        }
        Behaviour::Reset => {
            let partial: &[u8] = match n % 3 {
                // Mid status line.
                0 => b"HTTP/1.1 20",
                // Mid headers.
                1 => b"HTTP/1.1 200 OK\r\nETag: \"abc\"\r\nContent-Le",
                // Mid body.
                _ => b"HTTP/1.1 200 OK\r\nETag: \"abc\"\r\nContent-Length: 1000\r\n\r\n{\"format\":\"s3-e",
            };
            Answer {
                head: Vec::new(),
                body: Body::ResetAfter(partial.to_vec()),
            }
        }
        Behaviour::SlowHeaders => Answer {
            head: Vec::new(),
            body: Body::Silence,
        },
        Behaviour::NonAsciiDates => non_ascii_dates(request, kind, n),
        Behaviour::Mixed(_) | Behaviour::MixedBounded(_) => {
            unreachable!("picked per request")
        }
    }
}

fn list_page(entries: &[(String, Vec<u8>)], token: Option<&str>) -> Vec<u8> {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>hostile</Name>",
    );
    let mut bytes = Vec::new();
    for (key, modified) in entries {
        bytes.extend_from_slice(format!("<Contents><Key>{key}</Key><LastModified>").as_bytes());
        bytes.extend_from_slice(modified);
        bytes.extend_from_slice(
            b"</LastModified><ETag>&quot;0f343b0931126a20f133d67c2b018a3b&quot;</ETag><Size>60</Size><StorageClass>STANDARD</StorageClass></Contents>",
        );
    }
    let tail = match token {
        Some(t) => format!(
            "<IsTruncated>true</IsTruncated><NextContinuationToken>{t}</NextContinuationToken></ListBucketResult>"
        ),
        None => "<IsTruncated>false</IsTruncated></ListBucketResult>".into(),
    };
    xml.push_str(&format!("<KeyCount>{}</KeyCount>", entries.len()));
    let mut out = xml.into_bytes();
    out.extend_from_slice(&bytes);
    out.extend_from_slice(tail.as_bytes());
    out
}

/// Now as S3 writes it in a list (`2026-11-26T05:45:12.345Z`).
fn iso_now() -> Vec<u8> {
    let ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    super::memserver::iso8601(ms).into_bytes()
}

fn endless_list(request: &Request, kind: Kind, n: u64) -> Answer {
    match kind {
        Kind::List => {
            let prefix = request.param("prefix").unwrap_or_default();
            let entries: Vec<(String, Vec<u8>)> = (0..1000)
                .map(|i| (format!("{prefix}hostile-{n}-{i}"), iso_now()))
                .collect();
            let token = format!("page-{n}-{}", "t".repeat(64));
            answer_with(
                200,
                "OK",
                &xml_headers(),
                Body::Bytes(list_page(&entries, Some(&token))),
            )
        }
        Kind::MemberWrite => answer_with(
            200,
            "OK",
            &[("ETag", etag(n)), ("Date", now_http())],
            Body::Bytes(Vec::new()),
        ),
        Kind::MemberRead => answer_with(
            200,
            "OK",
            &[
                ("ETag", etag(n)),
                ("Date", now_http()),
                ("Last-Modified", now_http()),
            ],
            Body::Bytes(member_body(request.node())),
        ),
        Kind::Delete => answer_with(
            204,
            "No Content",
            &[("Date", now_http())],
            Body::Bytes(vec![]),
        ),
        Kind::LeaseWrite => refused_write(
            xml_headers(),
            error_xml(
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            ),
        ),
        // A released lease: after a lease of waiting, a node wants it, and with a quorum it
        // first lists the members (endlessly).
        Kind::LeaseRead => answer_with(
            200,
            "OK",
            &[
                ("ETag", LEASE_ETAG.to_vec()),
                ("Date", now_http()),
                ("Last-Modified", b"Thu, 26 Nov 2026 00:00:00 GMT".to_vec()),
                ("Content-Type", b"application/json".to_vec()),
            ],
            Body::Bytes(released_lease()),
        ),
        Kind::Other => answer_with(
            404,
            "Not Found",
            &xml_headers(),
            Body::Bytes(error_xml("NoSuchKey", "The specified key does not exist.")),
        ),
    }
}

/// Bodies that are not the XML they should be.
fn garbage_xml(n: u64) -> Vec<u8> {
    match n % 10 {
        0 => b"<?xml version=\"1.0\"?><Error><Code>NoSuch".to_vec(),
        1 => b"<ListBucketResult><Contents><Key>a</Key><Contents><Key>b</Key></ListBucketResult>"
            .to_vec(),
        2 => format!("<Error><Code>{}</Code></Error>", "X".repeat(10_000)).into_bytes(),
        3 => b"<Error><Code>&#xFFFFFFFF;&#0;&bogus;&amp</Code><Message>\x1b[31mred\x07\x00</Message></Error>".to_vec(),
        4 => vec![0xff, 0xfe, 0x3c, 0x00, 0x45, 0x00, 0x80, 0x81],
        5 => b"<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]><Error><Code>&lol2;</Code></Error>".to_vec(),
        6 => b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec(),
        7 => b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>".to_vec(),
        8 => b"<ListBucketResult><Contents><Key></Key><ETag></ETag><LastModified>yesterday</LastModified></Contents></ListBucketResult>".to_vec(),
        _ => format!(
            "<ListBucketResult>{}</ListBucketResult>",
            "<Contents>".repeat(20_000)
        )
        .into_bytes(),
    }
}

fn malformed_xml(kind: Kind, n: u64) -> Answer {
    let headers = xml_headers();
    let (status, reason) = match kind {
        Kind::List => (200, "OK"),
        // Reads: 404 (a node then wants to create, and is refused), 403, 400, 503.
        Kind::LeaseRead | Kind::MemberRead => match n % 4 {
            0 => (404, "Not Found"),
            1 => (403, "Forbidden"),
            2 => (400, "Bad Request"),
            _ => (503, "Service Unavailable"),
        },
        Kind::LeaseWrite => (412, "Precondition Failed"),
        _ => (500, "Internal Server Error"),
    };
    answer_with(status, reason, &headers, Body::Bytes(garbage_xml(n)))
}

/// Lease JSON that is valid JSON with extreme content.
fn extreme_lease(n: u64) -> Vec<u8> {
    let max = u64::MAX;
    match n % 7 {
        // Held for ever, at the last term.
        0 => format!(
            "{{\"format\":\"s3-election/lease/v1\",\"holder\":\"hostile\",\"term\":{max},\"lease_ms\":{max},\"renewals\":{max},\"nonce\":\"x\",\"released\":false,\"metadata\":\"\"}}"
        )
        .into_bytes(),
        // Released at the last term: the next term does not exist.
        1 => format!(
            "{{\"format\":\"s3-election/lease/v1\",\"holder\":\"hostile\",\"term\":{max},\"lease_ms\":1500,\"renewals\":0,\"nonce\":\"x\",\"released\":true,\"metadata\":\"\"}}"
        )
        .into_bytes(),
        // 60 kB strings (just under the record limit).
        2 => serde_json::json!({
            "format": "s3-election/lease/v1",
            "holder": "h".repeat(30_000),
            "term": 3,
            "lease_ms": 1500,
            "renewals": 0,
            "nonce": "n".repeat(30_000),
            "released": false,
            "metadata": "",
        })
        .to_string()
        .into_bytes(),
        // Arrays nested 10 000 deep.
        3 => format!(
            "{{\"format\":\"s3-election/lease/v1\",\"members\":{}{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        )
        .into_bytes(),
        // Ten thousand members.
        4 => {
            let members: Vec<serde_json::Value> = (0..10_000)
                .map(|i| {
                    serde_json::json!({"node_id": format!("m{i}"), "metadata": "", "fresh": true})
                })
                .collect();
            serde_json::json!({
                "format": "s3-election/lease/v1",
                "holder": "hostile",
                "term": 5,
                "lease_ms": 1500,
                "renewals": 0,
                "nonce": "x",
                "released": true,
                "metadata": "",
                "members": members,
            })
            .to_string()
            .into_bytes()
        }
        // Lease of zero, numbers as floats and negative.
        5 => b"{\"format\":\"s3-election/lease/v1\",\"holder\":\"hostile\",\"term\":1e308,\"lease_ms\":-1,\"renewals\":0,\"nonce\":\"x\",\"released\":false}".to_vec(),
        _ => format!(
            "{{\"format\":\"s3-election/lease/v1\",\"holder\":\"hostile\",\"term\":{},\"lease_ms\":0,\"renewals\":0,\"nonce\":\"x\",\"released\":false,\"metadata\":\"\"}}",
            max - 1
        )
        .into_bytes(),
    }
}

fn extreme_json(request: &Request, kind: Kind, n: u64) -> Answer {
    let object_headers = |n: u64| {
        vec![
            ("ETag", etag(n)),
            ("Date", now_http()),
            ("Last-Modified", b"Thu, 01 Jan 1970 00:00:00 GMT".to_vec()),
            ("Content-Type", b"application/json".to_vec()),
        ]
    };
    match kind {
        Kind::LeaseRead => {
            answer_with(200, "OK", &object_headers(n), Body::Bytes(extreme_lease(n)))
        }
        Kind::MemberRead => {
            let body = match n % 3 {
                0 => serde_json::json!({
                    "format": "s3-election/member/v1",
                    "node": request.node(),
                    "metadata": "m".repeat(60_000),
                })
                .to_string()
                .into_bytes(),
                1 => format!(
                    "{{\"format\":{}{}}}",
                    "[".repeat(10_000),
                    "]".repeat(10_000)
                )
                .into_bytes(),
                _ => member_body(request.node()),
            };
            answer_with(200, "OK", &object_headers(n), Body::Bytes(body))
        }
        Kind::List => {
            let prefix = request.param("prefix").unwrap_or_default();
            let entries: Vec<(String, Vec<u8>)> = (0..3)
                .map(|i| (format!("{prefix}extreme-{i}"), iso_now()))
                .collect();
            answer_with(
                200,
                "OK",
                &xml_headers(),
                Body::Bytes(list_page(&entries, None)),
            )
        }
        Kind::MemberWrite => answer_with(
            200,
            "OK",
            &[("ETag", etag(n)), ("Date", now_http())],
            Body::Bytes(Vec::new()),
        ),
        Kind::Delete => answer_with(204, "No Content", &[], Body::Bytes(vec![])),
        Kind::LeaseWrite | Kind::Other => refused_write(
            xml_headers(),
            error_xml(
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            ),
        ),
    }
}

fn missing_headers(request: &Request, kind: Kind, n: u64) -> Answer {
    let plain = [("Content-Type", b"application/json".to_vec())];
    match kind {
        // Alternately: a lease without an ETag, and no lease at all (then the create is
        // answered 200 without an ETag).
        Kind::LeaseRead if n.is_multiple_of(2) => {
            answer_with(200, "OK", &plain, Body::Bytes(released_lease()))
        }
        Kind::LeaseRead => answer_with(
            404,
            "Not Found",
            &[],
            Body::Bytes(error_xml("NoSuchKey", "The specified key does not exist.")),
        ),
        Kind::LeaseWrite | Kind::MemberWrite => answer_with(200, "OK", &[], Body::Bytes(vec![])),
        Kind::MemberRead => {
            answer_with(200, "OK", &plain, Body::Bytes(member_body(request.node())))
        }
        Kind::List => {
            let prefix = request.param("prefix").unwrap_or_default();
            let entries = vec![(format!("{prefix}quiet"), iso_now())];
            answer_with(200, "OK", &[], Body::Bytes(list_page(&entries, None)))
        }
        Kind::Delete | Kind::Other => answer_with(204, "No Content", &[], Body::Bytes(vec![])),
    }
}

fn duplicate_headers(request: &Request, kind: Kind, n: u64) -> Answer {
    let first_etag = match kind {
        Kind::LeaseRead => LEASE_ETAG.to_vec(),
        _ => etag(n),
    };
    let mut headers = vec![
        ("ETag", first_etag),
        ("etag", etag(n + 1)),
        ("Date", now_http()),
        ("DATE", b"Thu, 01 Jan 1970 00:00:00 GMT".to_vec()),
        ("Last-Modified", b"Thu, 01 Jan 1970 00:00:00 GMT".to_vec()),
        ("Last-Modified", now_http()),
        ("Content-Type", b"application/json".to_vec()),
        ("Content-Type", b"text/html".to_vec()),
        ("x-amz-request-id", b"one".to_vec()),
        ("x-amz-request-id", b"two".to_vec()),
    ];
    let body = match kind {
        Kind::LeaseRead => released_lease(),
        Kind::MemberRead => member_body(request.node()),
        Kind::List => {
            let prefix = request.param("prefix").unwrap_or_default();
            list_page(&[(format!("{prefix}twice"), iso_now())], None)
        }
        _ => error_xml(
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
        ),
    };
    // Every fourth answer also has two different lengths (HTTP says: reject it).
    if n % 4 == 3 {
        headers.push(("Content-Length", body.len().to_string().into_bytes()));
        headers.push(("Content-Length", (body.len() + 7).to_string().into_bytes()));
    }
    match kind {
        Kind::LeaseWrite | Kind::Other => refused_write(headers, body),
        Kind::Delete => answer_with(204, "No Content", &headers, Body::Bytes(vec![])),
        _ => answer_with(200, "OK", &headers, Body::Bytes(body)),
    }
}

fn non_ascii_dates(request: &Request, kind: Kind, n: u64) -> Answer {
    let date: Vec<u8> = match n % 4 {
        0 => "Thu, 26 Nov 2026 05:45:14 GMT€".into(),
        1 => "Dön, 26 Növ 2026 05:45:14 GMT".into(),
        // Latin-1 bytes: not UTF-8.
        2 => b"Thu, 26 Nov 2026 05:45:14 GMT\xe9\xff".to_vec(),
        _ => "２０２６年11月26日".into(),
    };
    let modified: Vec<u8> = match n % 3 {
        0 => "2026-11-26T05:45:12.3é5Z".into(),
        1 => "2026-1１-26T05:45:12Z".into(),
        _ => b"2026-11-26T05:45:12.\xe9Z".to_vec(),
    };
    let object_etag = match kind {
        Kind::LeaseRead => LEASE_ETAG.to_vec(),
        _ => etag(n),
    };
    let headers = vec![
        ("ETag", object_etag),
        ("Date", date.clone()),
        ("Last-Modified", date),
        ("Content-Type", b"application/json".to_vec()),
    ];
    match kind {
        Kind::LeaseRead => answer_with(200, "OK", &headers, Body::Bytes(released_lease())),
        Kind::MemberRead => answer_with(
            200,
            "OK",
            &headers,
            Body::Bytes(member_body(request.node())),
        ),
        Kind::List => {
            let prefix = request.param("prefix").unwrap_or_default();
            let entries = vec![(format!("{prefix}n-{n}"), modified)];
            answer_with(200, "OK", &headers, Body::Bytes(list_page(&entries, None)))
        }
        Kind::MemberWrite => answer_with(200, "OK", &headers, Body::Bytes(vec![])),
        Kind::Delete => answer_with(204, "No Content", &headers, Body::Bytes(vec![])),
        Kind::LeaseWrite | Kind::Other => refused_write(
            headers,
            error_xml(
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            ),
        ),
    }
}

/// Write an answer. Errors (the client went away) end the connection quietly.
async fn send(stream: &mut TcpStream, answer: Answer) -> std::io::Result<()> {
    match answer.body {
        Body::Silence => {
            // Hold the connection open and say nothing; the task ends when the server stops.
            std::future::pending::<()>().await;
            Ok(())
        }
        Body::ResetAfter(partial) => {
            stream.write_all(&partial).await?;
            stream.flush().await?;
            // A linger of zero makes the close a reset (RST), not an orderly FIN.
            stream.set_zero_linger()?;
            Ok(())
        }
        body => {
            stream.write_all(&answer.head).await?;
            stream.write_all(b"\r\n").await?;
            match body {
                Body::Bytes(b) => stream.write_all(&b).await?,
                Body::EndlessChunked => {
                    let chunk = vec![b'x'; 64 * 1024];
                    let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                    framed.extend_from_slice(&chunk);
                    framed.extend_from_slice(b"\r\n");
                    loop {
                        stream.write_all(&framed).await?;
                    }
                }
                Body::Huge { len } => {
                    let chunk = vec![b'{'; 64 * 1024];
                    let mut left = len;
                    while left > 0 {
                        let n = left.min(chunk.len() as u64) as usize;
                        stream.write_all(&chunk[..n]).await?;
                        left -= n as u64;
                    }
                }
                Body::Dribble { len } => {
                    for _ in 0..len {
                        stream.write_all(b" ").await?;
                        stream.flush().await?;
                        tokio::time::sleep(DRIBBLE_EVERY).await;
                    }
                }
                Body::Silence | Body::ResetAfter(_) => unreachable!("handled above"),
            }
            stream.flush().await?;
            stream.shutdown().await
        }
    }
}
