//! The `kubernetes` backend: OpenFaaS functions on a real cluster, through the Kubernetes API.
//!
//! Applying a workflow configuration (the apply protocol, [`crate::apply`], with this backend's
//! side in `apply`):
//! 1. validate it whole, including the platform's limits (OpenFaaS CE clamps replicas to 5: more
//!    is refused with FAILED_PRECONDITION rather than fought);
//! 2. read every function's object and the version annotation, check `expected_version`;
//! 3. for each function that changes, server-side apply our fields with our field manager
//!    ([`objects`]) and wait for its rollout with a deadline ([`rollout`]);
//! 4. if any step fails, apply the previous values back to every function already touched, wait for
//!    those rollouts, and report what failed and what was rolled back.
//!
//! A dry run sends the same applies with `dryRun=All`, so admission and validation run on the API
//! server and nothing changes. Applies of one workflow are serialised in this process; the
//! version lives on the objects, so a restarted actuator continues it.
//!
//! Telemetry comes from the Prometheus source (`faasconf-prometheus`), one window per
//! `window_seconds` of wall time.

mod apply;
pub mod objects;
pub mod rollout;
mod settings;
mod telemetry;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use faasconf_core::{FunctionConfig, Workflow, WorkflowConfig};
use faasconf_twin::Workload;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::Value;
use tokio::sync::{Mutex, watch};
use tokio::time::Instant;

use self::objects::{Target, apply_body, deployment_config, deployment_resource, read_config};
use self::rollout::{Rollout, rollout_state};
use crate::backend::{ApplyError, ApplyOutcome, Backend, not_managed, subscribers_exhausted};
use crate::fanout::{Subscribers, Subscription};

pub use self::settings::{KubernetesSettings, Platform};

/// Why one API call failed, as far as applying is concerned.
#[derive(Debug)]
enum CallFailure {
    /// The request was refused; nothing changed (4xx).
    Refused { code: u16, message: String },
    /// Unknown whether it took effect (5xx, transport error, timeout).
    Unknown(String),
}

impl CallFailure {
    fn into_apply_error(self, settings: &KubernetesSettings, object: &str) -> ApplyError {
        let namespace = &settings.namespace;
        match self {
            Self::Refused { code: 404, .. } => ApplyError::Precondition {
                field: object.to_owned(),
                message: format!("not found in namespace {namespace}: deploy the function first"),
            },
            Self::Refused { code: 403, message } => ApplyError::Precondition {
                field: object.to_owned(),
                message: format!(
                    "forbidden ({message}): grant the actuator's service account the Role in deploy/ for namespace {namespace}"
                ),
            },
            Self::Refused { code: 409, message } => {
                ApplyError::Conflict(format!("{object}: conflict ({message}); retry"))
            }
            Self::Refused { code: 429, message } => ApplyError::Unavailable(format!(
                "{object}: the API server is throttling ({message})"
            )),
            Self::Refused { code, message } => ApplyError::Precondition {
                field: object.to_owned(),
                message: format!("the API server refused it ({code}: {message})"),
            },
            Self::Unknown(message) => ApplyError::Unavailable(format!("{object}: {message}")),
        }
    }
}

/// One managed workflow.
struct Managed {
    workflow: Workflow,
    state: Mutex<State>,
    subscribers: Subscribers,
}

#[derive(Default)]
struct State {
    /// Version in force (known once read).
    version: Option<u64>,
    /// Configuration in force (known once read).
    config: Option<WorkflowConfig>,
    /// When the last change finished (for `transient`).
    changed_at: Option<Instant>,
}

/// The Kubernetes backend.
pub struct KubernetesBackend {
    client: kube::Client,
    settings: KubernetesSettings,
    workflows: BTreeMap<String, Arc<Managed>>,
    has_telemetry: bool,
}

impl KubernetesBackend {
    /// Manages `workflows` through `client`. With a telemetry `source`, every workflow gets a
    /// window per `settings.window` until `shutdown` turns true.
    pub fn start(
        client: kube::Client,
        workflows: Vec<Workflow>,
        settings: KubernetesSettings,
        source: Option<Arc<faasconf_prometheus::PrometheusSource>>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Self>, ApplyError> {
        let functions: usize = workflows.iter().map(Workflow::len).sum();
        if let Some(max) = settings
            .platform
            .max_functions()
            .filter(|max| functions > *max)
        {
            return Err(ApplyError::Precondition {
                field: "--workflow".into(),
                message: format!(
                    "{functions} functions, but this OpenFaaS edition runs at most {max}"
                ),
            });
        }
        let managed: BTreeMap<_, _> = workflows
            .into_iter()
            .map(|w| {
                (
                    w.name.clone(),
                    Arc::new(Managed {
                        subscribers: Subscribers::new(&w.name),
                        workflow: w,
                        state: Mutex::new(State::default()),
                    }),
                )
            })
            .collect();
        let backend = Arc::new(Self {
            client,
            settings,
            workflows: managed,
            has_telemetry: source.is_some(),
        });
        if let Some(source) = source {
            for m in backend.workflows.values() {
                tokio::spawn(backend.clone().drive_telemetry(
                    m.clone(),
                    source.clone(),
                    shutdown.clone(),
                ));
            }
        }
        Ok(backend)
    }

    fn managed(&self, name: &str) -> Result<&Arc<Managed>, ApplyError> {
        self.workflows.get(name).ok_or_else(|| not_managed(name))
    }

    fn api(&self, target: Target) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            &self.settings.namespace,
            &objects::resource(target),
        )
    }

    /// Runs one API call under the request deadline.
    async fn call<T>(
        &self,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, CallFailure> {
        match tokio::time::timeout(self.settings.request_timeout, request).await {
            Err(_) => Err(CallFailure::Unknown(format!(
                "the API server did not answer within {:?}",
                self.settings.request_timeout
            ))),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(kube::Error::Api(status))) if (400..500).contains(&status.code) => {
                Err(CallFailure::Refused {
                    code: status.code,
                    message: status.message.clone(),
                })
            }
            Ok(Err(kube::Error::Api(status))) => Err(CallFailure::Unknown(format!(
                "API server error {}: {}",
                status.code, status.message
            ))),
            Ok(Err(e)) => Err(CallFailure::Unknown(e.to_string())),
        }
    }

    async fn get_object(&self, target: Target, name: &str) -> Result<Value, CallFailure> {
        let object = self.call(self.api(target).get(name)).await?;
        serde_json::to_value(object)
            .map_err(|e| CallFailure::Unknown(format!("unreadable object: {e}")))
    }

    fn object_name(&self, target: Target, function: &str) -> String {
        let kind = match target {
            Target::Deployment => "deployment",
            Target::Function => "function",
        };
        format!("{kind} {}/{function}", self.settings.namespace)
    }

    /// Reads every function's configuration and the workflow's version from the cluster.
    async fn read_workflow(
        &self,
        workflow: &Workflow,
    ) -> Result<(WorkflowConfig, u64), ApplyError> {
        let target = self.settings.target;
        let mut configs = Vec::with_capacity(workflow.len());
        let mut version = 0;
        for f in &workflow.functions {
            let object_name = self.object_name(target, &f.name);
            let object = self
                .get_object(target, &f.name)
                .await
                .map_err(|e| e.into_apply_error(&self.settings, &object_name))?;
            let (config, v) =
                read_config(target, &f.name, &object).map_err(|e| ApplyError::Precondition {
                    field: format!("{object_name} {}", e.field),
                    message: e.message,
                })?;
            configs.push(config);
            version = version.max(v.unwrap_or(0));
        }
        // Version 1 is what we found before our first apply.
        Ok((WorkflowConfig(configs), version.max(1)))
    }

    /// Reads what the cluster runs now (see [`Self::read_workflow`]) into `state`: a
    /// configuration that differs from the one known without a change through this actuator
    /// (`kubectl edit`, `faas-cli deploy`, which leave our version annotation as it was) is a
    /// foreign change — a new version, stamped as a change now (the window is transient), so
    /// that nothing learns from it under the old version's name and a tuning session sees its
    /// configuration changed under it. Call with the workflow's state lock held.
    async fn reconcile(
        &self,
        workflow: &Workflow,
        state: &mut State,
    ) -> Result<(WorkflowConfig, u64), ApplyError> {
        let (config, read_version) = self.read_workflow(workflow).await?;
        let known = state.version.unwrap_or(0);
        let version = match &state.config {
            Some(cached) if *cached != config => {
                let version = known.max(read_version) + 1;
                let changed: Vec<&str> = workflow
                    .functions
                    .iter()
                    .zip(cached.0.iter().zip(&config.0))
                    .filter(|(_, (a, b))| a != b)
                    .map(|(f, _)| f.name.as_str())
                    .collect();
                tracing::warn!(
                    workflow = %workflow.name,
                    ?changed,
                    version,
                    "the configuration was changed outside this actuator"
                );
                metrics::counter!("faasconf_actuator_foreign_changes_total", "workflow" => workflow.name.clone())
                    .increment(1);
                state.changed_at = Some(Instant::now());
                version
            }
            _ => known.max(read_version),
        };
        state.version = Some(version);
        state.config = Some(config.clone());
        Ok((config, version))
    }

    async fn patch(
        &self,
        function: &str,
        config: &FunctionConfig,
        version: Option<u64>,
        dry_run: bool,
    ) -> Result<(), CallFailure> {
        let target = self.settings.target;
        let body = apply_body(target, function, &self.settings.namespace, config, version);
        let mut params = PatchParams::apply(&self.settings.field_manager).force();
        params.dry_run = dry_run;
        self.call(
            self.api(target)
                .patch(function, &params, &Patch::Apply(&body)),
        )
        .await
        .map(drop)
    }

    /// Waits until the function's Deployment runs `config` and its rollout is complete.
    async fn wait_rollout(
        &self,
        function: &str,
        config: &FunctionConfig,
    ) -> Result<(), ApplyError> {
        let object_name = self.object_name(Target::Deployment, function);
        let deadline = Instant::now() + self.settings.rollout_deadline;
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            &self.settings.namespace,
            &deployment_resource(),
        );
        loop {
            let deployment = self
                .call(api.get(function))
                .await
                .map_err(|e| e.into_apply_error(&self.settings, &object_name))?;
            let deployment = serde_json::to_value(deployment)
                .map_err(|e| ApplyError::Unavailable(format!("{object_name}: unreadable: {e}")))?;
            let waiting_for = match deployment_config(function, &deployment) {
                Ok(running) if running == *config => match rollout_state(&deployment) {
                    Rollout::Complete => return Ok(()),
                    Rollout::Failed(why) => {
                        return Err(ApplyError::Unavailable(format!(
                            "{object_name}: rollout failed: {why}"
                        )));
                    }
                    Rollout::Progressing(what) => what,
                },
                Ok(_) => "the new configuration to reach the Deployment".to_owned(),
                Err(e) => {
                    return Err(ApplyError::Precondition {
                        field: format!("{object_name} {}", e.field),
                        message: e.message,
                    });
                }
            };
            if Instant::now() + self.settings.poll_interval > deadline {
                return Err(ApplyError::Unavailable(format!(
                    "{object_name}: rollout did not finish within {:?} (waiting for {waiting_for})",
                    self.settings.rollout_deadline
                )));
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
    }
}

/// Which object to apply to when the operator decides: the `Function` resource when the
/// `openfaas.com/v1` API serves `functions` (the OpenFaaS Pro operator is installed), else the
/// Deployment.
pub async fn detect_target(client: &kube::Client, timeout: Duration) -> Result<Target, ApplyError> {
    match tokio::time::timeout(timeout, client.list_api_group_resources("openfaas.com/v1")).await {
        Err(_) => Err(ApplyError::Unavailable(format!(
            "API discovery of openfaas.com/v1 did not answer within {timeout:?}"
        ))),
        Ok(Ok(list)) if list.resources.iter().any(|r| r.name == "functions") => {
            Ok(Target::Function)
        }
        Ok(Ok(_)) => Ok(Target::Deployment),
        Ok(Err(kube::Error::Api(status))) if status.code == 404 => Ok(Target::Deployment),
        Ok(Err(e)) => Err(ApplyError::Unavailable(format!(
            "API discovery of openfaas.com/v1: {e}"
        ))),
    }
}

#[tonic::async_trait]
impl Backend for KubernetesBackend {
    fn workflows(&self) -> Vec<&Workflow> {
        self.workflows.values().map(|m| &m.workflow).collect()
    }

    fn workflow(&self, name: &str) -> Option<&Workflow> {
        self.workflows.get(name).map(|m| &m.workflow)
    }

    fn announced(&self, workflow: &Workflow) -> Workflow {
        let mut announced = workflow.clone();
        if let Some(max) = self.settings.platform.max_replicas() {
            for f in &mut announced.functions {
                f.bounds = f.bounds.with_max_replicas(max);
            }
        }
        announced
    }

    async fn current(&self, workflow: &str) -> Result<(WorkflowConfig, u64), ApplyError> {
        let m = self.managed(workflow)?;
        let mut state = m.state.lock().await;
        self.reconcile(&m.workflow, &mut state).await
    }

    async fn apply(
        &self,
        workflow: &str,
        config: WorkflowConfig,
        expected_version: u64,
        dry_run: bool,
    ) -> Result<ApplyOutcome, ApplyError> {
        let m = self.managed(workflow)?;
        crate::apply::apply(self, &m.workflow, config, expected_version, dry_run).await
    }

    async fn subscribe(&self, workflow: &str, _lockstep: bool) -> Result<Subscription, ApplyError> {
        let m = self.managed(workflow)?;
        if !self.has_telemetry {
            return Err(ApplyError::Unsupported(
                "no telemetry source: start the actuator with --prometheus-url".into(),
            ));
        }
        // A cluster runs in real time: nobody's decision holds it.
        m.subscribers
            .subscribe(false)
            .await
            .ok_or_else(|| subscribers_exhausted(workflow))
    }

    async fn set_workload(&self, _workflow: &str, _workload: Workload) -> Result<(), ApplyError> {
        Err(ApplyError::Unsupported(
            "a real cluster's load comes from its users; SetWorkload is for the twin backend"
                .into(),
        ))
    }

    async fn cluster_metrics(&self, _namespace: &str) -> String {
        String::new()
    }
}

#[cfg(test)]
mod tests;
