//! A cluster that is not the twin, through the services: the actuator's twin plays `parallel`
//! from a topology file whose functions are slower than the built-in twin believes (CPU work
//! x1.5, I/O time x1.4), the policy is trained on the built-in twin, and a tuning session over
//! gRPC follows the cluster: it reports the twin's error per window, refitting brings it down,
//! and the agents are fine-tuned on the refitted twin. And a training job that calibrates the
//! policy's twin from the windows its store measured on such a cluster, and keeps it.

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

/// Windows measured on `cluster` at random configurations, as a tuning session stores them.
fn measured_windows(
    cluster: &faasconf_core::Workflow,
    n: usize,
) -> Vec<faasconf_store::Observation> {
    let mut rng = faasconf_core::rng::Rng::new(21);
    (0..n)
        .map(|i| {
            let actions: Vec<[f64; 4]> = (0..cluster.len())
                .map(|_| [0.0; 4].map(|_| 0.3 + 0.7 * rng.uniform()))
                .collect();
            let config = cluster.config_from_actions(&actions).expect("in bounds");
            let mut twin = faasconf_twin::Twin::new(
                cluster.clone(),
                config,
                faasconf_twin::Workload::ClosedLoop { users: 20 },
                faasconf_twin::TwinOptions {
                    window_seconds: 30.0,
                    seed: 900 + i as u64,
                },
            )
            .expect("a twin of the cluster");
            twin.run_window();
            let window = twin.run_window();
            faasconf_store::Observation {
                workflow: cluster.name.clone(),
                source: faasconf_store::Source::Online,
                session: "tuning-on-the-cluster".into(),
                seq: i as u64,
                users: window.users,
                actions,
                window,
                reward: 0.0,
                qos_met: false,
            }
        })
        .collect()
}

/// The policy calibrates its twin from the windows its store measured on a slower cluster
/// (`StartTraining` with `calibrate`), trains on the calibrated twin, and keeps it across a
/// restart; a bad calibration budget is refused naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_job_calibrates_the_twin_from_measured_windows_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("faasconf.db");
    let mut cluster = faasconf_core::catalog::builtin("parallel").unwrap();
    for f in &mut cluster.functions {
        f.profile.cpu_core_seconds *= 1.5;
        f.profile.io_seconds *= 1.4;
    }
    faasconf_store::Store::open(&store)
        .unwrap()
        .record(&measured_windows(&cluster, 15))
        .unwrap();
    let policy = common::parallel_policy(&store, None);
    let mut client = PolicyClient::connect(policy.endpoint()).await.unwrap();
    let refused = client
        .start_training(v1::StartTrainingRequest {
            workflow: "parallel".into(),
            calibrate: true,
            calibration_evaluations: 9999,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("calibration_evaluations"),
        "{refused:?}"
    );
    let job = client
        .start_training(v1::StartTrainingRequest {
            workflow: "parallel".into(),
            samples: 60,
            epochs: 1,
            seed: 2,
            algorithm: "mf".into(),
            calibrate: true,
            calibration_evaluations: 20,
        })
        .await
        .unwrap()
        .into_inner();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    let status = loop {
        let s = client
            .get_training_status(v1::GetTrainingStatusRequest {
                job_id: job.job_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if !matches!(
            s.state(),
            v1::TrainingJobState::Pending | v1::TrainingJobState::Running
        ) {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "{s:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(status.state(), v1::TrainingJobState::Done, "{status:?}");
    let calibration = status.calibration.clone().expect("the job calibrated");
    assert_eq!(
        (calibration.fitted_windows, calibration.held_out_windows),
        (12, 3),
        "{calibration:?}"
    );
    assert!(calibration.adopted, "{status:?}");
    assert!(
        calibration.held_out_e2e_error_after < calibration.held_out_e2e_error_before,
        "{calibration:?}"
    );
    assert!(status.message.contains("calibrated"), "{}", status.message);
    let models = |client: &mut PolicyClient<tonic::transport::Channel>| {
        let mut client = client.clone();
        async move {
            client
                .list_models(v1::ListModelsRequest {
                    workflow: "parallel".into(),
                })
                .await
                .unwrap()
                .into_inner()
                .models
        }
    };
    let listed = models(&mut client).await;
    let model = listed
        .iter()
        .find(|m| m.version == status.model_version)
        .expect("the job's model is listed");
    assert_eq!(model.twin_fingerprint, calibration.twin_fingerprint);
    assert!(model.on_current_twin, "{model:?}");
    let models_dir = dir.path().join("faasconf.models");
    assert!(models_dir.join("twins/parallel.json").exists());
    drop(client);
    assert!(policy.terminate().success());

    // After a restart the policy still serves the calibrated twin.
    let policy = common::parallel_policy(&store, None);
    let mut client = PolicyClient::connect(policy.endpoint()).await.unwrap();
    let listed = models(&mut client).await;
    assert!(
        listed
            .iter()
            .any(|m| m.version == status.model_version && m.on_current_twin),
        "{listed:?}"
    );
    drop(client);
    assert!(policy.terminate().success());
    // `faasconf train` on the same store trains on the adopted twin too.
    let out = common::command("faasconf")
        .args(["train", "--workflow", "parallel", "--store"])
        .arg(&store)
        .args([
            "--samples",
            "20",
            "--updates",
            "1",
            "--online-steps",
            "0",
            "--loads",
            "20",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("twin: the calibration adopted"), "{stderr}");
}
