//! The real component in wasmtime against a real S3 server (ministack with an IAM key, so
//! SigV4 is verified; or the server named by S3E_TEST_ENDPOINT). Every multi-node run is
//! judged by the invariant checker: never two leaders at one instant, terms only grow.

mod common;

use common::*;
use host_test::api;
use host_test::check::history::Observation;
use host_test::host::faults::Faults;
use host_test::ConfigExt;
use std::time::Duration;

const LEASE: u32 = 2000;
/// Scheduling and request latency on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(1500);

fn derived_retry(lease: u32) -> Duration {
    ms(lease * 2 / 15)
}

fn derived_grace(lease: u32) -> Duration {
    ms(lease / 15)
}

/// Every name in the WIT package is one that every component parser accepts: older ones
/// (Spin 3.5's, which Spin's cron trigger plugin 0.3.0 is built on) refuse a kebab-case word
/// that starts with a digit, such as the `404` of a field once named `missing-key-is-404`.
#[test]
fn every_wit_name_is_kebab_case_with_words_starting_with_a_letter() {
    let path = host_test::workspace_dir().join("wit/election.wit");
    let wit = std::fs::read_to_string(&path).expect("read wit/election.wit");
    let mut bad = vec![];
    for line in wit.lines() {
        let code = line.split("//").next().unwrap_or_default();
        // Tokens of kebab-case characters; versions (`@0.2.0`) split into digits, and `->`
        // leaves a lone `-`.
        for token in code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
            if token.chars().all(|c| c.is_ascii_digit() || c == '-') {
                continue;
            }
            let ok = token.split('-').all(|word| {
                word.starts_with(|c: char| c.is_ascii_lowercase())
                    && word
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            });
            if !ok {
                bad.push(token.to_string());
            }
        }
    }
    assert!(bad.is_empty(), "names older parsers refuse: {bad:?}");
}

/// The component imports exactly what the election uses, all at WASI 0.2.0 and all within
/// the wasi:http/proxy world, so any WASI 0.2 HTTP host runs it without `-S cli`; and exports
/// the election interface. The example worker adds only its settings interface.
#[test]
fn the_component_imports_exactly_what_it_uses() {
    let mut imports = env().runtime.import_names();
    imports.sort();
    assert_eq!(
        imports,
        [
            "wasi:clocks/monotonic-clock@0.2.0",
            "wasi:clocks/wall-clock@0.2.0",
            "wasi:http/outgoing-handler@0.2.0",
            "wasi:http/types@0.2.0",
            "wasi:io/error@0.2.0",
            "wasi:io/poll@0.2.0",
            "wasi:io/streams@0.2.0",
            "wasi:random/random@0.2.0",
        ]
    );
    let root = host_test::workspace_dir();
    for (worker, settings) in [
        ("edge-worker-composed.wasm", "wasi:cli/environment@0.2.0"),
        ("edge-worker-serve.wasm", "wasi:config/store@0.2.0-rc.1"),
    ] {
        let path = root.join("target/component").join(worker);
        let mut names = host_test::host::runtime::component_imports(&path)
            .unwrap_or_else(|e| panic!("{}: {e:#} (run `make edge-worker`)", path.display()));
        names.sort();
        let mut expected = imports.clone();
        expected.push(settings.to_string());
        expected.sort();
        assert_eq!(names, expected, "{worker}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_election() {
    let b = bucket("first-election");
    let mut c = cluster(&b);
    let unix_s = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let started_s = unix_s();
    c.start(election("first", "solo", LEASE)).await.unwrap();
    // A new election first writes a vacancy: nobody leads on it for a lease + grace (a
    // deleted object's leader may still hold it).
    let first = c
        .wait_for(ms(LEASE) * 3, |h| h.iter().any(Observation::is_leader))
        .await
        .expect("a single node elects itself");
    assert!(
        ms(first as u32) >= ms(LEASE) + derived_grace(LEASE),
        "led after {first} ms, before the vacancy aged"
    );
    let leader = leaders_now(&c).pop().unwrap();
    // The first term comes from the store's clock (Unix seconds × 100 000).
    let term = leader.term.expect("a term");
    assert!(
        (started_s * 100_000..=(unix_s() + 1) * 100_000).contains(&term),
        "term {term}"
    );
    assert_eq!(leader.leader.as_deref(), Some("solo"));
    assert!(leader.valid_ms > 0 && leader.valid_ms <= u64::from(LEASE));
    assert!(
        leader
            .events
            .iter()
            .any(|e| *e == format!("elected(term={term})")),
        "{:?}",
        leader.events
    );
    // The record in the bucket says the same.
    let body = env()
        .store
        .get_object(&b, "tests/first/lease")
        .unwrap()
        .expect("lease object");
    let record: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(record["holder"], "solo");
    assert_eq!(record["term"], term);
    assert_eq!(record["metadata"], "meta-solo");
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_leader_among_five_started_at_once_over_20_rounds() {
    let b = bucket("one-of-five");
    for round in 0..20 {
        let mut c = cluster(&b);
        let name = format!("round-{round}");
        let nodes = (0..5)
            .map(|i| election(&name, &format!("n{i}"), 1500))
            .collect();
        c.start_all(nodes).await.unwrap();
        c.wait_for(ms(1500) * 3, |h| h.iter().any(Observation::is_leader))
            .await
            .unwrap_or_else(|| panic!("round {round}: no leader"));
        // Let the others poll a few times, then check that one node leads and all agree.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let latest = c.latest();
        let leaders: Vec<_> = latest.iter().filter(|o| o.is_leader()).collect();
        assert_eq!(leaders.len(), 1, "round {round}:\n{}", pretty(&latest));
        let leader = leaders[0].node.clone();
        for o in &latest {
            assert_eq!(
                o.leader.as_deref(),
                Some(leader.as_str()),
                "round {round}: {o:?}"
            );
        }
        c.stop_all().await;
        assert_invariants(&c.history());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_failover_within_lease_plus_retry_plus_slack() {
    let b = bucket("failover");
    let mut c = cluster_with_leader(&b, "fo", 3, LEASE).await;
    tokio::time::sleep(ms(LEASE)).await;
    let old = leaders_now(&c).pop().expect("a leader");
    let killed_at = c.now_ms();
    c.kill(&old.node);
    let bound = ms(LEASE) + derived_grace(LEASE) + derived_retry(LEASE) + SLACK;
    c.wait_for(bound + SLACK, |h| {
        new_leader_after(h, killed_at, &old.node).is_some()
    })
    .await
    .expect("a new leader");
    let h = c.history();
    let new = new_leader_after(&h, killed_at, &old.node).unwrap();
    let failover = Duration::from_millis(new.at_ms - killed_at);
    assert!(
        failover <= bound,
        "failover took {failover:?}, bound {bound:?}"
    );
    // Never before the old lease could have run out.
    assert!(
        failover >= ms(LEASE) / 2,
        "took over after only {failover:?}"
    );
    assert!(new.term > old.term, "{new:?} after {old:?}");
    c.stop_all().await;
    assert_invariants(&c.history());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resign_hands_over_within_about_one_retry_period() {
    let b = bucket("handover");
    let mut c = cluster_with_leader(&b, "ho", 3, LEASE).await;
    tokio::time::sleep(ms(LEASE / 2)).await;
    let old = leaders_now(&c).pop().expect("a leader");
    let resigned_at = c.now_ms();
    let answer = c.resign(&old.node).await.unwrap().expect("resign succeeds");
    assert_eq!(answer.role, api::Role::Follower);
    assert!(answer.events.iter().any(
        |e| matches!(e, api::Event::Demoted(d) if matches!(d.reason, api::DemoteReason::Resigned))
    ));
    let bound = derived_retry(LEASE) + SLACK;
    c.wait_for(ms(LEASE), |h| {
        new_leader_after(h, resigned_at, &old.node).is_some()
    })
    .await
    .expect("a new leader");
    let new = new_leader_after(&c.history(), resigned_at, &old.node).unwrap();
    let handover = Duration::from_millis(new.at_ms - resigned_at);
    assert!(
        handover <= bound,
        "handover took {handover:?}, bound {bound:?}"
    );
    assert!(new.term > old.term, "{new:?} after {old:?}");
    // The resigned node stays out.
    tokio::time::sleep(ms(LEASE)).await;
    assert!(c
        .latest()
        .iter()
        .all(|o| o.node != old.node || !o.is_leader()));
    c.stop_all().await;
    assert_invariants(&c.history());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terms_grow_across_leaders_and_hold_across_renewals() {
    let b = bucket("terms");
    let mut c = cluster(&b);
    c.start_all(
        (1..=4)
            .map(|i| election("terms", &format!("n{i}"), 1500))
            .collect(),
    )
    .await
    .unwrap();
    let faults: Vec<_> = c.node_ids().iter().filter_map(|id| c.faults(id)).collect();
    // Three changes of leader: resign, kill, resign.
    for step in 0..3 {
        let from = c.now_ms();
        c.wait_for(ms(1500) * 4, |h| {
            h.iter().any(|o| o.at_ms > from && o.is_leader())
        })
        .await
        .unwrap_or_else(|| panic!("step {step}: no leader"));
        tokio::time::sleep(ms(1500)).await; // several renewals
        let leader = leaders_now(&c).pop().expect("a leader").node;
        if step == 1 {
            c.kill(&leader);
        } else {
            c.resign(&leader).await.unwrap().unwrap();
        }
    }
    let from = c.now_ms();
    c.wait_for(ms(1500) * 4, |h| {
        h.iter().any(|o| o.at_ms > from && o.is_leader())
    })
    .await
    .unwrap();
    c.stop_all().await;
    let h = c.history();
    assert_invariants(&h);
    // Every write of the lease carried a condition (If-None-Match or If-Match), as seen on
    // the wire by the host.
    let writes: u64 = faults.iter().map(|f| f.requests().puts).sum();
    let unconditional: u64 = faults.iter().map(|f| f.unconditional_lease_writes()).sum();
    assert!(writes > 10, "{writes} writes");
    assert_eq!(unconditional, 0, "unconditional lease writes");
    // Leadership stretches in time order: the term is fixed within one, grows between them.
    let mut stretches: Vec<(String, u64)> = Vec::new();
    let mut leader_answers: Vec<&Observation> = h.iter().filter(|o| o.is_leader()).collect();
    leader_answers.sort_by_key(|o| o.at_ms);
    for o in leader_answers {
        let term = o.term.unwrap();
        match stretches.last() {
            Some((node, t)) if *node == o.node => {
                assert_eq!(*t, term, "term changed during a renewal")
            }
            Some((_, t)) => {
                assert!(term > *t, "term {term} after {t}");
                stretches.push((o.node.clone(), term));
            }
            None => stretches.push((o.node.clone(), term)),
        }
    }
    assert!(stretches.len() >= 4, "{stretches:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_store_steps_down_before_its_lease_can_be_taken() {
    let b = bucket("cut-off");
    let mut c = cluster_with_leader(&b, "cut", 3, LEASE).await;
    tokio::time::sleep(ms(LEASE / 2)).await;
    let old = leaders_now(&c).pop().expect("a leader");
    let cut_at = c.now_ms();
    c.faults(&old.node).unwrap().partition(true);
    c.wait_for(ms(LEASE) * 4, |h| {
        new_leader_after(h, cut_at, &old.node).is_some()
    })
    .await
    .expect("a new leader");
    let h = c.history();
    let new = new_leader_after(&h, cut_at, &old.node).unwrap();
    let stepped_down = h
        .iter()
        .filter(|o| o.node == old.node && o.at_ms > cut_at)
        .find(|o| {
            o.events
                .iter()
                .any(|e| e.contains("renew-deadline-exceeded"))
        })
        .unwrap_or_else(|| panic!("{} never stepped down:\n{}", old.node, pretty(&h)));
    assert!(
        stepped_down.at_ms < new.at_ms,
        "old leader stepped down at {} ms, new leader at {} ms",
        stepped_down.at_ms,
        new.at_ms
    );
    // The cut-off node reported the transport failure while retrying.
    assert!(h.iter().any(|o| o.node == old.node
        && o.last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("transport"))));
    // Healed, it follows the new leader.
    c.faults(&old.node).unwrap().partition(false);
    let healed = c.now_ms();
    c.wait_for(ms(LEASE) * 2, |h| {
        h.iter().any(|o| {
            o.node == old.node && o.at_ms > healed && o.leader.as_deref() == Some(new.node.as_str())
        })
    })
    .await
    .expect("the healed node sees the new leader");
    c.stop_all().await;
    assert_invariants(&c.history());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_nodes_elect_fail_over_and_hand_over() {
    let b = bucket("stateless");
    let mut c = cluster(&b);
    let stateless = |i: u32| {
        let mut e = election("sl", &format!("s{i}"), LEASE);
        e.stateless = true;
        e
    };
    c.start_all((1..=3).map(stateless).collect()).await.unwrap();
    c.wait_for(ms(LEASE) * 3, |h| h.iter().any(Observation::is_leader))
        .await
        .expect("a stateless leader");
    tokio::time::sleep(ms(LEASE)).await;
    let first = leaders_now(&c).pop().expect("a leader");
    // A fresh instance per tick resumes its own lease: the term holds across ticks.
    let h = c.history();
    let first_terms: Vec<u64> = h
        .iter()
        .filter(|o| o.node == first.node && o.is_leader())
        .filter_map(|o| o.term)
        .collect();
    assert!(
        first_terms.len() >= 2 && first_terms.iter().all(|t| *t == first_terms[0]),
        "{first_terms:?}"
    );

    // Crash: the store's clock decides expiry (lease + grace + 1 s for Last-Modified).
    let killed_at = c.now_ms();
    c.kill(&first.node);
    let bound =
        ms(LEASE) + derived_grace(LEASE) + Duration::from_secs(2) + derived_retry(LEASE) + SLACK;
    c.wait_for(bound + SLACK, |h| {
        new_leader_after(h, killed_at, &first.node).is_some()
    })
    .await
    .expect("stateless failover");
    let second = new_leader_after(&c.history(), killed_at, &first.node).unwrap();
    assert!(Duration::from_millis(second.at_ms - killed_at) <= bound);
    assert!(second.term > first.term);

    // Clean handover.
    tokio::time::sleep(ms(LEASE / 2)).await;
    let resigned_at = c.now_ms();
    c.resign(&second.node).await.unwrap().expect("resign");
    c.wait_for(ms(LEASE) * 2, |h| {
        new_leader_after(h, resigned_at, &second.node).is_some()
    })
    .await
    .expect("stateless handover");
    c.stop_all().await;
    assert_invariants(&c.history());
}

/// Open one node and tick it once.
async fn tick_once(s3: api::S3Config, e: api::ElectionConfig) -> Result<api::Status, api::Error> {
    let mut node = env()
        .runtime
        .open(&s3, &e, Faults::new())
        .await
        .unwrap()
        .expect("config is valid");
    node.tick().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_access_denied() {
    let b = bucket("wrong-secret");
    let mut s3 = s3_config(&b);
    s3.credentials.secret_access_key = "definitely-not-the-secret".into();
    match tick_once(s3, election("x", "n", LEASE)).await {
        Err(api::Error::AccessDenied(e)) => {
            assert_eq!(e.status, 403);
            assert_eq!(e.code, "SignatureDoesNotMatch");
            // Neither the wrong secret nor the right one shows in the error.
            let shown = format!(
                "{e:?} {}",
                host_test::describe_error(&api::Error::AccessDenied(e.clone()))
            );
            assert!(!shown.contains("definitely-not-the-secret"), "{shown}");
            assert!(
                !shown.contains(&env().store.credentials.secret_access_key),
                "{shown}"
            );
        }
        other => panic!("{other:?}"),
    }
    // An unknown key id is refused too.
    let mut s3 = s3_config(&b);
    s3.credentials.access_key_id = "AKIANOSUCHKEY0000000".into();
    assert!(matches!(
        tick_once(s3, election("x", "n", LEASE)).await,
        Err(api::Error::AccessDenied(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_a_clear_error() {
    let s3 = s3_config("no-such-bucket-s3e");
    match tick_once(s3, election("x", "n", LEASE)).await {
        Err(api::Error::BucketMissing(name)) => assert_eq!(name, "no-such-bucket-s3e"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_at_the_lease_key_is_a_foreign_record_and_is_never_overwritten() {
    let b = bucket("foreign");
    let key = "tests/foreign/lease";
    let garbage = b"this is not a lease record \x00\xff";
    env().store.put_object(&b, key, garbage).unwrap();
    let mut c = cluster(&b);
    c.start_all(
        (1..=3)
            .map(|i| election("foreign", &format!("n{i}"), 1500))
            .collect(),
    )
    .await
    .unwrap();
    tokio::time::sleep(ms(1500) * 3).await;
    c.stop_all().await;
    let h = c.history();
    assert!(h.iter().all(|o| !o.is_leader()), "{}", pretty(&h));
    assert!(
        h.iter()
            .filter(|o| o
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("foreign-record")))
            .count()
            >= 6
    );
    assert_eq!(
        env().store.get_object(&b, key).unwrap().as_deref(),
        Some(&garbage[..])
    );
    // A record of an unknown (future) format is refused the same way.
    let future = br#"{"format":"s3-election/lease/v9","holder":"x","term":9}"#;
    env().store.put_object(&b, key, future).unwrap();
    assert!(matches!(
        tick_once(s3_config(&b), election("foreign", "n1", 1500)).await,
        Err(api::Error::ForeignRecord(_))
    ));
    assert_eq!(
        env().store.get_object(&b, key).unwrap().as_deref(),
        Some(&future[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_is_refused_at_open_before_any_request() {
    let b = bucket("bad-config");
    let faults = Faults::new();
    let mut e = election("x", "n", LEASE);
    e.timing_mut().renew_deadline_ms = Some(LEASE);
    let refused = env()
        .runtime
        .open(&s3_config(&b), &e, faults.clone())
        .await
        .unwrap();
    match refused {
        Err(api::Error::InvalidConfig(c)) => assert_eq!(c.field, "renew-deadline-ms"),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("accepted a renew deadline equal to the lease"),
    }
    let mut e = election("bad/name", "n", LEASE);
    e.election.key_prefix = "tests/".into();
    assert!(
        matches!(env().runtime.open(&s3_config(&b), &e, faults.clone()).await.unwrap(), Err(api::Error::InvalidConfig(c)) if c.field == "name")
    );
    let mut s3 = s3_config(&b);
    s3.endpoint = "ftp://example".into();
    assert!(
        matches!(env().runtime.open(&s3, &election("x", "n", LEASE), faults.clone()).await.unwrap(), Err(api::Error::InvalidConfig(c)) if c.field == "endpoint")
    );
    assert_eq!(
        faults.requests().total(),
        0,
        "nothing may be sent for a bad config"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_is_one_put_and_a_follower_poll_is_one_get() {
    let b = bucket("costs");
    let mut c = cluster(&b);
    c.start(election("cost", "leader", 1500)).await.unwrap();
    c.wait_for(ms(1500) * 3, |h| h.iter().any(Observation::is_leader))
        .await
        .unwrap();
    let renewals = || {
        let body = env()
            .store
            .get_object(&b, "tests/cost/lease")
            .unwrap()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["renewals"]
            .as_u64()
            .unwrap()
    };
    // Steady state from here: count what the leader sends from now on.
    let leader_faults = c.faults("leader").unwrap();
    let (leader_before, renewals_before) = (leader_faults.requests(), renewals());
    c.start(election("cost", "follower", 1500)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let follower_faults = c.faults("follower").unwrap();
    c.kill("leader");
    c.kill("follower");
    tokio::time::sleep(Duration::from_millis(200)).await; // let the aborted tasks stop
    let (leader, follower) = (leader_faults.requests(), follower_faults.requests());
    let renewed = renewals() - renewals_before;
    assert!(renewed >= 4, "{renewed}");
    // A leader sends one PUT per renewal and nothing else (it does not poll).
    assert_eq!(leader.gets, leader_before.gets, "{leader:?}");
    // (One renewal may fall between the two snapshots, or be cut short by the kill.)
    let puts = leader.puts - leader_before.puts;
    assert!(
        puts.abs_diff(renewed) <= 1,
        "{puts} PUTs for {renewed} renewals: {leader:?}"
    );
    // The follower only reads, at most one GET per tick, and polls several times.
    let h = c.history();
    let ticks: Vec<&Observation> = h.iter().filter(|o| o.node == "follower").collect();
    assert_eq!(follower.puts, 0, "{follower:?}");
    assert!(ticks.iter().all(|o| o.requests <= 1), "{}", pretty(&h));
    let polls: u64 = ticks.iter().map(|o| u64::from(o.requests)).sum();
    assert!(polls >= 5, "{polls} polls");
    // The hook may also have seen the GET of a tick cut short by the kill.
    assert!(
        follower.gets == polls || follower.gets == polls + 1,
        "{follower:?} for {polls} polls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_query_reads_without_writing() {
    let b = bucket("observer");
    let mut c = cluster(&b);
    c.start(election("obs", "leader", LEASE)).await.unwrap();
    c.wait_for(ms(LEASE) * 2, |h| h.iter().any(Observation::is_leader))
        .await
        .unwrap();
    let faults = Faults::new();
    let mut observer = env()
        .runtime
        .open(
            &s3_config(&b),
            &election("obs", "watcher", LEASE),
            faults.clone(),
        )
        .await
        .unwrap()
        .unwrap();
    let leader = observer
        .query_leader()
        .await
        .unwrap()
        .unwrap()
        .expect("a leader");
    let term = leaders_now(&c).pop().and_then(|o| o.term);
    assert_eq!(
        (
            leader.node_id.as_str(),
            Some(leader.term),
            leader.metadata.as_str()
        ),
        ("leader", term, "meta-leader")
    );
    assert_eq!(faults.requests().puts, 0);
    // Without a node id, from a fresh instance: the same answer, one GET.
    let anyone = Faults::new();
    let who = env()
        .runtime
        .who_leads(
            &s3_config(&b),
            &host_test::election_ref("obs", "tests/"),
            anyone.clone(),
        )
        .await
        .unwrap()
        .unwrap()
        .expect("a leader");
    assert_eq!((who.node_id.as_str(), Some(who.term)), ("leader", term));
    assert_eq!((anyone.requests().gets, anyone.requests().puts), (1, 0));
    c.stop_all().await;
}

/// Issue 25: the sidecar as a user starts it on this store, with no probe and no
/// `unquoted-etags` (on Ceph RGW, which matches only bare ETags, the component learns that
/// from the store's answers): it leads within the new election's vacancy wait (lease + grace,
/// into a later second of the store's clock) plus slack, and keeps to the request-rate bound
/// from its first line to its last.
#[test]
fn a_sidecar_with_the_default_settings_leads_in_time_and_never_hammers_the_store() {
    use s3_election::core::{MAX_REQUESTS_PER_RATE_WINDOW, RATE_WINDOW_RETRY_PERIODS};
    let mut nodes = Nodes::new(bucket("default-path"), "default", LEASE);
    let started = std::time::Instant::now();
    let mut node = host_test_node();
    node.env_remove("S3E_UNQUOTED_ETAGS");
    nodes.spawn(node, "d1");
    let bound = ms(LEASE) + derived_grace(LEASE) + Duration::from_secs(1) + SLACK;
    nodes.wait_for("d1 leads", bound * 2, |h| h.iter().any(|o| o.is_leader()));
    let took = started.elapsed();
    std::thread::sleep(ms(LEASE) * 2);
    nodes.signal("d1", "-TERM");
    let h = nodes.history();
    assert!(took <= bound, "led after {took:?} (bound {bound:?})");
    let window_ms = (derived_retry(LEASE) * RATE_WINDOW_RETRY_PERIODS).as_millis() as u64;
    let busiest = host_test::check::history::busiest_window(&h, "d1", window_ms);
    assert!(
        busiest as usize <= MAX_REQUESTS_PER_RATE_WINDOW,
        "{busiest} requests in {window_ms} ms:\n{}",
        pretty(&h)
    );
    assert_invariants(&h);
}
