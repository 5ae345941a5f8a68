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
//!
//! The simulation is owned by the clock's task and runs each window on a blocking thread; what
//! callers read and change ([`Control`]: the configuration in force, its version, the changes
//! the next window starts with) sits behind a lock that a window never holds. A change made
//! while a window is simulated takes effect where the window ends, as on a cluster whose
//! telemetry is cut into windows.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex as SyncMutex, PoisonError};
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
    control: Mutex<Control>,
    /// The simulation as of the last window's end, for the cluster's metric exposition.
    exposed: SyncMutex<Twin>,
    subscribers: Subscribers,
    /// Applies so far (dry runs excluded): what a lockstep clock waits on.
    applies: watch::Sender<u64>,
}

/// What callers see of a simulated cluster and the changes its next window starts with.
struct Control {
    /// The configuration in force (applied, or waiting for the next window) and its version.
    config: WorkflowConfig,
    version: u64,
    /// Applied since the simulation last took the changes.
    config_changed: bool,
    workload: Option<Workload>,
}

impl Control {
    /// Hands the changes made since the last call to `twin` (at a window's end).
    fn hand_to(&mut self, twin: &mut Twin) {
        if std::mem::take(&mut self.config_changed) {
            // Validated when applied.
            if let Err(e) = twin.apply_config_numbered(self.config.clone(), self.version) {
                tracing::error!(error = %e, "a validated configuration was refused by the twin");
            }
        }
        if let Some(workload) = self.workload.take()
            && let Err(e) = twin.set_workload(workload)
        {
            tracing::error!(error = %e, "a validated workload was refused by the twin");
        }
    }
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
        let control = self.control.lock().await;
        (control.config.clone(), control.version)
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
        self.exposed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .metric_families(namespace)
    }

    /// Replaces the workload.
    pub async fn set_workload(
        &self,
        workload: Workload,
    ) -> Result<(), Vec<faasconf_core::FieldError>> {
        workload.validate().map_err(|e| e.field_errors().to_vec())?;
        self.control.lock().await.workload = Some(workload);
        Ok(())
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

    /// Simulates the next window of `twin` on a blocking thread (the changes made since the
    /// last one first), without holding the control lock meanwhile; `None` when the blocking
    /// pool has shut down.
    async fn next_window(&self, twin: &mut Option<Twin>) -> Option<Arc<WindowReport>> {
        let mut sim = twin.take()?;
        self.control.lock().await.hand_to(&mut sim);
        let (sim, window) = tokio::task::spawn_blocking(move || {
            let window = sim.run_window();
            (sim, window)
        })
        .await
        .ok()?;
        *self.exposed.lock().unwrap_or_else(PoisonError::into_inner) = sim.clone();
        *twin = Some(sim);
        let window = Arc::new(window);
        crate::service_metrics::record_window(&self.workflow, &window);
        Some(window)
    }

    /// Runs the clock on `twin` until `shutdown` turns true; then every stream ends.
    async fn drive(
        self: Arc<Self>,
        twin: Twin,
        clock: Clock,
        window: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut twin = Some(twin);
        // Real clock: window `k` ends `k + 1` lengths after the start, however long each took
        // to simulate (windows tile wall time); one that could not keep up is skipped.
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + window, window);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            if *shutdown.borrow() {
                break;
            }
            match clock {
                Clock::Real => {
                    tokio::select! {
                        _ = ticks.tick() => {}
                        _ = shutdown.changed() => break,
                    }
                    let Some(w) = self.next_window(&mut twin).await else {
                        break;
                    };
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
                    let Some(w) = self.next_window(&mut twin).await else {
                        break;
                    };
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
            let control = Control {
                config: twin.config().clone(),
                version: twin.config_version(),
                config_changed: false,
                workload: None,
            };
            let m = Arc::new(ManagedTwin {
                workflow: workflow.clone(),
                control: Mutex::new(control),
                exposed: SyncMutex::new(twin.clone()),
                subscribers: Subscribers::new(&workflow.name),
                applies: watch::channel(0).0,
            });
            tokio::spawn(m.clone().drive(
                twin,
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

/// The twin's side of an apply: its control lock; it has no platform limits beyond the bounds.
#[tonic::async_trait]
impl ApplyTarget for ManagedTwin {
    async fn begin<'a>(
        &'a self,
        _workflow: &'a Workflow,
    ) -> Result<Box<dyn Applying + 'a>, ApplyError> {
        let control = self.control.lock().await;
        Ok(Box::new(TwinApplying {
            control,
            workflow: &self.workflow,
            applies: &self.applies,
        }))
    }
}

/// An apply under a twin's control lock.
struct TwinApplying<'a> {
    control: tokio::sync::MutexGuard<'a, Control>,
    workflow: &'a Workflow,
    applies: &'a watch::Sender<u64>,
}

#[tonic::async_trait]
impl Applying for TwinApplying<'_> {
    fn current(&self) -> (&WorkflowConfig, u64) {
        (&self.control.config, self.control.version)
    }

    /// A valid configuration is one the twin runs.
    async fn dry_run(
        &mut self,
        _: usize,
        _: &faasconf_core::FunctionConfig,
    ) -> Result<(), ApplyError> {
        Ok(())
    }

    /// Puts `config` in force from the next window on (the twin's own rule: a configuration
    /// equal to the one in force keeps its version).
    async fn write(&mut self, config: &WorkflowConfig, _: &[usize]) -> Result<u64, ApplyError> {
        self.workflow
            .validate_config(config)
            .map_err(|e| ApplyError::Invalid(e.field_errors().to_vec()))?;
        if *config != self.control.config {
            self.control.config = config.clone();
            self.control.version += 1;
            self.control.config_changed = true;
        }
        self.applies.send_modify(|n| *n += 1);
        Ok(self.control.version)
    }

    /// A decision to keep the configuration: it releases a lockstep clock all the same.
    fn keep(&mut self) {
        self.applies.send_modify(|n| *n += 1);
    }
}

#[cfg(test)]
mod tests;
