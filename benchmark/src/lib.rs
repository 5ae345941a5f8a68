//! Benchmarks of faasconf. For now: the twin's speed (criterion, `benches/twin_window.rs`) and
//! memory (`twin-memory`, peak resident set), and the reference optimum on the twin
//! ([`oracle`], `oracle-search`). Scenarios are defined here once for both.

pub mod oracle;

use faasconf_core::{FunctionConfig, WorkflowConfig, catalog};
use faasconf_twin::{Twin, TwinOptions, Workload};

/// The acceptance scenario: TcktApp under 40 closed-loop users, every function at 1000 m,
/// 1024 MiB, 8 replicas, concurrency 10 (room for every user), 30 s windows.
pub fn tcktapp_40_users(seed: u64) -> Twin {
    let workflow = catalog::builtin("tcktapp").unwrap_or_else(|e| panic!("built-in tcktapp: {e}"));
    let config = WorkflowConfig(vec![
        FunctionConfig {
            cpu_millis: 1000,
            memory_mib: 1024,
            replicas: 8,
            concurrency: 10
        };
        workflow.len()
    ]);
    Twin::new(
        workflow,
        config,
        Workload::ClosedLoop { users: 40 },
        TwinOptions {
            window_seconds: 30.0,
            seed,
        },
    )
    .unwrap_or_else(|e| panic!("scenario: {e}"))
}

/// The data set's setting: the parallel ML workflow under 10 users, middle of every range.
pub fn parallel_10_users(seed: u64) -> Twin {
    let workflow =
        catalog::builtin("parallel").unwrap_or_else(|e| panic!("built-in parallel: {e}"));
    let config = workflow
        .config_from_actions(&vec![[0.5; 4]; workflow.len()])
        .unwrap_or_else(|e| panic!("{e}"));
    Twin::new(
        workflow,
        config,
        Workload::ClosedLoop { users: 10 },
        TwinOptions {
            window_seconds: 30.0,
            seed,
        },
    )
    .unwrap_or_else(|e| panic!("scenario: {e}"))
}
