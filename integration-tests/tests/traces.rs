//! Traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, both services export their spans over
//! OTLP/gRPC, and one trace follows a tuning step from the policy to the actuator and back: the
//! actuator's ApplyConfig span is the child of the policy's tuning step span. The collector is
//! a fake OTLP TraceService on loopback that keeps what it receives.

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect

mod common;

use faasconf_proto::v1::TuningSessionState;
use std::sync::{Arc, Mutex};

use common::Server;
use faasconf_proto::v1;
use faasconf_proto::v1::policy_client::PolicyClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;

/// A span as received, with the `service.name` of the process that sent it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    span: Span,
}

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref()?.value.clone())
                .map(|v| match v {
                    Value::StringValue(s) => s,
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push(Received {
                        service: service.clone(),
                        span,
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            other => Some(format!("{other:?}")),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_follows_a_tuning_step_from_the_policy_to_the_actuator_and_back() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ];

    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("faasconf.db");
    common::train_parallel(&store, &common::SMALL_TRAINING);
    let actuator = Server::start_with_env(
        "faasconf-actuator",
        &common::VIRTUAL_PARALLEL_ACTUATOR,
        &env,
    );
    let policy = Server::start_with_env(
        "faasconf-policy",
        &[
            "--metrics-addr",
            "127.0.0.1:0",
            "--store",
            store.to_str().unwrap(),
            "--workflow",
            "parallel",
            "--actuator",
            &actuator.endpoint(),
        ],
        &env,
    );
    let mut client = PolicyClient::connect(policy.endpoint()).await.unwrap();
    let session = client
        .start_tuning(v1::StartTuningRequest {
            workflow: "parallel".into(),
            actuator_endpoint: actuator.endpoint(),
            max_iterations: 2,
            no_twin_screening: true,
            seed: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let status = common::wait_for_session_end(&mut client, &session.session_id).await;
    assert_eq!(
        status.state(),
        TuningSessionState::BudgetSpent,
        "{status:?}"
    );
    drop(client);
    // SIGTERM: each service flushes its last spans on the way out.
    assert!(policy.terminate().success());
    assert!(actuator.terminate().success());

    let spans = collector.spans.lock().unwrap().clone();
    let applied: Vec<&Received> = spans
        .iter()
        .filter(|r| {
            r.service == "faasconf-actuator"
                && attribute(&r.span, "rpc.method").as_deref() == Some("ApplyConfig")
        })
        .collect();
    assert!(
        !applied.is_empty(),
        "no ApplyConfig span from the actuator: {:?}",
        spans
            .iter()
            .map(|r| (&r.service, &r.span.name))
            .collect::<Vec<_>>()
    );
    let by_id = |id: &[u8]| spans.iter().find(|r| r.span.span_id == id);
    let followed = applied.iter().any(|apply| {
        // Walk up from the actuator's span: through the policy's spans, in the same trace, to
        // the tuning step.
        let mut current = by_id(&apply.span.parent_span_id);
        let mut crossed = false;
        while let Some(parent) = current {
            assert_eq!(parent.span.trace_id, apply.span.trace_id, "one trace");
            crossed |= parent.service == "faasconf-policy";
            if parent.service == "faasconf-policy" && parent.span.name == "tuning_step" {
                return crossed;
            }
            current = by_id(&parent.span.parent_span_id);
        }
        false
    });
    assert!(
        followed,
        "no ApplyConfig span descends from a policy tuning_step span: {:?}",
        spans
            .iter()
            .map(|r| (
                &r.service,
                &r.span.name,
                hex(&r.span.span_id),
                hex(&r.span.parent_span_id)
            ))
            .collect::<Vec<_>>()
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
