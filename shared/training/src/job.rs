//! A whole training job, as `faasconf train` and the policy's `StartTraining` run it: import
//! history, draw twin samples (kept in the store: a rerun with the same seed reuses them), train
//! on everything stored for the workflow (resuming a killed run), save and register the model.

use std::path::{Path, PathBuf};

use burn::prelude::Device;
use faasconf_core::history::HistoryRow;
use faasconf_core::{Qos, Workflow};
use faasconf_store::{Source, Store, observation_from_history};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::calibration::{TwinCalibration, calibrate_from_store, keep_adopted};
use crate::samples::{SampleOptions, twin_samples};
use crate::train::{Progress, TrainOptions, TrainReport, train};

/// What to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The workflow's name.
    pub workflow: String,
    /// Twin samples wanted (in addition to history).
    pub samples: usize,
    /// Sampling of the twin.
    pub loads: Vec<u32>,
    /// Training options (algorithm, updates, seed...; its `cancel` flag stops the whole job).
    pub train: TrainOptions,
    /// Promote the model when done.
    pub promote: bool,
    /// Calibrate the twin from the store's measured windows first, with this many objective
    /// evaluations ([`crate::calibration`]); `None`: train on the workflow's twin as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibrate: Option<usize>,
}

/// Stages a job reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stage {
    /// Calibration's objective evaluations so far.
    Calibrating(usize, usize),
    /// Twin samples drawn so far.
    Sampling(usize, usize),
    /// Training progress.
    Training(Progress),
}

/// What a finished job produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOutcome {
    /// The model version.
    pub version: i64,
    /// Its directory.
    pub path: PathBuf,
    /// Twin samples drawn by this job (0 when reused from the store).
    pub drawn: usize,
    /// The training report.
    pub report: TrainReport,
    /// The calibration the job ran first, when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<TwinCalibration>,
}

/// Imports `rows` of history as observations of session `session`, unless that session is
/// already stored. Returns how many were imported.
pub fn import_history(
    store: &mut Store,
    workflow: &Workflow,
    rows: &[HistoryRow],
    session: &str,
    qos: &Qos,
) -> Result<usize, Error> {
    if store
        .observations(workflow)?
        .iter()
        .any(|s| s.observation.source == Source::History && s.observation.session == session)
    {
        return Ok(0);
    }
    let observations: Vec<_> = rows
        .iter()
        .map(|row| {
            let mut o = observation_from_history(workflow, row, session, 0.0, false);
            o.reward = qos.reward(&o.window.workflow);
            o.qos_met = qos.met(&o.window.workflow);
            o
        })
        .collect();
    store.record(&observations)?;
    Ok(observations.len())
}

/// Runs `spec` against `store`, writing under `models_dir`.
pub fn run_job(
    store: &mut Store,
    workflow: &Workflow,
    spec: &JobSpec,
    models_dir: &Path,
    device: Device,
    progress: &mut (dyn FnMut(Stage) + Send),
) -> Result<JobOutcome, Error> {
    if spec.workflow != workflow.name {
        return Err(Error::invalid(
            "workflow",
            format!(
                "the job is for {:?}, not {:?}",
                spec.workflow, workflow.name
            ),
        ));
    }
    let calibrated;
    let (workflow, calibration) = match spec.calibrate {
        None => (workflow, None),
        Some(evaluations) => {
            let (twin, record) = calibrate_from_store(
                store,
                workflow,
                spec.train.seed,
                evaluations,
                &spec.train.cancel,
                &mut |done, total| progress(Stage::Calibrating(done, total)),
            )?;
            calibrated = twin;
            (&calibrated, Some(record))
        }
    };
    let prefix = crate::samples::twin_session_prefix(workflow, spec.train.seed);
    let stored = store
        .observations(workflow)?
        .iter()
        .filter(|s| {
            s.observation.source == Source::Twin && s.observation.session.starts_with(&prefix)
        })
        .count();
    let mut drawn = 0;
    if stored < spec.samples {
        let options = SampleOptions {
            loads: spec.loads.clone(),
            samples: spec.samples,
            qos: spec.train.qos,
            seed: spec.train.seed,
            cancel: spec.train.cancel.clone(),
            ..SampleOptions::default()
        };
        let done = std::sync::atomic::AtomicUsize::new(0);
        let total = spec.samples;
        let progress_cell = std::sync::Mutex::new(&mut *progress);
        let observations = twin_samples(workflow, &options, &|k| {
            let now = done.fetch_add(k, std::sync::atomic::Ordering::Relaxed) + k;
            if let Ok(mut p) = progress_cell.lock() {
                p(Stage::Sampling(now, total));
            }
        })?;
        // Sessions already stored (a killed job) are not recorded twice.
        let have: std::collections::HashSet<(String, u64)> = store
            .observations(workflow)?
            .into_iter()
            .filter(|s| s.observation.source == Source::Twin)
            .map(|s| (s.observation.session, s.observation.seq))
            .collect();
        let fresh: Vec<_> = observations
            .into_iter()
            .filter(|o| !have.contains(&(o.session.clone(), o.seq)))
            .collect();
        drawn = fresh.len();
        for chunk in fresh.chunks(500) {
            store.record(chunk)?;
        }
    }
    // Twin samples of another twin (the workflow's profiles before a calibration) are left out.
    let observations: Vec<_> = store
        .observations(workflow)?
        .into_iter()
        .map(|s| s.observation)
        .filter(|o| o.source != Source::Twin || crate::samples::of_this_twin(workflow, &o.session))
        .collect();
    let workdir = models_dir.join(&workflow.name).join("runs").join(format!(
        "{}-seed{}",
        spec.train.algorithm.name(),
        spec.train.seed
    ));
    // The policy is judged at the loads it was sampled at.
    let options = TrainOptions {
        evaluate_loads: spec.loads.clone(),
        ..spec.train.clone()
    };
    let (model, report) = train(
        workflow,
        &observations,
        &options,
        &workdir,
        device,
        &mut |p| progress(Stage::Training(p)),
    )?;
    let version = model.register(models_dir, store)?;
    let path = PathBuf::from(
        store
            .models(Some(&workflow.name))?
            .into_iter()
            .find(|m| m.version == version)
            .map(|m| m.path)
            .unwrap_or_default(),
    );
    write_json(&path.join("report.json"), &report)?;
    // The model records the calibration (the profiles it was trained on when adopted); an
    // adopted twin is kept for whoever trains or screens next.
    if let Some(record) = &calibration {
        write_json(&path.join("calibration.json"), record)?;
        if record.adopted {
            keep_adopted(models_dir, &workflow.name, &record.profiles)?;
        }
    }
    let first = store
        .models(Some(&workflow.name))?
        .iter()
        .all(|m| !m.promoted);
    if spec.promote || first {
        store.promote(version)?;
    }
    // The finished run's checkpoint is not resumed by a later job.
    let _ = std::fs::remove_dir_all(&workdir);
    Ok(JobOutcome {
        version,
        path,
        drawn,
        report,
        calibration,
    })
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), Error> {
    let io = |message: String| Error::Io {
        path: path.display().to_string(),
        message,
    };
    let text = serde_json::to_string_pretty(value).map_err(|e| io(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| io(e.to_string()))
}
