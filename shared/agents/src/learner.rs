//! MADDPG over AttMF networks: centralised critics trained on TD targets from target networks,
//! deterministic policy gradient for the actors, soft target updates, decaying Gaussian
//! exploration noise.
//!
//! The loss is averaged over every (transition, agent) pair: the reference divided by a wrong
//! batch size. With parameters shared across agents, the policy gradient flows through every
//! agent's action at once (each agent's Q sees its neighbours' policy actions in the mean field).

use std::collections::HashMap;

use burn::module::{ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use faasconf_core::rng::Rng;

use crate::attention::neighbourhood;
use crate::config::AgentConfig;
use crate::networks::{Actor, Critic};

/// Why a learner cannot be built or fed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A setting or an input has the wrong shape (the field named).
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A checkpoint could not be written or read.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

fn invalid(field: &'static str, message: String) -> Error {
    Error::Invalid { field, message }
}

/// Transitions, flattened row-major: states `[len, n, state_dim]`, actions `[len, n, action_dim]`,
/// rewards `[len]`, next states like states.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// States.
    pub states: Vec<f32>,
    /// Actions taken (normalised).
    pub actions: Vec<f32>,
    /// Shared rewards.
    pub rewards: Vec<f32>,
    /// States after the actions.
    pub next_states: Vec<f32>,
    /// Per transition, how much the actor should imitate its action (1 for a QoS-meeting
    /// outcome, 0 otherwise); empty means none. Used when the config's `imitation` is above 0.
    pub imitate: Vec<f32>,
}

/// What one update did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Losses {
    /// Mean squared TD error of the critic.
    pub critic: f32,
    /// Minus the mean Q of the policy's actions.
    pub actor: f32,
}

/// A decision: the normalised actions `[n, action_dim]` and the actor's neighbour weights `[n, n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Actions in `[0, 1]`, row-major.
    pub actions: Vec<f32>,
    /// Row j: how much each other function's state weighed in j's decision.
    pub weights: Vec<f32>,
}

/// The learning agents of one workflow.
pub struct Learner {
    config: AgentConfig,
    device: Device,
    functions: usize,
    mask: Tensor<3>,
    ids: Tensor<2, Int>,
    actor: Actor,
    critic: Critic,
    actor_target: Actor,
    critic_target: Critic,
    actor_optim: ModuleOptimizer,
    critic_optim: ModuleOptimizer,
    noise: f64,
    updates: u64,
    rng: Rng,
}

impl Learner {
    /// Agents for a workflow with `adjacency` (n x n) on `device` (autodiff is enabled here).
    pub fn new(config: AgentConfig, adjacency: &[Vec<u8>], device: Device) -> Result<Self, Error> {
        let n = adjacency.len();
        if n == 0 || n > config.max_functions {
            return Err(invalid(
                "adjacency",
                format!(
                    "{n} functions; 1..={} supported (raise max_functions)",
                    config.max_functions
                ),
            ));
        }
        if let Some(j) = adjacency.iter().position(|row| row.len() != n) {
            return Err(invalid(
                "adjacency",
                format!("row {j} has {} entries, expected {n}", adjacency[j].len()),
            ));
        }
        if config.state_dim == 0 || config.action_dim == 0 {
            return Err(invalid(
                "config",
                "state_dim and action_dim must be positive".into(),
            ));
        }
        let device = device.autodiff();
        let mut rng = Rng::stream(config.seed, 0);
        let flat: Vec<f32> = neighbourhood(adjacency).into_iter().flatten().collect();
        let mask = Tensor::<1>::from_floats(flat.as_slice(), &device).reshape([1, n, n]);
        let ids = Tensor::<1, Int>::arange(0..n as i64, &device).reshape([1, n]);
        // Initialised from our own seeded stream: the device's generator is shared process-wide.
        let actor = reinitialise(Actor::new(&config, n, &device), &mut rng, &device);
        let critic = reinitialise(Critic::new(&config, n, &device), &mut rng, &device);
        Ok(Self {
            noise: config.noise,
            updates: 0,
            rng: Rng::stream(config.seed, 1),
            actor_target: actor.clone(),
            critic_target: critic.clone(),
            actor,
            critic,
            actor_optim: AdamConfig::new().init(),
            critic_optim: AdamConfig::new().init(),
            functions: n,
            mask,
            ids,
            device,
            config,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// Functions (agents).
    pub fn functions(&self) -> usize {
        self.functions
    }

    /// Updates done since the agents were created (checkpoints carry it).
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// The current exploration noise.
    pub fn noise(&self) -> f64 {
        self.noise
    }

    /// Sets the exploration noise (it decays from there with every update).
    pub fn set_noise(&mut self, noise: f64) {
        self.noise = noise.max(0.0);
    }

    fn tensor3(
        &self,
        values: &[f32],
        batch: usize,
        width: usize,
        field: &'static str,
        device: &Device,
    ) -> Result<Tensor<3>, Error> {
        let expected = batch * self.functions * width;
        if values.len() != expected {
            return Err(invalid(
                field,
                format!(
                    "{} values, expected {expected} ({batch} x {} functions x {width})",
                    values.len(),
                    self.functions
                ),
            ));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(invalid(field, format!("value {i} is not finite")));
        }
        Ok(Tensor::<1>::from_floats(values, device).reshape([batch, self.functions, width]))
    }

    fn batch_ids(&self, batch: usize) -> Tensor<2, Int> {
        self.ids.clone().expand([batch, self.functions])
    }

    /// The policy's decision for one state `[n, state_dim]`, without noise.
    pub fn act(&self, states: &[f32]) -> Result<Decision, Error> {
        // Inference runs without autodiff: a tensor made on the autodiff device, and a forward
        // pass on the training module, record graph nodes that only a backward pass frees, so a
        // service answering requests between updates would grow with every request.
        let inference = self.device.clone().without_autodiff();
        let s = self.tensor3(states, 1, self.config.state_dim, "states", &inference)?;
        let (actions, weights) = self.actor.valid().forward(
            s,
            self.batch_ids(1).without_autodiff(),
            self.mask.clone().without_autodiff(),
            &self.config,
        );
        let to_vec = |t: Tensor<3>| -> Vec<f32> {
            t.detach()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap_or_default()
        };
        Ok(Decision {
            actions: to_vec(actions),
            weights: to_vec(weights),
        })
    }

    /// The decision plus Gaussian exploration noise, clipped to `[0, 1]`.
    pub fn explore(&mut self, states: &[f32]) -> Result<Decision, Error> {
        let mut decision = self.act(states)?;
        for a in &mut decision.actions {
            *a = (f64::from(*a) + self.noise * self.rng.normal()).clamp(0.0, 1.0) as f32;
        }
        Ok(decision)
    }

    /// The batch's imitation weights when the actor imitates (checked), `None` when it does not.
    fn imitation_weights(&self, batch: &Batch, len: usize) -> Result<Option<Vec<f32>>, Error> {
        if self.config.imitation <= 0.0 || batch.imitate.is_empty() {
            return Ok(None);
        }
        if batch.imitate.len() != len {
            return Err(invalid(
                "imitate",
                format!("{} weights for {len} transitions", batch.imitate.len()),
            ));
        }
        if let Some(i) = batch
            .imitate
            .iter()
            .position(|w| !(w.is_finite() && *w >= 0.0))
        {
            return Err(invalid(
                "imitate",
                format!("weight {i} is not a finite weight >= 0"),
            ));
        }
        Ok(Some(batch.imitate.clone()))
    }

    /// One MADDPG update on `batch`.
    pub fn update(&mut self, batch: &Batch) -> Result<Losses, Error> {
        let len = batch.rewards.len();
        if len == 0 {
            return Err(invalid("rewards", "empty batch".into()));
        }
        let c = &self.config;
        let s = self.tensor3(&batch.states, len, c.state_dim, "states", &self.device)?;
        let a = self.tensor3(&batch.actions, len, c.action_dim, "actions", &self.device)?;
        let s2 = self.tensor3(
            &batch.next_states,
            len,
            c.state_dim,
            "next_states",
            &self.device,
        )?;
        if let Some(i) = batch.rewards.iter().position(|r| !r.is_finite()) {
            return Err(invalid("rewards", format!("reward {i} is not finite")));
        }
        let r =
            Tensor::<1>::from_floats(batch.rewards.as_slice(), &self.device).reshape([len, 1, 1]);
        let ids = self.batch_ids(len);
        let mask = self.mask.clone();

        let (a2, _) = self
            .actor_target
            .forward(s2.clone(), ids.clone(), mask.clone(), c);
        let q2 = self
            .critic_target
            .forward(s2, a2.detach(), ids.clone(), mask.clone(), c)
            .detach();
        let target = (q2 * c.gamma + r).detach();
        let a_taken = a.clone().detach();
        let q = self
            .critic
            .forward(s.clone(), a, ids.clone(), mask.clone(), c);
        let critic_loss = (q - target).powf_scalar(2.0).mean();
        let critic_value = critic_loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(critic_loss.backward(), &self.critic);
        self.critic = self.critic_optim.step(
            c.critic_learning_rate.unwrap_or(c.learning_rate),
            self.critic.clone(),
            grads,
        );

        let (policy, _) = self.actor.forward(s.clone(), ids.clone(), mask.clone(), c);
        let q = self.critic.forward(s, policy.clone(), ids, mask, c);
        let actor_loss = match self.imitation_weights(batch, len)? {
            Some(weights) => {
                // TD3+BC: lambda * Q / mean|Q| minus the weighted squared distance to the
                // imitated actions, averaged over the imitated (transition, agent, knob) cells.
                let scale = q
                    .clone()
                    .abs()
                    .mean()
                    .detach()
                    .into_scalar::<f32>()
                    .max(1e-6);
                let cells =
                    (weights.iter().sum::<f32>() * (self.functions * c.action_dim) as f32).max(1.0);
                let w =
                    Tensor::<1>::from_floats(weights.as_slice(), &self.device).reshape([len, 1, 1]);
                let distance = ((policy - a_taken).powf_scalar(2.0) * w).sum() / cells;
                -q.mean() / scale + distance * c.imitation
            }
            None => -q.mean(),
        };
        let actor_value = actor_loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(actor_loss.backward(), &self.actor);
        self.actor = self
            .actor_optim
            .step(c.learning_rate, self.actor.clone(), grads);

        self.actor_target = soft_update(&self.actor, self.actor_target.clone(), c.tau);
        self.critic_target = soft_update(&self.critic, self.critic_target.clone(), c.tau);
        self.noise *= c.noise_decay;
        self.updates += 1;
        Ok(Losses {
            critic: critic_value,
            actor: actor_value,
        })
    }
}

/// `target <- tau * online + (1 - tau) * target`, parameter by parameter (targets are clones,
/// so they share parameter ids with the online networks).
fn soft_update<M: Module>(online: &M, target: M, tau: f64) -> M {
    struct Collect(HashMap<ParamId, Tensor<1>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0
                .insert(param.id, param.val().detach().flatten(0, D - 1));
        }
    }
    struct Blend {
        online: HashMap<ParamId, Tensor<1>>,
        tau: f64,
    }
    impl ModuleMapper for Blend {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let Some(online) = self.online.remove(&param.id) else {
                return param;
            };
            let tau = self.tau;
            param.map(|t| {
                let shape = t.shape();
                (online.reshape(shape) * tau + t.detach() * (1.0 - tau)).detach()
            })
        }
    }
    let mut collect = Collect(HashMap::new());
    online.visit(&mut collect);
    target.map(&mut Blend {
        online: collect.0,
        tau,
    })
}

/// Draws every weight again from `rng`: uniform in `±1/sqrt(fan_in)` for matrices (as burn's
/// Linear default) and biases, normal for embeddings; layer norms keep their ones and zeros.
fn reinitialise<M: Module>(module: M, rng: &mut Rng, device: &Device) -> M {
    struct Draw<'a> {
        rng: &'a mut Rng,
        device: Device,
        path: Vec<String>,
    }
    impl ModuleMapper for Draw<'_> {
        fn enter_module(&mut self, _name: &str, container_type: &str) {
            self.path.push(container_type.to_owned());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let inside = |kind: &str| self.path.iter().any(|p| p.ends_with(kind));
            if inside("LayerNorm") {
                return param;
            }
            let embedding = inside("Embedding");
            let (rng, device) = (&mut *self.rng, self.device.clone());
            param.map(|t| {
                let shape = t.shape();
                let dims = shape.dims::<D>();
                let fan_in = if D >= 2 { dims[0] } else { dims[0].max(1) } as f64;
                let count: usize = dims.iter().product();
                let bound = 1.0 / fan_in.sqrt();
                let values: Vec<f32> = (0..count).map(|_| if embedding { rng.normal() } else { (2.0 * rng.uniform() - 1.0) * bound } as f32).collect();
                let fresh = Tensor::<1>::from_floats(values.as_slice(), &device).reshape(shape);
                if t.is_require_grad() { fresh.require_grad() } else { fresh }
            })
        }
    }
    module.map(&mut Draw {
        rng,
        device: device.clone(),
        path: Vec::new(),
    })
}

mod checkpoint;

#[cfg(test)]
mod tests;
