//! The gRPC services as processes: health, reflection-ready contract, graceful shutdown.

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect

mod common;

use common::Server;
use faasconf_proto::v1::actuator_client::ActuatorClient;
use faasconf_proto::v1::policy_client::PolicyClient;
use faasconf_proto::v1::{GetWorkflowRequest, ListWorkflowsRequest, RecommendConfigRequest};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

async fn health(endpoint: String, service: &str) -> i32 {
    let channel = tonic::transport::Channel::from_shared(endpoint).unwrap().connect().await.unwrap();
    let mut client = HealthClient::new(channel);
    client.check(HealthCheckRequest { service: service.to_owned() }).await.unwrap().into_inner().status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actuator_serves_the_catalog_and_stops_on_sigterm() {
    let server = Server::start("faasconf-actuator", &["--workflow", "parallel,tcktapp"]);
    assert_eq!(health(server.endpoint(), "faasconf.v1.Actuator").await, ServingStatus::Serving as i32);
    let mut client = ActuatorClient::connect(server.endpoint()).await.unwrap();
    let list = client.list_workflows(ListWorkflowsRequest {}).await.unwrap().into_inner();
    let names: Vec<_> = list.workflows.iter().map(|w| w.name.clone()).collect();
    assert_eq!(names, ["parallel", "tcktapp"]);
    let got = client.get_workflow(GetWorkflowRequest { workflow: "tcktapp".into() }).await.unwrap().into_inner();
    assert_eq!(got.workflow.unwrap().adjacency.len(), 144);
    let missing = client.get_workflow(GetWorkflowRequest { workflow: "sequential".into() }).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    drop(client);
    let status = server.terminate();
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_is_healthy_and_says_what_is_not_there_yet() {
    let server = Server::start("faasconf-policy", &[]);
    assert_eq!(health(server.endpoint(), "faasconf.v1.Policy").await, ServingStatus::Serving as i32);
    let mut client = PolicyClient::connect(server.endpoint()).await.unwrap();
    let err = client.recommend_config(RecommendConfigRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    drop(client);
    assert!(server.terminate().success());
}

#[test]
fn actuator_refuses_unknown_workflows_before_binding() {
    let out = common::command("faasconf-actuator").args(["--grpc-addr", "127.0.0.1:0", "--workflow", "nope"]).output().unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workflow nope"));
}

/// A client that cannot answer the server's GOAWAY (its only runtime thread is blocked) must
/// not keep a terminating server alive past the grace period.
#[tokio::test(flavor = "current_thread")]
async fn an_unresponsive_client_does_not_hold_a_terminating_server_past_its_grace() {
    let server = Server::start("faasconf-policy", &[]);
    let channel = tonic::transport::Channel::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut client = HealthClient::new(channel);
    client.check(HealthCheckRequest { service: String::new() }).await.unwrap();
    let started = std::time::Instant::now();
    // Blocks this runtime's only thread: the client's connection task cannot run.
    let status = server.terminate();
    assert!(status.success());
    // SHUTDOWN_GRACE is 10 s.
    let waited = started.elapsed();
    assert!(waited >= std::time::Duration::from_secs(9) && waited < std::time::Duration::from_secs(18), "{waited:?}");
    drop(client);
}
