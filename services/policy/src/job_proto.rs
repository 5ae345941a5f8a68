//! Training jobs at the contract's edge: a `StartTrainingRequest` checked against the limits
//! and turned into a job spec (every violation named by its field), and a job's record as a
//! `TrainingStatus`.

use faasconf_agents::Algorithm;
use faasconf_core::FieldError;
use faasconf_core::limits::{
    MAX_TRAINING_EPOCHS, MAX_TRAINING_SAMPLES, MAX_TRAINING_UPDATES, MAX_USERS,
};
use faasconf_proto::v1;
use faasconf_training::{JobSpec, TrainOptions};

use crate::engine::Engine;
use crate::error::PolicyError;
use crate::jobs::JobRecord;
use crate::recommend::check_users;

/// Samples a training job draws when the request names none.
pub const DEFAULT_SAMPLES: u32 = 2000;

/// A `StartTrainingRequest` as a job, every field checked against its limit before anything
/// is written.
pub(crate) fn job_spec_from_proto(
    engine: &Engine,
    r: v1::StartTrainingRequest,
) -> Result<JobSpec, PolicyError> {
    let qos = engine.workflow(&r.workflow)?.qos();
    let mut errors = Vec::new();
    let algorithm = if r.algorithm.is_empty() {
        Algorithm::AttMf
    } else {
        r.algorithm.parse().unwrap_or_else(|e: String| {
            errors.push(FieldError::new("algorithm", e));
            Algorithm::AttMf
        })
    };
    if r.samples > MAX_TRAINING_SAMPLES {
        errors.push(FieldError::new(
            "samples",
            format!("{} is over the limit of {MAX_TRAINING_SAMPLES}", r.samples),
        ));
    }
    if r.epochs > MAX_TRAINING_EPOCHS {
        errors.push(FieldError::new(
            "epochs",
            format!("{} is over the limit of {MAX_TRAINING_EPOCHS}", r.epochs),
        ));
    }
    if !errors.is_empty() {
        return Err(PolicyError::Invalid(errors));
    }
    let samples = if r.samples == 0 {
        DEFAULT_SAMPLES
    } else {
        r.samples
    };
    let defaults = TrainOptions::default();
    let updates = if r.epochs == 0 {
        defaults.updates
    } else {
        (u64::from(r.epochs) * u64::from(samples))
            .div_ceil(defaults.batch_size as u64)
            .max(1)
    };
    let spec = JobSpec {
        workflow: r.workflow,
        samples: samples as usize,
        loads: vec![10, 20, 30],
        train: TrainOptions {
            algorithm,
            updates,
            seed: r.seed,
            qos,
            ..defaults
        },
        promote: false,
        calibrate: r.calibrate.then_some(match r.calibration_evaluations {
            0 => faasconf_training::calibration::EVALUATIONS,
            n => n as usize,
        }),
    };
    check_job_spec(&spec)?;
    Ok(spec)
}

/// The most objective evaluations a training job's calibration may run (each simulates every
/// fitted window).
pub const MAX_CALIBRATION_EVALUATIONS: usize = 5000;

/// Whether a job may run under today's limits (also for a job recorded by an older version).
pub fn check_job_spec(spec: &JobSpec) -> Result<(), PolicyError> {
    let max_updates = MAX_TRAINING_UPDATES;
    let mut errors = Vec::new();
    if spec.samples > MAX_TRAINING_SAMPLES as usize {
        errors.push(FieldError::new(
            "samples",
            format!(
                "{} is over the limit of {MAX_TRAINING_SAMPLES}",
                spec.samples
            ),
        ));
    }
    if spec.train.updates + spec.train.online_steps > max_updates {
        errors.push(FieldError::new(
            "epochs",
            format!(
                "{} updates (epochs x samples / {} + {} online steps) are over the limit of {max_updates}",
                spec.train.updates + spec.train.online_steps,
                spec.train.batch_size,
                spec.train.online_steps
            ),
        ));
    }
    if let Some(n) = spec.calibrate
        && !(2..=MAX_CALIBRATION_EVALUATIONS).contains(&n)
    {
        errors.push(FieldError::new(
            "calibration_evaluations",
            format!("{n} is not in 2..={MAX_CALIBRATION_EVALUATIONS}"),
        ));
    }
    if spec.loads.is_empty() || spec.loads.iter().any(|&u| check_users(u).is_err()) {
        errors.push(FieldError::new(
            "loads",
            format!("{:?}: each must be in 1..={MAX_USERS}", spec.loads),
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(PolicyError::Invalid(errors))
    }
}

pub(crate) fn job_to_proto(r: &JobRecord) -> v1::TrainingStatus {
    v1::TrainingStatus {
        job_id: r.id.clone(),
        state: v1::TrainingJobState::from(r.state).into(),
        progress: r.progress,
        model_version: r.model_version.clone(),
        message: r.message.clone(),
        calibration: r.calibration.as_ref().map(|c| v1::TwinCalibration {
            fitted_windows: c.fitted as u32,
            held_out_windows: c.held_out as u32,
            open_loop_windows: c.open_loop as u32,
            held_out_e2e_error_before: c.before.e2e_median_ape,
            held_out_e2e_error_after: c.after.e2e_median_ape,
            held_out_e2e_spearman_before: c.before.e2e_spearman,
            held_out_e2e_spearman_after: c.after.e2e_spearman,
            adopted: c.adopted,
            twin_fingerprint: c.twin_fingerprint.clone(),
        }),
    }
}
