//! Backend tests beyond applying: which API the cluster serves, telemetry windows, the
//! shipped Role, and the round trip on a real cluster.

use super::*;

/// A client whose API server answers every request with `code` and `body`.
fn answering(code: u16, body: Value) -> kube::Client {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        while let Some((request, respond)) = handle.next_request().await {
            assert_eq!(request.uri().path(), "/apis/openfaas.com/v1");
            respond.send_response(
                Response::builder()
                    .status(code)
                    .body(Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            );
        }
    });
    kube::Client::new(service, NS)
}

#[tokio::test]
async fn the_target_follows_what_the_cluster_serves() {
    let timeout = Duration::from_secs(5);
    let served = json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "openfaas.com/v1",
        "resources": [{ "name": "functions", "singularName": "function", "namespaced": true, "kind": "Function", "verbs": ["get", "list", "patch"] }] });
    assert_eq!(
        detect_target(&answering(200, served), timeout)
            .await
            .unwrap(),
        Target::Function
    );
    assert_eq!(
        detect_target(
            &answering(
                404,
                status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource"
                )
            ),
            timeout
        )
        .await
        .unwrap(),
        Target::Deployment
    );
    assert!(matches!(
        detect_target(
            &answering(503, status(503, "ServiceUnavailable", "etcd")),
            timeout
        )
        .await,
        Err(ApplyError::Unavailable(_))
    ));
}

/// A Prometheus that reports 10 successful end-to-end requests and nothing else.
async fn fake_prometheus() -> String {
    async fn answer(uri: http::Uri) -> ([(http::header::HeaderName, &'static str); 1], String) {
        let query = uri.query().unwrap_or_default();
        let result = if query.contains("faasconf_workflow_request_duration_seconds_count") {
            r#"[{"metric":{"code":"200"},"value":[1,"10"]}]"#
        } else {
            "[]"
        };
        (
            [(http::header::CONTENT_TYPE, "application/json")],
            format!(r#"{{"status":"success","data":{{"resultType":"vector","result":{result}}}}}"#),
        )
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::Router::new().route("/api/v1/query", axum::routing::get(answer)),
        )
        .await
        .unwrap()
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_carry_the_version_and_mark_changes_transient() {
    let w = builtin("parallel").unwrap();
    let source =
        faasconf_prometheus::PrometheusSource::new(faasconf_prometheus::PrometheusSettings {
            url: fake_prometheus().await,
            namespace: NS.into(),
            labels: faasconf_prometheus::Labels::default(),
            queries: faasconf_prometheus::Queries::default(),
            timeout: Duration::from_secs(5),
        })
        .unwrap();
    let window = Duration::from_millis(300);
    let (backend, _) = start_with(
        Cluster::with(&w, &uniform(1000), Target::Deployment),
        Target::Deployment,
        Platform::Ce,
        Some(Arc::new(source)),
        window,
    );
    let mut windows = backend.subscribe("parallel", false).await.unwrap();
    let first = windows.recv().await.unwrap();
    assert_eq!(
        (first.config_version, first.transient, &first.config),
        (1, false, &uniform(1000))
    );
    assert_eq!(
        (first.workflow.total_requests, first.workflow.success_ratio),
        (10, 1.0)
    );
    assert_eq!(
        first.workflow.cost,
        uniform(1000).cost(),
        "the cost of the configuration in force"
    );
    backend
        .apply("parallel", with_resnet(uniform(1000), RESNET), 1, false)
        .await
        .unwrap();
    let next = loop {
        let w = windows.recv().await.unwrap();
        if w.config_version == 2 {
            break w;
        }
    };
    assert!(
        next.transient,
        "the window in which the change happened is transient: {next:?}"
    );
    assert_eq!(next.config, with_resnet(uniform(1000), RESNET));
    let settled = windows.recv().await.unwrap();
    assert!(!settled.transient && settled.index > next.index);
}

#[tokio::test]
async fn without_a_telemetry_source_streaming_is_a_failed_precondition() {
    let w = builtin("parallel").unwrap();
    let (backend, _) = start(
        Cluster::with(&w, &uniform(1000), Target::Deployment),
        Target::Deployment,
        Platform::Ce,
    );
    assert!(
        matches!(backend.subscribe("parallel", false).await, Err(ApplyError::Unsupported(m)) if m.contains("--prometheus-url"))
    );
    assert!(matches!(
        backend
            .set_workload("parallel", Workload::ClosedLoop { users: 3 })
            .await,
        Err(ApplyError::Unsupported(_))
    ));
}

/// What the backend sends, per resource: the verbs the Role in deploy/ must grant.
#[test]
fn the_shipped_role_grants_what_the_backend_uses() {
    let text = include_str!("../../../../../deploy/kubernetes/actuator-rbac.yaml");
    let mut granted = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let object: Value = serde::Deserialize::deserialize(document).unwrap();
        if object["kind"] == "Role" {
            assert_eq!(object["metadata"]["namespace"], NS);
            for rule in object["rules"].as_array().unwrap() {
                for group in rule["apiGroups"].as_array().unwrap() {
                    for resource in rule["resources"].as_array().unwrap() {
                        for verb in rule["verbs"].as_array().unwrap() {
                            granted.push(format!(
                                "{}/{}:{}",
                                group.as_str().unwrap(),
                                resource.as_str().unwrap(),
                                verb.as_str().unwrap()
                            ));
                        }
                    }
                }
            }
        }
    }
    for needed in [
        "apps/deployments:get",
        "apps/deployments:patch",
        "openfaas.com/functions:get",
        "openfaas.com/functions:patch",
    ] {
        assert!(
            granted.iter().any(|g| g == needed),
            "the Role lacks {needed}: {granted:?}"
        );
    }
    assert!(
        !granted
            .iter()
            .any(|g| g.ends_with(":delete") || g.ends_with(":create") || g.contains("secrets")),
        "more than least privilege: {granted:?}"
    );
}

/// Against a real cluster (`KUBECONFIG`) with OpenFaaS and the `parallel` workflow's functions
/// deployed in `openfaas-fn` with limits inside the workflow's bounds: reads the configuration,
/// dry-runs a change (the API server runs admission and validation), applies it for real, and
/// puts the original back. Run with `cargo test -p faasconf-actuator -- --ignored`.
#[tokio::test]
#[ignore = "needs cluster"]
async fn round_trip_on_a_real_cluster() {
    let client = kube::Client::try_default().await.expect("a kubeconfig");
    let target = detect_target(&client, Duration::from_secs(10))
        .await
        .unwrap();
    let settings = KubernetesSettings {
        namespace: NS.into(),
        field_manager: "faasconf-actuator-test".into(),
        target,
        platform: Platform::Ce,
        rollout_deadline: Duration::from_secs(300),
        poll_interval: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        window: Duration::from_secs(30),
    };
    let (_stop, stopped) = watch::channel(false);
    let backend = KubernetesBackend::start(
        client,
        vec![builtin("parallel").unwrap()],
        settings,
        None,
        stopped,
    )
    .unwrap();
    let (original, version) = backend.current("parallel").await.unwrap();
    let mut changed = original.clone();
    changed.0[0].concurrency = if changed.0[0].concurrency == 4 { 5 } else { 4 };
    let dry = backend
        .apply("parallel", changed.clone(), version, true)
        .await
        .unwrap();
    assert_eq!(
        (dry.version, backend.current("parallel").await.unwrap().0),
        (version, original.clone())
    );
    let applied = backend
        .apply("parallel", changed.clone(), version, false)
        .await
        .unwrap();
    assert_eq!(
        backend.current("parallel").await.unwrap(),
        (changed, applied.version)
    );
    backend
        .apply("parallel", original.clone(), applied.version, false)
        .await
        .unwrap();
    assert_eq!(backend.current("parallel").await.unwrap().0, original);
}
