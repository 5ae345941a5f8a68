//! What one request costs a function: the parameters the twin simulates and calibration fits.

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

/// Every `(name, value, low, high)` whose value is not finite or outside `[low, high]`.
fn out_of_range(prefix: &str, fields: &[(&str, f64, f64, f64)]) -> Vec<FieldError> {
    fields
        .iter()
        .filter(|&&(_, v, lo, hi)| !(v.is_finite() && v >= lo && v <= hi))
        .map(|&(name, v, lo, hi)| {
            FieldError::new(
                format!("{prefix}.{name}"),
                format!("{v} is not in [{lo}, {hi}]"),
            )
        })
        .collect()
}

/// Resource profile of one function (per request unless said otherwise).
///
/// Service model (see the twin's crate docs): a request first waits `io_seconds` (fetching,
/// disk, downstream databases: not CPU), then needs `cpu_core_seconds` of CPU, using at most
/// `parallelism` cores. The requests in flight on a replica share its CPU limit; when their
/// runnable demand exceeds the quota the replica is throttled and `throttle_waste` of the
/// excess demand is burnt without progress (spinning thread pools, lock convoys), which is
/// what makes latency fall faster than 1/CPU on real clusters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FunctionProfile {
    /// Mean CPU work of one request, core-seconds.
    pub cpu_core_seconds: f64,
    /// Coefficient of variation of the CPU work (log-normal).
    pub cpu_cv: f64,
    /// Cores one request can keep busy at once.
    pub parallelism: f64,
    /// Mean non-CPU time of one request, seconds.
    pub io_seconds: f64,
    /// Coefficient of variation of the non-CPU time (log-normal).
    pub io_cv: f64,
    /// Fraction of excess runnable demand that is wasted when the replica is throttled.
    pub throttle_waste: f64,
    /// Working set of an idle replica, MiB. A memory limit below it never becomes ready.
    pub memory_base_mib: f64,
    /// Extra working set per request in flight, MiB. Over the limit: OOM kill.
    pub memory_per_request_mib: f64,
    /// Bytes received per request (payload in), for the network metric.
    pub network_rx_bytes: f64,
    /// Seconds from a replica being scheduled to being ready (image pull excluded).
    pub cold_start_seconds: f64,
}

impl Default for FunctionProfile {
    fn default() -> Self {
        Self {
            cpu_core_seconds: 0.1,
            cpu_cv: 0.3,
            parallelism: 1.0,
            io_seconds: 0.01,
            io_cv: 0.3,
            throttle_waste: 0.0,
            memory_base_mib: 64.0,
            memory_per_request_mib: 8.0,
            network_rx_bytes: 10_000.0,
            cold_start_seconds: 2.0,
        }
    }
}

impl FunctionProfile {
    /// Every field that is negative, not finite, or out of its domain, under `prefix`.
    pub fn validate(&self, prefix: &str) -> Vec<FieldError> {
        let fields = [
            ("cpu_core_seconds", self.cpu_core_seconds, 0.0, f64::MAX),
            ("cpu_cv", self.cpu_cv, 0.0, 10.0),
            ("parallelism", self.parallelism, 0.01, 1024.0),
            ("io_seconds", self.io_seconds, 0.0, f64::MAX),
            ("io_cv", self.io_cv, 0.0, 10.0),
            ("throttle_waste", self.throttle_waste, 0.0, 100.0),
            ("memory_base_mib", self.memory_base_mib, 0.0, f64::MAX),
            (
                "memory_per_request_mib",
                self.memory_per_request_mib,
                0.0,
                f64::MAX,
            ),
            ("network_rx_bytes", self.network_rx_bytes, 0.0, f64::MAX),
            ("cold_start_seconds", self.cold_start_seconds, 0.0, 3600.0),
        ];
        out_of_range(prefix, &fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_is_valid_and_bad_fields_are_named() {
        assert!(FunctionProfile::default().validate("p").is_empty());
        let bad = FunctionProfile {
            parallelism: 0.0,
            io_seconds: f64::NAN,
            ..Default::default()
        };
        let fields: Vec<_> = bad
            .validate("functions[1].profile")
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "functions[1].profile.parallelism",
                "functions[1].profile.io_seconds"
            ]
        );
    }
}

/// How the platform spreads a function's calls over its replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    /// The ready replica with the fewest requests in flight (a load-aware proxy, e.g.
    /// OpenFaaS Pro or a service mesh): no 429 while total in-flight < concurrency x replicas.
    #[default]
    LeastInflight,
    /// A ready replica at random, whatever its load (kube-proxy iptables mode behind the
    /// OpenFaaS CE gateway): a full replica answers 429 even when others have room.
    Random,
}

/// What the workflow's orchestrator does when a stage fails (429, 5xx, OOM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Stop at the failed stage and answer the error at once.
    #[default]
    FailFast,
    /// Run the remaining stages anyway and answer the error at the end (an orchestrator that
    /// does not check status codes until it returns, as the FaaSConf benchmark's does: its
    /// failed requests take as long as successful ones).
    RunToEnd,
}

/// Platform and load-generator parameters shared by a workflow's functions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlatformProfile {
    /// Round trip orchestrator -> gateway -> function -> back, seconds per call (network, proxy);
    /// the twin uses at least 1 ms.
    pub gateway_overhead_seconds: f64,
    /// Probability that a call fails for reasons outside our knobs (5xx, resets).
    pub call_failure_ratio: f64,
    /// Standard deviation of the log of a per-window, per-replica CPU speed factor
    /// (noisy neighbours on the node).
    pub interference_sigma: f64,
    /// Mean wait of a closed-loop user between a response and its next request, seconds
    /// (uniform on `[0, 2 * mean]`, like Locust's `between`).
    pub user_think_seconds: f64,
    /// How calls are spread over replicas.
    pub routing: Routing,
    /// What the orchestrator does when a stage fails.
    pub failure_mode: FailureMode,
}

impl Default for PlatformProfile {
    fn default() -> Self {
        Self {
            gateway_overhead_seconds: 0.02,
            call_failure_ratio: 0.0,
            interference_sigma: 0.05,
            user_think_seconds: 0.0,
            routing: Routing::LeastInflight,
            failure_mode: FailureMode::FailFast,
        }
    }
}

impl PlatformProfile {
    /// Every field out of its domain, under `prefix`.
    pub fn validate(&self, prefix: &str) -> Vec<FieldError> {
        let fields = [
            (
                "gateway_overhead_seconds",
                self.gateway_overhead_seconds,
                0.0,
                60.0,
            ),
            ("call_failure_ratio", self.call_failure_ratio, 0.0, 1.0),
            ("interference_sigma", self.interference_sigma, 0.0, 3.0),
            ("user_think_seconds", self.user_think_seconds, 0.0, 3600.0),
        ];
        out_of_range(prefix, &fields)
    }
}
