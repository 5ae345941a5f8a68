//! The states of tuning sessions and training jobs as the API names them: the proto enums
//! ([`TuningSessionState`], [`TrainingJobState`]) and their short names (`budget_spent`,
//! `cancelled`, ...) for logs, JSON output and command lines, derived from the enum's own name
//! so that the proto stays the one definition.

use crate::v1::{TrainingJobState, TuningSessionState};

/// The short name of a proto enum value: its name without the enum's prefix, in lower case.
fn short(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix)
        .unwrap_or(full)
        .to_ascii_lowercase()
}

/// `budget_spent` for [`TuningSessionState::BudgetSpent`], and so on.
pub fn tuning_state_name(state: TuningSessionState) -> String {
    short(state.as_str_name(), "TUNING_SESSION_STATE_")
}

/// `cancelled` for [`TrainingJobState::Cancelled`], and so on.
pub fn job_state_name(state: TrainingJobState) -> String {
    short(state.as_str_name(), "TRAINING_JOB_STATE_")
}

/// Whether a session may still change (pending or running).
pub fn tuning_is_active(state: TuningSessionState) -> bool {
    matches!(
        state,
        TuningSessionState::Pending | TuningSessionState::Running
    )
}

/// Whether a job may still change (pending or running).
pub fn job_is_active(state: TrainingJobState) -> bool {
    matches!(state, TrainingJobState::Pending | TrainingJobState::Running)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_the_enum_names_without_their_prefix() {
        assert_eq!(
            tuning_state_name(TuningSessionState::BudgetSpent),
            "budget_spent"
        );
        assert_eq!(tuning_state_name(TuningSessionState::Failed), "failed");
        assert_eq!(job_state_name(TrainingJobState::Cancelled), "cancelled");
        assert_eq!(job_state_name(TrainingJobState::Unspecified), "unspecified");
        assert!(tuning_is_active(TuningSessionState::Running));
        assert!(!job_is_active(TrainingJobState::Done));
    }
}
