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
//! prior by how well the windows agree, and repeats: queueing makes the ratios nonlinear, and a
//! fixed point of "prediction = observation" is what the rounds converge to.
//!
//! The shrinkage weighs evidence by its precision (a normal prior on each factor's logarithm,
//! `prior_log_sd` wide, against the median of the windows' log ratios, whose spread is
//! measured): a factor the windows agree on moves almost all the way; one they scatter on (the
//! I/O time of a function whose latency is mostly CPU, where a few percent of latency noise is
//! tens of percent of its I/O) moves little. Without it the twin's own windows moved such a
//! factor by 30-60% from one window to the next.

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
    /// Standard deviation of the prior on each factor's logarithm: how far the cluster is
    /// expected to be from the prior (0.3: most factors within 0.55-1.8).
    pub prior_log_sd: f64,
    /// Window length, seconds.
    pub window_seconds: f64,
    /// Seed of the simulations.
    pub seed: u64,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self {
            rounds: 3,
            windows: 3,
            prior_log_sd: 0.3,
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

/// The spread assumed for a ratio's logarithm over fewer than [`MIN_WINDOWS_FOR_SPREAD`]
/// windows, where it cannot be measured.
const UNMEASURED_LOG_SPREAD: f64 = 0.25;
/// Windows a spread is measured from.
const MIN_WINDOWS_FOR_SPREAD: usize = 3;
/// The least spread credited to a ratio's logarithm: a window is a sample, never exact.
const MIN_LOG_SPREAD: f64 = 0.03;

/// What the observed windows say of a factor: the median of their ratios, and how much to
/// believe it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ratio {
    /// The median ratio (1 when there is no evidence: no move).
    value: f64,
    /// Robust standard deviation of the ratios' logarithms (1.4826 x the median absolute
    /// deviation), at least [`MIN_LOG_SPREAD`].
    log_spread: f64,
    /// Windows behind it.
    windows: usize,
}

impl Ratio {
    /// Median and spread of the finite, positive values.
    fn of(mut xs: Vec<f64>) -> Self {
        xs.retain(|x| x.is_finite() && *x > 0.0);
        if xs.is_empty() {
            return Self {
                value: 1.0,
                log_spread: UNMEASURED_LOG_SPREAD,
                windows: 0,
            };
        }
        let mut logs: Vec<f64> = xs.iter().map(|x| x.ln()).collect();
        logs.sort_by(f64::total_cmp);
        let median = logs[logs.len() / 2];
        let mut deviations: Vec<f64> = logs.iter().map(|l| (l - median).abs()).collect();
        deviations.sort_by(f64::total_cmp);
        let log_spread = if logs.len() < MIN_WINDOWS_FOR_SPREAD {
            UNMEASURED_LOG_SPREAD
        } else {
            (1.4826 * deviations[deviations.len() / 2]).max(MIN_LOG_SPREAD)
        };
        Self {
            value: median.exp(),
            log_spread,
            windows: logs.len(),
        }
    }

    /// Within `[1 / limit, limit]`.
    fn clamped(self, limit: f64) -> Self {
        Self {
            value: self.value.clamp(1.0 / limit, limit),
            ..self
        }
    }

    /// Precision of the median's logarithm (its variance is about pi/2 x spread^2 / windows).
    fn precision(&self) -> f64 {
        self.windows as f64 / (std::f64::consts::FRAC_PI_2 * self.log_spread.powi(2))
    }
}

/// Refits `current` (a previous fit of `prior`, or the prior itself) to `observed`.
pub fn refit(
    prior: &Workflow,
    current: &Workflow,
    observed: &[Observed],
    options: &FollowOptions,
) -> Refit {
    let mut w = current.clone();
    let prior_precision = 1.0 / options.prior_log_sd.max(1e-3).powi(2);
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
            // The new estimate, in log space shrunk towards the prior by the precisions of the
            // prior and of the windows' median, within MAX_FACTOR of the prior.
            let shrink = |now: f64, ratio: Ratio, was: f64| {
                let target = (now * ratio.value).ln();
                let precision = ratio.precision();
                let weight = precision / (precision + prior_precision);
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
) -> (Ratio, Ratio) {
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
    let cpu_ratio = Ratio::of(cpu).clamped(MAX_FACTOR);
    let io = latency
        .into_iter()
        .map(|(obs, pred, millis)| {
            let cores = f64::from(millis) / 1000.0;
            let alone = profile.cpu_core_seconds
                / Replica::progress_rate(cores, profile.parallelism, profile.throttle_waste, 1);
            // The CPU's share of the predicted latency; the rest is I/O and waiting.
            let share = (alone / pred).clamp(0.0, 0.9);
            ((obs / pred - share * cpu_ratio.value) / (1.0 - share)).max(1.0 / MAX_FACTOR)
        })
        .collect();
    (cpu_ratio, Ratio::of(io).clamped(MAX_FACTOR))
}

#[cfg(test)]
mod tests;
