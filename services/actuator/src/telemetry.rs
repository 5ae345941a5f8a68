//! Twin windows and workloads as `faasconf.v1` messages (the service edge).

use faasconf_core::{FieldError, Workflow};
use faasconf_proto::convert::config_to_proto;
use faasconf_proto::v1;
use faasconf_twin::{WindowReport, Workload};

/// A twin window as a telemetry message, with the configuration it was measured under.
pub fn window_to_proto(workflow: &Workflow, w: &WindowReport) -> v1::TelemetryWindow {
    v1::TelemetryWindow {
        workflow: workflow.name.clone(),
        index: w.index,
        start_seconds: w.start_seconds,
        duration_seconds: w.duration_seconds,
        config_version: w.config_version,
        transient: w.transient,
        load: Some(v1::Load { kind: Some(v1::load::Kind::ConcurrentUsers(w.users)) }),
        workflow_metrics: Some(v1::WorkflowMetrics {
            mean_latency_seconds: w.workflow.mean_latency_seconds,
            p95_latency_seconds: w.workflow.p95_latency_seconds,
            successful_requests: w.workflow.successful_requests,
            total_requests: w.workflow.total_requests,
            success_ratio: w.workflow.success_ratio,
            throughput_rps: w.workflow.throughput_rps,
            cost: w.workflow.cost,
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

/// The workload of a `SetWorkloadRequest`, validated; errors name the field.
pub fn workload_from_proto(request: &v1::SetWorkloadRequest) -> Result<Workload, Vec<FieldError>> {
    use v1::set_workload_request::Workload as W;
    let workload = match &request.workload {
        None => return Err(vec![FieldError::new("workload", "missing: give concurrent_users, requests_per_second or trace")]),
        Some(W::ConcurrentUsers(users)) => Workload::ClosedLoop { users: *users },
        Some(W::RequestsPerSecond(rps)) => Workload::Poisson { requests_per_second: *rps },
        Some(W::Trace(t)) => Workload::Trace { per_minute: t.per_minute.clone(), min_users: t.min_users, max_users: t.max_users },
    };
    workload.validate().map_err(|e| e.field_errors().to_vec())?;
    Ok(workload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_workloads_name_their_field() {
        let req = |w| v1::SetWorkloadRequest { workflow: "parallel".into(), workload: w };
        assert_eq!(workload_from_proto(&req(None)).unwrap_err()[0].field, "workload");
        let zero = req(Some(v1::set_workload_request::Workload::ConcurrentUsers(0)));
        assert_eq!(workload_from_proto(&zero).unwrap_err()[0].field, "workload.users");
        let nan = req(Some(v1::set_workload_request::Workload::RequestsPerSecond(f64::NAN)));
        assert_eq!(workload_from_proto(&nan).unwrap_err()[0].field, "workload.requests_per_second");
        let ok = req(Some(v1::set_workload_request::Workload::ConcurrentUsers(12)));
        assert_eq!(workload_from_proto(&ok).unwrap(), Workload::ClosedLoop { users: 12 });
    }
}
