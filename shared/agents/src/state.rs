//! The per-agent state: what one function's agent sees of a telemetry window.
//!
//! Per function (the method's state, plus the share of calls the concurrency limit rejected):
//! CPU %, throttled periods, memory % of limit, network bytes/s, p75 and p95 latency, users,
//! rejected share, and the configuration in force as normalised actions. The seven measured
//! features are standardised with a mean and deviation fitted per function on history (heavy
//! tailed ones on a log scale) and clipped to ±[`CLIP`]; the rejected share and the normalised
//! configuration are already in `[0, 1]`.

use faasconf_core::Workflow;
use faasconf_core::telemetry::WindowReport;
use serde::{Deserialize, Serialize};

use crate::learner::Error;

/// Measured features that are standardised.
pub const MEASURED: usize = 7;
/// Features per function: the measured ones, the rejected share, four knobs.
pub const STATE_DIM: usize = MEASURED + 1 + 4;
/// Standardised values are clipped to this many deviations.
pub const CLIP: f64 = 5.0;
/// Names of the features, in order.
pub const FEATURES: [&str; STATE_DIM] = [
    "cpu_percent",
    "throttled_periods",
    "memory_percent",
    "network_rx",
    "p75",
    "p95",
    "users",
    "rejected_share",
    "cpu",
    "memory",
    "replicas",
    "concurrency",
];

fn measured(window: &WindowReport, j: usize) -> [f64; MEASURED] {
    let f = &window.functions[j];
    [
        f.cpu_usage_percent,
        f.cpu_throttled_periods.max(0.0).ln_1p(),
        f.memory_percent_of_limit,
        f.network_rx_bytes_per_second.max(0.0).ln_1p(),
        f.latency_p75_seconds,
        f.latency_p95_seconds,
        f64::from(window.users),
    ]
}

/// Standardisation fitted on history, per function and feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateEncoder {
    /// Function names, in workflow order.
    pub functions: Vec<String>,
    /// Mean of each measured feature, per function.
    pub mean: Vec<[f64; MEASURED]>,
    /// Standard deviation of each measured feature, per function (1 where the history had none).
    pub sd: Vec<[f64; MEASURED]>,
    /// Windows the fit saw.
    pub windows: usize,
}

impl StateEncoder {
    /// Fits the standardisation on `windows` of `workflow`. Windows that do not match the
    /// workflow's functions are an error naming the window.
    pub fn fit(workflow: &Workflow, windows: &[&WindowReport]) -> Result<Self, Error> {
        let n = workflow.len();
        for (i, w) in windows.iter().enumerate() {
            check(workflow, w).map_err(|message| Error::Invalid {
                field: "windows",
                message: format!("window {i}: {message}"),
            })?;
        }
        let mut mean = vec![[0.0; MEASURED]; n];
        let mut sd = vec![[1.0; MEASURED]; n];
        if !windows.is_empty() {
            let count = windows.len() as f64;
            for j in 0..n {
                let rows: Vec<[f64; MEASURED]> = windows.iter().map(|w| measured(w, j)).collect();
                for k in 0..MEASURED {
                    let m = rows.iter().map(|r| r[k]).sum::<f64>() / count;
                    let var = rows.iter().map(|r| (r[k] - m).powi(2)).sum::<f64>() / count;
                    mean[j][k] = m;
                    sd[j][k] = if var.sqrt() > 1e-9 { var.sqrt() } else { 1.0 };
                }
            }
        }
        Ok(Self {
            functions: workflow.functions.iter().map(|f| f.name.clone()).collect(),
            mean,
            sd,
            windows: windows.len(),
        })
    }

    /// The state `[n * STATE_DIM]` of a window.
    pub fn encode(&self, workflow: &Workflow, window: &WindowReport) -> Result<Vec<f32>, Error> {
        if self.functions.len() != workflow.len()
            || workflow
                .functions
                .iter()
                .zip(&self.functions)
                .any(|(f, name)| &f.name != name)
        {
            return Err(Error::Invalid {
                field: "workflow",
                message: format!("the encoder was fitted for {:?}", self.functions),
            });
        }
        check(workflow, window).map_err(|message| Error::Invalid {
            field: "window",
            message,
        })?;
        let mut out = Vec::with_capacity(workflow.len() * STATE_DIM);
        for (j, spec) in workflow.functions.iter().enumerate() {
            let values = measured(window, j);
            out.extend((0..MEASURED).map(|k| {
                ((values[k] - self.mean[j][k]) / self.sd[j][k]).clamp(-CLIP, CLIP) as f32
            }));
            let f = &window.functions[j];
            out.push((f.rejections as f64 / f.requests.max(1) as f64).clamp(0.0, 1.0) as f32);
            out.extend(spec.bounds.to_action(&window.config.0[j]).map(|a| a as f32));
        }
        Ok(out)
    }
}

fn check(workflow: &Workflow, window: &WindowReport) -> Result<(), String> {
    if window.functions.len() != workflow.len() || window.config.0.len() != workflow.len() {
        return Err(format!(
            "{} function rows and {} configurations; the workflow has {} functions",
            window.functions.len(),
            window.config.0.len(),
            workflow.len()
        ));
    }
    if let Some((f, spec)) = window
        .functions
        .iter()
        .zip(&workflow.functions)
        .find(|(f, spec)| f.function != spec.name)
    {
        return Err(format!(
            "function {:?} where {:?} was expected",
            f.function, spec.name
        ));
    }
    let bad = |v: f64| !v.is_finite();
    if let Some(f) = window.functions.iter().find(|f| {
        [
            f.cpu_usage_percent,
            f.cpu_throttled_periods,
            f.memory_percent_of_limit,
            f.network_rx_bytes_per_second,
            f.latency_p75_seconds,
            f.latency_p95_seconds,
        ]
        .into_iter()
        .any(bad)
    }) {
        return Err(format!(
            "function {:?} has a value that is not finite",
            f.function
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasconf_core::catalog::builtin;
    use faasconf_core::telemetry::{FunctionWindow, WorkflowWindow};

    fn window(workflow: &Workflow, cpu: f64, users: u32) -> WindowReport {
        let config = workflow
            .config_from_actions(&vec![[0.5; 4]; workflow.len()])
            .unwrap();
        let functions = workflow
            .functions
            .iter()
            .map(|f| FunctionWindow {
                function: f.name.clone(),
                cpu_usage_percent: cpu,
                cpu_throttled_periods: 10.0,
                memory_percent_of_limit: 40.0,
                network_rx_bytes_per_second: 1e5,
                requests: 10,
                rejections: 2,
                rejections_with_room: 0,
                oom_failures: 0,
                unavailable: 0,
                completed: 8,
                latency_p75_seconds: 1.0,
                latency_p95_seconds: 2.0,
                ready_replicas: 1,
            })
            .collect();
        let workflow_window = WorkflowWindow {
            mean_latency_seconds: 10.0,
            p95_latency_seconds: 12.0,
            successful_requests: 8,
            total_requests: 10,
            success_ratio: 0.8,
            throughput_rps: 0.3,
            cost: 5.0,
            rollout_stalled: false,
            arrivals: 0,
            mean_in_flight: 0.0,
            missing_series: Vec::new(),
        };
        WindowReport {
            index: 0,
            start_seconds: 0.0,
            duration_seconds: 30.0,
            config_version: 1,
            transient: false,
            config,
            users,
            workflow: workflow_window,
            functions,
        }
    }

    #[test]
    fn states_are_standardised_per_function_and_carry_the_configuration() {
        let w = builtin("parallel").unwrap();
        let (a, b) = (window(&w, 50.0, 10), window(&w, 150.0, 30));
        let encoder = StateEncoder::fit(&w, &[&a, &b]).unwrap();
        let s = encoder.encode(&w, &b).unwrap();
        assert_eq!(s.len(), w.len() * STATE_DIM);
        assert!(
            (s[0] - 1.0).abs() < 1e-6,
            "cpu one deviation above the mean: {}",
            s[0]
        );
        assert!((s[6] - 1.0).abs() < 1e-6, "users one deviation above");
        assert_eq!(s[1], 0.0, "a constant feature standardises to zero");
        assert!((s[7] - 0.2).abs() < 1e-6, "2 of 10 calls rejected");
        assert!(
            s[8..12].iter().all(|a| (a - 0.5).abs() < 0.1),
            "normalised knobs: {:?}",
            &s[8..12]
        );
        let mut wild = b.clone();
        wild.functions[0].cpu_usage_percent = 1e9;
        assert_eq!(
            encoder.encode(&w, &wild).unwrap()[0],
            CLIP as f32,
            "outliers are clipped"
        );
    }

    #[test]
    fn mismatched_windows_are_refused() {
        let w = builtin("parallel").unwrap();
        let mut a = window(&w, 50.0, 10);
        a.functions.swap(0, 1);
        assert!(matches!(
            StateEncoder::fit(&w, &[&a]),
            Err(Error::Invalid {
                field: "windows",
                ..
            })
        ));
        let encoder = StateEncoder::fit(&w, &[]).unwrap();
        assert!(matches!(
            encoder.encode(&w, &a),
            Err(Error::Invalid {
                field: "window",
                ..
            })
        ));
        let other = builtin("sequential").unwrap();
        assert!(matches!(
            encoder.encode(&other, &window(&other, 1.0, 1)),
            Err(Error::Invalid {
                field: "workflow",
                ..
            })
        ));
    }
}
