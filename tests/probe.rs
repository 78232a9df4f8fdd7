//! The store conformance probe, run by the real component: a real S3 server passes (and its
//! profile is read), a store that ignores conditional writes is refused.

mod common;

use common::*;
use host_test::api;
use host_test::host::faults::Faults;
use host_test::stores::memserver::InProcessS3;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_store_passes_and_the_scratch_object_is_removed() {
    let b = bucket("probe");
    let e = election("probed", "n1", 2000);
    let profile = env()
        .runtime
        .probe_store(&s3_config(&b), &e, Faults::new())
        .await
        .unwrap()
        .expect("ministack honours conditional writes");
    // The profile agrees with what the store does to a plain client.
    let store = &env().store;
    let url = format!("{}/{b}/tests/cross-check", store.endpoint);
    let created = store.send("PUT", &url, &[], b"one", "s3").unwrap();
    assert_eq!(created.status, 200);
    let quoted = created.etag.expect("an ETag on PUT");
    let with_quotes = store
        .send("PUT", &url, &[("if-match", &quoted)], b"two", "s3")
        .unwrap();
    assert_eq!(
        with_quotes.status == 412,
        profile.unquoted_etags,
        "If-Match {quoted} answered {}",
        with_quotes.status
    );
    let missing = format!("{}/{b}/tests/missing", store.endpoint);
    let on_missing = store
        .send("PUT", &missing, &[("if-match", "\"0123\"")], b"x", "s3")
        .unwrap();
    assert_eq!(on_missing.status == 404, profile.missing_key_not_found);
    assert!(
        matches!(on_missing.status, 404 | 412),
        "{}",
        on_missing.status
    );
    assert_eq!(
        env().store.list_keys(&b, "tests/probed/probe/").unwrap(),
        Vec::<String>::new(),
        "the scratch objects are removed"
    );
}

/// Issue 18, case 5: probes that share a node id (overlapping stateless invocations, two
/// processes with one id) each use a scratch object of their own: on an honest store all
/// pass, none deletes another's object. And an object left by an interrupted probe is
/// nobody's scratch object: it blocks nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_sharing_a_node_id_at_once_all_pass() {
    let b = bucket("probe-shared");
    env()
        .store
        .put_object(&b, "tests/probed/probe/n1", b"left over")
        .unwrap();
    let s3 = s3_config(&b);
    let probes: Vec<_> = (0..4)
        .map(|_| {
            let s3 = s3.clone();
            tokio::spawn(async move {
                env()
                    .runtime
                    .probe_store(&s3, &election("probed", "n1", 2000), Faults::new())
                    .await
                    .unwrap()
            })
        })
        .collect();
    for p in probes {
        let profile = p.await.unwrap();
        assert!(profile.is_ok(), "an honest store refused: {profile:?}");
    }
    assert_eq!(
        env().store.list_keys(&b, "tests/probed/probe/").unwrap(),
        vec!["tests/probed/probe/n1".to_string()],
        "only the old leftover is left"
    );
}

/// The probe refused the store because a second create succeeded.
fn assert_refused(answer: Result<api::StoreProfile, api::Error>) {
    match answer {
        Err(api::Error::ConditionalWritesUnsupported(why)) => {
            assert!(why.contains("If-None-Match"), "{why}")
        }
        other => panic!("the store must be refused: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_ignores_conditions_is_refused() {
    let faults = Faults::new();
    faults.serve_in_process(Arc::new(InProcessS3::ignoring_conditions()));
    let mut s3 = s3_config("ignoring-store");
    s3.endpoint = "http://in-process.invalid".into();
    let answer = env()
        .runtime
        .probe_store(&s3, &election("probed", "n1", 2000), faults)
        .await
        .unwrap();
    assert_refused(answer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3rver_which_ignores_conditions_is_refused() {
    let server = host_test::stores::s3rver::S3rver::start().expect("s3rver (npm)");
    let s3 = server.store.s3_config(&server.bucket);
    let answer = env()
        .runtime
        .probe_store(&s3, &election("probed", "n1", 2000), Faults::new())
        .await
        .unwrap();
    assert_refused(answer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn electors_that_probe_never_lead_on_s3rver() {
    let server = host_test::stores::s3rver::S3rver::start().expect("s3rver (npm)");
    let mut c = host_test::host::cluster::Cluster::new(
        env().runtime.clone(),
        server.store.s3_config(&server.bucket),
    );
    let probing = |i: u32| {
        let mut e = election("unsafe", &format!("n{i}"), 1500);
        e.probe_store = true;
        e
    };
    c.start_all((1..=3).map(probing).collect()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    c.stop_all().await;
    let h = c.history();
    assert!(h.iter().all(|o| !o.is_leader()), "{}", pretty(&h));
    let refusals = h
        .iter()
        .filter(|o| {
            o.error
                .as_deref()
                .is_some_and(|e| e.starts_with("conditional-writes-unsupported"))
        })
        .count();
    assert!(refusals >= 6, "{}", pretty(&h));
    assert!(server
        .store
        .get_object(&server.bucket, "tests/unsafe/lease")
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn electors_that_probe_elect_normally_on_a_real_store() {
    let b = bucket("probe-elect");
    let mut c = cluster(&b);
    let mut e = election("probing", "n1", 1500);
    e.probe_store = true;
    c.start(e).await.unwrap();
    c.wait_for(ms(1500) * 3, |h| h.iter().any(|o| o.is_leader()))
        .await
        .expect("a leader after the probe");
    c.stop_all().await;
    assert_invariants(&c.history());
}
