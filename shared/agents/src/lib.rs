//! AttMF: the learning agents of faasconf — multi-agent DDPG (centralised critics, decentralised
//! actors) with a topology-masked attention mean field, in burn 0.22.
//!
//! - [`config`]: hyper-parameters (the reference prototype's values by default), algorithm and
//!   attention scoring.
//! - [`attention`]: masked attention weights over each function's neighbours.
//! - [`networks`]: actor and critic shared across agents, with a function-identity embedding.
//! - [`learner`]: acting, exploration noise, MADDPG updates, soft target updates, checkpoints.
//! - [`state`]: what each function's agent sees of a telemetry window, standardised on history.
//!
//! The device is a runtime value: `Device::flex()` (CPU) by default, `Device::cuda(0)` with the
//! `cuda` feature.

pub mod attention;
pub mod config;
pub mod learner;
pub mod networks;
pub mod state;

pub use config::{AgentConfig, Algorithm, Scoring};
pub use learner::{Batch, Decision, Error, Learner, Losses};
pub use state::{STATE_DIM, StateEncoder};

/// The device the agents run on: CUDA device 0 when built with `cuda`, else the CPU.
pub fn default_device() -> burn::prelude::Device {
    #[cfg(feature = "cuda")]
    {
        burn::prelude::Device::cuda(0)
    }
    #[cfg(not(feature = "cuda"))]
    {
        burn::prelude::Device::flex()
    }
}
