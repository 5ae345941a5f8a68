//! The methods under comparison, built from the same warm-up: twin samples drawn once per
//! (workflow, seed) at the grid's loads, which every method is given. faasconf trains its
//! agents on them (offline, as `faasconf demo` does) and seeds its safe exploration and replay
//! with them; the baselines use what their papers use of history.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use faasconf_agents::Algorithm;
use faasconf_core::optimiser::Optimiser;
use faasconf_core::{Qos, Workflow};
use faasconf_policy::engine::safe_history;
use faasconf_policy::tuner::{Tuner, TunerOptions};
use faasconf_ses::{SafeExplorer, SesConfig};
use faasconf_store::Observation;
use faasconf_training::{Model, SampleOptions, TrainOptions, twin_samples};

use crate::baselines::{BayesianOptions, BayesianSearch, Firm, FirmOptions, RandomSearch};

/// A method by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// faasconf: AttMF policy, safe exploration, twin screening, rollback guard.
    Faasconf,
    /// Uniform random search.
    Random,
    /// FIRM: critical path, then DDPG per function.
    Firm,
    /// Aquatope: constrained noisy-EI Bayesian optimisation.
    Aquatope,
    /// RAMBO: multi-objective Bayesian optimisation.
    Rambo,
}

impl Method {
    /// Every method, in report order.
    pub const ALL: [Method; 5] = [
        Method::Faasconf,
        Method::Random,
        Method::Firm,
        Method::Aquatope,
        Method::Rambo,
    ];

    /// The method's name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Faasconf => "faasconf",
            Method::Random => "random",
            Method::Firm => "firm",
            Method::Aquatope => "aquatope",
            Method::Rambo => "rambo",
        }
    }

    /// The method called `name`.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown method {name:?} (known: {})",
                    Self::ALL.map(Method::name).join(", ")
                )
            })
    }
}

/// How much warm-up every method gets.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WarmUpOptions {
    /// Twin samples (all loads together).
    pub samples: usize,
    /// faasconf's offline gradient updates.
    pub updates: u64,
    /// faasconf's online steps on the twin after them.
    pub online_steps: u64,
}

impl Default for WarmUpOptions {
    /// What `faasconf demo` pre-trains with.
    fn default() -> Self {
        Self {
            samples: 1500,
            updates: 1500,
            online_steps: 2000,
        }
    }
}

/// The warm-up of one (workflow, seed): the samples, and faasconf's model trained on them.
pub struct WarmUp {
    /// The samples every method is given.
    pub samples: Vec<Observation>,
    /// Where faasconf's trained model is saved (each cell loads a private copy); none when
    /// faasconf is not among the methods.
    pub model_dir: Option<PathBuf>,
    /// Seconds the sampling and training took.
    pub seconds: f64,
}

/// Why a warm-up failed.
#[derive(Debug, thiserror::Error)]
pub enum WarmUpError {
    /// Sampling or training failed.
    #[error("warm-up of {workflow}: {source}")]
    Training {
        /// The workflow.
        workflow: String,
        /// Why.
        #[source]
        source: faasconf_training::Error,
    },
}

/// Draws the samples at `loads` and, when `train_faasconf`, trains faasconf's agents on them
/// under `workdir`.
pub fn warm_up(
    workflow: &Workflow,
    loads: &[u32],
    qos: &Qos,
    options: &WarmUpOptions,
    seed: u64,
    workdir: &Path,
    train_faasconf: bool,
) -> Result<WarmUp, WarmUpError> {
    let started = std::time::Instant::now();
    let failed = |source| WarmUpError::Training {
        workflow: workflow.name.clone(),
        source,
    };
    let samples = twin_samples(
        workflow,
        &SampleOptions {
            loads: loads.to_vec(),
            samples: options.samples,
            qos: *qos,
            seed,
            ..SampleOptions::default()
        },
        &|_| {},
    )
    .map_err(failed)?;
    if !train_faasconf {
        return Ok(WarmUp {
            samples,
            model_dir: None,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    let train = TrainOptions {
        algorithm: Algorithm::AttMf,
        updates: options.updates,
        online_steps: options.online_steps,
        evaluate_every: 0,
        evaluate_loads: Vec::new(),
        qos: *qos,
        seed,
        ..TrainOptions::default()
    };
    let run_dir = workdir.join(format!("{}-seed{seed}-run", workflow.name));
    let (model, _) = faasconf_training::train(
        workflow,
        &samples,
        &train,
        &run_dir,
        faasconf_agents::default_device(),
        &mut |_| {},
    )
    .map_err(failed)?;
    let model_dir = workdir.join(format!("{}-seed{seed}-model", workflow.name));
    model.save(&model_dir).map_err(failed)?;
    let _ = std::fs::remove_dir_all(&run_dir);
    Ok(WarmUp {
        samples,
        model_dir: Some(model_dir),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Builds `method` for one cell.
pub fn build(
    method: Method,
    workflow: &Workflow,
    qos: &Qos,
    warm: &WarmUp,
    seed: u64,
) -> Result<Box<dyn Optimiser>, String> {
    Ok(match method {
        Method::Random => Box::new(RandomSearch::new(workflow.clone(), seed)),
        Method::Firm => Box::new(
            Firm::new(
                workflow.clone(),
                *qos,
                &warm.samples,
                FirmOptions::default(),
                seed,
            )
            .map_err(|e| e.to_string())?,
        ),
        Method::Aquatope => Box::new(BayesianSearch::new(
            "aquatope",
            workflow.clone(),
            *qos,
            &warm.samples,
            BayesianOptions::aquatope(),
            seed,
        )),
        Method::Rambo => Box::new(BayesianSearch::new(
            "rambo",
            workflow.clone(),
            *qos,
            &warm.samples,
            BayesianOptions::rambo(),
            seed,
        )),
        Method::Faasconf => {
            let dir = warm
                .model_dir
                .as_ref()
                .ok_or("faasconf: the warm-up trained no model (it was not among the methods)")?;
            let model = Model::load(dir, workflow, faasconf_agents::default_device())
                .map_err(|e| format!("faasconf's model: {e}"))?;
            let safe = safe_history(&warm.samples);
            let explorer = Arc::new(Mutex::new(SafeExplorer::new(SesConfig::default(), safe, 0)));
            let history: Vec<&Observation> = warm.samples.iter().collect();
            Box::new(
                Tuner::new(
                    workflow.clone(),
                    model,
                    explorer,
                    &history,
                    TunerOptions {
                        qos: *qos,
                        rollback_after: 3,
                        screen: true,
                        seed,
                    },
                )
                .map_err(|e| format!("faasconf: {e}"))?,
            )
        }
    })
}
