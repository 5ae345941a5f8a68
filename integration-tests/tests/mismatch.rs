//! A cluster that is not the twin, through the services: the actuator's twin plays `parallel`
//! from a topology file whose functions are slower than the built-in twin believes (CPU work
//! x1.5, I/O time x1.4), the policy is trained on the built-in twin, and a tuning session over
//! gRPC follows the cluster: it reports the twin's error per window, refitting brings it down,
//! and the agents are fine-tuned on the refitted twin.

mod common;

use faasconf_proto::v1::policy_client::PolicyClient;
use faasconf_proto::v1::{self, TuningSessionState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_on_a_mismatched_cluster_refits_its_twin() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("faasconf.db");
    let mut cluster = faasconf_core::catalog::builtin("parallel").unwrap();
    for f in &mut cluster.functions {
        f.profile.cpu_core_seconds *= 1.5;
        f.profile.io_seconds *= 1.4;
    }
    // The virtual-clock actuator of the other tests, playing the slower cluster.
    let actuator = common::actuator_playing(&cluster, dir.path(), &["--seed", "4"]);
    common::train_parallel(&store, &common::SMALL_TRAINING);
    let policy = common::parallel_policy(&store, Some(&actuator.endpoint()));
    let mut client = PolicyClient::connect(policy.endpoint()).await.unwrap();
    let started = client
        .start_tuning(v1::StartTuningRequest {
            workflow: "parallel".into(),
            actuator_endpoint: actuator.endpoint(),
            max_iterations: 5,
            seed: 1,
            // Screening is what makes a session slow; what is tested here is the refit, which
            // a session does with or without it.
            no_twin_screening: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let status = common::wait_for_session_end(&mut client, &started.session_id).await;
    assert_eq!(
        status.state(),
        TuningSessionState::BudgetSpent,
        "{status:?}"
    );
    // Every window but the last was learnt from, and its twin error recorded.
    let errors: Vec<f64> = status.history.iter().map_while(|i| i.twin_error).collect();
    assert_eq!(errors.len(), 4, "{:?}", status.history);
    assert!(status.twin_error.is_some(), "{status:?}");
    assert!(
        errors.iter().all(|e| e.is_finite() && *e >= 0.0),
        "{errors:?}"
    );
    // The refitted twin found the cluster slower, function by function: the CPU work is
    // measured directly (x1.5 on the cluster), the I/O time from what latency the CPU leaves
    // unexplained (x1.4).
    assert_eq!(status.twin_fit.len(), 6, "{status:?}");
    for f in &status.twin_fit {
        assert!(
            (1.2..1.8).contains(&f.cpu_work_factor),
            "{}: CPU work factor {} for a cluster at x1.5",
            f.function,
            f.cpu_work_factor
        );
    }
    let io = status
        .twin_fit
        .iter()
        .map(|f| f.io_time_factor.ln())
        .sum::<f64>()
        / 6.0;
    // The I/O time is weighed by how well 4 windows agree on it (most of these functions'
    // latency is CPU, so a few percent of latency noise is tens of percent of I/O): it moves
    // the right way, not all the way.
    assert!(
        io.exp() > 1.0,
        "the I/O time should be found longer (x1.4), is x{:.2} on average: {:?}",
        io.exp(),
        status.twin_fit
    );
    // The twin moved far from the one the agents learnt on: they were fine-tuned on it.
    assert!(status.fine_tunes >= 1, "{status:?}");
}
