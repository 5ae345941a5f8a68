//! `aquatope` and `rambo`: the Bayesian-optimisation baselines as optimisers over a
//! workflow's normalised configuration space (4 knobs per function, each in `[0, 1]`).
//!
//! Each observed window becomes a point: its configuration, its cost, and its QoS constraint
//! value `max(mean latency / target, min success ratio / success ratio)` (QoS met at most 1,
//! capped at [`CONSTRAINT_CAP`]). Before the first choice the method takes up to
//! `warm_points` warm-up windows observed at the cell's load (the warm-up every method gets);
//! with fewer than `initial` points it proposes uniform random configurations first (Aquatope's
//! 10 random initial points). Then:
//! - `aquatope` chooses batches of `q` = 3 by constrained noisy EI and applies them in turn;
//! - `rambo` chooses one point per iteration by expected hypervolume improvement of cost vs the
//!   QoS constraint, and keeps the Pareto front; the configuration it recommends is the
//!   cheapest front point that meets QoS.

use std::collections::VecDeque;

use faasconf_core::optimiser::{Optimiser, OptimiserError, Proposal};
use faasconf_core::rng::Rng;
use faasconf_core::telemetry::WindowReport;
use faasconf_core::{Qos, Workflow, WorkflowConfig};
use faasconf_store::Observation;

use super::bo::{BoSettings, Point, constrained_nei_batch, ehvi_next, pareto_front};

/// The highest constraint value recorded (a window with no successful request is not
/// infinitely bad, and one such window must not flatten the surrogate everywhere else).
pub const CONSTRAINT_CAP: f64 = 4.0;

/// Which acquisition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquisition {
    /// Aquatope: constrained noisy EI, batches of `q`.
    ConstrainedNei {
        /// Batch size.
        q: usize,
    },
    /// RAMBO: expected hypervolume improvement, one point at a time.
    Hypervolume,
}

/// Settings of a Bayesian-optimisation baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BayesianOptions {
    /// The acquisition.
    pub acquisition: Acquisition,
    /// Points before the first model-based choice (random proposals fill the gap).
    pub initial: usize,
    /// Warm-up windows at the cell's load taken as data (a seeded random subset).
    pub warm_points: usize,
    /// The cores' settings.
    pub bo: BoSettings,
}

impl BayesianOptions {
    /// Aquatope's published settings: q = 3, 10 random initial points, the outlier filter.
    pub fn aquatope() -> Self {
        Self {
            acquisition: Acquisition::ConstrainedNei { q: 3 },
            initial: 10,
            warm_points: 40,
            bo: BoSettings::default(),
        }
    }

    /// RAMBO: sequential EHVI, no outlier filter.
    pub fn rambo() -> Self {
        Self {
            acquisition: Acquisition::Hypervolume,
            initial: 10,
            warm_points: 40,
            bo: BoSettings {
                outlier_sigmas: 0.0,
                ..BoSettings::default()
            },
        }
    }
}

/// A Bayesian-optimisation baseline (see the module doc).
pub struct BayesianSearch {
    name: &'static str,
    workflow: Workflow,
    qos: Qos,
    options: BayesianOptions,
    warm_up: Vec<(u32, WindowReport)>,
    seeded: bool,
    points: Vec<Point>,
    queue: VecDeque<Vec<f64>>,
    rng: Rng,
}

/// The QoS constraint value of a window (met at most 1).
pub fn constraint_value(qos: &Qos, window: &WindowReport) -> f64 {
    let w = &window.workflow;
    if w.total_requests == 0 || !w.mean_latency_seconds.is_finite() {
        return CONSTRAINT_CAP;
    }
    let latency = w.mean_latency_seconds / qos.mean_latency_seconds;
    let success = qos.min_success_ratio / w.success_ratio.max(1e-3);
    latency.max(success).min(CONSTRAINT_CAP)
}

impl BayesianSearch {
    /// `name` over `workflow` with the warm-up `history`.
    pub fn new(
        name: &'static str,
        workflow: Workflow,
        qos: Qos,
        history: &[Observation],
        options: BayesianOptions,
        seed: u64,
    ) -> Self {
        Self {
            name,
            warm_up: history
                .iter()
                .filter(|o| o.workflow == workflow.name && !o.window.transient)
                .map(|o| (o.users, o.window.clone()))
                .collect(),
            workflow,
            qos,
            options,
            seeded: false,
            points: Vec::new(),
            queue: VecDeque::new(),
            rng: Rng::stream(seed, 0xb0),
        }
    }

    fn point(&self, window: &WindowReport) -> Point {
        Point {
            x: self
                .workflow
                .actions_of(&window.config)
                .into_iter()
                .flatten()
                .collect(),
            f: window.config.cost(),
            c: constraint_value(&self.qos, window),
        }
    }

    fn config(&self, x: &[f64]) -> Result<WorkflowConfig, OptimiserError> {
        let actions: Vec<[f64; 4]> = x
            .chunks(4)
            .map(|c| [0, 1, 2, 3].map(|i| c.get(i).copied().unwrap_or(0.5).clamp(0.0, 1.0)))
            .collect();
        self.workflow
            .config_from_actions(&actions)
            .map_err(|e| self.failed(e))
    }

    fn failed(&self, e: impl std::fmt::Display) -> OptimiserError {
        OptimiserError::Failed {
            method: self.name.into(),
            message: e.to_string(),
        }
    }

    /// The observed Pareto front of cost vs QoS constraint: (configuration, cost, constraint).
    pub fn pareto_front(&self) -> Result<Vec<(WorkflowConfig, f64, f64)>, OptimiserError> {
        pareto_front(&self.points)
            .into_iter()
            .map(|i| {
                Ok((
                    self.config(&self.points[i].x)?,
                    self.points[i].f,
                    self.points[i].c,
                ))
            })
            .collect()
    }

    /// The cheapest point of the front that met QoS.
    pub fn recommended(&self) -> Result<Option<WorkflowConfig>, OptimiserError> {
        Ok(self
            .pareto_front()?
            .into_iter()
            .find(|(_, _, c)| *c <= 1.0)
            .map(|(config, _, _)| config))
    }
}

impl Optimiser for BayesianSearch {
    fn name(&self) -> &str {
        self.name
    }

    fn propose(&mut self, observed: &WindowReport) -> Result<Proposal, OptimiserError> {
        if observed.config.0.len() != self.workflow.len() {
            return Err(OptimiserError::Invalid {
                field: "observed",
                message: format!(
                    "{} functions, the workflow has {}",
                    observed.config.0.len(),
                    self.workflow.len()
                ),
            });
        }
        if !self.seeded {
            self.seeded = true;
            // The warm-up's load nearest the observed one (under a dynamic load the users
            // seldom match a warm-up level).
            let nearest = self
                .warm_up
                .iter()
                .map(|(u, _)| *u)
                .min_by_key(|u| u.abs_diff(observed.users));
            let mut here: Vec<&WindowReport> = self
                .warm_up
                .iter()
                .filter(|(u, _)| Some(*u) == nearest)
                .map(|(_, w)| w)
                .collect();
            // A seeded partial shuffle picks the subset.
            let take = here.len().min(self.options.warm_points);
            for i in 0..take {
                let j = i + self.rng.below(here.len() - i);
                here.swap(i, j);
            }
            let points: Vec<Point> = here[..take].iter().map(|w| self.point(w)).collect();
            self.points.extend(points);
            self.warm_up.clear();
        }
        let point = self.point(observed);
        self.points.push(point);
        if let Some(x) = self.queue.pop_front() {
            return Ok(Proposal::new(self.config(&x)?));
        }
        let x = if self.points.len() < self.options.initial {
            (0..self.workflow.len() * 4)
                .map(|_| self.rng.uniform())
                .collect()
        } else {
            match self.options.acquisition {
                Acquisition::ConstrainedNei { q } => {
                    let batch =
                        constrained_nei_batch(&self.points, q, &self.options.bo, &mut self.rng)
                            .map_err(|e| self.failed(e))?;
                    self.queue.extend(batch);
                    self.queue
                        .pop_front()
                        .ok_or_else(|| self.failed("the acquisition chose nothing"))?
                }
                Acquisition::Hypervolume => {
                    ehvi_next(&self.points, &self.options.bo, &mut self.rng)
                        .map_err(|e| self.failed(e))?
                }
            }
        };
        Ok(Proposal::new(self.config(&x)?))
    }
}
