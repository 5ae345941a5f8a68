//! Fuzzing of what a caller's bytes reach: every request message decoded from arbitrary bytes
//! (and from structured messages with hostile values: NaN, infinities, huge counts, unknown or
//! enormous names) and converted to the domain. Nothing panics, every error names a field and
//! stays small, and what is accepted is valid.
//!
//! `PROPTEST_CASES` sets the number of cases (CI runs the default, in seconds; the README gives
//! the longer run).

use faasconf_core::catalog::builtin;
use faasconf_core::testing::cases;
use proptest::prelude::*;
use prost::Message;

use crate::convert::config_from_proto;
use crate::v1;
use crate::window::window_from_proto;

/// Errors stay small whatever the input (`FieldError` clips both parts).
fn small(errors: &[faasconf_core::FieldError]) -> bool {
    errors
        .iter()
        .all(|e| !e.field.is_empty() && e.field.len() <= 256 && e.message.len() <= 640)
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["starter", "rgb", "resize", "update", "resnet", "mobilenet"]).prop_map(str::to_owned),
        1 => ".{0,12}",
        1 => (1usize..5000).prop_map(|n| "x".repeat(n)),
    ]
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => 0.0..100.0f64,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(-1.0),
        1 => any::<f64>(),
    ]
}

fn function_metrics() -> impl Strategy<Value = v1::FunctionMetrics> {
    (
        name(),
        prop::array::uniform6(number()),
        prop::array::uniform4(any::<u64>()),
    )
        .prop_map(|(function, f, c)| v1::FunctionMetrics {
            function,
            cpu_usage_percent: f[0],
            cpu_throttled_periods: f[1],
            memory_percent_of_limit: f[2],
            network_rx_bytes_per_second: f[3],
            latency_p75_seconds: f[4],
            latency_p95_seconds: f[5],
            requests: c[0],
            rejections: c[1],
            completed: c[2],
            unavailable: c[3],
            ..Default::default()
        })
}

fn config() -> impl Strategy<Value = v1::WorkflowConfig> {
    let knob = prop_oneof![3 => 1u32..3000, 1 => any::<u32>()];
    prop::collection::vec(
        (name(), knob.clone(), knob.clone(), knob.clone(), knob),
        0..9,
    )
    .prop_map(|entries| v1::WorkflowConfig {
        functions: entries
            .into_iter()
            .map(|(function, c, m, r, k)| v1::FunctionConfig {
                function,
                cpu_millis: c,
                memory_mib: m,
                replicas: r,
                concurrency: k,
            })
            .collect(),
    })
}

fn window() -> impl Strategy<Value = v1::TelemetryWindow> {
    let load = prop_oneof![
        Just(None),
        any::<u32>().prop_map(|u| Some(v1::Load {
            kind: Some(v1::load::Kind::ConcurrentUsers(u))
        })),
        number().prop_map(|r| Some(v1::Load {
            kind: Some(v1::load::Kind::RequestsPerSecond(r))
        })),
    ];
    (
        name(),
        prop::array::uniform6(number()),
        (any::<u64>(), any::<u64>()),
        load,
        prop::collection::vec(function_metrics(), 0..8),
        prop::option::of(config()),
    )
        .prop_map(
            |(workflow, f, (ok, total), load, functions, config)| v1::TelemetryWindow {
                workflow,
                start_seconds: f[0],
                duration_seconds: f[1],
                load,
                workflow_metrics: Some(v1::WorkflowMetrics {
                    mean_latency_seconds: f[2],
                    p95_latency_seconds: f[3],
                    success_ratio: f[4],
                    throughput_rps: f[5],
                    successful_requests: ok,
                    total_requests: total,
                    cost: f[0],
                    rollout_stalled: ok % 2 == 1,
                    arrivals: total ^ ok,
                    mean_in_flight: f[3],
                    missing_series: vec!["x".repeat((total % 80) as usize); (ok % 20) as usize],
                }),
                functions,
                config,
                ..Default::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary bytes as any request message: decoded or refused, never a panic; a decoded
    /// window or configuration converts or is refused with small, named errors.
    #[test]
    fn fuzz_request_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let w = builtin("parallel").unwrap();
        if let Ok(m) = v1::TelemetryWindow::decode(bytes.as_slice())
            && let Err(errors) = window_from_proto(&w, &m, "current")
        {
            prop_assert!(small(&errors), "{errors:?}");
        }
        if let Ok(m) = v1::WorkflowConfig::decode(bytes.as_slice())
            && let Err(errors) = config_from_proto(&w, Some(&m), "config")
        {
            prop_assert!(small(&errors), "{errors:?}");
        }
        let _ = v1::RecommendConfigRequest::decode(bytes.as_slice());
        let _ = v1::StartTuningRequest::decode(bytes.as_slice());
        let _ = v1::StartTrainingRequest::decode(bytes.as_slice());
        let _ = v1::SetWorkloadRequest::decode(bytes.as_slice());
        let _ = v1::ApplyConfigRequest::decode(bytes.as_slice());
    }

    /// Hostile windows: refused with small named errors, or accepted only when every figure is
    /// finite and non-negative, the load is in users and the configuration is the workflow's.
    #[test]
    fn fuzz_windows_are_refused_or_sound(m in window()) {
        let w = builtin("parallel").unwrap();
        match window_from_proto(&w, &m, "current") {
            Ok(report) => {
                let ok = |v: f64| v.is_finite() && v >= 0.0;
                prop_assert!(ok(report.workflow.mean_latency_seconds) && ok(report.workflow.p95_latency_seconds));
                prop_assert!(ok(report.workflow.cost) && ok(report.workflow.throughput_rps));
                prop_assert!((0.0..=1.0).contains(&report.workflow.success_ratio));
                prop_assert!(report.workflow.successful_requests <= report.workflow.total_requests);
                prop_assert!(matches!(m.load.and_then(|l| l.kind), Some(v1::load::Kind::ConcurrentUsers(_))));
                prop_assert_eq!(report.functions.len(), w.len());
                prop_assert_eq!(report.config.0.len(), w.len());
                for f in &report.functions {
                    prop_assert!(ok(f.cpu_usage_percent) && ok(f.latency_p95_seconds));
                }
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                prop_assert!(small(&errors), "{errors:?}");
                for e in &errors {
                    prop_assert!(e.field.starts_with("current"), "{e}");
                }
            }
        }
    }

    /// Hostile configurations: refused with small named errors, or every function of the
    /// workflow within its bounds.
    #[test]
    fn fuzz_configurations_are_refused_or_within_bounds(c in config()) {
        let w = builtin("parallel").unwrap();
        match config_from_proto(&w, Some(&c), "config") {
            Ok(config) => {
                prop_assert_eq!(config.0.len(), w.len());
                for (spec, f) in w.functions.iter().zip(&config.0) {
                    prop_assert!(spec.bounds.check(f, "x").is_empty());
                }
            }
            Err(errors) => prop_assert!(!errors.is_empty() && small(&errors), "{errors:?}"),
        }
    }
}
