//! Virtual time: the real component on a paused tokio clock, its requests answered by an
//! in-process S3 (real sockets cannot follow a paused clock). Ten minutes of an election with
//! the default 15 s lease, drifting clocks, a crash and a resignation, in a few real seconds.

use host_test::check::history::{self, Observation};
use host_test::host::cluster::Cluster;
use host_test::host::faults::Faults;
use host_test::host::runtime::{default_component_path, Runtime};
use host_test::stores::memserver::InProcessS3;
use std::sync::Arc;
use std::time::Duration;

fn node(id: &str) -> host_test::api::ElectionConfig {
    host_test::election_config("virtual", id, "vt/")
}

#[test]
fn ten_virtual_minutes_of_default_timings_with_drift_crash_and_handover() {
    let runtime = Arc::new(Runtime::load(&default_component_path()).expect("component"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let real = std::time::Instant::now();
    rt.block_on(async {
        let started = tokio::time::Instant::now();
        let mut c = Cluster::in_process(runtime, Arc::new(InProcessS3::new()));
        // Clocks 1 % fast, exact and 1 % slow: the configured drift bound.
        for (id, rate) in [("fast", 1.01), ("exact", 1.0), ("slow", 0.99)] {
            let faults = Faults::new();
            faults.clock.set_rate(rate);
            c.start_with_faults(node(id), faults).await.unwrap();
        }
        c.wait_for(Duration::from_secs(60), |h| {
            h.iter().any(Observation::is_leader)
        })
        .await
        .expect("a leader");
        tokio::time::sleep(Duration::from_secs(120)).await;

        let old = c
            .latest()
            .into_iter()
            .find(|o| o.is_leader())
            .expect("a leader");
        let killed_at = c.now_ms();
        c.kill(&old.node);
        let took = c
            .wait_for(Duration::from_secs(60), |h| {
                h.iter()
                    .any(|o| o.at_ms > killed_at && o.is_leader() && o.node != old.node)
            })
            .await
            .expect("failover")
            - killed_at;
        // Lease 15 s + grace 1 s (+ drift) + a poll of 2 s, on virtual time.
        assert!(took <= 18_500, "failover took {took} ms of virtual time");
        assert!(took >= 10_000, "took over after only {took} ms");
        tokio::time::sleep(Duration::from_secs(120)).await;

        let second = c
            .latest()
            .into_iter()
            .find(|o| o.is_leader())
            .expect("a leader");
        let resigned_at = c.now_ms();
        c.resign(&second.node).await.unwrap().expect("resign");
        let handover = c
            .wait_for(Duration::from_secs(30), |h| {
                h.iter()
                    .any(|o| o.at_ms > resigned_at && o.is_leader() && o.node != second.node)
            })
            .await
            .expect("handover")
            - resigned_at;
        assert!(
            handover <= 2_500,
            "handover took {handover} ms of virtual time"
        );
        tokio::time::sleep(Duration::from_secs(300)).await;
        c.stop_all().await;
        let h = c.history();
        if let Err(v) = history::check(&h) {
            panic!("invariant violated on virtual time: {v}");
        }
        let virtual_elapsed = started.elapsed();
        assert!(
            virtual_elapsed >= Duration::from_secs(540),
            "{virtual_elapsed:?}"
        );
        println!(
            "{:.0} s of virtual time, {} observations, failover {took} ms, handover {handover} ms",
            virtual_elapsed.as_secs_f64(),
            h.len()
        );
    });
    println!("real time: {:.1} s", real.elapsed().as_secs_f64());
}

#[test]
fn the_example_scenario_holds_its_invariants_on_virtual_time() {
    let runtime = Arc::new(Runtime::load(&default_component_path()).expect("component"));
    let path = host_test::workspace_dir().join("host-test/scenarios/failover.txt");
    let scenario =
        host_test::cmd::scenario::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = Cluster::in_process(runtime, Arc::new(InProcessS3::new()));
        let mut log = Vec::new();
        let lines = std::sync::Mutex::new(&mut log);
        let h = host_test::cmd::scenario::run(&mut c, &scenario, |l| {
            lines.lock().unwrap().push(l.to_string())
        })
        .await
        .expect("invariants hold");
        // Every step ran (or was skipped on a node that had been killed), and leadership moved.
        assert_eq!(log.len(), scenario.steps.len(), "{log:#?}");
        let terms: std::collections::BTreeSet<u64> = h
            .iter()
            .filter(|o| o.is_leader())
            .filter_map(|o| o.term)
            .collect();
        assert!(
            terms.len() >= 4,
            "a kill, a partition, a pause and a resignation each move the lease: {terms:?}"
        );
        let svg = c.timeline_svg("scenario");
        assert!(svg.contains(">killed<") && svg.contains(">partition<"));
    });
}
