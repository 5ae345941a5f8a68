//! `oracle-search`: the reference optimum on the twin (see `faasconf_benchmark::oracle`), per
//! load, as JSON lines.
//!
//! `cargo run --release -p faasconf-benchmark --bin oracle-search -- [users...] [--random N]
//! [--starts K] [--windows W] [--seeds N] [--seed S] [--pass-rate-percent P]
//! [--holdout-seeds N] [--holdout-windows W] [--confirm-seeds N] [--confirm-windows W]`

use anyhow::{Context, bail};
use faasconf_core::{Qos, catalog};
use faasconf_tuner::oracle::{SearchOptions, describe, search, verify};

fn main() -> anyhow::Result<()> {
    let mut users = Vec::new();
    let mut options = SearchOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if !a.starts_with("--") {
            users.push(
                a.parse::<u32>()
                    .with_context(|| format!("{a:?} is not a user count"))?,
            );
            continue;
        }
        let value: u64 = args
            .next()
            .with_context(|| format!("{a} needs a number"))?
            .parse()
            .with_context(|| format!("{a} needs a whole number"))?;
        let small = || u32::try_from(value).with_context(|| format!("{a}: {value} is too large"));
        match a.as_str() {
            "--random" => options.random = small()? as usize,
            "--starts" => options.starts = small()? as usize,
            "--windows" => options.windows = small()?,
            "--seed" => options.seed = value,
            "--seeds" => options.seeds = value,
            "--holdout-seeds" => options.holdout_seeds = value,
            "--holdout-windows" => options.holdout_windows = small()?,
            "--confirm-seeds" => options.confirm_seeds = value,
            "--confirm-windows" => options.confirm_windows = small()?,
            "--pass-rate-percent" if value <= 100 => options.pass_rate = value as f64 / 100.0,
            "--pass-rate-percent" => bail!("--pass-rate-percent: {value} is over 100"),
            other => bail!("unknown flag {other}"),
        }
    }
    if users.is_empty() {
        users = vec![10, 20, 30];
    }
    let workflow = catalog::builtin("parallel")?;
    let qos = Qos::default();
    for u in users {
        let started = std::time::Instant::now();
        let result = search(&workflow, u, &qos, &options, &|m| eprintln!("{m}"));
        let checks = result
            .best
            .as_ref()
            .map(|b| verify(&workflow, b, u, 20, &[1001, 2002, 3003], &qos))
            .unwrap_or_default();
        let line = serde_json::json!({
            "users": u,
            "best_cost": result.steady.map(|s| s.cost),
            "steady": result.steady,
            "holdout": result.holdout,
            "confirmation": result.confirmation,
            "unchecked_cost": result.unchecked_cost,
            "pass_rate": result.steady.map(|s| s.pass_rate()),
            "verification_other_seeds_20_windows": checks,
            "config": result.best.as_ref().map(|b| b.0.iter().map(describe).collect::<Vec<_>>()),
            "evaluations": result.evaluations,
            "seconds": started.elapsed().as_secs_f64(),
            "options": options,
        });
        println!("{line}");
    }
    Ok(())
}
