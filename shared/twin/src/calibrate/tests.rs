//! Calibration recovers a known twin from its own history.

use super::*;
use crate::fidelity::Fidelity;
use crate::{Twin, TwinOptions, Workload};
use faasconf_core::catalog::parse_topology;
use faasconf_core::history::FunctionSample;

fn truth() -> Workflow {
    let yaml = "name: truth
functions:
  - { name: a, profile: { cpu_core_seconds: 0.30, parallelism: 2, io_seconds: 0.20, throttle_waste: 0.3, cpu_cv: 0.4, io_cv: 0.5 } }
  - { name: b, profile: { cpu_core_seconds: 0.80, parallelism: 1, io_seconds: 0.10, throttle_waste: 0.1, cpu_cv: 0.4, io_cv: 0.5 } }
plan: { sequence: [ { call: a }, { call: b } ] }
platform: { gateway_overhead_seconds: 0.05, user_think_seconds: 1.0, interference_sigma: 0.1, routing: random, failure_mode: run_to_end }
";
    parse_topology(yaml, false, "truth.yaml").unwrap()
}

/// History rows as a cluster would record them, from a twin with known profiles.
fn synthetic_history(w: &Workflow, n: usize, seed: u64) -> Vec<HistoryRow> {
    let mut rng = crate::rng::Rng::new(seed);
    (0..n)
        .map(|i| {
            let actions: Vec<[f64; 4]> = (0..w.len())
                .map(|_| [0.0; 4].map(|_| 0.2 + 0.8 * rng.uniform()))
                .collect();
            let config = w.config_from_actions(&actions).unwrap();
            let mut twin = Twin::new(
                w.clone(),
                config.clone(),
                Workload::ClosedLoop { users: 8 },
                TwinOptions {
                    window_seconds: 30.0,
                    seed: seed + i as u64,
                },
            )
            .unwrap();
            twin.run_window();
            let r = twin.run_window();
            HistoryRow {
                line: i + 2,
                actions,
                functions: r
                    .functions
                    .iter()
                    .zip(&config.0)
                    .map(|(f, c)| FunctionSample {
                        config: *c,
                        cpu_percent: f.cpu_usage_percent,
                        throttled_periods: f.cpu_throttled_periods,
                        memory_percent: f.memory_percent_of_limit,
                        network_rx_bytes_per_second: f.network_rx_bytes_per_second,
                        p75_seconds: f.latency_p75_seconds,
                        p95_seconds: f.latency_p95_seconds,
                    })
                    .collect(),
                e2e_mean_seconds: r.workflow.mean_latency_seconds,
                e2e_p95_seconds: r.workflow.p95_latency_seconds,
                successful: r.workflow.successful_requests as f64,
                total: r.workflow.total_requests as f64,
                price: config.cost(),
                users: 8.0,
            }
        })
        .collect()
}

#[test]
fn calibration_recovers_a_known_twin_from_its_history() {
    let truth = truth();
    let train = synthetic_history(&truth, 60, 1);
    let test = synthetic_history(&truth, 30, 1000);
    // Start the fit from a workflow whose profiles are all defaults: nothing leaks from truth.
    let mut blank = truth.clone();
    for f in &mut blank.functions {
        f.profile = FunctionProfile::default();
    }
    let options = CalibrationOptions {
        max_evaluations: 120,
        routing: Some(Routing::Random),
        failure_mode: Some(FailureMode::RunToEnd),
        threads: 2,
        ..Default::default()
    };
    let fit = calibrate(&blank, &train, &options, &mut |_, _| {});
    assert!(
        fit.loss < 0.6 * fit.initial_loss,
        "loss {} from {}",
        fit.loss,
        fit.initial_loss
    );
    assert_eq!(fit.structures.len(), 1);
    let fitted = blank.clone().with_profiles(&fit.profiles);
    let predictions = predict_rows(&fitted, &test, 4, 3, 2);
    let quality = Fidelity::measure(&fitted, &test, &predictions);
    assert!(quality.e2e_spearman > 0.8, "{quality:?}");
    assert!(quality.worst_p75_spearman() > 0.8, "{quality:?}");
    assert!(quality.e2e_median_ape < 0.15, "{quality:?}");
}

#[test]
fn initial_guess_reads_cpu_work_and_think_time_from_history() {
    let truth = truth();
    let rows = synthetic_history(&truth, 40, 7);
    let guess = initial_guess(&truth, &rows, Routing::Random, FailureMode::RunToEnd);
    let b = guess.functions[1].profile.cpu_core_seconds;
    assert!((b - 0.8).abs() < 0.25, "function b's CPU work {b}");
    let think = guess.platform.user_think_seconds;
    assert!((think - 1.0).abs() < 0.6, "think {think}");
}
