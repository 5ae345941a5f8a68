//! The actuator's own metrics (besides the twin's cluster metrics on the same endpoint).

/// Registers help texts, so `/metrics` documents every series from the start.
pub fn describe() {
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
    metrics::counter!("faasconf_actuator_rollbacks_total").absolute(0);
}
