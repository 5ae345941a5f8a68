//! Behaviour of the twin as a whole: determinism, physics sanity (property tests), platform
//! semantics (429, OOM, rollouts) and workloads.

use faasconf_core::catalog::{builtin, parse_topology};
use faasconf_core::{FailureMode, FunctionConfig, Routing, Workflow, WorkflowConfig};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed};

use crate::{Twin, TwinOptions, Workload};

fn uniform(workflow: &Workflow, c: FunctionConfig) -> WorkflowConfig {
    WorkflowConfig(vec![c; workflow.len()])
}

fn cfg(cpu_millis: u32, memory_mib: u32, replicas: u32, concurrency: u32) -> FunctionConfig {
    FunctionConfig {
        cpu_millis,
        memory_mib,
        replicas,
        concurrency,
    }
}

/// One CPU-bound function, no I/O, no think time, no noise.
fn single(parallelism: f64, waste: f64) -> Workflow {
    let yaml = format!(
        "name: single
functions:
  - name: f
    bounds: {{ cpu_millis: {{min: 50, max: 8000}}, memory_mib: {{min: 16, max: 8192}}, replicas: {{min: 1, max: 16}}, concurrency: {{min: 1, max: 1000000}} }}
    profile: {{ cpu_core_seconds: 0.2, cpu_cv: 0.5, parallelism: {parallelism}, io_seconds: 0.0, throttle_waste: {waste},
               memory_base_mib: 100, memory_per_request_mib: 10 }}
plan: {{ call: f }}
platform: {{ gateway_overhead_seconds: 0.0, interference_sigma: 0.0 }}
"
    );
    parse_topology(&yaml, false, "single.yaml").unwrap()
}

/// Three light functions in sequence with I/O, noise and gateway overhead.
fn chain3() -> Workflow {
    let yaml = "name: chain3
functions:
  - { name: a, profile: { cpu_core_seconds: 0.05, parallelism: 1, io_seconds: 0.05 } }
  - { name: b, profile: { cpu_core_seconds: 0.10, parallelism: 2, io_seconds: 0.02, throttle_waste: 0.3 } }
  - { name: c, profile: { cpu_core_seconds: 0.03, parallelism: 1, io_seconds: 0.10 } }
plan: { sequence: [ { call: a }, { call: b }, { call: c } ] }
platform: { gateway_overhead_seconds: 0.01, interference_sigma: 0.1 }
";
    parse_topology(yaml, false, "chain3.yaml").unwrap()
}

fn run(
    workflow: &Workflow,
    config: WorkflowConfig,
    workload: Workload,
    seed: u64,
    windows: usize,
) -> Vec<crate::WindowReport> {
    let mut twin = Twin::new(
        workflow.clone(),
        config,
        workload,
        TwinOptions {
            window_seconds: 30.0,
            seed,
        },
    )
    .unwrap();
    (0..windows).map(|_| twin.run_window()).collect()
}

#[test]
fn same_seed_same_windows_other_seed_other_windows() {
    let w = builtin("parallel").unwrap();
    let c = uniform(&w, cfg(1000, 1024, 2, 3));
    let a = run(&w, c.clone(), Workload::ClosedLoop { users: 10 }, 7, 3);
    let b = run(&w, c.clone(), Workload::ClosedLoop { users: 10 }, 7, 3);
    let other = run(&w, c, Workload::ClosedLoop { users: 10 }, 8, 3);
    assert_eq!(a, b);
    assert_ne!(a, other);
}

#[test]
fn windows_report_what_prometheus_and_logs_would() {
    let w = builtin("parallel").unwrap();
    let reports = run(
        &w,
        uniform(&w, cfg(1200, 1024, 2, 4)),
        Workload::ClosedLoop { users: 10 },
        1,
        3,
    );
    let r = &reports[2];
    assert_eq!(r.index, 2);
    assert_eq!(r.functions.len(), 6);
    assert!(r.workflow.total_requests > 5, "{:?}", r.workflow);
    assert!(
        r.workflow.mean_latency_seconds > 1.0
            && r.workflow.p95_latency_seconds >= r.workflow.mean_latency_seconds * 0.8
    );
    assert!((r.workflow.cost - uniform(&w, cfg(1200, 1024, 2, 4)).cost()).abs() < 1e-12);
    for f in &r.functions {
        assert!(
            f.cpu_usage_percent > 0.0 && f.cpu_usage_percent <= 120.0 + 1e-9,
            "{f:?}"
        );
        assert!(f.memory_percent_of_limit > 0.0 && f.network_rx_bytes_per_second > 0.0);
        assert!(f.latency_p95_seconds >= f.latency_p75_seconds && f.latency_p75_seconds > 0.0);
        assert_eq!(f.ready_replicas, 2);
    }
}

#[test]
fn more_cpu_is_faster_and_cheaper_cpu_is_throttled() {
    let w = single(2.0, 0.5);
    let slow = run(
        &w,
        uniform(&w, cfg(300, 512, 1, 10)),
        Workload::Poisson {
            requests_per_second: 1.0,
        },
        3,
        4,
    );
    let fast = run(
        &w,
        uniform(&w, cfg(2000, 512, 1, 10)),
        Workload::Poisson {
            requests_per_second: 1.0,
        },
        3,
        4,
    );
    let p75 = |r: &[crate::WindowReport]| {
        r.iter()
            .map(|w| w.functions[0].latency_p75_seconds)
            .sum::<f64>()
    };
    assert!(
        p75(&fast) * 3.0 < p75(&slow),
        "fast {} slow {}",
        p75(&fast),
        p75(&slow)
    );
    assert!(
        slow[1].functions[0].cpu_throttled_periods > fast[1].functions[0].cpu_throttled_periods
    );
}

fn seeded(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(20_261_127),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn mean_function_latency(reports: &[crate::WindowReport]) -> f64 {
    // Every accepted request's latency, weighted by window: the p75/p95 are order statistics,
    // so compare means through the end-to-end figures of a one-function workflow.
    let (sum, n) = reports.iter().fold((0.0, 0u64), |(s, n), r| {
        (
            s + r.workflow.mean_latency_seconds * r.workflow.total_requests as f64,
            n + r.workflow.total_requests,
        )
    });
    sum / n.max(1) as f64
}

proptest! {
    #![proptest_config(seeded(24))]

    /// More CPU never raises service time. One replica, processor sharing, the same arrivals and
    /// work (common random numbers): every job finishes no later with more CPU, so after the
    /// arrivals stop and both systems drain, the mean latency cannot be higher. Stable loads only
    /// (an overloaded queue never drains).
    #[test]
    fn more_cpu_never_raises_service_time(
        cpu in 250u32..1800, extra in 1u32..800, rate in 0.2f64..8.0,
        parallelism in 0.5f64..4.0, waste in 0.0f64..2.0, seed in 0u64..1000,
    ) {
        let w = single(parallelism, waste);
        let drained = |cpu_millis: u32| {
            let config = uniform(&w, cfg(cpu_millis, 8192, 1, 1_000_000));
            let mut twin = Twin::new(w.clone(), config, Workload::Poisson { requests_per_second: rate }, TwinOptions { window_seconds: 30.0, seed }).unwrap();
            let mut reports: Vec<_> = (0..3).map(|_| twin.run_window()).collect();
            twin.set_workload(Workload::Poisson { requests_per_second: 1e-9 }).unwrap();
            reports.extend((0..6).map(|_| twin.run_window()));
            reports
        };
        // Drained: every arrival answered and the last window empty. Throttling waste can make a
        // queue collapse (throughput falls as requests pile up); such runs say nothing here.
        let is_drained = |r: &[crate::WindowReport]| {
            let arrived: u64 = r.iter().map(|w| w.functions[0].requests).sum();
            let answered: u64 = r.iter().map(|w| w.workflow.total_requests).sum();
            arrived == answered && r.last().is_some_and(|w| w.workflow.total_requests == 0)
        };
        let slow = drained(cpu);
        prop_assume!(is_drained(&slow));
        let fast = drained(cpu + extra);
        prop_assert!(is_drained(&fast), "more CPU left requests unanswered");
        let count = |r: &[crate::WindowReport]| r.iter().map(|w| w.workflow.total_requests).sum::<u64>();
        prop_assert_eq!(count(&slow), count(&fast));
        let (s, f) = (mean_function_latency(&slow), mean_function_latency(&fast));
        prop_assert!(f <= s * (1.0 + 1e-9) + 1e-12, "cpu {cpu}+{extra}: {f} > {s}");
    }

    /// No 429 while the requests in flight at a function stay within concurrency x replicas:
    /// with closed-loop users at most the smallest capacity, nothing is ever rejected.
    #[test]
    fn no_rejection_within_capacity(
        replicas in 1u32..5, concurrency in 1u32..6, cpu in 250u32..2000, seed in 0u64..1000, fail_fast in any::<bool>(),
    ) {
        let mut w = builtin("parallel").unwrap();
        w.platform.routing = Routing::LeastInflight;
        w.platform.call_failure_ratio = 0.0;
        w.platform.failure_mode = if fail_fast { FailureMode::FailFast } else { FailureMode::RunToEnd };
        let users = replicas * concurrency;
        let reports = run(&w, uniform(&w, cfg(cpu, 1024, replicas, concurrency)), Workload::ClosedLoop { users }, seed, 3);
        for r in &reports {
            prop_assert_eq!(r.workflow.successful_requests, r.workflow.total_requests);
            for f in &r.functions {
                prop_assert_eq!(f.rejections, 0);
            }
        }
    }

    /// Least-inflight routing rejects only when every ready replica is full, whatever the load.
    #[test]
    fn least_inflight_never_rejects_with_room(users in 1u32..40, replicas in 1u32..5, concurrency in 1u32..4, seed in 0u64..1000) {
        let mut w = builtin("parallel").unwrap();
        w.platform.routing = Routing::LeastInflight;
        let reports = run(&w, uniform(&w, cfg(800, 1024, replicas, concurrency)), Workload::ClosedLoop { users }, seed, 2);
        for f in reports.iter().flat_map(|r| &r.functions) {
            prop_assert_eq!(f.rejections_with_room, 0);
        }
    }
}

#[test]
fn random_routing_rejects_below_capacity_as_kube_proxy_does() {
    let mut w = builtin("parallel").unwrap();
    w.platform.routing = Routing::Random;
    let reports = run(
        &w,
        uniform(&w, cfg(800, 1024, 4, 2)),
        Workload::ClosedLoop { users: 8 },
        5,
        4,
    );
    let with_room: u64 = reports
        .iter()
        .flat_map(|r| &r.functions)
        .map(|f| f.rejections_with_room)
        .sum();
    assert!(with_room > 0);
}

/// Little's law for the closed loop in steady state: users = throughput x (response + think).
#[test]
fn littles_law_holds_in_steady_state() {
    for (users, cpu, replicas, think) in [(10, 1000, 2, 1.0), (25, 1800, 8, 0.5), (5, 2000, 1, 3.0)]
    {
        let mut w = chain3();
        w.platform.user_think_seconds = think;
        let mut twin = Twin::new(
            w.clone(),
            uniform(&w, cfg(cpu, 1024, replicas, 10)),
            Workload::ClosedLoop { users },
            TwinOptions {
                window_seconds: 60.0,
                seed: 11,
            },
        )
        .unwrap();
        twin.run_window();
        let reports: Vec<_> = (0..20).map(|_| twin.run_window()).collect();
        let completed: u64 = reports.iter().map(|r| r.workflow.total_requests).sum();
        let response = reports
            .iter()
            .map(|r| r.workflow.mean_latency_seconds * r.workflow.total_requests as f64)
            .sum::<f64>()
            / completed as f64;
        let throughput = completed as f64 / (20.0 * 60.0);
        // Window edges bias the estimate by about R/T: the premise is R much smaller than T.
        assert!(
            response < 20.0 * 60.0 / 50.0,
            "not a steady state: R = {response}"
        );
        let predicted_users = throughput * (response + think);
        let error = (predicted_users - f64::from(users)).abs() / f64::from(users);
        assert!(
            error < 0.05,
            "users {users}: X(R+Z) = {predicted_users:.2} ({error:.3})"
        );
        // The twin's own count of requests in the system is the users not thinking: X R.
        let in_flight = reports
            .iter()
            .map(|r| r.workflow.mean_in_flight)
            .sum::<f64>()
            / reports.len() as f64;
        let little = throughput * response;
        assert!(
            (in_flight - little).abs() <= 0.05 * little,
            "users {users}: mean in flight {in_flight:.2} vs X R = {little:.2}"
        );
        // Arrivals match completions in steady state, window by window within the users.
        for r in &reports {
            assert!(r.workflow.arrivals.abs_diff(r.workflow.total_requests) <= u64::from(users));
        }
    }
}

/// With think time 0 every user always has a request in the system: exactly `users` in flight;
/// open loop at a rate the workflow keeps up with: arrivals per second near the rate.
#[test]
fn the_twin_counts_arrivals_and_requests_in_flight() {
    let w = chain3();
    let mut twin = Twin::new(
        w.clone(),
        uniform(&w, cfg(1000, 1024, 2, 10)),
        Workload::ClosedLoop { users: 6 },
        TwinOptions {
            window_seconds: 30.0,
            seed: 3,
        },
    )
    .unwrap();
    twin.run_window();
    let r = twin.run_window();
    assert!((r.workflow.mean_in_flight - 6.0).abs() < 1e-6, "{r:?}");
    let mut twin = Twin::new(
        w.clone(),
        uniform(&w, cfg(2000, 1024, 8, 10)),
        Workload::Poisson {
            requests_per_second: 2.0,
        },
        TwinOptions {
            window_seconds: 300.0,
            seed: 3,
        },
    )
    .unwrap();
    let r = twin.run_window();
    assert_eq!(r.users, 0);
    assert!((r.arrival_rate() - 2.0).abs() < 0.2, "{}", r.arrival_rate());
    let little = r.arrival_rate() * r.workflow.mean_latency_seconds;
    assert!(
        (r.in_flight() - little).abs() <= 0.1 * little,
        "{} vs {little}",
        r.in_flight()
    );
}

#[test]
fn memory_below_the_working_set_kills_and_fails() {
    let w = single(1.0, 0.0); // idle working set 100 MiB, +10 MiB per request
    // Below the idle working set: pods never start, every call fails for memory.
    let r = run(
        &w,
        uniform(&w, cfg(1000, 64, 1, 10)),
        Workload::ClosedLoop { users: 3 },
        1,
        2,
    );
    assert_eq!(r[1].workflow.successful_requests, 0);
    assert!(r[1].functions[0].oom_failures > 0 && r[1].functions[0].ready_replicas == 0);
    // Room for the idle set and 2 requests: a third in flight kills the container.
    let r = run(
        &w,
        uniform(&w, cfg(1000, 125, 1, 10)),
        Workload::ClosedLoop { users: 6 },
        1,
        3,
    );
    let oom: u64 = r.iter().map(|w| w.functions[0].oom_failures).sum();
    assert!(oom > 0);
    assert!(r.iter().all(|w| w.workflow.success_ratio < 1.0));
    // Enough memory: no OOM at all.
    let r = run(
        &w,
        uniform(&w, cfg(1000, 512, 1, 10)),
        Workload::ClosedLoop { users: 6 },
        1,
        3,
    );
    assert!(
        r.iter()
            .all(|w| w.functions[0].oom_failures == 0 && w.workflow.success_ratio == 1.0)
    );
}

/// OOM kills hit requests in every phase (waiting on I/O, on CPU, waiting for nested calls):
/// each fails once, the rest of the system goes on, and nothing is left dangling.
#[test]
fn oom_kills_in_every_phase_fail_cleanly() {
    let yaml = "name: nested
functions:
  - { name: front, profile: { cpu_core_seconds: 0.05, io_seconds: 0.2, memory_base_mib: 100, memory_per_request_mib: 40 } }
  - { name: back, profile: { cpu_core_seconds: 0.3, io_seconds: 0.3, memory_base_mib: 100, memory_per_request_mib: 60 } }
plan: { call: { function: front, calls: { call: back } } }
platform: { interference_sigma: 0.1, user_think_seconds: 1.0 }
";
    let w = parse_topology(yaml, false, "nested.yaml").unwrap();
    // back: 256 MiB holds 100 + 2 x 60; a third request in flight on a replica kills it (with 5
    // thinking users that happens now and then). Far more users would keep every container dying as
    // soon as it restarts — a real death spiral, but not what this test is about.
    let config = WorkflowConfig(vec![cfg(500, 256, 2, 10), cfg(500, 256, 2, 10)]);
    for seed in 0..5 {
        let reports = run(
            &w,
            config.clone(),
            Workload::ClosedLoop { users: 5 },
            seed,
            6,
        );
        let oom: u64 = reports
            .iter()
            .flat_map(|r| &r.functions)
            .map(|f| f.oom_failures)
            .sum();
        let ok: u64 = reports.iter().map(|r| r.workflow.successful_requests).sum();
        assert!(oom > 0, "seed {seed}: the scenario must kill containers");
        assert!(ok > 0, "seed {seed}: restarted containers serve again");
        for r in &reports {
            assert!(r.workflow.successful_requests <= r.workflow.total_requests);
        }
    }
}

#[test]
fn applying_a_configuration_rolls_pods_and_marks_the_window_transient() {
    let w = builtin("parallel").unwrap();
    let before = uniform(&w, cfg(1000, 1024, 2, 4));
    let mut twin = Twin::new(
        w.clone(),
        before.clone(),
        Workload::ClosedLoop { users: 10 },
        TwinOptions::default(),
    )
    .unwrap();
    assert!(!twin.run_window().transient);
    let mut after = before.clone();
    after.0[4] = cfg(2000, 2048, 4, 4); // template change on resnet
    after.0[0].replicas = 3; // scale only on starter
    assert_eq!(twin.apply_config(after.clone()).unwrap(), 2);
    assert_eq!(twin.apply_config(after.clone()).unwrap(), 2, "idempotent");
    let changed = twin.run_window();
    assert!(changed.transient);
    assert_eq!(changed.config_version, 2);
    let settled = twin.run_window();
    assert!(!settled.transient);
    assert_eq!(settled.functions[4].ready_replicas, 4);
    assert_eq!(settled.functions[0].ready_replicas, 3);
    // A surge rollout never leaves the function without ready pods: nothing was unavailable.
    assert_eq!(
        changed.functions[4].unavailable + settled.functions[4].unavailable,
        0
    );
    assert!(
        twin.apply_config(WorkflowConfig(vec![cfg(1, 1, 1, 1); 6]))
            .is_err()
    );
    assert_eq!(
        twin.config(),
        &after,
        "a rejected configuration changes nothing"
    );
}

#[test]
fn scaling_up_pays_a_cold_start() {
    let w = single(1.0, 0.0);
    let mut twin = Twin::new(
        w.clone(),
        uniform(&w, cfg(1000, 512, 1, 10)),
        Workload::ClosedLoop { users: 2 },
        TwinOptions {
            window_seconds: 1.0,
            seed: 1,
        },
    )
    .unwrap();
    twin.run_window();
    twin.apply_config(uniform(&w, cfg(1000, 512, 3, 10)))
        .unwrap();
    assert_eq!(
        twin.run_window().functions[0].ready_replicas,
        1,
        "new replicas are still starting"
    );
    for _ in 0..3 {
        twin.run_window();
    }
    assert_eq!(twin.run_window().functions[0].ready_replicas, 3);
}

#[test]
fn trace_workload_follows_the_series() {
    let w = builtin("sequential").unwrap();
    let trace = Workload::Trace {
        per_minute: vec![0.0, 10.0],
        min_users: 2,
        max_users: 20,
    };
    let mut twin = Twin::new(
        w.clone(),
        uniform(&w, cfg(1500, 1024, 4, 10)),
        trace,
        TwinOptions {
            window_seconds: 60.0,
            seed: 1,
        },
    )
    .unwrap();
    let first = twin.run_window();
    let second = twin.run_window();
    assert_eq!(first.users, 2);
    assert_eq!(second.users, 20);
    assert!(second.workflow.total_requests > first.workflow.total_requests * 3);
}

#[test]
fn poisson_throughput_matches_the_rate_when_capacity_is_ample() {
    let w = builtin("sequential").unwrap();
    let mut w = w;
    w.platform.call_failure_ratio = 0.0;
    let reports = run(
        &w,
        uniform(&w, cfg(2000, 2048, 8, 10)),
        Workload::Poisson {
            requests_per_second: 0.5,
        },
        2,
        10,
    );
    let done: u64 = reports[1..]
        .iter()
        .map(|r| r.workflow.successful_requests)
        .sum();
    let rate = done as f64 / (9.0 * 30.0);
    assert!((rate - 0.5).abs() < 0.1, "{rate}");
}

#[test]
fn branch_weights_split_the_traffic() {
    let w = builtin("branch").unwrap();
    let reports = run(
        &w,
        uniform(&w, cfg(2000, 2048, 8, 10)),
        Workload::ClosedLoop { users: 20 },
        4,
        6,
    );
    let calls = |name: &str| -> u64 {
        let j = w.function_index(name).unwrap();
        reports.iter().map(|r| r.functions[j].requests).sum()
    };
    let share = calls("load") as f64 / (calls("load") + calls("rgb")) as f64;
    assert!((share - 0.6).abs() < 0.06, "load arm share {share}");
}

#[test]
fn tcktapp_runs_nested_calls() {
    let w = builtin("tcktapp").unwrap();
    // 8 x 10 slots per function: room for the 40 users even though callers hold their slots.
    let reports = run(
        &w,
        uniform(&w, cfg(1000, 1024, 8, 10)),
        Workload::ClosedLoop { users: 40 },
        1,
        2,
    );
    let r = &reports[1];
    assert_eq!(r.workflow.success_ratio, 1.0, "{:?}", r.workflow);
    assert!(r.workflow.total_requests > 50);
    // get-route-by-routeid is called by the entry, query-for-travel and get-route-by-tripid.
    let entry = r.functions[0].requests;
    assert!(
        r.functions[3].requests >= 3 * entry - 3,
        "{} vs {}",
        r.functions[3].requests,
        entry
    );
    // A nested caller's latency includes its callees'.
    assert!(r.functions[1].latency_p75_seconds > r.functions[4].latency_p75_seconds);
}

#[test]
fn bad_inputs_are_refused_with_the_field() {
    let w = builtin("parallel").unwrap();
    let e = Twin::new(
        w.clone(),
        uniform(&w, cfg(1000, 1024, 9, 1)),
        Workload::ClosedLoop { users: 1 },
        TwinOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("config.starter.replicas"), "{e}");
    let e = Twin::new(
        w.clone(),
        uniform(&w, cfg(1000, 1024, 1, 1)),
        Workload::ClosedLoop { users: 0 },
        TwinOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("workload.users"), "{e}");
    let e = Twin::new(
        w.clone(),
        uniform(&w, cfg(1000, 1024, 1, 1)),
        Workload::ClosedLoop { users: 1 },
        TwinOptions {
            window_seconds: f64::NAN,
            seed: 0,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("window_seconds"), "{e}");
}

#[test]
fn memory_metric_is_the_working_set_over_each_pods_limit() {
    let w = single(1.0, 0.0); // idle working set 100 MiB
    let idle = run(
        &w,
        uniform(&w, cfg(1000, 400, 2, 10)),
        Workload::Poisson {
            requests_per_second: 1e-9,
        },
        1,
        2,
    );
    assert!(
        (idle[1].functions[0].memory_percent_of_limit - 25.0).abs() < 1e-9,
        "{}",
        idle[1].functions[0].memory_percent_of_limit
    );
    // Busy pods hold more: 100 MiB + 10 MiB per request in flight.
    let busy = run(
        &w,
        uniform(&w, cfg(300, 400, 1, 10)),
        Workload::ClosedLoop { users: 4 },
        1,
        2,
    );
    assert!(busy[1].functions[0].memory_percent_of_limit > 25.0);
}
