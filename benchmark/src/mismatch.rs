//! `mismatch`: rq1's protocol on a cluster that is not faasconf's twin. The cluster is the twin
//! with each function's CPU work and I/O time scaled by factors drawn (seeded, log-uniform in
//! `[low, high]`, independently per function and per field, so both directions mix within a
//! workflow). faasconf trains and screens on the unscaled twin; the baselines warm up on the
//! cluster (they use no model, so the cluster's own samples are what they would have); the
//! ceiling, `faasconf-true`, screens on the cluster's true profiles.
//!
//! Per cell: misses, the single-window best, and what the best really does on the cluster —
//! its pass rate over fresh windows, and the cheapest configuration the method applied that
//! holds in at least [`crate::holds::HOLDS`] of them — against the cluster's oracle.

use std::path::Path;

use faasconf_core::rng::Rng;
use faasconf_core::{Workflow, catalog};
use faasconf_tuner::oracle::{SearchOptions, search};
use serde::{Deserialize, Serialize};

use crate::holds;
use crate::methods::{Method, Variant, WarmUpOptions, build, warm_up};
use crate::protocol::{CellResult, Protocol, run_cell};
use crate::rq1::{Rq1Options, loads_of, qos_of};

/// Name of the ceiling: faasconf screening on the cluster's true profiles.
pub const CEILING: &str = "faasconf-true";

/// How a run is set up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MismatchOptions {
    /// (workflow, closed-loop users) pairs.
    pub cells: Vec<(String, u32)>,
    /// Clusters drawn per (workflow, seed).
    pub draws: u32,
    /// Seeds (each one a warm-up, draws and a run of every method).
    pub seeds: Vec<u64>,
    /// Smallest factor.
    pub low: f64,
    /// Largest factor.
    pub high: f64,
    /// Methods besides the ceiling.
    pub methods: Vec<Method>,
    /// Run the ceiling too.
    pub ceiling: bool,
    /// Warm-up every method gets.
    pub warm_up: WarmUpOptions,
    /// The online protocol.
    pub protocol: Protocol,
    /// The cluster's oracle search.
    pub oracle: SearchOptions,
    /// Fresh cluster seeds a best is re-run on, and windows per seed.
    pub fresh: (u32, u32),
}

impl MismatchOptions {
    /// The whole run: `parallel` at 20 users and `tcktapp` at 30, 6 draws x 3 seeds.
    pub fn full() -> Self {
        let rq1 = Rq1Options::full();
        Self {
            cells: vec![("parallel".into(), 20), ("tcktapp".into(), 30)],
            draws: 6,
            seeds: vec![0, 1, 2],
            low: 0.6,
            high: 1.6,
            methods: vec![
                Method::FAASCONF,
                Method::Faasconf(Variant {
                    follow: false,
                    ..Variant::FULL
                }),
                Method::Faasconf(Variant {
                    screen: false,
                    follow: false,
                    ..Variant::FULL
                }),
                Method::Firm,
                Method::Aquatope,
            ],
            ceiling: true,
            warm_up: rq1.warm_up,
            protocol: rq1.protocol,
            oracle: rq1.oracle,
            fresh: holds::FRESH,
        }
    }

    /// A quick look: `parallel` at 20 users, 2 draws, one seed, rq1-quick's oracle.
    pub fn quick() -> Self {
        Self {
            cells: vec![("parallel".into(), 20)],
            draws: 2,
            seeds: vec![0],
            oracle: Rq1Options::quick().oracle,
            ..Self::full()
        }
    }
}

/// One drawn cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draw {
    /// Index of the draw within its (workflow, seed).
    pub index: u32,
    /// Per function: (CPU work, I/O time) factors.
    pub factors: Vec<(f64, f64)>,
    /// The mismatch's size: the mean |ln factor| over every factor.
    pub size: f64,
}

/// The cluster of draw `index` for `workflow` and `seed`.
pub fn draw(workflow: &Workflow, seed: u64, index: u32, low: f64, high: f64) -> (Workflow, Draw) {
    let mut rng = Rng::stream(seed, 0x6d15_0000 + u64::from(index));
    let (a, b) = (low.ln(), high.ln());
    let factors: Vec<(f64, f64)> = (0..workflow.len())
        .map(|_| {
            let cpu = (a + (b - a) * rng.uniform()).exp();
            let io = (a + (b - a) * rng.uniform()).exp();
            (cpu, io)
        })
        .collect();
    let mut cluster = workflow.clone();
    for (f, (cpu, io)) in cluster.functions.iter_mut().zip(&factors) {
        f.profile.cpu_core_seconds *= cpu;
        f.profile.io_seconds *= io;
    }
    let size = factors
        .iter()
        .map(|(c, i)| c.ln().abs() + i.ln().abs())
        .sum::<f64>()
        / (2 * factors.len().max(1)) as f64;
    (
        cluster,
        Draw {
            index,
            factors,
            size,
        },
    )
}

/// One method on one drawn cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MismatchCell {
    /// The cell as rq1 measures it (misses, single-window best), judged on fresh cluster
    /// windows (`cell.held`).
    pub cell: CellResult,
    /// The draw.
    pub draw: Draw,
    /// The cluster's oracle cost.
    pub oracle_cost: Option<f64>,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    /// Every cell.
    pub cells: Vec<MismatchCell>,
    /// What was run.
    pub options: MismatchOptions,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum MismatchError {
    /// A workflow is unknown.
    #[error("cells: {0}")]
    Workflow(#[from] faasconf_core::Error),
    /// A warm-up failed.
    #[error(transparent)]
    WarmUp(#[from] crate::methods::WarmUpError),
    /// A method could not be built.
    #[error("{0}")]
    Build(String),
    /// A cell failed.
    #[error(transparent)]
    Cell(#[from] crate::protocol::CellError),
}

/// What a run tells as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Something starts (a warm-up, an oracle search).
    Phase(String),
    /// A cell finished.
    Cell(Box<MismatchCell>),
}

/// Runs every cell; `workdir` holds the warm-up models.
pub fn run(
    options: &MismatchOptions,
    workdir: &Path,
    progress: &mut dyn FnMut(Event),
) -> Result<Mismatch, MismatchError> {
    let mut cells = Vec::new();
    for (name, users) in &options.cells {
        let workflow = catalog::builtin(name)?;
        let qos = qos_of(name);
        let check = holds::fresh(*users, &qos, options.protocol.window_seconds, options.fresh);
        for &seed in &options.seeds {
            progress(Event::Phase(format!("warm-up {name} seed {seed}")));
            let faasconf_methods: Vec<Method> = options
                .methods
                .iter()
                .copied()
                .filter(|m| m.variant().is_some())
                .chain(options.ceiling.then_some(Method::FAASCONF))
                .collect();
            let ours = warm_up(
                &workflow,
                &loads_of(name),
                &qos,
                &options.warm_up,
                seed,
                workdir,
                &faasconf_methods,
            )?;
            for index in 0..options.draws {
                let (cluster, drawn) = draw(&workflow, seed, index, options.low, options.high);
                progress(Event::Phase(format!(
                    "{name} seed {seed} draw {index}: oracle"
                )));
                let oracle_cost = search(&cluster, *users, &qos, &options.oracle, &|_| {})
                    .steady
                    .map(|s| s.cost);
                // The baselines' warm-up: the same samples, drawn on the cluster.
                let theirs = warm_up(
                    &cluster,
                    &loads_of(name),
                    &qos,
                    &options.warm_up,
                    seed,
                    workdir,
                    &[],
                )?;
                let mut runs: Vec<(String, Box<dyn faasconf_core::optimiser::Optimiser>)> =
                    Vec::new();
                for &method in &options.methods {
                    let optimiser = match method {
                        Method::Faasconf(_) => build(method, &workflow, &qos, &ours, seed),
                        _ => build(method, &cluster, &qos, &theirs, seed),
                    }
                    .map_err(MismatchError::Build)?;
                    runs.push((method.name(), optimiser));
                }
                if options.ceiling {
                    let ceiling = Method::Faasconf(Variant {
                        follow: false,
                        ..Variant::FULL
                    });
                    let truth = crate::methods::WarmUp {
                        samples: theirs.samples.clone(),
                        hardware_samples: Vec::new(),
                        models: ours.models.clone(),
                        seconds: 0.0,
                    };
                    let optimiser = build(ceiling, &cluster, &qos, &truth, seed)
                        .map_err(MismatchError::Build)?;
                    runs.push((CEILING.to_owned(), optimiser));
                }
                for (method, mut optimiser) in runs {
                    let mut cell = run_cell(
                        &cluster,
                        *users,
                        &qos,
                        optimiser.as_mut(),
                        seed,
                        &options.protocol,
                    )?;
                    cell.method = method;
                    cell.held = Some(holds::judge(&cluster, &cell, &check));
                    let done = MismatchCell {
                        cell,
                        draw: drawn.clone(),
                        oracle_cost,
                    };
                    progress(Event::Cell(Box::new(done.clone())));
                    cells.push(done);
                }
            }
        }
    }
    Ok(Mismatch {
        cells,
        options: options.clone(),
    })
}

/// The report: per method, averages over cells, and the same by the size of the mismatch.
pub fn markdown(run: &Mismatch, machine: &str) -> String {
    let mut s = format!(
        "# mismatch: tuning a cluster that is not the twin\n\nMachine: {machine}. Cluster = the twin with per-function CPU-work and I/O-time factors drawn from {}-{} (log-uniform); faasconf trains and screens on the unscaled twin; baselines warm up on the cluster; `{CEILING}` screens on the cluster's true profiles. {} cells.\n\n",
        run.options.low,
        run.options.high,
        run.cells.len()
    );
    s.push_str(&table(&run.cells, &methods_of(run)));
    let mut sizes: Vec<f64> = run.cells.iter().map(|c| c.draw.size).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    if sizes.len() >= 2 {
        let median = sizes[sizes.len() / 2];
        for (label, small) in [("smaller", true), ("larger", false)] {
            let part: Vec<MismatchCell> = run
                .cells
                .iter()
                .filter(|c| (c.draw.size < median) == small)
                .cloned()
                .collect();
            s.push_str(&format!(
                "\n## The {label} mismatches (mean |ln factor| {} {median:.3})\n\n",
                if small { "<" } else { ">=" }
            ));
            s.push_str(&table(&part, &methods_of(run)));
        }
    }
    s
}

fn methods_of(run: &Mismatch) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for c in &run.cells {
        if !names.contains(&c.cell.method) {
            names.push(c.cell.method.clone());
        }
    }
    names
}

fn table(cells: &[MismatchCell], methods: &[String]) -> String {
    let mut s = String::from(
        "| method | cells | misses / 15 (mean) | nothing met | best holds (mean pass rate) | best holds >= 80% | best / oracle | cheapest holding / oracle |\n|---|---|---|---|---|---|---|---|\n",
    );
    let two = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.2}"));
    let mean = |xs: Vec<f64>| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
    for m in methods {
        let mine: Vec<&MismatchCell> = cells.iter().filter(|c| &c.cell.method == m).collect();
        if mine.is_empty() {
            continue;
        }
        let judged: Vec<&CellResult> = mine.iter().map(|c| &c.cell).collect();
        let oracle = |cell: &CellResult| {
            mine.iter()
                .find(|c| std::ptr::eq(&c.cell, cell))
                .and_then(|c| c.oracle_cost)
        };
        let held = holds::summarise("", m, &judged, &oracle);
        s.push_str(&format!(
            "| {m} | {} | {} | {} | {} | {} | {} | {} |\n",
            mine.len(),
            two(mean(
                mine.iter().map(|c| f64::from(c.cell.violations)).collect()
            )),
            mine.iter().filter(|c| !c.cell.feasible).count(),
            two(held.mean_best_pass_rate),
            held.best_holds,
            two(mean(
                mine.iter()
                    .filter_map(|c| Some(c.cell.best_cost? / c.oracle_cost?))
                    .collect()
            )),
            two(held.held_above_oracle.map(|v| v + 1.0)),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_seeded_within_the_range_and_mix_directions() {
        let workflow = catalog::builtin("tcktapp").expect("built in");
        let (cluster, d) = draw(&workflow, 3, 1, 0.6, 1.6);
        assert_eq!(draw(&workflow, 3, 1, 0.6, 1.6).1, d);
        assert_ne!(draw(&workflow, 3, 2, 0.6, 1.6).1, d);
        let all: Vec<f64> = d.factors.iter().flat_map(|&(c, i)| [c, i]).collect();
        assert!(all.iter().all(|f| (0.6..=1.6).contains(f)));
        assert!(all.iter().any(|&f| f < 1.0) && all.iter().any(|&f| f > 1.0));
        for ((f, g), (c, i)) in cluster
            .functions
            .iter()
            .zip(&workflow.functions)
            .zip(&d.factors)
        {
            assert!((f.profile.cpu_core_seconds / g.profile.cpu_core_seconds - c).abs() < 1e-9);
            assert!((f.profile.io_seconds / g.profile.io_seconds - i).abs() < 1e-9);
        }
    }
}
