//! The apply protocol, once for every backend: validate the configuration whole (the
//! workflow's bounds, then the platform's own limits) → lock the workflow against other applies
//! and read what is in force → refuse a stale `expected_version` → diff → a dry run asks the
//! platform about each changed function and changes nothing → a configuration that changes
//! nothing is kept (not written) → write the changed functions all or nothing → count the
//! outcome.
//!
//! A backend implements the narrow part: [`ApplyTarget`] (its platform limits, taking the lock
//! and reading) and [`Applying`] (dry-run one function, write the changed ones, keep).

use faasconf_core::{FunctionConfig, Workflow, WorkflowConfig};

use crate::backend::{ApplyError, ApplyOutcome, count_apply, diff};

/// A backend's side of an apply: its platform's limits and its per-workflow lock.
#[tonic::async_trait]
pub trait ApplyTarget: Send + Sync {
    /// Limits of the platform beyond the workflow's bounds (e.g. OpenFaaS CE's replica cap).
    fn check_platform(
        &self,
        _workflow: &Workflow,
        _config: &WorkflowConfig,
    ) -> Result<(), ApplyError> {
        Ok(())
    }

    /// Locks `workflow` against other applies (until the returned value is dropped) and reads
    /// the configuration in force and its version.
    async fn begin<'a>(
        &'a self,
        workflow: &'a Workflow,
    ) -> Result<Box<dyn Applying + 'a>, ApplyError>;
}

/// One apply in progress, holding its workflow's lock.
#[tonic::async_trait]
pub trait Applying: Send {
    /// The configuration in force and its version, read under the lock.
    fn current(&self) -> (&WorkflowConfig, u64);

    /// Whether the platform would accept `config` for function `function` (an index into the
    /// workflow); nothing changes.
    async fn dry_run(&mut self, function: usize, config: &FunctionConfig)
    -> Result<(), ApplyError>;

    /// Writes `config`, of which the functions `changed` differ from what is in force, all or
    /// nothing (what was touched is rolled back on failure); the version afterwards.
    async fn write(
        &mut self,
        config: &WorkflowConfig,
        changed: &[usize],
    ) -> Result<u64, ApplyError>;

    /// A decision that keeps the configuration in force (a lockstep clock is released by it).
    fn keep(&mut self) {}
}

/// Applies `config` to `workflow` through `target` (see the module doc) and counts the outcome
/// in `faasconf_actuator_applies_total`.
pub async fn apply(
    target: &dyn ApplyTarget,
    workflow: &Workflow,
    config: WorkflowConfig,
    expected_version: u64,
    dry_run: bool,
) -> Result<ApplyOutcome, ApplyError> {
    let result = protocol(target, workflow, config, expected_version, dry_run).await;
    count_apply(&workflow.name, outcome(dry_run, &result));
    result
}

/// The `outcome` label of an apply: `dry_run` for any dry run that passed, `unchanged`,
/// `applied`, `invalid`, `stale` or `failed`.
pub fn outcome(dry_run: bool, result: &Result<ApplyOutcome, ApplyError>) -> &'static str {
    match result {
        Ok(_) if dry_run => "dry_run",
        Ok(o) if o.diff.is_empty() => "unchanged",
        Ok(_) => "applied",
        Err(ApplyError::Invalid(_)) => "invalid",
        Err(ApplyError::Stale { .. }) => "stale",
        Err(_) => "failed",
    }
}

async fn protocol(
    target: &dyn ApplyTarget,
    workflow: &Workflow,
    config: WorkflowConfig,
    expected_version: u64,
    dry_run: bool,
) -> Result<ApplyOutcome, ApplyError> {
    workflow
        .validate_config(&config)
        .map_err(|e| ApplyError::Invalid(e.field_errors().to_vec()))?;
    target.check_platform(workflow, &config)?;
    let mut applying = target.begin(workflow).await?;
    let (current, version) = applying.current();
    if expected_version != 0 && expected_version != version {
        return Err(ApplyError::Stale {
            current: version,
            expected: expected_version,
        });
    }
    let changes = diff(workflow, current, &config);
    let changed: Vec<usize> = (0..workflow.len())
        .filter(|&i| current.0[i] != config.0[i])
        .collect();
    if dry_run {
        for &i in &changed {
            applying.dry_run(i, &config.0[i]).await?;
        }
        return Ok(ApplyOutcome {
            applied: config,
            version,
            diff: changes,
        });
    }
    if changed.is_empty() {
        applying.keep();
        return Ok(ApplyOutcome {
            applied: config,
            version,
            diff: changes,
        });
    }
    let version = applying.write(&config, &changed).await?;
    tracing::info!(workflow = %workflow.name, version, changes = changes.len(), "configuration applied");
    Ok(ApplyOutcome {
        applied: config,
        version,
        diff: changes,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use super::*;
    use faasconf_core::catalog::builtin;

    /// A platform that records what it is asked and refuses replicas over `cap`.
    struct Fake {
        config: Mutex<(WorkflowConfig, u64)>,
        calls: Mutex<Vec<String>>,
        cap: u32,
    }

    struct FakeApplying<'a> {
        fake: &'a Fake,
        current: (WorkflowConfig, u64),
    }

    #[tonic::async_trait]
    impl ApplyTarget for Fake {
        fn check_platform(&self, _: &Workflow, config: &WorkflowConfig) -> Result<(), ApplyError> {
            match config.0.iter().any(|c| c.replicas > self.cap) {
                true => Err(ApplyError::Precondition {
                    field: "config.replicas".into(),
                    message: "over the cap".into(),
                }),
                false => Ok(()),
            }
        }

        async fn begin<'a>(
            &'a self,
            _: &'a Workflow,
        ) -> Result<Box<dyn Applying + 'a>, ApplyError> {
            self.calls.lock().unwrap().push("begin".into());
            let current = self.config.lock().unwrap().clone();
            Ok(Box::new(FakeApplying {
                fake: self,
                current,
            }))
        }
    }

    #[tonic::async_trait]
    impl Applying for FakeApplying<'_> {
        fn current(&self) -> (&WorkflowConfig, u64) {
            (&self.current.0, self.current.1)
        }

        async fn dry_run(&mut self, i: usize, _: &FunctionConfig) -> Result<(), ApplyError> {
            self.fake.calls.lock().unwrap().push(format!("dry_run {i}"));
            Ok(())
        }

        async fn write(
            &mut self,
            config: &WorkflowConfig,
            changed: &[usize],
        ) -> Result<u64, ApplyError> {
            self.fake
                .calls
                .lock()
                .unwrap()
                .push(format!("write {changed:?}"));
            let mut c = self.fake.config.lock().unwrap();
            *c = (config.clone(), c.1 + 1);
            Ok(c.1)
        }

        fn keep(&mut self) {
            self.fake.calls.lock().unwrap().push("keep".into());
        }
    }

    #[tokio::test]
    async fn every_backend_goes_through_the_same_steps_in_the_same_order() {
        let w = builtin("parallel").unwrap();
        let start = w.config_from_actions(&vec![[0.5; 4]; w.len()]).unwrap();
        let fake = Fake {
            config: Mutex::new((start.clone(), 1)),
            calls: Mutex::new(Vec::new()),
            cap: 5,
        };
        let calls = || std::mem::take(&mut *fake.calls.lock().unwrap());
        let mut next = start.clone();
        next.0[2].cpu_millis += 100;
        // Invalid or over the platform's cap: refused before the lock is taken.
        let mut bad = start.clone();
        bad.0.pop();
        let invalid = apply(&fake, &w, bad, 0, false).await;
        assert_eq!(outcome(false, &invalid), "invalid");
        let mut capped = start.clone();
        capped.0[0].replicas = 6;
        assert!(matches!(
            apply(&fake, &w, capped, 0, false).await,
            Err(ApplyError::Precondition { .. })
        ));
        assert!(calls().is_empty());
        // Stale: read under the lock, nothing tried.
        let stale = apply(&fake, &w, next.clone(), 7, false).await;
        assert!(matches!(
            stale,
            Err(ApplyError::Stale {
                current: 1,
                expected: 7
            })
        ));
        assert_eq!(calls(), ["begin"]);
        // A dry run asks about the changed function only and is counted as one, changed or not.
        let dry = apply(&fake, &w, next.clone(), 1, true).await;
        assert_eq!(calls(), ["begin", "dry_run 2"]);
        assert_eq!((outcome(true, &dry), dry.unwrap().version), ("dry_run", 1));
        let dry_same = apply(&fake, &w, start.clone(), 1, true).await;
        assert_eq!(outcome(true, &dry_same), "dry_run");
        calls();
        // A change is written once; the same configuration again is kept, not written.
        let applied = apply(&fake, &w, next.clone(), 1, false).await.unwrap();
        assert_eq!((applied.version, applied.diff.len()), (2, 1));
        let again = apply(&fake, &w, next, 0, false).await;
        assert_eq!(outcome(false, &again), "unchanged");
        assert_eq!(calls(), ["begin", "write [2]", "begin", "keep"]);
    }
}
