//! The deterministic simulator in CI: a block of schedules that must all pass, each protocol
//! mutation caught within the same budget, and exact replay of a seed.
//!
//! `SIM_SEEDS` (default 10000) and `SIM_START` (default 0) choose the block. A failure prints
//! its seed and the command that replays it: `cargo run -p host-test -- sim --seed N`.

use host_test::check::sim;
use s3_election::mutation::Mutation;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

#[test]
fn every_schedule_holds_every_invariant() {
    let (start, count) = (env_u64("SIM_START", 0), env_u64("SIM_SEEDS", 10_000));
    let c = sim::campaign(start, count, None, threads(), false);
    println!(
        "{} schedules in {:.1} s ({:.0}/s, {} events)",
        c.schedules,
        c.elapsed.as_secs_f64(),
        c.per_second(),
        c.events
    );
    assert_eq!(c.schedules, count);
    if let Some((_, report)) = c.failures.first() {
        panic!(
            "{} of {} schedules failed; the first:\n{report}",
            c.failed, c.schedules
        );
    }
}

#[test]
fn each_broken_rule_is_caught_within_the_ci_budget() {
    let count = env_u64("SIM_SEEDS", 10_000);
    for m in Mutation::ALL {
        let c = sim::campaign(0, count, Some(m), threads(), true);
        let (seed, report) = c
            .failures
            .first()
            .unwrap_or_else(|| panic!("mutation {} survived {} schedules", m.name(), c.schedules));
        println!(
            "{}: caught by seed {seed}: {}",
            m.name(),
            report.lines().next().unwrap_or("")
        );
    }
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [1, 42, 9_999] {
        let (a, b) = (sim::run(seed, None), sim::run(seed, None));
        assert_eq!(
            a.fingerprint(),
            b.fingerprint(),
            "seed {seed} is not deterministic"
        );
        assert_eq!(a.history.len(), b.history.len());
        assert!(!a.history.is_empty());
    }
    assert_ne!(
        sim::run(1, None).fingerprint(),
        sim::run(2, None).fingerprint()
    );
}
