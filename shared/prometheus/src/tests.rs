use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use faasconf_core::catalog::builtin;
use serde_json::{Value, json};

use super::*;

/// A fake Prometheus: answers each query by the first canned (needle, answer) whose needle it
/// contains, and records the queries.
#[derive(Clone, Default)]
struct Fake {
    answers: Arc<Vec<(&'static str, StatusCode, Value)>>,
    seen: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

async fn answer(
    State(fake): State<Fake>,
    Query(params): Query<HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    let query = params.get("query").cloned().unwrap_or_default();
    fake.seen.lock().unwrap().push(params);
    for (needle, status, body) in fake.answers.iter() {
        if query.contains(needle) {
            return (*status, Json(body.clone()));
        }
    }
    (
        StatusCode::OK,
        Json(json!({ "status": "success", "data": { "resultType": "vector", "result": [] } })),
    )
}

async fn serve(fake: Fake) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/api/v1/query", axum::routing::get(answer))
        .with_state(fake);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn vector(samples: &[(&[(&str, &str)], &str)]) -> Value {
    let result: Vec<Value> = samples
        .iter()
        .map(|(labels, v)| json!({ "metric": labels.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(), "value": [1.7e9, v] }))
        .collect();
    json!({ "status": "success", "data": { "resultType": "vector", "result": result } })
}

fn source(url: String) -> PrometheusSource {
    PrometheusSource::new(PrometheusSettings {
        url,
        namespace: "openfaas-fn".into(),
        labels: Labels::default(),
        queries: Queries::default(),
        timeout: Duration::from_secs(2),
    })
    .unwrap()
}

#[tokio::test]
async fn aggregates_answers_per_function_and_end_to_end() {
    let fake = Fake {
        answers: Arc::new(vec![
            (
                "gateway_function_invocation_total",
                StatusCode::OK,
                vector(&[
                    (
                        &[("function_name", "resnet.openfaas-fn"), ("code", "200")],
                        "90.4",
                    ),
                    (
                        &[("function_name", "resnet.openfaas-fn"), ("code", "429")],
                        "7",
                    ),
                    (
                        &[("function_name", "resnet.openfaas-fn"), ("code", "500")],
                        "2",
                    ),
                    (
                        &[("function_name", "resnet.openfaas-fn"), ("code", "503")],
                        "1",
                    ),
                    (
                        &[("function_name", "starter.openfaas-fn"), ("code", "200")],
                        "100",
                    ),
                ]),
            ),
            (
                "histogram_quantile(0.75, sum by (le, function_name)",
                StatusCode::OK,
                vector(&[(&[("function_name", "resnet.openfaas-fn")], "0.8")]),
            ),
            (
                "histogram_quantile(0.95, sum by (le, function_name)",
                StatusCode::OK,
                vector(&[(&[("function_name", "resnet.openfaas-fn")], "NaN")]),
            ),
            (
                "container_cpu_usage_seconds_total",
                StatusCode::OK,
                vector(&[(&[("container", "resnet")], "73.5")]),
            ),
            (
                "container_network_receive_bytes_total",
                StatusCode::OK,
                vector(&[
                    (&[("pod", "resnet-7c9f-x2")], "100"),
                    (&[("pod", "resnet-7c9f-y3")], "50"),
                    (&[("pod", "other-1")], "9"),
                ]),
            ),
            (
                "count by (container)",
                StatusCode::OK,
                vector(&[(&[("container", "resnet")], "3")]),
            ),
            (
                "faasconf_workflow_request_duration_seconds_count",
                StatusCode::OK,
                vector(&[(&[("code", "200")], "95"), (&[("code", "500")], "5")]),
            ),
            (
                "faasconf_workflow_request_duration_seconds_sum",
                StatusCode::OK,
                vector(&[(&[], "250")]),
            ),
            (
                "faasconf_workflow_request_duration_seconds_bucket",
                StatusCode::OK,
                vector(&[(&[], "4.2")]),
            ),
        ]),
        ..Fake::default()
    };
    let url = serve(fake.clone()).await;
    let workflow = builtin("parallel").unwrap();
    let end = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let m = source(url)
        .window(&workflow, end, Duration::from_secs(30))
        .await
        .unwrap();
    let resnet = m.functions.iter().find(|f| f.function == "resnet").unwrap();
    assert_eq!(
        (
            resnet.requests,
            resnet.completed,
            resnet.rejections,
            resnet.oom_failures,
            resnet.unavailable
        ),
        (100, 90, 7, 2, 1)
    );
    assert_eq!(
        (resnet.latency_p75_seconds, resnet.latency_p95_seconds),
        (0.8, 0.0),
        "NaN (no data) reads as 0"
    );
    assert_eq!(
        (
            resnet.cpu_usage_percent,
            resnet.network_rx_bytes_per_second,
            resnet.ready_replicas
        ),
        (73.5, 150.0, 3)
    );
    assert_eq!(
        (m.workflow.total_requests, m.workflow.successful_requests),
        (100, 95)
    );
    assert_eq!(
        (
            m.workflow.mean_latency_seconds,
            m.workflow.p95_latency_seconds,
            m.workflow.success_ratio
        ),
        (2.5, 4.2, 0.95)
    );
    // Offered load: the histogram's count as arrivals, Little's law for the requests in flight.
    assert_eq!(m.workflow.arrivals, 100);
    assert!((m.workflow.mean_in_flight - 250.0 / 30.0).abs() < 1e-9);
    assert_eq!(
        m.workflow.missing_series,
        vec!["memory_percent_of_limit".to_owned()],
        "only the memory series had no data"
    );
    assert!(m.workflow.end_to_end_measured());
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.len(), 11);
    assert!(
        seen.iter()
            .all(|p| p.get("time").map(String::as_str) == Some("1700000000.000")),
        "every query at the window's end"
    );
}

/// Without the end-to-end histogram the entry function's gateway calls count the load; the
/// latency is unknown, so the window names what is missing and never meets QoS.
#[tokio::test]
async fn without_the_histogram_the_entry_function_counts_the_load() {
    let fake = Fake {
        answers: Arc::new(vec![(
            "gateway_function_invocation_total",
            StatusCode::OK,
            vector(&[
                (
                    &[("function_name", "starter.openfaas-fn"), ("code", "200")],
                    "118",
                ),
                (
                    &[("function_name", "starter.openfaas-fn"), ("code", "429")],
                    "2",
                ),
                (
                    &[("function_name", "rgb.openfaas-fn"), ("code", "200")],
                    "117",
                ),
            ]),
        )]),
        ..Fake::default()
    };
    let url = serve(fake).await;
    let workflow = builtin("parallel").unwrap();
    assert_eq!(workflow.entry(), "starter");
    let w = source(url)
        .window(&workflow, SystemTime::now(), Duration::from_secs(30))
        .await
        .unwrap()
        .workflow;
    assert_eq!((w.total_requests, w.arrivals), (120, 120));
    assert_eq!((w.mean_latency_seconds, w.mean_in_flight), (0.0, 0.0));
    assert!(!w.end_to_end_measured());
    for series in [
        "workflow_requests",
        "workflow_latency_sum",
        "cpu_usage_percent",
    ] {
        assert!(
            w.missing_series.iter().any(|s| s == series),
            "{series}: {w:?}"
        );
    }
    let qos = faasconf_core::Qos {
        mean_latency_seconds: 13.0,
        min_success_ratio: 0.0,
    };
    assert!(!qos.met(&w), "an unmeasured latency is not a pass");
}

#[tokio::test]
async fn prometheus_errors_name_the_query() {
    let bad =
        json!({ "status": "error", "errorType": "bad_data", "error": "parse error at char 5" });
    let fake = Fake {
        answers: Arc::new(vec![(
            "container_cpu_usage_seconds_total",
            StatusCode::BAD_REQUEST,
            bad,
        )]),
        ..Fake::default()
    };
    let url = serve(fake).await;
    let e = source(url)
        .window(
            &builtin("parallel").unwrap(),
            SystemTime::now(),
            Duration::from_secs(30),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Query { name: "cpu_usage_percent", status: 400, error_type, .. } if error_type == "bad_data"),
        "{e}"
    );

    let matrix = json!({ "status": "success", "data": { "resultType": "matrix", "result": [] } });
    let fake = Fake {
        answers: Arc::new(vec![("count by (container)", StatusCode::OK, matrix)]),
        ..Fake::default()
    };
    let url = serve(fake).await;
    let e = source(url)
        .window(
            &builtin("parallel").unwrap(),
            SystemTime::now(),
            Duration::from_secs(30),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Shape {
                name: "running_pods",
                ..
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn an_unreachable_server_and_bad_settings_are_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let e = source(url)
        .window(
            &builtin("parallel").unwrap(),
            SystemTime::now(),
            Duration::from_secs(30),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Http { .. }), "{e}");
    let settings = |url: &str, queries: Queries| PrometheusSettings {
        url: url.into(),
        namespace: "n".into(),
        labels: Labels::default(),
        queries,
        timeout: Duration::from_secs(1),
    };
    assert!(
        matches!(PrometheusSource::new(settings("prometheus:9090", Queries::default())), Err(Error::Settings { field, .. }) if field == "prometheus url")
    );
    let typo = Queries {
        running_pods: "count(up{namespace=\"${namespce}\"})".into(),
        ..Queries::default()
    };
    assert!(
        matches!(PrometheusSource::new(settings("http://p:9090", typo)), Err(Error::Settings { field, .. }) if field == "queries.running_pods")
    );
}

#[test]
fn pods_map_to_the_longest_matching_function() {
    let functions = vec!["img".to_owned(), "img-resize".to_owned()];
    assert_eq!(
        pod_function("img-resize-5d8f-abc", &functions),
        Some("img-resize")
    );
    assert_eq!(pod_function("img-5d8f-abc", &functions), Some("img"));
    assert_eq!(pod_function("imgx-1", &functions), None);
}
