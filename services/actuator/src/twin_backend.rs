//! The `twin` backend: one simulated cluster per workflow, driven by a clock.
//!
//! - `real` clock: a window every `window_seconds` of wall time, whether anyone listens or not
//!   (like a cluster); a subscriber that falls behind misses windows, never blocks others.
//! - `virtual` clock: windows as fast as they are computed, but only while someone listens, and
//!   paced by the slowest subscriber (training must not miss windows); a vanished subscriber is
//!   dropped at once.
//!
//! Configuration changes go through [`TwinBackend::apply`]: validated whole first, optimistic
//! concurrency on the version, idempotent, dry-run capable. A twin applies a valid configuration
//! atomically, so nothing needs rolling back here (the Kubernetes backend does).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use faasconf_core::{FieldError, Knob, Workflow, WorkflowConfig};
use faasconf_twin::{Twin, TwinOptions, WindowReport, Workload};
use tokio::sync::{mpsc, watch, Mutex, Notify};

/// How windows are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Clock {
    /// One window per `window_seconds` of wall time.
    Real,
    /// As fast as computed, paced by the slowest subscriber.
    Virtual,
}

/// Windows a subscriber may have queued before it counts as slow.
const SUBSCRIBER_QUEUE: usize = 4;

/// Why an apply was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The configuration is invalid (every field listed).
    #[error("invalid configuration")]
    Invalid(Vec<FieldError>),
    /// `expected_version` is not the current version.
    #[error("configuration version is {current}, the request expected {expected}")]
    Stale {
        /// The version in force.
        current: u64,
        /// The version the caller based its change on.
        expected: u64,
    },
}

/// One knob that changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnobChange {
    /// Function name.
    pub function: String,
    /// The knob.
    pub knob: Knob,
    /// Value before.
    pub from: u32,
    /// Value after.
    pub to: u32,
}

/// What an apply did (or would do, for a dry run).
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyOutcome {
    /// The configuration in force afterwards (the requested one, also for a dry run).
    pub applied: WorkflowConfig,
    /// The version afterwards (unchanged for a dry run or a no-op).
    pub version: u64,
    /// Every knob that changes.
    pub diff: Vec<KnobChange>,
}

struct Subscriber {
    sender: mpsc::Sender<Arc<WindowReport>>,
}

/// One workflow's simulated cluster and its subscribers.
pub struct ManagedTwin {
    workflow: Workflow,
    twin: Mutex<Twin>,
    subscribers: Mutex<Vec<Subscriber>>,
    subscribed: Notify,
}

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

    /// Validates and applies `config` (see the module docs).
    pub async fn apply(&self, config: WorkflowConfig, expected_version: u64, dry_run: bool) -> Result<ApplyOutcome, ApplyError> {
        if let Err(e) = self.workflow.validate_config(&config) {
            self.count_apply("invalid");
            return Err(ApplyError::Invalid(e.field_errors().to_vec()));
        }
        let mut twin = self.twin.lock().await;
        let current = twin.config_version();
        if expected_version != 0 && expected_version != current {
            self.count_apply("stale");
            return Err(ApplyError::Stale { current, expected: expected_version });
        }
        let diff = diff(&self.workflow, twin.config(), &config);
        if dry_run || diff.is_empty() {
            self.count_apply(if dry_run { "dry_run" } else { "unchanged" });
            return Ok(ApplyOutcome { applied: config, version: current, diff });
        }
        let version = twin.apply_config(config.clone()).map_err(|e| ApplyError::Invalid(e.field_errors().to_vec()))?;
        tracing::info!(workflow = %self.workflow.name, version, changes = diff.len(), "configuration applied");
        self.count_apply("applied");
        Ok(ApplyOutcome { applied: config, version, diff })
    }

    fn count_apply(&self, outcome: &'static str) {
        metrics::counter!("faasconf_actuator_applies_total", "workflow" => self.workflow.name.clone(), "outcome" => outcome).increment(1);
    }

    /// The simulated cluster's metric families (gateway and cAdvisor names).
    pub async fn metric_families(&self, namespace: &str) -> Vec<faasconf_twin::exposition::MetricFamily> {
        self.twin.lock().await.metric_families(namespace)
    }

    /// Replaces the workload.
    pub async fn set_workload(&self, workload: Workload) -> Result<(), Vec<FieldError>> {
        self.twin.lock().await.set_workload(workload).map_err(|e| e.field_errors().to_vec())
    }

    /// A new subscriber's window queue.
    pub async fn subscribe(&self) -> mpsc::Receiver<Arc<WindowReport>> {
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_QUEUE);
        self.subscribers.lock().await.push(Subscriber { sender });
        self.subscriber_count().await;
        self.subscribed.notify_one();
        receiver
    }

    /// Subscribers still listening.
    pub async fn subscriber_count(&self) -> usize {
        let mut subscribers = self.subscribers.lock().await;
        subscribers.retain(|s| !s.sender.is_closed());
        metrics::gauge!("faasconf_actuator_subscribers", "workflow" => self.workflow.name.clone()).set(subscribers.len() as f64);
        subscribers.len()
    }

    async fn next_window(&self) -> Arc<WindowReport> {
        let window = Arc::new(self.twin.lock().await.run_window());
        metrics::counter!("faasconf_actuator_windows_total", "workflow" => self.workflow.name.clone()).increment(1);
        window
    }

    /// Real clock: hand the window to every subscriber with room; a full one misses it.
    async fn offer(&self, window: &Arc<WindowReport>) {
        let mut subscribers = self.subscribers.lock().await;
        subscribers.retain(|s| match s.sender.try_send(window.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::debug!(workflow = %self.workflow.name, "slow subscriber missed a window");
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    /// Virtual clock: wait until every live subscriber has taken the window.
    async fn deliver(&self, window: &Arc<WindowReport>) {
        let senders: Vec<mpsc::Sender<Arc<WindowReport>>> = self.subscribers.lock().await.iter().map(|s| s.sender.clone()).collect();
        for sender in senders {
            // A subscriber that went away fails at once; the next count drops it.
            let _ = sender.send(window.clone()).await;
        }
    }

    /// Runs the clock until `shutdown` turns true; then every stream ends.
    async fn drive(self: Arc<Self>, clock: Clock, window: Duration, mut shutdown: watch::Receiver<bool>) {
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
                    self.offer(&w).await;
                }
                Clock::Virtual => {
                    if self.subscriber_count().await == 0 {
                        tokio::select! {
                            () = self.subscribed.notified() => {}
                            _ = shutdown.changed() => break,
                        }
                        continue;
                    }
                    let w = self.next_window().await;
                    tokio::select! {
                        () = self.deliver(&w) => {}
                        _ = shutdown.changed() => break,
                    }
                }
            }
        }
        self.subscribers.lock().await.clear();
    }
}

fn diff(workflow: &Workflow, before: &WorkflowConfig, after: &WorkflowConfig) -> Vec<KnobChange> {
    let mut changes = Vec::new();
    for (spec, (b, a)) in workflow.functions.iter().zip(before.0.iter().zip(&after.0)) {
        for knob in Knob::ALL {
            if b.get(knob) != a.get(knob) {
                changes.push(KnobChange { function: spec.name.clone(), knob, from: b.get(knob), to: a.get(knob) });
            }
        }
    }
    changes
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
    pub fn start(workflows: Vec<Workflow>, settings: &TwinSettings, shutdown: watch::Receiver<bool>) -> anyhow::Result<Self> {
        let mut managed = BTreeMap::new();
        for workflow in workflows {
            let config = workflow.config_from_actions(&vec![[0.5; 4]; workflow.len()])?;
            let options = TwinOptions { window_seconds: settings.window_seconds, seed: settings.seed };
            let twin = Twin::new(workflow.clone(), config, settings.workload.clone(), options)?;
            let m = Arc::new(ManagedTwin { workflow: workflow.clone(), twin: Mutex::new(twin), subscribers: Mutex::new(Vec::new()), subscribed: Notify::new() });
            tokio::spawn(m.clone().drive(settings.clock, Duration::from_secs_f64(settings.window_seconds), shutdown.clone()));
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

#[cfg(test)]
mod tests;
