//! Calibration: fits function and platform profiles to history by simulation.
//!
//! 1. A data-driven starting point: CPU work per request from measured CPU usage, working set
//!    from memory %, payload from network bytes, think time from Little's law on the closed
//!    loop (`users * window / requests - latency`). Rows may mix closed-loop users and
//!    open-loop arrival rates (each is simulated under its own load).
//! 2. Coordinate descent in log space over each function's CPU work, parallelism, non-CPU
//!    time and throttling waste, plus the platform's think time, gateway overhead and failure
//!    ratio, minimising the mean squared log error of per-function p75 and end-to-end mean
//!    latency plus the squared success-ratio error. Each evaluation simulates every row with
//!    fixed seeds (common random numbers), so the objective is deterministic.
//!
//! [`cross_validate`] refits on k-1 folds and predicts the held-out fold.

use faasconf_core::cancel::Cancel;
use faasconf_core::catalog::ProfileSet;
use faasconf_core::history::HistoryRow;
use faasconf_core::{FailureMode, FunctionProfile, PlatformProfile, Routing, Workflow};
use serde::{Deserialize, Serialize};

use crate::fidelity::{Fidelity, Prediction, predict_row};

/// Options of a calibration run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationOptions {
    /// Windows simulated per row (after one warm-up window).
    pub windows: u32,
    /// Seed of the simulations.
    pub seed: u64,
    /// Objective evaluations at most (each simulates every row).
    pub max_evaluations: usize,
    /// First multiplicative step, as a log (0.4 = x1.49).
    pub initial_step: f64,
    /// Stop when the step falls below this.
    pub min_step: f64,
    /// Threads to simulate rows on (0 = all cores).
    pub threads: usize,
    /// Routing to fit; `None` fits each and keeps the better.
    pub routing: Option<Routing>,
    /// Orchestrator failure mode to fit; `None` fits each and keeps the better.
    pub failure_mode: Option<FailureMode>,
}

impl Default for CalibrationOptions {
    fn default() -> Self {
        Self {
            windows: 2,
            seed: 1,
            max_evaluations: 600,
            initial_step: 0.4,
            min_step: 0.02,
            threads: 0,
            routing: None,
            failure_mode: None,
        }
    }
}

/// What calibration found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The fitted profiles (platform and functions).
    pub profiles: ProfileSet,
    /// Objective at the start and at the end.
    pub initial_loss: f64,
    /// Objective of the fitted profiles.
    pub loss: f64,
    /// Objective evaluations made.
    pub evaluations: usize,
    /// Every platform structure tried and the loss it reached.
    pub structures: Vec<StructureFit>,
}

/// The fit of one platform structure (routing x failure mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StructureFit {
    /// Routing.
    pub routing: Routing,
    /// Failure mode.
    pub failure_mode: FailureMode,
    /// Loss reached.
    pub loss: f64,
}

/// Which profile field a parameter is.
#[derive(Debug, Clone, Copy)]
enum Field {
    Cpu(usize),
    Parallelism(usize),
    Io(usize),
    Waste(usize),
    Think,
    Overhead,
    Failure,
}

impl Field {
    fn bounds(self) -> (f64, f64) {
        match self {
            Field::Cpu(_) => (0.005, 20.0),
            Field::Parallelism(_) => (0.25, 8.0),
            Field::Io(_) => (0.001, 30.0),
            Field::Waste(_) => (0.01, 20.0),
            Field::Think => (0.01, 60.0),
            Field::Overhead => (0.001, 2.0),
            Field::Failure => (0.0005, 0.5),
        }
    }

    fn get(self, w: &Workflow) -> f64 {
        match self {
            Field::Cpu(j) => w.functions[j].profile.cpu_core_seconds,
            Field::Parallelism(j) => w.functions[j].profile.parallelism,
            Field::Io(j) => w.functions[j].profile.io_seconds,
            Field::Waste(j) => w.functions[j].profile.throttle_waste,
            Field::Think => w.platform.user_think_seconds,
            Field::Overhead => w.platform.gateway_overhead_seconds,
            Field::Failure => w.platform.call_failure_ratio,
        }
    }

    fn set(self, w: &mut Workflow, v: f64) {
        let (lo, hi) = self.bounds();
        let v = v.clamp(lo, hi);
        match self {
            Field::Cpu(j) => w.functions[j].profile.cpu_core_seconds = v,
            Field::Parallelism(j) => w.functions[j].profile.parallelism = v,
            Field::Io(j) => w.functions[j].profile.io_seconds = v,
            Field::Waste(j) => w.functions[j].profile.throttle_waste = v,
            Field::Think => w.platform.user_think_seconds = v,
            Field::Overhead => w.platform.gateway_overhead_seconds = v,
            Field::Failure => w.platform.call_failure_ratio = v,
        }
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.retain(|x| x.is_finite());
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Cold start of a replica: the history has no scale-up events to fit it from.
const ASSUMED_COLD_START_SECONDS: f64 = 3.0;

const SHAPE_PARALLELISM: [f64; 4] = [1.0, 2.0, 4.0, 8.0];
const SHAPE_WASTE: [f64; 4] = [0.05, 0.2, 0.5, 1.5];

/// Seconds per core-second of work for one request alone on `cores` (see the replica model).
fn alone_factor_with(parallelism: f64, waste: f64, cores: f64) -> f64 {
    1.0 / crate::replica::Replica::progress_rate(cores, parallelism, waste, 1)
}

fn alone_factor(p: &faasconf_core::FunctionProfile, cores: f64) -> f64 {
    alone_factor_with(p.parallelism, p.throttle_waste, cores)
}

/// Idle and per-request working set of function `j`, MiB: least squares of the measured
/// working set (memory % x limit, a window average) on the mean requests in flight per replica
/// (requests x p75 / window / replicas, Little's law with p75 standing in for the mean). Both are
/// kept non-negative; with too little spread the median working set is all idle.
fn working_set_fit(rows: &[HistoryRow], j: usize, window: f64) -> (f64, f64) {
    let points: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| {
            let f = &r.functions[j];
            let mib = f.memory_percent / 100.0 * f64::from(f.config.memory_mib);
            let inflight = r.total * f.p75_seconds / window / f64::from(f.config.replicas.max(1));
            (inflight, mib)
        })
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let n = points.len() as f64;
    let fallback = (median(points.iter().map(|p| p.1).collect()).max(1.0), 0.0);
    if points.len() < 10 {
        return if fallback.0.is_finite() {
            fallback
        } else {
            (64.0, 8.0)
        };
    }
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= f64::EPSILON {
        return fallback;
    }
    let slope = (sxy / sxx).max(0.0);
    ((my - slope * mx).max(1.0), slope)
}

/// The data-driven starting point (see the module docs).
pub fn initial_guess(
    workflow: &Workflow,
    rows: &[HistoryRow],
    routing: Routing,
    failure_mode: FailureMode,
) -> Workflow {
    let mut w = workflow.clone();
    // Nothing is carried over from the workflow's current profiles: the result depends on the
    // history alone. Fields the history cannot inform keep documented assumptions.
    w.platform = PlatformProfile {
        interference_sigma: 0.1,
        routing,
        failure_mode,
        ..PlatformProfile::default()
    };
    let window = 30.0;
    for (j, spec) in w.functions.iter_mut().enumerate() {
        spec.profile = FunctionProfile {
            cpu_cv: 0.4,
            io_cv: 0.5,
            cold_start_seconds: ASSUMED_COLD_START_SECONDS,
            ..FunctionProfile::default()
        };
        let per_request = |r: &HistoryRow, v: f64| {
            v * f64::from(r.functions[j].config.replicas) * window / r.total.max(1.0)
        };
        let high_cpu: Vec<&HistoryRow> = rows
            .iter()
            .filter(|r| r.functions[j].config.cpu_millis >= 1400)
            .collect();
        let sample = if high_cpu.len() >= 10 {
            high_cpu
        } else {
            rows.iter().collect()
        };
        let cpu = median(
            sample
                .iter()
                .map(|r| per_request(r, r.functions[j].cpu_percent / 100.0))
                .collect(),
        );
        let p = &mut spec.profile;
        if cpu.is_finite() && cpu > 0.0 {
            p.cpu_core_seconds = cpu;
        }
        let p75_fast = median(sample.iter().map(|r| r.functions[j].p75_seconds).collect());
        p.parallelism = 1.5;
        p.io_seconds = (p75_fast - p.cpu_core_seconds / p.parallelism).max(0.05);
        p.throttle_waste = 1.0;
        let (base, per_request) = working_set_fit(rows, j, window);
        p.memory_base_mib = base;
        p.memory_per_request_mib = per_request;
        // Network is summed over pods and per second: bytes per request = rate * window / requests.
        let bytes = median(
            rows.iter()
                .map(|r| r.functions[j].network_rx_bytes_per_second * window / r.total.max(1.0))
                .collect(),
        );
        if bytes.is_finite() {
            p.network_rx_bytes = bytes.max(0.0);
        }
    }
    // Think time is a closed loop's: open-loop rows say nothing of it.
    let think = median(
        rows.iter()
            .filter(|r| r.arrivals_per_second.is_none())
            .map(|r| r.users * window / r.total.max(1.0) - r.e2e_mean_seconds)
            .collect(),
    );
    if think.is_finite() {
        w.platform.user_think_seconds = think.clamp(0.01, 60.0);
    }
    // Failures that capacity cannot explain: rows where every function holds twice the users.
    let roomy: Vec<f64> = rows
        .iter()
        .filter(|r| f64::from(r.config().min_capacity()) >= 2.0 * r.users)
        .map(HistoryRow::success_ratio)
        .collect();
    let sr = if roomy.len() >= 5 {
        median(roomy)
    } else {
        0.98
    };
    let calls = workflow.plan.calls().len() as f64;
    w.platform.call_failure_ratio = match w.platform.routing {
        // Random routing already rejects below capacity: start from few other failures.
        Routing::Random => 0.002,
        Routing::LeastInflight => {
            (1.0 - sr.clamp(0.5, 0.9995).powf(1.0 / calls)).clamp(0.0005, 0.5)
        }
    };
    w.platform.gateway_overhead_seconds = 0.05;
    w
}

/// Predicts every row, spreading rows over `threads` threads.
pub fn predict_rows(
    workflow: &Workflow,
    rows: &[HistoryRow],
    windows: u32,
    seed: u64,
    threads: usize,
) -> Vec<Prediction> {
    crate::parallel::parallel_map(rows, threads, |r| predict_row(workflow, r, windows, seed))
}

/// The calibration objective of predictions against rows (lower is better).
pub fn loss(rows: &[HistoryRow], predictions: &[Prediction]) -> f64 {
    let log_err = |sim: f64, obs: f64| {
        if sim > 0.0 && obs > 0.0 {
            (sim.ln() - obs.ln()).powi(2)
        } else {
            4.0
        }
    };
    let mut total = 0.0;
    for (r, p) in rows.iter().zip(predictions) {
        let n = r.functions.len() as f64;
        let functions: f64 = r
            .functions
            .iter()
            .zip(&p.p75_seconds)
            .map(|(f, s)| log_err(*s, f.p75_seconds))
            .sum::<f64>()
            / n;
        // End-to-end latency is what QoS is judged on: it weighs double.
        total += functions
            + 2.0 * log_err(p.e2e_mean_seconds, r.e2e_mean_seconds)
            + (p.success_ratio - r.success_ratio()).powi(2);
    }
    total / rows.len().max(1) as f64
}

/// Fits profiles to `rows`, for each platform structure allowed by `options`, and keeps the
/// best. `progress(done, total)` is called after every evaluation.
pub fn calibrate(
    workflow: &Workflow,
    rows: &[HistoryRow],
    options: &CalibrationOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Calibration {
    calibrate_until(workflow, rows, options, &Cancel::new(), progress)
        .unwrap_or_else(|| unreachable!("a flag nobody holds is never raised"))
}

/// [`calibrate`], stopping within one evaluation (a simulation of every row) once `cancel` is
/// raised: `None` then.
pub fn calibrate_until(
    workflow: &Workflow,
    rows: &[HistoryRow],
    options: &CalibrationOptions,
    cancel: &Cancel,
    progress: &mut dyn FnMut(usize, usize),
) -> Option<Calibration> {
    let routings = options
        .routing
        .map_or(vec![Routing::LeastInflight, Routing::Random], |r| vec![r]);
    let modes = options
        .failure_mode
        .map_or(vec![FailureMode::FailFast, FailureMode::RunToEnd], |m| {
            vec![m]
        });
    let structures: Vec<(Routing, FailureMode)> = routings
        .iter()
        .flat_map(|&r| modes.iter().map(move |&m| (r, m)))
        .collect();
    let total = structures.len() * options.max_evaluations.max(2);
    let mut fits = Vec::new();
    let mut evaluations = 0;
    let mut best: Option<Calibration> = None;
    for (k, &(routing, failure_mode)) in structures.iter().enumerate() {
        let offset = k * options.max_evaluations.max(2);
        let fit = fit_structure(
            workflow,
            rows,
            options,
            (routing, failure_mode),
            cancel,
            &mut |done, _| progress(offset + done, total),
        )?;
        fits.push(StructureFit {
            routing,
            failure_mode,
            loss: fit.loss,
        });
        evaluations += fit.evaluations;
        if best.as_ref().is_none_or(|b| fit.loss < b.loss) {
            best = Some(fit);
        }
    }
    progress(total, total);
    // `structures` is never empty: both lists hold at least one entry.
    let mut best = best.unwrap_or_else(|| unreachable!("at least one structure is fitted"));
    best.evaluations = evaluations;
    best.structures = fits;
    Some(best)
}

/// Fits one (routing, failure mode) structure; `None` when `cancel` was raised.
fn fit_structure(
    workflow: &Workflow,
    rows: &[HistoryRow],
    options: &CalibrationOptions,
    (routing, failure_mode): (Routing, FailureMode),
    cancel: &Cancel,
    progress: &mut dyn FnMut(usize, usize),
) -> Option<Calibration> {
    let mut w = initial_guess(workflow, rows, routing, failure_mode);
    let mut fields = Vec::new();
    for j in 0..w.len() {
        fields.extend([
            Field::Cpu(j),
            Field::Io(j),
            Field::Parallelism(j),
            Field::Waste(j),
        ]);
    }
    fields.extend([Field::Think, Field::Overhead, Field::Failure]);
    let budget = options.max_evaluations.max(2);
    let mut evaluations = 0;
    // Once cancelled, every evaluation is infinitely bad and costs nothing: no move is taken
    // and the searches run out at once.
    let mut evaluate = |w: &Workflow, evaluations: &mut usize| {
        if cancel.is_cancelled() {
            *evaluations = budget;
            return f64::INFINITY;
        }
        *evaluations += 1;
        progress((*evaluations).min(budget), budget);
        loss(
            rows,
            &predict_rows(w, rows, options.windows, options.seed, options.threads),
        )
    };
    let initial_loss = evaluate(&w, &mut evaluations);
    let mut best = initial_loss;
    // Shape search: per function, a grid of (parallelism, waste) with the CPU work rescaled so
    // that one request alone at the function's median CPU limit keeps its latency. Coordinate
    // moves cannot find these joint changes (more parallelism alone explodes latency).
    for j in 0..w.len() {
        let mut cores: Vec<f64> = rows
            .iter()
            .map(|r| f64::from(r.functions[j].config.cpu_millis) / 1000.0)
            .collect();
        let reference = median(std::mem::take(&mut cores));
        let current = w.functions[j].profile;
        for parallelism in SHAPE_PARALLELISM {
            for waste in SHAPE_WASTE {
                if evaluations + 1 >= budget {
                    break;
                }
                let mut candidate = w.clone();
                let p = &mut candidate.functions[j].profile;
                p.cpu_core_seconds = current.cpu_core_seconds * alone_factor(&current, reference)
                    / alone_factor_with(parallelism, waste, reference);
                p.parallelism = parallelism;
                p.throttle_waste = waste;
                let l = evaluate(&candidate, &mut evaluations);
                if l < best {
                    best = l;
                    w = candidate;
                }
            }
        }
    }
    // Adaptive coordinate search: a step grows after a success and halves after a failure.
    let mut steps = vec![options.initial_step; fields.len()];
    'search: while evaluations < budget {
        let mut any_active = false;
        for (i, &field) in fields.iter().enumerate() {
            if steps[i] < options.min_step {
                continue;
            }
            any_active = true;
            let current = field.get(&w);
            let mut moved = false;
            for direction in [1.0, -1.0] {
                if evaluations >= budget {
                    break 'search;
                }
                let mut candidate = w.clone();
                field.set(&mut candidate, current * (direction * steps[i]).exp());
                if field.get(&candidate) == current {
                    continue; // at a bound
                }
                let l = evaluate(&candidate, &mut evaluations);
                if l < best {
                    best = l;
                    w = candidate;
                    moved = true;
                    break;
                }
            }
            steps[i] = if moved {
                (steps[i] * 1.5).min(1.0)
            } else {
                steps[i] / 2.0
            };
        }
        if !any_active {
            break;
        }
    }
    let profiles = ProfileSet::of(&w, "");
    (!cancel.is_cancelled()).then_some(Calibration {
        profiles,
        initial_loss,
        loss: best,
        evaluations,
        structures: Vec::new(),
    })
}

/// Cross-validated fit quality: per fold, and pooled over every held-out row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossValidation {
    /// Number of folds.
    pub folds: usize,
    /// Fit quality on each held-out fold.
    pub per_fold: Vec<Fidelity>,
    /// Fit quality over all held-out predictions together.
    pub pooled: Fidelity,
}

/// k-fold cross-validation: rows are assigned to folds by a seeded shuffle.
/// Held-out rows are predicted with `report_windows` windows each.
pub fn cross_validate(
    workflow: &Workflow,
    rows: &[HistoryRow],
    folds: usize,
    report_windows: u32,
    options: &CalibrationOptions,
    progress: &mut dyn FnMut(usize, usize, usize),
) -> CrossValidation {
    let folds = folds.clamp(2, rows.len().max(2));
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let mut rng = crate::rng::Rng::new(options.seed ^ 0x00C0_FFEE);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let mut held_rows = Vec::new();
    let mut held_predictions = Vec::new();
    let mut per_fold = Vec::new();
    for k in 0..folds {
        let (test, train): (Vec<usize>, Vec<usize>) = order.iter().partition(|&&i| i % folds == k);
        let train_rows: Vec<HistoryRow> = train.iter().map(|&i| rows[i].clone()).collect();
        let test_rows: Vec<HistoryRow> = test.iter().map(|&i| rows[i].clone()).collect();
        let fit = calibrate(workflow, &train_rows, options, &mut |done, total| {
            progress(k, done, total)
        });
        let fitted = workflow.clone().with_profiles(&fit.profiles);
        let predictions = predict_rows(
            &fitted,
            &test_rows,
            report_windows,
            options.seed,
            options.threads,
        );
        per_fold.push(Fidelity::measure(workflow, &test_rows, &predictions));
        held_rows.extend(test_rows);
        held_predictions.extend(predictions);
    }
    let pooled = Fidelity::measure(workflow, &held_rows, &held_predictions);
    CrossValidation {
        folds,
        per_fold,
        pooled,
    }
}

#[cfg(test)]
mod tests;
