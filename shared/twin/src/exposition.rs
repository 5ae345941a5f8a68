//! The twin as a Prometheus target: the metric names and labels a real OpenFaaS-on-Kubernetes
//! cluster exposes, so a real Prometheus can scrape the twin like a cluster.
//!
//! - OpenFaaS gateway: `gateway_function_invocation_total{function_name, code}`,
//!   `gateway_functions_seconds{function_name, code}` (histogram, the gateway's default
//!   buckets); `function_name` is `<fn>.<namespace>`. (The gateway's `gateway_service_count`
//!   gauge is left out: promtool rejects a gauge named `_count`; ready replicas show as the
//!   function's cAdvisor series.)
//! - The load generator (end to end, what Locust or k6 would export):
//!   `faasconf_workflow_request_duration_seconds{workflow, code}` (histogram, [`REQUEST_BUCKETS`]).
//! - cAdvisor, per container (`namespace, pod, container, image`):
//!   `container_cpu_usage_seconds_total`, `container_cpu_cfs_periods_total`,
//!   `container_cpu_cfs_throttled_periods_total`, `container_memory_working_set_bytes`,
//!   `container_spec_memory_limit_bytes`, `container_spec_cpu_quota`; per pod (`namespace,
//!   pod, interface`): `container_network_receive_bytes_total`.
//!
//! Counters grow for as long as the twin runs; a pod's series disappear when the pod goes.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::sim::Twin;

/// The OpenFaaS gateway's histogram buckets (Prometheus' defaults), seconds.
pub const GATEWAY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A per-container series: name, kind, help, and how to read it off a replica.
type ContainerSeries<'a> = (
    &'static str,
    &'static str,
    &'static str,
    &'a dyn Fn(&crate::replica::Replica) -> f64,
);

/// CFS period, seconds.
const CFS_PERIOD_SECONDS: f64 = 0.1;

/// Buckets of the load generator's end-to-end latency histogram, seconds (finer than the
/// gateway's, since workflows take seconds).
pub const REQUEST_BUCKETS: [f64; 18] = [
    0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0,
    60.0,
];

/// Latency histogram of one status code.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Observations at or below each bound (not cumulative here).
    pub buckets: Vec<u64>,
    /// Sum of observations, seconds.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

/// Latency histograms by HTTP status code over fixed bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeHistograms {
    /// Upper bounds of the buckets, seconds.
    pub bounds: &'static [f64],
    /// Histogram per HTTP status code.
    pub by_code: BTreeMap<u16, Histogram>,
}

/// The gateway's counters for one function.
pub type GatewayCounters = CodeHistograms;

impl Default for CodeHistograms {
    /// The gateway's buckets, with the codes a function answers with declared at zero.
    fn default() -> Self {
        Self::new(&GATEWAY_BUCKETS, &[200, 429, 500, 503])
    }
}

impl CodeHistograms {
    /// Histograms over `bounds` with the series of `codes` present at zero from the start, as
    /// Prometheus' instrumentation guidelines ask: `increase()` cannot count a series' first
    /// sample, so a code that first appears mid-window would otherwise be undercounted there.
    pub fn new(bounds: &'static [f64], codes: &[u16]) -> Self {
        let zero = Histogram {
            buckets: vec![0; bounds.len()],
            ..Histogram::default()
        };
        Self {
            bounds,
            by_code: codes.iter().map(|&c| (c, zero.clone())).collect(),
        }
    }

    /// Records one answered call.
    pub fn record(&mut self, code: u16, seconds: f64) {
        let n = self.bounds.len();
        let h = self.by_code.entry(code).or_insert_with(|| Histogram {
            buckets: vec![0; n],
            ..Histogram::default()
        });
        if let Some(i) = self.bounds.iter().position(|b| seconds <= *b) {
            h.buckets[i] += 1;
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// Appends `<name>_bucket`, `_sum` and `_count` samples per code, with `labels` before `code`.
    fn render_into(&self, name: &str, labels: &str, samples: &mut Vec<String>) {
        for (code, h) in &self.by_code {
            let labels = format!("code=\"{code}\",{labels}");
            let mut cumulative = 0;
            for (bound, n) in self.bounds.iter().zip(&h.buckets) {
                cumulative += n;
                samples.push(format!(
                    "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                ));
            }
            samples.push(format!("{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count));
            samples.push(format!("{name}_sum{{{labels}}} {}", value(h.sum)));
            samples.push(format!("{name}_count{{{labels}}} {}", h.count));
        }
    }
}

/// One metric family: its header and sample lines (`name{labels} value`).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricFamily {
    /// Metric name.
    pub name: &'static str,
    /// counter, gauge or histogram.
    pub kind: &'static str,
    /// Help text.
    pub help: &'static str,
    /// Sample lines.
    pub samples: Vec<String>,
}

/// Renders families in the Prometheus text format, merging families of the same name (from
/// several twins) under one HELP/TYPE header.
pub fn render(sources: impl IntoIterator<Item = Vec<MetricFamily>>) -> String {
    let mut merged: Vec<MetricFamily> = Vec::new();
    for family in sources.into_iter().flatten() {
        match merged.iter_mut().find(|m| m.name == family.name) {
            Some(m) => m.samples.extend(family.samples),
            None => merged.push(family),
        }
    }
    let mut out = String::new();
    for f in merged {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for line in f.samples {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// Formats a value the way Prometheus reads it.
fn value(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else if v.is_nan() {
        "NaN".into()
    } else if v > 0.0 {
        "+Inf".into()
    } else {
        "-Inf".into()
    }
}

impl Twin {
    /// The cluster's metrics now, in the Prometheus text format (version 0.0.4); functions live
    /// in `namespace` (OpenFaaS: `openfaas-fn`).
    pub fn render_prometheus(&mut self, namespace: &str) -> String {
        render([self.metric_families(namespace)])
    }

    /// The cluster's metric families now (see the module docs).
    pub fn metric_families(&mut self, namespace: &str) -> Vec<MetricFamily> {
        let now = self.now;
        for r in &mut self.replicas {
            r.advance(now);
        }
        let fname = |f: usize| format!("{}.{namespace}", self.workflow.functions[f].name);
        let family = |name, kind, help| MetricFamily {
            name,
            kind,
            help,
            samples: Vec::new(),
        };
        let mut invocations = family(
            "gateway_function_invocation_total",
            "counter",
            "Function invocations by status code.",
        );
        let mut seconds = family(
            "gateway_functions_seconds",
            "histogram",
            "Function call latency through the gateway, seconds.",
        );
        for (f, runtime) in self.functions.iter().enumerate() {
            for (code, h) in &runtime.gateway.by_code {
                invocations.samples.push(format!(
                    "gateway_function_invocation_total{{code=\"{code}\",function_name=\"{}\"}} {}",
                    fname(f),
                    h.count
                ));
            }
            runtime.gateway.render_into(
                "gateway_functions_seconds",
                &format!("function_name=\"{}\"", fname(f)),
                &mut seconds.samples,
            );
        }
        let mut requests = family(
            "faasconf_workflow_request_duration_seconds",
            "histogram",
            "End-to-end workflow requests as the load generator sees them, seconds.",
        );
        self.requests.render_into(
            "faasconf_workflow_request_duration_seconds",
            &format!("workflow=\"{}\"", self.workflow.name),
            &mut requests.samples,
        );
        let mut families = vec![invocations, seconds, requests];

        let running: Vec<&crate::replica::Replica> = self
            .functions
            .iter()
            .flat_map(|rt| rt.replicas.iter())
            .map(|&r| &self.replicas[r as usize])
            .filter(|r| r.is_running())
            .collect();
        let container = |r: &crate::replica::Replica| {
            let name = &self.workflow.functions[r.function].name;
            format!(
                "container=\"{name}\",image=\"faasconf/twin-{name}:latest\",namespace=\"{namespace}\",pod=\"{}\"",
                r.pod
            )
        };
        let series: [ContainerSeries<'_>; 6] = [
            (
                "container_cpu_usage_seconds_total",
                "counter",
                "Cumulative CPU time consumed, seconds.",
                &|r| r.totals.cpu_seconds,
            ),
            (
                "container_cpu_cfs_periods_total",
                "counter",
                "Elapsed enforcement periods.",
                &|r| (r.totals.busy_seconds / CFS_PERIOD_SECONDS).floor(),
            ),
            (
                "container_cpu_cfs_throttled_periods_total",
                "counter",
                "Throttled enforcement periods.",
                &|r| (r.totals.throttled_seconds / CFS_PERIOD_SECONDS).floor(),
            ),
            (
                "container_memory_working_set_bytes",
                "gauge",
                "Current working set, bytes.",
                &|r| (r.working_set_now() * 1024.0 * 1024.0).round(),
            ),
            (
                "container_spec_memory_limit_bytes",
                "gauge",
                "Memory limit, bytes.",
                &|r| r.memory_limit_mib * 1024.0 * 1024.0,
            ),
            (
                "container_spec_cpu_quota",
                "gauge",
                "CPU quota per period, microseconds.",
                &|r| (r.cpu_cores * CFS_PERIOD_SECONDS * 1e6).round(),
            ),
        ];
        for (name, kind, help, get) in series {
            let mut f = family(name, kind, help);
            f.samples = running
                .iter()
                .map(|r| format!("{name}{{{}}} {}", container(r), value(get(r))))
                .collect();
            families.push(f);
        }
        let mut network = family(
            "container_network_receive_bytes_total",
            "counter",
            "Cumulative bytes received (pod network).",
        );
        network.samples = running
            .iter()
            .map(|r| format!("container_network_receive_bytes_total{{interface=\"eth0\",namespace=\"{namespace}\",pod=\"{}\"}} {}", r.pod, value(r.totals.network_rx_bytes)))
            .collect();
        families.push(network);
        families
    }
}

#[cfg(test)]
mod tests {
    use faasconf_core::catalog::builtin;

    use crate::{Twin, TwinOptions, Workload};

    #[test]
    fn exposition_carries_cluster_names_and_agrees_with_the_windows() {
        let w = builtin("parallel").unwrap();
        let config = w.config_from_actions(&vec![[0.5; 4]; w.len()]).unwrap();
        let mut twin = Twin::new(
            w,
            config,
            Workload::ClosedLoop { users: 10 },
            TwinOptions {
                window_seconds: 30.0,
                seed: 2,
            },
        )
        .unwrap();
        let windows: Vec<_> = (0..4).map(|_| twin.run_window()).collect();
        let text = twin.render_prometheus("openfaas-fn");
        for name in [
            "gateway_function_invocation_total{code=\"200\",function_name=\"resnet.openfaas-fn\"}",
            "gateway_functions_seconds_bucket{code=\"200\",function_name=\"starter.openfaas-fn\",le=\"+Inf\"}",
            "container_cpu_usage_seconds_total{container=\"resnet\"",
            "container_cpu_cfs_throttled_periods_total{",
            "container_memory_working_set_bytes{",
            "container_spec_memory_limit_bytes{container=\"starter\"",
            "container_network_receive_bytes_total{interface=\"eth0\",namespace=\"openfaas-fn\",pod=\"starter-0-0\"}",
        ] {
            assert!(text.contains(name), "missing {name}");
        }
        // Every call the windows counted at resnet is a gateway invocation of some code.
        let requests: u64 = windows.iter().map(|w| w.functions[4].requests).sum();
        let invocations: u64 = text
            .lines()
            .filter(|l| {
                l.starts_with("gateway_function_invocation_total{")
                    && l.contains("resnet.openfaas-fn")
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        // Calls still in flight at the end are counted by the windows but not yet answered.
        assert!(
            invocations <= requests && requests - invocations <= 10 * 4,
            "{invocations} vs {requests}"
        );
        // Histogram buckets are cumulative and end at the count.
        let buckets: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with("gateway_functions_seconds_bucket{code=\"200\",function_name=\"starter.openfaas-fn\""))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(buckets.windows(2).all(|p| p[0] <= p[1]));
        // The load generator's histogram counts exactly the requests the windows finished.
        let sample = |prefix: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(prefix))
                .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
                .sum()
        };
        let finished: u64 = windows.iter().map(|w| w.workflow.total_requests).sum();
        let successful: u64 = windows.iter().map(|w| w.workflow.successful_requests).sum();
        assert_eq!(
            sample("faasconf_workflow_request_duration_seconds_count{"),
            finished as f64
        );
        assert_eq!(
            sample(
                "faasconf_workflow_request_duration_seconds_count{code=\"200\",workflow=\"parallel\"}"
            ),
            successful as f64
        );
        let latency_sum: f64 = windows
            .iter()
            .map(|w| w.workflow.mean_latency_seconds * w.workflow.total_requests as f64)
            .sum();
        assert!(
            (sample("faasconf_workflow_request_duration_seconds_sum{") - latency_sum).abs()
                < 1e-6 * latency_sum,
            "sum of latencies"
        );
    }
}
