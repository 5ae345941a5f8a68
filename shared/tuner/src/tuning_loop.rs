//! The one tuning loop: observe a window, judge it, let the method propose, apply, observe the
//! window of what was applied, record the iteration — until the budget is spent, the best stops
//! improving, the environment ends or a stop is raised.
//!
//! Where the windows come from and where configurations go is an [`Environment`]: the
//! in-process twin ([`crate::twin_env::TwinEnvironment`]) for the benchmark, an actuator over
//! gRPC for the policy's tuning sessions. Who decides is a [`Method`]: faasconf's [`Tuner`] or
//! any [`Optimiser`] (the baselines). The loop is the one place that judges a window (QoS
//! verdict and reward, [`Judged`]), keeps the best configuration ([`Best`]), decides convergence
//! and yields the iteration record ([`Iteration`]) that sessions, the benchmark's protocol and
//! rq2 report.

use std::time::Instant;

use faasconf_core::cancel::Cancel;
use faasconf_core::optimiser::{Optimiser, OptimiserError, Proposal};
use faasconf_core::telemetry::WindowReport;
use faasconf_core::{Qos, WorkflowConfig};
use serde::{Deserialize, Serialize};

use crate::bests::{Best, Bests};
use crate::error::TunerError;
use crate::tuner::Tuner;

/// Where a tuning loop observes windows and applies configurations.
pub trait Environment {
    /// Why the environment failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The next steady window of the configuration last applied (the first call: of the
    /// configuration in force). `None`: the environment has ended (a stop, the end of its
    /// load); the loop then ends.
    fn observe(&mut self) -> Result<Option<WindowReport>, Self::Error>;

    /// Puts `config` in force; `iteration` (1-based) is the iteration it starts.
    fn apply(&mut self, config: &WorkflowConfig, iteration: u32) -> Result<(), Self::Error>;

    /// Whether the environment has nothing more to show (checked before each decision, so no
    /// decision is made that would never be observed).
    fn ended(&self) -> bool {
        false
    }
}

/// Who decides in a tuning loop.
pub trait Method {
    /// Why the method failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The method's name.
    fn name(&self) -> &str;

    /// Learns from `observed` (the steady window of the configuration in force, with the loop's
    /// verdict on it) and returns the configuration to apply next.
    fn propose(&mut self, observed: &WindowReport, judged: Judged)
    -> Result<Proposal, Self::Error>;

    /// The method's model's relative error on the window it learnt from last (`None`: no model,
    /// or no window yet). The loop records it on that window's iteration.
    fn twin_error(&self) -> Option<f64> {
        None
    }

    /// Steady twin windows the method's last decision simulated (`None`: no twin).
    fn twin_windows(&self) -> Option<u64> {
        None
    }

    /// Learns from the last window of a loop that ended on its budget or on convergence (no
    /// decision follows it).
    fn finish(&mut self, _observed: &WindowReport, _judged: Judged) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Any [`Optimiser`] (the baselines) as a [`Method`]: the verdict is its own business.
pub struct Baseline<'a>(pub &'a mut dyn Optimiser);

impl Method for Baseline<'_> {
    type Error = OptimiserError;

    fn name(&self) -> &str {
        self.0.name()
    }

    fn propose(&mut self, observed: &WindowReport, _: Judged) -> Result<Proposal, OptimiserError> {
        self.0.propose(observed)
    }

    fn twin_windows(&self) -> Option<u64> {
        self.0.twin_windows()
    }
}

impl Method for Tuner {
    type Error = TunerError;

    fn name(&self) -> &str {
        "faasconf"
    }

    fn propose(&mut self, observed: &WindowReport, judged: Judged) -> Result<Proposal, TunerError> {
        self.observe(observed, judged)?;
        self.decide(observed)
    }

    fn finish(&mut self, observed: &WindowReport, judged: Judged) -> Result<(), TunerError> {
        self.observe(observed, judged)
    }

    fn twin_error(&self) -> Option<f64> {
        Tuner::twin_error(self)
    }

    fn twin_windows(&self) -> Option<u64> {
        Some(Tuner::twin_windows(self))
    }
}

/// A window judged against the QoS target: the verdict and the reward, computed here only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judged {
    /// The window met QoS.
    pub qos_met: bool,
    /// Its shared reward ([`Qos::reward`]).
    pub reward: f64,
    /// How far it kept inside the target ([`Qos::headroom`]).
    pub headroom: f64,
}

impl Judged {
    /// The verdict on `window`.
    pub fn of(qos: &Qos, window: &WindowReport) -> Self {
        Self {
            qos_met: qos.met(&window.workflow),
            reward: qos.reward(&window.workflow),
            headroom: qos.headroom(&window.workflow),
        }
    }
}

/// One iteration: the configuration applied and what its steady window did. The record every
/// report of a tuning run is made of (sessions, the benchmark's cells, rq2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Iteration {
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
    /// The window's reward (0 in records written before it was kept).
    #[serde(default)]
    pub reward: f64,
    /// The method's twin's relative error on this window's end-to-end latency, before it was
    /// refitted to it (`None`: a method without a twin, or the last window of a loop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twin_error: Option<f64>,
    /// Seconds the method took to decide on the configuration applied (0 in records written
    /// before it was kept).
    #[serde(default)]
    pub decision_s: f64,
    /// Steady twin windows that decision simulated (`None`: a method without a twin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twin_windows: Option<u64>,
}

/// Why a loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every iteration of the budget was done.
    BudgetSpent,
    /// The best cost did not improve for this many iterations.
    Converged {
        /// Iterations since the best last improved.
        since_best: u32,
    },
    /// A stop was raised; nothing was applied after it.
    Stopped,
    /// The environment ended.
    EnvironmentEnded,
}

/// How a loop runs.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopOptions {
    /// The QoS target windows are judged against.
    pub qos: Qos,
    /// Iterations (configurations applied and observed).
    pub max_iterations: u32,
    /// Convergence patience: end when the best has not improved for this many iterations
    /// (0: never).
    pub converge_after: u32,
    /// Raised: the loop ends before the next decision or apply ([`Ended::Stopped`]).
    pub cancel: Cancel,
}

/// What the caller hears of a running loop (every hook does nothing by default).
pub trait Hooks<M> {
    /// Why a hook failed (the loop ends with it).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Every window observed (the first included), judged.
    fn window(&mut self, _window: &WindowReport, _judged: Judged) -> Result<(), Self::Error> {
        Ok(())
    }

    /// A window the telemetry source could not fully measure
    /// ([`WindowReport::is_complete`]): skipped, neither judged nor learnt from.
    fn incomplete(&mut self, _window: &WindowReport) -> Result<(), Self::Error> {
        Ok(())
    }

    /// The method proposed (it may be asked what it knows, e.g. why it rolled back).
    fn proposed(&mut self, _method: &M, _proposal: &Proposal) {}

    /// An iteration ended; `best` is the best so far.
    fn iteration(&mut self, _record: &Iteration, _best: Option<&Best>) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Hooks that do nothing.
pub struct Silent;

impl<M> Hooks<M> for Silent {
    type Error = std::convert::Infallible;
}

/// What a loop did.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The iterations.
    pub iterations: Vec<Iteration>,
    /// The cheapest configuration applied that held ([`Best`]).
    pub best: Option<Best>,
    /// Why it ended.
    pub ended: Ended,
    /// Seconds the method spent deciding, all iterations together.
    pub decision_seconds: f64,
}

impl Report {
    /// Iterations that missed QoS.
    pub fn violations(&self) -> u32 {
        self.iterations.iter().filter(|i| !i.qos_met).count() as u32
    }

    /// The first iteration that met QoS.
    pub fn first_feasible(&self) -> Option<u32> {
        self.iterations
            .iter()
            .find(|i| i.qos_met)
            .map(|i| i.iteration)
    }
}

/// Why a loop failed: the environment, the method or a hook.
#[derive(Debug, thiserror::Error)]
pub enum LoopError<E, M, H>
where
    E: std::error::Error + 'static,
    M: std::error::Error + 'static,
    H: std::error::Error + 'static,
{
    /// The environment failed.
    #[error(transparent)]
    Environment(E),
    /// The method failed.
    #[error(transparent)]
    Method(M),
    /// A hook failed.
    #[error(transparent)]
    Hook(H),
}

/// The error of a loop over `E`, `M` and `H`.
pub type LoopErrorOf<E, M, H> =
    LoopError<<E as Environment>::Error, <M as Method>::Error, <H as Hooks<M>>::Error>;

/// The environment's next complete window: one with a series missing holds unknowns read as 0,
/// so it is shown to [`Hooks::incomplete`] and skipped — never judged, never learnt from.
fn next_complete<E, M, H>(
    environment: &mut E,
    hooks: &mut H,
) -> Result<Option<WindowReport>, LoopErrorOf<E, M, H>>
where
    E: Environment,
    M: Method,
    H: Hooks<M>,
{
    loop {
        match environment.observe().map_err(LoopError::Environment)? {
            Some(window) if !window.is_complete() => {
                hooks.incomplete(&window).map_err(LoopError::Hook)?;
            }
            next => return Ok(next),
        }
    }
}

/// Runs the loop (see the module doc).
pub fn run<E, M, H>(
    environment: &mut E,
    method: &mut M,
    options: &LoopOptions,
    hooks: &mut H,
) -> Result<Report, LoopErrorOf<E, M, H>>
where
    E: Environment,
    M: Method,
    H: Hooks<M>,
{
    let mut report = Report {
        iterations: Vec::new(),
        best: None,
        ended: Ended::BudgetSpent,
        decision_seconds: 0.0,
    };
    let Some(mut observed) = next_complete::<E, M, H>(environment, hooks)? else {
        report.ended = Ended::EnvironmentEnded;
        return Ok(report);
    };
    let mut judged = Judged::of(&options.qos, &observed);
    hooks.window(&observed, judged).map_err(LoopError::Hook)?;
    let mut since_best = 0u32;
    let mut bests = Bests::default();
    for iteration in 1..=options.max_iterations {
        if environment.ended() {
            report.ended = Ended::EnvironmentEnded;
            return Ok(report);
        }
        if options.cancel.is_cancelled() {
            report.ended = Ended::Stopped;
            return Ok(report);
        }
        let deciding = Instant::now();
        let proposed = method.propose(&observed, judged);
        let decision_s = deciding.elapsed().as_secs_f64();
        report.decision_seconds += decision_s;
        // Stopped while deciding: nothing is applied after a stop.
        if options.cancel.is_cancelled() {
            report.ended = Ended::Stopped;
            return Ok(report);
        }
        let proposal = proposed.map_err(LoopError::Method)?;
        if let Some(last) = report.iterations.last_mut() {
            last.twin_error = method.twin_error();
        }
        hooks.proposed(method, &proposal);
        environment
            .apply(&proposal.config, iteration)
            .map_err(LoopError::Environment)?;
        let Some(window) = next_complete::<E, M, H>(environment, hooks)? else {
            report.ended = if options.cancel.is_cancelled() {
                Ended::Stopped
            } else {
                Ended::EnvironmentEnded
            };
            return Ok(report);
        };
        judged = Judged::of(&options.qos, &window);
        hooks.window(&window, judged).map_err(LoopError::Hook)?;
        let record = Iteration {
            iteration,
            cost: window.config.cost(),
            config: window.config.clone(),
            e2e_mean_s: window.workflow.mean_latency_seconds,
            success_ratio: window.workflow.success_ratio,
            qos_met: judged.qos_met,
            ses_replaced: proposal.ses_replaced,
            rollback: proposal.rollback,
            reward: judged.reward,
            twin_error: None,
            decision_s,
            twin_windows: method.twin_windows(),
        };
        if bests.offer(&window.config, judged) {
            since_best = 0;
        } else {
            since_best += 1;
        }
        report.best = bests.best().cloned();
        hooks
            .iteration(&record, report.best.as_ref())
            .map_err(LoopError::Hook)?;
        report.iterations.push(record);
        observed = window;
        // Converged before budget spent: when both hold on the last iteration, that the best
        // stopped improving is what the caller wants to know.
        if options.converge_after > 0
            && report.best.is_some()
            && since_best >= options.converge_after
        {
            report.ended = Ended::Converged { since_best };
            break;
        }
    }
    method
        .finish(&observed, judged)
        .map_err(LoopError::Method)?;
    Ok(report)
}

#[cfg(test)]
mod tests;
