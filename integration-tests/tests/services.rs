//! The gRPC services as processes: health, reflection-ready contract, graceful shutdown.

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect

mod common;

use common::Server;
use faasconf_proto::v1::actuator_client::ActuatorClient;
use faasconf_proto::v1::{
    ApplyConfigRequest, GetWorkflowRequest, ListWorkflowsRequest, StreamTelemetryRequest,
};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn health(endpoint: String, service: &str) -> i32 {
    let channel = tonic::transport::Channel::from_shared(endpoint)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actuator_applies_configurations_and_streams_windows_until_sigterm() {
    let server = Server::start(
        "faasconf-actuator",
        &[
            "--workflow",
            "parallel,tcktapp",
            "--clock",
            "virtual",
            "--users",
            "10",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(
        health(server.endpoint(), "faasconf.v1.Actuator").await,
        ServingStatus::Serving as i32
    );
    let mut client = ActuatorClient::connect(server.endpoint()).await.unwrap();
    let list = client
        .list_workflows(ListWorkflowsRequest {})
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = list.workflows.iter().map(|w| w.name.clone()).collect();
    assert_eq!(names, ["parallel", "tcktapp"]);
    let got = client
        .get_workflow(GetWorkflowRequest {
            workflow: "parallel".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let version = got.config_version;
    let mut config = got.current_config.unwrap();
    for f in &mut config.functions {
        f.cpu_millis = 1800;
    }
    let applied = client
        .apply_config(ApplyConfigRequest {
            workflow: "parallel".into(),
            config: Some(config.clone()),
            dry_run: false,
            expected_version: version,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(applied.config_version, version + 1);
    assert_eq!(applied.diff.len(), 6);
    // A stale version is refused with ABORTED.
    let stale = client
        .apply_config(ApplyConfigRequest {
            workflow: "parallel".into(),
            config: Some(config.clone()),
            dry_run: false,
            expected_version: version,
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), tonic::Code::Aborted);
    // A bad knob is refused with INVALID_ARGUMENT naming the field.
    let mut bad = config.clone();
    bad.functions[4].replicas = 99;
    let invalid = client
        .apply_config(ApplyConfigRequest {
            workflow: "parallel".into(),
            config: Some(bad),
            dry_run: true,
            expected_version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument);
    assert!(
        invalid.message().contains("config.resnet.replicas"),
        "{}",
        invalid.message()
    );
    let missing = client
        .get_workflow(GetWorkflowRequest {
            workflow: "sequential".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    // Three windows, tagged with the version they were measured under.
    let mut stream = client
        .stream_telemetry(StreamTelemetryRequest {
            workflow: "parallel".into(),
            lockstep: false,
        })
        .await
        .unwrap()
        .into_inner();
    for expected in 0..3u64 {
        let w = stream.message().await.unwrap().expect("a window");
        assert_eq!(w.index, expected);
        assert_eq!(w.config_version, version + 1);
        assert_eq!(w.functions.len(), 6);
        assert_eq!(w.config.as_ref().unwrap().functions[0].cpu_millis, 1800);
        assert!(w.workflow_metrics.unwrap().total_requests > 0);
    }
    // /metrics: the service's own series and the simulated cluster's, valid for promtool.
    let text = server.scrape();
    for series in [
        "faasconf_rpc_requests_total{service=\"actuator\",method=\"ApplyConfig\",code=\"Aborted\"} 1",
        "faasconf_actuator_applies_total{workflow=\"parallel\",outcome=\"applied\"} 1",
        "faasconf_actuator_subscribers{workflow=\"parallel\"} 1",
        "gateway_function_invocation_total{code=\"200\",function_name=\"resnet.openfaas-fn\"}",
        "container_cpu_usage_seconds_total{container=\"get-left-trip-tickets\"",
        "container_spec_memory_limit_bytes{container=\"starter\"",
    ] {
        assert!(text.contains(series), "missing {series} in /metrics");
    }
    common::promtool_check(&text);
    // SIGTERM with the stream open: it ends cleanly and the process exits within 5 s.
    let started = std::time::Instant::now();
    let pid = server.pid().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    let mut rest = 0;
    loop {
        match stream.message().await {
            Ok(Some(_)) => rest += 1,
            Ok(None) => break,
            Err(status) => panic!("stream ended with an error: {status}"),
        }
    }
    // The virtual clock keeps producing as fast as we read until shutdown takes effect.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "stream still open after {:?} ({rest} windows)",
        started.elapsed()
    );
    drop(stream);
    drop(client);
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn actuator_refuses_unknown_workflows_before_binding() {
    let out = common::command("faasconf-actuator")
        .args(["--grpc-addr", "127.0.0.1:0", "--workflow", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workflow nope"));
}

/// A client that cannot answer the server's GOAWAY (its only runtime thread is blocked) must
/// not keep a terminating server alive past the grace period.
#[tokio::test(flavor = "current_thread")]
async fn an_unresponsive_client_does_not_hold_a_terminating_server_past_its_grace() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.db");
    let server = Server::start(
        "faasconf-policy",
        &[
            "--metrics-addr",
            "127.0.0.1:0",
            "--store",
            store.to_str().unwrap(),
        ],
    );
    let channel = tonic::transport::Channel::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    let started = std::time::Instant::now();
    // Blocks this runtime's only thread: the client's connection task cannot run.
    let status = server.terminate();
    assert!(status.success());
    // SHUTDOWN_GRACE is 4 s: the process is gone within 5 s all the same.
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_secs(3) && waited < std::time::Duration::from_secs(5),
        "{waited:?}"
    );
    drop(client);
}
