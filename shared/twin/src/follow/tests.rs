use faasconf_core::catalog;

use super::*;
use crate::sim::Twin;

/// Steady windows of `cluster` under a few configurations around the middle of the space.
fn observe(cluster: &Workflow, users: u32, seed: u64) -> Vec<Observed> {
    let mut out = Vec::new();
    for (k, level) in [0.45, 0.6, 0.75].into_iter().enumerate() {
        let config = cluster
            .config_from_actions(&vec![[level; 4]; cluster.len()])
            .expect("in bounds");
        let mut twin = Twin::new(
            cluster.clone(),
            config,
            Workload::ClosedLoop { users },
            TwinOptions {
                window_seconds: 30.0,
                seed: seed + k as u64,
            },
        )
        .expect("a valid scenario");
        twin.run_window();
        for _ in 0..2 {
            let window = twin.run_window();
            out.extend(Observed::from_window(cluster, &window, LoadModel::Measured));
        }
    }
    out
}

fn scaled(workflow: &Workflow, factors: &[(f64, f64)]) -> Workflow {
    let mut w = workflow.clone();
    for (f, (cpu, io)) in w.functions.iter_mut().zip(factors) {
        f.profile.cpu_core_seconds *= cpu;
        f.profile.io_seconds *= io;
    }
    w
}

#[test]
fn a_refit_moves_each_function_towards_the_cluster_and_shrinks_the_error() {
    let prior = catalog::builtin("parallel").expect("built in");
    let truth: Vec<(f64, f64)> = (0..prior.len())
        .map(|j| if j % 2 == 0 { (1.5, 1.4) } else { (0.7, 0.75) })
        .collect();
    let cluster = scaled(&prior, &truth);
    let observed = observe(&cluster, 20, 7);
    assert!(observed.len() >= 4, "steady windows to learn from");
    let fit = refit(&prior, &prior, &observed, &FollowOptions::default());
    assert!(
        fit.error_after < fit.error_before * 0.6,
        "error {} -> {}",
        fit.error_before,
        fit.error_after
    );
    for (j, ((cpu, _), (true_cpu, _))) in fit.factors.iter().zip(&truth).enumerate() {
        // The CPU factor is measured directly: it lands on the right side of 1, near the truth.
        assert!(
            (cpu.ln() - true_cpu.ln()).abs() < 0.25,
            "function {j}: cpu factor {cpu} for a true {true_cpu}"
        );
    }
}

#[test]
fn the_twin_s_own_windows_leave_it_where_it_was() {
    let prior = catalog::builtin("parallel").expect("built in");
    let observed = observe(&prior, 20, 11);
    let fit = refit(&prior, &prior, &observed, &FollowOptions::default());
    for (j, (cpu, io)) in fit.factors.iter().enumerate() {
        assert!(
            cpu.ln().abs() < 0.2 && io.ln().abs() < 0.3,
            "function {j}: factors ({cpu}, {io}) on the twin's own windows"
        );
    }
}

#[test]
fn no_window_no_move_and_transient_windows_do_not_count() {
    let prior = catalog::builtin("parallel").expect("built in");
    let fit = refit(&prior, &prior, &[], &FollowOptions::default());
    assert!(fit.factors.iter().all(|&(c, i)| c == 1.0 && i == 1.0));
    let config = prior
        .config_from_actions(&vec![[0.5; 4]; prior.len()])
        .expect("in bounds");
    let mut twin = Twin::new(
        prior.clone(),
        config,
        Workload::ClosedLoop { users: 10 },
        TwinOptions::default(),
    )
    .expect("valid");
    let mut window = twin.run_window();
    window.transient = true;
    assert!(Observed::from_window(&prior, &window, LoadModel::Measured).is_none());
    window.transient = false;
    window.users = 0;
    window.workflow.arrivals = 30;
    window.workflow.total_requests = 27;
    window.duration_seconds = 30.0;
    let o = Observed::from_window(&prior, &window, LoadModel::Measured)
        .expect("open loop at the measured rate");
    assert_eq!(
        o.workload,
        Workload::Poisson {
            requests_per_second: 1.0
        },
        "the rate is of arrivals, not of completions"
    );
    window.workflow.arrivals = 0;
    window.workflow.total_requests = 60;
    let o = Observed::from_window(&prior, &window, LoadModel::Measured)
        .expect("completions where no arrival count");
    assert_eq!(
        o.workload,
        Workload::Poisson {
            requests_per_second: 2.0
        }
    );
}

#[test]
fn the_declared_load_model_decides_how_a_window_s_load_is_read() {
    let prior = catalog::builtin("parallel").expect("built in");
    let mut twin = Twin::new(
        prior.clone(),
        prior
            .config_from_actions(&vec![[0.5; 4]; prior.len()])
            .expect("in bounds"),
        Workload::ClosedLoop { users: 10 },
        TwinOptions::default(),
    )
    .expect("valid");
    let mut window = twin.run_window();
    window.transient = false;
    window.workflow.arrivals = 60;
    window.duration_seconds = 30.0;
    window.workflow.mean_latency_seconds = 3.0;
    let think = prior.platform.user_think_seconds;
    let read = |w: &WindowReport, model| workload_of(w, model, think);
    // Users reported: closed loop unless the deployment declares its traffic open.
    window.users = 10;
    assert_eq!(
        read(&window, LoadModel::Measured),
        Some(Workload::ClosedLoop { users: 10 })
    );
    assert_eq!(
        read(&window, LoadModel::ClosedLoop),
        Some(Workload::ClosedLoop { users: 10 })
    );
    assert_eq!(
        read(&window, LoadModel::OpenLoop),
        Some(Workload::Poisson {
            requests_per_second: 2.0
        })
    );
    // None reported (a cluster's telemetry): open loop, unless a closed-loop generator is
    // declared: then the users that the arrivals and the latency imply (Little's law).
    window.users = 0;
    assert_eq!(
        read(&window, LoadModel::Measured),
        Some(Workload::Poisson {
            requests_per_second: 2.0
        })
    );
    let implied = (2.0 * (3.0 + think)).round() as u32;
    assert_eq!(
        read(&window, LoadModel::ClosedLoop),
        Some(Workload::ClosedLoop { users: implied })
    );
    // No load measured at all: nothing to read in any model.
    window.workflow.arrivals = 0;
    window.workflow.total_requests = 0;
    for model in [
        LoadModel::Measured,
        LoadModel::OpenLoop,
        LoadModel::ClosedLoop,
    ] {
        assert_eq!(read(&window, model), None, "{model:?}");
    }
}

/// Over several draws of the twin's own windows: the mean of the largest I/O move of any
/// function, with the options given.
fn mean_largest_io_move(options: &FollowOptions) -> f64 {
    let prior = catalog::builtin("parallel").expect("built in");
    let draws = 8u64;
    let total: f64 = (0..draws)
        .map(|k| {
            let observed = observe(&prior, 20, 100 + 7 * k);
            refit(&prior, &prior, &observed, options)
                .factors
                .iter()
                .map(|(_, io)| io.ln().abs())
                .fold(0.0, f64::max)
        })
        .sum();
    total / draws as f64
}

#[test]
fn windows_that_scatter_move_a_factor_less_than_windows_that_agree() {
    // The I/O time of a function whose latency is mostly CPU is what a few windows scatter on
    // most. Weighed by how well the windows agree, the twin's own windows move it far less
    // than with the prior's weight alone (a prior that never holds anything back).
    let shrunk = mean_largest_io_move(&FollowOptions::default());
    let trusting = mean_largest_io_move(&FollowOptions {
        prior_log_sd: 1000.0,
        ..FollowOptions::default()
    });
    assert!(
        shrunk < 0.8 * trusting,
        "largest I/O move on the twin's own windows: {shrunk} shrunk, {trusting} not"
    );
}
