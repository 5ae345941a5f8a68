//! Calibration recovers a known twin from its own history.

use super::*;
use crate::fidelity::Fidelity;
use crate::{Twin, TwinOptions, Workload};
use faasconf_core::catalog::parse_topology;

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

/// History rows as a cluster would record them under `load`, from a twin with known profiles.
fn history_under(w: &Workflow, n: usize, seed: u64, load: &Workload) -> Vec<HistoryRow> {
    let mut rng = crate::rng::Rng::new(seed);
    (0..n)
        .map(|i| {
            let actions: Vec<[f64; 4]> = (0..w.len())
                .map(|_| [0.0; 4].map(|_| 0.2 + 0.8 * rng.uniform()))
                .collect();
            let config = w.config_from_actions(&actions).unwrap();
            let mut twin = Twin::new(
                w.clone(),
                config,
                load.clone(),
                TwinOptions {
                    window_seconds: 30.0,
                    seed: seed + i as u64,
                },
            )
            .unwrap();
            twin.run_window();
            let r = twin.run_window();
            HistoryRow::from_window(w, &r, i + 2, &actions).expect("a usable window")
        })
        .collect()
}

/// Closed-loop history at 8 users.
fn synthetic_history(w: &Workflow, n: usize, seed: u64) -> Vec<HistoryRow> {
    history_under(w, n, seed, &Workload::ClosedLoop { users: 8 })
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

#[test]
fn open_loop_rows_calibrate_at_their_arrival_rate() {
    let truth = truth();
    // Arrival rates from 3 to 9 per second: a load shape no closed-loop row has.
    let rows: Vec<HistoryRow> = [3.0, 5.0, 7.0, 9.0]
        .iter()
        .enumerate()
        .flat_map(|(k, &rate)| {
            history_under(
                &truth,
                12,
                40 + k as u64 * 100,
                &Workload::Poisson {
                    requests_per_second: rate,
                },
            )
        })
        .collect();
    assert!(rows.iter().all(|r| r.arrivals_per_second.is_some()));
    let rate = rows[0].arrivals_per_second.expect("open");
    assert!((rate - 3.0).abs() < 1.0, "measured rate {rate}");
    assert!(rows[0].users > 0.0, "in flight by Little's law");
    // Start from CPU work and I/O time off by x2 and x0.5: the fit lowers the held-out error.
    let mut wrong = truth.clone();
    for f in &mut wrong.functions {
        f.profile.cpu_core_seconds *= 2.0;
        f.profile.io_seconds *= 0.5;
    }
    let (train, test) = rows.split_at(36);
    // The starting point reads CPU work from the windows' CPU usage at their arrival rate.
    let guess = initial_guess(&wrong, train, Routing::Random, FailureMode::RunToEnd);
    let b = guess.functions[1].profile.cpu_core_seconds;
    assert!(
        (b - 0.8).abs() < 0.25,
        "function b's CPU work {b} (truth 0.8)"
    );
    let options = CalibrationOptions {
        max_evaluations: 120,
        routing: Some(Routing::Random),
        failure_mode: Some(FailureMode::RunToEnd),
        threads: 2,
        ..Default::default()
    };
    let before = Fidelity::measure(&wrong, test, &predict_rows(&wrong, test, 2, 3, 2));
    let fit = calibrate(&wrong, train, &options, &mut |_, _| {});
    let fitted = wrong.clone().with_profiles(&fit.profiles);
    let after = Fidelity::measure(&fitted, test, &predict_rows(&fitted, test, 2, 3, 2));
    assert!(
        after.e2e_median_ape < 0.15 && after.e2e_median_ape < before.e2e_median_ape,
        "held-out e2e error {} (before {})",
        after.e2e_median_ape,
        before.e2e_median_ape
    );
}

#[test]
fn a_cancelled_calibration_stops_and_returns_nothing() {
    let truth = truth();
    let rows = synthetic_history(&truth, 6, 3);
    let cancel = Cancel::new();
    let mut evaluations = 0;
    let options = CalibrationOptions {
        max_evaluations: 50,
        threads: 1,
        ..Default::default()
    };
    let fit = calibrate_until(&truth, &rows, &options, &cancel, &mut |done, _| {
        evaluations = done;
        if done == 3 {
            cancel.cancel();
        }
    });
    assert!(fit.is_none());
    assert!(
        evaluations < 50,
        "stopped after {evaluations} of 4 x 50 evaluations"
    );
}
