//! Domain errors as gRPC statuses with standard error details (`google.rpc.BadRequest` field
//! violations), so clients see which field is wrong.

use faasconf_core::FieldError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// INVALID_ARGUMENT with one field violation per error.
pub fn invalid_argument(errors: &[FieldError]) -> Status {
    let message = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let violations: Vec<FieldViolation> = errors
        .iter()
        .map(|e| FieldViolation::new(e.field.clone(), e.message.clone()))
        .collect();
    Status::with_error_details(
        Code::InvalidArgument,
        message,
        ErrorDetails::with_bad_request(violations),
    )
}

/// The status for a domain error: validation -> INVALID_ARGUMENT, unknown workflow -> NOT_FOUND,
/// anything else -> INTERNAL.
pub fn from_core(error: &faasconf_core::Error) -> Status {
    match error {
        faasconf_core::Error::Invalid(errors) => invalid_argument(errors),
        faasconf_core::Error::UnknownWorkflow(name) => {
            Status::not_found(format!("workflow {name:?} is not known"))
        }
        other => Status::internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_travel_as_bad_request_details() {
        let status = invalid_argument(&[FieldError::new(
            "config.resnet.replicas",
            "9 is outside the bounds 1..=8",
        )]);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request details");
        assert_eq!(bad.field_violations[0].field, "config.resnet.replicas");
        assert!(status.message().contains("outside the bounds"));
        assert_eq!(
            from_core(&faasconf_core::Error::UnknownWorkflow("x".into())).code(),
            Code::NotFound
        );
    }
}
