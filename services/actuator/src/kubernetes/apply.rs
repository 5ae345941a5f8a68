//! The Kubernetes backend's side of the apply protocol ([`crate::apply`]): the platform's
//! replica cap, the workflow's lock with the configuration and version read from the cluster,
//! server-side dry runs, and writes function by function — each waited for — with every
//! function already touched applied back when one fails.

use faasconf_core::{FunctionConfig, Workflow, WorkflowConfig};
use tokio::sync::MutexGuard;
use tokio::time::Instant;

use super::{CallFailure, KubernetesBackend, State};
use crate::apply::{ApplyTarget, Applying};
use crate::backend::ApplyError;

#[tonic::async_trait]
impl ApplyTarget for KubernetesBackend {
    fn check_platform(
        &self,
        workflow: &Workflow,
        config: &WorkflowConfig,
    ) -> Result<(), ApplyError> {
        let Some(max) = self.settings.platform.max_replicas() else {
            return Ok(());
        };
        match workflow
            .functions
            .iter()
            .zip(&config.0)
            .find(|(_, c)| c.replicas > max)
        {
            Some((f, c)) => Err(ApplyError::Precondition {
                field: format!("config.{}.replicas", f.name),
                message: format!(
                    "{} replicas, but OpenFaaS CE runs at most {max} per function (it would clamp them); use --platform pro on OpenFaaS Pro",
                    c.replicas
                ),
            }),
            None => Ok(()),
        }
    }

    async fn begin<'a>(
        &'a self,
        workflow: &'a Workflow,
    ) -> Result<Box<dyn Applying + 'a>, ApplyError> {
        let m = self.managed(&workflow.name)?;
        let mut state = m.state.lock().await;
        // A foreign change since the last read makes a caller's expected version stale.
        let (previous, version) = self.reconcile(workflow, &mut state).await?;
        Ok(Box::new(KubernetesApplying {
            backend: self,
            workflow,
            state,
            previous,
            version,
        }))
    }
}

/// An apply to a locked workflow on the cluster.
struct KubernetesApplying<'a> {
    backend: &'a KubernetesBackend,
    workflow: &'a Workflow,
    state: MutexGuard<'a, State>,
    previous: WorkflowConfig,
    version: u64,
}

#[tonic::async_trait]
impl Applying for KubernetesApplying<'_> {
    fn current(&self) -> (&WorkflowConfig, u64) {
        (&self.previous, self.version)
    }

    /// The same apply with `dryRun=All`: admission and validation run on the API server.
    async fn dry_run(
        &mut self,
        function: usize,
        config: &FunctionConfig,
    ) -> Result<(), ApplyError> {
        let b = self.backend;
        let name = &self.workflow.functions[function].name;
        b.patch(name, config, Some(self.version + 1), true)
            .await
            .map_err(|e| e.into_apply_error(&b.settings, &b.object_name(b.settings.target, name)))
    }

    async fn write(
        &mut self,
        config: &WorkflowConfig,
        changed: &[usize],
    ) -> Result<u64, ApplyError> {
        let (b, workflow, version) = (self.backend, self.workflow, self.version);
        let next = version + 1;
        let mut touched = Vec::new();
        for &i in changed {
            let name = &workflow.functions[i].name;
            let object_name = b.object_name(b.settings.target, name);
            let step = match b.patch(name, &config.0[i], Some(next), false).await {
                Ok(()) => {
                    touched.push(i);
                    b.wait_rollout(name, &config.0[i]).await
                }
                Err(e) => {
                    // Unknown outcome (5xx, timeout): it may have been applied, so undo it too.
                    if matches!(e, CallFailure::Unknown(_)) {
                        touched.push(i);
                    }
                    Err(e.into_apply_error(&b.settings, &object_name))
                }
            };
            if let Err(error) = step {
                let failures = b
                    .roll_back(workflow, &touched, &self.previous, version)
                    .await;
                self.state.changed_at = Some(Instant::now());
                return Err(failed(workflow, &touched, &failures, version, error));
            }
        }
        self.state.version = Some(next);
        self.state.config = Some(config.clone());
        self.state.changed_at = Some(Instant::now());
        Ok(next)
    }
}

/// The error of a failed write: what failed, with the version kept and what was rolled back
/// (or what could not be).
fn failed(
    workflow: &Workflow,
    touched: &[usize],
    failures: &[String],
    version: u64,
    error: ApplyError,
) -> ApplyError {
    let rolled: Vec<&str> = touched
        .iter()
        .map(|&j| workflow.functions[j].name.as_str())
        .collect();
    let summary = if failures.is_empty() {
        format!("rolled back: {}", rolled.join(", "))
    } else {
        format!("rollback FAILED for: {}", failures.join("; "))
    };
    tracing::warn!(workflow = %workflow.name, %error, %summary, "apply failed");
    match error {
        ApplyError::Precondition { field, message } => ApplyError::Precondition {
            field,
            message: format!("{message}; version {version} kept, {summary}"),
        },
        ApplyError::Conflict(message) => {
            ApplyError::Conflict(format!("{message}; version {version} kept, {summary}"))
        }
        other => ApplyError::Unavailable(format!("{other}; version {version} kept, {summary}")),
    }
}

impl KubernetesBackend {
    /// Applies the previous values back to `touched` functions (newest first); what failed.
    async fn roll_back(
        &self,
        workflow: &Workflow,
        touched: &[usize],
        previous: &WorkflowConfig,
        previous_version: u64,
    ) -> Vec<String> {
        let mut failures = Vec::new();
        for &i in touched.iter().rev() {
            let name = &workflow.functions[i].name;
            let result = match self
                .patch(name, &previous.0[i], Some(previous_version), false)
                .await
            {
                Ok(()) => self.wait_rollout(name, &previous.0[i]).await,
                Err(e) => Err(e.into_apply_error(
                    &self.settings,
                    &self.object_name(self.settings.target, name),
                )),
            };
            let outcome = if result.is_ok() { "ok" } else { "failed" };
            metrics::counter!("faasconf_actuator_rollbacks_total", "workflow" => workflow.name.clone(), "outcome" => outcome).increment(1);
            if let Err(e) = result {
                tracing::error!(workflow = %workflow.name, function = %name, error = %e, "rollback failed");
                failures.push(format!("{name} ({e})"));
            }
        }
        failures
    }
}
