//! The benchmark of faasconf: faasconf against the baselines on the twin, in the paper's
//! online protocol, and the speed and memory benchmarks.
//!
//! - [`protocol`] — one (workflow, load, method, seed) cell: 15 online iterations on the twin.
//! - [`baselines`] — the methods faasconf is compared with, behind the optimiser interface.
//! - [`methods`] — every method by name, built from the same warm-up samples.
//! - the reference optimum on the twin (`oracle-search`) is `faasconf_tuner::oracle`.
//! - [`rq1`] — the grid of workflows x loads x seeds x methods (`faasconf bench rq1`).
//! - [`rq2`] — every method under 85 minutes of dynamic load.
//! - [`rq3`] — faasconf's ablations, in the same run.
//! - [`speed`] — RecommendConfig latency and throughput, training steps, twin speed, memory.
//! - [`load`] — the policy under 16 concurrent RecommendConfig clients on each path.
//! - [`scale`] — synthetic workflows of 25-100 functions: twin speed, updates, decisions, memory.
//! - [`mismatch`] — rq1's protocol on clusters that are not the twin (drawn per-function factors).
//! - [`holds`] — what a method's best does on fresh windows: its pass rate, the cheapest holding.
//! - [`report`] — what a run says: savings, infeasible cells, distance to the oracle.
//! - [`plots`] — the cost and violation figures (SVG and PNG).
//! - [`journal`] — finished cells and searches, one JSON line each: a stopped run resumes.
//!
//! Also: the twin's speed (criterion, `benches/twin_window.rs`) and memory (`twin-memory`).
//! Scenarios are defined here once for all.

pub mod baselines;
pub mod holds;
pub mod journal;
pub mod load;
pub mod methods;
pub mod mismatch;
pub mod plots;
pub mod protocol;
pub mod report;
pub mod rq1;
pub mod rq2;
pub mod rq3;
pub mod scale;
pub mod speed;

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
