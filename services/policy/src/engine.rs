//! The policy's shared state: known workflows (each with the twin the policy screens and trains
//! on, which an adopted calibration replaces), the experience store, loaded models, and the
//! safe-exploration strategy of each workflow.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

pub use faasconf_tuner::{lock, safe_history};

use faasconf_core::Workflow;
use faasconf_core::catalog::ProfileSet;
use faasconf_ses::{SafeExplorer, SesConfig};
use faasconf_store::{ModelVersion, Store};
use faasconf_training::Model;
use faasconf_training::calibration::with_adopted_twin;

use crate::error::PolicyError;

/// A loaded model, shared by requests (decisions lock it briefly).
pub type SharedModel = Arc<Mutex<Model>>;

/// What every RPC works with.
pub struct Engine {
    workflows: RwLock<HashMap<String, Arc<Workflow>>>,
    store: Mutex<Store>,
    /// The store's file (training jobs open their own connection to it).
    pub store_path: PathBuf,
    /// Where model versions are written.
    pub models_dir: PathBuf,
    models: Mutex<HashMap<i64, SharedModel>>,
    explorers: Mutex<HashMap<String, Arc<Mutex<SafeExplorer>>>>,
    /// Settings of safe exploration.
    pub ses: SesConfig,
}

impl Engine {
    /// An engine over `workflows`, the store at `store_path` and `models_dir`.
    pub fn open(
        workflows: Vec<Workflow>,
        store_path: PathBuf,
        models_dir: PathBuf,
    ) -> Result<Self, faasconf_store::Error> {
        let store = Store::open(&store_path)?;
        Ok(Self {
            store_path,
            workflows: RwLock::new(
                workflows
                    .into_iter()
                    .map(|w| (w.name.clone(), Arc::new(w)))
                    .collect(),
            ),
            store: Mutex::new(store),
            models_dir,
            models: Mutex::new(HashMap::new()),
            explorers: Mutex::new(HashMap::new()),
            ses: SesConfig::default(),
        })
    }

    /// The store (locked).
    pub fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    /// A known workflow, with the twin the policy holds of it now.
    pub fn workflow(&self, name: &str) -> Result<Arc<Workflow>, PolicyError> {
        if name.is_empty() {
            return Err(PolicyError::field("workflow", "missing"));
        }
        let workflows = self
            .workflows
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        workflows.get(name).cloned().ok_or_else(|| {
            let mut served: Vec<String> = workflows.keys().cloned().collect();
            served.sort_unstable();
            PolicyError::UnknownWorkflow {
                name: name.to_owned(),
                served,
            }
        })
    }

    /// Serves `workflow` with the calibrated `profiles` from now on (sessions started later
    /// screen on them); the training job that adopted them keeps them for the next start.
    pub fn adopt_profiles(&self, workflow: &str, profiles: &ProfileSet) -> Result<(), PolicyError> {
        let adopted = Arc::new((*self.workflow(workflow)?).clone().with_profiles(profiles));
        self.workflows
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(workflow.to_owned(), adopted);
        Ok(())
    }

    /// Takes up the twins training jobs adopted before this start
    /// (`faasconf_training::calibration::with_adopted_twin`), except for the workflows in
    /// `explicit` (whose profiles an operator gave at start: those win). Returns the workflows
    /// whose twin changed; one that cannot be read is left out with a warning.
    pub fn restore_calibrations(&self, explicit: &[String]) -> Vec<String> {
        let served: Vec<Arc<Workflow>> = self
            .workflows
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let mut restored = Vec::new();
        for workflow in served {
            if explicit.contains(&workflow.name) {
                continue;
            }
            match with_adopted_twin(&self.models_dir, &workflow) {
                Ok(None) => {}
                Ok(Some(adopted)) => {
                    restored.push(workflow.name.clone());
                    self.workflows
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(workflow.name.clone(), Arc::new(adopted));
                }
                Err(e) => tracing::warn!(
                    workflow = %workflow.name, error = %e,
                    "the adopted twin cannot be used; serving the configured one"
                ),
            }
        }
        restored
    }

    /// The model versions of `workflow` (all workflows when `None`).
    pub fn versions(&self, workflow: Option<&str>) -> Result<Vec<ModelVersion>, PolicyError> {
        self.store().models(workflow).map_err(PolicyError::internal)
    }

    /// The model of `workflow`: `version` (empty: the promoted one, else the newest).
    pub fn model(
        &self,
        workflow: &Workflow,
        version: &str,
    ) -> Result<(ModelVersion, SharedModel), PolicyError> {
        let versions = self.versions(Some(&workflow.name))?;
        let chosen = if version.is_empty() {
            versions
                .iter()
                .find(|v| v.promoted)
                .or_else(|| versions.iter().max_by_key(|v| v.version))
        } else {
            let wanted: i64 = version.parse().map_err(|_| {
                PolicyError::field(
                    "model_version",
                    format!("{version:?} is not a version number"),
                )
            })?;
            Some(
                versions
                    .iter()
                    .find(|v| v.version == wanted)
                    .ok_or_else(|| {
                        PolicyError::NotFound(format!(
                            "model version {wanted} of {:?} does not exist",
                            workflow.name
                        ))
                    })?,
            )
        };
        let chosen = chosen
            .ok_or_else(|| PolicyError::NoModel {
                workflow: workflow.name.clone(),
            })?
            .clone();
        if let Some(m) = lock(&self.models).get(&chosen.version) {
            return Ok((chosen, m.clone()));
        }
        let model = Model::load(
            std::path::Path::new(&chosen.path),
            workflow,
            faasconf_agents::default_device(),
        )
        .map_err(|e| {
            PolicyError::Internal(format!(
                "model version {} cannot be loaded: {e}",
                chosen.version
            ))
        })?;
        let shared = Arc::new(Mutex::new(model));
        lock(&self.models).insert(chosen.version, shared.clone());
        Ok((chosen, shared))
    }

    /// The safe-exploration strategy of `workflow`, built from its stored observations.
    pub fn explorer(&self, workflow: &Workflow) -> Result<Arc<Mutex<SafeExplorer>>, PolicyError> {
        if let Some(e) = lock(&self.explorers).get(&workflow.name) {
            return Ok(e.clone());
        }
        let stored = self
            .store()
            .observations(workflow)
            .map_err(PolicyError::internal)?;
        let samples = safe_history(stored.iter().map(|s| &s.observation));
        let explorer = Arc::new(Mutex::new(SafeExplorer::new(self.ses, samples, 0)));
        Ok(lock(&self.explorers)
            .entry(workflow.name.clone())
            .or_insert(explorer)
            .clone())
    }

    /// Forgets the cached strategy of `workflow` (after new samples were imported).
    pub fn refresh_explorer(&self, workflow: &str) {
        lock(&self.explorers).remove(workflow);
    }
}
