//! The exhaustive model checker in CI (`host_test::check::model`, issue 14): the real election
//! core holds every invariant in every world within the CI bounds, each deliberate protocol
//! bug is caught (printing the depth and time it took), and saved counterexamples replay
//! exactly against the real core.
//!
//! `make model-check` runs the full bounds; `host-test model-check --ci` the same as here.

use host_test::check::model::replay::{self, Schedule};
use s3_election::mutation::Mutation;
use std::path::PathBuf;

/// Enough for every configuration within the CI bounds (the largest has about a million).
const MAX_STATES: u64 = 20_000_000;

/// The configurations in two halves of about equal time, so that two test threads share them.
fn holds_in(names: &[&str]) {
    let configs = replay::configs(true);
    for config in configs.iter().filter(|c| names.contains(&c.name())) {
        let (summary, schedule) = replay::check(config, None, MAX_STATES);
        println!("{summary}");
        if let Some(s) = schedule {
            let replayed = replay::replay(&s).expect("the counterexample replays");
            panic!(
                "{}: {}\n{}",
                config.name(),
                s.violation,
                replayed.report(&s, None)
            );
        }
        assert!(summary.complete, "{}: state limit reached", config.name());
    }
}

#[test]
fn the_core_holds_every_invariant_within_the_ci_bounds_with_two_or_three_nodes() {
    holds_in(&["two", "three"]);
}

#[test]
fn the_core_holds_every_invariant_within_the_ci_bounds_elsewhere() {
    let all = replay::configs(true);
    let names: Vec<&str> = all
        .iter()
        .map(|c| c.name())
        .filter(|n| !["two", "three"].contains(n))
        .collect();
    holds_in(&names);
}

#[test]
fn each_broken_rule_is_caught() {
    for m in Mutation::ALL {
        let Some(config) = replay::config_for(m, true) else {
            println!("{}: only the simulator reaches it (tests/sim.rs)", m.name());
            continue;
        };
        let (summary, schedule) = replay::check(&config, Some(m), MAX_STATES);
        println!("{summary}");
        let s = schedule.unwrap_or_else(|| {
            panic!(
                "mutation {} survived {} states of `{}`",
                m.name(),
                summary.states,
                config.name()
            )
        });
        // The schedule found replays to the same violation.
        let replayed = replay::replay(&s).expect("the counterexample replays");
        assert_eq!(
            replayed.violation.map(|v| v.to_string()).as_deref(),
            Some(s.violation.as_str())
        );
    }
}

fn counterexamples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/counterexamples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/counterexamples")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// Regression tests from the model checker: schedules it found with a mutation
/// (`host-test model-check --mutation M`, saved under target/model-check/), kept in
/// tests/counterexamples/. Each re-executes against the real core to exactly the violation
/// recorded, twice with the same history; without its mutation, the same schedule is either
/// impossible for the correct core or violates nothing.
#[test]
fn saved_counterexamples_replay_exactly() {
    let files = counterexamples();
    assert!(!files.is_empty(), "no saved counterexamples");
    for file in files {
        let s = Schedule::load(&file).expect("a schedule file");
        let a = replay::replay(&s).expect("replays");
        let b = replay::replay(&s).expect("replays");
        let v = a
            .violation
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no violation on replay", file.display()));
        assert_eq!(v.to_string(), s.violation, "{}", file.display());
        assert_eq!(
            a.history,
            b.history,
            "{}: not deterministic",
            file.display()
        );
        assert_eq!(a.log, b.log, "{}: not deterministic", file.display());
        let correct = Schedule {
            mutation: None,
            ..s.clone()
        };
        if let Ok(r) = replay::replay(&correct) {
            assert!(
                r.violation.is_none(),
                "{}: the correct core violates too: {:?}",
                file.display(),
                r.violation.map(|v| v.to_string())
            );
        }
        println!("{}: {v}", file.display());
    }
}
