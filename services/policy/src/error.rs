//! Why a policy request failed, and the gRPC status each reason maps to.

use faasconf_core::FieldError;
use tonic::Status;

/// A failed policy request.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Bad input; every problem is listed with its field.
    #[error("invalid request: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// A workflow this policy does not serve.
    #[error(
        "workflow {} is not served by this policy (it serves: {}; start the service with --workflow NAME|FILE for another)",
        faasconf_core::limits::quoted(.name),
        .served.join(", ")
    )]
    UnknownWorkflow {
        /// The name asked for.
        name: String,
        /// The workflows it serves, by name.
        served: Vec<String>,
    },
    /// No such model version, session or job.
    #[error("{0}")]
    NotFound(String),
    /// The workflow has no trained model yet.
    #[error(
        "no trained model for {workflow:?}: train one with `faasconf train --workflow {workflow} --samples 2000 --store <the service's --store>` (or StartTraining), then retry"
    )]
    NoModel {
        /// The workflow.
        workflow: String,
    },
    /// The request cannot be served in the current state (e.g. a session already running).
    #[error("{0}")]
    Precondition(String),
    /// The service is busy with as much of this kind of work as it takes on at once.
    #[error("{0}")]
    Exhausted(String),
    /// The caller went away or its deadline passed; the work was stopped.
    #[error("cancelled: the caller went away or its deadline passed")]
    Cancelled,
    /// The actuator could not be reached.
    #[error("actuator unavailable: {0}")]
    Unavailable(String),
    /// Something broke inside the service.
    #[error("{0}")]
    Internal(String),
}

impl PolicyError {
    /// One invalid field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }

    /// An internal failure from any error.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<PolicyError> for Status {
    fn from(e: PolicyError) -> Self {
        match &e {
            PolicyError::Invalid(errors) => faasconf_proto::status::invalid_argument(errors),
            PolicyError::UnknownWorkflow { .. } | PolicyError::NotFound(_) => {
                Status::not_found(e.to_string())
            }
            PolicyError::NoModel { .. } | PolicyError::Precondition(_) => {
                Status::failed_precondition(e.to_string())
            }
            PolicyError::Unavailable(_) => Status::unavailable(e.to_string()),
            PolicyError::Exhausted(_) => Status::resource_exhausted(e.to_string()),
            PolicyError::Cancelled => Status::cancelled(e.to_string()),
            PolicyError::Internal(_) => Status::internal(e.to_string()),
        }
    }
}

impl From<faasconf_tuner::TunerError> for PolicyError {
    fn from(e: faasconf_tuner::TunerError) -> Self {
        use faasconf_tuner::TunerError;
        match e {
            TunerError::Cancelled => Self::Cancelled,
            TunerError::Invalid(_) | TunerError::State { .. } => Self::Invalid(e.field_errors()),
            other => Self::Internal(other.to_string()),
        }
    }
}
