//! What a backend does for the service: the managed workflows, their configuration and version,
//! applying a configuration all or nothing, and telemetry windows for subscribers.
//!
//! Two backends implement [`Backend`]: the twin ([`crate::twin_backend`]) and a Kubernetes
//! cluster running OpenFaaS ([`crate::kubernetes`]). The service maps [`ApplyError`] to gRPC
//! status codes in one place.

use faasconf_core::{FieldError, Knob, Workflow, WorkflowConfig};
use faasconf_twin::Workload;

use crate::fanout::Subscription;

/// Why a backend refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The request is invalid (every field listed).
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    /// `expected_version` is not the current version.
    #[error("configuration version is {current}, the request expected {expected}")]
    Stale {
        /// The version in force.
        current: u64,
        /// The version the caller based its change on.
        expected: u64,
    },
    /// The platform cannot do what is asked (a limit of the edition, a missing object, a missing
    /// permission); retrying will not help until the platform changes.
    #[error("{field}: {message}")]
    Precondition {
        /// The request field or platform object concerned.
        field: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// Someone else changed the object concurrently; retrying may succeed.
    #[error("{0}")]
    Conflict(String),
    /// The platform did not answer or did not converge (rolled back where it applies).
    #[error("{0}")]
    Unavailable(String),
    /// The backend does not offer this operation (e.g. setting the load of a real cluster).
    #[error("{0}")]
    Unsupported(String),
    /// As much of this is open as the actuator takes on at once (telemetry streams).
    #[error("{0}")]
    Exhausted(String),
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

/// A backend the actuator serves.
#[tonic::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Every managed workflow, by name.
    fn workflows(&self) -> Vec<&Workflow>;

    /// A managed workflow by name.
    fn workflow(&self, name: &str) -> Option<&Workflow>;

    /// `workflow` as this backend announces it: every function's bounds within the platform's
    /// limits (what `apply` accepts).
    fn announced(&self, workflow: &Workflow) -> Workflow {
        workflow.clone()
    }

    /// The configuration in force and its version.
    async fn current(&self, workflow: &str) -> Result<(WorkflowConfig, u64), ApplyError>;

    /// Validates `config` whole, then applies it all or nothing (optimistic concurrency on
    /// `expected_version`, 0 = unconditional; idempotent; nothing changes for a dry run).
    async fn apply(
        &self,
        workflow: &str,
        config: WorkflowConfig,
        expected_version: u64,
        dry_run: bool,
    ) -> Result<ApplyOutcome, ApplyError>;

    /// A new subscriber's window queue; it ends when the backend shuts down. `lockstep`: the
    /// subscriber decides on every steady window, and a simulated clock that is not paced by
    /// wall time waits for its `apply` before the next window (real time never waits).
    async fn subscribe(&self, workflow: &str, lockstep: bool) -> Result<Subscription, ApplyError>;

    /// Replaces the workload (simulated backends only).
    async fn set_workload(&self, workflow: &str, workload: Workload) -> Result<(), ApplyError>;

    /// The simulated cluster's metrics in exposition format (gateway and cAdvisor names); empty
    /// for a real cluster, whose metrics its own exporters serve.
    async fn cluster_metrics(&self, namespace: &str) -> String;
}

/// Every knob that differs between `before` and `after`, in workflow and knob order.
pub fn diff(
    workflow: &Workflow,
    before: &WorkflowConfig,
    after: &WorkflowConfig,
) -> Vec<KnobChange> {
    let mut changes = Vec::new();
    for (spec, (b, a)) in workflow.functions.iter().zip(before.0.iter().zip(&after.0)) {
        for knob in Knob::ALL {
            if b.get(knob) != a.get(knob) {
                changes.push(KnobChange {
                    function: spec.name.clone(),
                    knob,
                    from: b.get(knob),
                    to: a.get(knob),
                });
            }
        }
    }
    changes
}

/// The error for a workflow name no backend manages (the service answers NOT_FOUND before a
/// backend is asked; this guards direct callers).
pub fn not_managed(name: &str) -> ApplyError {
    ApplyError::Invalid(vec![FieldError::new(
        "workflow",
        format!("{name:?} is not managed by this actuator"),
    )])
}

/// The error for a subscription past [`MAX_SUBSCRIBERS`](crate::fanout::MAX_SUBSCRIBERS).
pub fn subscribers_exhausted(workflow: &str) -> ApplyError {
    ApplyError::Exhausted(format!(
        "{} telemetry streams of {workflow:?} are open, the most this actuator serves at once; close one first",
        crate::fanout::MAX_SUBSCRIBERS
    ))
}

/// Counts one apply outcome on `/metrics`.
pub fn count_apply(workflow: &str, outcome: &'static str) {
    metrics::counter!("faasconf_actuator_applies_total", "workflow" => workflow.to_owned(), "outcome" => outcome).increment(1);
}
