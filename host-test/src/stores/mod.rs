//! The S3 stores a run uses. This module: a store's endpoint and credentials, and the few
//! administrative calls the harness itself makes (create a bucket, plant or read an object,
//! create an IAM key), signed natively with aws-sigv4 (the elector signs its own requests in
//! the component). The servers it can start: [`ministack`] (the default, with an IAM-created
//! key), [`s3rver`] (Node.js, no conditional writes: a store to refuse), [`memserver`] (an
//! in-process S3 for virtual time) and [`hostile`] (a deliberately broken endpoint).

pub mod hostile;
pub mod memserver;
pub mod ministack;
pub mod s3rver;

use crate::api;
use anyhow::{anyhow, bail, Context, Result};
use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use std::fmt;
use std::time::{Duration, SystemTime};

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// An S3-compatible endpoint and the key to use on it.
#[derive(Clone, Debug)]
pub struct Store {
    pub endpoint: String,
    pub region: String,
    pub path_style: bool,
    pub credentials: Credentials,
}

impl Store {
    /// From `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`), `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`; `None` if no endpoint is set.
    pub fn from_env() -> Option<Result<Store>> {
        let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .ok()?;
        let var = |name: &str| std::env::var(name).with_context(|| format!("{name} is not set"));
        Some((|| {
            Ok(Store {
                endpoint: endpoint.trim_end_matches('/').to_string(),
                region: std::env::var("AWS_REGION")
                    .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                    .unwrap_or_else(|_| "us-east-1".into()),
                // Self-hosted stores want path-style; AWS itself works with both.
                path_style: std::env::var("S3_VIRTUAL_HOSTED").is_err(),
                credentials: Credentials {
                    access_key_id: var("AWS_ACCESS_KEY_ID")?,
                    secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
                    session_token: std::env::var("AWS_SESSION_TOKEN").ok(),
                },
            })
        })())
    }

    /// The component's S3 config for `bucket` on this store.
    pub fn s3_config(&self, bucket: &str) -> api::S3Config {
        api::S3Config {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            bucket: bucket.to_string(),
            path_style: self.path_style,
            credentials: api::Credentials {
                access_key_id: self.credentials.access_key_id.clone(),
                secret_access_key: self.credentials.secret_access_key.clone(),
                session_token: self.credentials.session_token.clone(),
            },
            unquoted_etags: false,
        }
    }

    fn object_url(&self, bucket: &str, key: &str) -> String {
        if key.is_empty() {
            format!("{}/{bucket}", self.endpoint)
        } else {
            format!("{}/{bucket}/{key}", self.endpoint)
        }
    }

    /// Create `bucket`; an existing bucket of ours is fine.
    pub fn create_bucket(&self, bucket: &str) -> Result<()> {
        let r = self.send("PUT", &self.object_url(bucket, ""), &[], b"", "s3")?;
        match r.status {
            200 => Ok(()),
            409 if r.body_text().contains("BucketAlreadyOwnedByYou") => Ok(()),
            _ => bail!("creating bucket {bucket}: {} {}", r.status, r.body_text()),
        }
    }

    /// Unconditional PUT of an object (tests use it to plant foreign objects).
    pub fn put_object(&self, bucket: &str, key: &str, body: &[u8]) -> Result<()> {
        let r = self.send("PUT", &self.object_url(bucket, key), &[], body, "s3")?;
        if r.status != 200 {
            bail!("PUT {key}: {} {}", r.status, r.body_text());
        }
        Ok(())
    }

    /// Delete an object (what an operator's `aws s3 rm` does).
    pub fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        let r = self.send(
            "DELETE",
            &self.object_url(bucket, key),
            &[("content-length", "0")],
            b"",
            "s3",
        )?;
        match r.status {
            200 | 204 | 404 => Ok(()),
            _ => bail!("deleting {bucket}/{key}: {} {}", r.status, r.body_text()),
        }
    }

    /// The keys under `prefix` (the first page of a ListObjectsV2: up to 1000).
    pub fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<String>> {
        let encoded: String = prefix
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let url = format!(
            "{}?list-type=2&prefix={encoded}",
            self.object_url(bucket, "")
        );
        let r = self.send("GET", &url, &[], b"", "s3")?;
        if r.status != 200 {
            bail!("LIST {prefix}: {} {}", r.status, r.body_text());
        }
        let text = r.body_text();
        Ok(text
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_string()))
            .collect())
    }

    /// GET an object's body; `None` if it does not exist.
    pub fn get_object(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let r = self.send("GET", &self.object_url(bucket, key), &[], b"", "s3")?;
        match r.status {
            200 => Ok(Some(r.body)),
            404 => Ok(None),
            _ => bail!("GET {key}: {} {}", r.status, r.body_text()),
        }
    }

    /// A signed request with these credentials.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        service: &str,
    ) -> Result<Reply> {
        signed_request(
            method,
            url,
            headers,
            body,
            service,
            &self.region,
            &self.credentials,
        )
    }
}

pub struct Reply {
    pub status: u16,
    /// The `ETag` header as sent (quotes included).
    pub etag: Option<String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sign with SigV4 and send with a blocking client (admin calls only).
pub fn signed_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    service: &str,
    region: &str,
    creds: &Credentials,
) -> Result<Reply> {
    let identity: Identity = AwsCredentials::new(
        &creds.access_key_id,
        &creds.secret_access_key,
        creds.session_token.clone(),
        None,
        "host-test",
    )
    .into();
    let mut settings = SigningSettings::default();
    if service == "s3" {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(settings)
        .build()?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let mut request = agent.request(method, url);
    for (n, v) in headers.iter().copied().chain(instructions.headers()) {
        request = request.set(n, v);
    }
    let response = match request.send_bytes(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(anyhow!("{method} {url}: {e}")),
    };
    let status = response.status();
    let etag = response.header("etag").map(str::to_string);
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes)?;
    Ok(Reply {
        status,
        etag,
        body: bytes,
    })
}

/// `<Tag>value</Tag>` from an XML answer.
pub fn xml_value(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..start + end].to_string())
}
