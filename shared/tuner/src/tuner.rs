//! faasconf's online tuning method as an [`Optimiser`]: each steady window is learnt from
//! (replay and a few actor-critic updates; safe exploration's history), then the next
//! configuration is decided — a rollback to the best configuration so far (before one, the
//! last that met QoS) when QoS was missed `rollback_after` windows in a row, otherwise the
//! planner (policy -> safe exploration -> twin screening). Tuning sessions drive it over gRPC; the benchmark drives it on the twin
//! directly, beside the baselines.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use faasconf_core::cancel::Cancel;
use faasconf_core::optimiser::{Optimiser, OptimiserError, Proposal};
use faasconf_core::rng::Rng;
use faasconf_core::telemetry::WindowReport;
use faasconf_core::{Qos, Workflow, WorkflowConfig};
use faasconf_ses::{SafeExplorer, Sample};
use faasconf_store::Observation;
use faasconf_training::Model;
use faasconf_training::replay::{ReplayBuffer, Transition, transitions};
use faasconf_training::samples::{SampleOptions, twin_samples};
use faasconf_twin::follow::{FollowOptions, LoadModel, Observed, refit};

use crate::bests::Bests;
use crate::error::TunerError;
use crate::fallback::grow_bottleneck;
use crate::forecast::{ForecastOptions, LoadForecast};
use crate::load::{Load, on_users_scale};
use crate::lock;
use crate::memo::Memo;
use crate::outcomes::{Calibration, Tally};
use crate::planner::{PlanInput, PlanOptions, propose, screen};
use crate::tuning_loop::Judged;

/// Online updates after each observed transition.
pub const ONLINE_UPDATES: usize = 16;

/// The highest share of windows a widened margin asks to meet QoS. Some windows miss whatever
/// the configuration (at 10 users about 7% of the twin's 30 s windows lose 3 of their ~25
/// requests to the platform's own call failures), so asking for more leaves nothing acceptable.
pub const MAX_PASS_RATE: f64 = 0.9;

/// Replay capacity of a tuner (transitions; the oldest are dropped first).
pub const REPLAY_CAPACITY: usize = 50_000;

/// Steady windows the twin is refitted to (the newest; the cluster may drift).
pub const FOLLOW_WINDOWS: usize = 8;

/// The median error of the twin on the windows it follows (end-to-end mean latency) under
/// which it is kept as it is: about a calibrated twin's own fidelity (held-out median error
/// 7.6%). A refit to a few windows moves by their noise even when the twin is right; adopting
/// every such move would chase noise and throw away what the memo holds ([`crate::memo`]).
pub const TWIN_GOOD: f64 = 0.10;

/// The move of the twin, from the one the agents last learnt on, past which they are fine-tuned
/// on the refitted twin (the largest change of a function's CPU work or I/O time, in log
/// space: about 25%). The agents' actor proposes where screening starts; trained on a twin
/// that is far from the cluster, it starts far from what the cluster needs.
pub const FINE_TUNE_MOVE: f64 = 0.22;

/// Windows the twin must have been refitted to before the agents are fine-tuned on it: a refit
/// to one or two windows moves by their noise.
pub const FINE_TUNE_MIN_WINDOWS: usize = 4;

/// Twin samples (one steady window each) a fine-tuning draws on the refitted twin at the
/// measured load, and the actor-critic updates it runs on them.
pub const FINE_TUNE_SAMPLES: usize = 240;
/// See [`FINE_TUNE_SAMPLES`].
pub const FINE_TUNE_UPDATES: usize = 240;

/// Relative error of the twin's end-to-end latency above which it is called wrong.
pub const TWIN_WRONG: f64 = 0.25;

/// Consecutive wrong windows, refits notwithstanding, after which the twin stays wrong: its
/// ranking is no longer trusted after a miss ([`crate::fallback`]).
pub const WRONG_AFTER: u32 = 3;

/// How a tuner decides.
#[derive(Debug, Clone, PartialEq)]
pub struct TunerOptions {
    /// The QoS target.
    pub qos: Qos,
    /// Consecutive QoS-missing windows after a change before reverting.
    pub rollback_after: u32,
    /// Screen proposals on the twin.
    pub screen: bool,
    /// Filter the agents' actions by safe exploration and seed the screening with its history
    /// (off only in the benchmark's ablation).
    pub safe_exploration: bool,
    /// Refit the twin's profiles to the windows observed (the twin follows the cluster), so
    /// that screening ranks on what the cluster does rather than on what the twin believed (a
    /// refit is adopted when the twin's median error on those windows is over [`TWIN_GOOD`] and
    /// the refit lowers it; the agents are fine-tuned on it when it moved far,
    /// [`FINE_TUNE_MOVE`]); the twin's error is then reported per window, and while it stays
    /// wrong a miss grows the measured bottleneck instead ([`crate::fallback`]).
    pub follow: bool,
    /// Plan each decision for the load forecast over the next windows (upper quantile, with
    /// hysteresis: [`crate::forecast`]) rather than for the load just measured.
    pub forecast: bool,
    /// How the cluster's load is read from its windows and screened: what the deployment
    /// declares.
    pub load_model: LoadModel,
    /// Function calls the twin may simulate per decision (none: the full search whatever a
    /// window costs; [`crate::PlanOptions::work_budget`], default
    /// [`crate::DEFAULT_WORK_BUDGET`]).
    pub work_budget: Option<u64>,
    /// Seed of the exploration noise and of the twin's screening seeds.
    pub seed: u64,
    /// Raised: a decision in progress stops and fails with [`TunerError::Cancelled`].
    pub cancel: Cancel,
}

/// faasconf's tuning method (see the module doc).
pub struct Tuner {
    /// The twin screening runs on: the prior, refitted to the windows observed when following.
    workflow: Workflow,
    /// The twin as given (the stored profiles): what refits start from and shrink towards.
    prior: Workflow,
    /// The newest steady windows, for refits.
    observed: VecDeque<Observed>,
    twin_error: Option<f64>,
    /// Consecutive windows the twin was wrong on.
    wrong_windows: u32,
    model: Model,
    explorer: Arc<Mutex<SafeExplorer>>,
    options: TunerOptions,
    replay: ReplayBuffer,
    rng: Rng,
    /// The last window learnt from.
    previous: Option<WindowReport>,
    last_good: Option<WorkflowConfig>,
    misses: u32,
    /// Whether the window in hand follows one of this tuner's proposals.
    proposed: bool,
    /// What the cluster did with each configuration: the best, and what not to propose again.
    best: Bests,
    /// Latency margin, success margin, pass rate the planner asks for.
    margin: (f64, f64, f64),
    /// The held-out pass rate of the configuration applied last, when screened as acceptable.
    predicted: Option<f64>,
    /// Steady twin windows the last decision simulated.
    twin_windows: u64,
    confirmations: Tally,
    calibration: Calibration,
    rollbacks: u32,
    news: String,
    /// Closed-loop users of the windows seen, and what to plan for.
    users_ahead: LoadForecast,
    /// Open-loop arrival rates of the windows seen, and what to plan for.
    rate_ahead: LoadForecast,
    /// Twin evaluations of the decisions so far, handed back while the twin and the load stay.
    memo: Arc<Memo>,
    /// The twin the agents last learnt on (the prior, until a fine-tuning).
    trained_on: Workflow,
    /// Fine-tunings on a refitted twin so far.
    fine_tunes: u32,
}

impl Tuner {
    /// A tuner over `model` (a private copy: online learning changes it), with the workflow's
    /// safe-exploration strategy and its stored `history` to replay.
    pub fn new(
        workflow: Workflow,
        model: Model,
        explorer: Arc<Mutex<SafeExplorer>>,
        history: &[&Observation],
        options: TunerOptions,
    ) -> Result<Self, TunerError> {
        options
            .qos
            .validate("qos")
            .map_err(|e| TunerError::Invalid(e.field_errors().to_vec()))?;
        let mut replay = ReplayBuffer::new(REPLAY_CAPACITY);
        replay.extend(transitions(&workflow, &model.encoder, history)?);
        let defaults = PlanOptions::default();
        Ok(Self {
            rng: Rng::stream(options.seed, 42),
            prior: workflow.clone(),
            trained_on: workflow.clone(),
            observed: VecDeque::new(),
            twin_error: None,
            wrong_windows: 0,
            workflow,
            model,
            explorer,
            options,
            replay,
            previous: None,
            last_good: None,
            misses: 0,
            proposed: false,
            best: Bests::default(),
            margin: (
                defaults.latency_margin,
                defaults.success_margin,
                defaults.pass_rate,
            ),
            predicted: None,
            twin_windows: 0,
            confirmations: Tally::default(),
            calibration: Calibration::default(),
            rollbacks: 0,
            news: String::new(),
            users_ahead: LoadForecast::new(ForecastOptions::default()),
            rate_ahead: LoadForecast::new(ForecastOptions::default()),
            memo: Arc::new(Memo::new()),
            fine_tunes: 0,
        })
    }

    /// Rollbacks done.
    pub fn rollbacks(&self) -> u32 {
        self.rollbacks
    }

    /// What the last rollback was about (empty before one).
    pub fn news(&self) -> &str {
        &self.news
    }

    /// The twin's relative error on the end-to-end latency of the window observed last, for
    /// the configuration in force, before it was refitted to that window (`None` before a
    /// steady window, or when not following).
    pub fn twin_error(&self) -> Option<f64> {
        self.twin_error
    }

    /// Steady twin windows the last decision simulated (0: it screened nothing).
    pub fn twin_windows(&self) -> u64 {
        self.twin_windows
    }

    /// Fine-tunings of the agents on a refitted twin so far ([`FINE_TUNE_MOVE`]).
    pub fn fine_tunes(&self) -> u32 {
        self.fine_tunes
    }

    /// Whether the twin stays wrong: its error exceeded [`TWIN_WRONG`] on the last
    /// [`WRONG_AFTER`] windows, each after a refit to the windows before it.
    pub fn twin_wrong(&self) -> bool {
        self.wrong_windows >= WRONG_AFTER
    }

    /// Per function: the refitted twin's CPU work and I/O time over the stored profiles' (1: not
    /// moved).
    pub fn twin_factors(&self) -> Vec<(String, f64, f64)> {
        faasconf_twin::follow::factors(&self.prior, &self.workflow)
            .into_iter()
            .zip(&self.workflow.functions)
            .map(|((cpu, io), f)| (f.name.clone(), cpu, io))
            .collect()
    }

    /// Whether a refit was adopted: the twin the session started from was found wrong.
    fn twin_found_wrong(&self) -> bool {
        self.workflow != self.prior
    }

    /// The twin screening runs on now.
    pub fn twin(&self) -> &Workflow {
        &self.workflow
    }

    /// Records the load `window` measured in its forecast (users or arrival rate, whichever the
    /// decision screens).
    fn record_load(&mut self, window: &WindowReport) {
        let load = Load::of(&self.prior, window, self.options.load_model);
        match load.arrivals_per_second {
            Some(rate) => self.rate_ahead.observe(rate),
            None => self.users_ahead.observe(f64::from(load.users)),
        }
    }

    /// The load the decision after `window` screens: the one measured, or with forecasting the
    /// forecast's plan ([`LoadForecast::plan`]), never less than measured.
    fn planned_load(&self, window: &WindowReport) -> Load {
        let load = Load::of(&self.prior, window, self.options.load_model);
        if !self.options.forecast {
            return load;
        }
        match load.arrivals_per_second {
            Some(rate) => Load {
                arrivals_per_second: Some(self.rate_ahead.plan().map_or(rate, |p| p.max(rate))),
                ..load
            },
            None => Load {
                users: self.users_ahead.plan().map_or(load.users, |p| {
                    (p.ceil() as u32)
                        .clamp(load.users, faasconf_core::limits::MAX_USERS.max(load.users))
                }),
                ..load
            },
        }
    }

    /// Refits the twin to the newest steady windows and records its error on `window`.
    fn follow(&mut self, window: &WindowReport) {
        let Some(observed) = Observed::from_window(&self.prior, window, self.options.load_model)
        else {
            return;
        };
        if self.observed.len() == FOLLOW_WINDOWS {
            self.observed.pop_front();
        }
        self.observed.push_back(observed);
        let options = FollowOptions {
            window_seconds: window.duration_seconds,
            seed: self.options.seed ^ 0xf0_11_0e,
            ..FollowOptions::default()
        };
        let newest = self.observed.len() - 1;
        let fit = refit(
            &self.prior,
            &self.workflow,
            self.observed.make_contiguous(),
            &options,
        );
        let error = fit.errors_before[newest];
        self.twin_error = Some(error);
        self.wrong_windows = if error > TWIN_WRONG {
            self.wrong_windows + 1
        } else {
            0
        };
        metrics::gauge!("faasconf_policy_twin_error", "workflow" => self.workflow.name.clone())
            .set(error);
        let adopted = fit.error_before > TWIN_GOOD && fit.error_after < fit.error_before;
        tracing::info!(
            twin_error = error,
            median_error = fit.error_before,
            refitted_error = fit.error_after,
            adopted,
            "twin refitted to {} windows",
            self.observed.len()
        );
        if adopted {
            self.workflow = fit.workflow;
        }
    }

    /// Fine-tunes the agents on the twin screening runs on when it moved past
    /// [`FINE_TUNE_MOVE`] from the one they last learnt on, refitted to at least
    /// [`FINE_TUNE_MIN_WINDOWS`] windows: [`FINE_TUNE_SAMPLES`] twin windows
    /// at the load of `window`, learnt from alone for [`FINE_TUNE_UPDATES`] updates, then kept in
    /// the replay with the rest.
    fn fine_tune_if_moved(&mut self, window: &WindowReport) -> Result<(), TunerError> {
        let moved = faasconf_twin::follow::factors(&self.trained_on, &self.workflow)
            .into_iter()
            .map(|(cpu, io)| cpu.ln().abs().max(io.ln().abs()))
            .fold(0.0, f64::max);
        if moved <= FINE_TUNE_MOVE || self.observed.len() < FINE_TUNE_MIN_WINDOWS {
            return Ok(());
        }
        let users = Load::of(&self.prior, window, self.options.load_model).users;
        let options = SampleOptions {
            loads: vec![users.clamp(1, faasconf_core::limits::MAX_USERS)],
            samples: FINE_TUNE_SAMPLES,
            episode_length: 12,
            window_seconds: window.duration_seconds.clamp(1.0, 3600.0),
            qos: self.options.qos,
            seed: self.options.seed ^ (0xf1e7_0000 + u64::from(self.fine_tunes)),
            cancel: self.options.cancel.clone(),
            ..SampleOptions::default()
        };
        let observations = twin_samples(&self.workflow, &options, &|_| {})?;
        let observed: Vec<&Observation> = observations.iter().collect();
        let fresh = transitions(&self.workflow, &self.model.encoder, &observed)?;
        let mut tuning = ReplayBuffer::new(fresh.len().max(1));
        tuning.extend(fresh.iter().cloned());
        let batch = self.model.learner.config().batch_size;
        for _ in 0..FINE_TUNE_UPDATES {
            if self.options.cancel.is_cancelled() {
                return Err(TunerError::Cancelled);
            }
            self.model
                .learner
                .update(&tuning.sample(batch, &mut self.rng))?;
        }
        self.replay.extend(fresh);
        self.trained_on = self.workflow.clone();
        self.fine_tunes += 1;
        metrics::counter!("faasconf_policy_fine_tunes_total", "workflow" => self.workflow.name.clone()).increment(1);
        tracing::info!(
            moved,
            samples = observations.len(),
            "agents fine-tuned on the refitted twin"
        );
        Ok(())
    }

    /// Learns from the steady window of the configuration in force: safe exploration's history,
    /// a transition and online updates, what the configuration did, whether the twin's
    /// predictions hold, and the rollback guard's count.
    pub fn observe(&mut self, measured: &WindowReport, judged: Judged) -> Result<(), TunerError> {
        let Judged {
            qos_met: met,
            reward,
            ..
        } = judged;
        // The state and safe exploration are in users; the refit simulates what was measured.
        let scaled = on_users_scale(&self.prior, measured);
        let window = &*scaled;
        let actions = self.workflow.actions_of(&window.config);
        let name = self.workflow.name.clone();
        lock(&self.explorer).observe(Sample {
            users: window.users,
            actions: actions.clone(),
            price: window.config.cost(),
            qos_met: met,
        });
        // The transition: the state before, the configuration then applied (in force now), this
        // window's reward and state.
        if let Some(before) = &self.previous {
            let state = self.model.encoder.encode(&self.workflow, before)?;
            let t = Transition::to_window(
                &self.workflow,
                &self.model.encoder,
                state,
                &actions,
                window,
                reward,
                met,
            )?;
            self.replay.push(t);
            let batch = self.model.learner.config().batch_size;
            for _ in 0..ONLINE_UPDATES {
                let losses = self
                    .model
                    .learner
                    .update(&self.replay.sample(batch, &mut self.rng))?;
                metrics::gauge!("faasconf_policy_critic_loss", "workflow" => name.clone())
                    .set(f64::from(losses.critic));
                metrics::gauge!("faasconf_policy_actor_loss", "workflow" => name.clone())
                    .set(f64::from(losses.actor));
            }
        }
        self.previous = Some(window.clone());
        self.record_load(measured);
        if self.options.follow {
            self.follow(measured);
            self.fine_tune_if_moved(measured)?;
        }
        // Configurations the twin passed miss QoS more often than its held-out pass rates said:
        // widen the margin, so later choices keep further from the edge.
        if let Some(pass_rate) = self.predicted.take()
            && self.calibration.observe(pass_rate, met)
        {
            let m = &mut self.margin;
            *m = (
                (m.0 + 0.02).min(0.2),
                (m.1 + 0.01).min(0.06),
                (m.2 + 0.05).min(MAX_PASS_RATE),
            );
            tracing::info!(
                latency_margin = m.0,
                success_margin = m.1,
                pass_rate = m.2,
                "the twin was optimistic: margin widened"
            );
        }
        if self.proposed {
            self.best.offer(&window.config, judged);
        } else {
            self.best.witness(&window.config, judged);
        }
        if met {
            self.misses = 0;
            self.last_good = Some(window.config.clone());
        } else {
            self.misses += 1;
        }
        Ok(())
    }

    /// The configuration to apply after the window last observed.
    pub fn decide(&mut self, window: &WindowReport) -> Result<Proposal, TunerError> {
        self.proposed = true;
        self.twin_windows = 0;
        // Back to the session's best, which has held; the last configuration that met QoS may
        // have met it once among misses. Before there is a best, to the last that met QoS.
        let (back_to, what) = match self.best.best() {
            Some(best) => (Some(&best.config), "the best configuration so far"),
            None => (
                self.last_good.as_ref(),
                "the last QoS-meeting configuration",
            ),
        };
        if let Some(good) = back_to
            && self.misses >= self.options.rollback_after.max(1)
            && *good != window.config
        {
            let good = good.clone();
            self.rollbacks += 1;
            self.news = format!(
                "rolled back after {} consecutive QoS misses to {what} (cost {:.3})",
                self.misses,
                good.cost()
            );
            tracing::info!(misses = self.misses, to = what, "rolling back");
            metrics::counter!("faasconf_policy_rollbacks_total", "workflow" => self.workflow.name.clone()).increment(1);
            self.misses = 0;
            return Ok(Proposal {
                config: good,
                ses_replaced: false,
                rollback: true,
            });
        }
        if self.twin_wrong()
            && self.misses > 0
            && let Some(grown) = grow_bottleneck(&self.workflow, window)
        {
            self.news = format!(
                "the twin stays wrong (error {:.0}% on the last window): grew {} {} on the measured bottleneck",
                self.twin_error.unwrap_or(f64::NAN) * 100.0,
                grown.function,
                grown.knob.name()
            );
            tracing::info!(function = %grown.function, knob = grown.knob.name(), "the twin stays wrong: growing the measured bottleneck");
            return Ok(Proposal::new(grown.config));
        }
        let options = PlanOptions {
            screen: self.options.screen,
            twin_seed: self.options.seed ^ 0x5c3e,
            latency_margin: self.margin.0,
            success_margin: self.margin.1,
            pass_rate: self.margin.2,
            work_budget: self.options.work_budget,
            ..PlanOptions::default()
        };
        // Once the twin was found wrong (a refit adopted), a miss of a configuration it passed
        // weighs more.
        let avoid = self
            .best
            .to_avoid(options.pass_rate, self.twin_found_wrong());
        let incumbent = self.best.best().map(|b| b.config.clone());
        let load = self.planned_load(window);
        let scaled = on_users_scale(&self.prior, window);
        let input = PlanInput {
            workflow: &self.workflow,
            window: &scaled,
            users: load.users,
            arrivals_per_second: load.arrivals_per_second,
            qos: &self.options.qos,
            incumbent: incumbent.as_ref(),
            avoid: &avoid,
            memo: Some(&self.memo),
        };
        // Why: the explorer is shared with the service's recommendations; it is locked for the
        // quick proposal step only, never while the candidates are screened.
        let candidates = {
            let mut explorer = lock(&self.explorer);
            let explorer = self.options.safe_exploration.then_some(&mut *explorer);
            propose(&input, &self.model, explorer, &options, &mut self.rng)?
        };
        let chosen = screen(
            &input,
            candidates,
            &mut self.confirmations,
            &mut self.rng,
            &self.options.cancel,
            &options,
        )?;
        self.twin_windows = chosen.twin_windows;
        self.predicted = chosen
            .verdict
            .filter(|v| v.qos_met)
            .and(chosen.expected_pass_rate);
        if chosen.ses_replaced {
            metrics::counter!("faasconf_policy_ses_replacements_total", "workflow" => self.workflow.name.clone()).increment(1);
        }
        Ok(Proposal {
            config: chosen.config,
            ses_replaced: chosen.ses_replaced,
            rollback: false,
        })
    }
}

impl Optimiser for Tuner {
    fn name(&self) -> &str {
        "faasconf"
    }

    fn propose(&mut self, observed: &WindowReport) -> Result<Proposal, OptimiserError> {
        let failed = |e: TunerError| OptimiserError::Failed {
            method: "faasconf".into(),
            message: e.to_string(),
        };
        let judged = Judged::of(&self.options.qos, observed);
        self.observe(observed, judged).map_err(failed)?;
        self.decide(observed).map_err(failed)
    }

    fn twin_windows(&self) -> Option<u64> {
        Some(self.twin_windows)
    }
}

#[cfg(test)]
mod tests;
