//! Telemetry windows between `faasconf.v1.TelemetryWindow` and the domain's `WindowReport`:
//! the actuator sends them, the policy reads them (from its stream or a `RecommendConfig`).

use faasconf_core::telemetry::{FunctionWindow, WindowReport, WorkflowWindow};
use faasconf_core::{FieldError, Workflow};

use crate::convert::{config_from_proto, config_to_proto};
use crate::v1;

/// A window as a telemetry message, with the configuration it was measured under.
pub fn window_to_proto(workflow: &Workflow, w: &WindowReport) -> v1::TelemetryWindow {
    v1::TelemetryWindow {
        workflow: workflow.name.clone(),
        index: w.index,
        start_seconds: w.start_seconds,
        duration_seconds: w.duration_seconds,
        config_version: w.config_version,
        transient: w.transient,
        // A closed-loop generator's users; otherwise (a cluster's own traffic, Poisson on the
        // twin) the arrival rate measured over the window.
        load: Some(v1::Load {
            kind: Some(if w.users > 0 {
                v1::load::Kind::ConcurrentUsers(w.users)
            } else {
                v1::load::Kind::RequestsPerSecond(w.arrival_rate())
            }),
        }),
        workflow_metrics: Some(v1::WorkflowMetrics {
            mean_latency_seconds: w.workflow.mean_latency_seconds,
            p95_latency_seconds: w.workflow.p95_latency_seconds,
            successful_requests: w.workflow.successful_requests,
            total_requests: w.workflow.total_requests,
            success_ratio: w.workflow.success_ratio,
            throughput_rps: w.workflow.throughput_rps,
            cost: w.workflow.cost,
            rollout_stalled: w.workflow.rollout_stalled,
            arrivals: w.workflow.arrivals,
            mean_in_flight: w.workflow.mean_in_flight,
            missing_series: w.workflow.missing_series.clone(),
        }),
        functions: w
            .functions
            .iter()
            .map(|f| v1::FunctionMetrics {
                function: f.function.clone(),
                cpu_usage_percent: f.cpu_usage_percent,
                cpu_throttled_periods: f.cpu_throttled_periods,
                memory_percent_of_limit: f.memory_percent_of_limit,
                network_rx_bytes_per_second: f.network_rx_bytes_per_second,
                requests: f.requests,
                rejections: f.rejections,
                oom_failures: f.oom_failures,
                latency_p75_seconds: f.latency_p75_seconds,
                latency_p95_seconds: f.latency_p95_seconds,
                completed: f.completed,
                unavailable: f.unavailable,
                rejections_with_room: f.rejections_with_room,
                ready_replicas: f.ready_replicas,
            })
            .collect(),
        config: Some(config_to_proto(workflow, &w.config)),
    }
}

/// How many missing series a window may name.
pub const MAX_MISSING_SERIES: usize = 16;

/// A telemetry message validated against `workflow`: its name, one row per function in the
/// workflow's order, finite non-negative measurements, a valid configuration. `field` prefixes
/// the paths of every problem.
pub fn window_from_proto(
    workflow: &Workflow,
    w: &v1::TelemetryWindow,
    field: &str,
) -> Result<WindowReport, Vec<FieldError>> {
    use faasconf_core::limits::quoted;
    let mut errors = Vec::new();
    if !w.workflow.is_empty() && w.workflow != workflow.name {
        errors.push(FieldError::new(
            format!("{field}.workflow"),
            format!("{} is not {:?}", quoted(&w.workflow), workflow.name),
        ));
    }
    let users = match w.load.as_ref().and_then(|l| l.kind.as_ref()) {
        Some(v1::load::Kind::ConcurrentUsers(u)) => *u,
        // Open loop: no users. The window's own counts carry the measured arrival rate
        // (`WindowReport::arrival_rate`); the policy places it on the users scale by Little's law.
        Some(v1::load::Kind::RequestsPerSecond(r)) => {
            if !(r.is_finite() && *r >= 0.0) {
                errors.push(FieldError::new(
                    format!("{field}.load.requests_per_second"),
                    format!("{r} is not a finite non-negative rate"),
                ));
            }
            0
        }
        None => {
            errors.push(FieldError::new(format!("{field}.load"), "missing"));
            0
        }
    };
    let bad = |path: String, v: f64| {
        (!(v.is_finite() && v >= 0.0))
            .then(|| FieldError::new(path, format!("{v} is not a finite non-negative number")))
    };
    let metrics = w.workflow_metrics.clone().unwrap_or_default();
    for (name, v) in [
        ("mean_latency_seconds", metrics.mean_latency_seconds),
        ("p95_latency_seconds", metrics.p95_latency_seconds),
        ("success_ratio", metrics.success_ratio),
        ("throughput_rps", metrics.throughput_rps),
        ("cost", metrics.cost),
        ("mean_in_flight", metrics.mean_in_flight),
    ] {
        errors.extend(bad(format!("{field}.workflow_metrics.{name}"), v));
    }
    if metrics.missing_series.len() > MAX_MISSING_SERIES
        || metrics.missing_series.iter().any(|s| s.len() > 64)
    {
        errors.push(FieldError::new(
            format!("{field}.workflow_metrics.missing_series"),
            format!(
                "{} names: at most {MAX_MISSING_SERIES} of at most 64 bytes",
                metrics.missing_series.len()
            ),
        ));
    }
    if metrics.success_ratio > 1.0 {
        errors.push(FieldError::new(
            format!("{field}.workflow_metrics.success_ratio"),
            format!("{} is above 1", metrics.success_ratio),
        ));
    }
    if metrics.successful_requests > metrics.total_requests {
        errors.push(FieldError::new(
            format!("{field}.workflow_metrics.successful_requests"),
            format!(
                "{} is more than total_requests ({})",
                metrics.successful_requests, metrics.total_requests
            ),
        ));
    }
    errors.extend(bad(format!("{field}.duration_seconds"), w.duration_seconds));
    errors.extend(bad(format!("{field}.start_seconds"), w.start_seconds));
    if w.functions.len() != workflow.len() {
        errors.push(FieldError::new(
            format!("{field}.functions"),
            format!(
                "{} rows; the workflow has {} functions",
                w.functions.len(),
                workflow.len()
            ),
        ));
    }
    for (i, (f, spec)) in w.functions.iter().zip(&workflow.functions).enumerate() {
        let path = format!("{field}.functions[{i}]");
        if f.function != spec.name {
            errors.push(FieldError::new(
                format!("{path}.function"),
                format!(
                    "{} where {:?} was expected (workflow order)",
                    quoted(&f.function),
                    spec.name
                ),
            ));
        }
        for (name, v) in [
            ("cpu_usage_percent", f.cpu_usage_percent),
            ("cpu_throttled_periods", f.cpu_throttled_periods),
            ("memory_percent_of_limit", f.memory_percent_of_limit),
            ("network_rx_bytes_per_second", f.network_rx_bytes_per_second),
            ("latency_p75_seconds", f.latency_p75_seconds),
            ("latency_p95_seconds", f.latency_p95_seconds),
        ] {
            errors.extend(bad(format!("{path}.{name}"), v));
        }
    }
    let config = config_from_proto(workflow, w.config.as_ref(), &format!("{field}.config"));
    if let Err(e) = &config {
        errors.extend(e.iter().cloned());
    }
    let (Ok(config), true) = (config, errors.is_empty()) else {
        return Err(errors);
    };
    Ok(WindowReport {
        index: w.index,
        start_seconds: w.start_seconds,
        duration_seconds: w.duration_seconds,
        config_version: w.config_version,
        transient: w.transient,
        config,
        users,
        workflow: WorkflowWindow {
            mean_latency_seconds: metrics.mean_latency_seconds,
            p95_latency_seconds: metrics.p95_latency_seconds,
            successful_requests: metrics.successful_requests,
            total_requests: metrics.total_requests,
            success_ratio: metrics.success_ratio,
            throughput_rps: metrics.throughput_rps,
            cost: metrics.cost,
            rollout_stalled: metrics.rollout_stalled,
            arrivals: metrics.arrivals,
            mean_in_flight: metrics.mean_in_flight,
            missing_series: metrics.missing_series,
        },
        functions: w
            .functions
            .iter()
            .map(|f| FunctionWindow {
                function: f.function.clone(),
                cpu_usage_percent: f.cpu_usage_percent,
                cpu_throttled_periods: f.cpu_throttled_periods,
                memory_percent_of_limit: f.memory_percent_of_limit,
                network_rx_bytes_per_second: f.network_rx_bytes_per_second,
                requests: f.requests,
                rejections: f.rejections,
                rejections_with_room: f.rejections_with_room,
                oom_failures: f.oom_failures,
                unavailable: f.unavailable,
                completed: f.completed,
                latency_p75_seconds: f.latency_p75_seconds,
                latency_p95_seconds: f.latency_p95_seconds,
                ready_replicas: f.ready_replicas,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasconf_core::catalog::builtin;

    fn window(workflow: &Workflow) -> WindowReport {
        let config = workflow
            .config_from_actions(&vec![[0.4; 4]; workflow.len()])
            .unwrap();
        let functions = workflow
            .functions
            .iter()
            .enumerate()
            .map(|(i, f)| FunctionWindow {
                function: f.name.clone(),
                cpu_usage_percent: 10.0 * i as f64,
                cpu_throttled_periods: 3.0,
                memory_percent_of_limit: 41.5,
                network_rx_bytes_per_second: 1234.5,
                requests: 20,
                rejections: 2,
                rejections_with_room: 1,
                oom_failures: 0,
                unavailable: 1,
                completed: 17,
                latency_p75_seconds: 1.25,
                latency_p95_seconds: 2.5,
                ready_replicas: 2,
            })
            .collect();
        let w = WorkflowWindow {
            mean_latency_seconds: 9.5,
            p95_latency_seconds: 14.0,
            successful_requests: 18,
            total_requests: 20,
            success_ratio: 0.9,
            throughput_rps: 0.6,
            cost: 4.2,
            rollout_stalled: false,
            arrivals: 21,
            mean_in_flight: 6.25,
            missing_series: Vec::new(),
        };
        WindowReport {
            index: 7,
            start_seconds: 210.0,
            duration_seconds: 30.0,
            config_version: 3,
            transient: false,
            config,
            users: 20,
            workflow: w,
            functions,
        }
    }

    #[test]
    fn windows_round_trip() {
        let w = builtin("parallel").unwrap();
        let report = window(&w);
        assert_eq!(
            window_from_proto(&w, &window_to_proto(&w, &report), "current").unwrap(),
            report
        );
    }

    #[test]
    fn an_open_loop_window_carries_its_measured_rate_both_ways() {
        let w = builtin("parallel").unwrap();
        let mut report = window(&w);
        report.users = 0;
        let msg = window_to_proto(&w, &report);
        // The window's arrivals (21 in 30 s), not its completions (20), are the offered load.
        let rate = report.workflow.arrivals as f64 / report.duration_seconds;
        assert_eq!(rate, 0.7);
        assert_eq!(
            msg.load.and_then(|l| l.kind),
            Some(v1::load::Kind::RequestsPerSecond(rate))
        );
        let back = window_from_proto(&w, &msg, "current").unwrap();
        assert_eq!(back, report);
        assert!((back.arrival_rate() - rate).abs() < 1e-12);
        assert_eq!(back.in_flight(), 6.25);
        // A source that counted no arrivals: the completions stand in, Little's law gives the
        // requests in flight.
        report.workflow.arrivals = 0;
        report.workflow.mean_in_flight = 0.0;
        let back = window_from_proto(&w, &window_to_proto(&w, &report), "current").unwrap();
        assert!((back.arrival_rate() - 20.0 / 30.0).abs() < 1e-12);
        assert!((back.in_flight() - 20.0 / 30.0 * 9.5).abs() < 1e-12);
    }

    #[test]
    fn missing_series_are_carried_and_bounded() {
        let w = builtin("parallel").unwrap();
        let mut report = window(&w);
        report.workflow.missing_series = vec!["workflow_requests".into()];
        let back = window_from_proto(&w, &window_to_proto(&w, &report), "current").unwrap();
        assert!(!back.workflow.end_to_end_measured());
        let mut msg = window_to_proto(&w, &report);
        if let Some(m) = msg.workflow_metrics.as_mut() {
            m.missing_series = vec!["x".into(); MAX_MISSING_SERIES + 1];
        }
        let errors = window_from_proto(&w, &msg, "current").unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.field == "current.workflow_metrics.missing_series"),
            "{errors:?}"
        );
    }

    /// Asserts that `msg` is refused naming at least every field of `expected`.
    fn assert_named(w: &Workflow, msg: &v1::TelemetryWindow, expected: &[&str]) {
        let fields: Vec<String> = window_from_proto(w, msg, "current")
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        for e in expected {
            assert!(fields.iter().any(|f| f == e), "missing {e} in {fields:?}");
        }
    }

    #[test]
    fn bad_windows_name_every_field() {
        let w = builtin("parallel").unwrap();
        let mut msg = window_to_proto(&w, &window(&w));
        msg.workflow = "branch".into();
        msg.functions[1].function = "ghost".into();
        msg.functions[2].latency_p95_seconds = f64::NAN;
        msg.load = None;
        if let Some(c) = msg.config.as_mut() {
            c.functions[0].replicas = 99;
        }
        assert_named(
            &w,
            &msg,
            &[
                "current.workflow",
                "current.load",
                "current.functions[1].function",
                "current.functions[2].latency_p95_seconds",
                "current.config.starter.replicas",
            ],
        );
        msg = window_to_proto(&w, &window(&w));
        msg.load = Some(v1::Load {
            kind: Some(v1::load::Kind::RequestsPerSecond(f64::NAN)),
        });
        if let Some(m) = msg.workflow_metrics.as_mut() {
            m.p95_latency_seconds = f64::NAN;
            m.cost = f64::INFINITY;
            m.throughput_rps = -1.0;
            m.success_ratio = 1.5;
        }
        assert_named(
            &w,
            &msg,
            &[
                "current.load.requests_per_second",
                "current.workflow_metrics.p95_latency_seconds",
                "current.workflow_metrics.cost",
                "current.workflow_metrics.throughput_rps",
                "current.workflow_metrics.success_ratio",
            ],
        );
        msg = window_to_proto(&w, &window(&w));
        msg.functions.pop();
        assert_named(&w, &msg, &["current.functions"]);
    }
}
