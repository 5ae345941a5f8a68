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

use faasconf_core::optimiser::{Optimiser, OptimiserError};
use faasconf_core::{Qos, Workflow, WorkflowConfig};
use faasconf_twin::{Twin, TwinOptions, Workload};
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

/// One online iteration as measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterationRecord {
    /// 1-based.
    pub iteration: u32,
    /// Cost of the configuration applied.
    pub cost: f64,
    /// The configuration applied.
    pub config: WorkflowConfig,
    /// Mean end-to-end latency of its steady window, seconds.
    pub e2e_mean_s: f64,
    /// Success ratio of that window.
    pub success_ratio: f64,
    /// QoS met in that window.
    pub qos_met: bool,
    /// The method's safety filter replaced its proposal.
    pub ses_replaced: bool,
    /// The method rolled back.
    pub rollback: bool,
}

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

/// Runs `method` for `protocol.iterations` iterations on the twin at `users`.
pub fn run_cell(
    workflow: &Workflow,
    users: u32,
    qos: &Qos,
    method: &mut dyn Optimiser,
    seed: u64,
    protocol: &Protocol,
) -> Result<CellResult, CellError> {
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
    let initial = workflow
        .config_from_actions(&vec![[0.5; 4]; workflow.len()])
        .map_err(|e| twin_error("the initial configuration")(faasconf_twin::Error::core(e)))?;
    let mut twin = Twin::new(
        workflow.clone(),
        initial,
        Workload::ClosedLoop { users },
        TwinOptions {
            window_seconds: protocol.window_seconds,
            seed,
        },
    )
    .map_err(twin_error("the scenario"))?;
    twin.run_window(); // pods start and users ramp up: not an observation
    let mut observed = twin.run_window();
    let mut iterations = Vec::with_capacity(protocol.iterations as usize);
    let mut decision_seconds = 0.0;
    for iteration in 1..=protocol.iterations {
        let deciding = Instant::now();
        let proposal = method
            .propose(&observed)
            .map_err(|source| CellError::Method { users, source })?;
        decision_seconds += deciding.elapsed().as_secs_f64();
        let before = twin.config_version();
        twin.apply_config(proposal.config.clone())
            .map_err(twin_error("a proposal"))?;
        if twin.config_version() != before {
            twin.run_window(); // the rollout happens in this one
        }
        observed = twin.run_window();
        iterations.push(IterationRecord {
            iteration,
            cost: proposal.config.cost(),
            config: proposal.config,
            e2e_mean_s: observed.workflow.mean_latency_seconds,
            success_ratio: observed.workflow.success_ratio,
            qos_met: qos.met(&observed.workflow),
            ses_replaced: proposal.ses_replaced,
            rollback: proposal.rollback,
        });
    }
    let met = || iterations.iter().filter(|i| i.qos_met);
    let best = met().min_by(|a, b| a.cost.total_cmp(&b.cost));
    Ok(CellResult {
        workflow: workflow.name.clone(),
        users,
        method: name,
        seed,
        best_cost: best.map(|i| i.cost),
        best_config: best.map(|i| i.config.clone()),
        feasible: met().next().is_some(),
        violations: iterations.iter().filter(|i| !i.qos_met).count() as u32,
        iterations_to_feasible: met().next().map(|i| i.iteration),
        decision_seconds,
        wall_seconds: started.elapsed().as_secs_f64(),
        iterations,
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
