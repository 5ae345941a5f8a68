//! The in-process twin as a tuning loop's [`Environment`]: it starts from the middle of every
//! knob's range, optionally runs one warm-up window first (pods start, users ramp up: not an
//! observation), and spends one window on the rollout of every change (logged as transient,
//! never shown to the method), as a tuning session drops the window an apply finishes in.

use faasconf_core::telemetry::WindowReport;
use faasconf_core::{Workflow, WorkflowConfig};
use faasconf_twin::{Twin, TwinOptions, Workload};

use crate::tuning_loop::Environment;

/// One window the twin simulated, and whether a rollout happened in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulated {
    /// The window.
    pub window: WindowReport,
    /// A change was rolled out in it (not shown to the method).
    pub transient: bool,
}

/// The twin as an environment (see the module doc).
pub struct TwinEnvironment {
    twin: Twin,
    warm_up: bool,
    started: bool,
    /// Windows in all after which the environment ends (none: never).
    limit: Option<usize>,
    windows: Vec<Simulated>,
}

impl TwinEnvironment {
    /// The twin of `workflow` under `workload`, starting from the middle configuration; with
    /// `warm_up`, a first window is simulated and not observed; with `limit`, the environment
    /// ends after that many windows (rollouts included).
    pub fn new(
        workflow: &Workflow,
        workload: Workload,
        options: TwinOptions,
        warm_up: bool,
        limit: Option<usize>,
    ) -> Result<Self, faasconf_twin::Error> {
        let initial = workflow
            .config_from_actions(&vec![[0.5; 4]; workflow.len()])
            .map_err(faasconf_twin::Error::core)?;
        Ok(Self {
            twin: Twin::new(workflow.clone(), initial, workload, options)?,
            warm_up,
            started: false,
            limit,
            windows: Vec::new(),
        })
    }

    /// Every window simulated so far (the warm-up aside), rollouts included, in order.
    pub fn windows(&self) -> &[Simulated] {
        &self.windows
    }

    fn simulate(&mut self, transient: bool) -> WindowReport {
        let window = self.twin.run_window();
        self.windows.push(Simulated {
            window: window.clone(),
            transient,
        });
        window
    }
}

impl Environment for TwinEnvironment {
    type Error = faasconf_twin::Error;

    fn observe(&mut self) -> Result<Option<WindowReport>, Self::Error> {
        if !self.started {
            self.started = true;
            if self.warm_up {
                self.twin.run_window();
            }
        }
        if self.ended() {
            return Ok(None);
        }
        Ok(Some(self.simulate(false)))
    }

    fn apply(&mut self, config: &WorkflowConfig, _iteration: u32) -> Result<(), Self::Error> {
        let before = self.twin.config_version();
        self.twin.apply_config(config.clone())?;
        if self.twin.config_version() != before {
            self.simulate(true); // the rollout happens in this one
        }
        Ok(())
    }

    fn ended(&self) -> bool {
        self.limit.is_some_and(|l| self.windows.len() >= l)
    }
}
