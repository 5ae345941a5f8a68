//! The policy service as a process: errors before a model exists, `faasconf train`, both
//! `RecommendConfig` paths, model management, a tuning session against a real actuator,
//! convergence and `StopTuning`, `faasconf recommend` formats, `/metrics`.

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect

mod common;
mod dashboard;

use common::Server;
use faasconf_proto::v1::actuator_client::ActuatorClient;
use faasconf_proto::v1::policy_client::PolicyClient;
use faasconf_proto::v1::{self, load::Kind};
use faasconf_proto::v1::{TrainingJobState, TuningSessionState};

fn users(n: u32) -> Option<v1::Load> {
    Some(v1::Load {
        kind: Some(Kind::ConcurrentUsers(n)),
    })
}

fn recommend(workflow: &str, load: Option<v1::Load>) -> v1::RecommendConfigRequest {
    v1::RecommendConfigRequest {
        workflow: workflow.into(),
        load,
        ..Default::default()
    }
}

fn start_policy(store: &std::path::Path, actuator: Option<&str>) -> Server {
    let mut args = vec![
        "--metrics-addr",
        "127.0.0.1:0",
        "--store",
        store.to_str().unwrap(),
        "--workflow",
        "parallel,sequential",
    ];
    if let Some(actuator) = actuator {
        args.extend(["--actuator", actuator]);
    }
    Server::start("faasconf-policy", &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_trains_recommends_and_tunes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("faasconf.db");
    // The actuator of the fast path and the tuning sessions below; the policy may tune against
    // it alone.
    let args: Vec<&str> = common::VIRTUAL_PARALLEL_ACTUATOR
        .into_iter()
        .chain(["--seed", "9"])
        .collect();
    let actuator = Server::start("faasconf-actuator", &args);
    let policy = start_policy(&store, Some(&actuator.endpoint()));
    let mut client = PolicyClient::connect(policy.endpoint()).await.unwrap();

    // Before any model: FAILED_PRECONDITION saying how to train; bad inputs name their field.
    let err = client
        .recommend_config(recommend("parallel", users(20)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains("faasconf train --workflow parallel"),
        "{}",
        err.message()
    );
    let ghost = client
        .recommend_config(recommend("ghost", users(20)))
        .await
        .unwrap_err();
    assert_eq!(ghost.code(), tonic::Code::NotFound);
    // What this server serves, not the built-ins.
    assert!(
        ghost
            .message()
            .contains("\"ghost\" is not served by this policy (it serves: parallel, sequential;"),
        "{}",
        ghost.message()
    );
    let rps = client
        .recommend_config(recommend(
            "parallel",
            Some(v1::Load {
                kind: Some(Kind::RequestsPerSecond(-2.0)),
            }),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (
            rps.code(),
            rps.message().starts_with("load.requests_per_second")
        ),
        (tonic::Code::InvalidArgument, true),
        "{rps:?}"
    );

    // Train a small model into the same store (WAL: the running service sees it).
    let report = common::train_parallel(
        &store,
        &[
            "--samples",
            "300",
            "--updates",
            "100",
            "--online-steps",
            "50",
            "--loads",
            "10,20",
            "--scoring",
            "softmax",
            "--seed",
            "3",
        ],
    );
    assert_eq!(
        (
            report["model_version"].as_i64(),
            report["promoted"].as_bool()
        ),
        (Some(1), Some(true)),
        "{report}"
    );
    let judged: Vec<u64> = report["evaluation"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["users"].as_u64())
        .collect();
    assert_eq!(judged, [10, 20], "judged at the sampled loads: {report}");

    // The twin path: a configuration with the twin's prediction and the attention map.
    let twin = client
        .recommend_config(recommend("parallel", users(20)))
        .await
        .unwrap()
        .into_inner();
    assert!(
        twin.twin_validated && (0.0..=1.0).contains(&twin.predicted_success_ratio),
        "{twin:?}"
    );
    assert_eq!(twin.config.as_ref().unwrap().functions.len(), 6);
    assert_eq!(twin.model_version, "1");
    assert_eq!(twin.attention.len(), 6);
    for row in &twin.attention {
        let total: f64 = row.weights.iter().sum();
        assert!((total - 1.0).abs() < 1e-4, "{row:?}");
    }
    assert!(twin.band.is_some(), "twin samples at 20 users give a band");
    // Open-loop load: screened under Poisson arrivals at the rate asked.
    let open = client
        .recommend_config(recommend(
            "parallel",
            Some(v1::Load {
                kind: Some(Kind::RequestsPerSecond(0.8)),
            }),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        open.twin_validated && open.config.as_ref().unwrap().functions.len() == 6,
        "{open:?}"
    );

    // The fast path with a window from the actuator.
    let mut act = ActuatorClient::connect(actuator.endpoint()).await.unwrap();
    let window = common::first_window(&actuator.endpoint(), "parallel").await;
    let fast_request = || v1::RecommendConfigRequest {
        current: Some(window.clone()),
        ..recommend("parallel", users(20))
    };
    let fast = client
        .recommend_config(fast_request())
        .await
        .unwrap()
        .into_inner();
    assert!(!fast.twin_validated);
    assert!(fast.predicted_cost > 0.0);
    // Stateless: the same request, the same answer (safe exploration included).
    for _ in 0..3 {
        let again = client
            .recommend_config(fast_request())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again.config, fast.config);
        assert_eq!(again.ses_replaced, fast.ses_replaced);
    }
    let mut bad = window;
    bad.functions[2].function = "ghost".into();
    let err = client
        .recommend_config(v1::RecommendConfigRequest {
            current: Some(bad),
            ..recommend("parallel", users(20))
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("current.functions[2].function"),
        "{}",
        err.message()
    );

    // Models: listed, promoted; unknown versions are NOT_FOUND.
    let models = client
        .list_models(v1::ListModelsRequest {
            workflow: "parallel".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .models;
    assert_eq!(models.len(), 1);
    assert!(models[0].promoted && models[0].algorithm == "attmf");
    assert_eq!(
        models[0].twin_fingerprint,
        faasconf_core::catalog::builtin("parallel")
            .unwrap()
            .fingerprint(),
        "a model records the twin (topology and profiles) it was trained on"
    );
    let missing = client
        .promote_model(v1::PromoteModelRequest {
            workflow: "parallel".into(),
            version: "7".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // A tuning session of 4 iterations against the actuator.
    let started = client
        .start_tuning(v1::StartTuningRequest {
            workflow: "parallel".into(),
            actuator_endpoint: actuator.endpoint(),
            max_iterations: 4,
            seed: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let again = client
        .start_tuning(v1::StartTuningRequest {
            workflow: "parallel".into(),
            actuator_endpoint: actuator.endpoint(),
            max_iterations: 4,
            ..Default::default()
        })
        .await;
    let status = common::wait_for_session_end(&mut client, &started.session_id).await;
    assert!(
        again.is_err_and(|e| e.code() == tonic::Code::FailedPrecondition)
            || status.state() != TuningSessionState::Running,
        "one session per workflow"
    );
    assert_eq!(
        status.state(),
        TuningSessionState::BudgetSpent,
        "{status:?}"
    );
    assert_eq!(status.iterations, 4);
    assert_eq!(status.history.len(), 4);
    assert_eq!(
        status.qos_violations as usize,
        status.history.iter().filter(|i| !i.qos_met).count()
    );
    // The configurations it applied are the ones the actuator holds.
    let current = act
        .get_workflow(v1::GetWorkflowRequest {
            workflow: "parallel".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        current.current_config,
        status.history.last().unwrap().config
    );
    assert!(
        current.config_version >= 2,
        "the session applied configurations"
    );
    assert_eq!(
        client
            .get_tuning_status(v1::GetTuningStatusRequest {
                session_id: "nope".into()
            })
            .await
            .unwrap_err()
            .code(),
        tonic::Code::NotFound
    );

    // Convergence: with a patience of one iteration the session ends as soon as the best
    // QoS-meeting cost does not improve (on the last iteration too: converged before budget
    // spent); it runs to its budget only if every iteration improved it, or none met QoS
    // (nothing to converge to).
    let session = |max_iterations, converge_after, no_twin_screening| v1::StartTuningRequest {
        workflow: "parallel".into(),
        actuator_endpoint: actuator.endpoint(),
        max_iterations,
        converge_after,
        no_twin_screening,
        seed: 2,
        ..Default::default()
    };
    let converging = client
        .start_tuning(session(6, 1, false))
        .await
        .unwrap()
        .into_inner();
    let status = common::wait_for_session_end(&mut client, &converging.session_id).await;
    let improved_every_time = status.history.iter().all(|i| i.qos_met)
        && status.history.windows(2).all(|p| p[1].cost < p[0].cost);
    let none_met = status.history.iter().all(|i| !i.qos_met);
    assert!(
        status.state() == TuningSessionState::Converged
            || (status.state() == TuningSessionState::BudgetSpent
                && (improved_every_time || none_met)),
        "{status:?}"
    );
    if status.state() == TuningSessionState::Converged {
        assert!(
            status.iterations <= 6 && status.message.contains("not improved"),
            "{status:?}"
        );
    }

    // StopTuning ends a long session; nothing more is recorded afterwards.
    let long = client
        .start_tuning(session(1000, 0, true))
        .await
        .unwrap()
        .into_inner();
    while client
        .get_tuning_status(v1::GetTuningStatusRequest {
            session_id: long.session_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .iterations
        < 2
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let stopped = client
        .stop_tuning(v1::StopTuningRequest {
            session_id: long.session_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stopped.state(), TuningSessionState::Stopped, "{stopped:?}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let settled = client
        .get_tuning_status(v1::GetTuningStatusRequest {
            session_id: long.session_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let later = client
        .get_tuning_status(v1::GetTuningStatusRequest {
            session_id: long.session_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (settled.state(), settled.iterations),
        (later.state(), later.iterations),
        "a stopped session stays stopped"
    );
    assert!(later.iterations < 1000);
    let unknown = client
        .stop_tuning(v1::StopTuningRequest {
            session_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    // faasconf recommend, as a CI job calls it.
    let fragment = common::command("faasconf")
        .args([
            "recommend",
            "--endpoint",
            &policy.endpoint(),
            "--workflow",
            "parallel",
            "--users",
            "20",
            "--format",
            "openfaas",
        ])
        .output()
        .unwrap();
    assert!(
        fragment.status.success(),
        "{}",
        String::from_utf8_lossy(&fragment.stderr)
    );
    let text = String::from_utf8_lossy(&fragment.stdout);
    assert!(
        text.starts_with("functions:")
            && text.contains("max_inflight")
            && text.contains("com.openfaas.scale.min"),
        "{text}"
    );
    let patch = common::command("faasconf")
        .args([
            "recommend",
            "--endpoint",
            &policy.endpoint(),
            "--workflow",
            "parallel",
            "--users",
            "20",
            "--format",
            "patch",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&patch.stdout)
            .matches("kind: Deployment")
            .count(),
        6
    );

    let metrics = policy.scrape();
    assert!(
        metrics.contains("faasconf_policy_recommendation_seconds"),
        "{metrics}"
    );
    assert!(metrics.contains("faasconf_policy_windows_total"));
    // Dashboards: both services' /metrics are valid exposition text, and after training,
    // recommending and tuning they export every metric the Grafana dashboard queries.
    let actuator_metrics = actuator.scrape();
    common::promtool_check(&metrics);
    common::promtool_check(&actuator_metrics);
    dashboard::check_against(&[metrics, actuator_metrics]);
    drop(client);
    drop(act);
    assert!(policy.terminate().success());
}

/// Kill -9 during a training job: every committed sample survives, and the restarted service
/// resumes the job from its last checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_training_job_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("faasconf.db");
    let policy = start_policy(&store, None);
    let mut client = PolicyClient::connect(policy.endpoint()).await.unwrap();
    // 200 samples, 160 epochs of them: 500 updates, a checkpoint every 250.
    let job = client
        .start_training(v1::StartTrainingRequest {
            workflow: "parallel".into(),
            samples: 200,
            epochs: 160,
            seed: 5,
            algorithm: "mf".into(),

            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let bad = client
        .start_training(v1::StartTrainingRequest {
            workflow: "parallel".into(),
            algorithm: "sarsa".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        bad.code() == tonic::Code::InvalidArgument && bad.message().starts_with("algorithm"),
        "{bad:?}"
    );
    let checkpoint = dir
        .path()
        .join("faasconf.models/parallel/runs/mf-seed5/run.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while !checkpoint.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(client);
    policy.kill(); // SIGKILL
    let samples_at_kill = faasconf_store::Store::open(&store)
        .unwrap()
        .count("parallel")
        .unwrap();
    assert_eq!(
        samples_at_kill, 200,
        "the samples were committed before training began"
    );

    let policy = start_policy(&store, None);
    let mut client = PolicyClient::connect(policy.endpoint()).await.unwrap();
    let status = loop {
        let s = client
            .get_training_status(v1::GetTrainingStatusRequest {
                job_id: job.job_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if matches!(s.state(), TrainingJobState::Done | TrainingJobState::Failed) {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the resumed job did not finish: {s:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(status.state(), TrainingJobState::Done, "{status:?}");
    assert_eq!(
        faasconf_store::Store::open(&store)
            .unwrap()
            .count("parallel")
            .unwrap(),
        200,
        "no sample lost or drawn twice"
    );
    let models = faasconf_store::Store::open(&store)
        .unwrap()
        .models(Some("parallel"))
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(std::path::Path::new(&models[0].path).join("report.json"))
            .unwrap(),
    )
    .unwrap();
    assert!(
        report["resumed_from"].as_u64().unwrap() >= 250,
        "{}",
        report["resumed_from"]
    );
    assert!(policy.terminate().success());
}
