//! Following the cluster: refits each function's CPU work and I/O time from the windows a
//! tuning session observes, starting from the profiles the twin had (the prior).
//!
//! Calibration ([`crate::calibrate`]) searches every profile field over a history and takes
//! thousands of simulations; a session needs a fit after every window, from a handful of
//! windows, in well under a second. What moves between a twin and a cluster it was calibrated
//! for is mostly how much work a request is (a slower CPU, a bigger payload, a slower
//! dependency), so the refit moves two factors per function and nothing else:
//!
//! - **CPU work** from measured CPU: core-seconds per completed request (usage x pods x window /
//!   completions), observed over predicted;
//! - **I/O time** from the function's p75: what of the observed-over-predicted latency the CPU
//!   factor does not explain, given the share of the function's alone latency that is CPU.
//!
//! Each round simulates every observed window (its configuration, its load, one warm-up window,
//! fixed seeds), takes the median ratio per function over the windows, shrinks it towards the
//! prior by `prior_windows` windows' weight, and repeats: queueing makes the ratios nonlinear,
//! and a fixed point of "prediction = observation" is what the rounds converge to.

use faasconf_core::telemetry::WindowReport;
use faasconf_core::{Workflow, WorkflowConfig};
use serde::{Deserialize, Serialize};

use crate::fidelity::{cpu_per_request, predict_config};
use crate::replica::Replica;
use crate::sim::TwinOptions;
use crate::workload::Workload;

/// The most a factor may move a profile from the prior, either way.
pub const MAX_FACTOR: f64 = 4.0;

/// One observed steady window as the refit needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// The configuration in force.
    pub config: WorkflowConfig,
    /// The load the window saw.
    pub workload: Workload,
    /// End-to-end mean latency, seconds.
    pub e2e_mean_seconds: f64,
    /// Per-function p75, seconds (0: nothing completed).
    pub p75_seconds: Vec<f64>,
    /// Per-function CPU core-seconds per completed request (NaN: not measured).
    pub cpu_per_request: Vec<f64>,
}

impl Observed {
    /// The window as the refit sees it, its load in `model`; `None` when it cannot inform a fit
    /// (transient, no completed request, a function count that is not the workflow's, or no
    /// load).
    pub fn from_window(
        workflow: &Workflow,
        window: &WindowReport,
        model: LoadModel,
    ) -> Option<Self> {
        if window.transient
            || window.functions.len() != workflow.len()
            || window.config.0.len() != workflow.len()
            || window.workflow.successful_requests == 0
            || window.workflow.mean_latency_seconds.is_nan()
            || window.workflow.mean_latency_seconds <= 0.0
        {
            return None;
        }
        Some(Self {
            config: window.config.clone(),
            workload: workload_of(window, model, workflow.platform.user_think_seconds)?,
            e2e_mean_seconds: window.workflow.mean_latency_seconds,
            p75_seconds: window
                .functions
                .iter()
                .map(|f| f.latency_p75_seconds)
                .collect(),
            cpu_per_request: window
                .functions
                .iter()
                .map(|f| cpu_per_request(f, window.duration_seconds))
                .collect(),
        })
    }
}

pub use faasconf_core::telemetry::LoadModel;

/// The load of a window in `model`; `None` when the window measured none (no users, no
/// arrivals). `think_seconds`: the workflow's user think time, for [`LoadModel::ClosedLoop`]
/// without reported users. The one definition the refit and the planner's screening share.
pub fn workload_of(
    window: &WindowReport,
    model: LoadModel,
    think_seconds: f64,
) -> Option<Workload> {
    let rate = window.arrival_rate();
    let measured = rate.is_finite() && rate > 0.0;
    let open = Workload::Poisson {
        requests_per_second: rate,
    };
    match model {
        LoadModel::Measured if window.users > 0 => Some(Workload::ClosedLoop {
            users: window.users,
        }),
        LoadModel::Measured | LoadModel::OpenLoop => measured.then_some(open),
        LoadModel::ClosedLoop => (window.users > 0 || measured).then(|| Workload::ClosedLoop {
            users: window.closed_loop_users(think_seconds),
        }),
    }
}

/// How a refit runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FollowOptions {
    /// Rounds of simulate-and-update.
    pub rounds: u32,
    /// Windows simulated per observed window and round (after one warm-up window).
    pub windows: u32,
    /// Weight of the prior, in windows: with `n` windows a ratio moves the profile by
    /// `n / (n + prior_windows)` of its logarithm.
    pub prior_windows: f64,
    /// Window length, seconds.
    pub window_seconds: f64,
    /// Seed of the simulations.
    pub seed: u64,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self {
            rounds: 3,
            windows: 1,
            prior_windows: 1.0,
            window_seconds: 30.0,
            seed: 0x0f01_10e5,
        }
    }
}

/// What a refit found.
#[derive(Debug, Clone, PartialEq)]
pub struct Refit {
    /// The prior with the refitted profiles.
    pub workflow: Workflow,
    /// Per function: (CPU work, I/O time) over the prior's.
    pub factors: Vec<(f64, f64)>,
    /// Median relative error of the end-to-end mean latency the starting twin predicted for
    /// the observed windows.
    pub error_before: f64,
    /// That error per observed window, in order.
    pub errors_before: Vec<f64>,
    /// The same for the refitted twin.
    pub error_after: f64,
}

/// The twin's prediction for every observed window, in order.
fn predict(
    workflow: &Workflow,
    observed: &[Observed],
    options: &FollowOptions,
) -> Vec<crate::fidelity::Prediction> {
    crate::parallel::parallel_map(observed, 0, |o| {
        predict_config(
            workflow,
            &o.config,
            o.workload.clone(),
            options.windows,
            TwinOptions {
                window_seconds: options.window_seconds,
                seed: options.seed,
            },
        )
    })
}

/// Median relative error of the end-to-end mean latency of `predictions` against `observed`.
pub fn e2e_error(observed: &[Observed], predictions: &[crate::fidelity::Prediction]) -> f64 {
    let predicted: Vec<f64> = predictions.iter().map(|p| p.e2e_mean_seconds).collect();
    let measured: Vec<f64> = observed.iter().map(|o| o.e2e_mean_seconds).collect();
    crate::fidelity::median_ape(&predicted, &measured)
}

/// Median of the finite values (1 when there is none: no evidence, no move).
fn median_or_one(mut xs: Vec<f64>) -> f64 {
    xs.retain(|x| x.is_finite() && *x > 0.0);
    if xs.is_empty() {
        return 1.0;
    }
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Refits `current` (a previous fit of `prior`, or the prior itself) to `observed`.
pub fn refit(
    prior: &Workflow,
    current: &Workflow,
    observed: &[Observed],
    options: &FollowOptions,
) -> Refit {
    let mut w = current.clone();
    let n = observed.len() as f64;
    let weight = n / (n + options.prior_windows.max(0.0));
    let mut predictions = predict(&w, observed, options);
    let error_before = e2e_error(observed, &predictions);
    let errors_before = observed
        .iter()
        .zip(&predictions)
        .map(|(o, p)| ((p.e2e_mean_seconds - o.e2e_mean_seconds) / o.e2e_mean_seconds).abs())
        .collect();
    if observed.is_empty() {
        return Refit {
            factors: factors(prior, &w),
            workflow: w,
            error_before,
            errors_before,
            error_after: error_before,
        };
    }
    for _ in 0..options.rounds.max(1) {
        for j in 0..w.len() {
            let (cpu_ratio, io_ratio) = ratios(&w, j, observed, &predictions);
            let p = &mut w.functions[j].profile;
            let q = prior.functions[j].profile;
            // The new estimate, in log space shrunk towards the prior, within MAX_FACTOR of it.
            let shrink = |now: f64, ratio: f64, was: f64| {
                let target = (now * ratio).ln();
                let logged = weight * target + (1.0 - weight) * was.ln();
                logged
                    .exp()
                    .clamp(was / MAX_FACTOR, was * MAX_FACTOR)
                    .max(1e-4)
            };
            p.cpu_core_seconds = shrink(p.cpu_core_seconds, cpu_ratio, q.cpu_core_seconds);
            p.io_seconds = shrink(p.io_seconds, io_ratio, q.io_seconds);
        }
        predictions = predict(&w, observed, options);
    }
    Refit {
        factors: factors(prior, &w),
        error_after: e2e_error(observed, &predictions),
        workflow: w,
        error_before,
        errors_before,
    }
}

/// Per function of `w`: CPU work and I/O time over the prior's.
pub fn factors(prior: &Workflow, w: &Workflow) -> Vec<(f64, f64)> {
    prior
        .functions
        .iter()
        .zip(&w.functions)
        .map(|(a, b)| {
            (
                b.profile.cpu_core_seconds / a.profile.cpu_core_seconds,
                b.profile.io_seconds / a.profile.io_seconds,
            )
        })
        .collect()
}

/// Function `j`'s (CPU work, I/O time) ratios: what the observations ask of the profile that
/// made `predictions` (see the module doc).
fn ratios(
    w: &Workflow,
    j: usize,
    observed: &[Observed],
    predictions: &[crate::fidelity::Prediction],
) -> (f64, f64) {
    let profile = w.functions[j].profile;
    let mut cpu = Vec::new();
    let mut latency = Vec::new();
    for (o, p) in observed.iter().zip(predictions) {
        let (obs, pred) = (o.p75_seconds[j], p.p75_seconds[j]);
        if obs > 0.0 && pred > 0.0 {
            latency.push((obs, pred, o.config.0[j].cpu_millis));
        }
        let predicted_cpu = p.cpu_per_request[j];
        cpu.push(o.cpu_per_request[j] / predicted_cpu);
    }
    let cpu_ratio = median_or_one(cpu).clamp(1.0 / MAX_FACTOR, MAX_FACTOR);
    let io = latency
        .into_iter()
        .map(|(obs, pred, millis)| {
            let cores = f64::from(millis) / 1000.0;
            let alone = profile.cpu_core_seconds
                / Replica::progress_rate(cores, profile.parallelism, profile.throttle_waste, 1);
            // The CPU's share of the predicted latency; the rest is I/O and waiting.
            let share = (alone / pred).clamp(0.0, 0.9);
            ((obs / pred - share * cpu_ratio) / (1.0 - share)).max(1.0 / MAX_FACTOR)
        })
        .collect();
    (
        cpu_ratio,
        median_or_one(io).clamp(1.0 / MAX_FACTOR, MAX_FACTOR),
    )
}

#[cfg(test)]
mod tests;
