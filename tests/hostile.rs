//! The real component against a hostile S3 endpoint (`host_test::stores::hostile`): endless and
//! dribbled bodies, endless list pages, malformed XML, extreme JSON, missing and repeated
//! headers, redirects, resets, silence, non-ASCII dates, and a per-request mix of them.
//!
//! For each behaviour, short-lease nodes of every kind (plain, quorum, stateless, probing) tick
//! for a few seconds through a [`Cluster`], while two timed nodes, a slot claimer and the store
//! probe run beside them. Then:
//!
//! - no node ever reports leader, and no slot claim is won (the store never accepts a write);
//! - every answer is a status or a typed error whose text is short and printable;
//! - no call takes longer than [`call_bound`] (a tick is at most 4 requests, a probe at most
//!   9, a slot claim at most 8, each bounded by its request timeout), and none traps;
//! - the host's resident memory grows by less than [`RSS_GROWTH_BOUND`];
//! - every election's nodes together keep to the core's request-rate bound: in any window of
//!   `RATE_WINDOW_RETRY_PERIODS` retry periods, at most `MAX_REQUESTS_PER_RATE_WINDOW` per
//!   node for the lease and their own member objects, whatever the store answers.
//!
//! No S3 server is needed. The tests run one at a time (timings and memory are per test).

use host_test::api;
use host_test::check::history::Observation;
use host_test::host::cluster::Cluster;
use host_test::host::faults::Faults;
use host_test::host::runtime::{default_component_path, Runtime};
use host_test::stores::hostile::{Behaviour, HostileS3};
use host_test::ConfigExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const LEASE_MS: u32 = 1500;
/// Every request's deadline, for the whole request: connect, headers and body.
const REQUEST_TIMEOUT_MS: u32 = 200;
/// How long the nodes run against each behaviour.
const RUN: Duration = Duration::from_secs(5);
/// The request timeout of the calls that take no timings (`claim-slot`'s job, `who-leads`'s
/// election): the default lease's (15 s × 2/15).
const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 2000;
/// A call still running after this is reported as hung (and the test fails).
const HANG: Duration = Duration::from_secs(30);

/// The longest a call may take: its most requests, each within its request timeout, and a
/// second of slack for a loaded machine.
fn call_bound(what: &str) -> Duration {
    let ours = u64::from(REQUEST_TIMEOUT_MS);
    let (requests, timeout_ms) = match what {
        "probe-store" => (s3_election::probe::MAX_PROBE_REQUESTS as u64, ours),
        "claim-slot" => (
            s3_election::slot::MAX_SLOT_REQUESTS as u64,
            DEFAULT_REQUEST_TIMEOUT_MS,
        ),
        "who-leads" => (1, DEFAULT_REQUEST_TIMEOUT_MS),
        // open sends nothing; a tick at most four requests.
        _ => (4, ours),
    };
    Duration::from_millis(requests * timeout_ms + 1000)
}
/// Generous: eight wasm instances at a time, each holding a few 256 KiB bodies at most.
const RSS_GROWTH_BOUND_MIB: u64 = 128;
const RSS_GROWTH_BOUND: u64 = RSS_GROWTH_BOUND_MIB * 1024 * 1024;
/// Longest error text a person may be shown (a store's message is cut at 512 characters).
const MAX_ERROR_TEXT: usize = 2048;

fn runtime() -> Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Arc::new(
                Runtime::load(&default_component_path())
                    .expect("load the component (run `make component` first)"),
            )
        })
        .clone()
}

/// One test at a time: the timing and memory bounds are about one behaviour.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PREFIX: &str = "hostile/";

fn election(name: &str, node: &str) -> api::ElectionConfig {
    let mut e = host_test::election_config(name, node, PREFIX);
    let t = e.timing_mut();
    t.lease_ms = Some(LEASE_MS);
    t.request_timeout_ms = Some(REQUEST_TIMEOUT_MS);
    e.metadata = format!("meta-{node}");
    e
}

fn with_quorum(mut e: api::ElectionConfig) -> api::ElectionConfig {
    e.quorum = Some(host_test::quorum(2));
    e
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// What an error must look like: printable and short.
fn readable(text: &str) -> Result<(), String> {
    if text.len() > MAX_ERROR_TEXT {
        return Err(format!("{} bytes of error text", text.len()));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("control characters in {text:?}"));
    }
    Ok(())
}

/// Everything that went wrong in one run, as lines.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn push(&mut self, what: String) {
        self.0.push(what);
    }
}

/// One call's result, timed.
struct Call {
    what: &'static str,
    took: Duration,
    /// `Ok(text)`: a status or typed error, described. `Err`: a trap, or hung.
    answer: Result<String, String>,
    leader: bool,
}

async fn timed<T>(
    what: &'static str,
    call: impl std::future::Future<Output = anyhow::Result<Result<T, api::Error>>>,
    describe: impl FnOnce(&T) -> (String, bool),
) -> Call {
    let started = Instant::now();
    let outcome = tokio::time::timeout(HANG, call).await;
    let took = started.elapsed();
    let (answer, leader) = match outcome {
        Err(_) => (Err(format!("hung: no answer after {HANG:?}")), false),
        Ok(Err(trap)) => (Err(format!("trapped: {trap:#}")), false),
        Ok(Ok(Ok(v))) => {
            let (text, leader) = describe(&v);
            (Ok(text), leader)
        }
        Ok(Ok(Err(e))) => (Ok(host_test::describe_error(&e)), false),
    };
    Call {
        what,
        took,
        answer,
        leader,
    }
}

fn describe_status(s: &api::Status) -> (String, bool) {
    let last = s
        .last_error
        .as_ref()
        .map(host_test::describe_error)
        .unwrap_or_default();
    (format!("{:?} {last}", s.role), s.role == api::Role::Leader)
}

/// A node ticking on its own, every call timed (a hung or trapped call ends it).
async fn timed_node(s3: api::S3Config, election: api::ElectionConfig, until: Instant) -> Vec<Call> {
    let mut calls = Vec::new();
    let started = Instant::now();
    let opened = tokio::time::timeout(HANG, runtime().open(&s3, &election, Faults::new())).await;
    let call = |answer| Call {
        what: "open",
        took: started.elapsed(),
        answer,
        leader: false,
    };
    let mut node = match opened {
        Ok(Ok(Ok(node))) => {
            calls.push(call(Ok("opened".into())));
            node
        }
        Ok(Ok(Err(e))) => {
            calls.push(call(Ok(host_test::describe_error(&e))));
            return calls;
        }
        Ok(Err(trap)) => {
            calls.push(call(Err(format!("trapped: {trap:#}"))));
            return calls;
        }
        Err(_) => {
            calls.push(call(Err(format!("hung: no answer after {HANG:?}"))));
            return calls;
        }
    };
    while Instant::now() < until {
        let mut next = Duration::from_millis(100);
        let call = timed("tick", node.tick(), |s| {
            next = Duration::from_millis(s.next_tick_ms)
                .clamp(Duration::from_millis(5), Duration::from_millis(500));
            describe_status(s)
        })
        .await;
        let stop = call.answer.is_err();
        calls.push(call);
        if stop {
            return calls;
        }
        tokio::time::sleep(next).await;
    }
    calls
}

/// The one-shot calls (store probe, slot claim) in fresh instances, again and again.
async fn one_shots(s3: api::S3Config, until: Instant) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut slot = 1;
    while Instant::now() < until {
        let probe = timed(
            "probe-store",
            runtime().probe_store(&s3, &election("probe", "prober"), Faults::new()),
            // A hostile store passing the conformance probe is a finding.
            |p| (format!("store passed the probe: {p:?}"), true),
        )
        .await;
        let claim = timed(
            "claim-slot",
            runtime().claim_slot(
                &s3,
                &host_test::job("cron", "worker", PREFIX),
                slot,
                Faults::new(),
            ),
            |c| (format!("claim: won={} holder={}", c.won, c.holder), c.won),
        )
        .await;
        // Whoever the store names is only reported, never one of ours. (An election of its
        // own: its reads are not an elector's, and the rate bound is judged per election.)
        let who = timed(
            "who-leads",
            runtime().who_leads(
                &s3,
                &host_test::election_ref("observed", PREFIX),
                Faults::new(),
            ),
            |l| (format!("leader: {l:?}"), false),
        )
        .await;
        slot += 1;
        let stop = probe.answer.is_err() || claim.answer.is_err() || who.answer.is_err();
        calls.push(probe);
        calls.push(claim);
        calls.push(who);
        if stop {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    calls
}

fn judge_calls(node: &str, calls: &[Call], findings: &mut Findings) {
    for c in calls {
        match &c.answer {
            Err(why) => findings.push(format!("{node}: {} {why}", c.what)),
            Ok(text) => {
                if let Err(why) = readable(text) {
                    findings.push(format!("{node}: {} answered unreadably: {why}", c.what));
                }
            }
        }
        if c.leader {
            findings.push(format!(
                "{node}: {} reported success on a store that accepts no write: {:?}",
                c.what, c.answer
            ));
        }
        let bound = call_bound(c.what);
        if c.took > bound {
            findings.push(format!(
                "{node}: {} took {:?} (bound {bound:?})",
                c.what, c.took
            ));
        }
    }
}

/// The request-rate bound (see `s3_election::core::RATE_WINDOW_RETRY_PERIODS`) of each
/// election's nodes together, as the server saw their requests. A stateless node is a fresh
/// instance per call and cannot count across calls: it keeps the bound by its calls' spacing
/// (at most `MAX_REQUESTS_PER_TICK` each, at least a retry period apart), so a window may
/// also catch the tail of one more call than its length holds.
fn judge_rate(seen: &host_test::stores::hostile::Seen, findings: &mut Findings) {
    use s3_election::core::{
        MAX_REQUESTS_PER_RATE_WINDOW, MAX_REQUESTS_PER_TICK, RATE_WINDOW_RETRY_PERIODS,
    };
    let retry = Duration::from_millis(u64::from(LEASE_MS) * 2 / 15);
    let window = retry * RATE_WINDOW_RETRY_PERIODS;
    let rated = seen.rated.lock().unwrap().clone();
    // Nodes per election, as `run_against` starts them.
    for (election, nodes) in [
        ("plain", 3),
        ("quorum", 3),
        ("stateless", 1),
        ("probing", 1),
    ] {
        let prefix = format!("{PREFIX}{election}/");
        let times: Vec<Instant> = rated
            .iter()
            .filter(|(_, key)| key.starts_with(&prefix))
            .map(|(t, _)| *t)
            .collect();
        let straddling_call = if election == "stateless" {
            MAX_REQUESTS_PER_TICK
        } else {
            0
        };
        let bound = nodes * MAX_REQUESTS_PER_RATE_WINDOW + straddling_call;
        let busiest = times
            .iter()
            .map(|&start| {
                times
                    .iter()
                    .filter(|&&t| t >= start && t < start + window)
                    .count()
            })
            .max()
            .unwrap_or(0);
        if busiest > bound {
            findings.push(format!(
                "election {election}: {busiest} requests in {window:?} (bound {bound}: {nodes} node(s))"
            ));
        }
    }
}

fn judge_history(h: &[Observation], nodes: &[&str], end_ms: u64, findings: &mut Findings) {
    for o in h {
        if o.is_leader() || o.events.iter().any(|e| e.starts_with("elected")) {
            findings.push(format!(
                "{} reported leader at {} ms: {o:?}",
                o.node, o.at_ms
            ));
        }
        for text in o.error.iter().chain(o.last_error.iter()) {
            if let Err(why) = readable(text) {
                findings.push(format!("{}: unreadable error: {why}", o.node));
            }
        }
    }
    // A node that trapped (or hangs) stops answering: each must have answered recently.
    for node in nodes {
        let last = h.iter().filter(|o| o.node == *node).map(|o| o.at_ms).max();
        match last {
            None => findings.push(format!("{node} never answered")),
            // (A probing node's first tick runs the probe.)
            Some(at) if at + call_bound("probe-store").as_millis() as u64 + 1500 < end_ms => {
                findings.push(format!(
                    "{node} stopped answering at {at} ms (run ended at {end_ms} ms)"
                ))
            }
            Some(_) => {}
        }
    }
}

/// Run every kind of node against `behaviour` for [`RUN`] and return what went wrong.
async fn run_against(behaviour: Behaviour) -> (Vec<String>, String) {
    let runtime = runtime(); // compiled before memory is measured
    let until = Instant::now() + RUN;
    let rss_before = rss_bytes();
    // The peak matters (instances free their memory when dropped): sample it all along.
    let sampler = tokio::spawn(async move {
        let mut peak = rss_bytes();
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
            peak = peak.max(rss_bytes());
        }
        peak
    });
    let hostile = HostileS3::start(behaviour).await.expect("start the server");
    let s3 = hostile.s3_config("hostile-bucket");

    let mut cluster = Cluster::new(runtime, s3.clone());
    let mut stateless = election("stateless", "s1");
    stateless.stateless = true;
    let mut probing = election("probing", "r1");
    probing.probe_store = true;
    let nodes = vec![
        election("plain", "p1"),
        election("plain", "p2"),
        with_quorum(election("quorum", "q1")),
        with_quorum(election("quorum", "q2")),
        stateless,
        probing,
    ];
    let ids: Vec<&str> = vec!["p1", "p2", "q1", "q2", "s1", "r1"];
    let mut findings = Findings::default();
    if let Err(e) = cluster.start_all(nodes).await {
        findings.push(format!("cluster did not start: {e:#}"));
    }
    let timed_plain = tokio::spawn(timed_node(s3.clone(), election("plain", "t1"), until));
    let timed_quorum = tokio::spawn(timed_node(
        s3.clone(),
        with_quorum(election("quorum", "t2")),
        until,
    ));
    let shots = tokio::spawn(one_shots(s3.clone(), until));

    tokio::time::sleep_until(until.into()).await;
    let end_ms = cluster.now_ms();
    let history = cluster.history();
    let joined = [
        ("t1", timed_plain.await),
        ("t2", timed_quorum.await),
        ("one-shot", shots.await),
    ];
    let rss_peak = sampler.await.unwrap_or_default().max(rss_bytes());
    // Stop every node before the next test measures anything: a stop waits for the tick in
    // progress (dropping the cluster would only abort its tasks at their next await). A node
    // stuck in a call is aborted after a while.
    let _ = tokio::time::timeout(Duration::from_secs(3), cluster.stop_all()).await;
    drop(cluster);

    judge_history(&history, &ids, end_ms, &mut findings);
    let mut longest = ("nothing", Duration::ZERO);
    let mut calls = 0;
    for (node, result) in joined {
        match result {
            Ok(c) => {
                calls += c.len();
                for call in &c {
                    if call.took > longest.1 {
                        longest = (call.what, call.took);
                    }
                }
                judge_calls(node, &c, &mut findings);
            }
            Err(e) => findings.push(format!("{node}: its task failed: {e}")),
        }
    }
    let seen = hostile.seen();
    if seen.total() == 0 {
        findings.push("the component never reached the server".into());
    }
    judge_rate(seen, &mut findings);
    let growth = rss_peak.saturating_sub(rss_before);
    if growth > RSS_GROWTH_BOUND {
        findings.push(format!(
            "resident memory grew by {} MiB in {RUN:?} (bound {RSS_GROWTH_BOUND_MIB} MiB)",
            growth >> 20
        ));
    }
    let summary = format!(
        "{behaviour:?}: {} answers from {} nodes, {calls} timed calls (longest: {} {:?}), \
         server saw {} requests ({} lists, {} lease reads, {} lease writes), RSS {} MiB, peak {} MiB",
        history.len(),
        ids.len(),
        longest.0,
        longest.1,
        seen.total(),
        seen.lists.load(Ordering::Relaxed),
        seen.lease_reads.load(Ordering::Relaxed),
        seen.lease_writes.load(Ordering::Relaxed),
        rss_before >> 20,
        rss_peak >> 20,
    );
    eprintln!("{summary}");
    let mut errors: Vec<&String> = history
        .iter()
        .filter_map(|o| o.error.as_ref().or(o.last_error.as_ref()))
        .collect();
    errors.sort();
    errors.dedup();
    for e in errors.iter().take(12) {
        eprintln!("  seen: {e}");
    }
    (findings.0, summary)
}

async fn assert_survives(behaviour: Behaviour) {
    // Held until the assertion is done: a failing test's panic (its backtrace symbolisation
    // alone takes some 300 MiB, once per process) must not land in the next test's figures.
    let _serial = SERIAL.lock().await;
    let (findings, summary) = run_against(behaviour).await;
    assert!(
        findings.is_empty(),
        "{summary}\n{} findings:\n  {}",
        findings.len(),
        findings
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_bodies_are_cut_at_the_body_limit() {
    assert_survives(Behaviour::HugeBody).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dribbled_body_does_not_hold_a_tick() {
    assert_survives(Behaviour::Dribble).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_list_pages_end() {
    assert_survives(Behaviour::EndlessListPages).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_xml_is_a_readable_error() {
    assert_survives(Behaviour::MalformedXml).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_json_is_refused_or_followed_safely() {
    assert_survives(Behaviour::ExtremeJson).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_headers_are_refused() {
    assert_survives(Behaviour::MissingHeaders).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_headers_are_read_consistently() {
    assert_survives(Behaviour::DuplicateHeaders).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    assert_survives(Behaviour::Redirect).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_are_transport_errors() {
    assert_survives(Behaviour::Reset).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_times_out() {
    assert_survives(Behaviour::SlowHeaders).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_ascii_dates_are_ignored() {
    assert_survives(Behaviour::NonAsciiDates).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mix_of_bounded_misbehaviour() {
    for seed in [1, 2, 3] {
        assert_survives(Behaviour::MixedBounded(seed)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mix_of_all_misbehaviour() {
    for seed in [1, 2, 3] {
        assert_survives(Behaviour::Mixed(seed)).await;
    }
}

/// Issue 25: a store that matches only bare ETags in `If-Match` (Ceph RGW), used with the
/// settings a user passes (quoted ETags, no probe): the real component finds out from the
/// store's answers, a node leads within the vacancy's wait and a retry period, and every
/// node keeps to the request-rate bound. An in-process store, so `make test` runs it; the
/// same with real `host-test node` processes against Ceph is in `tests/stores.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_matching_only_bare_etags_needs_no_probe() {
    use host_test::stores::memserver::{in_process_config, InProcessS3};
    use s3_election::core::{MAX_REQUESTS_PER_RATE_WINDOW, RATE_WINDOW_RETRY_PERIODS};
    use s3_election::memstore::EtagMatching;
    let _serial = SERIAL.lock().await;
    let store = Arc::new(InProcessS3::matching_etags(EtagMatching::BareOnly));
    let mut cluster = Cluster::new(runtime(), in_process_config());
    for node in ["c1", "c2", "c3"] {
        let faults = Faults::new();
        faults.serve_in_process(store.clone());
        cluster
            .start_with_faults(election("ceph", node), faults)
            .await
            .unwrap();
    }
    let lease = Duration::from_millis(u64::from(LEASE_MS));
    let retry = lease * 2 / 15;
    // The vacancy's wait (lease + grace), into a later second of the store's clock, then the
    // refused quoted write, its read-back and the bare one.
    let bound = lease + lease / 15 + Duration::from_secs(1) + retry * 2;
    let led = cluster
        .wait_for(bound, |h| h.iter().any(Observation::is_leader))
        .await;
    tokio::time::sleep(lease * 2).await;
    cluster.stop_all().await;
    let h = cluster.history();
    assert!(led.is_some(), "no leader within {bound:?}:\n{h:#?}");
    host_test::check::history::check(&h).unwrap();
    // The rate bound, per node, from the requests each call reported.
    let window_ms = (retry * RATE_WINDOW_RETRY_PERIODS).as_millis() as u64;
    for node in ["c1", "c2", "c3"] {
        let busiest = host_test::check::history::busiest_window(&h, node, window_ms);
        assert!(
            busiest as usize <= MAX_REQUESTS_PER_RATE_WINDOW,
            "{node}: {busiest} requests in {window_ms} ms"
        );
    }
}
