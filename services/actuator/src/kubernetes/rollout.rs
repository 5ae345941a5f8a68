//! When a Deployment's rollout is done, as `kubectl rollout status` judges it: the controller has
//! seen the latest generation, every replica runs the new template and is available, and no old
//! replica is left; a `ProgressDeadlineExceeded` condition means it will not finish.

use serde_json::Value;

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Finished: the desired replicas run the new template and are available.
    Complete,
    /// Still moving (what it waits for).
    Progressing(String),
    /// The Deployment controller gave up (its progress deadline passed).
    Failed(String),
}

fn count(object: &Value, pointer: &str) -> u64 {
    object.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

/// The rollout state of a Deployment object.
pub fn rollout_state(deployment: &Value) -> Rollout {
    let generation = count(deployment, "/metadata/generation");
    let observed = count(deployment, "/status/observedGeneration");
    if observed < generation {
        return Rollout::Progressing(format!(
            "the controller has observed generation {observed} of {generation}"
        ));
    }
    let conditions = deployment
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if let Some(c) = conditions.iter().find(|c| {
        c.get("type").and_then(Value::as_str) == Some("Progressing")
            && c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
    }) {
        let message = c
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("progress deadline exceeded");
        return Rollout::Failed(message.to_owned());
    }
    let desired = deployment
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let updated = count(deployment, "/status/updatedReplicas");
    let replicas = count(deployment, "/status/replicas");
    let available = count(deployment, "/status/availableReplicas");
    if updated < desired {
        Rollout::Progressing(format!("{updated} of {desired} replicas updated"))
    } else if replicas > updated {
        Rollout::Progressing(format!(
            "{} old replicas pending termination",
            replicas - updated
        ))
    } else if available < updated {
        Rollout::Progressing(format!(
            "{available} of {updated} updated replicas available"
        ))
    } else {
        Rollout::Complete
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(
        generation: u64,
        observed: u64,
        desired: u64,
        updated: u64,
        replicas: u64,
        available: u64,
    ) -> Value {
        json!({
            "metadata": { "generation": generation },
            "spec": { "replicas": desired },
            "status": { "observedGeneration": observed, "updatedReplicas": updated, "replicas": replicas, "availableReplicas": available },
        })
    }

    #[test]
    fn judges_like_kubectl_rollout_status() {
        assert_eq!(
            rollout_state(&deployment(3, 3, 2, 2, 2, 2)),
            Rollout::Complete
        );
        assert!(
            matches!(rollout_state(&deployment(4, 3, 2, 2, 2, 2)), Rollout::Progressing(m) if m.contains("generation 3 of 4"))
        );
        assert!(
            matches!(rollout_state(&deployment(4, 4, 3, 2, 3, 2)), Rollout::Progressing(m) if m.contains("2 of 3 replicas updated"))
        );
        assert!(
            matches!(rollout_state(&deployment(4, 4, 2, 2, 3, 2)), Rollout::Progressing(m) if m.contains("1 old replicas"))
        );
        assert!(
            matches!(rollout_state(&deployment(4, 4, 2, 2, 2, 1)), Rollout::Progressing(m) if m.contains("1 of 2 updated replicas available"))
        );
    }

    #[test]
    fn a_passed_progress_deadline_fails() {
        let mut d = deployment(4, 4, 2, 1, 2, 1);
        d["status"]["conditions"] = json!([{ "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"resnet-7c\" has timed out progressing." }]);
        assert_eq!(
            rollout_state(&d),
            Rollout::Failed("ReplicaSet \"resnet-7c\" has timed out progressing.".into())
        );
    }
}
