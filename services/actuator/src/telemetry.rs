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
    check_limits(&workload, "")?;
    workload.validate().map_err(|e| {
        // The twin names its own fields; the caller sent the request's.
        e.field_errors()
            .iter()
            .map(|f| FieldError::new(request_field(&f.field), f.message.clone()))
            .collect::<Vec<_>>()
    })?;
    Ok(workload)
}

/// The `SetWorkloadRequest` field of a twin workload field (`workload.users` ->
/// `concurrent_users`).
fn request_field(twin_field: &str) -> String {
    let field = twin_field.strip_prefix("workload.").unwrap_or(twin_field);
    match field {
        "users" => "concurrent_users".to_owned(),
        "requests_per_second" => field.to_owned(),
        other => format!("trace.{other}"),
    }
}

/// Checks a workload against the actuator's limits (`faasconf_core::limits`): the twin must
/// simulate each window well inside the window's own length. `prefix` names the fields (the
/// request's, or a flag's).
pub fn check_limits(workload: &Workload, prefix: &str) -> Result<(), Vec<FieldError>> {
    use faasconf_core::limits::{MAX_REQUESTS_PER_SECOND, MAX_TRACE_MINUTES, MAX_USERS};
    let error = match workload {
        Workload::ClosedLoop { users } if *users > MAX_USERS => Some((
            "concurrent_users",
            format!("{users} is over the limit of {MAX_USERS}"),
        )),
        Workload::Poisson {
            requests_per_second: r,
        } if *r > MAX_REQUESTS_PER_SECOND => Some((
            "requests_per_second",
            format!("{r} is over the limit of {MAX_REQUESTS_PER_SECOND}"),
        )),
        Workload::Trace { max_users, .. } if *max_users > MAX_USERS => Some((
            "trace.max_users",
            format!("{max_users} is over the limit of {MAX_USERS}"),
        )),
        Workload::Trace { per_minute, .. } if per_minute.len() > MAX_TRACE_MINUTES => Some((
            "trace.per_minute",
            format!(
                "{} minutes are over the limit of {MAX_TRACE_MINUTES}",
                per_minute.len()
            ),
        )),
        _ => None,
    };
    match error {
        None => Ok(()),
        Some((field, message)) => Err(vec![FieldError::new(format!("{prefix}{field}"), message)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    mod fuzz {
        use faasconf_core::testing::cases;
        use proptest::prelude::*;

        use super::*;

        fn rate() -> impl Strategy<Value = f64> {
            prop_oneof![
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(0.0),
                -10.0..2000.0f64,
                any::<f64>(),
            ]
        }

        fn request() -> impl Strategy<Value = v1::SetWorkloadRequest> {
            use v1::set_workload_request::Workload as W;
            let workload = prop_oneof![
                Just(None),
                any::<u32>().prop_map(|u| Some(W::ConcurrentUsers(u))),
                (0u32..3000).prop_map(|u| Some(W::ConcurrentUsers(u))),
                rate().prop_map(|r| Some(W::RequestsPerSecond(r))),
                (
                    prop::collection::vec(rate(), 0..50),
                    any::<u32>(),
                    prop_oneof![any::<u32>(), 0u32..2000]
                )
                    .prop_map(|(per_minute, min_users, max_users)| {
                        Some(W::Trace(v1::TraceWorkload {
                            per_minute,
                            min_users,
                            max_users,
                        }))
                    }),
            ];
            workload.prop_map(|workload| v1::SetWorkloadRequest {
                workflow: "parallel".into(),
                workload,
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: cases(256), failure_persistence: None, ..ProptestConfig::default() })]

            /// Any workload a caller sends: refused naming a request field, or within every
            /// limit and valid for the twin.
            #[test]
            fn fuzz_workloads_are_refused_or_within_limits(request in request()) {
                use faasconf_core::limits::{MAX_REQUESTS_PER_SECOND, MAX_TRACE_MINUTES, MAX_USERS};
                match workload_from_proto(&request) {
                    Ok(w) => {
                        prop_assert!(w.validate().is_ok());
                        match &w {
                            Workload::ClosedLoop { users } => prop_assert!((1..=MAX_USERS).contains(users)),
                            Workload::Poisson { requests_per_second: r } => prop_assert!(*r > 0.0 && *r <= MAX_REQUESTS_PER_SECOND),
                            Workload::Trace { per_minute, max_users, .. } => {
                                prop_assert!(*max_users <= MAX_USERS && per_minute.len() <= MAX_TRACE_MINUTES);
                            }
                        }
                    }
                    Err(errors) => {
                        prop_assert!(!errors.is_empty());
                        for e in &errors {
                            prop_assert!(
                                ["workload", "concurrent_users", "requests_per_second"].contains(&e.field.as_str())
                                    || e.field.starts_with("trace."),
                                "{e}"
                            );
                        }
                    }
                }
            }
        }
    }

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
            "concurrent_users"
        );
        let nan = req(Some(v1::set_workload_request::Workload::RequestsPerSecond(
            f64::NAN,
        )));
        assert_eq!(
            workload_from_proto(&nan).unwrap_err()[0].field,
            "requests_per_second"
        );
        for (workload, field) in [
            (
                v1::set_workload_request::Workload::ConcurrentUsers(100_000),
                "concurrent_users",
            ),
            (
                v1::set_workload_request::Workload::RequestsPerSecond(1e6),
                "requests_per_second",
            ),
            (
                v1::set_workload_request::Workload::Trace(v1::TraceWorkload {
                    per_minute: vec![1.0; 200_000],
                    min_users: 1,
                    max_users: 10,
                }),
                "trace.per_minute",
            ),
            (
                v1::set_workload_request::Workload::Trace(v1::TraceWorkload {
                    per_minute: vec![1.0; 3],
                    min_users: 1,
                    max_users: 5000,
                }),
                "trace.max_users",
            ),
        ] {
            let e = workload_from_proto(&req(Some(workload))).unwrap_err();
            assert_eq!(e[0].field, field, "{e:?}");
            assert!(e[0].message.contains("over the limit"), "{e:?}");
        }
        let ok = req(Some(v1::set_workload_request::Workload::ConcurrentUsers(
            12,
        )));
        assert_eq!(
            workload_from_proto(&ok).unwrap(),
            Workload::ClosedLoop { users: 12 }
        );
    }
}
