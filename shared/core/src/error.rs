//! Typed errors of the domain crate. Every validation error names the field it is about.

use std::fmt;

/// One problem with one field of an input, e.g. `functions[2].cpu_millis: 5000 is above 2000`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the offending field, e.g. `config.resnet.replicas`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`. Both are clipped (a field path to 160 characters, a message to
    /// 480): messages quote what the caller sent, and an error must not grow with the input.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        let clipped = |s: String, chars| match crate::limits::clip_to(&s, chars) {
            std::borrow::Cow::Borrowed(_) => s,
            std::borrow::Cow::Owned(c) => c,
        };
        Self {
            field: clipped(field.into(), 160),
            message: clipped(message.into(), 480),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Errors of the domain crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is invalid; every problem found is listed.
    #[error("invalid input: {}", join(.0))]
    Invalid(Vec<FieldError>),
    /// No workflow of that name is built in.
    #[error(
        "unknown workflow {0:?} (built in: sequential, parallel, branch, tcktapp; or give a topology file)"
    )]
    UnknownWorkflow(String),
    /// A file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A topology file is not valid YAML/JSON for the schema.
    #[error("cannot parse topology file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (it names the field and line).
        message: String,
    },
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// A single-field validation error.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }

    /// The field errors, if this is a validation error.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            Self::Invalid(errors) => errors,
            _ => &[],
        }
    }
}

/// Result alias of the domain crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
