//! The actuator as a hostile or careless client meets it (workload limits, huge names and
//! configurations, many streams), and the smaller defects of the hardening issue on both
//! services: windows with a rate or NaN figures, transport errors that name no endpoint, a
//! damaged or partly bad store, ended sessions kept forever.

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect

mod common;

use faasconf_proto::v1::TuningSessionState;
use std::time::Duration;

use common::{Server, refuses_to_start, violated_fields};
use faasconf_proto::v1::actuator_client::ActuatorClient;
use faasconf_proto::v1::policy_client::PolicyClient;
use faasconf_proto::v1::{self, set_workload_request::Workload};

fn s(path: &std::path::Path) -> &str {
    path.to_str().unwrap()
}

fn real_clock_actuator() -> Server {
    // A real clock with long windows: nothing is simulated while the test runs.
    Server::start(
        "faasconf-actuator",
        &[
            "--workflow",
            "parallel",
            "--window-seconds",
            "600",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
    )
}

/// Defects 4 and 5 on the actuator: workloads past the limits, a 1 MB name, 150 000 unknown
/// functions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actuator_bounds_workloads_and_error_answers() {
    let refused = refuses_to_start(
        "faasconf-actuator",
        &["--workflow", "parallel", "--rps", "1000000"],
    );
    assert!(
        refused.contains("--rps") && refused.contains("1000"),
        "{refused}"
    );
    let mut actuator = real_clock_actuator();
    let mut client = ActuatorClient::connect(actuator.endpoint()).await.unwrap();
    for (workload, field) in [
        (Workload::RequestsPerSecond(1e6), "requests_per_second"),
        (Workload::ConcurrentUsers(100_000), "concurrent_users"),
        (
            Workload::Trace(v1::TraceWorkload {
                per_minute: vec![1.0; 3],
                min_users: 1,
                max_users: 1_000_000,
            }),
            "trace.max_users",
        ),
    ] {
        let refused = client
            .set_workload(v1::SetWorkloadRequest {
                workflow: "parallel".into(),
                workload: Some(workload),
            })
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&refused), [field], "{refused:?}");
        assert!(refused.message().contains("limit"), "{}", refused.message());
    }
    let huge = client
        .get_workflow(v1::GetWorkflowRequest {
            workflow: "w".repeat(1 << 20),
        })
        .await
        .unwrap_err();
    common::assert_small(&huge, tonic::Code::NotFound);
    let functions: Vec<v1::FunctionConfig> = (0..150_000)
        .map(|i| v1::FunctionConfig {
            function: format!("f{i}"),
            cpu_millis: 500,
            memory_mib: 512,
            replicas: 1,
            concurrency: 1,
        })
        .collect();
    let flood = client
        .apply_config(v1::ApplyConfigRequest {
            workflow: "parallel".into(),
            config: Some(v1::WorkflowConfig { functions }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let fields = violated_fields(&flood);
    assert_eq!(fields.len(), 21, "20 listed and a count of the rest");
    assert!(
        flood.message().len() < 16 * 1024,
        "{} bytes",
        flood.message().len()
    );
    assert!(
        flood.message().contains("more"),
        "{}",
        &flood.message()[flood.message().len() - 80..]
    );
    assert!(
        flood.details().len() < 64 * 1024,
        "{} bytes of details",
        flood.details().len()
    );
    assert!(actuator.alive());
}

/// The subscribers gauge fell back only when someone subscribed again; streams were
/// unbounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_streams_are_counted_out_when_they_end_and_bounded() {
    let actuator = real_clock_actuator();
    let client = ActuatorClient::connect(actuator.endpoint()).await.unwrap();
    let gauge = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("faasconf_actuator_subscribers{workflow=\"parallel\"}"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
    };
    let open = || {
        let mut c = client.clone();
        async move {
            c.stream_telemetry(v1::StreamTelemetryRequest {
                workflow: "parallel".into(),
                lockstep: false,
            })
            .await
            .map(tonic::Response::into_inner)
        }
    };
    let mut streams = Vec::new();
    for _ in 0..64 {
        streams.push(open().await.unwrap());
    }
    assert_eq!(gauge(&actuator.scrape()), Some(64.0));
    let refused = open().await.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    drop(streams);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while gauge(&actuator.scrape()) != Some(0.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the gauge stayed at {:?}",
            gauge(&actuator.scrape())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    open().await.unwrap();
}

/// Defect 6 on the policy: a window with a rate or NaN figures was accepted; a transport
/// error named no endpoint; ended sessions were never dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_windows_and_unreachable_actuators_are_named_and_sessions_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("faasconf.db");
    common::train_parallel(&store, &common::SMALL_TRAINING);
    let actuator = Server::start("faasconf-actuator", &common::VIRTUAL_PARALLEL_ACTUATOR);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unreachable = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let policy = Server::start(
        "faasconf-policy",
        &[
            "--metrics-addr",
            "127.0.0.1:0",
            "--store",
            s(&store),
            "--workflow",
            "parallel",
            "--actuator",
            &actuator.endpoint(),
            "--allowed-actuator",
            &unreachable,
            "--session-retention-seconds",
            "1",
        ],
    );
    let mut client = PolicyClient::connect(policy.endpoint()).await.unwrap();

    let window = common::first_window(&actuator.endpoint(), "parallel").await;
    let with = |w: v1::TelemetryWindow| v1::RecommendConfigRequest {
        workflow: "parallel".into(),
        load: Some(v1::Load {
            kind: Some(v1::load::Kind::ConcurrentUsers(20)),
        }),
        current: Some(w),
        ..Default::default()
    };
    client.recommend_config(with(window.clone())).await.unwrap();
    // An open-loop window (a cluster's own traffic) is read at its measured rate; a rate that
    // is not a number is refused, named.
    let mut rate = window.clone();
    rate.load = Some(v1::Load {
        kind: Some(v1::load::Kind::RequestsPerSecond(3.0)),
    });
    client.recommend_config(with(rate.clone())).await.unwrap();
    rate.load = Some(v1::Load {
        kind: Some(v1::load::Kind::RequestsPerSecond(f64::NAN)),
    });
    let refused = client.recommend_config(with(rate)).await.unwrap_err();
    assert_eq!(
        violated_fields(&refused),
        ["current.load.requests_per_second"]
    );
    let mut nan = window;
    let metrics = nan.workflow_metrics.as_mut().unwrap();
    metrics.p95_latency_seconds = f64::NAN;
    metrics.cost = f64::INFINITY;
    let refused = client.recommend_config(with(nan)).await.unwrap_err();
    assert_eq!(
        violated_fields(&refused),
        [
            "current.workflow_metrics.p95_latency_seconds",
            "current.workflow_metrics.cost"
        ]
    );

    // A session against an actuator that is not there fails saying where it tried.
    let start = |endpoint: &str| v1::StartTuningRequest {
        workflow: "parallel".into(),
        actuator_endpoint: endpoint.into(),
        max_iterations: 1,
        no_twin_screening: true,
        seed: 1,
        ..Default::default()
    };
    let session = client
        .start_tuning(start(&unreachable))
        .await
        .unwrap()
        .into_inner();
    let failed = common::wait_for_session_end(&mut client, &session.session_id).await;
    assert_eq!(failed.state(), TuningSessionState::Failed);
    assert!(failed.message.contains(&unreachable), "{}", failed.message);
    assert!(
        failed.message.len() > unreachable.len() + "transport error".len() + 4,
        "{}",
        failed.message
    );

    // Ended sessions are dropped after --session-retention-seconds.
    let done = client.start_tuning(start("")).await.unwrap().into_inner();
    let ended = common::wait_for_session_end(&mut client, &done.session_id).await;
    assert_eq!(ended.state(), TuningSessionState::BudgetSpent, "{ended:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for id in [&session.session_id, &done.session_id] {
        let gone = client
            .get_tuning_status(v1::GetTuningStatusRequest {
                session_id: id.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(gone.code(), tonic::Code::NotFound, "{id}");
    }
}

/// Defect 6 on the store: mid-file damage was noticed only on the first recommend (INTERNAL
/// every time after); one bad row made the whole workflow INTERNAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_store_stops_the_start_and_bad_rows_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("faasconf.db");
    common::train_parallel(&store, &common::SMALL_TRAINING);
    let parallel = faasconf_core::catalog::builtin("parallel").unwrap();
    {
        let mut db = faasconf_store::Store::open(&store).unwrap();
        let mut odd = db.observations(&parallel).unwrap()[0].observation.clone();
        odd.actions.pop(); // as if the topology had one function fewer when it was stored
        odd.session = "odd".into();
        db.record(&[odd]).unwrap();
    }
    let policy = Server::start(
        "faasconf-policy",
        &[
            "--metrics-addr",
            "127.0.0.1:0",
            "--store",
            s(&store),
            "--workflow",
            "parallel",
        ],
    );
    let mut client = PolicyClient::connect(policy.endpoint()).await.unwrap();
    client
        .recommend_config(v1::RecommendConfigRequest {
            workflow: "parallel".into(),
            load: Some(v1::Load {
                kind: Some(v1::load::Kind::ConcurrentUsers(20)),
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let text = policy.scrape();
    assert!(
        text.contains("faasconf_store_skipped_rows_total{workflow=\"parallel\"} 1"),
        "{}",
        text.lines()
            .filter(|l| l.contains("skipped"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    policy.terminate();
    // The last connection to close checkpoints the log into the file and removes it.
    drop(faasconf_store::Store::open(&store).unwrap());

    // Damage in the middle of the file: the policy refuses to start, saying so.
    let mut bytes = std::fs::read(&store).unwrap();
    let _ = std::fs::remove_file(store.with_extension("db-wal"));
    let _ = std::fs::remove_file(store.with_extension("db-shm"));
    let middle = bytes.len() / 2;
    let end = (middle + 16 * 1024).min(bytes.len());
    bytes[middle..end].fill(0x5a);
    std::fs::write(&store, bytes).unwrap();
    let refused = refuses_to_start(
        "faasconf-policy",
        &["--store", s(&store), "--workflow", "parallel"],
    );
    assert!(
        refused.contains("damaged") && refused.contains("--store"),
        "{refused}"
    );
}
