//! `firm`: FIRM (Qiu et al., OSDI 2020) over the workflow's functions.
//!
//! 1. **Critical path.** The weighted longest path through the workflow's plan, each function
//!    weighted by its observed p75 latency (a sequence adds, a fan-out/join takes its slowest
//!    branch, a weighted branch its slowest arm, a synchronous call includes what it calls).
//! 2. **Critical components.** On that path, FIRM classifies instances with an SVM over two
//!    features, the instance's share of the path latency (relative importance) and its
//!    congestion intensity (tail over median latency). FIRM trained that SVM on labelled
//!    anomaly injections we do not have, so the classifier here is the rule those features
//!    encode: critical when the share is at least the path's mean share, or the intensity (p95
//!    over p75) is at least [`CONGESTION`]. A path without such a function acts on all of it.
//! 3. **Resource estimation.** One DDPG agent (parameters shared by every function, as FIRM's
//!    transfer learning across microservices) maps a function's state — SLO maintenance ratio,
//!    load, CPU and memory utilisation, its CPU, memory and replica settings — to new CPU,
//!    memory and replica settings (FIRM has no concurrency knob: it stays where it is).
//!    Reward: `alpha * SM * |R| + (1 - alpha) * sum over R of utilisation`, R = {CPU, memory},
//!    SM = min(latency target / mean latency, success ratio / its minimum), at most 1.
//!    The published hyper-parameters: actor learning rate 3e-4, critic 3e-3, gamma 0.9,
//!    tau 0.001, Ornstein-Uhlenbeck exploration noise with sigma 0.2.
//!
//! The agent is pre-trained on the warm-up windows every method gets (every function of every
//! pair of consecutive windows is a transition) and learns online from each window.

use faasconf_agents::{AgentConfig, Algorithm, Batch, Learner};
use faasconf_core::optimiser::{Optimiser, OptimiserError, Proposal};
use faasconf_core::rng::Rng;
use faasconf_core::telemetry::WindowReport;
use faasconf_core::{Qos, Stage, Workflow};
use faasconf_store::Observation;

/// Congestion intensity (p95 / p75) from which a function on the critical path is critical.
pub const CONGESTION: f64 = 1.5;
/// Features of a function's state.
pub const STATE: usize = 7;
/// Knobs FIRM sets: CPU, memory, replicas.
pub const KNOBS: usize = 3;
/// Resources whose utilisation the reward counts (CPU, memory): FIRM's |R|.
pub const RESOURCES: f64 = 2.0;

/// FIRM's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FirmOptions {
    /// Weight of the SLO term of the reward against the utilisation term. On the twin, 0.5
    /// (both terms with equal maxima) learns to starve functions (success ratio about 0.2 at 20
    /// users); from 0.65 the SLO holds. 0.65 is the least SLO weight that keeps it, FIRM being
    /// SLO-oriented.
    pub alpha: f64,
    /// Updates on the warm-up transitions.
    pub pretrain_updates: u64,
    /// Updates after each online window.
    pub online_updates: u64,
    /// Ornstein-Uhlenbeck mean reversion.
    pub ou_theta: f64,
    /// Ornstein-Uhlenbeck volatility (FIRM: 0.2).
    pub ou_sigma: f64,
}

impl Default for FirmOptions {
    fn default() -> Self {
        Self {
            alpha: 0.65,
            pretrain_updates: 1500,
            online_updates: 16,
            ou_theta: 0.15,
            ou_sigma: 0.2,
        }
    }
}

/// One transition of one function.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    state: [f32; STATE],
    action: [f32; KNOBS],
    reward: f32,
    next: [f32; STATE],
}

/// FIRM (see the module doc).
pub struct Firm {
    workflow: Workflow,
    qos: Qos,
    options: FirmOptions,
    learner: Learner,
    replay: Vec<Step>,
    noise: Vec<[f64; KNOBS]>,
    previous: Option<WindowReport>,
    rng: Rng,
}

/// The functions on the critical path of `stage`, and its latency.
fn longest(stage: &Stage, latency: &dyn Fn(&str) -> f64) -> (f64, Vec<String>) {
    match stage {
        Stage::Call(call) => {
            let mut path = vec![call.function.clone()];
            if let Some(nested) = &call.calls {
                path.extend(longest(nested, latency).1);
            }
            (latency(&call.function), path)
        }
        Stage::Sequence(stages) => stages.iter().fold((0.0, Vec::new()), |(t, mut p), s| {
            let (ts, ps) = longest(s, latency);
            p.extend(ps);
            (t + ts, p)
        }),
        Stage::Parallel(stages) => stages
            .iter()
            .map(|s| longest(s, latency))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap_or_default(),
        Stage::Branch(arms) => arms
            .iter()
            .map(|a| longest(&a.stage, latency))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap_or_default(),
    }
}

/// Indices of the critical components of `window` (see the module doc).
pub fn critical_components(workflow: &Workflow, window: &WindowReport) -> Vec<usize> {
    let p75 = |name: &str| {
        workflow
            .function_index(name)
            .and_then(|j| window.functions.get(j))
            .map_or(0.0, |f| f.latency_p75_seconds.max(0.0))
    };
    let (total, path) = longest(&workflow.plan, &p75);
    let path: Vec<usize> = path
        .iter()
        .filter_map(|name| workflow.function_index(name))
        .collect();
    if path.is_empty() {
        return Vec::new();
    }
    let mean_share = 1.0 / path.len() as f64;
    let critical: Vec<usize> = path
        .iter()
        .copied()
        .filter(|&j| {
            let f = &window.functions[j];
            let share = if total > 0.0 {
                f.latency_p75_seconds / total
            } else {
                0.0
            };
            let congestion = f.latency_p95_seconds / f.latency_p75_seconds.max(1e-9);
            share >= mean_share || congestion >= CONGESTION
        })
        .collect();
    if critical.is_empty() { path } else { critical }
}

impl Firm {
    /// FIRM over `workflow`, pre-trained on the warm-up `history`.
    pub fn new(
        workflow: Workflow,
        qos: Qos,
        history: &[Observation],
        options: FirmOptions,
        seed: u64,
    ) -> Result<Self, OptimiserError> {
        let learner = agent(STATE, seed)?;
        let mut firm = Self {
            noise: vec![[0.0; KNOBS]; workflow.len()],
            workflow,
            qos,
            options,
            learner,
            replay: Vec::new(),
            previous: None,
            rng: Rng::stream(seed, 0xf1),
        };
        let mut episodes: Vec<&Observation> = history
            .iter()
            .filter(|o| o.workflow == firm.workflow.name && !o.window.transient)
            .collect();
        episodes.sort_by(|a, b| (&a.session, a.seq).cmp(&(&b.session, b.seq)));
        for pair in episodes.windows(2) {
            if pair[0].session == pair[1].session && pair[1].seq == pair[0].seq + 1 {
                firm.remember(&pair[0].window, &pair[1].window);
            }
        }
        firm.train(firm.options.pretrain_updates)?;
        Ok(firm)
    }

    fn slo_maintenance(&self, window: &WindowReport) -> f64 {
        let w = &window.workflow;
        if w.total_requests == 0 || !w.mean_latency_seconds.is_finite() {
            return 0.0;
        }
        let latency = self.qos.mean_latency_seconds / w.mean_latency_seconds.max(1e-9);
        let success = w.success_ratio / self.qos.min_success_ratio;
        latency.min(success).clamp(0.0, 1.0)
    }

    fn state(&self, window: &WindowReport, j: usize) -> [f32; STATE] {
        let f = &window.functions[j];
        let a = self.workflow.actions_of(&window.config)[j];
        [
            self.slo_maintenance(window),
            f64::from(window.users) / 50.0,
            (f.cpu_usage_percent / 100.0).clamp(0.0, 2.0),
            (f.memory_percent_of_limit / 100.0).clamp(0.0, 2.0),
            a[0],
            a[1],
            a[2],
        ]
        .map(|v| v as f32)
    }

    fn reward(&self, window: &WindowReport, j: usize) -> f32 {
        let f = &window.functions[j];
        let utilisation = (f.cpu_usage_percent / 100.0).clamp(0.0, 1.0)
            + (f.memory_percent_of_limit / 100.0).clamp(0.0, 1.0);
        let alpha = self.options.alpha;
        (alpha * self.slo_maintenance(window) * RESOURCES + (1.0 - alpha) * utilisation) as f32
    }

    /// Every function's transition from `before` to `after`.
    fn remember(&mut self, before: &WindowReport, after: &WindowReport) {
        let applied = self.workflow.actions_of(&after.config);
        for (j, knobs) in applied.iter().enumerate() {
            let step = Step {
                state: self.state(before, j),
                action: [0, 1, 2].map(|k| knobs[k] as f32),
                reward: self.reward(after, j),
                next: self.state(after, j),
            };
            self.replay.push(step);
        }
    }

    fn train(&mut self, updates: u64) -> Result<(), OptimiserError> {
        if self.replay.is_empty() {
            return Ok(());
        }
        let size = self.learner.config().batch_size;
        for _ in 0..updates {
            let mut batch = Batch {
                states: Vec::with_capacity(size * STATE),
                actions: Vec::with_capacity(size * KNOBS),
                rewards: Vec::with_capacity(size),
                next_states: Vec::with_capacity(size * STATE),
                imitate: Vec::new(),
            };
            for _ in 0..size {
                let s = &self.replay[self.rng.below(self.replay.len())];
                batch.states.extend(s.state);
                batch.actions.extend(s.action);
                batch.rewards.push(s.reward);
                batch.next_states.extend(s.next);
            }
            self.learner.update(&batch).map_err(failed)?;
        }
        Ok(())
    }
}

/// FIRM's DDPG agent over `state` features (its published hyper-parameters; noise is added
/// outside, as Ornstein-Uhlenbeck).
pub(crate) fn agent(state: usize, seed: u64) -> Result<Learner, OptimiserError> {
    let config = AgentConfig::new(state)
        .with_action_dim(KNOBS)
        .with_algorithm(Algorithm::Ddpg)
        .with_learning_rate(3e-4)
        .with_critic_learning_rate(Some(3e-3))
        .with_gamma(0.9)
        .with_tau(0.001)
        .with_noise(0.0)
        .with_seed(seed);
    Learner::new(config, &[vec![0]], faasconf_agents::default_device()).map_err(failed)
}

fn failed(e: impl std::fmt::Display) -> OptimiserError {
    OptimiserError::Failed {
        method: "firm".into(),
        message: e.to_string(),
    }
}

impl Optimiser for Firm {
    fn name(&self) -> &str {
        "firm"
    }

    fn propose(&mut self, observed: &WindowReport) -> Result<Proposal, OptimiserError> {
        if observed.functions.len() != self.workflow.len()
            || observed.config.0.len() != self.workflow.len()
        {
            return Err(OptimiserError::Invalid {
                field: "observed",
                message: format!("not a window of {:?}", self.workflow.name),
            });
        }
        if let Some(before) = self.previous.take() {
            self.remember(&before, observed);
            self.train(self.options.online_updates)?;
        }
        self.previous = Some(observed.clone());
        let mut actions = self.workflow.actions_of(&observed.config);
        for j in critical_components(&self.workflow, observed) {
            let decision = self.learner.act(&self.state(observed, j)).map_err(failed)?;
            for (k, (knob, n)) in actions[j].iter_mut().zip(&mut self.noise[j]).enumerate() {
                // Ornstein-Uhlenbeck: mean-reverting, correlated from one iteration to the next.
                *n += -self.options.ou_theta * *n + self.options.ou_sigma * self.rng.normal();
                let a = f64::from(decision.actions.get(k).copied().unwrap_or(0.5));
                *knob = (a + *n).clamp(0.0, 1.0);
            }
        }
        let config = self
            .workflow
            .config_from_actions(&actions)
            .map_err(failed)?;
        Ok(Proposal::new(config))
    }
}

#[cfg(test)]
mod tests;
