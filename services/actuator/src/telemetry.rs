//! Workloads from `faasconf.v1` messages (the service edge); windows convert in `faasconf-proto`.

use faasconf_core::FieldError;
use faasconf_proto::v1;
pub use faasconf_proto::window::window_to_proto;
use faasconf_twin::Workload;

/// The workload of a `SetWorkloadRequest`, validated; errors name the field.
pub fn workload_from_proto(request: &v1::SetWorkloadRequest) -> Result<Workload, Vec<FieldError>> {
    use v1::set_workload_request::Workload as W;
    let workload = match &request.workload {
        None => {
            return Err(vec![FieldError::new(
                "workload",
                "missing: give concurrent_users, requests_per_second or trace",
            )]);
        }
        Some(W::ConcurrentUsers(users)) => Workload::ClosedLoop { users: *users },
        Some(W::RequestsPerSecond(rps)) => Workload::Poisson {
            requests_per_second: *rps,
        },
        Some(W::Trace(t)) => Workload::Trace {
            per_minute: t.per_minute.clone(),
            min_users: t.min_users,
            max_users: t.max_users,
        },
    };
    workload.validate().map_err(|e| e.field_errors().to_vec())?;
    Ok(workload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_workloads_name_their_field() {
        let req = |w| v1::SetWorkloadRequest {
            workflow: "parallel".into(),
            workload: w,
        };
        assert_eq!(
            workload_from_proto(&req(None)).unwrap_err()[0].field,
            "workload"
        );
        let zero = req(Some(v1::set_workload_request::Workload::ConcurrentUsers(0)));
        assert_eq!(
            workload_from_proto(&zero).unwrap_err()[0].field,
            "workload.users"
        );
        let nan = req(Some(v1::set_workload_request::Workload::RequestsPerSecond(
            f64::NAN,
        )));
        assert_eq!(
            workload_from_proto(&nan).unwrap_err()[0].field,
            "workload.requests_per_second"
        );
        let ok = req(Some(v1::set_workload_request::Workload::ConcurrentUsers(
            12,
        )));
        assert_eq!(
            workload_from_proto(&ok).unwrap(),
            Workload::ClosedLoop { users: 12 }
        );
    }
}
