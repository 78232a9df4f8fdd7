//! The examples on Spin (`spin up`, Spin 4.1.0-pre0; the cron trigger plugin 0.3.0), against
//! the test store: the edge worker (examples/edge-worker/spin.toml) as two apps electing one
//! leader and failing over when the leader's app is killed, and the singleton cron job
//! (examples/cron-job/spin.toml) as two apps firing on one schedule, one run per slot. Both
//! manifests are used as they are, but for the schedule: Spin composes each example with the
//! election component from its component dependency, and every setting is a Spin variable.
//!
//! Needs `.ci/spin.sh` (make test-spin runs it): without Spin this fails, unless
//! `S3E_SKIP_SPIN=1`.

mod apps;
mod common;

use apps::*;
use common::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const LEASE_MS: u32 = 2000;

/// One Spin test at a time: the timings are judged against the wall clock.
static SERIAL: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    host_test::workspace_dir()
}

fn spin() -> PathBuf {
    root().join("target/tools/bin/spin")
}

/// Whether to run (see `required`); the cron test also needs the plugin.
fn spin_installed(plugin: bool) -> bool {
    let mut needed = vec![
        spin(),
        root().join("target/component/s3_election.wasm"),
        root().join("target/component/edge-worker-spin.wasm"),
        root().join("target/component/cron-job.wasm"),
    ];
    if plugin {
        needed.push(root().join("target/spin-home/data/spin/plugins/trigger-cron"));
    }
    required(
        "S3E_SKIP_SPIN",
        &needed,
        "run `.ci/spin.sh` (Spin and its cron plugin) and `make examples`, or `make test-spin` \
         for both; S3E_SKIP_SPIN=1 skips the Spin tests",
    )
}

/// `spin up` of `manifest` with `variables` (as SPIN_VARIABLE_*), its state (logs) in `state`,
/// the Spin home of .ci/spin.sh (where the cron plugin is).
fn spin_up(
    name: &str,
    manifest: &std::path::Path,
    variables: &[(&str, String)],
    state: PathBuf,
    extra: &[&str],
) -> Proc {
    let home = root().join("target/spin-home");
    let mut cmd = Command::new(spin());
    cmd.args(["up", "-f"])
        .arg(manifest)
        .arg("--state-dir")
        .arg(&state)
        .args(extra)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_CONFIG_HOME", home.join("config"));
    for (name, value) in variables {
        cmd.env(format!("SPIN_VARIABLE_{}", name.to_uppercase()), value);
    }
    std::fs::create_dir_all(&state).unwrap();
    Proc::spawn(name, cmd, state.with_extension("out"))
}

/// The store's settings as the examples' Spin variables.
fn store_variables(bucket: &str, node_id: &str) -> Vec<(&'static str, String)> {
    let store = &env().store;
    vec![
        ("s3_endpoint", store.endpoint.clone()),
        ("aws_region", store.region.clone()),
        ("aws_access_key_id", store.credentials.access_key_id.clone()),
        (
            "aws_secret_access_key",
            store.credentials.secret_access_key.clone(),
        ),
        ("bucket", bucket.to_string()),
        ("node_id", node_id.to_string()),
        ("prefix", "spin/".to_string()),
        ("unquoted_etags", unquoted_etags().to_string()),
    ]
}

#[test]
fn two_spin_apps_of_the_edge_worker_elect_one_leader_and_fail_over() {
    if !spin_installed(false) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("spin-worker");
    let b = bucket("spin-worker");
    let manifest = root().join("examples/edge-worker/spin.toml");

    // Two apps of the same manifest, each its own node id.
    let started = Instant::now();
    let mut apps = BTreeMap::new();
    let mut workers = Vec::new();
    let ports = [free_port(), free_port()];
    for (id, port) in ["spin-a", "spin-b"].into_iter().zip(ports) {
        let mut vars = store_variables(&b, id);
        vars.push(("election", "spin-edge".into()));
        vars.push(("lease_ms", LEASE_MS.to_string()));
        let app = spin_up(
            id,
            &manifest,
            &vars,
            scratch.path(id),
            &["--listen", &format!("127.0.0.1:{port}")],
        );
        apps.insert(id.to_string(), app);
        workers.push(HttpWorker::new(id, port, None));
    }
    for (app, port) in apps.values_mut().zip(ports) {
        app.wait_listening(port, Duration::from_secs(60));
    }
    let ready = started.elapsed();

    let run = elect_and_fail_over(
        [&workers[0], &workers[1]],
        LEASE_MS,
        ms(LEASE_MS) * 8,
        ms(LEASE_MS) * 5,
        |leader| apps.get_mut(leader).unwrap().kill(),
    );
    eprintln!(
        "spin: both apps serving after {ready:?}; first leader after {:?}; failover {:?} \
         (lease {LEASE_MS} ms); {} answers",
        run.first_leader,
        run.failover,
        run.history.len()
    );
}

/// The cron trigger plugin 0.3.0 is built on Spin 3.5, whose component parser takes a
/// kebab-case word only when it starts with a letter: a WIT name such as `missing-key-is-404`
/// makes it refuse the whole component.
fn refused_by_an_old_parser(output: &str) {
    if let Some(line) = output.lines().find(|l| l.contains("is not in kebab case")) {
        panic!(
            "the cron trigger plugin refuses the component: {}\nIts parser (Spin 3.5's) \
             wants every word of a WIT name to start with a letter; rename that name in \
             wit/election.wit. Output:\n{output}",
            line.trim()
        );
    }
}

/// What one cron app printed: slot → whether it won, and to whom it lost.
fn runs(output: &str) -> BTreeMap<u64, Result<(), String>> {
    let mut runs = BTreeMap::new();
    for line in output.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["won", "slot", n] => {
                runs.insert(n.parse().unwrap(), Ok(()));
            }
            ["lost", "slot", n, "to", holder] => {
                runs.entry(n.parse().unwrap())
                    .or_insert(Err(holder.to_string()));
            }
            _ => {}
        }
    }
    runs
}

#[test]
fn two_spin_cron_apps_run_each_slot_once() {
    if !spin_installed(true) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("spin-cron");
    let b = bucket("spin-cron");
    const PERIOD_S: u64 = 2;
    const SLOTS: usize = 5;

    // The example's manifest, firing every 2 s instead of every minute; its component paths
    // made absolute, since the copy lives elsewhere.
    let examples = root().join("examples/cron-job");
    let manifest = scratch.path("spin.toml");
    let target = format!("{}/", root().join("target").display());
    std::fs::write(
        &manifest,
        rewrite(
            &examples.join("spin.toml"),
            &[
                ("\"../../target/", &format!("\"{target}")),
                (
                    "cron_expression = \"0 * * * * *\"",
                    "cron_expression = \"*/2 * * * * *\"",
                ),
            ],
        ),
    )
    .unwrap();

    // The slot record, sampled while the apps run: the store's side of the story.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (b, stop) = (b.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = BTreeMap::<u64, String>::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if let Some(body) = env().store.get_object(&b, "spin/spin-cron/slot").unwrap() {
                    let r: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let slot = r["slot"].as_u64().unwrap();
                    let holder = r["holder"].as_str().unwrap().to_string();
                    if let Some(before) = seen.insert(slot, holder.clone()) {
                        assert_eq!(before, holder, "slot {slot} changed hands in the store");
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            seen
        })
    };

    let started = Instant::now();
    let mut apps = Vec::new();
    for id in ["cron-a", "cron-b"] {
        let mut vars = store_variables(&b, id);
        vars.push(("job", "spin-cron".into()));
        vars.push(("period_s", PERIOD_S.to_string()));
        apps.push((
            id,
            scratch.path(id),
            spin_up(id, &manifest, &vars, scratch.path(id), &[]),
        ));
    }
    let stdout = |state: &PathBuf| {
        std::fs::read_to_string(state.join("logs/job_stdout.txt")).unwrap_or_default()
    };
    // Until both have reported SLOTS slots in common.
    let limit = Duration::from_secs(PERIOD_S * (SLOTS as u64 + 4) + 30);
    let common = loop {
        let a = runs(&stdout(&apps[0].1));
        let z = runs(&stdout(&apps[1].1));
        let both: Vec<u64> = a.keys().filter(|s| z.contains_key(s)).copied().collect();
        if both.len() >= SLOTS {
            break both;
        }
        for (_, _, app) in &mut apps {
            refused_by_an_old_parser(&app.output());
            app.assert_running();
        }
        assert!(
            started.elapsed() < limit,
            "not {SLOTS} slots run by both apps within {limit:?}\ncron-a:\n{}\ncron-b:\n{}\n\
             spin (cron-a):\n{}",
            stdout(&apps[0].1),
            stdout(&apps[1].1),
            apps[0].2.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let took = started.elapsed();
    for (_, _, app) in &mut apps {
        app.kill();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let in_store = sampler.join().expect("the slot sampler failed (see above)");

    // Exactly one run per slot: never two winners; in every slot both apps fired for, one won
    // and the other lost to it.
    let outputs: Vec<(&str, String)> = apps.iter().map(|(id, s, _)| (*id, stdout(s))).collect();
    let shown = || {
        outputs
            .iter()
            .map(|(id, out)| format!("{id}:\n{out}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut winners = BTreeMap::<u64, &str>::new();
    for (id, out) in &outputs {
        for (slot, outcome) in runs(out) {
            if outcome.is_ok() {
                if let Some(other) = winners.insert(slot, id) {
                    panic!("slot {slot} ran twice: {other} and {id}\n{}", shown());
                }
            }
        }
    }
    for slot in &common {
        let winner = winners
            .get(slot)
            .unwrap_or_else(|| panic!("nobody ran slot {slot}\n{}", shown()));
        for (id, out) in &outputs {
            if id != winner {
                assert_eq!(
                    runs(out)[slot],
                    Err(winner.to_string()),
                    "{id} in slot {slot}\n{}",
                    shown()
                );
            }
        }
    }
    // The slots are consecutive scheduled times.
    assert_eq!(
        common.last().unwrap() - common.first().unwrap(),
        common.len() as u64 - 1,
        "{common:?}\n{}",
        shown()
    );
    // What the store held agrees with who ran each slot.
    assert!(!in_store.is_empty(), "no slot record in the bucket");
    for (slot, holder) in &in_store {
        if let Some(winner) = winners.get(slot) {
            assert_eq!(holder, winner, "slot {slot}\n{}", shown());
        }
    }
    eprintln!(
        "spin cron: {} slots run by both apps in {took:?}, winners {winners:?}; slot records seen \
         in the store: {in_store:?}",
        common.len()
    );
}
