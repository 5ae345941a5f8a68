//! Calibration from the store: measured windows of a cluster that is not the twin.

use super::*;
use faasconf_core::catalog;
use faasconf_store::Observation;
use faasconf_twin::{Twin, TwinOptions, Workload};

/// `n` windows measured on `cluster` (each a random configuration at `load`), as a tuning
/// session records them.
fn measured(cluster: &Workflow, n: usize, load: &Workload, source: Source) -> Vec<Observation> {
    let mut rng = Rng::new(11);
    (0..n)
        .map(|i| {
            let actions: Vec<[f64; 4]> = (0..cluster.len())
                .map(|_| [0.0; 4].map(|_| 0.3 + 0.7 * rng.uniform()))
                .collect();
            let config = cluster.config_from_actions(&actions).expect("in bounds");
            let mut twin = Twin::new(
                cluster.clone(),
                config,
                load.clone(),
                TwinOptions {
                    window_seconds: 30.0,
                    seed: 500 + i as u64,
                },
            )
            .expect("twin");
            twin.run_window();
            let window = twin.run_window();
            Observation {
                workflow: cluster.name.clone(),
                source,
                session: "cluster".into(),
                seq: i as u64,
                users: window.users,
                actions,
                window,
                reward: 0.0,
                qos_met: true,
            }
        })
        .collect()
}

#[test]
fn a_slower_cluster_is_fitted_from_its_windows_and_adopted() {
    let twin = catalog::builtin("parallel").expect("built in");
    let mut cluster = twin.clone();
    for f in &mut cluster.functions {
        f.profile.cpu_core_seconds *= 1.8;
        f.profile.io_seconds *= 1.5;
    }
    let mut store = Store::in_memory().expect("store");
    let load = Workload::Poisson {
        requests_per_second: 0.8,
    };
    store
        .record(&measured(&cluster, 15, &load, Source::Online))
        .expect("records");
    // The twin's own samples are not measurements: they are not fitted.
    store
        .record(&measured(&twin, 30, &load, Source::Twin))
        .expect("records");
    let mut calls = 0;
    let (fitted, record) =
        calibrate_from_store(&store, &twin, 3, 40, &Cancel::new(), &mut |_, _| calls += 1)
            .expect("calibrates");
    assert_eq!((record.fitted, record.held_out), (12, 3));
    assert_eq!(record.open_loop, 15, "{}", record.summary());
    // Too few windows for the full calibration: the refit from the current twin.
    assert_eq!((calls, record.method), (0, FitMethod::Refit));
    assert!(record.adopted, "{}", record.summary());
    assert!(record.after.e2e_median_ape < record.before.e2e_median_ape);
    assert_eq!(record.twin_fingerprint, fitted.fingerprint());
    assert_ne!(fitted.fingerprint(), twin.fingerprint());
    assert!(record.summary().contains("adopted"));
}

#[test]
fn too_few_measured_windows_are_refused_naming_the_field() {
    let twin = catalog::builtin("parallel").expect("built in");
    let mut store = Store::in_memory().expect("store");
    let load = Workload::ClosedLoop { users: 10 };
    store
        .record(&measured(&twin, 4, &load, Source::Online))
        .expect("records");
    store
        .record(&measured(&twin, 30, &load, Source::Twin))
        .expect("records");
    let e = calibrate_from_store(&store, &twin, 1, 40, &Cancel::new(), &mut |_, _| {})
        .expect_err("refused");
    let text = e.to_string();
    assert!(
        text.starts_with("calibrate:") && text.contains("holds 4"),
        "{text}"
    );
}

#[test]
fn a_cancelled_calibration_ends_cancelled() {
    let twin = catalog::builtin("parallel").expect("built in");
    let mut store = Store::in_memory().expect("store");
    store
        .record(&measured(
            &twin,
            12,
            &Workload::ClosedLoop { users: 10 },
            Source::History,
        ))
        .expect("records");
    let cancel = Cancel::new();
    cancel.cancel();
    let e =
        calibrate_from_store(&store, &twin, 1, 40, &cancel, &mut |_, _| {}).expect_err("cancelled");
    assert!(matches!(e, Error::Cancelled), "{e}");
}

#[test]
fn with_many_windows_the_full_calibration_competes() {
    let twin = catalog::builtin("parallel").expect("built in");
    let mut cluster = twin.clone();
    for f in &mut cluster.functions {
        f.profile.cpu_core_seconds *= 0.6;
    }
    let mut store = Store::in_memory().expect("store");
    store
        .record(&measured(
            &cluster,
            40,
            &Workload::ClosedLoop { users: 10 },
            Source::Online,
        ))
        .expect("records");
    let mut calls = 0;
    let (_, record) =
        calibrate_from_store(&store, &twin, 5, 30, &Cancel::new(), &mut |_, _| calls += 1)
            .expect("calibrates");
    assert_eq!((record.fitted, record.held_out), (32, 8));
    assert!(calls > 0, "the full calibration ran");
    assert!(record.adopted, "{}", record.summary());
    assert!(record.after.e2e_median_ape < record.before.e2e_median_ape);
}
