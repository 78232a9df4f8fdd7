//! The configurations `host-test model-check` explores, counterexamples as schedule files,
//! and their deterministic re-execution against the real core (`host-test sim --replay FILE`):
//! the same world, the same actions in the same order, the full history recorded and printed
//! in the simulator's format ([`sim::describe`]), and the same violation.

use super::slots::{self, SlotWorld};
use super::world::{self, ElectionWorld};
use super::{explore, Counterexample, Model, Summary};
use crate::check::history::Observation;
use crate::check::sim::{self, SimViolation};
use anyhow::{bail, Context, Result};
use s3_election::mutation::Mutation;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One world to explore, by name.
#[derive(Clone, Debug)]
pub enum Config {
    Election(String, world::Bounds),
    Slots(String, slots::Bounds),
}

impl Config {
    pub fn name(&self) -> &str {
        match self {
            Config::Election(n, _) | Config::Slots(n, _) => n,
        }
    }

    /// What the world holds, in one line.
    pub fn describe(&self) -> String {
        match self {
            Config::Election(_, b) => format!(
                "{} {} node(s){}{}{}, steps of {} ms to {} ms (then {} ms), {} fault(s){}{}{}{}{}{}, heal at {} ms{}",
                b.nodes,
                if b.stateless { "stateless" } else { "stateful" },
                if b.quorum > 1 { format!(", quorum {}", b.quorum) } else { String::new() },
                if b.phantoms > 0 { format!(", {} phantom members", b.phantoms) } else { String::new() },
                if b.bare_etags_only { ", a store matching only bare ETags" } else { "" },
                b.step_ms,
                b.heal_ms,
                b.heal_step_ms,
                b.faults,
                if b.crashes { " incl. crashes" } else { "" },
                if b.pauses { ", pauses" } else { "" },
                if b.resignations { if b.quorum > 1 { ", leaving" } else { ", resignations" } } else { "" },
                if b.deletions { ", deletions" } else { "" },
                if b.conflicts { ", 409s" } else { "" },
                if b.list_outage { ", a listing outage" } else { "" },
                b.heal_ms,
                if b.liveness { format!(", liveness to {} ms", b.horizon_ms) } else { String::new() },
            ),
            Config::Slots(_, b) => format!(
                "{} workers ({} sharing an id), {} slots, {} fault(s){}",
                b.workers,
                b.shared,
                b.slots,
                b.faults,
                if b.record_losses > 0 {
                    format!(", the slot record lost up to {} time(s)", b.record_losses)
                } else {
                    String::new()
                }
            ),
        }
    }
}

fn election(nodes: usize) -> world::Bounds {
    world::Bounds {
        nodes,
        quorum: 1,
        stateless: false,
        step_ms: 100,
        heal_step_ms: 250,
        heal_ms: 2_500,
        horizon_ms: 2_500,
        faults: 2,
        crashes: true,
        restarts: true,
        staggered: false,
        start_within_ms: 0,
        pauses: false,
        resignations: false,
        deletions: true,
        conflicts: true,
        list_outage: false,
        gateway_skew: false,
        phantoms: 0,
        conflicts_after_heal: 0,
        liveness: false,
        drift: true,
        // One node's wall clock 3 s ahead: only the record-timestamp mutation reads it.
        wall_offsets_ms: vec![0, 3_000, -3_000],
        bare_etags_only: false,
        leases_ms: Vec::new(),
    }
}

/// The configurations, with the CI's smaller bounds or the full ones.
pub fn configs(ci: bool) -> Vec<Config> {
    let mut two = election(2);
    two.step_ms = 50;
    two.staggered = true;
    // The second process starts within the first lease (CI) or at any time.
    two.start_within_ms = if ci { 1_000 } else { 0 };
    two.faults = 1;
    // 409s are in the liveness world (and, in the full bounds, here too).
    two.conflicts = !ci;
    two.heal_ms = if ci { 2_100 } else { 2_600 };
    two.horizon_ms = two.heal_ms;
    // Two faults anywhere, on a coarser clock.
    let mut pairs = election(2);
    pairs.faults = 2;
    pairs.pauses = true;
    pairs.resignations = true;
    pairs.heal_ms = 2_000;
    pairs.horizon_ms = pairs.heal_ms;
    let mut three = election(3);
    three.faults = 1;
    three.pauses = true;
    three.resignations = true;
    three.heal_ms = if ci { 1_300 } else { 2_000 };
    three.horizon_ms = three.heal_ms;
    // A pause, maybe with a request in flight, long after the first election (the first
    // one waits out the earlier deployment's record).
    let mut pause = election(2);
    pause.faults = if ci { 1 } else { 2 };
    pause.pauses = true;
    pause.crashes = false;
    pause.restarts = false;
    pause.deletions = false;
    pause.conflicts = false;
    pause.heal_ms = if ci { 2_500 } else { 3_000 };
    pause.horizon_ms = pause.heal_ms;
    // Liveness and stability: faults early, then the store reachable and 409s normal.
    let mut liveness = election(2);
    liveness.faults = 1;
    liveness.heal_ms = if ci { 1_000 } else { 1_500 };
    liveness.heal_step_ms = if ci { 500 } else { 250 };
    liveness.conflicts_after_heal = 1;
    liveness.liveness = true;
    let mut quorum = election(2);
    quorum.quorum = 2;
    quorum.restarts = false;
    quorum.step_ms = 250;
    quorum.deletions = false;
    quorum.conflicts = false;
    quorum.list_outage = true;
    quorum.drift = false;
    quorum.faults = 1;
    quorum.resignations = true;
    quorum.heal_ms = if ci { 5_500 } else { 8_000 };
    quorum.horizon_ms = quorum.heal_ms;
    let mut stateless = election(2);
    stateless.stateless = true;
    stateless.crashes = false;
    stateless.gateway_skew = true;
    stateless.resignations = true;
    // A shut-down instance comes back at the heal (restarts at any step: over 10 M states).
    stateless.restarts = false;
    stateless.faults = if ci { 1 } else { 2 };
    stateless.heal_ms = if ci { 1_500 } else { 2_000 };
    stateless.horizon_ms = stateless.heal_ms;
    let mut members = election(2);
    members.quorum = 2;
    members.phantoms = 20;
    members.faults = 0;
    members.drift = false;
    members.step_ms = 250;
    members.heal_ms = 2_000;
    members.horizon_ms = 2_000;
    // Ceph RGW without the probe: the store matches only bare ETags, every node starts with
    // quoted ones. Each must find out from the store's answers, elect, and never hammer it.
    let mut ceph = election(2);
    ceph.bare_etags_only = true;
    ceph.faults = 1;
    ceph.crashes = false;
    ceph.deletions = false;
    ceph.drift = false;
    ceph.heal_ms = if ci { 500 } else { 1_000 };
    ceph.heal_step_ms = if ci { 500 } else { 250 };
    ceph.conflicts_after_heal = 1;
    ceph.liveness = true;
    // A rolling change of lease settings: one process holds 2 s leases, the other 1 s, both
    // told the longest (the README's rule); the lease object may be deleted while one leads.
    let mut mixed = election(2);
    mixed.leases_ms = vec![2_000, 1_000];
    // The deletion and a pause of the leader (a stopped process keeps its promise).
    mixed.faults = 2;
    mixed.pauses = true;
    mixed.crashes = false;
    mixed.restarts = false;
    mixed.conflicts = false;
    mixed.drift = false;
    mixed.step_ms = 250;
    mixed.heal_ms = if ci { 3_000 } else { 4_000 };
    mixed.horizon_ms = mixed.heal_ms;
    let mut c = vec![Config::Election("two".into(), two)];
    if !ci {
        c.push(Config::Election("pairs".into(), pairs));
    }
    c.extend([
        Config::Election("three".into(), three),
        Config::Election("pause".into(), pause),
        Config::Election("liveness".into(), liveness),
        Config::Election("quorum".into(), quorum),
        Config::Election("stateless".into(), stateless),
        Config::Election("members".into(), members),
        Config::Election("ceph".into(), ceph),
        Config::Election("mixed".into(), mixed),
        Config::Slots(
            "slots".into(),
            slots::Bounds {
                workers: 3,
                shared: 2,
                slots: 2,
                faults: if ci { 1 } else { 2 },
                record_losses: 0,
            },
        ),
        // A claim whose write landed but whose answer and read-back were lost errs; its
        // caller retries with the claim id and must learn that it won.
        Config::Slots(
            "retries".into(),
            slots::Bounds {
                workers: 2,
                shared: 0,
                slots: 1,
                faults: 2,
                record_losses: 0,
            },
        ),
        // The slot record lost after a slot ran (its marker written): stragglers and the next
        // slot's claims must be refused, not win again.
        Config::Slots(
            "lost-slot".into(),
            slots::Bounds {
                workers: 2,
                shared: 0,
                slots: 2,
                faults: 0,
                record_losses: 1,
            },
        ),
    ]);
    for config in c.iter_mut() {
        if let Config::Election(_, b) = config {
            if b.liveness {
                let bound = ElectionWorld::new(b.clone(), None).liveness_bound_ms();
                // Past the bound by a step, so that the last instant is judged.
                b.horizon_ms = b.heal_ms + bound + b.heal_step_ms;
            }
        }
    }
    c
}

/// A configuration with another fault budget or heal time (the horizon follows the heal).
pub fn with_overrides(config: Config, faults: Option<u8>, heal_ms: Option<u64>) -> Config {
    match config {
        Config::Election(name, mut b) => {
            if let Some(f) = faults {
                b.faults = f;
            }
            if let Some(h) = heal_ms {
                b.horizon_ms = h + b.horizon_ms.saturating_sub(b.heal_ms);
                b.heal_ms = h;
            }
            Config::Election(name, b)
        }
        Config::Slots(name, mut b) => {
            if let Some(f) = faults {
                b.faults = f;
            }
            Config::Slots(name, b)
        }
    }
}

/// The configuration that shows each mutation, in the smallest bounds that catch it; `None`
/// for the mutations only the random simulator reaches (their classes need more faults than a
/// world here can explore: a store clock that steps back an hour together with a deletion and
/// a restart, say).
pub fn config_for(m: Mutation, ci: bool) -> Option<Config> {
    let all = configs(ci);
    let name = match m {
        Mutation::UnconditionalRenewal
        | Mutation::NoDriftMargin
        | Mutation::TakeoverByRecordTimestamp
        | Mutation::TrustNodeId
        | Mutation::CreateLeaseOnMissing => "two",
        Mutation::ConflictAsLost => "liveness",
        Mutation::IgnoreQuorum
        | Mutation::ReleaseAtQuorumLoss
        | Mutation::IgnoreFailedQuorumChecks => "quorum",
        Mutation::NoStoreClockSkewMargin => "stateless",
        Mutation::UnboundedMembers => "members",
        Mutation::TimeFromAnswer => "pause",
        Mutation::SlotWonByNodeId => "slots",
        Mutation::BusyRetry => "ceph",
        Mutation::VacancyOwnLease => "mixed",
        Mutation::SlotTrustsAMissingRecord => "lost-slot",
        Mutation::RetryWithoutClaimId => "retries",
        Mutation::VacancyKeepsItsTerm
        | Mutation::ListedTwiceCounts
        | Mutation::TrustMemberClock
        | Mutation::SharedProbeScratch => return None,
    };
    all.into_iter().find(|c| c.name() == name)
}

/// A counterexample as a file: the world, the mutation, the initial state and the schedule.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Schedule {
    pub config: String,
    pub mutation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub world: Option<world::Bounds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<slots::Bounds>,
    /// Index of the initial state (the clock rates: every combination, in order).
    pub init: usize,
    pub steps: Vec<String>,
    /// The violation as found.
    pub violation: String,
}

impl Schedule {
    pub fn load(path: &Path) -> Result<Schedule> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", path.display()))
    }

    fn mutation(&self) -> Result<Option<Mutation>> {
        self.mutation
            .as_deref()
            .map(|m| {
                s3_election::mutation::Mutation::parse(m)
                    .with_context(|| format!("unknown mutation `{m}`"))
            })
            .transpose()
    }
}

/// One configuration explored: its summary, and the counterexample as a schedule.
pub fn check(
    config: &Config,
    mutation: Option<Mutation>,
    max_states: u64,
) -> (Summary, Option<Schedule>) {
    fn run<M: Model>(
        model: &M,
        config: &Config,
        mutation: Option<Mutation>,
        max_states: u64,
    ) -> (Summary, Option<(usize, Vec<String>, String)>) {
        let e = explore(model, max_states);
        let summary = e.summary(config.name(), mutation);
        let found = e.violation.map(|c: Counterexample<M::Action>| {
            (
                c.init,
                c.actions.iter().map(|a| a.to_string()).collect(),
                c.violation.to_string(),
            )
        });
        (summary, found)
    }
    let (summary, found) = match config {
        Config::Election(_, b) => run(
            &ElectionWorld::new(b.clone(), mutation),
            config,
            mutation,
            max_states,
        ),
        Config::Slots(_, b) => run(
            &SlotWorld::new(b.clone(), mutation),
            config,
            mutation,
            max_states,
        ),
    };
    let schedule = found.map(|(init, steps, violation)| Schedule {
        config: config.name().to_string(),
        mutation: mutation.map(|m| m.name().to_string()),
        world: match config {
            Config::Election(_, b) => Some(b.clone()),
            Config::Slots(..) => None,
        },
        slots: match config {
            Config::Slots(_, b) => Some(b.clone()),
            Config::Election(..) => None,
        },
        init,
        steps,
        violation,
    });
    (summary, schedule)
}

/// One schedule without faults: from initial state `init`, the first action the world offers
/// that is not a fault, until none is left (for debugging a world).
pub fn walk(config: &Config, mutation: Option<Mutation>, init: usize) -> Result<Schedule> {
    let Config::Election(name, b) = config else {
        bail!("walk: an election world only");
    };
    let model = ElectionWorld::new(b.clone(), mutation);
    let mut state = pick_init(&model, init)?;
    let mut steps = Vec::new();
    let mut violation = String::new();
    let mut actions = Vec::new();
    loop {
        actions.clear();
        model.actions(&state, &mut actions);
        let Some(a) = actions
            .iter()
            .find(|a| matches!(a, world::Action::Apply(..) | world::Action::Tick))
            .cloned()
        else {
            break;
        };
        steps.push(a.to_string());
        if let Some(v) = model.step(&mut state, &a) {
            violation = v.to_string();
            break;
        }
    }
    Ok(Schedule {
        config: name.clone(),
        mutation: mutation.map(|m| m.name().to_string()),
        world: Some(b.clone()),
        slots: None,
        init,
        steps,
        violation,
    })
}

/// A schedule re-executed.
pub struct Replayed {
    /// Every step, what it sent and what the store did.
    pub log: Vec<String>,
    /// Every answer every process gave, in the simulator's format.
    pub history: Vec<Observation>,
    pub violation: Option<SimViolation>,
}

impl Replayed {
    /// A readable account, as the simulator's `Run::report` gives one.
    pub fn report(&self, schedule: &Schedule, file: Option<&Path>) -> String {
        let mutation = schedule
            .mutation
            .as_deref()
            .map(|m| format!(" with mutation {m}"))
            .unwrap_or_default();
        let verdict = match &self.violation {
            Some(v) => format!("VIOLATION (model-check {}{mutation}): {v}", schedule.config),
            None => format!(
                "model-check {}{mutation}: all invariants hold",
                schedule.config
            ),
        };
        let replay = file
            .map(|f| {
                format!(
                    "\nreplay: cargo run -p host-test -- sim --replay {}",
                    f.display()
                )
            })
            .unwrap_or_default();
        let history: Vec<String> = self
            .history
            .iter()
            .map(|o| format!("  {}", sim::describe(o)))
            .collect();
        let log: Vec<String> = self.log.iter().map(|l| format!("  {l}")).collect();
        format!(
            "{verdict}{replay}\nschedule ({} steps from initial state {}):\n{}\nhistory (true time):\n{}",
            schedule.steps.len(),
            schedule.init,
            log.join("\n"),
            history.join("\n")
        )
    }
}

/// Re-execute a schedule against the real core, recording everything. Fails if a step is not
/// one the world allows there (the file does not belong to this code).
pub fn replay(schedule: &Schedule) -> Result<Replayed> {
    let mutation = schedule.mutation()?;
    match (&schedule.world, &schedule.slots) {
        (Some(b), _) => {
            let model = ElectionWorld::new(b.clone(), mutation);
            let mut state = pick_init(&model, schedule.init)?;
            state.history = Some(Vec::new());
            state.log = Some(Vec::new());
            let violation = run_steps(&model, &mut state, &schedule.steps)?;
            Ok(Replayed {
                log: state.log.take().unwrap_or_default(),
                history: state.history.take().unwrap_or_default(),
                violation,
            })
        }
        (None, Some(b)) => {
            let model = SlotWorld::new(b.clone(), mutation);
            let mut state = pick_init(&model, schedule.init)?;
            state.log = Some(Vec::new());
            let violation = run_steps(&model, &mut state, &schedule.steps)?;
            Ok(Replayed {
                log: state.log.take().unwrap_or_default(),
                history: Vec::new(),
                violation,
            })
        }
        (None, None) => bail!("the schedule names no world"),
    }
}

fn pick_init<M: Model>(model: &M, init: usize) -> Result<M::State> {
    model
        .init()
        .into_iter()
        .nth(init)
        .with_context(|| format!("the world has no initial state {init}"))
}

fn run_steps<M: Model>(
    model: &M,
    state: &mut M::State,
    steps: &[String],
) -> Result<Option<SimViolation>>
where
    M::Action: std::str::FromStr<Err = String> + PartialEq,
{
    let mut enabled = Vec::new();
    for (i, text) in steps.iter().enumerate() {
        let action: M::Action = text.parse().map_err(anyhow::Error::msg)?;
        enabled.clear();
        model.actions(state, &mut enabled);
        if !enabled.contains(&action) {
            bail!(
                "step {i} `{text}` is not possible here (possible: {})",
                enabled
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if let Some(v) = model.step(state, &action) {
            if i + 1 < steps.len() {
                bail!("violation at step {i} of {}: {v}", steps.len());
            }
            return Ok(Some(v));
        }
    }
    Ok(None)
}
