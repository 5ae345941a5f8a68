//! The actuator's own metrics (besides the twin's cluster metrics on the same endpoint).

use std::time::Instant;

use tonic::Status;

/// Registers help texts, so `/metrics` documents every series from the start.
pub fn describe() {
    metrics::describe_counter!("faasconf_rpc_requests_total", "RPCs answered, by method and gRPC code.");
    metrics::describe_histogram!("faasconf_rpc_duration_seconds", metrics::Unit::Seconds, "Time to answer an RPC (to the first message for streams).");
    metrics::describe_counter!("faasconf_actuator_applies_total", "ApplyConfig outcomes by workflow: applied, unchanged, dry_run, invalid, stale.");
    metrics::describe_counter!("faasconf_actuator_rollbacks_total", "Configurations rolled back after a partial failure.");
    metrics::describe_counter!("faasconf_actuator_windows_total", "Telemetry windows produced, by workflow.");
    metrics::describe_gauge!("faasconf_actuator_subscribers", "StreamTelemetry subscribers listening, by workflow.");
    metrics::counter!("faasconf_actuator_rollbacks_total").absolute(0);
}

/// Records one answered RPC.
pub fn observe<T>(method: &'static str, started: Instant, result: &Result<T, Status>) {
    let code = match result {
        Ok(_) => "OK".to_owned(),
        Err(status) => format!("{:?}", status.code()),
    };
    metrics::counter!("faasconf_rpc_requests_total", "service" => "actuator", "method" => method, "code" => code).increment(1);
    metrics::histogram!("faasconf_rpc_duration_seconds", "service" => "actuator", "method" => method).record(started.elapsed().as_secs_f64());
}
