//! `faasconf-policy`: the agent trainer and recommender of faasconf.
//!
//! Serves `faasconf.v1.Policy`: `RecommendConfig` (stateless, for CI jobs), tuning sessions
//! against an actuator (closed loop with online learning and a rollback guard), training jobs
//! and model versions. The learning itself is in `faasconf-agents` and `faasconf-training`,
//! safe exploration in `faasconf-ses`, the experience store in `faasconf-store`.
//!
//! - [`actuators`] — the actuators sessions may tune against (and no other).
//! - [`engine`] — workflows, store, loaded models, safe exploration per workflow.
//! - [`planner`] — state -> configuration (policy, SES, twin screening).
//! - [`recommend`] — the `RecommendConfig` RPC.
//! - [`tuner`] — faasconf's online tuning method (learn from a window, decide the next
//!   configuration), behind the optimiser interface the baselines share.
//! - [`tuning`] — tuning sessions: the tuner driven against an actuator over gRPC.
//! - [`outcomes`] — what a session learns of the configurations it applied.
//! - [`jobs`] — training jobs, resumed after a restart.
//! - [`service`] — the gRPC edge.

pub mod actuators;
pub mod engine;
pub mod error;
pub mod jobs;
pub mod outcomes;
pub mod planner;
pub mod recommend;
pub mod service;
pub mod tuner;
pub mod tuning;

pub use engine::Engine;
pub use error::PolicyError;
pub use service::{PolicyService, ServiceSettings};
