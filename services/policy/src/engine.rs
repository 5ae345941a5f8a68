//! The policy's shared state: known workflows, the experience store, loaded models, and the
//! safe-exploration strategy of each workflow.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

pub use faasconf_tuner::{lock, safe_history};

use faasconf_core::Workflow;
use faasconf_ses::{SafeExplorer, SesConfig};
use faasconf_store::{ModelVersion, Store};
use faasconf_training::Model;

use crate::error::PolicyError;

/// A loaded model, shared by requests (decisions lock it briefly).
pub type SharedModel = Arc<Mutex<Model>>;

/// What every RPC works with.
pub struct Engine {
    workflows: HashMap<String, Workflow>,
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
            workflows: workflows.into_iter().map(|w| (w.name.clone(), w)).collect(),
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

    /// A known workflow.
    pub fn workflow(&self, name: &str) -> Result<&Workflow, PolicyError> {
        if name.is_empty() {
            return Err(PolicyError::field("workflow", "missing"));
        }
        self.workflows
            .get(name)
            .ok_or_else(|| PolicyError::UnknownWorkflow(name.to_owned()))
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
