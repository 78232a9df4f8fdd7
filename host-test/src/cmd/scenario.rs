//! Scenario files: a few lines that start nodes and do things to them at given times, so a
//! fault run can be written, replayed and pictured without code.
//!
//! ```text
//! # comments start with #
//! nodes 3            # node-1 .. node-3, started at once
//! lease-ms 3000
//! quorum 1
//! duration 40s
//! at 5s kill leader                      # `leader`: whoever leads at that moment
//! at 8s partition node-2
//! at 12s heal node-2
//! at 14s fault node-3 status 503 lease-writes 3   # FAULT [TARGET [TIMES]]
//! at 15s fault node-3 delay 300ms
//! at 16s clear node-3
//! at 18s pause node-1 4s
//! at 20s clock node-2 rate 1.01 | jump 5s | wall -900s
//! at 22s resign leader
//! at 25s start node-4
//! ```
//! Faults: `drop`, `delay D`, `status CODE`, `cut`; targets: `any` (default), `lease-writes`,
//! `lease-reads`, `members`.

use crate::check::history::{self, Observation};
use crate::host::cluster::Cluster;
use crate::host::faults::{Fault, Faults, Rule, Target};
use crate::ConfigExt;
use anyhow::{bail, Context, Result};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Kill,
    Resign,
    Partition(bool),
    Fault(Rule),
    Clear,
    Pause(Duration),
    ClockRate(f64),
    ClockJump(Duration),
    WallJump(i64),
    Start,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub at: Duration,
    /// A node id, or `leader`.
    pub node: String,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub nodes: u32,
    pub lease_ms: u32,
    pub quorum: u32,
    pub duration: Duration,
    pub steps: Vec<Step>,
}

/// `500ms`, `5s`, `-900s`, `2m` (signed, in ms).
fn signed_ms(v: &str) -> Result<i64> {
    let (num, unit) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60_000)
    } else {
        bail!("{v:?}: a duration needs a unit (ms, s, m)")
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("{v:?} is not a duration"))?;
    Ok((n * f64::from(unit)) as i64)
}

fn duration(v: &str) -> Result<Duration> {
    let ms = signed_ms(v)?;
    if ms < 0 {
        bail!("{v:?} must not be negative");
    }
    Ok(Duration::from_millis(ms as u64))
}

pub fn parse(text: &str) -> Result<Scenario> {
    let mut s = Scenario {
        nodes: 3,
        lease_ms: 3000,
        quorum: 1,
        duration: Duration::from_secs(30),
        steps: Vec::new(),
    };
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        let at_line = || format!("line {}: {raw:?}", i + 1);
        let number = |v: Option<&&str>| -> Result<u32> {
            v.context("a number is missing")?
                .parse()
                .context("not a number")
        };
        match w[0] {
            "nodes" => s.nodes = number(w.get(1)).with_context(at_line)?,
            "lease-ms" => s.lease_ms = number(w.get(1)).with_context(at_line)?,
            "quorum" => s.quorum = number(w.get(1)).with_context(at_line)?,
            "duration" => {
                s.duration =
                    duration(w.get(1).context("duration needs a value")?).with_context(at_line)?
            }
            "at" => s.steps.push(step(&w).with_context(at_line)?),
            other => bail!("{}: unknown word {other:?}", at_line()),
        }
    }
    s.steps.sort_by_key(|st| st.at);
    Ok(s)
}

fn step(w: &[&str]) -> Result<Step> {
    let (at, action, node) = match w {
        [_, at, action, node, ..] => (duration(at)?, *action, node.to_string()),
        _ => bail!("expected: at TIME ACTION NODE [ARGS]"),
    };
    let args = &w[4..];
    let action = match (action, args) {
        ("kill", []) => Action::Kill,
        ("resign", []) => Action::Resign,
        ("partition", []) => Action::Partition(true),
        ("heal", []) => Action::Partition(false),
        ("clear", []) => Action::Clear,
        ("start", []) => Action::Start,
        ("pause", [d]) => Action::Pause(duration(d)?),
        ("clock", ["rate", r]) => Action::ClockRate(r.parse().context("rate")?),
        ("clock", ["jump", d]) => Action::ClockJump(duration(d)?),
        ("clock", ["wall", d]) => Action::WallJump(signed_ms(d)?),
        ("fault", rest) => Action::Fault(rule(rest)?),
        (a, _) => bail!("unknown action or arguments: {a} {args:?}"),
    };
    Ok(Step { at, node, action })
}

fn rule(w: &[&str]) -> Result<Rule> {
    let (fault, rest) = match w {
        ["drop", rest @ ..] => (Fault::Drop, rest),
        ["cut", rest @ ..] => (Fault::CutResponse, rest),
        ["delay", d, rest @ ..] => (Fault::Delay(duration(d)?), rest),
        ["status", code, rest @ ..] => (Fault::Status(code.parse().context("status")?), rest),
        _ => bail!("fault: drop | cut | delay D | status CODE"),
    };
    let target = match rest.first().copied() {
        None | Some("any") => Target::Any,
        Some("lease-writes") => Target::LeaseWrites,
        Some("lease-reads") => Target::LeaseReads,
        Some("members") => Target::Members,
        Some(t) => bail!("unknown target {t:?}"),
    };
    let times = rest
        .get(1)
        .map(|n| n.parse::<u32>())
        .transpose()
        .context("times")?;
    Ok(Rule {
        fault,
        target,
        times,
    })
}

/// A short label for the timeline.
fn label(action: &Action) -> String {
    match action {
        Action::Kill => "killed".into(),
        Action::Resign => "resign".into(),
        Action::Start => "started".into(),
        Action::Partition(true) => "partition".into(),
        Action::Partition(false) => "heal".into(),
        Action::Clear => "faults cleared".into(),
        Action::Pause(d) => format!("pause {:.1}s", d.as_secs_f64()),
        Action::ClockRate(r) => format!("clock ×{r}"),
        Action::ClockJump(d) => format!("clock +{:.1}s", d.as_secs_f64()),
        Action::WallJump(ms) => format!("wall {:+.1}s", *ms as f64 / 1000.0),
        Action::Fault(rule) => {
            let what = match &rule.fault {
                Fault::Drop => "drop".to_string(),
                Fault::CutResponse => "cut answers".to_string(),
                Fault::Delay(d) => format!("delay {}ms", d.as_millis()),
                Fault::Status(code) => code.to_string(),
                Fault::StripHeader(name) => format!("strip {name}"),
                Fault::ShiftDate(s) => format!("date {s:+}s"),
            };
            let times = rule.times.map(|n| format!(" ×{n}")).unwrap_or_default();
            format!("{what}{times} ({:?})", rule.target).to_lowercase()
        }
    }
}

/// Run a scenario on `cluster` (real or virtual time); returns the history.
pub async fn run(
    cluster: &mut Cluster,
    s: &Scenario,
    echo: impl Fn(&str),
) -> Result<Vec<Observation>> {
    let start = cluster.now_ms();
    let node = |i: u32| {
        let mut e = crate::election_config("scenario", &format!("node-{i}"), "scenario/");
        e.timing_mut().lease_ms = Some(s.lease_ms);
        e.quorum = Some(crate::quorum(s.quorum));
        e
    };
    let mut controls: Vec<(String, std::sync::Arc<Faults>)> = Vec::new();
    let mut nodes = Vec::new();
    for i in 1..=s.nodes {
        let f = Faults::new();
        controls.push((format!("node-{i}"), f.clone()));
        nodes.push((node(i), f));
    }
    // Clock rates set before the start apply from the first tick.
    for st in s.steps.iter().filter(|st| st.at.is_zero()) {
        if let (Action::ClockRate(r), Some((_, f))) =
            (&st.action, controls.iter().find(|(id, _)| *id == st.node))
        {
            f.clock.set_rate(*r);
        }
    }
    for (e, f) in nodes {
        cluster.start_with_faults(e, f).await?;
    }
    let mut next_node = s.nodes + 1;
    for st in &s.steps {
        let due = start + st.at.as_millis() as u64;
        let now = cluster.now_ms();
        if due > now {
            tokio::time::sleep(Duration::from_millis(due - now)).await;
        }
        let target = if st.node == "leader" {
            match cluster.latest().into_iter().find(|o| o.is_leader()) {
                Some(o) => o.node,
                None => {
                    echo(&format!(
                        "{:>7.1}s  {:?}: no leader right now, skipped",
                        st.at.as_secs_f64(),
                        st.action
                    ));
                    continue;
                }
            }
        } else {
            st.node.clone()
        };
        let faults = cluster.faults(&target);
        let label = match &st.action {
            Action::Kill => {
                cluster.kill(&target);
                "killed".to_string()
            }
            Action::Resign => {
                let _ = cluster.resign(&target).await?;
                "resign".to_string()
            }
            Action::Start => {
                let mut e = node(next_node);
                e.node_id = target.clone();
                next_node += 1;
                cluster.start(e).await?;
                "started".to_string()
            }
            action => {
                let Some(f) = faults else {
                    echo(&format!(
                        "{:>7.1}s  {target}: not running, `{}` skipped",
                        st.at.as_secs_f64(),
                        label(action)
                    ));
                    continue;
                };
                match action {
                    Action::Partition(on) => f.partition(*on),
                    Action::Fault(rule) => f.inject(rule.clone()),
                    Action::Clear => {
                        f.clear();
                        f.partition(false);
                    }
                    Action::Pause(d) => f.pause(*d),
                    Action::ClockRate(r) => f.clock.set_rate(*r),
                    Action::ClockJump(d) => f.clock.jump_monotonic(*d),
                    Action::WallJump(ms) => f.clock.jump_wall_ms(*ms),
                    _ => unreachable!("handled above"),
                }
                label(action)
            }
        };
        if !matches!(st.action, Action::Kill | Action::Resign) {
            cluster.recorder.mark(&target, &label); // the cluster marks kills and resigns itself
        }
        echo(&format!("{:>7.1}s  {target}: {label}", st.at.as_secs_f64()));
    }
    let end = start + s.duration.as_millis() as u64;
    let now = cluster.now_ms();
    if end > now {
        tokio::time::sleep(Duration::from_millis(end - now)).await;
    }
    cluster.stop_all().await;
    let h = cluster.history();
    if let Err(v) = history::check(&h) {
        bail!("INVARIANT VIOLATED: {v}");
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_action() {
        let s = parse(
            "nodes 4\nlease-ms 2000\nquorum 2\nduration 1m\n\
             at 1s kill leader\nat 2s partition node-2\nat 3s heal node-2\n\
             at 4s fault node-3 status 503 lease-writes 3\nat 4s fault node-3 delay 300ms\n\
             at 5s fault node-1 drop\nat 5s fault node-1 cut members 1\nat 6s clear node-3\n\
             at 7s pause node-1 4s\nat 8s clock node-2 rate 1.01\nat 8s clock node-2 jump 5s\n\
             at 9s clock node-2 wall -900s # a comment\nat 10s resign leader\nat 11s start node-9\n",
        )
        .unwrap();
        assert_eq!(
            (s.nodes, s.lease_ms, s.quorum, s.duration),
            (4, 2000, 2, Duration::from_secs(60))
        );
        assert_eq!(s.steps.len(), 14);
        assert_eq!(
            s.steps[3].action,
            Action::Fault(Rule::times(Fault::Status(503), Target::LeaseWrites, 3))
        );
        assert_eq!(s.steps[11].action, Action::WallJump(-900_000));
    }

    #[test]
    fn mistakes_are_reported_with_their_line() {
        for bad in [
            "nodes x",
            "at 5 kill leader",
            "at 5s explode node-1",
            "at 5s fault node-1 status",
            "wat",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(format!("{err:#}").contains("line 1"), "{bad}: {err:#}");
        }
    }
}
