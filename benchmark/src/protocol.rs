//! The online protocol every method is judged by (`method.md`): the twin stands in for the
//! cluster at a fixed closed-loop load; every method starts from the same configuration (the
//! middle of every knob's range) and gets the same number of iterations. An iteration applies
//! the method's proposal, drops the window the rollout happens in (it is `transient`, as a
//! tuning session drops it), and shows the method the next, steady window.
//!
//! Per cell: the best QoS-meeting cost, whether one was found at all, QoS violations during the
//! iterations, the iteration of the first QoS-meeting configuration, and the method's own
//! decision time.

use std::time::Instant;

use faasconf_core::cancel::Cancel;
use faasconf_core::optimiser::{Optimiser, OptimiserError};
use faasconf_core::{Qos, Workflow, WorkflowConfig};
use faasconf_tuner::tuning_loop::{self, Baseline, LoopError, LoopOptions, Silent};
use faasconf_tuner::twin_env::TwinEnvironment;
use faasconf_twin::{TwinOptions, Workload};
use serde::{Deserialize, Serialize};

/// How a cell is run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Protocol {
    /// Online iterations per cell (15 in the paper's evaluation).
    pub iterations: u32,
    /// Window length, seconds (30 in the paper's evaluation).
    pub window_seconds: f64,
}

impl Default for Protocol {
    fn default() -> Self {
        Self {
            iterations: 15,
            window_seconds: 30.0,
        }
    }
}

/// One online iteration as measured: the tuning loop's record.
pub type IterationRecord = faasconf_tuner::Iteration;

/// What one (workflow, load, method, seed) cell measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// The workflow.
    pub workflow: String,
    /// Closed-loop users.
    pub users: u32,
    /// The method.
    pub method: String,
    /// The seed (of the twin and of the method).
    pub seed: u64,
    /// Cost of the cheapest configuration that met QoS in its window (none: `None`).
    pub best_cost: Option<f64>,
    /// That configuration.
    pub best_config: Option<WorkflowConfig>,
    /// Whether any iteration met QoS.
    pub feasible: bool,
    /// Iterations that missed QoS.
    pub violations: u32,
    /// The first iteration that met QoS.
    pub iterations_to_feasible: Option<u32>,
    /// Seconds the method spent deciding, all iterations together.
    pub decision_seconds: f64,
    /// Seconds the cell took in all (twin included).
    pub wall_seconds: f64,
    /// The iterations.
    pub iterations: Vec<IterationRecord>,
    /// What the cell's configurations do on fresh windows (`None`: not judged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<crate::holds::Held>,
}

/// Why a cell could not be run.
#[derive(Debug, thiserror::Error)]
pub enum CellError {
    /// The twin refused the scenario or a proposal (out of bounds, wrong size).
    #[error("{method} at {users} users: the twin refused {what}: {source}")]
    Twin {
        /// The method.
        method: String,
        /// The load.
        users: u32,
        /// What was refused.
        what: &'static str,
        /// The twin's error.
        #[source]
        source: faasconf_twin::Error,
    },
    /// The method failed.
    #[error("at {users} users: {source}")]
    Method {
        /// The load.
        users: u32,
        /// The method's error.
        #[source]
        source: OptimiserError,
    },
}

/// Runs `method` for `protocol.iterations` iterations on the twin at `users`: the tuning loop
/// over the twin (`faasconf_tuner::tuning_loop`).
pub fn run_cell(
    workflow: &Workflow,
    users: u32,
    qos: &Qos,
    method: &mut dyn Optimiser,
    seed: u64,
    protocol: &Protocol,
) -> Result<CellResult, CellError> {
    run_cell_under(
        workflow,
        Workload::ClosedLoop { users },
        qos,
        method,
        seed,
        protocol,
    )
}

/// [`run_cell`] under any `workload` (a cell under open-loop arrivals records 0 users).
pub fn run_cell_under(
    workflow: &Workflow,
    workload: Workload,
    qos: &Qos,
    method: &mut dyn Optimiser,
    seed: u64,
    protocol: &Protocol,
) -> Result<CellResult, CellError> {
    let users = match &workload {
        Workload::ClosedLoop { users } => *users,
        _ => 0,
    };
    let started = Instant::now();
    let name = method.name().to_owned();
    let twin_error = |what: &'static str| {
        let name = name.clone();
        move |source| CellError::Twin {
            method: name,
            users,
            what,
            source,
        }
    };
    let mut twin = TwinEnvironment::new(
        workflow,
        workload,
        TwinOptions {
            window_seconds: protocol.window_seconds,
            seed,
        },
        true,
        None,
    )
    .map_err(twin_error("the scenario"))?;
    let options = LoopOptions {
        qos: *qos,
        max_iterations: protocol.iterations,
        converge_after: 0,
        cancel: Cancel::default(),
    };
    let report = tuning_loop::run(&mut twin, &mut Baseline(method), &options, &mut Silent)
        .map_err(|e| match e {
            LoopError::Environment(source) => twin_error("a proposal")(source),
            LoopError::Method(source) => CellError::Method { users, source },
            LoopError::Hook(never) => match never {},
        })?;
    Ok(CellResult {
        workflow: workflow.name.clone(),
        users,
        method: name,
        seed,
        best_cost: report.best.as_ref().map(|b| b.cost),
        best_config: report.best.as_ref().map(|b| b.config.clone()),
        feasible: report.first_feasible().is_some(),
        violations: report.violations(),
        iterations_to_feasible: report.first_feasible(),
        decision_seconds: report.decision_seconds,
        wall_seconds: started.elapsed().as_secs_f64(),
        iterations: report.iterations,
        held: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasconf_core::catalog;
    use faasconf_core::optimiser::Proposal;
    use faasconf_core::telemetry::WindowReport;

    /// Proposes a fixed sequence, then repeats the last.
    struct Scripted(Vec<WorkflowConfig>, usize);

    impl Optimiser for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn propose(&mut self, _: &WindowReport) -> Result<Proposal, OptimiserError> {
            let at = self.1.min(self.0.len() - 1);
            self.1 += 1;
            Ok(Proposal::new(self.0[at].clone()))
        }
    }

    #[test]
    fn a_cell_counts_violations_and_the_first_feasible_iteration_from_the_windows() {
        let workflow = catalog::builtin("parallel").expect("built in");
        let starved = workflow
            .config_from_actions(&vec![[0.0; 4]; workflow.len()])
            .expect("in bounds");
        let ample = workflow
            .config_from_actions(&vec![[1.0; 4]; workflow.len()])
            .expect("in bounds");
        let mut method = Scripted(vec![starved.clone(), starved, ample.clone()], 0);
        let protocol = Protocol {
            iterations: 5,
            window_seconds: 30.0,
        };
        let cell =
            run_cell(&workflow, 10, &Qos::default(), &mut method, 3, &protocol).expect("runs");
        assert_eq!(cell.iterations.len(), 5);
        assert!(!cell.iterations[0].qos_met && !cell.iterations[1].qos_met);
        assert!(cell.iterations[2..].iter().all(|i| i.qos_met));
        assert_eq!(cell.violations, 2);
        assert_eq!(cell.iterations_to_feasible, Some(3));
        assert_eq!(cell.best_cost, Some(ample.cost()));
        assert!(cell.feasible);
    }

    #[test]
    fn a_proposal_out_of_bounds_is_an_error_naming_the_method() {
        let workflow = catalog::builtin("parallel").expect("built in");
        let mut wrong = workflow
            .config_from_actions(&vec![[0.5; 4]; workflow.len()])
            .expect("in bounds");
        wrong.0.pop();
        let mut method = Scripted(vec![wrong], 0);
        let e = run_cell(
            &workflow,
            10,
            &Qos::default(),
            &mut method,
            1,
            &Protocol::default(),
        )
        .expect_err("refused");
        assert!(e.to_string().contains("scripted"), "{e}");
    }
}
