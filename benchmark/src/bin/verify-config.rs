//! `verify-config`: how often a configuration meets QoS window by window on fresh twin seeds,
//! the same check `oracle-search` applies to its own result, so a tuning session's outcome and
//! the reference optimum are judged alike.
//!
//! `./target/release/verify-config USERS FILE [--seeds N] [--windows W]`: FILE holds JSON
//! whose last line has a `final_config` (what `faasconf demo --json` prints) or is a
//! configuration itself (`{"starter": {"cpu_millis": ..}, ..}`). Prints one JSON line.

use anyhow::{Context, bail};
use faasconf_core::{Qos, catalog};
use faasconf_tuner::oracle::verify;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut positional, mut seeds, mut windows) = (Vec::new(), 5u64, 20u32);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seeds" => {
                seeds = args
                    .next()
                    .context("--seeds needs a number")?
                    .parse()
                    .context("--seeds")?
            }
            "--windows" => {
                windows = args
                    .next()
                    .context("--windows needs a number")?
                    .parse()
                    .context("--windows")?
            }
            _ => positional.push(a),
        }
    }
    let [users, file] = positional.as_slice() else {
        bail!("usage: verify-config USERS FILE [--seeds N] [--windows W]")
    };
    let users: u32 = users
        .parse()
        .with_context(|| format!("USERS: {users:?} is not a user count"))?;
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    let last = text
        .trim()
        .lines()
        .last()
        .with_context(|| format!("{file} is empty"))?;
    let value: serde_json::Value =
        serde_json::from_str(last).with_context(|| format!("{file}: the last line is not JSON"))?;
    let (config_value, field) = match value.get("final_config") {
        Some(c) => (c, "final_config"),
        None => (&value, "config"),
    };
    let workflow = catalog::builtin("parallel")?;
    let config = faasconf_twin::evaluate::parse_config(&workflow, config_value, field).map_err(
        |errors| {
            anyhow::anyhow!(
                "{file}: {}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        },
    )?;
    let seed_list: Vec<u64> = (0..seeds).map(|k| 7001 + k).collect();
    let checks = verify(
        &workflow,
        &config,
        users,
        windows,
        &seed_list,
        &Qos::default(),
    );
    let (met, total): (u32, u32) = checks
        .iter()
        .fold((0, 0), |(m, t), s| (m + s.windows_met, t + s.windows));
    println!(
        "{}",
        serde_json::json!({ "users": users, "cost": config.cost(), "windows": total, "windows_met": met, "pass_rate": f64::from(met) / f64::from(total.max(1)), "per_seed": checks })
    );
    Ok(())
}
