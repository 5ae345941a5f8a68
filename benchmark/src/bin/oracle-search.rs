//! `oracle-search`: the reference optimum on the twin (see `faasconf_benchmark::oracle`), per
//! load, as JSON lines.
//!
//! `cargo run --release -p faasconf-benchmark --bin oracle-search -- [users...] [--random N]
//! [--starts K] [--windows W] [--seeds N] [--seed S]
//! [--pass-rate-percent P] [--holdout-seeds N] [--holdout-windows W]`

use faasconf_benchmark::oracle::{SearchOptions, describe, search, verify};
use faasconf_core::{Qos, catalog};

fn main() {
    let mut users = Vec::new();
    let mut options = SearchOptions {
        random: 4000,
        starts: 12,
        windows: 10,
        seeds: 3,
        seed: 1,
        threads: 0,
        pass_rate: 0.0,
        holdout_seeds: 3,
        holdout_windows: 20,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match a.as_str() {
            "--random" => options.random = value("--random") as usize,
            "--starts" => options.starts = value("--starts") as usize,
            "--windows" => options.windows = value("--windows") as u32,
            "--seed" => options.seed = value("--seed"),
            "--seeds" => options.seeds = value("--seeds"),
            "--holdout-seeds" => options.holdout_seeds = value("--holdout-seeds"),
            "--holdout-windows" => options.holdout_windows = value("--holdout-windows") as u32,
            "--pass-rate-percent" => {
                options.pass_rate = value("--pass-rate-percent") as f64 / 100.0
            }
            other => users.push(
                other
                    .parse::<u32>()
                    .unwrap_or_else(|_| panic!("{other}: not a user count or flag")),
            ),
        }
    }
    if users.is_empty() {
        users = vec![10, 20, 30];
    }
    let workflow = catalog::builtin("parallel").unwrap_or_else(|e| panic!("{e}"));
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
}
