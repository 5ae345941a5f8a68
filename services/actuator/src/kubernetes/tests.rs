//! The Kubernetes backend against a fake API server behind kube-rs's mock service
//! (`tower_test::mock::pair`): every request is recorded and checked, and faults are injected
//! per object (409, 403, 5xx, no answer, a rollout that never finishes).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use faasconf_core::catalog::builtin;
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};

use super::objects::{apply_body, read_config};
use super::*;

const NS: &str = "openfaas-fn";

/// What goes wrong, and where.
#[derive(Debug, Clone)]
enum Fault {
    /// The next `times` PATCHes of the object are answered with this status.
    Refuse {
        name: &'static str,
        code: u16,
        times: usize,
    },
    /// PATCHes of the object are never answered.
    Hang { name: &'static str },
    /// The object's rollout never completes once patched.
    Stuck { name: &'static str },
}

/// One request as the API server saw it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    method: Method,
    uri: String,
    content_type: Option<String>,
    body: Option<Value>,
}

#[derive(Default)]
struct Cluster {
    /// Target objects (Deployments or Functions) and Deployments, by name.
    targets: BTreeMap<String, Value>,
    deployments: BTreeMap<String, Value>,
    faults: Vec<Fault>,
    seen: Vec<Seen>,
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code })
}

/// A complete Deployment for `config` at `generation`.
fn deployment(
    name: &str,
    config: &FunctionConfig,
    generation: u64,
    version: Option<u64>,
    complete: bool,
) -> Value {
    let mut d = apply_body(Target::Deployment, name, NS, config, version);
    d["metadata"]["generation"] = json!(generation);
    d["metadata"]["uid"] = json!(format!("uid-{name}"));
    d["spec"]["selector"] = json!({ "matchLabels": { "faas_function": name } });
    d["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!(format!("ghcr.io/example/{name}:1"));
    let r = config.replicas;
    d["status"] = if complete {
        json!({ "observedGeneration": generation, "replicas": r, "updatedReplicas": r, "availableReplicas": r, "readyReplicas": r })
    } else {
        json!({ "observedGeneration": generation, "replicas": r + 1, "updatedReplicas": 0, "availableReplicas": r })
    };
    d
}

impl Cluster {
    fn with(workflow: &Workflow, config: &WorkflowConfig, target: Target) -> Self {
        let mut c = Self::default();
        for (f, fc) in workflow.functions.iter().zip(&config.0) {
            let d = deployment(&f.name, fc, 1, None, true);
            c.deployments.insert(f.name.clone(), d.clone());
            let t = match target {
                Target::Deployment => d,
                Target::Function => apply_body(Target::Function, &f.name, NS, fc, None),
            };
            c.targets.insert(f.name.clone(), t);
        }
        c
    }

    /// Answers one request; `None` means "never answer".
    fn handle(
        &mut self,
        method: Method,
        uri: &str,
        content_type: Option<String>,
        body: Option<Value>,
    ) -> Option<(u16, Value)> {
        self.seen.push(Seen {
            method: method.clone(),
            uri: uri.to_owned(),
            content_type,
            body: body.clone(),
        });
        let path = uri.split('?').next().unwrap_or_default();
        let (kind_path, name) = path.rsplit_once('/').unwrap();
        let is_deployment = kind_path.ends_with("/deployments");
        let target = if is_deployment {
            Target::Deployment
        } else {
            Target::Function
        };
        match method {
            Method::GET => {
                let store = if is_deployment {
                    &self.deployments
                } else {
                    &self.targets
                };
                Some(match store.get(name) {
                    Some(object) => (200, object.clone()),
                    None => (404, status(404, "NotFound", &format!("{name} not found"))),
                })
            }
            Method::PATCH => {
                for fault in &mut self.faults {
                    match fault {
                        Fault::Refuse {
                            name: n,
                            code,
                            times,
                        } if *n == name && *times > 0 => {
                            *times -= 1;
                            let reason = match code {
                                409 => "Conflict",
                                403 => "Forbidden",
                                _ => "InternalError",
                            };
                            return Some((*code, status(*code, reason, "injected")));
                        }
                        Fault::Hang { name: n } if *n == name => return None,
                        _ => {}
                    }
                }
                let body = body.unwrap();
                let (config, version) = read_config(target, name, &body).unwrap();
                let Some(old) = self.deployments.get(name) else {
                    return Some((404, status(404, "NotFound", "no such object")));
                };
                let generation = old["metadata"]["generation"].as_u64().unwrap() + 1;
                let stuck = self
                    .faults
                    .iter()
                    .any(|f| matches!(f, Fault::Stuck { name: n } if *n == name));
                let d = deployment(name, &config, generation, version, !stuck);
                if uri.contains("dryRun=All") {
                    return Some((200, d));
                }
                self.deployments.insert(name.to_owned(), d.clone());
                let t = match target {
                    Target::Deployment => d,
                    Target::Function => apply_body(Target::Function, name, NS, &config, version),
                };
                self.targets.insert(name.to_owned(), t.clone());
                Some((200, t))
            }
            _ => Some((405, status(405, "MethodNotAllowed", "unexpected method"))),
        }
    }
}

/// A backend over the fake cluster, and the cluster.
fn start(
    cluster: Cluster,
    target: Target,
    platform: Platform,
) -> (Arc<KubernetesBackend>, Arc<Mutex<Cluster>>) {
    start_with(cluster, target, platform, None, Duration::from_secs(30))
}

fn start_with(
    cluster: Cluster,
    target: Target,
    platform: Platform,
    source: Option<Arc<faasconf_prometheus::PrometheusSource>>,
    window: Duration,
) -> (Arc<KubernetesBackend>, Arc<Mutex<Cluster>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let cluster = Arc::new(Mutex::new(cluster));
    let api = cluster.clone();
    tokio::spawn(async move {
        let mut unanswered = Vec::new();
        while let Some((request, respond)) = handle.next_request().await {
            let method = request.method().clone();
            let uri = request.uri().to_string();
            let content_type = request
                .headers()
                .get(http::header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_owned());
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body =
                (!bytes.is_empty()).then(|| serde_json::from_slice::<Value>(&bytes).unwrap());
            let answer = api.lock().unwrap().handle(method, &uri, content_type, body);
            match answer {
                Some((code, json)) => respond.send_response(
                    Response::builder()
                        .status(StatusCode::from_u16(code).unwrap())
                        .body(Body::from(serde_json::to_vec(&json).unwrap()))
                        .unwrap(),
                ),
                None => unanswered.push(respond),
            }
        }
    });
    let client = kube::Client::new(service, NS);
    let settings = KubernetesSettings {
        namespace: NS.into(),
        field_manager: "faasconf-actuator".into(),
        target,
        platform,
        rollout_deadline: Duration::from_secs(120),
        poll_interval: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        window,
    };
    let (stop, stopped) = watch::channel(false);
    // The clocks run for as long as the test does.
    std::mem::forget(stop);
    let backend = KubernetesBackend::start(
        client,
        vec![builtin("parallel").unwrap()],
        settings,
        source,
        stopped,
    )
    .unwrap();
    (backend, cluster)
}

fn uniform(cpu_millis: u32) -> WorkflowConfig {
    WorkflowConfig(vec![
        FunctionConfig {
            cpu_millis,
            memory_mib: 1024,
            replicas: 2,
            concurrency: 4
        };
        6
    ])
}

fn with_resnet(mut config: WorkflowConfig, resnet: FunctionConfig) -> WorkflowConfig {
    config.0[4] = resnet;
    config
}

const RESNET: FunctionConfig = FunctionConfig {
    cpu_millis: 1500,
    memory_mib: 2048,
    replicas: 3,
    concurrency: 6,
};

fn patches(cluster: &Mutex<Cluster>) -> Vec<Seen> {
    cluster
        .lock()
        .unwrap()
        .seen
        .iter()
        .filter(|s| s.method == Method::PATCH)
        .cloned()
        .collect()
}

#[tokio::test(start_paused = true)]
async fn apply_sends_one_server_side_apply_per_changed_function_and_waits_for_it() {
    let w = builtin("parallel").unwrap();
    let (backend, cluster) = start(
        Cluster::with(&w, &uniform(1000), Target::Deployment),
        Target::Deployment,
        Platform::Ce,
    );
    assert_eq!(
        backend.current("parallel").await.unwrap(),
        (uniform(1000), 1)
    );
    let outcome = backend
        .apply("parallel", with_resnet(uniform(1000), RESNET), 1, false)
        .await
        .unwrap();
    assert_eq!(outcome.version, 2);
    assert_eq!(outcome.diff.len(), 4, "four knobs of resnet");
    let seen = cluster.lock().unwrap().seen.clone();
    let patch = patches(&cluster);
    assert_eq!(patch.len(), 1, "only the function that changes is patched");
    assert_eq!(
        patch[0].uri,
        "/apis/apps/v1/namespaces/openfaas-fn/deployments/resnet?&force=true&fieldManager=faasconf-actuator"
    );
    assert_eq!(
        patch[0].content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(
        patch[0].body.as_ref(),
        Some(&apply_body(
            Target::Deployment,
            "resnet",
            NS,
            &RESNET,
            Some(2)
        ))
    );
    // After the patch, the rollout is read from the Deployment.
    let after = seen.iter().position(|s| s.method == Method::PATCH).unwrap();
    assert_eq!(
        seen[after + 1],
        Seen {
            method: Method::GET,
            uri: "/apis/apps/v1/namespaces/openfaas-fn/deployments/resnet".into(),
            content_type: None,
            body: None
        }
    );
    // The version lives on the objects: a fresh backend continues it.
    let (fresh, _) = start(
        std::mem::take(&mut *cluster.lock().unwrap()),
        Target::Deployment,
        Platform::Ce,
    );
    assert_eq!(
        fresh.current("parallel").await.unwrap(),
        (with_resnet(uniform(1000), RESNET), 2)
    );
}

#[tokio::test(start_paused = true)]
async fn idempotent_dry_run_and_stale_versions() {
    let w = builtin("parallel").unwrap();
    let (backend, cluster) = start(
        Cluster::with(&w, &uniform(1000), Target::Deployment),
        Target::Deployment,
        Platform::Ce,
    );
    let dry = backend
        .apply("parallel", with_resnet(uniform(1000), RESNET), 0, true)
        .await
        .unwrap();
    assert_eq!((dry.version, dry.diff.len()), (1, 4));
    let patch = patches(&cluster);
    assert_eq!(patch.len(), 1);
    assert!(patch[0].uri.contains("dryRun=All"), "{}", patch[0].uri);
    assert_eq!(
        backend.current("parallel").await.unwrap(),
        (uniform(1000), 1),
        "a dry run changes nothing"
    );
    let same = backend
        .apply("parallel", uniform(1000), 1, false)
        .await
        .unwrap();
    assert_eq!((same.version, same.diff.len()), (1, 0));
    assert_eq!(
        patches(&cluster).len(),
        1,
        "an unchanged configuration sends nothing"
    );
    let Err(ApplyError::Stale {
        current: 1,
        expected: 7,
    }) = backend.apply("parallel", uniform(1200), 7, false).await
    else {
        panic!("stale version accepted")
    };
}

#[tokio::test(start_paused = true)]
async fn community_edition_refuses_more_than_five_replicas_before_touching_anything() {
    let w = builtin("parallel").unwrap();
    let (backend, cluster) = start(
        Cluster::with(&w, &uniform(1000), Target::Deployment),
        Target::Deployment,
        Platform::Ce,
    );
    let six = with_resnet(
        uniform(1000),
        FunctionConfig {
            replicas: 6,
            ..RESNET
        },
    );
    let Err(ApplyError::Precondition { field, message }) =
        backend.apply("parallel", six.clone(), 0, false).await
    else {
        panic!("CE clamp ignored")
    };
    assert_eq!(field, "config.resnet.replicas");
    assert!(message.contains("at most 5"), "{message}");
    assert!(cluster.lock().unwrap().seen.is_empty(), "nothing was sent");
    // The cap is announced with the bounds, so a policy can plan inside it.
    let announced = backend.announced(&w);
    assert!(
        announced
            .functions
            .iter()
            .all(|f| f.bounds.replicas.max == 5)
    );
    assert_eq!(
        announced.functions[0].bounds.cpu_millis,
        w.functions[0].bounds.cpu_millis
    );
    let (pro, _) = start(
        Cluster::with(&w, &uniform(1000), Target::Deployment),
        Target::Deployment,
        Platform::Pro,
    );
    assert_eq!(
        pro.apply("parallel", six, 0, false).await.unwrap().version,
        2
    );
    assert_eq!(pro.announced(&w), w);
}

/// Applies a change of resnet and mobilenet (in that workflow order: mobilenet, resnet) with a fault
/// on resnet; returns the error and what each function runs afterwards.
async fn apply_with_fault(
    fault: Fault,
) -> (ApplyError, Arc<Mutex<Cluster>>, Arc<KubernetesBackend>) {
    let w = builtin("parallel").unwrap();
    let mut cluster = Cluster::with(&w, &uniform(1000), Target::Deployment);
    cluster.faults.push(fault);
    let (backend, cluster) = start(cluster, Target::Deployment, Platform::Ce);
    let mut next = with_resnet(uniform(1000), RESNET);
    next.0[5] = FunctionConfig {
        cpu_millis: 700,
        ..next.0[5]
    };
    let error = backend.apply("parallel", next, 1, false).await.unwrap_err();
    (error, cluster, backend)
}

fn running(cluster: &Mutex<Cluster>, name: &str) -> FunctionConfig {
    deployment_config(name, &cluster.lock().unwrap().deployments[name]).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_conflict_aborts_and_rolls_back_the_functions_already_changed() {
    let (error, cluster, backend) = apply_with_fault(Fault::Refuse {
        name: "mobilenet",
        code: 409,
        times: 1,
    })
    .await;
    let ApplyError::Conflict(message) = error else {
        panic!("{error:?}")
    };
    assert!(message.contains("rolled back: resnet"), "{message}");
    assert_eq!(
        running(&cluster, "resnet"),
        uniform(1000).0[4],
        "resnet rolled back"
    );
    assert_eq!(
        running(&cluster, "mobilenet"),
        uniform(1000).0[5],
        "mobilenet never changed"
    );
    assert_eq!(
        backend.current("parallel").await.unwrap(),
        (uniform(1000), 1)
    );
    // The rollback re-applies the old values with the old version.
    let last = patches(&cluster).pop().unwrap();
    assert_eq!(
        last.body,
        Some(apply_body(
            Target::Deployment,
            "resnet",
            NS,
            &uniform(1000).0[4],
            Some(1)
        ))
    );
}

#[tokio::test(start_paused = true)]
async fn forbidden_is_a_failed_precondition_naming_the_object() {
    let (error, cluster, _) = apply_with_fault(Fault::Refuse {
        name: "mobilenet",
        code: 403,
        times: 1,
    })
    .await;
    let ApplyError::Precondition { field, message } = error else {
        panic!("{error:?}")
    };
    assert_eq!(field, "deployment openfaas-fn/mobilenet");
    assert!(
        message.contains("Role") && message.contains("rolled back: resnet"),
        "{message}"
    );
    assert_eq!(running(&cluster, "resnet"), uniform(1000).0[4]);
}

#[tokio::test(start_paused = true)]
async fn a_server_error_is_unavailable_and_the_maybe_applied_object_is_rolled_back_too() {
    let (error, cluster, _) = apply_with_fault(Fault::Refuse {
        name: "mobilenet",
        code: 503,
        times: 1,
    })
    .await;
    let ApplyError::Unavailable(message) = error else {
        panic!("{error:?}")
    };
    assert!(
        message.contains("rolled back: resnet, mobilenet"),
        "{message}"
    );
    assert_eq!(running(&cluster, "resnet"), uniform(1000).0[4]);
    assert_eq!(running(&cluster, "mobilenet"), uniform(1000).0[5]);
}

#[tokio::test(start_paused = true)]
async fn an_api_server_that_does_not_answer_times_out() {
    let (error, cluster, _) = apply_with_fault(Fault::Hang { name: "mobilenet" }).await;
    let ApplyError::Unavailable(message) = error else {
        panic!("{error:?}")
    };
    assert!(message.contains("did not answer within 10s"), "{message}");
    // The rollback of mobilenet hangs too: it is reported, resnet is still restored.
    assert!(
        message.contains("rollback FAILED for: mobilenet"),
        "{message}"
    );
    assert_eq!(running(&cluster, "resnet"), uniform(1000).0[4]);
}

#[tokio::test(start_paused = true)]
async fn a_rollout_past_its_deadline_is_rolled_back() {
    let (error, cluster, _) = apply_with_fault(Fault::Stuck { name: "resnet" }).await;
    let ApplyError::Unavailable(message) = error else {
        panic!("{error:?}")
    };
    assert!(
        message.contains("rollout did not finish within 120s"),
        "{message}"
    );
    // The rollback of a stuck Deployment is itself stuck; it is reported as such.
    assert!(message.contains("rollback FAILED for: resnet"), "{message}");
    assert_eq!(
        running(&cluster, "mobilenet"),
        uniform(1000).0[5],
        "nothing after the failure was touched"
    );
}

#[tokio::test(start_paused = true)]
async fn the_function_resource_is_applied_when_the_operator_manages_deployments() {
    let w = builtin("parallel").unwrap();
    let (backend, cluster) = start(
        Cluster::with(&w, &uniform(1000), Target::Function),
        Target::Function,
        Platform::Pro,
    );
    assert_eq!(
        backend.current("parallel").await.unwrap(),
        (uniform(1000), 1)
    );
    backend
        .apply("parallel", with_resnet(uniform(1000), RESNET), 1, false)
        .await
        .unwrap();
    let patch = patches(&cluster);
    assert_eq!(patch.len(), 1);
    assert_eq!(
        patch[0].uri,
        "/apis/openfaas.com/v1/namespaces/openfaas-fn/functions/resnet?&force=true&fieldManager=faasconf-actuator"
    );
    assert_eq!(
        patch[0].body.as_ref(),
        Some(&apply_body(
            Target::Function,
            "resnet",
            NS,
            &RESNET,
            Some(2)
        ))
    );
    assert_eq!(
        running(&cluster, "resnet"),
        RESNET,
        "the operator's Deployment was waited for"
    );
}

#[tokio::test(start_paused = true)]
async fn a_missing_function_is_a_failed_precondition() {
    let w = builtin("parallel").unwrap();
    let mut cluster = Cluster::with(&w, &uniform(1000), Target::Deployment);
    cluster.targets.remove("starter");
    cluster.deployments.remove("starter");
    let (backend, _) = start(cluster, Target::Deployment, Platform::Ce);
    let Err(ApplyError::Precondition { field, message }) = backend.current("parallel").await else {
        panic!("missing deployment unnoticed")
    };
    assert_eq!(field, "deployment openfaas-fn/starter");
    assert!(message.contains("deploy the function first"), "{message}");
}

mod drift;
mod target_and_telemetry;
