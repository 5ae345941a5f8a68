//! Actor and critic, shared by every agent and applied per function row.
//!
//! Each row sees its own state (and action, for the critic), the weighted mean field of its
//! neighbours, and a learned embedding of which function it is (parameters are shared, so
//! without it every function would get the same policy). Layer normalisation works per row;
//! the reference's batch normalisation over all agents' rows mixed their statistics.

use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, Relu};
use burn::prelude::*;

use crate::attention::{uniform_weights, Attention};
use crate::config::{AgentConfig, Algorithm};

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
            norm: LayerNormConfig::new(hidden).init(device),
            hidden: LinearConfig::new(hidden, hidden).init(device),
            output: LinearConfig::new(hidden, outputs).init(device),
            relu: Relu::new(),
        }
    }

    /// Applies the network to the last dimension.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = self.relu.forward(self.norm.forward(self.input.forward(x)));
        let x = self.relu.forward(self.hidden.forward(x));
        self.output.forward(x)
    }
}

/// Neighbour weights `[batch, n, n]` for `states`: attention, or uniform for `mf`.
fn neighbour_weights(attention: &Option<Attention>, states: Tensor<3>, mask: Tensor<3>, config: &AgentConfig) -> Tensor<3> {
    let [batch, n, _] = states.dims();
    match (config.algorithm, attention) {
        (Algorithm::AttMf, Some(attention)) => attention.weights(states, mask, config.scoring),
        _ => uniform_weights(mask).expand([batch, n, n]),
    }
}

/// The policy: state (+ mean field + identity) -> normalised action in `[0, 1]`.
#[derive(Module, Debug)]
pub struct Actor {
    attention: Option<Attention>,
    identity: Embedding,
    mlp: Mlp,
}

impl Actor {
    /// A fresh actor.
    pub fn new(config: &AgentConfig, device: &Device) -> Self {
        let attention = (config.algorithm == Algorithm::AttMf).then(|| Attention::new(config.state_dim, config.attention, device));
        Self {
            attention,
            identity: EmbeddingConfig::new(config.max_functions, config.identity).init(device),
            mlp: Mlp::new(2 * config.state_dim + config.identity, config.hidden, config.action_dim, device),
        }
    }

    /// Actions `[batch, n, action_dim]` and the neighbour weights used `[batch, n, n]`.
    pub fn forward(&self, states: Tensor<3>, ids: Tensor<2, Int>, mask: Tensor<3>, config: &AgentConfig) -> (Tensor<3>, Tensor<3>) {
        let weights = neighbour_weights(&self.attention, states.clone(), mask, config);
        let field = weights.clone().matmul(states.clone());
        let x = Tensor::cat(vec![states, field, self.identity.forward(ids)], 2);
        (burn::tensor::activation::sigmoid(self.mlp.forward(x)), weights)
    }
}

/// The centralised critic: Q of each agent's (state, action) given its neighbours' mean field.
#[derive(Module, Debug)]
pub struct Critic {
    attention: Option<Attention>,
    identity: Embedding,
    mlp: Mlp,
}

impl Critic {
    /// A fresh critic.
    pub fn new(config: &AgentConfig, device: &Device) -> Self {
        let attention = (config.algorithm == Algorithm::AttMf).then(|| Attention::new(config.state_dim, config.attention, device));
        let inputs = 2 * (config.state_dim + config.action_dim) + config.identity;
        Self { attention, identity: EmbeddingConfig::new(config.max_functions, config.identity).init(device), mlp: Mlp::new(inputs, config.hidden, 1, device) }
    }

    /// Q values `[batch, n, 1]`.
    pub fn forward(&self, states: Tensor<3>, actions: Tensor<3>, ids: Tensor<2, Int>, mask: Tensor<3>, config: &AgentConfig) -> Tensor<3> {
        let weights = neighbour_weights(&self.attention, states.clone(), mask, config);
        let field_states = weights.clone().matmul(states.clone());
        let field_actions = weights.matmul(actions.clone());
        let x = Tensor::cat(vec![states, actions, field_states, field_actions, self.identity.forward(ids)], 2);
        self.mlp.forward(x)
    }
}
