//! `host-test model-check`: the exhaustive model checker (`check::model`), per configuration
//! or per mutation, and `host-test sim --replay FILE` for the schedules it saves.

use super::sim_mutation;
use crate::check::model::replay::{self, Config, Schedule};
use anyhow::{bail, Context, Result};
use clap::Args;
use s3_election::mutation::Mutation;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct ModelCheckArgs {
    /// CI's smaller bounds (well under two minutes on two cores).
    #[arg(long)]
    ci: bool,
    /// Only these configurations (two, pairs, three, pause, liveness, quorum, stateless,
    /// members, slots; `pairs` has full bounds only).
    #[arg(long, value_delimiter = ',')]
    config: Vec<String>,
    /// Break one protocol rule, to see a violation found (in the configuration that shows
    /// it, unless --config says which).
    #[arg(long, value_parser = sim_mutation)]
    mutation: Option<Mutation>,
    /// Every mutation, each in its configuration: each must be caught.
    #[arg(long, conflicts_with = "mutation")]
    mutations: bool,
    /// Stop a configuration after this many distinct states (reported as incomplete).
    #[arg(long, default_value_t = 10_000_000)]
    max_states: u64,
    /// Override the fault budget of the chosen configurations.
    #[arg(long)]
    faults: Option<u8>,
    /// Override the heal time (and, without liveness, the horizon) of the chosen
    /// configurations, ms.
    #[arg(long)]
    heal_ms: Option<u64>,
    /// Debugging: instead of exploring, follow one schedule (the first action each time,
    /// faults never) from initial state N of the first chosen configuration, and print it.
    #[arg(long, value_name = "N", hide = true)]
    walk: Option<usize>,
    /// Where counterexamples are saved, one file per configuration and mutation.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

fn chosen(args: &ModelCheckArgs) -> Result<Vec<Config>> {
    let all: Vec<Config> = replay::configs(args.ci)
        .into_iter()
        .map(|c| replay::with_overrides(c, args.faults, args.heal_ms))
        .collect();
    if args.config.is_empty() {
        return Ok(all);
    }
    args.config
        .iter()
        .map(|name| {
            all.iter()
                .find(|c| c.name() == name)
                .cloned()
                .ok_or_else(|| {
                    let names: Vec<&str> = all.iter().map(|c| c.name()).collect();
                    anyhow::anyhow!(
                        "unknown configuration `{name}` (one of: {})",
                        names.join(", ")
                    )
                })
        })
        .collect()
}

fn file_for(out: &Path, config: &str, mutation: Option<Mutation>) -> PathBuf {
    let m = mutation.map_or("core".to_string(), |m| m.name().to_string());
    out.join(format!("{config}-{m}.json"))
}

pub fn run(args: ModelCheckArgs) -> Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| crate::workspace_dir().join("target/model-check"));
    let bounds = if args.ci { "CI bounds" } else { "full bounds" };
    if args.mutations {
        println!("model-check, {bounds}: every mutation must be caught");
        let mut survived = Vec::new();
        for m in s3_election::mutation::Mutation::ALL {
            let Some(config) = replay::config_for(m, args.ci) else {
                println!("{:<10} [{}] only the simulator reaches it", "-", m.name());
                continue;
            };
            let (summary, schedule) = replay::check(&config, Some(m), args.max_states);
            println!("{summary}");
            match schedule {
                Some(s) => {
                    let path = file_for(&out, config.name(), Some(m));
                    s.save(&path)?;
                }
                None => survived.push(m.name()),
            }
        }
        if !survived.is_empty() {
            bail!("mutations not caught: {}", survived.join(", "));
        }
        println!("every mutation was caught (schedules in {})", out.display());
        return Ok(());
    }
    let configs = match (args.mutation, args.config.is_empty()) {
        (Some(m), true) => vec![replay::with_overrides(
            replay::config_for(m, args.ci).with_context(|| {
                format!(
                    "no world here shows mutation {}: try `host-test sim --mutation {0}`",
                    m.name()
                )
            })?,
            args.faults,
            args.heal_ms,
        )],
        _ => chosen(&args)?,
    };
    println!(
        "model-check, {bounds}{}",
        args.mutation
            .map(|m| format!(", mutation {}", m.name()))
            .unwrap_or_default()
    );
    if let Some(init) = args.walk {
        let schedule = replay::walk(&configs[0], args.mutation, init)?;
        let replayed = replay::replay(&schedule)?;
        println!("{}", replayed.report(&schedule, None));
        return Ok(());
    }
    let mut failed = Vec::new();
    for config in &configs {
        println!("{:<10} {}", config.name(), config.describe());
        let (summary, schedule) = replay::check(config, args.mutation, args.max_states);
        println!("{summary}");
        if let Some(s) = schedule {
            let path = file_for(&out, config.name(), args.mutation);
            s.save(&path)?;
            let replayed = replay::replay(&s)?;
            println!("{}\n", replayed.report(&s, Some(&path)));
            failed.push(config.name().to_string());
        }
    }
    match (args.mutation, failed.is_empty()) {
        (None, true) => {
            println!("all configurations hold every invariant");
            Ok(())
        }
        (None, false) => bail!("violations in: {}", failed.join(", ")),
        (Some(_), false) => Ok(()),
        (Some(m), true) => bail!("mutation {} was not caught", m.name()),
    }
}

/// `host-test sim --replay FILE`.
pub fn replay(file: &Path) -> Result<()> {
    let schedule = Schedule::load(file)?;
    let replayed = replay::replay(&schedule)?;
    println!("{}", replayed.report(&schedule, Some(file)));
    match &replayed.violation {
        Some(v) => {
            if v.to_string() != schedule.violation {
                println!(
                    "(the file recorded a different violation: {})",
                    schedule.violation
                );
            }
            bail!("{v}")
        }
        None => {
            println!("(the file recorded: {})", schedule.violation);
            Ok(())
        }
    }
}
