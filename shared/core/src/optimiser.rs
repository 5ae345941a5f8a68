//! The optimiser interface every tuning method implements: faasconf's own loop (policy, safe
//! exploration, twin screening, rollback guard) and the baselines it is compared with.
//!
//! The protocol is the online one: the method is shown the steady window observed under the
//! configuration in force and answers with the configuration to apply next. What a method
//! learnt before the online iterations (the warm-up samples every method gets) is given to its
//! constructor, not here, because each method learns differently from them.

use crate::WorkflowConfig;
use crate::telemetry::WindowReport;

/// The configuration a method wants applied next, and how it chose it.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// The configuration (within the workflow's bounds).
    pub config: WorkflowConfig,
    /// A safety filter (faasconf's safe exploration) replaced what the method first proposed.
    pub ses_replaced: bool,
    /// A rollback to an earlier configuration that met QoS (faasconf: the session's best).
    pub rollback: bool,
}

impl Proposal {
    /// A plain proposal: no filter, no rollback.
    pub fn new(config: WorkflowConfig) -> Self {
        Self {
            config,
            ses_replaced: false,
            rollback: false,
        }
    }
}

/// Why a method could not propose.
#[derive(Debug, thiserror::Error)]
pub enum OptimiserError {
    /// The observed window does not fit the method (another workflow, wrong sizes).
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The input that is wrong.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The method failed (its model, its store, its numerics).
    #[error("{method} failed: {message}")]
    Failed {
        /// The method.
        method: String,
        /// Why.
        message: String,
    },
}

/// A tuning method in the online protocol.
pub trait Optimiser: Send {
    /// The method's name (`faasconf`, `random`, `firm`, `rambo`, `aquatope`, ...).
    fn name(&self) -> &str;

    /// Learns from `observed`, the steady window of the configuration in force (the first call
    /// sees the configuration the method started from), and returns the configuration to apply
    /// next.
    fn propose(&mut self, observed: &WindowReport) -> Result<Proposal, OptimiserError>;

    /// Steady twin windows the last proposal simulated (`None`: the method has no twin).
    fn twin_windows(&self) -> Option<u64> {
        None
    }
}
