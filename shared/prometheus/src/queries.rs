//! The PromQL templates the source runs, and the names they are filled with.
//!
//! Placeholders: `${window}` (the window as a range, e.g. `30000ms`), `${quantile}`,
//! `${namespace}`, `${workflow}`, `${gateway_functions}` (regex of the gateway's
//! `<fn>.<namespace>` names), `${containers}` (regex of the function names), and the label names
//! `${function_label}`, `${container_label}`, `${pod_label}`, `${namespace_label}`,
//! `${workflow_label}`. Every template is configurable; the defaults follow the OpenFaaS gateway,
//! cAdvisor and the load generator's histogram.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Label names, for clusters that relabel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Labels {
    /// The gateway's function label (values `<fn>.<namespace>`).
    pub function: String,
    /// cAdvisor's container label.
    pub container: String,
    /// cAdvisor's pod label.
    pub pod: String,
    /// cAdvisor's namespace label.
    pub namespace: String,
    /// The load generator's workflow label.
    pub workflow: String,
}

impl Default for Labels {
    fn default() -> Self {
        Self {
            function: "function_name".into(),
            container: "container".into(),
            pod: "pod".into(),
            namespace: "namespace".into(),
            workflow: "workflow".into(),
        }
    }
}

/// One PromQL template per figure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Queries {
    /// Calls per function and status code in the window (by function label and `code`).
    pub invocations: String,
    /// A latency quantile of successful calls per function (by function label).
    pub function_latency_quantile: String,
    /// CPU usage, percent of one core, averaged over pods (by container).
    pub cpu_usage_percent: String,
    /// CFS throttled periods in the window, summed over pods (by container).
    pub cpu_throttled_periods: String,
    /// Working set, percent of the limit, averaged over pods and the window (by container).
    pub memory_percent_of_limit: String,
    /// Received bytes per second (by pod; pods are mapped to functions by name).
    pub network_rx_bytes_per_second: String,
    /// Pods running now (by container).
    pub running_pods: String,
    /// End-to-end requests finished in the window (by `code`).
    pub workflow_requests: String,
    /// Sum of end-to-end latencies in the window, seconds.
    pub workflow_latency_sum: String,
    /// An end-to-end latency quantile.
    pub workflow_latency_quantile: String,
}

const CADVISOR: &str =
    r#"${namespace_label}="${namespace}", ${container_label}=~"${containers}", image!="""#;

impl Default for Queries {
    fn default() -> Self {
        let c = CADVISOR;
        Self {
            invocations: r#"sum by (${function_label}, code) (increase(gateway_function_invocation_total{${function_label}=~"${gateway_functions}"}[${window}]))"#.into(),
            function_latency_quantile: r#"histogram_quantile(${quantile}, sum by (le, ${function_label}) (increase(gateway_functions_seconds_bucket{${function_label}=~"${gateway_functions}", code="200"}[${window}])))"#.into(),
            cpu_usage_percent: format!("100 * avg by (${{container_label}}) (rate(container_cpu_usage_seconds_total{{{c}}}[${{window}}]))"),
            cpu_throttled_periods: format!("sum by (${{container_label}}) (increase(container_cpu_cfs_throttled_periods_total{{{c}}}[${{window}}]))"),
            memory_percent_of_limit: format!(
                "100 * avg by (${{container_label}}) (avg_over_time(container_memory_working_set_bytes{{{c}}}[${{window}}]) / avg_over_time(container_spec_memory_limit_bytes{{{c}}}[${{window}}]))"
            ),
            network_rx_bytes_per_second: r#"sum by (${pod_label}) (rate(container_network_receive_bytes_total{${namespace_label}="${namespace}"}[${window}]))"#.into(),
            running_pods: format!("count by (${{container_label}}) (container_spec_memory_limit_bytes{{{c}}})"),
            workflow_requests: r#"sum by (code) (increase(faasconf_workflow_request_duration_seconds_count{${workflow_label}="${workflow}"}[${window}]))"#.into(),
            workflow_latency_sum: r#"sum(increase(faasconf_workflow_request_duration_seconds_sum{${workflow_label}="${workflow}"}[${window}]))"#.into(),
            workflow_latency_quantile: r#"histogram_quantile(${quantile}, sum by (le) (increase(faasconf_workflow_request_duration_seconds_bucket{${workflow_label}="${workflow}"}[${window}])))"#.into(),
        }
    }
}

/// The values placeholders are filled with for one workflow and window.
#[derive(Debug, Clone)]
pub struct Bindings<'a> {
    /// Label names.
    pub labels: &'a Labels,
    /// Functions' namespace.
    pub namespace: &'a str,
    /// Workflow name.
    pub workflow: &'a str,
    /// Function names.
    pub functions: &'a [String],
    /// Window length.
    pub window: Duration,
}

/// Escapes a literal for a PromQL regex inside a double-quoted string.
fn regex_literal(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push_str("\\\\");
        } else if c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `template` with every placeholder filled (`quantile` for the quantile templates).
pub fn render(template: &str, b: &Bindings<'_>, quantile: f64) -> String {
    let gateway = b
        .functions
        .iter()
        .map(|f| regex_literal(&format!("{f}.{}", b.namespace)))
        .collect::<Vec<_>>()
        .join("|");
    let containers = b
        .functions
        .iter()
        .map(|f| regex_literal(f))
        .collect::<Vec<_>>()
        .join("|");
    let pairs = [
        ("${window}", format!("{}ms", b.window.as_millis().max(1))),
        ("${quantile}", format!("{quantile}")),
        ("${namespace}", b.namespace.to_owned()),
        ("${workflow}", b.workflow.to_owned()),
        ("${gateway_functions}", gateway),
        ("${containers}", containers),
        ("${function_label}", b.labels.function.clone()),
        ("${container_label}", b.labels.container.clone()),
        ("${pod_label}", b.labels.pod.clone()),
        ("${namespace_label}", b.labels.namespace.clone()),
        ("${workflow_label}", b.labels.workflow.clone()),
    ];
    pairs
        .iter()
        .fold(template.to_owned(), |q, (k, v)| q.replace(k, v))
}

/// Placeholders of `template` that [`render`] does not know (a typo would otherwise reach
/// Prometheus as text).
pub fn unknown_placeholders(template: &str) -> Vec<String> {
    const KNOWN: [&str; 11] = [
        "window",
        "quantile",
        "namespace",
        "workflow",
        "gateway_functions",
        "containers",
        "function_label",
        "container_label",
        "pod_label",
        "namespace_label",
        "workflow_label",
    ];
    let mut unknown = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            unknown.push(after.to_owned());
            break;
        };
        if !KNOWN.contains(&&after[..end]) {
            unknown.push(after[..end].to_owned());
        }
        rest = &after[end + 1..];
    }
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_render_to_plain_promql() {
        let labels = Labels::default();
        let functions = vec!["resnet".to_owned(), "img.resize".to_owned()];
        let b = Bindings {
            labels: &labels,
            namespace: "openfaas-fn",
            workflow: "parallel",
            functions: &functions,
            window: Duration::from_secs(30),
        };
        let q = render(&Queries::default().invocations, &b, 0.0);
        assert_eq!(
            q,
            r#"sum by (function_name, code) (increase(gateway_function_invocation_total{function_name=~"resnet\\.openfaas-fn|img\\.resize\\.openfaas-fn"}[30000ms]))"#
        );
        let q = render(&Queries::default().cpu_usage_percent, &b, 0.0);
        assert_eq!(
            q,
            r#"100 * avg by (container) (rate(container_cpu_usage_seconds_total{namespace="openfaas-fn", container=~"resnet|img\\.resize", image!=""}[30000ms]))"#
        );
        let q = render(&Queries::default().workflow_latency_quantile, &b, 0.95);
        assert!(q.starts_with("histogram_quantile(0.95, "), "{q}");
        let d = Queries::default();
        for t in [
            &d.invocations,
            &d.function_latency_quantile,
            &d.cpu_usage_percent,
            &d.cpu_throttled_periods,
            &d.memory_percent_of_limit,
            &d.network_rx_bytes_per_second,
            &d.running_pods,
            &d.workflow_requests,
            &d.workflow_latency_sum,
            &d.workflow_latency_quantile,
        ] {
            assert!(unknown_placeholders(t).is_empty(), "{t}");
            assert!(!render(t, &b, 0.5).contains("${"), "{t}");
        }
    }

    #[test]
    fn typos_in_templates_are_found() {
        assert_eq!(
            unknown_placeholders("rate(x{a=\"${namespce}\"}[${window}]) ${oops"),
            ["namespce", "oops"]
        );
    }
}

/// What an overrides file (`--prometheus-queries`, YAML or JSON) holds: label names and
/// templates, each defaulting to the built-in one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Overrides {
    /// Label names.
    pub labels: Labels,
    /// Templates.
    pub queries: Queries,
}

impl Overrides {
    /// Parses an overrides file's text (YAML, of which JSON is a subset); the error names the
    /// key and line.
    pub fn parse(text: &str) -> Result<Self, crate::Error> {
        serde_yaml_ng::from_str(text).map_err(|e| crate::Error::Settings {
            field: "overrides".into(),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod fuzz {
    use faasconf_core::testing::{cases, edited};
    use proptest::prelude::*;

    use super::Overrides;
    use crate::{PrometheusSettings, PrometheusSource};

    const FILE: &str = r#"
labels:
  function: fn
  workflow: app
queries:
  workflow_requests: 'sum by (code) (increase(req_total{${workflow_label}="${workflow}"}[${window}]))'
  running_pods: 'count by (${container_label}) (up{${namespace_label}="${namespace}"})'
"#;

    fn text() -> impl Strategy<Value = String> {
        let insert = prop_oneof![
            Just("${".to_owned()),
            Just("}".to_owned()),
            Just("${nope}".to_owned()),
            Just("\n  unknown: x\n".to_owned()),
            Just(": [".to_owned()),
            ".{0,6}",
        ];
        edited(FILE.to_owned(), insert, 5)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(256), failure_persistence: None, ..ProptestConfig::default() })]

        /// Edited or arbitrary overrides files: refused naming the key (or the template with an
        /// unknown placeholder), or a source is built; never a panic.
        #[test]
        fn fuzz_override_files(text in text()) {
            match Overrides::parse(&text) {
                Ok(o) => {
                    let settings = PrometheusSettings {
                        url: "http://127.0.0.1:9".into(),
                        namespace: "openfaas-fn".into(),
                        labels: o.labels,
                        queries: o.queries,
                        timeout: std::time::Duration::from_secs(1),
                    };
                    if let Err(e) = PrometheusSource::new(settings) {
                        prop_assert!(e.to_string().starts_with("queries.") || e.to_string().starts_with("labels"), "{e}");
                    }
                }
                Err(e) => prop_assert!(e.to_string().starts_with("overrides: "), "{e}"),
            }
        }
    }
}
