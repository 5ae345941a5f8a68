//! Domain errors as gRPC statuses with standard error details (`google.rpc.BadRequest` field
//! violations), so clients see which field is wrong.

use faasconf_core::FieldError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// INVALID_ARGUMENT with one field violation per error, the first
/// [`MAX_LISTED_ERRORS`](faasconf_core::limits::MAX_LISTED_ERRORS) of them listed and the rest
/// counted ("and 199990 more"), so the status stays small whatever the request held.
pub fn invalid_argument(errors: &[FieldError]) -> Status {
    use faasconf_core::limits::MAX_LISTED_ERRORS;
    let listed = &errors[..errors.len().min(MAX_LISTED_ERRORS)];
    let mut message = listed
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let mut violations: Vec<FieldViolation> = listed
        .iter()
        .map(|e| FieldViolation::new(e.field.clone(), e.message.clone()))
        .collect();
    let more = errors.len() - listed.len();
    if more > 0 {
        let news = format!("and {more} more");
        message.push_str("; ");
        message.push_str(&news);
        violations.push(FieldViolation::new("...", news));
    }
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
        faasconf_core::Error::UnknownWorkflow(name) => Status::not_found(format!(
            "workflow {} is not known",
            faasconf_core::limits::quoted(name)
        )),
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

    #[test]
    fn many_or_long_errors_make_a_small_status() {
        let long = "x".repeat(1 << 20);
        let errors: Vec<FieldError> = (0..200_000)
            .map(|i| {
                let value = if i < 30 { long.as_str() } else { "ghost" };
                FieldError::new(
                    format!("config.functions[{i}].{value}"),
                    format!("{value:?} is unknown"),
                )
            })
            .collect();
        let status = invalid_argument(&errors);
        assert!(
            status.message().len() < 16 * 1024,
            "{}",
            status.message().len()
        );
        assert!(
            status.message().ends_with("and 199980 more"),
            "{}",
            &status.message()[status.message().len() - 40..]
        );
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request details");
        assert_eq!(bad.field_violations.len(), 21);
        assert!(
            status.details().len() < 32 * 1024,
            "{}",
            status.details().len()
        );
    }
}
