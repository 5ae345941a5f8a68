//! `faasconf-policy`: the agent trainer and recommender of faasconf.
//!
//! Serves `faasconf.v1.Policy`: `RecommendConfig` (stateless, for CI jobs), tuning sessions
//! against an actuator (closed loop with online learning and a rollback guard), training jobs
//! and model versions. The online method (tuner, planner, search on the twin) is in
//! `faasconf-tuner`, the learning in `faasconf-agents` and `faasconf-training`, safe exploration
//! in `faasconf-ses`, the experience store in `faasconf-store`.
//!
//! - [`actuators`] — the actuators sessions may tune against (and no other).
//! - [`engine`] — workflows, store, loaded models, safe exploration per workflow.
//! - [`recommend`] — the `RecommendConfig` RPC.
//! - [`tuning`] — tuning sessions: the tuner (`faasconf-tuner`) driven against an actuator
//!   over gRPC.
//! - [`jobs`] — training jobs, resumed after a restart.
//! - [`job_proto`] — training jobs at the contract's edge: requests checked, records as status.
//! - [`service`] — the gRPC edge.

pub mod actuators;
pub mod engine;
pub mod error;
pub mod job_proto;
pub mod jobs;
pub mod recommend;
pub mod service;
pub mod tuning;

pub use engine::Engine;
pub use error::PolicyError;
pub use service::{PolicyService, ServiceSettings};
