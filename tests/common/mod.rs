//! Shared by the integration tests: one S3 server and one compiled component per test binary.
//!
//! The server is the one in `S3E_TEST_ENDPOINT` / `S3E_TEST_ACCESS_KEY_ID` /
//! `S3E_TEST_SECRET_ACCESS_KEY` (`S3E_TEST_REGION`) when set (`.ci/ceph.sh` writes them for
//! Ceph radosgw), otherwise a local ministack started here with an IAM-created key, so every
//! signature is verified. Each test works in its own bucket.
//!
//! The store's quirks (Ceph matches only unquoted ETags) come from the component's own
//! conformance probe, run once here, exactly as a user's `probe-store: true` elector would:
//! no test special-cases a store.
#![allow(dead_code)]

use host_test::cluster::Cluster;
use host_test::history::Observation;
use host_test::ministack::Ministack;
use host_test::runtime::{api, default_component_path, Runtime};
use host_test::store::{Credentials, Store};
use host_test::ConfigExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub struct TestEnv {
    pub runtime: Arc<Runtime>,
    pub store: Store,
    /// What the conformance probe found.
    pub profile: api::StoreProfile,
    _ministack: Option<Ministack>,
}

pub fn env() -> &'static TestEnv {
    static ENV: OnceLock<TestEnv> = OnceLock::new();
    ENV.get_or_init(|| {
        let runtime = Arc::new(
            Runtime::load(&default_component_path())
                .expect("load the component (run `make component` first)"),
        );
        let (store, ministack) = match std::env::var("S3E_TEST_ENDPOINT") {
            Ok(endpoint) => (
                Store {
                    endpoint,
                    region: std::env::var("S3E_TEST_REGION").unwrap_or_else(|_| "us-east-1".into()),
                    path_style: true,
                    credentials: Credentials {
                        access_key_id: std::env::var("S3E_TEST_ACCESS_KEY_ID")
                            .expect("S3E_TEST_ACCESS_KEY_ID"),
                        secret_access_key: std::env::var("S3E_TEST_SECRET_ACCESS_KEY")
                            .expect("S3E_TEST_SECRET_ACCESS_KEY"),
                        session_token: None,
                    },
                },
                None,
            ),
            Err(_) => {
                let m = Ministack::start().expect("start ministack");
                (m.store.clone(), Some(m))
            }
        };
        let profile = probe(&runtime, &store);
        eprintln!("test store {}: {profile:?}", store.endpoint);
        TestEnv {
            runtime,
            store,
            profile,
            _ministack: ministack,
        }
    })
}

/// The component's conformance probe against `store`, on a runtime of its own (`env()` may be
/// first called inside a test's runtime, which cannot block).
fn probe(runtime: &Arc<Runtime>, store: &Store) -> api::StoreProfile {
    let (runtime, store) = (runtime.clone(), store.clone());
    std::thread::spawn(move || {
        let bucket = format!("profile-{}", std::process::id());
        store.create_bucket(&bucket).expect("create bucket");
        let e = host_test::election_config("profile", "test-env", "tests/");
        tokio::runtime::Runtime::new()
            .expect("tokio runtime")
            .block_on(runtime.probe_store(
                &store.s3_config(&bucket),
                &e,
                host_test::faults::Faults::new(),
            ))
            .expect("run the probe")
            .unwrap_or_else(|e| panic!("the test store fails the conformance probe: {e:?}"))
    })
    .join()
    .expect("probe thread")
}

/// A fresh bucket for one test.
pub fn bucket(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "{}-{}-{}",
        test.replace('_', "-").chars().take(40).collect::<String>(),
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    env().store.create_bucket(&name).expect("create bucket");
    name
}

pub fn s3_config(bucket: &str) -> api::S3Config {
    let mut c = env().store.s3_config(bucket);
    c.unquoted_etags = env().profile.unquoted_etags;
    c
}

/// An election config with a short lease (all other timings derived from it).
pub fn election(name: &str, node: &str, lease_ms: u32) -> api::ElectionConfig {
    let mut e = host_test::election_config(name, node, "tests/");
    e.timing_mut().lease_ms = Some(lease_ms);
    e.metadata = format!("meta-{node}");
    e
}

pub fn cluster(bucket: &str) -> Cluster {
    Cluster::new(env().runtime.clone(), s3_config(bucket))
}

/// The first leader answer after `after_ms` from a node other than `not`.
pub fn new_leader_after(h: &[Observation], after_ms: u64, not: &str) -> Option<Observation> {
    h.iter()
        .filter(|o| o.at_ms > after_ms && o.is_leader() && o.node != not)
        .min_by_key(|o| o.at_ms)
        .cloned()
}

pub fn leaders_now(c: &Cluster) -> Vec<Observation> {
    c.latest().into_iter().filter(|o| o.is_leader()).collect()
}

pub fn assert_invariants(h: &[Observation]) {
    if let Err(v) = host_test::history::check(h) {
        panic!("invariant violated: {v}\nhistory:\n{}", pretty(h));
    }
}

pub fn pretty(h: &[Observation]) -> String {
    h.iter()
        .map(|o| {
            format!(
                "{:>7} {:<8} {:<8} term={:?} leader={:?} valid={} {:?} {:?}",
                o.at_ms, o.node, o.role, o.term, o.leader, o.valid_ms, o.events, o.error
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn ms(v: u32) -> Duration {
    Duration::from_millis(u64::from(v))
}

/// `n` nodes `n1..=n<n>` started at once in election `name`, once one of them leads.
pub async fn cluster_with_leader(bucket: &str, name: &str, n: u32, lease_ms: u32) -> Cluster {
    let mut c = cluster(bucket);
    let nodes = (1..=n)
        .map(|i| election(name, &format!("n{i}"), lease_ms))
        .collect();
    c.start_all(nodes).await.expect("start the nodes");
    c.wait_for(ms(lease_ms) * 3, |h| h.iter().any(Observation::is_leader))
        .await
        .unwrap_or_else(|| panic!("no leader among {n} nodes in {name}"));
    c
}

/// Whether an observation carries an event containing `what`.
pub fn has_event(o: &Observation, what: &str) -> bool {
    o.events.iter().any(|e| e.contains(what))
}

/// The answers of `node` after `after_ms`.
pub fn answers_of<'a>(h: &'a [Observation], node: &str, after_ms: u64) -> Vec<&'a Observation> {
    h.iter()
        .filter(|o| o.node == node && o.at_ms > after_ms)
        .collect()
}
