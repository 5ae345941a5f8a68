//! How well the twin reproduces real measurements: rank correlation (Spearman) and median
//! absolute percentage error between what the twin predicts for a history row's configuration
//! and load and what the cluster measured, with k-fold cross-validation of calibration.

use std::collections::BTreeMap;

use faasconf_core::Workflow;
use faasconf_core::history::HistoryRow;
use serde::{Deserialize, Serialize};

use crate::sim::{Twin, TwinOptions};
use crate::workload::Workload;

/// Spearman's rank correlation (average ranks for ties); 0 when either side is constant.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    let (rx, ry) = (ranks(x), ranks(y));
    pearson(&rx, &ry)
}

fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    if n < 2 {
        return 0.0;
    }
    let (mx, my) = (
        x.iter().sum::<f64>() / n as f64,
        y.iter().sum::<f64>() / n as f64,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (dx, dy) = (x[i] - mx, y[i] - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

/// Median of |predicted - observed| / observed over pairs with a non-zero observation.
pub fn median_ape(predicted: &[f64], observed: &[f64]) -> f64 {
    let mut errors: Vec<f64> = predicted
        .iter()
        .zip(observed)
        .filter(|(_, o)| **o != 0.0)
        .map(|(p, o)| ((p - o) / o).abs())
        .collect();
    if errors.is_empty() {
        return f64::NAN;
    }
    errors.sort_by(f64::total_cmp);
    let m = errors.len() / 2;
    if errors.len() % 2 == 1 {
        errors[m]
    } else {
        (errors[m - 1] + errors[m]) / 2.0
    }
}

/// What the twin predicts for one history row (means over the measured windows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// End-to-end mean latency, seconds.
    pub e2e_mean_seconds: f64,
    /// Success ratio.
    pub success_ratio: f64,
    /// Per-function p75, seconds, in workflow order.
    pub p75_seconds: Vec<f64>,
    /// Requests finished per window.
    pub total_requests: f64,
    /// Per-function CPU core-seconds per completed request ([`cpu_per_request`]), in workflow
    /// order (NaN: nothing ran).
    #[serde(default)]
    pub cpu_per_request: Vec<f64>,
}

/// Core-seconds per completed request of one function over a window: usage x pods x window /
/// completions (NaN when nothing completed or nothing was measured).
pub fn cpu_per_request(f: &faasconf_core::telemetry::FunctionWindow, duration: f64) -> f64 {
    if f.completed == 0
        || f.ready_replicas == 0
        || f.cpu_usage_percent.is_nan()
        || f.cpu_usage_percent <= 0.0
    {
        return f64::NAN;
    }
    f.cpu_usage_percent / 100.0 * f64::from(f.ready_replicas) * duration / f.completed as f64
}

/// Simulates `windows` windows (after one warm-up window) of `row`'s configuration under its
/// load (closed-loop users, or open-loop arrivals at its rate) and returns the means. Seeds
/// derive from `seed` and the row's line.
pub fn predict_row(workflow: &Workflow, row: &HistoryRow, windows: u32, seed: u64) -> Prediction {
    let load = match row.arrivals_per_second {
        Some(requests_per_second) => Workload::Poisson {
            requests_per_second,
        },
        None => Workload::ClosedLoop {
            users: row.users.round().max(1.0) as u32,
        },
    };
    let options = TwinOptions {
        window_seconds: 30.0,
        seed: seed ^ (row.line as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    };
    predict_config(workflow, &row.config(), load, windows, options)
}

/// Simulates a configuration: one warm-up window, then the mean of `windows` windows.
pub fn predict_config(
    workflow: &Workflow,
    config: &faasconf_core::WorkflowConfig,
    workload: Workload,
    windows: u32,
    options: TwinOptions,
) -> Prediction {
    let n = workflow.len();
    let Ok(mut twin) = Twin::new(workflow.clone(), config.clone(), workload, options) else {
        return Prediction {
            e2e_mean_seconds: f64::NAN,
            success_ratio: f64::NAN,
            p75_seconds: vec![f64::NAN; n],
            total_requests: 0.0,
            cpu_per_request: vec![f64::NAN; n],
        };
    };
    twin.run_window();
    let windows = windows.max(1);
    let mut p = Prediction {
        e2e_mean_seconds: 0.0,
        success_ratio: 0.0,
        p75_seconds: vec![0.0; n],
        total_requests: 0.0,
        cpu_per_request: vec![0.0; n],
    };
    let mut cpu_windows = vec![0u32; n];
    for _ in 0..windows {
        let w = twin.run_window();
        for (j, f) in w.functions.iter().enumerate() {
            let c = cpu_per_request(f, w.duration_seconds);
            if c.is_finite() {
                p.cpu_per_request[j] += c;
                cpu_windows[j] += 1;
            }
        }
        p.e2e_mean_seconds += w.workflow.mean_latency_seconds;
        p.success_ratio += w.workflow.success_ratio;
        p.total_requests += w.workflow.total_requests as f64;
        for (acc, f) in p.p75_seconds.iter_mut().zip(&w.functions) {
            *acc += f.latency_p75_seconds;
        }
    }
    let k = f64::from(windows);
    p.e2e_mean_seconds /= k;
    p.success_ratio /= k;
    p.total_requests /= k;
    p.p75_seconds.iter_mut().for_each(|v| *v /= k);
    for (c, n) in p.cpu_per_request.iter_mut().zip(cpu_windows) {
        *c = if n == 0 { f64::NAN } else { *c / f64::from(n) };
    }
    p
}

/// Fit quality of predictions against observed rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fidelity {
    /// Rows compared.
    pub rows: usize,
    /// Spearman of end-to-end mean latency.
    pub e2e_spearman: f64,
    /// Median absolute percentage error of end-to-end mean latency.
    pub e2e_median_ape: f64,
    /// Spearman of each function's p75.
    pub p75_spearman: BTreeMap<String, f64>,
    /// Spearman of the success ratio.
    pub success_spearman: f64,
}

impl Fidelity {
    /// Compares predictions with the rows they were made for.
    pub fn measure(
        workflow: &Workflow,
        rows: &[HistoryRow],
        predictions: &[Prediction],
    ) -> Fidelity {
        let obs_e2e: Vec<f64> = rows.iter().map(|r| r.e2e_mean_seconds).collect();
        let sim_e2e: Vec<f64> = predictions.iter().map(|p| p.e2e_mean_seconds).collect();
        let obs_sr: Vec<f64> = rows.iter().map(HistoryRow::success_ratio).collect();
        let sim_sr: Vec<f64> = predictions.iter().map(|p| p.success_ratio).collect();
        let p75_spearman = workflow
            .functions
            .iter()
            .enumerate()
            .map(|(j, f)| {
                let obs: Vec<f64> = rows.iter().map(|r| r.functions[j].p75_seconds).collect();
                let sim: Vec<f64> = predictions.iter().map(|p| p.p75_seconds[j]).collect();
                (f.name.clone(), spearman(&sim, &obs))
            })
            .collect();
        Fidelity {
            rows: rows.len(),
            e2e_spearman: spearman(&sim_e2e, &obs_e2e),
            e2e_median_ape: median_ape(&sim_e2e, &obs_e2e),
            p75_spearman,
            success_spearman: spearman(&sim_sr, &obs_sr),
        }
    }

    /// The smallest per-function p75 Spearman.
    pub fn worst_p75_spearman(&self) -> f64 {
        self.p75_spearman
            .values()
            .copied()
            .fold(f64::INFINITY, f64::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_handles_ties_and_direction() {
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 30.0, 40.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // x = [1,2,2,3] -> ranks [1,2.5,2.5,4]; y ranks [1,2,3,4]: r = 0.9486...
        assert!(
            (spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]) - 0.948_683_298).abs() < 1e-6
        );
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), 0.0);
    }

    #[test]
    fn median_ape_is_the_median_of_relative_errors() {
        assert!((median_ape(&[1.1, 2.0, 2.4], &[1.0, 2.0, 2.0]) - 0.1).abs() < 1e-12);
        assert!((median_ape(&[1.1, 2.4], &[1.0, 2.0]) - 0.15).abs() < 1e-12);
    }
}
