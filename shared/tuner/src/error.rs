//! Why a decision or a tuner's update failed.

use faasconf_core::FieldError;

/// A failed decision or update of the online method.
#[derive(Debug, thiserror::Error)]
pub enum TunerError {
    /// Bad input; every problem is listed with its field.
    #[error("invalid input: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// The window cannot be encoded as the model's state (it does not fit the workflow the
    /// model was trained on).
    #[error("current: {source}")]
    State {
        /// Why.
        #[source]
        source: faasconf_training::Error,
    },
    /// A configuration or workflow was refused by the domain model.
    #[error(transparent)]
    Core(#[from] faasconf_core::Error),
    /// Learning from a window failed (transitions, replay, the model).
    #[error("learning from the window: {0}")]
    Training(#[from] faasconf_training::Error),
    /// An actor-critic update failed.
    #[error("online update: {0}")]
    Agents(#[from] faasconf_agents::Error),
    /// The twin refused (a configuration or load it cannot run).
    #[error("twin: {0}")]
    Twin(#[from] faasconf_twin::Error),
    /// Safe exploration refused.
    #[error("safe exploration: {0}")]
    Ses(#[from] faasconf_ses::SesError),
    /// The search had no candidate to start from (a workflow without functions).
    #[error("no candidate configuration to screen")]
    NoCandidate,
    /// A decision in progress was stopped (a stop request, the caller gone, a deadline).
    #[error("cancelled")]
    Cancelled,
}

impl TunerError {
    /// The invalid fields, when the input was at fault (empty otherwise).
    pub fn field_errors(&self) -> Vec<FieldError> {
        match self {
            Self::Invalid(errors) => errors.clone(),
            Self::State { source } => vec![FieldError::new("current", source.to_string())],
            _ => Vec::new(),
        }
    }
}
