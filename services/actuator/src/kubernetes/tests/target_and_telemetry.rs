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

/// A request as RBAC sees it, `group/resource:verb`; `None` for discovery (allowed to every
/// authenticated client by `system:discovery`).
fn rbac_verb(seen: &Seen) -> Option<String> {
    let (path, query) = seen.uri.split_once('?').unwrap_or((&seen.uri, ""));
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let rest = match parts.as_slice() {
        ["api", _version, rest @ ..] => rest.iter().map(|p| ("", *p)).collect::<Vec<_>>(),
        ["apis", group, _version, rest @ ..] => rest.iter().map(|p| (*group, *p)).collect(),
        _ => panic!("not an API path: {}", seen.uri),
    };
    let group = rest.first().map_or("", |(g, _)| *g);
    let segments: Vec<&str> = rest.iter().map(|(_, p)| *p).collect();
    let (resource, named) = match segments.as_slice() {
        [] => return None,
        ["namespaces", _, resource] => ((*resource).to_owned(), false),
        ["namespaces", _, resource, _name] => ((*resource).to_owned(), true),
        ["namespaces", _, resource, _name, sub] => (format!("{resource}/{sub}"), true),
        _ => panic!("unexpected path {path}"),
    };
    let verb = match (&seen.method, named) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) if query.contains("watch=true") => "watch",
        (&Method::GET, false) => "list",
        (&Method::PATCH, _) => "patch",
        (&Method::PUT, _) => "update",
        (&Method::POST, _) => "create",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        (m, _) => panic!("unexpected method {m}"),
    };
    Some(format!("{group}/{resource}:{verb}"))
}

/// What the Role in deploy/ grants, `group/resource:verb`.
fn granted_by_the_shipped_role() -> std::collections::BTreeSet<String> {
    let text =
        include_str!("../../../../../deploy/kubernetes/overlays/openfaas/actuator-rbac.yaml");
    let mut granted = std::collections::BTreeSet::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let object: Value = serde::Deserialize::deserialize(document).unwrap();
        if object["kind"] != "Role" {
            continue;
        }
        assert_eq!(object["metadata"]["namespace"], NS);
        for rule in object["rules"].as_array().unwrap() {
            let strings = |key: &str| -> Vec<String> {
                rule[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect()
            };
            for group in strings("apiGroups") {
                for resource in strings("resources") {
                    for verb in strings("verbs") {
                        granted.insert(format!("{group}/{resource}:{verb}"));
                    }
                }
            }
        }
    }
    granted
}

/// Every path of the backend that talks to the API server, on both targets: reading the
/// configuration, applying with a dry run and for real, following the rollout, and rolling back
/// after a conflict. The Role must grant exactly the verbs those requests need: none missing,
/// none unused.
#[tokio::test(start_paused = true)]
async fn the_shipped_role_grants_exactly_the_calls_the_backend_makes() {
    let w = builtin("parallel").unwrap();
    let mut clusters = Vec::new();
    for (target, platform) in [
        (Target::Deployment, Platform::Ce),
        (Target::Function, Platform::Pro),
    ] {
        let (backend, cluster) = start(Cluster::with(&w, &uniform(1000), target), target, platform);
        backend.current("parallel").await.unwrap();
        let next = with_resnet(uniform(1000), RESNET);
        backend
            .apply("parallel", next.clone(), 1, true)
            .await
            .unwrap();
        backend.apply("parallel", next, 1, false).await.unwrap();
        clusters.push(cluster);
    }
    let (error, rolled_back, _) = apply_with_fault(Fault::Refuse {
        name: "mobilenet",
        code: 409,
        times: 1,
    })
    .await;
    assert!(matches!(error, ApplyError::Conflict(_)), "{error:?}");
    clusters.push(rolled_back);
    let used: std::collections::BTreeSet<String> = clusters
        .iter()
        .flat_map(|c| c.lock().unwrap().seen.clone())
        .filter_map(|s| rbac_verb(&s))
        .collect();
    assert!(
        used.contains("apps/deployments:patch") && used.contains("openfaas.com/functions:patch")
    );
    assert_eq!(
        granted_by_the_shipped_role(),
        used,
        "the Role in deploy/kubernetes/overlays/openfaas must grant exactly what the backend calls"
    );
}

#[test]
fn requests_map_to_the_verbs_rbac_checks() {
    let seen = |method: Method, uri: &str| Seen {
        method,
        uri: uri.to_owned(),
        content_type: None,
        body: None,
    };
    let cases = [
        (
            seen(Method::GET, "/apis/apps/v1/namespaces/x/deployments/a"),
            Some("apps/deployments:get"),
        ),
        (
            seen(
                Method::GET,
                "/apis/apps/v1/namespaces/x/deployments?watch=true",
            ),
            Some("apps/deployments:watch"),
        ),
        (
            seen(Method::GET, "/api/v1/namespaces/x/pods"),
            Some("/pods:list"),
        ),
        (
            seen(
                Method::PATCH,
                "/apis/apps/v1/namespaces/x/deployments/a/scale",
            ),
            Some("apps/deployments/scale:patch"),
        ),
        (seen(Method::GET, "/apis/openfaas.com/v1"), None),
    ];
    for (request, verb) in cases {
        assert_eq!(rbac_verb(&request).as_deref(), verb, "{}", request.uri);
    }
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
