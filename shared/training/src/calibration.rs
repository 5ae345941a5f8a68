//! Calibration from the store, as a training job's first step when asked (`StartTraining`'s
//! `calibrate`, `faasconf train --calibrate`): the workflow's profiles are fitted to the windows
//! the store measured — tuning sessions' windows and imported history, closed or open loop, any
//! mix of configurations; never the twin's own samples — and judged on a held-out fifth of them.
//!
//! Two fits compete: the per-function refit of CPU work and I/O time from the current twin
//! (`faasconf_twin::follow`, made for a handful of windows: it moves what the windows agree on)
//! and, with [`FULL_FIT_WINDOWS`] windows or more, the full calibration of every profile field
//! (`faasconf_twin::calibrate`, which starts from the windows alone and needs many). The one
//! that predicts the held-out windows best is adopted only when it predicts them better than the
//! twin it would replace: a calibration is evidence, and evidence that does not beat the current
//! twin does not replace it. The job then samples and trains on the twin it adopted (samples are
//! keyed by the twin's fingerprint, so a calibrated twin's are drawn afresh).

use std::path::{Path, PathBuf};

use faasconf_core::Workflow;
use faasconf_core::cancel::Cancel;
use faasconf_core::catalog::ProfileSet;
use faasconf_core::history::HistoryRow;
use faasconf_core::rng::Rng;
use faasconf_store::{Source, Store, history_from_observation};
use faasconf_twin::calibrate::{CalibrationOptions, calibrate_until, predict_rows};
use faasconf_twin::fidelity::Fidelity;
use faasconf_twin::follow::{FollowOptions, LoadModel, Observed, refit};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Measured windows a calibration needs at the least (a fifth of them is held out).
pub const MIN_WINDOWS: usize = 10;

/// Fitted windows from which the full calibration competes with the refit.
pub const FULL_FIT_WINDOWS: usize = 30;

/// How a fit was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FitMethod {
    /// CPU work and I/O time per function, refitted from the current twin.
    Refit,
    /// Every profile field, fitted from the windows alone.
    Calibration,
}

/// Objective evaluations of a job's calibration unless the job says (each simulates every
/// fitted window).
pub const EVALUATIONS: usize = 300;

/// What a job's calibration found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwinCalibration {
    /// Measured windows the fit used.
    pub fitted: usize,
    /// Measured windows held out to judge it.
    pub held_out: usize,
    /// Of all of them, those under open-loop arrivals.
    pub open_loop: usize,
    /// How the twin before predicted the held-out windows.
    pub before: Fidelity,
    /// How the fitted twin predicts them.
    pub after: Fidelity,
    /// The fit that predicted the held-out windows best.
    pub method: FitMethod,
    /// Whether it was adopted (it predicts the held-out windows better than the twin before).
    pub adopted: bool,
    /// The fitted profiles.
    pub profiles: ProfileSet,
    /// The fingerprint of the twin the job trains on (the fitted one when adopted).
    pub twin_fingerprint: String,
}

impl TwinCalibration {
    /// One line for an operator.
    pub fn summary(&self) -> String {
        format!(
            "calibrated ({:?}) on {} measured windows ({} open loop), judged on {} held out: end-to-end error {:.1}% -> {:.1}%, Spearman {:.2} -> {:.2}; {}",
            self.method,
            self.fitted,
            self.open_loop,
            self.held_out,
            100.0 * self.before.e2e_median_ape,
            100.0 * self.after.e2e_median_ape,
            self.before.e2e_spearman,
            self.after.e2e_spearman,
            if self.adopted {
                "adopted"
            } else {
                "not adopted: it does not predict them better than the current twin"
            }
        )
    }
}

/// Where the twin adopted for `workflow` is kept: `<models_dir>/twins/<workflow>.json`, a
/// profile set as `faasconf sim calibrate` writes it. The policy screens and trains on it, and
/// `faasconf train` trains on it, unless profiles are given explicitly.
pub fn adopted_twin_file(models_dir: &Path, workflow: &str) -> PathBuf {
    models_dir.join("twins").join(format!("{workflow}.json"))
}

/// Keeps `profiles` as the adopted twin of `workflow` (written whole, then renamed).
pub fn keep_adopted(models_dir: &Path, workflow: &str, profiles: &ProfileSet) -> Result<(), Error> {
    let path = adopted_twin_file(models_dir, workflow);
    let io = |e: std::io::Error| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let text = serde_json::to_vec_pretty(profiles).map_err(|e| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

/// `workflow` with the twin adopted for it under `models_dir`, when there is one (`None`: none
/// was adopted). A file that cannot be read, or names functions the workflow does not have, is
/// an error naming it.
pub fn with_adopted_twin(
    models_dir: &Path,
    workflow: &Workflow,
) -> Result<Option<Workflow>, Error> {
    let path = adopted_twin_file(models_dir, &workflow.name);
    if !path.exists() {
        return Ok(None);
    }
    let set = ProfileSet::read(&path)?;
    if let Some(stranger) = set
        .functions
        .keys()
        .find(|f| workflow.function_index(f).is_none())
    {
        return Err(Error::invalid(
            path.display().to_string(),
            format!(
                "function {stranger:?} is not in workflow {:?}",
                workflow.name
            ),
        ));
    }
    Ok(Some(workflow.clone().with_profiles(&set)))
}

/// One measured window as calibration and the refit read it.
struct Measured {
    row: HistoryRow,
    observed: Observed,
}

/// The store's measured windows of `workflow` (the twin's samples left out) that both fits can
/// use.
fn measured(store: &Store, workflow: &Workflow) -> Result<Vec<Measured>, Error> {
    Ok(store
        .observations(workflow)?
        .iter()
        .filter(|s| s.observation.source != Source::Twin)
        .filter_map(|s| {
            Some(Measured {
                row: history_from_observation(workflow, &s.observation)?,
                observed: Observed::from_window(
                    workflow,
                    &s.observation.window,
                    LoadModel::Measured,
                )?,
            })
        })
        .collect())
}

/// Fits `workflow`'s profiles to the store's measured windows (see the module docs); returns
/// the twin to train on (the fitted one when adopted, else `workflow` itself) and the record.
/// `evaluations` bounds the full calibration; `progress(done, total)` counts them.
pub fn calibrate_from_store(
    store: &Store,
    workflow: &Workflow,
    seed: u64,
    evaluations: usize,
    cancel: &Cancel,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Workflow, TwinCalibration), Error> {
    let mut windows = measured(store, workflow)?;
    if windows.len() < MIN_WINDOWS {
        return Err(Error::invalid(
            "calibrate",
            format!(
                "the store holds {} usable measured windows of {} (complete, rolled out, with load); calibration needs at least {MIN_WINDOWS}: tune or import history first",
                windows.len(),
                workflow.name
            ),
        ));
    }
    // A seeded shuffle, then every fifth window held out.
    let mut rng = Rng::stream(seed, 0xca1b);
    for i in (1..windows.len()).rev() {
        windows.swap(i, rng.below(i + 1));
    }
    let mut held: Vec<HistoryRow> = Vec::new();
    let mut fitted_rows: Vec<HistoryRow> = Vec::new();
    let mut observed: Vec<Observed> = Vec::new();
    for (i, m) in windows.into_iter().enumerate() {
        if i % 5 == 0 {
            held.push(m.row);
        } else {
            fitted_rows.push(m.row);
            observed.push(m.observed);
        }
    }
    let judge = |w: &Workflow| Fidelity::measure(w, &held, &predict_rows(w, &held, 3, seed, 0));
    let before = judge(workflow);
    let refitted = refit(
        workflow,
        workflow,
        &observed,
        &FollowOptions {
            seed,
            ..FollowOptions::default()
        },
    )
    .workflow;
    let mut candidates = vec![(FitMethod::Refit, judge(&refitted), refitted)];
    if fitted_rows.len() >= FULL_FIT_WINDOWS {
        let options = CalibrationOptions {
            seed,
            max_evaluations: evaluations,
            ..CalibrationOptions::default()
        };
        let fit = calibrate_until(workflow, &fitted_rows, &options, cancel, progress)
            .ok_or(Error::Cancelled)?;
        let calibrated = workflow.clone().with_profiles(&fit.profiles);
        candidates.push((FitMethod::Calibration, judge(&calibrated), calibrated));
    }
    if cancel.is_cancelled() {
        return Err(Error::Cancelled);
    }
    candidates.sort_by(|a, b| a.1.e2e_median_ape.total_cmp(&b.1.e2e_median_ape));
    let (method, after, candidate) = candidates.swap_remove(0);
    let adopted = after.e2e_median_ape < before.e2e_median_ape;
    let profiles = ProfileSet::of(
        &candidate,
        format!(
            "calibrated by a training job ({method:?}) from {} measured windows of the store (seed {seed})",
            fitted_rows.len()
        ),
    );
    let twin = if adopted { candidate } else { workflow.clone() };
    let record = TwinCalibration {
        fitted: fitted_rows.len(),
        held_out: held.len(),
        open_loop: fitted_rows
            .iter()
            .chain(&held)
            .filter(|r| r.arrivals_per_second.is_some())
            .count(),
        before,
        after,
        method,
        adopted,
        profiles,
        twin_fingerprint: twin.fingerprint(),
    };
    Ok((twin, record))
}

#[cfg(test)]
mod tests;
