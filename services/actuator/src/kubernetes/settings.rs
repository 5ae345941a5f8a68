//! How the Kubernetes backend runs: the OpenFaaS edition's limits and the backend's settings.

use std::time::Duration;

use super::objects::Target;

/// The OpenFaaS edition, for its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Platform {
    /// Community Edition: at most 5 replicas per function and 15 functions.
    Ce,
    /// Pro: no replica clamp.
    Pro,
}

impl Platform {
    /// The most replicas a function may have, if the edition limits it.
    pub fn max_replicas(self) -> Option<u32> {
        match self {
            Self::Ce => Some(5),
            Self::Pro => None,
        }
    }

    /// The most functions one installation may have, if the edition limits it.
    pub fn max_functions(self) -> Option<usize> {
        match self {
            Self::Ce => Some(15),
            Self::Pro => None,
        }
    }
}

/// How the Kubernetes backend runs.
#[derive(Debug, Clone)]
pub struct KubernetesSettings {
    /// Namespace of the functions (OpenFaaS: `openfaas-fn`).
    pub namespace: String,
    /// Our server-side apply field manager.
    pub field_manager: String,
    /// Which object holds a function's configuration.
    pub target: Target,
    /// The OpenFaaS edition.
    pub platform: Platform,
    /// How long one function's rollout may take before the apply is rolled back.
    pub rollout_deadline: Duration,
    /// How often a rollout is polled.
    pub poll_interval: Duration,
    /// Deadline of one API request.
    pub request_timeout: Duration,
    /// Telemetry window.
    pub window: Duration,
}
