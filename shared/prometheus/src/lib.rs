//! The `prometheus` telemetry source: one workflow's telemetry window, per function and end to
//! end, read with PromQL from a Prometheus HTTP API (`/api/v1/query`).
//!
//! What it reads (the templates are in [`queries`], configurable with the label names):
//! - the OpenFaaS gateway's `gateway_function_invocation_total` and `gateway_functions_seconds`
//!   (calls by status code: 429 = rejected at the concurrency limit, 500 = failed, 502/503 = no
//!   replica ready; latency quantiles of successful calls);
//! - cAdvisor's per-container CPU, throttling, working set and limit, and per-pod network (the
//!   Prometheus bundled with OpenFaaS CE does not scrape the kubelet: add a kubelet/cAdvisor scrape,
//!   e.g. kube-prometheus-stack);
//! - the load generator's end-to-end histogram `faasconf_workflow_request_duration_seconds`
//!   `{workflow, code}` (the twin exports it; on a cluster, the load generator or an ingress must).
//!
//! Counts come from `increase()` over the window, so Prometheus extrapolates them to the window's
//! edges; ratios (success ratio, mean latency) are unaffected by that.

pub mod queries;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use faasconf_core::Workflow;
use faasconf_core::telemetry::{FunctionWindow, WorkflowWindow};
use serde::Deserialize;

pub use queries::{Labels, Overrides, Queries};

/// Why a window could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is unusable (the field named).
    #[error("{field}: {message}")]
    Settings {
        /// The setting.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Prometheus could not be reached or did not answer in time.
    #[error("prometheus at {url}: {source}")]
    Http {
        /// The API URL.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// Prometheus refused or failed the query.
    #[error("query {name}: prometheus answered {status} {error_type}: {error}")]
    Query {
        /// Which template.
        name: &'static str,
        /// HTTP status.
        status: u16,
        /// Prometheus' `errorType`.
        error_type: String,
        /// Prometheus' `error`.
        error: String,
    },
    /// The answer was not the instant vector the template should give.
    #[error("query {name}: {message}")]
    Shape {
        /// Which template.
        name: &'static str,
        /// What was wrong with it.
        message: String,
    },
}

/// Where the source reads from and how.
#[derive(Debug, Clone)]
pub struct PrometheusSettings {
    /// Base URL of the Prometheus server (`http://prometheus.openfaas:9090`).
    pub url: String,
    /// Namespace of the functions.
    pub namespace: String,
    /// Label names.
    pub labels: Labels,
    /// PromQL templates.
    pub queries: Queries,
    /// Deadline of one query.
    pub timeout: Duration,
}

/// One window as measured through Prometheus.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// End-to-end figures (`cost` left 0: the caller knows the configuration).
    pub workflow: WorkflowWindow,
    /// Per-function figures, in workflow order.
    pub functions: Vec<FunctionWindow>,
}

/// The telemetry source.
#[derive(Debug, Clone)]
pub struct PrometheusSource {
    settings: PrometheusSettings,
    http: reqwest::Client,
    query_url: String,
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: String,
    #[serde(default)]
    error: String,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct Sample {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

/// Instant-vector samples as (labels, value); NaN and infinities as Prometheus sends them.
type Vector = Vec<(BTreeMap<String, String>, f64)>;

impl PrometheusSource {
    /// A source over `settings` (the URL and every template are checked here).
    pub fn new(settings: PrometheusSettings) -> Result<Self, Error> {
        let url = settings.url.trim_end_matches('/').to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::Settings {
                field: "prometheus url".into(),
                message: format!("{url:?} is not an http:// or https:// URL"),
            });
        }
        let q = &settings.queries;
        for (name, template) in [
            ("invocations", &q.invocations),
            ("function_latency_quantile", &q.function_latency_quantile),
            ("cpu_usage_percent", &q.cpu_usage_percent),
            ("cpu_throttled_periods", &q.cpu_throttled_periods),
            ("memory_percent_of_limit", &q.memory_percent_of_limit),
            (
                "network_rx_bytes_per_second",
                &q.network_rx_bytes_per_second,
            ),
            ("running_pods", &q.running_pods),
            ("workflow_requests", &q.workflow_requests),
            ("workflow_latency_sum", &q.workflow_latency_sum),
            ("workflow_latency_quantile", &q.workflow_latency_quantile),
        ] {
            let unknown = queries::unknown_placeholders(template);
            if !unknown.is_empty() {
                return Err(Error::Settings {
                    field: format!("queries.{name}"),
                    message: format!("unknown placeholders {unknown:?}"),
                });
            }
        }
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|source| Error::Http {
                url: url.clone(),
                source,
            })?;
        Ok(Self {
            query_url: format!("{url}/api/v1/query"),
            settings,
            http,
        })
    }

    /// Runs one instant query at `time`.
    async fn query(
        &self,
        name: &'static str,
        promql: String,
        time: SystemTime,
    ) -> Result<Vector, Error> {
        let at = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let timeout = format!("{}ms", self.settings.timeout.as_millis());
        let response = self
            .http
            .get(&self.query_url)
            .query(&[
                ("query", promql.as_str()),
                ("time", &format!("{at:.3}")),
                ("timeout", &timeout),
            ])
            .send()
            .await
            .map_err(|source| Error::Http {
                url: self.query_url.clone(),
                source,
            })?;
        let status = response.status().as_u16();
        let envelope: Envelope = response.json().await.map_err(|e| Error::Shape {
            name,
            message: format!("HTTP {status}, not a Prometheus API answer: {e}"),
        })?;
        if envelope.status != "success" {
            return Err(Error::Query {
                name,
                status,
                error_type: envelope.error_type,
                error: envelope.error,
            });
        }
        let data = envelope.data.ok_or_else(|| Error::Shape {
            name,
            message: "no data".into(),
        })?;
        if data.result_type != "vector" {
            return Err(Error::Shape {
                name,
                message: format!(
                    "a {} result where an instant vector belongs",
                    data.result_type
                ),
            });
        }
        let samples: Vec<Sample> =
            serde_json::from_value(data.result).map_err(|e| Error::Shape {
                name,
                message: e.to_string(),
            })?;
        Ok(samples
            .into_iter()
            .map(|s| (s.metric, parse_value(&s.value.1)))
            .collect())
    }

    /// The window of `duration` ending at `end` for `workflow`.
    pub async fn window(
        &self,
        workflow: &Workflow,
        end: SystemTime,
        duration: Duration,
    ) -> Result<Measured, Error> {
        let functions: Vec<String> = workflow.functions.iter().map(|f| f.name.clone()).collect();
        let s = &self.settings;
        let b = queries::Bindings {
            labels: &s.labels,
            namespace: &s.namespace,
            workflow: &workflow.name,
            functions: &functions,
            window: duration,
        };
        let q = &s.queries;
        let r = |template: &str, quantile: f64| queries::render(template, &b, quantile);
        let (
            invocations,
            p75,
            p95,
            cpu,
            throttled,
            memory,
            network,
            pods,
            requests,
            latency_sum,
            e2e_p95,
        ) = tokio::try_join!(
            self.query("invocations", r(&q.invocations, 0.0), end),
            self.query(
                "function_latency_quantile",
                r(&q.function_latency_quantile, 0.75),
                end
            ),
            self.query(
                "function_latency_quantile",
                r(&q.function_latency_quantile, 0.95),
                end
            ),
            self.query("cpu_usage_percent", r(&q.cpu_usage_percent, 0.0), end),
            self.query(
                "cpu_throttled_periods",
                r(&q.cpu_throttled_periods, 0.0),
                end
            ),
            self.query(
                "memory_percent_of_limit",
                r(&q.memory_percent_of_limit, 0.0),
                end
            ),
            self.query(
                "network_rx_bytes_per_second",
                r(&q.network_rx_bytes_per_second, 0.0),
                end
            ),
            self.query("running_pods", r(&q.running_pods, 0.0), end),
            self.query("workflow_requests", r(&q.workflow_requests, 0.0), end),
            self.query("workflow_latency_sum", r(&q.workflow_latency_sum, 0.0), end),
            self.query(
                "workflow_latency_quantile",
                r(&q.workflow_latency_quantile, 0.95),
                end
            ),
        )?;
        let gateway_name = |f: &str| format!("{f}.{}", s.namespace);
        let by_label = |v: &Vector, label: &str, value: &str| -> f64 {
            v.iter()
                .filter(|(m, _)| m.get(label).map(String::as_str) == Some(value))
                .map(|(_, x)| finite(*x))
                .sum()
        };
        let per_function: Vec<FunctionWindow> = functions
            .iter()
            .map(|f| {
                let calls: Vec<(u16, f64)> = invocations
                    .iter()
                    .filter(|(m, _)| m.get(&s.labels.function) == Some(&gateway_name(f)))
                    .map(|(m, x)| {
                        (
                            m.get("code").and_then(|c| c.parse().ok()).unwrap_or(0),
                            finite(*x),
                        )
                    })
                    .collect();
                let count = |keep: &dyn Fn(u16) -> bool| {
                    calls
                        .iter()
                        .filter(|(c, _)| keep(*c))
                        .map(|(_, x)| x)
                        .sum::<f64>()
                        .round() as u64
                };
                FunctionWindow {
                    function: f.clone(),
                    cpu_usage_percent: by_label(&cpu, &s.labels.container, f),
                    cpu_throttled_periods: by_label(&throttled, &s.labels.container, f).round(),
                    memory_percent_of_limit: by_label(&memory, &s.labels.container, f),
                    network_rx_bytes_per_second: network
                        .iter()
                        .filter(|(m, _)| {
                            m.get(&s.labels.pod)
                                .is_some_and(|p| pod_function(p, &functions) == Some(f.as_str()))
                        })
                        .map(|(_, x)| finite(*x))
                        .sum(),
                    requests: count(&|_| true),
                    rejections: count(&|c| c == 429),
                    rejections_with_room: 0,
                    oom_failures: count(&|c| c == 500),
                    unavailable: count(&|c| c == 502 || c == 503),
                    completed: count(&|c| (200..300).contains(&c)),
                    latency_p75_seconds: by_label(&p75, &s.labels.function, &gateway_name(f)),
                    latency_p95_seconds: by_label(&p95, &s.labels.function, &gateway_name(f)),
                    ready_replicas: by_label(&pods, &s.labels.container, f).round() as u32,
                }
            })
            .collect();
        let entry_calls = per_function
            .iter()
            .find(|f| f.function == workflow.entry())
            .map(|f| f.requests);
        let mut workflow_window =
            end_to_end(&requests, &latency_sum, &e2e_p95, entry_calls, duration);
        for (name, v) in [
            ("invocations", &invocations),
            ("cpu_usage_percent", &cpu),
            ("memory_percent_of_limit", &memory),
            ("network_rx_bytes_per_second", &network),
            ("running_pods", &pods),
        ] {
            if v.is_empty() {
                workflow_window.missing_series.push(name.to_owned());
            }
        }
        Ok(Measured {
            workflow: workflow_window,
            functions: per_function,
        })
    }
}

/// The end-to-end figures from the workflow histogram's series. Where the histogram has no
/// series at all (no orchestrator exports it), the load is still measured: the entry function's
/// gateway calls count the requests (arrivals, in steady state), while latency and success stay
/// unknown (0) and the window lists the missing series, so it is never read as a pass.
fn end_to_end(
    requests: &Vector,
    latency_sum: &Vector,
    e2e_p95: &Vector,
    entry_calls: Option<u64>,
    duration: Duration,
) -> WorkflowWindow {
    let seconds = duration.as_secs_f64().max(1e-9);
    if requests.is_empty() {
        let calls = entry_calls.unwrap_or(0);
        return WorkflowWindow {
            mean_latency_seconds: 0.0,
            p95_latency_seconds: 0.0,
            successful_requests: 0,
            total_requests: calls,
            success_ratio: 0.0,
            throughput_rps: 0.0,
            cost: 0.0,
            rollout_stalled: false,
            arrivals: calls,
            mean_in_flight: 0.0,
            missing_series: [
                "workflow_requests",
                "workflow_latency_sum",
                "workflow_latency_quantile",
            ]
            .map(str::to_owned)
            .to_vec(),
        };
    }
    let total: f64 = requests.iter().map(|(_, x)| finite(*x)).sum();
    let successful: f64 = requests
        .iter()
        .filter(|(m, _)| m.get("code").is_some_and(|c| c.starts_with('2')))
        .map(|(_, x)| finite(*x))
        .sum();
    let latency_sum: f64 = latency_sum.iter().map(|(_, x)| finite(*x)).sum();
    WorkflowWindow {
        mean_latency_seconds: if total > 0.0 {
            latency_sum / total
        } else {
            0.0
        },
        p95_latency_seconds: e2e_p95.first().map(|(_, x)| finite(*x)).unwrap_or(0.0),
        successful_requests: successful.round() as u64,
        total_requests: total.round() as u64,
        success_ratio: if total > 0.0 { successful / total } else { 0.0 },
        throughput_rps: successful / seconds,
        cost: 0.0,
        // Prometheus cannot tell; the actuator knows its rollouts and sets it.
        rollout_stalled: false,
        // The histogram counts requests as they finish: the arrivals, in steady state.
        arrivals: total.round() as u64,
        // Little's law: arrival rate x mean latency = the latency sum over the window's length.
        mean_in_flight: latency_sum / seconds,
        missing_series: Vec::new(),
    }
}

/// Prometheus' text for a sample value (`"1.5"`, `"NaN"`, `"+Inf"`).
fn parse_value(text: &str) -> f64 {
    match text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().unwrap_or(f64::NAN),
    }
}

/// No data (NaN from an empty histogram) or no bound reads as 0.
fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// The function a pod belongs to: the longest function name the pod name starts with, followed by
/// a dash (`resnet-7c9f-x2` -> `resnet`).
pub fn pod_function<'a>(pod: &str, functions: &'a [String]) -> Option<&'a str> {
    functions
        .iter()
        .filter(|f| {
            pod.strip_prefix(f.as_str())
                .is_some_and(|rest| rest.starts_with('-'))
        })
        .max_by_key(|f| f.len())
        .map(String::as_str)
}

#[cfg(test)]
mod tests;
