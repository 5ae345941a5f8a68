//! The tuning loop's tests: a scripted method on the twin and on a scripted environment.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::twin_env::TwinEnvironment;
use faasconf_core::catalog::builtin;
use faasconf_core::{Workflow, WorkflowConfig};
use faasconf_twin::{TwinOptions, Workload};

/// Proposes a fixed sequence, then repeats the last; counts its calls.
struct Scripted {
    configs: Vec<WorkflowConfig>,
    calls: usize,
    finished: usize,
    /// Raised on this call (1-based), as a stop while deciding.
    stop_on: Option<(usize, Cancel)>,
}

impl Method for Scripted {
    type Error = std::convert::Infallible;

    fn name(&self) -> &str {
        "scripted"
    }

    fn propose(&mut self, _: &WindowReport, _: Judged) -> Result<Proposal, Self::Error> {
        let at = self.calls.min(self.configs.len() - 1);
        self.calls += 1;
        if let Some((n, cancel)) = &self.stop_on
            && *n == self.calls
        {
            cancel.cancel();
        }
        Ok(Proposal::new(self.configs[at].clone()))
    }

    fn finish(&mut self, _: &WindowReport, _: Judged) -> Result<(), Self::Error> {
        self.finished += 1;
        Ok(())
    }
}

fn scripted(configs: Vec<WorkflowConfig>) -> Scripted {
    Scripted {
        configs,
        calls: 0,
        finished: 0,
        stop_on: None,
    }
}

fn at(workflow: &Workflow, level: f64) -> WorkflowConfig {
    workflow
        .config_from_actions(&vec![[level; 4]; workflow.len()])
        .unwrap()
}

fn twin(workflow: &Workflow, limit: Option<usize>) -> TwinEnvironment {
    TwinEnvironment::new(
        workflow,
        Workload::ClosedLoop { users: 10 },
        TwinOptions {
            window_seconds: 30.0,
            seed: 3,
        },
        true,
        limit,
    )
    .unwrap()
}

fn loop_options(max_iterations: u32, converge_after: u32) -> LoopOptions {
    LoopOptions {
        qos: Qos::default(),
        max_iterations,
        converge_after,
        cancel: Cancel::default(),
    }
}

#[test]
fn the_loop_judges_each_window_once_and_keeps_the_cheapest_that_met_qos() {
    let w = builtin("parallel").unwrap();
    let (starved, ample, rich) = (at(&w, 0.0), at(&w, 0.9), at(&w, 1.0));
    let mut method = scripted(vec![starved.clone(), rich.clone(), ample.clone(), rich]);
    let mut env = twin(&w, None);
    let report = run(&mut env, &mut method, &loop_options(5, 0), &mut Silent).unwrap();
    assert_eq!(report.ended, Ended::BudgetSpent);
    assert_eq!(report.iterations.len(), 5);
    assert_eq!(method.calls, 5);
    assert_eq!(method.finished, 1, "the last window is learnt from");
    let first = &report.iterations[0];
    assert_eq!(first.config, starved);
    assert!(!first.qos_met && first.reward < -1.0, "{first:?}");
    assert!(report.iterations[1..].iter().all(|i| i.qos_met));
    assert_eq!(report.violations(), 1);
    assert_eq!(report.first_feasible(), Some(2));
    assert_eq!(report.best.as_ref().map(|b| &b.config), Some(&ample));
    for i in &report.iterations {
        let window = env
            .windows()
            .iter()
            .filter(|s| !s.transient)
            .nth(i.iteration as usize)
            .unwrap();
        assert_eq!(Judged::of(&Qos::default(), &window.window).reward, i.reward);
    }
    // Each change costs a rollout window, never shown to the method; the repeat costs none.
    let rollouts = env.windows().iter().filter(|s| s.transient).count();
    assert_eq!(rollouts, 4);
}

#[test]
fn the_loop_ends_when_the_best_stops_improving() {
    let w = builtin("parallel").unwrap();
    let mut method = scripted(vec![at(&w, 1.0)]);
    let report = run(
        &mut twin(&w, None),
        &mut method,
        &loop_options(15, 3),
        &mut Silent,
    )
    .unwrap();
    assert_eq!(report.ended, Ended::Converged { since_best: 3 });
    assert_eq!(report.iterations.len(), 4);
}

#[test]
fn a_stop_while_deciding_applies_nothing_and_an_ended_environment_ends_the_loop() {
    let w = builtin("parallel").unwrap();
    let options = loop_options(15, 0);
    let mut method = scripted(vec![at(&w, 0.9), at(&w, 1.0)]);
    method.stop_on = Some((2, options.cancel.clone()));
    let mut env = twin(&w, None);
    let report = run(&mut env, &mut method, &options, &mut Silent).unwrap();
    assert_eq!(report.ended, Ended::Stopped);
    assert_eq!(report.iterations.len(), 1);
    assert_eq!(
        env.windows().iter().filter(|s| s.transient).count(),
        1,
        "the second proposal was never applied"
    );
    assert_eq!(method.finished, 0);
    // Five windows in all: the first, then (rollout, steady) twice; no decision is made that
    // would not be observed.
    let mut method = scripted(vec![at(&w, 0.9), at(&w, 1.0), at(&w, 0.8)]);
    let mut env = twin(&w, Some(5));
    let report = run(&mut env, &mut method, &loop_options(15, 0), &mut Silent).unwrap();
    assert_eq!(report.ended, Ended::EnvironmentEnded);
    assert_eq!(report.iterations.len(), 2);
    assert_eq!(method.calls, 2);
    assert_eq!(env.windows().len(), 5);
}

/// Every other window the source misses a series.
struct Patchy {
    inner: TwinEnvironment,
    observed: usize,
}

impl Environment for Patchy {
    type Error = <TwinEnvironment as Environment>::Error;

    fn observe(&mut self) -> Result<Option<WindowReport>, Self::Error> {
        self.observed += 1;
        Ok(self.inner.observe()?.map(|mut w| {
            if self.observed % 2 == 1 {
                w.workflow.missing_series = vec!["cpu_usage_percent".into()];
            }
            w
        }))
    }

    fn apply(&mut self, config: &WorkflowConfig, iteration: u32) -> Result<(), Self::Error> {
        self.inner.apply(config, iteration)
    }
}

/// Counts what the loop shows it.
#[derive(Default)]
struct Counting {
    judged: Vec<bool>,
    incomplete: usize,
}

impl Hooks<Scripted> for Counting {
    type Error = std::convert::Infallible;

    fn window(&mut self, window: &WindowReport, _: Judged) -> Result<(), Self::Error> {
        self.judged.push(window.is_complete());
        Ok(())
    }

    fn incomplete(&mut self, _: &WindowReport) -> Result<(), Self::Error> {
        self.incomplete += 1;
        Ok(())
    }
}

#[test]
fn windows_with_a_series_missing_are_neither_judged_nor_learnt_from() {
    let w = builtin("parallel").unwrap();
    let mut method = scripted(vec![at(&w, 0.9)]);
    let mut env = Patchy {
        inner: twin(&w, None),
        observed: 0,
    };
    let mut hooks = Counting::default();
    let report = run(&mut env, &mut method, &loop_options(3, 0), &mut hooks).unwrap();
    assert_eq!(report.iterations.len(), 3);
    assert_eq!(method.calls, 3);
    // The first window and one before each iteration's were incomplete: skipped.
    assert_eq!(hooks.incomplete, 4);
    assert_eq!(hooks.judged, [true; 4], "only complete windows are judged");
}
