//! The twin: a calibrated discrete-event simulator of serverless workflows on
//! OpenFaaS-on-Kubernetes, faasconf's embedded default backend.
//!
//! What it simulates, per request of a workflow:
//! - closed-loop users (with think time), Poisson arrivals, or a per-minute trace of users
//!   ([`workload`]);
//! - the orchestrator running the workflow's plan: sequences stop at the first failure,
//!   parallel stages join, branches pick an arm by weight, functions may call others
//!   synchronously while holding their slot;
//! - each call crossing the gateway (overhead, transient failures), routed to the ready
//!   replica with the fewest requests in flight; when every ready replica is at its
//!   concurrency limit the watchdog answers HTTP 429 and the workflow request fails;
//! - each replica sharing its CPU quota among its requests (CFS quota as processor sharing
//!   with throttling waste, see the `replica` module), holding a working set that grows
//!   with requests in flight (over the memory limit: OOM kill, failed requests, restart), and
//!   starting cold when added or rolled.
//!
//! Per window it reports what Prometheus and the function logs would ([`report`]).
//! Everything random comes from one seeded generator: the same seed gives the same windows.

mod arrivals;
pub mod calibrate;
mod error;
pub mod evaluate;
mod events;
pub mod exposition;
pub mod fidelity;
pub mod follow;
pub mod parallel;
mod plan;
pub(crate) mod replica;
pub mod report;
pub use faasconf_core::rng;
mod sim;
mod time;
pub mod workload;

pub use error::{Error, Result};
pub use report::{FunctionWindow, WindowReport, WorkflowWindow};
pub use sim::{Twin, TwinOptions};
pub use workload::Workload;

#[cfg(test)]
mod tests;
