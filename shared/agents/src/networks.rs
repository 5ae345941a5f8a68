//! Actor and critic, shared by every agent and applied per function row.
//!
//! With `attmf` and `mf` each row sees its own state (and action, for the critic), the weighted
//! mean field of its neighbours, and a learned embedding of which function it is (parameters are
//! shared, so without it every function would get the same policy). The ablations: `maddpg`
//! gives each actor only its own state and each critic the concatenation of every row; `ddpg` is
//! one agent over the flattened workflow. Layer normalisation works per row; the reference's
//! batch normalisation over all agents' rows mixed their statistics.

use burn::nn::{
    Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, Relu,
};
use burn::prelude::*;

use crate::attention::{Attention, uniform_weights};
use crate::config::{AgentConfig, Algorithm};

/// Epsilon of the layer normalisation (burn's default).
const NORM_EPSILON: f64 = 1e-5;

/// Layer normalisation over the last dimension, written out in the primitive operations burn's
/// autodiff backend runs it as. The inference backend's fused kernel rounds differently in the
/// last bit, and a decision must not depend on whether it was taken on the training path or the
/// serving path (inference runs without autodiff, see `Learner::act`).
pub fn layer_norm<const D: usize>(norm: &LayerNorm, x: Tensor<D>) -> Tensor<D> {
    let mean = x.clone().mean_dim(D - 1);
    let centered = x - mean;
    let var = (centered.clone() * centered.clone()).mean_dim(D - 1);
    let normalized = centered / (var + NORM_EPSILON).sqrt();
    let scaled = normalized * norm.gamma.val().unsqueeze::<D>();
    match &norm.beta {
        Some(beta) => scaled + beta.val().unsqueeze::<D>(),
        None => scaled,
    }
}

/// Two hidden layers with ReLU; normalisation after the first.
#[derive(Module, Debug)]
pub struct Mlp {
    input: Linear,
    norm: LayerNorm,
    hidden: Linear,
    output: Linear,
    relu: Relu,
}

impl Mlp {
    /// `inputs -> hidden -> hidden -> outputs`.
    pub fn new(inputs: usize, hidden: usize, outputs: usize, device: &Device) -> Self {
        Self {
            input: LinearConfig::new(inputs, hidden).init(device),
            norm: LayerNormConfig::new(hidden)
                .with_epsilon(NORM_EPSILON)
                .init(device),
            hidden: LinearConfig::new(hidden, hidden).init(device),
            output: LinearConfig::new(hidden, outputs).init(device),
            relu: Relu::new(),
        }
    }

    /// Applies the network to the last dimension.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = self
            .relu
            .forward(layer_norm(&self.norm, self.input.forward(x)));
        let x = self.relu.forward(self.hidden.forward(x));
        self.output.forward(x)
    }
}

/// Neighbour weights `[batch, n, n]` for `states`: attention, uniform for `mf`, none (zeros) for
/// the ablations that do not use a mean field.
fn neighbour_weights(
    attention: &Option<Attention>,
    states: Tensor<3>,
    mask: Tensor<3>,
    config: &AgentConfig,
) -> Tensor<3> {
    let [batch, n, _] = states.dims();
    match (config.algorithm, attention) {
        (Algorithm::AttMf, Some(attention)) => attention.weights(states, mask, config.scoring),
        (Algorithm::Maddpg | Algorithm::Ddpg, _) => Tensor::zeros([batch, n, n], &states.device()),
        _ => uniform_weights(mask).expand([batch, n, n]),
    }
}

fn identity(config: &AgentConfig, device: &Device) -> Option<Embedding> {
    (config.algorithm != Algorithm::Ddpg)
        .then(|| EmbeddingConfig::new(config.max_functions, config.identity).init(device))
}

fn attention(config: &AgentConfig, device: &Device) -> Option<Attention> {
    (config.algorithm == Algorithm::AttMf)
        .then(|| Attention::new(config.state_dim, config.attention, device))
}

/// Every row's features side by side, repeated for each row: `[batch, n, n * width]`.
fn whole_workflow(x: Tensor<3>) -> Tensor<3> {
    let [batch, n, width] = x.dims();
    x.reshape([batch, 1, n * width])
        .expand([batch, n, n * width])
}

/// The policy: state (+ mean field + identity) -> normalised action in `[0, 1]`.
#[derive(Module, Debug)]
pub struct Actor {
    attention: Option<Attention>,
    identity: Option<Embedding>,
    mlp: Mlp,
}

impl Actor {
    /// A fresh actor for a workflow of `functions` functions.
    pub fn new(config: &AgentConfig, functions: usize, device: &Device) -> Self {
        let (s, a, id) = (config.state_dim, config.action_dim, config.identity);
        let (inputs, outputs) = match config.algorithm {
            Algorithm::AttMf | Algorithm::Mf => (2 * s + id, a),
            Algorithm::Maddpg => (s + id, a),
            Algorithm::Ddpg => (functions * s, functions * a),
        };
        Self {
            attention: attention(config, device),
            identity: identity(config, device),
            mlp: Mlp::new(inputs, config.hidden, outputs, device),
        }
    }

    /// Actions `[batch, n, action_dim]` and the neighbour weights used `[batch, n, n]`.
    pub fn forward(
        &self,
        states: Tensor<3>,
        ids: Tensor<2, Int>,
        mask: Tensor<3>,
        config: &AgentConfig,
    ) -> (Tensor<3>, Tensor<3>) {
        let [batch, n, width] = states.dims();
        let weights = neighbour_weights(&self.attention, states.clone(), mask, config);
        let raw = match (config.algorithm, &self.identity) {
            (Algorithm::Ddpg, _) | (_, None) => self
                .mlp
                .forward(states.reshape([batch, 1, n * width]))
                .reshape([batch, n, config.action_dim]),
            (Algorithm::Maddpg, Some(identity)) => self
                .mlp
                .forward(Tensor::cat(vec![states, identity.forward(ids)], 2)),
            (Algorithm::AttMf | Algorithm::Mf, Some(identity)) => {
                let field = weights.clone().matmul(states.clone());
                self.mlp
                    .forward(Tensor::cat(vec![states, field, identity.forward(ids)], 2))
            }
        };
        (burn::tensor::activation::sigmoid(raw), weights)
    }
}

/// The centralised critic: Q of each agent's (state, action) given its neighbours' mean field
/// (or, for the ablations, every function's state and action).
#[derive(Module, Debug)]
pub struct Critic {
    attention: Option<Attention>,
    identity: Option<Embedding>,
    mlp: Mlp,
}

impl Critic {
    /// A fresh critic for a workflow of `functions` functions.
    pub fn new(config: &AgentConfig, functions: usize, device: &Device) -> Self {
        let (row, id) = (config.state_dim + config.action_dim, config.identity);
        let inputs = match config.algorithm {
            Algorithm::AttMf | Algorithm::Mf => 2 * row + id,
            Algorithm::Maddpg => row + functions * row + id,
            Algorithm::Ddpg => functions * row,
        };
        Self {
            attention: attention(config, device),
            identity: identity(config, device),
            mlp: Mlp::new(inputs, config.hidden, 1, device),
        }
    }

    /// Q values `[batch, n, 1]` (`ddpg`'s single Q repeated on every row).
    pub fn forward(
        &self,
        states: Tensor<3>,
        actions: Tensor<3>,
        ids: Tensor<2, Int>,
        mask: Tensor<3>,
        config: &AgentConfig,
    ) -> Tensor<3> {
        let [batch, n, _] = states.dims();
        match (config.algorithm, &self.identity) {
            (Algorithm::Ddpg, _) | (_, None) => {
                let rows = Tensor::cat(vec![states, actions], 2);
                let width = rows.dims()[2];
                self.mlp
                    .forward(rows.reshape([batch, 1, n * width]))
                    .expand([batch, n, 1])
            }
            (Algorithm::Maddpg, Some(identity)) => {
                let rows = Tensor::cat(vec![states, actions], 2);
                self.mlp.forward(Tensor::cat(
                    vec![rows.clone(), whole_workflow(rows), identity.forward(ids)],
                    2,
                ))
            }
            (Algorithm::AttMf | Algorithm::Mf, Some(identity)) => {
                let weights = neighbour_weights(&self.attention, states.clone(), mask, config);
                let field_states = weights.clone().matmul(states.clone());
                let field_actions = weights.matmul(actions.clone());
                self.mlp.forward(Tensor::cat(
                    vec![
                        states,
                        actions,
                        field_states,
                        field_actions,
                        identity.forward(ids),
                    ],
                    2,
                ))
            }
        }
    }
}
