//! The actuator's own metrics (besides the twin's cluster metrics on the same endpoint).

/// Registers help texts, so `/metrics` documents every series from the start, and starts the
/// error counters of every managed workflow at zero (dashboards see rates of zero, not gaps).
pub fn describe(workflows: &[faasconf_core::Workflow]) {
    metrics::describe_counter!(
        "faasconf_actuator_telemetry_errors_total",
        "Windows the kubernetes backend could not read from Prometheus, by workflow."
    );
    for workflow in workflows {
        for counter in [
            "faasconf_actuator_telemetry_errors_total",
            "faasconf_actuator_rollbacks_total",
            "faasconf_actuator_foreign_changes_total",
        ] {
            metrics::counter!(counter, "workflow" => workflow.name.clone()).absolute(0);
        }
    }
    metrics::describe_counter!(
        "faasconf_actuator_foreign_changes_total",
        "Configurations the kubernetes backend found changed outside the actuator (kubectl, faas-cli), each a new version, by workflow."
    );
    metrics::describe_counter!(
        "faasconf_actuator_applies_total",
        "ApplyConfig outcomes by workflow: applied, unchanged, dry_run, invalid, stale, failed (rolled back)."
    );
    metrics::describe_counter!(
        "faasconf_actuator_rollbacks_total",
        "Functions re-applied at their previous configuration after a failed apply, by workflow and outcome (ok, failed)."
    );
    metrics::describe_counter!(
        "faasconf_actuator_windows_total",
        "Telemetry windows produced, by workflow."
    );
    metrics::describe_gauge!(
        "faasconf_actuator_subscribers",
        "StreamTelemetry subscribers listening, by workflow."
    );
    metrics::describe_gauge!(
        "faasconf_actuator_function_config",
        "The configuration in force at the end of the latest window, by workflow, function and knob (cpu_millis, memory_mib, replicas, concurrency)."
    );
    metrics::describe_gauge!(
        "faasconf_actuator_window_latency_seconds",
        metrics::Unit::Seconds,
        "End-to-end latency of the latest window, by workflow and statistic (mean, p95)."
    );
    metrics::describe_gauge!(
        "faasconf_actuator_window_success_ratio",
        "Share of the latest window's requests that succeeded, by workflow."
    );
    metrics::describe_gauge!(
        "faasconf_actuator_window_cost",
        "Resource cost of the latest window's configuration, by workflow."
    );
}

/// Counts a telemetry window and exports its figures and the configuration in force.
pub fn record_window(
    workflow: &faasconf_core::Workflow,
    report: &faasconf_core::telemetry::WindowReport,
) {
    let name = workflow.name.clone();
    metrics::counter!("faasconf_actuator_windows_total", "workflow" => name.clone()).increment(1);
    let w = &report.workflow;
    for (statistic, value) in [
        ("mean", w.mean_latency_seconds),
        ("p95", w.p95_latency_seconds),
    ] {
        metrics::gauge!("faasconf_actuator_window_latency_seconds", "workflow" => name.clone(), "statistic" => statistic).set(value);
    }
    metrics::gauge!("faasconf_actuator_window_success_ratio", "workflow" => name.clone())
        .set(w.success_ratio);
    metrics::gauge!("faasconf_actuator_window_cost", "workflow" => name.clone()).set(w.cost);
    for (spec, config) in workflow.functions.iter().zip(&report.config.0) {
        for knob in faasconf_core::Knob::ALL {
            metrics::gauge!("faasconf_actuator_function_config", "workflow" => name.clone(), "function" => spec.name.clone(), "knob" => knob.name())
                .set(f64::from(config.get(knob)));
        }
    }
}
