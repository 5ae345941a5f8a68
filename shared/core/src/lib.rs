//! Domain types of faasconf, defined once and shared by every crate.
//!
//! - [`config`]: the hybrid configuration of a function (CPU, memory, replicas, concurrency),
//!   its bounds and validation, and the normalised-action mapping the policy uses.
//! - [`cost`]: the cost model of the FaaSConf data set (`price` column).
//! - [`topology`]: workflows as DAGs with stage semantics (sequence, parallel fan-out/join,
//!   weighted branch, nested synchronous calls) and the adjacency matrix the policy masks with.
//! - [`profile`]: what a function costs to run (CPU work, memory, I/O), used by the twin.
//! - [`catalog`]: the built-in benchmark workflows and topology files (YAML or JSON).
//! - [`history`]: rows of the FaaSConf history CSV format.
//! - [`synthetic`]: generated workflows of any size (chains, fan-out/fan-in, nested calls).
//! - [`limits`]: the limits of every caller-supplied count and rate, and clipping of echoed input.
//! - [`cancel`]: cooperative cancellation of long work.
//! - [`optimiser`]: the interface every tuning method implements (faasconf and the baselines).
//! - [`qos`]: the end-to-end QoS target and the shared reward.
//! - [`rng`]: the project's own seeded random number generator (results stay identical per seed).
//! - [`telemetry`]: per-window telemetry reports (per function and end to end).
//! - `testing` (feature `testing`): what the crates' fuzzing properties share.
//!
//! Proto types are converted to these at the service edge (`faasconf-proto`).

pub mod cancel;
pub mod catalog;
pub mod config;
pub mod cost;
pub mod error;
pub mod history;
pub mod limits;
pub mod optimiser;
pub mod profile;
pub mod qos;
pub mod rng;
pub mod synthetic;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod topology;

pub use config::{FunctionBounds, FunctionConfig, Knob, Range, WorkflowConfig};
pub use error::{Error, FieldError, Result};
pub use profile::{FailureMode, FunctionProfile, PlatformProfile, Routing};
pub use qos::Qos;
pub use topology::{Stage, Workflow};

#[cfg(test)]
mod fuzz;
