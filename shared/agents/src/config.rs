//! Hyper-parameters, with the reference prototype's values as defaults.

use burn::prelude::*;

/// How the learning agents see their neighbours.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Topology-masked attention mean field (the method).
    AttMf,
    /// Uniform mean field over the neighbours (as SIMPPO).
    Mf,
    /// Vanilla MADDPG: decentralised actors on their own state, critics on the concatenation of
    /// every function's state and action.
    Maddpg,
    /// Single-agent DDPG over the flattened state of the whole workflow.
    Ddpg,
}

impl Algorithm {
    /// Every algorithm, in the order of the paper's ablation.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::AttMf,
        Algorithm::Mf,
        Algorithm::Maddpg,
        Algorithm::Ddpg,
    ];

    /// The name used on the command line, in RPCs and in model metadata.
    pub fn name(self) -> &'static str {
        match self {
            Self::AttMf => "attmf",
            Self::Mf => "mf",
            Self::Maddpg => "maddpg",
            Self::Ddpg => "ddpg",
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| format!("unknown algorithm {s:?}; expected attmf, mf, maddpg or ddpg"))
    }
}

/// How attention scores become weights.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Scoring {
    /// GAT-MF's squared dot product, masked by adjacency and normalised by its row sum.
    SquaredMasked,
    /// Scaled dot product through a softmax with non-neighbours at minus infinity.
    MaskedSoftmax,
}

/// AttMF hyper-parameters.
#[derive(Config, Debug)]
pub struct AgentConfig {
    /// Features per function in the state.
    pub state_dim: usize,
    /// Knobs per function in the action (CPU, memory, replicas, concurrency).
    #[config(default = 4)]
    pub action_dim: usize,
    /// Width of the two hidden layers of actor and critic.
    #[config(default = 64)]
    pub hidden: usize,
    /// Width of the attention's query and key projections.
    #[config(default = 32)]
    pub attention: usize,
    /// Width of the learned function-identity embedding (parameters are shared across agents).
    #[config(default = 8)]
    pub identity: usize,
    /// The most functions a workflow may have (rows of the identity embedding).
    #[config(default = 32)]
    pub max_functions: usize,
    /// Neighbour weighting.
    #[config(default = "Algorithm::AttMf")]
    pub algorithm: Algorithm,
    /// Attention scoring.
    #[config(default = "Scoring::SquaredMasked")]
    pub scoring: Scoring,
    /// Adam learning rate of the actor (and of the critic unless `critic_learning_rate` is set).
    #[config(default = 1e-4)]
    pub learning_rate: f64,
    /// Adam learning rate of the critic, when it should differ from the actor's.
    #[config(default = "None")]
    pub critic_learning_rate: Option<f64>,
    /// Discount.
    #[config(default = 0.9)]
    pub gamma: f64,
    /// Soft update rate of the target networks.
    #[config(default = 0.01)]
    pub tau: f64,
    /// Transitions per update.
    #[config(default = 64)]
    pub batch_size: usize,
    /// Standard deviation of the Gaussian exploration noise (normalised action space).
    #[config(default = 0.1)]
    pub noise: f64,
    /// Multiplier applied to the noise after every update.
    #[config(default = 0.999)]
    pub noise_decay: f64,
    /// Weight of imitating the actions of QoS-meeting transitions in the actor loss (as TD3+BC:
    /// the policy's Q is then divided by its mean magnitude, so the weight has no unit). 0 is
    /// the reference's pure policy gradient.
    #[config(default = 0.0)]
    pub imitation: f64,
    /// Seed of initialisation, sampling and noise.
    #[config(default = 0)]
    pub seed: u64,
}
