//! Settings from name/value pairs: environment variables (`wasi:cli/environment`), Spin
//! variables, wasmCloud config. The names follow the AWS SDKs and this project's `S3E_*`.

use crate::{Credentials, ElectionConfig, Options, S3Config};
use std::time::Duration;

/// Reads settings from any source of name/value pairs.
///
/// | name | meaning | default |
/// |---|---|---|
/// | `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`) | `http(s)://host[:port]` | required |
/// | `AWS_REGION` | region | `us-east-1` |
/// | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` | credentials | required |
/// | `AWS_SESSION_TOKEN` | STS session token | none |
/// | `S3E_BUCKET` | bucket | required |
/// | `S3E_VIRTUAL_HOSTED` | `true`: `bucket.endpoint` addressing | path style |
/// | `S3E_UNQUOTED_ETAGS` | `true` for Ceph RGW | quoted |
/// | `S3E_ELECTION` | election name | required by [`Settings::election`] |
/// | `S3E_NODE_ID` | this instance's id (give each its own) | required by [`Settings::election`] |
/// | `S3E_PREFIX` | key prefix, ending in `/` | none |
/// | `S3E_LEASE_MS` | lease | 15000 |
/// | `S3E_LONGEST_LEASE_MS` | the longest lease any node of the election uses (set it on every node while leases differ) | `S3E_LEASE_MS` |
pub struct Settings<F: Fn(&str) -> Option<String>> {
    get: F,
}

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    /// Settings read through `get` (e.g. `|name| std::env::var(name).ok()`).
    pub fn new(get: F) -> Self {
        Settings { get }
    }

    fn value(&self, name: &str) -> Option<String> {
        (self.get)(name).filter(|v| !v.is_empty())
    }

    fn required(&self, name: &str) -> Result<String, String> {
        self.value(name).ok_or_else(|| format!("{name} is not set"))
    }

    /// The store's settings.
    pub fn s3(&self) -> Result<S3Config, String> {
        let endpoint = self
            .value("AWS_ENDPOINT_URL_S3")
            .or_else(|| self.value("AWS_ENDPOINT_URL"))
            .ok_or("AWS_ENDPOINT_URL_S3 is not set")?;
        let mut credentials = Credentials::new(
            self.required("AWS_ACCESS_KEY_ID")?,
            self.required("AWS_SECRET_ACCESS_KEY")?,
        );
        credentials.session_token = self.value("AWS_SESSION_TOKEN");
        let mut s3 = S3Config::new(
            endpoint,
            self.value("AWS_REGION")
                .unwrap_or_else(|| "us-east-1".into()),
            self.required("S3E_BUCKET")?,
            credentials,
        );
        s3.path_style = !self.flag("S3E_VIRTUAL_HOSTED");
        s3.unquoted_etags = self.flag("S3E_UNQUOTED_ETAGS");
        Ok(s3)
    }

    /// The election's settings (`S3E_ELECTION`, `S3E_NODE_ID`, `S3E_PREFIX`, `S3E_LEASE_MS`).
    pub fn election(&self) -> Result<ElectionConfig, String> {
        let mut e = ElectionConfig::new(
            self.required("S3E_ELECTION")?,
            self.required("S3E_NODE_ID")?,
        )
        .with_prefix(self.value("S3E_PREFIX").unwrap_or_default());
        if let Some(v) = self.value("S3E_LEASE_MS") {
            let ms: u64 = v
                .parse()
                .map_err(|_| format!("S3E_LEASE_MS is not a number: {v}"))?;
            e = e.with_lease(Duration::from_millis(ms));
        }
        Ok(e)
    }

    /// The options of [`crate::Election::open_with`] (`S3E_LONGEST_LEASE_MS`).
    pub fn options(&self) -> Result<Options, String> {
        let longest_lease_ms = match self.value("S3E_LONGEST_LEASE_MS") {
            Some(v) => Some(
                v.parse()
                    .map_err(|_| format!("S3E_LONGEST_LEASE_MS is not a number: {v}"))?,
            ),
            None => None,
        };
        Ok(Options { longest_lease_ms })
    }

    fn flag(&self, name: &str) -> bool {
        self.value(name).is_some_and(|v| v == "true" || v == "1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Settings<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::new(move |k: &str| map.get(k).cloned())
    }

    #[test]
    fn every_setting_has_a_default_but_the_essentials() {
        let s = settings(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("S3E_BUCKET", "elections"),
            ("S3E_ELECTION", "jobs"),
            ("S3E_NODE_ID", "worker-a"),
        ]);
        let s3 = s.s3().unwrap();
        assert_eq!(
            (s3.endpoint.as_str(), s3.region.as_str()),
            ("http://127.0.0.1:9000", "us-east-1")
        );
        assert!(s3.path_style && !s3.unquoted_etags);
        let e = s.election().unwrap();
        assert_eq!(
            (e.election.name.as_str(), e.node_id.as_str()),
            ("jobs", "worker-a")
        );
        assert!(e.timings.is_none() && e.quorum.is_none() && !e.stateless);
    }

    #[test]
    fn a_missing_essential_is_named() {
        let s = settings(&[("S3E_ELECTION", "jobs")]);
        assert_eq!(
            s.election().err().as_deref(),
            Some("S3E_NODE_ID is not set")
        );
        assert!(s.s3().err().unwrap().contains("AWS_ENDPOINT_URL_S3"));
        let s = settings(&[
            ("S3E_ELECTION", "j"),
            ("S3E_NODE_ID", "n"),
            ("S3E_LEASE_MS", "soon"),
        ]);
        assert!(s.election().err().unwrap().contains("S3E_LEASE_MS"));
    }

    #[test]
    fn the_longest_lease_is_an_option() {
        assert_eq!(settings(&[]).options().unwrap().longest_lease_ms, None);
        let s = settings(&[("S3E_LONGEST_LEASE_MS", "60000")]);
        assert_eq!(s.options().unwrap().longest_lease_ms, Some(60_000));
        let s = settings(&[("S3E_LONGEST_LEASE_MS", "a minute")]);
        assert!(s.options().unwrap_err().contains("S3E_LONGEST_LEASE_MS"));
    }
}
