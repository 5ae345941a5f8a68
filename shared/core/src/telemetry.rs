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
    /// Requests that entered the workflow in the window. A cluster counts requests as they
    /// finish (the end-to-end histogram, or the entry function's gateway counters), so its
    /// windows carry `total_requests` here: equal in steady state. The twin counts arrivals.
    #[serde(default)]
    pub arrivals: u64,
    /// Requests in the system, time-averaged over the window. A cluster measures it by Little's
    /// law (arrival rate x mean latency); the twin integrates its own count. 0: not measured.
    #[serde(default)]
    pub mean_in_flight: f64,
    /// Series the telemetry source had no data for (its query names, e.g. `workflow_requests`
    /// when no end-to-end histogram is exported): the figures read from them are unknown, not
    /// zero. A window missing the end-to-end latency never meets QoS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_series: Vec<String>,
}

impl WorkflowWindow {
    /// Whether the end-to-end latency and success were measured (the source had the series).
    pub fn end_to_end_measured(&self) -> bool {
        !self.missing_series.iter().any(|s| s == "workflow_requests")
    }
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

impl WindowReport {
    /// Whether the telemetry source measured every series (none in
    /// `workflow.missing_series`): a window that is not complete holds unknowns read as 0, so it
    /// is neither judged against QoS nor learnt from.
    pub fn is_complete(&self) -> bool {
        self.workflow.missing_series.is_empty()
    }

    /// The load the window measured, as arrivals per second: the requests that entered
    /// (`arrivals`) or, where the window counted none, those that finished (what the end-to-end
    /// histogram counts; in steady state, the arrival rate).
    pub fn arrival_rate(&self) -> f64 {
        let count = match self.workflow.arrivals {
            0 => self.workflow.total_requests,
            n => n,
        };
        if self.duration_seconds > 0.0 {
            count as f64 / self.duration_seconds
        } else {
            0.0
        }
    }

    /// Requests in the system on average: the window's own figure, or by Little's law (arrival
    /// rate x mean latency) where it has none.
    pub fn in_flight(&self) -> f64 {
        if self.workflow.mean_in_flight > 0.0 {
            return self.workflow.mean_in_flight;
        }
        self.arrival_rate() * self.workflow.mean_latency_seconds
    }

    /// The closed-loop users that offer this window's load: its own users when a closed-loop
    /// generator reported them, otherwise Little's law over one user's cycle — arrival rate x
    /// (mean latency + `think_seconds`), at least 1. The policy's state and safe exploration's
    /// bands are in users; an open-loop window is placed on that scale by this.
    pub fn closed_loop_users(&self, think_seconds: f64) -> u32 {
        if self.users > 0 {
            return self.users;
        }
        let users = self.arrival_rate() * (self.workflow.mean_latency_seconds + think_seconds);
        if users.is_finite() {
            users
                .round()
                .clamp(1.0, f64::from(crate::limits::MAX_USERS)) as u32
        } else {
            1
        }
    }
}

/// How a cluster's load is modelled: what the deployment declares about who sends its
/// requests. The refit and the planner's screening read a window's load through it
/// (`faasconf_twin::follow::workload_of`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadModel {
    /// Closed-loop users where the telemetry reports them (a closed-loop generator that counts
    /// its users: the paper's setting, the twin), else open-loop arrivals at the measured rate.
    #[default]
    Measured,
    /// Open-loop Poisson arrivals at the measured rate, whatever the telemetry reports: a
    /// cluster's own traffic, whose senders do not wait for their answers.
    OpenLoop,
    /// Closed-loop users: those reported, else as many as the measured arrivals and latency
    /// imply (Little's law with the workflow's think time): a closed-loop generator that does
    /// not report its users drives the cluster.
    ClosedLoop,
}

#[cfg(test)]
mod load_tests {
    use super::*;

    #[test]
    fn an_open_loop_window_is_placed_on_the_users_scale_by_little_s_law() {
        let mut w = WindowReport {
            index: 0,
            start_seconds: 0.0,
            duration_seconds: 30.0,
            config_version: 1,
            transient: false,
            config: crate::WorkflowConfig(Vec::new()),
            users: 0,
            workflow: WorkflowWindow {
                mean_latency_seconds: 4.0,
                p95_latency_seconds: 6.0,
                successful_requests: 60,
                total_requests: 60,
                success_ratio: 1.0,
                throughput_rps: 2.0,
                cost: 1.0,
                rollout_stalled: false,
                arrivals: 0,
                mean_in_flight: 0.0,
                missing_series: Vec::new(),
            },
            functions: Vec::new(),
        };
        assert_eq!(w.arrival_rate(), 2.0);
        assert_eq!(w.in_flight(), 8.0);
        // 2 requests/s, each user cycling every 4 s + 1 s of think time: 10 users.
        assert_eq!(w.closed_loop_users(1.0), 10);
        w.users = 7;
        assert_eq!(w.closed_loop_users(1.0), 7);
        w.users = 0;
        w.workflow.total_requests = 0;
        assert_eq!(w.closed_loop_users(1.0), 1);
    }
}
