//! Typed errors of the twin.

/// Errors of the twin.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid workflow, configuration or option (the domain error names the field).
    #[error(transparent)]
    Core(#[from] faasconf_core::Error),
    /// A trace file could not be used.
    #[error("trace: {0}")]
    Trace(String),
}

impl Error {
    /// Wraps a domain error.
    pub fn core(e: faasconf_core::Error) -> Self {
        Self::Core(e)
    }

    /// A single-field validation error.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Core(faasconf_core::Error::field(field, message))
    }

    /// The field errors, when this is a validation error.
    pub fn field_errors(&self) -> &[faasconf_core::FieldError] {
        match self {
            Self::Core(e) => e.field_errors(),
            Self::Trace(_) => &[],
        }
    }
}

/// Result alias of the twin.
pub type Result<T, E = Error> = std::result::Result<T, E>;
