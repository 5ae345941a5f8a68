//! Offline training of the faasconf agents: samples drawn on the twin (and history imported
//! into the experience store), transitions rebuilt from stored observations, the MADDPG
//! training loop with checkpoints it resumes from, and trained models saved as versions.
//!
//! - [`samples`]: observations of random and perturbed configurations on the twin.
//! - [`replay`]: transitions from observations (transient windows skipped); the replay buffer.
//! - [`evaluate`]: the greedy policy on its own on the twin (what compares algorithms).
//! - [`online`]: online steps on the twin after the offline updates (the policy's own data).
//! - [`mod@train`]: the training loop, its checkpoints and its report (losses, reward curve).
//! - [`calibration`]: a job's first step when asked: the twin fitted to the store's measured
//!   windows, adopted when it predicts held-out windows better.
//! - [`job`]: a whole job (history import, twin samples, training, registration) as the CLI
//!   and the policy service run it.
//! - [`model`]: a trained model (agents + state encoder), saving, loading, registering, and
//!   following its policy on the twin.

pub mod calibration;
pub mod evaluate;
pub mod job;
pub mod model;
pub mod online;
pub mod replay;
pub mod samples;
pub mod train;

pub use evaluate::{EvaluateOptions, PolicyScore, evaluate_policy};
pub use job::{JobOutcome, JobSpec, Stage, import_history, run_job};
pub use model::{Model, ModelMeta};
pub use samples::{SampleOptions, twin_samples};
pub use train::{Progress, TrainOptions, TrainReport, train};

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option or input is invalid (the field named).
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A domain error (configuration, workflow).
    #[error(transparent)]
    Core(#[from] faasconf_core::Error),
    /// The work was cancelled (a stop request, the caller gone).
    #[error("cancelled")]
    Cancelled,
    /// The twin refused.
    #[error(transparent)]
    Twin(#[from] faasconf_twin::Error),
    /// The agents refused.
    #[error(transparent)]
    Agents(#[from] faasconf_agents::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] faasconf_store::Error),
    /// A file could not be written or read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
