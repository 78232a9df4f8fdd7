//! An S3 that answers inside the host process, from the same in-memory model the simulator
//! uses (`s3_election::memstore`), for measurements that must exclude the network (tick CPU
//! time, a thousand elections in one process). It does not check signatures: every claim about
//! real stores is tested against real servers instead.

use bytes::Bytes;
use s3_election::config::Keys;
use s3_election::memstore::{EtagMatching, MemStore};
use s3_election::protocol::{ETag, Outcome, PutMode, Request};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub struct InProcessS3 {
    store: Mutex<MemStore>,
    /// Behave like a store that ignores `If-None-Match` / `If-Match` (s3rver, garage).
    ignore_conditions: bool,
    /// The store's clock: wall time at creation plus tokio's elapsed time (virtual when
    /// the runtime's time is paused).
    origin: (tokio::time::Instant, SystemTime),
}

impl Default for InProcessS3 {
    fn default() -> Self {
        InProcessS3 {
            store: Mutex::default(),
            ignore_conditions: false,
            origin: (tokio::time::Instant::now(), SystemTime::now()),
        }
    }
}

/// The S3 config a node uses to reach an in-process store (never dialled; not signed-checked).
pub fn in_process_config() -> crate::api::S3Config {
    crate::api::S3Config {
        endpoint: "http://in-process.invalid".into(),
        region: "us-east-1".into(),
        bucket: "in-process".into(),
        path_style: true,
        credentials: crate::api::Credentials {
            access_key_id: "AKIDINPROCESS".into(),
            secret_access_key: "not-checked-in-process".into(),
            session_token: None,
        },
        unquoted_etags: false,
    }
}

impl InProcessS3 {
    pub fn new() -> InProcessS3 {
        InProcessS3::default()
    }

    /// A store that matches ETags in conditional headers only in `matching`'s forms (Ceph
    /// RGW: [`EtagMatching::BareOnly`]).
    pub fn matching_etags(matching: EtagMatching) -> InProcessS3 {
        let s = InProcessS3::default();
        s.store.lock().unwrap().etag_matching = matching;
        s
    }

    /// A store that accepts every conditional write as if it were unconditional.
    pub fn ignoring_conditions() -> InProcessS3 {
        InProcessS3 {
            ignore_conditions: true,
            ..InProcessS3::default()
        }
    }

    fn now(&self) -> SystemTime {
        self.origin.1 + self.origin.0.elapsed()
    }

    /// Answer one request the way S3 would (path-style addressing).
    pub fn answer(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        body: Bytes,
    ) -> http::Response<Bytes> {
        let now = self.now();
        let now_ms = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let Some((keys, request)) = parse(method, uri, headers, body) else {
            return respond(400, &[], error_xml("InvalidRequest"));
        };
        let mut store = self.store.lock().unwrap();
        let outcome = match &request {
            Request::Put { body, .. } if self.ignore_conditions => Outcome::Written {
                etag: store.put_raw(&keys.lease, body.clone(), now_ms),
            },
            Request::PutSlot { body, .. } if self.ignore_conditions => Outcome::Written {
                etag: store.put_raw(&keys.slot, body.clone(), now_ms),
            },
            Request::PutProbe {
                scratch,
                missing_key,
                body,
                ..
            } if self.ignore_conditions => Outcome::Written {
                etag: store.put_raw(
                    &keys.probe_scratch(scratch, *missing_key),
                    body.clone(),
                    now_ms,
                ),
            },
            _ => store.apply(&keys, &request, now_ms),
        };
        drop(store);
        let date = ("date", httpdate::fmt_http_date(now));
        match outcome {
            Outcome::Found {
                etag,
                body,
                last_modified,
                ..
            } => {
                let lm = httpdate::fmt_http_date(
                    UNIX_EPOCH + Duration::from_secs(last_modified.unwrap_or(0)),
                );
                respond(
                    200,
                    &[("etag", etag.0), ("last-modified", lm), date],
                    Bytes::from(body),
                )
            }
            Outcome::NotModified { .. } => respond(304, &[date], Bytes::new()),
            Outcome::NotFound => respond(404, &[date], error_xml("NoSuchKey")),
            Outcome::Written { etag } => respond(200, &[("etag", etag.0), date], Bytes::new()),
            Outcome::PreconditionFailed => respond(412, &[date], error_xml("PreconditionFailed")),
            Outcome::Conflict => respond(409, &[date], error_xml("ConditionalRequestConflict")),
            Outcome::Deleted => respond(204, &[date], Bytes::new()),
            Outcome::Listed {
                entries,
                continuation,
                ..
            } => {
                let mut xml =
                    String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult>");
                for e in entries {
                    xml.push_str(&format!(
                        "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>{}</ETag></Contents>",
                        e.key,
                        iso8601(e.last_modified_ms),
                        e.etag.0.replace('"', "&quot;")
                    ));
                }
                match continuation {
                    Some(token) => xml.push_str(&format!("<IsTruncated>true</IsTruncated><NextContinuationToken>{token}</NextContinuationToken>")),
                    None => xml.push_str("<IsTruncated>false</IsTruncated>"),
                }
                xml.push_str("</ListBucketResult>");
                respond(200, &[date], Bytes::from(xml))
            }
            Outcome::Transient(_) | Outcome::Fatal(_) => {
                respond(500, &[date], error_xml("InternalError"))
            }
        }
    }
}

/// The core request behind an HTTP request, with the keys it concerns.
fn parse(
    method: &http::Method,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    body: Bytes,
) -> Option<(Keys, Request)> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let path = uri.path().trim_start_matches('/');
    let (_bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let key = percent_decode(key);
    if let Some(query) = uri.query() {
        let param = |name: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .map(percent_decode)
        };
        let members = param("prefix")?;
        let base = members.strip_suffix("/members/")?.to_string();
        return Some((
            keys(&base, ""),
            Request::ListMembers {
                continuation: param("continuation-token"),
            },
        ));
    }
    let mode = || match (header("if-none-match"), header("if-match")) {
        (Some(_), _) => Some(PutMode::Create),
        // As sent: the store's `etag_matching` decides which forms match.
        (None, Some(etag)) => Some(PutMode::Update(ETag(etag.to_string()))),
        (None, None) => None,
    };
    let body = body.to_vec();
    if let Some(base) = key.strip_suffix("/lease") {
        let request = match *method {
            http::Method::GET => Request::Get {
                if_none_match: header("if-none-match").map(|e| ETag(e.to_string())),
            },
            http::Method::PUT => Request::Put {
                mode: mode()?,
                body,
            },
            _ => return None,
        };
        return Some((keys(base, ""), request));
    }
    if let Some(base) = key.strip_suffix("/slot") {
        let request = match *method {
            http::Method::GET => Request::GetSlot,
            http::Method::PUT => Request::PutSlot {
                mode: mode()?,
                body,
            },
            _ => return None,
        };
        return Some((keys(base, ""), request));
    }
    if let Some(base) = key.strip_suffix("/job") {
        let request = match *method {
            http::Method::GET => Request::GetJobMarker,
            http::Method::PUT => Request::PutJobMarker { body },
            _ => return None,
        };
        return Some((keys(base, ""), request));
    }
    if let Some((base, name)) = key.split_once("/probe/") {
        // `<node>-<scratch>[-missing]`; the scratch name has no `-`.
        let (name, missing_key) = match name.strip_suffix("-missing") {
            Some(n) => (n, true),
            None => (name, false),
        };
        let (node, scratch) = name.rsplit_once('-')?;
        let scratch = scratch.to_string();
        let request = match *method {
            http::Method::PUT => Request::PutProbe {
                scratch,
                missing_key,
                mode: mode()?,
                body,
            },
            http::Method::DELETE => Request::DeleteProbe { scratch },
            _ => return None,
        };
        return Some((keys(base, node), request));
    }
    let (base, node) = key.split_once("/members/")?;
    let request = match *method {
        http::Method::GET => Request::GetMember {
            node: node.to_string(),
        },
        http::Method::PUT => Request::PutMember { body },
        http::Method::DELETE => Request::DeleteMember,
        _ => return None,
    };
    Some((keys(base, node), request))
}

fn keys(base: &str, node: &str) -> Keys {
    Keys {
        lease: format!("{base}/lease"),
        members: format!("{base}/members/"),
        own_member: format!("{base}/members/{node}"),
        slot: format!("{base}/slot"),
        job: format!("{base}/job"),
        probe: format!("{base}/probe/{node}"),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn error_xml(code: &str) -> Bytes {
    Bytes::from(format!(
        "<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>{code}</Message></Error>"
    ))
}

fn respond(status: u16, headers: &[(&str, String)], body: Bytes) -> http::Response<Bytes> {
    let mut r = http::Response::builder().status(status);
    for (n, v) in headers {
        r = r.header(*n, v);
    }
    r.body(body).expect("valid response")
}

/// Unix ms as `2026-11-26T05:45:12.345Z` (Hinnant's civil_from_days).
pub(crate) fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
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
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_round_trips_through_the_component_parser() {
        for ms in [0, 951_868_800_000, 1_795_671_912_300] {
            assert_eq!(s3_election::s3::iso8601_ms(&iso8601(ms)), Some(ms));
        }
    }

    #[test]
    fn answers_conditional_writes_like_s3() {
        let s3 = InProcessS3::new();
        let put = |h: &[(&str, &str)]| {
            let mut headers = http::HeaderMap::new();
            for (n, v) in h {
                headers.insert(
                    http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            s3.answer(
                &http::Method::PUT,
                &"/b/e/lease".parse().unwrap(),
                &headers,
                Bytes::from_static(b"{}"),
            )
        };
        let created = put(&[("if-none-match", "*")]);
        assert_eq!(created.status(), 200);
        assert_eq!(put(&[("if-none-match", "*")]).status(), 412);
        let etag = created.headers()["etag"].to_str().unwrap().to_string();
        assert_eq!(put(&[("if-match", "\"nope\"")]).status(), 412);
        assert_eq!(put(&[("if-match", &etag)]).status(), 200);
        assert_eq!(
            put(&[]).status(),
            400,
            "an unconditional lease write is refused"
        );
    }
}
