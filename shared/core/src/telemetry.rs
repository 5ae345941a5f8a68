//! Telemetry windows: what Prometheus (cAdvisor, the OpenFaaS gateway), the load generator and the
//! functions' own logs show for one workflow over one window. The twin produces them, the
//! Prometheus telemetry source reads them from a cluster, the services stream them.

use serde::{Deserialize, Serialize};

/// One function over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionWindow {
    /// Function name.
    pub function: String,
    /// CPU usage, percent of one core, averaged over the running pods.
    pub cpu_usage_percent: f64,
    /// CFS periods (100 ms) in which the quota was exhausted, summed over pods.
    pub cpu_throttled_periods: f64,
    /// Working set, percent of the memory limit, averaged over the running pods.
    pub memory_percent_of_limit: f64,
    /// Received bytes per second, summed over pods.
    pub network_rx_bytes_per_second: f64,
    /// Calls that reached the function's gateway route.
    pub requests: u64,
    /// Calls rejected with HTTP 429 (every ready replica at its concurrency limit).
    pub rejections: u64,
    /// Of the rejections, those made while another ready replica had room (random routing).
    pub rejections_with_room: u64,
    /// Calls lost to memory: OOM kills and pods that cannot start within their limit.
    pub oom_failures: u64,
    /// Calls answered 502/503 because no replica was ready (cold start, rollout).
    pub unavailable: u64,
    /// Calls the function completed (its log lines).
    pub completed: u64,
    /// p75 of the function's own latency (log), seconds; 0 when nothing completed.
    pub latency_p75_seconds: f64,
    /// p95 of the function's own latency, seconds; 0 when nothing completed.
    pub latency_p95_seconds: f64,
    /// Replicas ready at the end of the window.
    pub ready_replicas: u32,
}

/// The workflow over one window (as the load generator sees it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowWindow {
    /// Mean end-to-end latency of the requests that finished in the window (failed ones too,
    /// as Locust reports), seconds; 0 when none finished.
    pub mean_latency_seconds: f64,
    /// p95 end-to-end latency, seconds.
    pub p95_latency_seconds: f64,
    /// Requests that finished successfully in the window.
    pub successful_requests: u64,
    /// Requests that finished in the window.
    pub total_requests: u64,
    /// successful / total (0 when none finished).
    pub success_ratio: f64,
    /// Successful requests per second.
    pub throughput_rps: f64,
    /// Cost of the configuration in force at the end of the window.
    pub cost: f64,
    /// The rollout of the configuration had not completed at the window's end: pods of an
    /// earlier configuration still served (e.g. new pods that cannot start within their memory
    /// limit). The figures are not the configuration's own, and such a window never meets QoS.
    #[serde(default)]
    pub rollout_stalled: bool,
}

/// One telemetry window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowReport {
    /// Window index since the twin started (0-based).
    pub index: u64,
    /// Start, seconds of simulated time.
    pub start_seconds: f64,
    /// Length, seconds.
    pub duration_seconds: f64,
    /// Version of the configuration at the end of the window.
    pub config_version: u64,
    /// A configuration change happened inside the window.
    pub transient: bool,
    /// The configuration in force at the end of the window (of `config_version`).
    pub config: crate::WorkflowConfig,
    /// Closed-loop users at the end of the window (0 for Poisson load).
    pub users: u32,
    /// End-to-end figures.
    pub workflow: WorkflowWindow,
    /// Per-function figures, in workflow order.
    pub functions: Vec<FunctionWindow>,
}
