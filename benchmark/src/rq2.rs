//! `rq2`: dynamic load. Every method tunes one workflow online while the number of closed-loop
//! users follows 85 minutes of the Azure Functions 2019 trace, scaled into 10-30 users. A
//! method decides after each steady window; the rollout window after a change counts too (the
//! service runs through it). Per window: the configuration's cost, whether QoS was met, the
//! latency, and the oracle's cost at that window's load (the oracle searched at the `rq1`
//! levels, interpolated between them).
//!
//! Per (method, seed): QoS compliance (the share of windows meeting QoS), violations,
//! cumulative latency (the sum of the windows' mean end-to-end latencies), mean cost and mean
//! cost above the oracle.

use std::path::Path;
use std::time::Instant;

use faasconf_core::cancel::Cancel;
use faasconf_core::optimiser::Optimiser;
use faasconf_core::{Workflow, catalog};
use faasconf_tuner::Judged;
use faasconf_tuner::tuning_loop::{self, Baseline, LoopError, LoopOptions, Silent};
use faasconf_tuner::twin_env::TwinEnvironment;
use faasconf_twin::{TwinOptions, Workload};
use serde::{Deserialize, Serialize};

use crate::journal::{Journal, SearchRecord};
use crate::methods::{Method, WarmUpOptions, build, warm_up};
use crate::rq1::{Rq1Options, loads_of, qos_of};
use faasconf_tuner::oracle::{SearchOptions, search};

/// Invocations per minute of one function of the Azure Functions 2019 trace (`../shared/data/
/// azure/invocations_per_minute_140fn.csv`, data row 138, function `e91d3cbe…`, minutes
/// 1296-1380; CC-BY 4.0, Microsoft): quiet stretches, two bursts to the peak, a long plateau
/// and a late spike — the shape the users follow.
pub const AZURE_85_MINUTES: [f64; 85] = [
    185.0, 131.0, 84.0, 427.0, 327.0, 368.0, 280.0, 243.0, 402.0, 370.0, 60.0, 115.0, 360.0, 278.0,
    179.0, 87.0, 94.0, 84.0, 88.0, 92.0, 95.0, 122.0, 152.0, 282.0, 118.0, 98.0, 122.0, 597.0,
    978.0, 947.0, 960.0, 962.0, 975.0, 838.0, 1026.0, 391.0, 516.0, 497.0, 261.0, 519.0, 569.0,
    571.0, 456.0, 471.0, 550.0, 548.0, 435.0, 564.0, 702.0, 623.0, 467.0, 1008.0, 938.0, 851.0,
    1021.0, 1000.0, 618.0, 630.0, 875.0, 473.0, 417.0, 328.0, 522.0, 238.0, 241.0, 28.0, 314.0,
    257.0, 448.0, 566.0, 390.0, 253.0, 272.0, 277.0, 269.0, 230.0, 232.0, 319.0, 797.0, 895.0,
    671.0, 216.0, 272.0, 322.0, 271.0,
];

/// What an `rq2` run does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rq2Options {
    /// The workflow tuned.
    pub workflow: String,
    /// Which segment of the trace the load follows ([`Shape`]).
    pub shape: Shape,
    /// The load's shape, per minute (only the shape matters): the shape's minutes, or the
    /// first of them for a quick run.
    pub per_minute: Vec<f64>,
    /// Users at the shape's minimum.
    pub min_users: u32,
    /// Users at its maximum.
    pub max_users: u32,
    /// Seeds (each one a warm-up and a run of every method).
    pub seeds: Vec<u64>,
    /// Methods.
    pub methods: Vec<Method>,
    /// Warm-up every method gets (at the `rq1` levels of the workflow).
    pub warm_up: WarmUpOptions,
    /// The oracle's search at each `rq1` level.
    pub oracle: SearchOptions,
    /// Window length, seconds.
    pub window_seconds: f64,
}

impl Rq2Options {
    /// `parallel` under the 85-minute shape in 10-30 users, 3 seeds, every method, `rq1`'s
    /// warm-up and oracle.
    pub fn full() -> Self {
        let rq1 = Rq1Options::full();
        Self {
            workflow: "parallel".into(),
            shape: Shape::Azure85,
            per_minute: AZURE_85_MINUTES.to_vec(),
            min_users: 10,
            max_users: 30,
            seeds: vec![0, 1, 2],
            methods: Method::ALL.to_vec(),
            warm_up: rq1.warm_up,
            oracle: rq1.oracle,
            window_seconds: 30.0,
        }
    }

    /// The first 12 minutes of the shape (a quiet stretch and the first burst), one seed,
    /// `rq1 --quick`'s oracle.
    pub fn quick() -> Self {
        Self {
            per_minute: AZURE_85_MINUTES[..12].to_vec(),
            seeds: vec![0],
            oracle: Rq1Options::quick().oracle,
            ..Self::full()
        }
    }

    /// The same run under `shape` (as many of its minutes as this run plays).
    pub fn with_shape(self, shape: Shape) -> Self {
        let minutes = self.per_minute.len().min(shape.per_minute().len());
        Self {
            shape,
            per_minute: shape.per_minute()[..minutes].to_vec(),
            ..self
        }
    }

    /// Windows a run observes.
    pub fn windows(&self) -> u32 {
        (self.per_minute.len() as f64 * 60.0 / self.window_seconds).floor() as u32
    }
}

/// A run's violating windows by cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ViolationSplit {
    /// A change was rolled out in the window.
    pub rollout: u32,
    /// Not a rollout, and the users rose in the window or the one before.
    pub load_rise: u32,
    /// Neither.
    pub other: u32,
}

impl ViolationSplit {
    /// The split of `windows` (in order).
    pub fn of(windows: &[WindowRecord]) -> Self {
        let mut split = Self::default();
        for (i, w) in windows.iter().enumerate() {
            if w.qos_met {
                continue;
            }
            let rose = |j: usize| j >= 1 && windows[j].users > windows[j - 1].users;
            if w.transient {
                split.rollout += 1;
            } else if rose(i) || (i >= 1 && rose(i - 1)) {
                split.load_rise += 1;
            } else {
                split.other += 1;
            }
        }
        split
    }
}

/// One window of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowRecord {
    /// 0-based, from the end of the ramp-up.
    pub window: u32,
    /// Users at the window's end.
    pub users: u32,
    /// Cost of the configuration in force.
    pub cost: f64,
    /// Mean end-to-end latency, seconds.
    pub e2e_mean_s: f64,
    /// Success ratio.
    pub success_ratio: f64,
    /// QoS met.
    pub qos_met: bool,
    /// A new configuration was rolled out in this window.
    pub transient: bool,
    /// The oracle's cost at this window's users.
    pub oracle_cost: Option<f64>,
}

/// One method under the dynamic load with one seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rq2Run {
    /// The method.
    pub method: String,
    /// The seed.
    pub seed: u64,
    /// Share of windows meeting QoS.
    pub compliance: f64,
    /// Windows missing QoS.
    pub violations: u32,
    /// Sum of the windows' mean end-to-end latencies, seconds.
    pub cumulative_latency_s: f64,
    /// Mean cost over the windows.
    pub mean_cost: f64,
    /// Mean of `cost / oracle - 1` over the windows with an oracle.
    pub above_oracle: Option<f64>,
    /// Seconds the method spent deciding.
    pub decision_seconds: f64,
    /// Every window.
    pub windows: Vec<WindowRecord>,
}

/// A whole `rq2` run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rq2 {
    /// Every (method, seed).
    pub runs: Vec<Rq2Run>,
    /// The oracle's cost per `rq1` level.
    pub oracle: Vec<(u32, Option<f64>)>,
    /// What was run.
    pub options: Rq2Options,
}

/// What a run tells as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Rq2Event {
    /// An oracle search finished.
    Oracle(u32),
    /// A warm-up starts.
    WarmUp(u64),
    /// A (method, seed) finished.
    Run(Box<Rq2Run>),
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum Rq2Error {
    /// The workflow is unknown.
    #[error("workflow: {0}")]
    Workflow(#[from] faasconf_core::Error),
    /// The load's shape or the scenario is invalid.
    #[error("{method}: the twin refused {what}: {source}")]
    Twin {
        /// The method.
        method: String,
        /// What was refused.
        what: &'static str,
        /// The twin's error.
        #[source]
        source: faasconf_twin::Error,
    },
    /// A warm-up failed.
    #[error(transparent)]
    WarmUp(#[from] crate::methods::WarmUpError),
    /// A method could not be built or failed.
    #[error("{method}: {message}")]
    Method {
        /// The method.
        method: String,
        /// Why.
        message: String,
    },
    /// The journal could not be used.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
}

/// The oracle's cost at `users`: linear between the searched levels, the nearest level's
/// outside them; none when a level it needs found nothing.
pub fn oracle_at(levels: &[(u32, Option<f64>)], users: u32) -> Option<f64> {
    let (first, last) = (levels.first()?, levels.last()?);
    if users <= first.0 {
        return first.1;
    }
    if users >= last.0 {
        return last.1;
    }
    let upper = levels.iter().position(|(u, _)| *u >= users)?;
    let (u0, c0) = levels[upper - 1];
    let (u1, c1) = levels[upper];
    let t = f64::from(users - u0) / f64::from(u1 - u0);
    Some(c0? + t * (c1? - c0?))
}

/// Runs `options`; `workdir` holds the warm-up models. Finished oracle searches and (method,
/// seed) runs go to the `journal` file as they finish; what a stopped run of the same options
/// journalled there is taken from it, not run again.
pub fn run(
    options: &Rq2Options,
    workdir: &Path,
    journal: &Path,
    progress: &mut dyn FnMut(Rq2Event),
) -> Result<Rq2, Rq2Error> {
    let mut journal: Journal<Rq2Run> = Journal::open(journal, options)?;
    let workflow = catalog::builtin(&options.workflow)?;
    let qos = qos_of(&options.workflow);
    let levels = loads_of(&options.workflow);
    let mut oracle = Vec::with_capacity(levels.len());
    for &users in &levels {
        if journal.search(&options.workflow, users).is_none() {
            let started = Instant::now();
            let found = search(&workflow, users, &qos, &options.oracle, &|_| {});
            journal.record_search(&SearchRecord {
                workflow: options.workflow.clone(),
                users,
                cost: found.steady.map(|s| s.cost),
                seconds: started.elapsed().as_secs_f64(),
            })?;
        }
        let cost = journal
            .search(&options.workflow, users)
            .and_then(|s| s.cost);
        oracle.push((users, cost));
        progress(Rq2Event::Oracle(users));
    }
    let mut runs = Vec::new();
    for &seed in &options.seeds {
        let journalled = |journal: &Journal<Rq2Run>, method: Method| {
            journal
                .find(|r| r.method == method.name() && r.seed == seed)
                .cloned()
        };
        if let Some(done) = options
            .methods
            .iter()
            .map(|&m| journalled(&journal, m))
            .collect::<Option<Vec<_>>>()
        {
            for run in done {
                progress(Rq2Event::Run(Box::new(run.clone())));
                runs.push(run);
            }
            continue;
        }
        progress(Rq2Event::WarmUp(seed));
        let warm = warm_up(
            &workflow,
            &levels,
            &qos,
            &options.warm_up,
            seed,
            workdir,
            &options.methods,
        )?;
        for &method in &options.methods {
            if let Some(done) = journalled(&journal, method) {
                progress(Rq2Event::Run(Box::new(done.clone())));
                runs.push(done);
                continue;
            }
            let failed = |message: String| Rq2Error::Method {
                method: method.name(),
                message,
            };
            let mut optimiser = build(method, &workflow, &qos, &warm, seed).map_err(failed)?;
            let mut run = run_method(&workflow, options, optimiser.as_mut(), seed, &oracle)?;
            run.method = method.name();
            journal.record_cell(&run)?;
            progress(Rq2Event::Run(Box::new(run.clone())));
            runs.push(run);
        }
    }
    Ok(Rq2 {
        runs,
        oracle,
        options: options.clone(),
    })
}

/// One method under the load with one seed.
fn run_method(
    workflow: &Workflow,
    options: &Rq2Options,
    method: &mut dyn Optimiser,
    seed: u64,
    oracle: &[(u32, Option<f64>)],
) -> Result<Rq2Run, Rq2Error> {
    let name = method.name().to_owned();
    let twin_error = |what: &'static str| {
        let method = name.clone();
        move |source| Rq2Error::Twin {
            method,
            what,
            source,
        }
    };
    let qos = qos_of(&options.workflow);
    let total = options.windows() as usize;
    let mut twin = TwinEnvironment::new(
        workflow,
        Workload::Trace {
            per_minute: options.per_minute.clone(),
            min_users: options.min_users,
            max_users: options.max_users,
        },
        TwinOptions {
            window_seconds: options.window_seconds,
            seed,
        },
        false,
        Some(total),
    )
    .map_err(twin_error("the scenario"))?;
    // As many iterations as the load lasts: the twin ends the loop after its last window.
    let loop_options = LoopOptions {
        qos,
        max_iterations: u32::MAX,
        converge_after: 0,
        cancel: Cancel::default(),
    };
    let report = tuning_loop::run(&mut twin, &mut Baseline(method), &loop_options, &mut Silent)
        .map_err(|e| match e {
            LoopError::Environment(source) => twin_error("a proposal")(source),
            LoopError::Method(e) => Rq2Error::Method {
                method: name.clone(),
                message: e.to_string(),
            },
            LoopError::Hook(never) => match never {},
        })?;
    let decision_seconds = report.decision_seconds;
    let windows: Vec<WindowRecord> = twin
        .windows()
        .iter()
        .enumerate()
        .map(|(k, s)| WindowRecord {
            window: k as u32,
            users: s.window.users,
            cost: s.window.config.cost(),
            e2e_mean_s: s.window.workflow.mean_latency_seconds,
            success_ratio: s.window.workflow.success_ratio,
            qos_met: Judged::of(&qos, &s.window).qos_met,
            transient: s.transient,
            oracle_cost: oracle_at(oracle, s.window.users),
        })
        .collect();
    let n = windows.len().max(1) as f64;
    let met = windows.iter().filter(|w| w.qos_met).count();
    let above: Vec<f64> = windows
        .iter()
        .filter_map(|w| Some(w.cost / w.oracle_cost? - 1.0))
        .collect();
    Ok(Rq2Run {
        method: name,
        seed,
        compliance: met as f64 / n,
        violations: (windows.len() - met) as u32,
        cumulative_latency_s: windows.iter().map(|w| w.e2e_mean_s).sum(),
        mean_cost: windows.iter().map(|w| w.cost).sum::<f64>() / n,
        above_oracle: (!above.is_empty()).then(|| above.iter().sum::<f64>() / above.len() as f64),
        decision_seconds,
        windows,
    })
}

/// One method's figures over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rq2Summary {
    /// The method.
    pub method: String,
    /// Runs (seeds).
    pub runs: usize,
    /// Mean QoS compliance.
    pub compliance: f64,
    /// Mean violating windows per run.
    pub violations: f64,
    /// Mean cumulative latency, seconds.
    pub cumulative_latency_s: f64,
    /// Mean cost per window.
    pub mean_cost: f64,
    /// Mean cost above the oracle.
    pub above_oracle: Option<f64>,
    /// This method's violations over faasconf's (how many times fewer faasconf has).
    pub violations_vs_faasconf: Option<f64>,
    /// `1 - faasconf / this` cumulative latency: how much lower faasconf's is.
    pub faasconf_latency_saving: Option<f64>,
    /// Mean decision seconds per run.
    pub decision_seconds: f64,
}

fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Every method's summary, in the options' order.
pub fn summaries(run: &Rq2) -> Vec<Rq2Summary> {
    let of =
        |name: &str| -> Vec<&Rq2Run> { run.runs.iter().filter(|r| r.method == name).collect() };
    let ours = of("faasconf");
    let our_violations = mean(ours.iter().map(|r| f64::from(r.violations)));
    let our_latency = mean(ours.iter().map(|r| r.cumulative_latency_s));
    run.options
        .methods
        .iter()
        .map(|m| {
            let name = m.name();
            let mine = of(&name);
            let violations = mean(mine.iter().map(|r| f64::from(r.violations))).unwrap_or(0.0);
            let latency = mean(mine.iter().map(|r| r.cumulative_latency_s)).unwrap_or(0.0);
            let others = name != "faasconf";
            Rq2Summary {
                runs: mine.len(),
                compliance: mean(mine.iter().map(|r| r.compliance)).unwrap_or(0.0),
                violations,
                cumulative_latency_s: latency,
                mean_cost: mean(mine.iter().map(|r| r.mean_cost)).unwrap_or(0.0),
                above_oracle: mean(mine.iter().filter_map(|r| r.above_oracle)),
                violations_vs_faasconf: our_violations
                    .filter(|&v| others && v > 0.0)
                    .map(|v| violations / v),
                faasconf_latency_saving: our_latency
                    .filter(|_| others && latency > 0.0)
                    .map(|l| 1.0 - l / latency),
                decision_seconds: mean(mine.iter().map(|r| r.decision_seconds)).unwrap_or(0.0),
                method: name,
            }
        })
        .collect()
}

/// The run as Markdown: the summary table and the oracle's levels.
pub fn markdown(run: &Rq2, machine: &str) -> String {
    use std::fmt::Write;
    let o = &run.options;
    let mut s = String::new();
    let _ = writeln!(s, "# rq2: dynamic load\n");
    let _ = writeln!(
        s,
        "Machine: {machine}. `{}` under {} minutes of the Azure Functions 2019 trace (shape `{}`) scaled into {}-{} users ({} windows of {} s); seeds {:?}. A method decides after each steady window; rollout windows count.\n",
        o.workflow,
        o.per_minute.len(),
        o.shape.name(),
        o.min_users,
        o.max_users,
        o.windows(),
        o.window_seconds,
        o.seeds
    );
    let _ = writeln!(
        s,
        "| method | QoS compliance | violating windows | x faasconf's violations | cumulative latency s | faasconf's latency lower by | mean cost | above oracle | decision s per run |\n|---|---|---|---|---|---|---|---|---|"
    );
    let pct = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:+.1}%", 100.0 * v));
    for m in summaries(run) {
        let _ = writeln!(
            s,
            "| {} | {:.1}% | {:.1} | {} | {:.0} | {} | {:.3} | {} | {:.0} |",
            m.method,
            100.0 * m.compliance,
            m.violations,
            m.violations_vs_faasconf
                .map_or("–".into(), |v| format!("{v:.2}x")),
            m.cumulative_latency_s,
            pct(m.faasconf_latency_saving),
            m.mean_cost,
            pct(m.above_oracle),
            m.decision_seconds
        );
    }
    let _ = writeln!(
        s,
        "\n## Violations by cause (per run, mean over seeds)\n\nA violating window is a *rollout* when a change was rolled out in it, a *load rise* when the users rose in it or the window before, else *other*.\n\n| method | rollout | load rise | other |\n|---|---|---|---|"
    );
    for method in run
        .runs
        .iter()
        .map(|r| r.method.as_str())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let runs: Vec<&Rq2Run> = run.runs.iter().filter(|r| r.method == method).collect();
        let split = runs
            .iter()
            .map(|r| ViolationSplit::of(&r.windows))
            .fold([0.0; 3], |a, v| {
                [
                    a[0] + v.rollout as f64,
                    a[1] + v.load_rise as f64,
                    a[2] + v.other as f64,
                ]
            });
        let n = runs.len().max(1) as f64;
        let _ = writeln!(
            s,
            "| {method} | {:.1} | {:.1} | {:.1} |",
            split[0] / n,
            split[1] / n,
            split[2] / n
        );
    }
    let _ = writeln!(
        s,
        "\n## Oracle per level (interpolated between levels for each window)\n\n| users | cost |\n|---|---|"
    );
    for (users, cost) in &run.oracle {
        let _ = writeln!(
            s,
            "| {users} | {} |",
            cost.map_or("–".into(), |c| format!("{c:.3}"))
        );
    }
    s
}

mod shapes;
pub use shapes::Shape;

#[cfg(test)]
mod tests;
