//! A trained model: the agents, the state encoder fitted with them, and what they were trained
//! on. Saved as one directory (the learner's burn checkpoint, `encoder.json`, `model.json`) and
//! registered as a version in the experience store.

use std::path::{Path, PathBuf};

use burn::prelude::Device;
use faasconf_agents::{Algorithm, Decision, Learner, StateEncoder};
use faasconf_core::telemetry::WindowReport;
use faasconf_core::{Workflow, WorkflowConfig};
use faasconf_store::Store;
use faasconf_twin::{Twin, TwinOptions, Workload};
use serde::{Deserialize, Serialize};

use crate::Error;

/// What a model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// The workflow's name.
    pub workflow: String,
    /// The learning algorithm.
    pub algorithm: String,
    /// Transitions learnt from.
    pub transitions: usize,
    /// Observations the transitions came from.
    pub samples: usize,
    /// Updates done.
    pub updates: u64,
    /// Seed of the run.
    pub seed: u64,
    /// Unix seconds when saved.
    pub created_unix_seconds: f64,
    /// The twin it was trained on: the workflow's fingerprint (topology and profiles, see
    /// `Workflow::fingerprint`). Empty for models saved before it was recorded.
    #[serde(default)]
    pub twin_fingerprint: String,
}

/// A trained model of one workflow.
pub struct Model {
    /// The agents.
    pub learner: Learner,
    /// The state encoder fitted with them.
    pub encoder: StateEncoder,
    /// Provenance.
    pub meta: ModelMeta,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

impl Model {
    /// The algorithm the model runs.
    pub fn algorithm(&self) -> Algorithm {
        self.learner.config().algorithm
    }

    /// Writes the model into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        self.learner.save(&dir.join("learner"))?;
        let encoder = serde_json::to_string(&self.encoder).map_err(|e| Error::Io {
            path: "encoder.json".into(),
            message: e.to_string(),
        })?;
        std::fs::write(dir.join("encoder.json"), encoder).map_err(io(&dir.join("encoder.json")))?;
        let meta = serde_json::to_string_pretty(&self.meta).map_err(|e| Error::Io {
            path: "model.json".into(),
            message: e.to_string(),
        })?;
        std::fs::write(dir.join("model.json"), meta).map_err(io(&dir.join("model.json")))
    }

    /// Reads a model saved by [`Model::save`] for `workflow`.
    pub fn load(dir: &Path, workflow: &Workflow, device: Device) -> Result<Self, Error> {
        let read = |name: &str| -> Result<String, Error> {
            std::fs::read_to_string(dir.join(name)).map_err(io(&dir.join(name)))
        };
        let parse = |name: &str, e: serde_json::Error| Error::Io {
            path: dir.join(name).display().to_string(),
            message: e.to_string(),
        };
        let encoder: StateEncoder =
            serde_json::from_str(&read("encoder.json")?).map_err(|e| parse("encoder.json", e))?;
        let meta: ModelMeta =
            serde_json::from_str(&read("model.json")?).map_err(|e| parse("model.json", e))?;
        if meta.workflow != workflow.name {
            return Err(Error::invalid(
                "workflow",
                format!(
                    "the model in {} was trained for {:?}, not {:?}",
                    dir.display(),
                    meta.workflow,
                    workflow.name
                ),
            ));
        }
        let learner = Learner::load(&dir.join("learner"), &workflow.adjacency(), device)?;
        Ok(Self {
            learner,
            encoder,
            meta,
        })
    }

    /// Saves the model under `root/<workflow>/` as a new version registered in `store`; returns
    /// the version.
    pub fn register(&self, root: &Path, store: &mut Store) -> Result<i64, Error> {
        let stamp = format!(
            "{}-{}-{}",
            self.meta.algorithm,
            (self.meta.created_unix_seconds * 1000.0) as u64,
            std::process::id()
        );
        let dir: PathBuf = root.join(&self.meta.workflow).join(stamp);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        self.save(&dir)?;
        let meta = serde_json::to_value(&self.meta).map_err(|e| Error::Io {
            path: "model.json".into(),
            message: e.to_string(),
        })?;
        Ok(store.add_model(&self.meta.workflow, &dir.display().to_string(), &meta)?)
    }

    /// The policy's decision (no exploration noise) for a window.
    pub fn decide(&self, workflow: &Workflow, window: &WindowReport) -> Result<Decision, Error> {
        let state = self.encoder.encode(workflow, window)?;
        Ok(self.learner.act(&state)?)
    }

    /// The configuration a decision stands for.
    pub fn config_of(workflow: &Workflow, decision: &Decision) -> Result<WorkflowConfig, Error> {
        let actions: Vec<[f64; 4]> = decision
            .actions
            .chunks(4)
            .map(|c| [c[0], c[1], c[2], c[3]].map(|a| f64::from(a).clamp(0.0, 1.0)))
            .collect();
        Ok(workflow.config_from_actions(&actions)?)
    }

    /// Follows the policy on the twin for `steps` changes from `start` at `users`: each step
    /// decides on the last steady window, applies, drops the transient window and observes the
    /// next. Returns every steady window, the start's first.
    pub fn rollout(
        &self,
        workflow: &Workflow,
        start: WorkflowConfig,
        users: u32,
        steps: usize,
        options: TwinOptions,
    ) -> Result<Vec<WindowReport>, Error> {
        let mut twin = Twin::new(
            workflow.clone(),
            start,
            Workload::ClosedLoop { users },
            options,
        )?;
        twin.run_window();
        let mut windows = vec![twin.run_window()];
        for _ in 0..steps {
            let last = windows
                .last()
                .ok_or_else(|| Error::invalid("steps", "no window"))?;
            let config = Self::config_of(workflow, &self.decide(workflow, last)?)?;
            twin.apply_config(config)?;
            twin.run_window();
            windows.push(twin.run_window());
        }
        Ok(windows)
    }
}
