//! The `twin` backend: one simulated cluster per workflow, driven by a clock.
//!
//! - `real` clock: a window every `window_seconds` of wall time, whether anyone listens or not
//!   (like a cluster); a subscriber that falls behind misses windows, never blocks others.
//! - `virtual` clock: windows as fast as they are computed, but only while someone listens, and
//!   paced by the slowest subscriber (training must not miss windows); a vanished subscriber is
//!   dropped at once. While a subscriber is in lockstep, each steady window waits for an apply
//!   (its decision) before the next is simulated: without it the clock would run ahead while the
//!   subscriber thinks, by however many windows the transport buffers, and the configuration
//!   would change at a point that depends on timing, not on the seed.
//!
//! Configuration changes go through the apply protocol ([`crate::apply`]): validated whole
//! first, optimistic concurrency on the version, idempotent, dry-run capable. A twin applies a
//! valid configuration atomically, so nothing needs rolling back here (the Kubernetes backend
//! does).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use faasconf_core::{Workflow, WorkflowConfig};
use faasconf_twin::{Twin, TwinOptions, WindowReport, Workload};
use tokio::sync::{Mutex, watch};

use crate::apply::{self, ApplyTarget, Applying};
use crate::backend::{ApplyError, ApplyOutcome, Backend, not_managed, subscribers_exhausted};
use crate::fanout::{Subscribers, Subscription};

/// How windows are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Clock {
    /// One window per `window_seconds` of wall time.
    Real,
    /// As fast as computed, paced by the slowest subscriber.
    Virtual,
}

/// One workflow's simulated cluster and its subscribers.
pub struct ManagedTwin {
    workflow: Workflow,
    twin: Mutex<Twin>,
    subscribers: Subscribers,
    /// Applies so far (dry runs excluded): what a lockstep clock waits on.
    applies: watch::Sender<u64>,
}

/// How long a lockstep clock waits for a decision before it goes on without one.
pub const LOCKSTEP_PATIENCE: Duration = Duration::from_secs(120);

impl ManagedTwin {
    /// The workflow.
    pub fn workflow(&self) -> &Workflow {
        &self.workflow
    }

    /// The configuration in force and its version.
    pub async fn current(&self) -> (WorkflowConfig, u64) {
        let twin = self.twin.lock().await;
        (twin.config().clone(), twin.config_version())
    }

    /// Validates and applies `config` through the apply protocol ([`crate::apply`]).
    pub async fn apply(
        &self,
        config: WorkflowConfig,
        expected_version: u64,
        dry_run: bool,
    ) -> Result<ApplyOutcome, ApplyError> {
        apply::apply(self, &self.workflow, config, expected_version, dry_run).await
    }

    /// The simulated cluster's metric families (gateway and cAdvisor names).
    pub async fn metric_families(
        &self,
        namespace: &str,
    ) -> Vec<faasconf_twin::exposition::MetricFamily> {
        self.twin.lock().await.metric_families(namespace)
    }

    /// Replaces the workload.
    pub async fn set_workload(
        &self,
        workload: Workload,
    ) -> Result<(), Vec<faasconf_core::FieldError>> {
        self.twin
            .lock()
            .await
            .set_workload(workload)
            .map_err(|e| e.field_errors().to_vec())
    }

    /// A new subscriber's window queue (see the module docs for `lockstep`).
    pub async fn subscribe(&self, lockstep: bool) -> Result<Subscription, ApplyError> {
        self.subscribers
            .subscribe(lockstep)
            .await
            .ok_or_else(|| subscribers_exhausted(&self.workflow.name))
    }

    /// Waits until an apply beyond the `seen`-th one, while a lockstep subscriber is live, at
    /// most [`LOCKSTEP_PATIENCE`]; false when shutting down.
    async fn wait_for_decision(&self, seen: u64, shutdown: &mut watch::Receiver<bool>) -> bool {
        let mut applies = self.applies.subscribe();
        let deadline = tokio::time::Instant::now() + LOCKSTEP_PATIENCE;
        while self.subscribers.lockstep_count().await > 0 {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(workflow = %self.workflow.name, "no decision from the lockstep subscriber: the clock goes on");
                break;
            }
            // Polled: a lockstep subscriber that goes away must release the clock too.
            tokio::select! {
                decided = tokio::time::timeout(Duration::from_millis(50), applies.wait_for(|n| *n > seen)) => {
                    if matches!(decided, Ok(Ok(_))) {
                        break;
                    }
                }
                _ = shutdown.changed() => return false,
            }
        }
        true
    }

    /// Subscribers still listening.
    pub async fn subscriber_count(&self) -> usize {
        self.subscribers.count().await
    }

    async fn next_window(&self) -> Arc<WindowReport> {
        let window = Arc::new(self.twin.lock().await.run_window());
        crate::service_metrics::record_window(&self.workflow, &window);
        window
    }

    /// Runs the clock until `shutdown` turns true; then every stream ends.
    async fn drive(
        self: Arc<Self>,
        clock: Clock,
        window: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            match clock {
                Clock::Real => {
                    tokio::select! {
                        () = tokio::time::sleep(window) => {}
                        _ = shutdown.changed() => break,
                    }
                    let w = self.next_window().await;
                    self.subscribers.offer(&w).await;
                }
                Clock::Virtual => {
                    if self.subscriber_count().await == 0 {
                        tokio::select! {
                            () = self.subscribers.subscribed() => {}
                            _ = shutdown.changed() => break,
                        }
                        continue;
                    }
                    let seen = *self.applies.borrow();
                    let w = self.next_window().await;
                    tokio::select! {
                        () = self.subscribers.deliver(&w) => {}
                        _ = shutdown.changed() => break,
                    }
                    if !w.transient && !self.wait_for_decision(seen, &mut shutdown).await {
                        break;
                    }
                }
            }
        }
        self.subscribers.close().await;
    }
}

/// Every managed workflow's twin.
pub struct TwinBackend {
    workflows: BTreeMap<String, Arc<ManagedTwin>>,
}

/// How the twin backend starts.
#[derive(Debug, Clone)]
pub struct TwinSettings {
    /// Window pacing.
    pub clock: Clock,
    /// Window length, seconds.
    pub window_seconds: f64,
    /// Initial workload of every workflow.
    pub workload: Workload,
    /// Seed of the simulations.
    pub seed: u64,
}

impl TwinBackend {
    /// One twin per workflow, each at the middle of its configuration space, clocks started.
    pub fn start(
        workflows: Vec<Workflow>,
        settings: &TwinSettings,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let mut managed = BTreeMap::new();
        for workflow in workflows {
            let config = workflow.config_from_actions(&vec![[0.5; 4]; workflow.len()])?;
            let options = TwinOptions {
                window_seconds: settings.window_seconds,
                seed: settings.seed,
            };
            let twin = Twin::new(workflow.clone(), config, settings.workload.clone(), options)?;
            let m = Arc::new(ManagedTwin {
                workflow: workflow.clone(),
                twin: Mutex::new(twin),
                subscribers: Subscribers::new(&workflow.name),
                applies: watch::channel(0).0,
            });
            tokio::spawn(m.clone().drive(
                settings.clock,
                Duration::from_secs_f64(settings.window_seconds),
                shutdown.clone(),
            ));
            managed.insert(workflow.name.clone(), m);
        }
        Ok(Self { workflows: managed })
    }

    /// A managed workflow by name.
    pub fn get(&self, name: &str) -> Option<&Arc<ManagedTwin>> {
        self.workflows.get(name)
    }

    /// Every managed workflow, by name.
    pub fn all(&self) -> impl Iterator<Item = &Arc<ManagedTwin>> {
        self.workflows.values()
    }
}

#[tonic::async_trait]
impl Backend for TwinBackend {
    fn workflows(&self) -> Vec<&Workflow> {
        self.workflows.values().map(|m| m.workflow()).collect()
    }

    fn workflow(&self, name: &str) -> Option<&Workflow> {
        self.get(name).map(|m| m.workflow())
    }

    async fn current(&self, workflow: &str) -> Result<(WorkflowConfig, u64), ApplyError> {
        Ok(self
            .get(workflow)
            .ok_or_else(|| not_managed(workflow))?
            .current()
            .await)
    }

    async fn apply(
        &self,
        workflow: &str,
        config: WorkflowConfig,
        expected_version: u64,
        dry_run: bool,
    ) -> Result<ApplyOutcome, ApplyError> {
        self.get(workflow)
            .ok_or_else(|| not_managed(workflow))?
            .apply(config, expected_version, dry_run)
            .await
    }

    async fn subscribe(&self, workflow: &str, lockstep: bool) -> Result<Subscription, ApplyError> {
        self.get(workflow)
            .ok_or_else(|| not_managed(workflow))?
            .subscribe(lockstep)
            .await
    }

    async fn set_workload(&self, workflow: &str, workload: Workload) -> Result<(), ApplyError> {
        self.get(workflow)
            .ok_or_else(|| not_managed(workflow))?
            .set_workload(workload)
            .await
            .map_err(ApplyError::Invalid)
    }

    async fn cluster_metrics(&self, namespace: &str) -> String {
        let mut families = Vec::new();
        for twin in self.all() {
            families.push(twin.metric_families(namespace).await);
        }
        // One header per family across every workflow's simulated cluster.
        faasconf_twin::exposition::render(families)
    }
}

/// The twin's side of an apply: its lock; it has no platform limits beyond the bounds.
#[tonic::async_trait]
impl ApplyTarget for ManagedTwin {
    async fn begin<'a>(
        &'a self,
        _workflow: &'a Workflow,
    ) -> Result<Box<dyn Applying + 'a>, ApplyError> {
        let twin = self.twin.lock().await;
        Ok(Box::new(TwinApplying {
            twin,
            applies: &self.applies,
        }))
    }
}

/// An apply to a locked twin.
struct TwinApplying<'a> {
    twin: tokio::sync::MutexGuard<'a, Twin>,
    applies: &'a watch::Sender<u64>,
}

#[tonic::async_trait]
impl Applying for TwinApplying<'_> {
    fn current(&self) -> (&WorkflowConfig, u64) {
        (self.twin.config(), self.twin.config_version())
    }

    /// A valid configuration is one the twin runs.
    async fn dry_run(
        &mut self,
        _: usize,
        _: &faasconf_core::FunctionConfig,
    ) -> Result<(), ApplyError> {
        Ok(())
    }

    async fn write(&mut self, config: &WorkflowConfig, _: &[usize]) -> Result<u64, ApplyError> {
        let version = self
            .twin
            .apply_config(config.clone())
            .map_err(|e| ApplyError::Invalid(e.field_errors().to_vec()))?;
        self.applies.send_modify(|n| *n += 1);
        Ok(version)
    }

    /// A decision to keep the configuration: it releases a lockstep clock all the same.
    fn keep(&mut self) {
        self.applies.send_modify(|n| *n += 1);
    }
}

#[cfg(test)]
mod tests;
