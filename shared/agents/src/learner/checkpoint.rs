//! Checkpoints: the hyper-parameters (`agent.json`, a burn `Config`), the four networks (burnpack
//! files written by burn's recorder) and the learner's progress (`learner.json`) in one directory.
//! Optimiser moments are not kept: a resumed run restarts Adam's averages.

use std::path::Path;

use burn::config::Config;
use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Error, Learner};
use crate::config::AgentConfig;

const AGENT: &str = "agent.json";
const PROGRESS: &str = "learner.json";
const NETWORKS: [&str; 4] = [
    "actor.bpk",
    "critic.bpk",
    "actor_target.bpk",
    "critic_target.bpk",
];

#[derive(Debug, Serialize, Deserialize)]
struct Progress {
    functions: usize,
    noise: f64,
    updates: u64,
}

fn failed(path: &Path, message: impl ToString) -> Error {
    Error::Checkpoint {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

impl Learner {
    /// Writes the checkpoint into `dir` (created if missing). Files are written under temporary
    /// names and renamed, so a kill mid-write leaves the previous checkpoint whole.
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        std::fs::create_dir_all(dir).map_err(|e| failed(dir, e))?;
        let staging = dir.join(".staging");
        std::fs::create_dir_all(&staging).map_err(|e| failed(&staging, e))?;
        self.config
            .save(staging.join(AGENT))
            .map_err(|e| failed(&staging.join(AGENT), e))?;
        let progress = Progress {
            functions: self.functions,
            noise: self.noise,
            updates: self.updates,
        };
        let text = serde_json::to_string_pretty(&progress)
            .map_err(|e| failed(&staging.join(PROGRESS), e))?;
        std::fs::write(staging.join(PROGRESS), text)
            .map_err(|e| failed(&staging.join(PROGRESS), e))?;
        let records = [
            self.actor.clone().into_record(),
            self.critic.clone().into_record(),
            self.actor_target.clone().into_record(),
            self.critic_target.clone().into_record(),
        ];
        for (name, record) in NETWORKS.iter().zip(records) {
            record
                .save(staging.join(name))
                .map_err(|e| failed(&staging.join(name), format!("{e:?}")))?;
        }
        for name in NETWORKS.iter().chain([&AGENT, &PROGRESS]) {
            std::fs::rename(staging.join(name), dir.join(name))
                .map_err(|e| failed(&dir.join(name), e))?;
        }
        std::fs::remove_dir(&staging).map_err(|e| failed(&staging, e))
    }

    /// Reads a checkpoint written by [`Learner::save`] for a workflow with `adjacency`.
    pub fn load(dir: &Path, adjacency: &[Vec<u8>], device: Device) -> Result<Self, Error> {
        let config = AgentConfig::load(dir.join(AGENT)).map_err(|e| failed(&dir.join(AGENT), e))?;
        let text = std::fs::read_to_string(dir.join(PROGRESS))
            .map_err(|e| failed(&dir.join(PROGRESS), e))?;
        let progress: Progress =
            serde_json::from_str(&text).map_err(|e| failed(&dir.join(PROGRESS), e))?;
        if progress.functions != adjacency.len() {
            return Err(failed(
                dir,
                format!(
                    "trained for {} functions, the workflow has {}",
                    progress.functions,
                    adjacency.len()
                ),
            ));
        }
        let mut learner = Learner::new(config, adjacency, device)?;
        let read = |name: &str| {
            burn::store::ModuleRecord::load(dir.join(name))
                .map_err(|e| failed(&dir.join(name), format!("{e:?}")))
        };
        let [actor, critic, actor_target, critic_target] = NETWORKS.map(read);
        let apply =
            |path: &str, e: burn::store::RecordError| failed(&dir.join(path), format!("{e:?}"));
        learner.actor = learner
            .actor
            .clone()
            .try_load_record(actor?)
            .map_err(|e| apply(NETWORKS[0], e))?;
        learner.critic = learner
            .critic
            .clone()
            .try_load_record(critic?)
            .map_err(|e| apply(NETWORKS[1], e))?;
        // Targets are loaded into clones of the online networks, so they keep sharing parameter
        // ids (soft updates pair parameters by id).
        learner.actor_target = learner
            .actor
            .clone()
            .try_load_record(actor_target?)
            .map_err(|e| apply(NETWORKS[2], e))?;
        learner.critic_target = learner
            .critic
            .clone()
            .try_load_record(critic_target?)
            .map_err(|e| apply(NETWORKS[3], e))?;
        learner.noise = progress.noise;
        learner.updates = progress.updates;
        Ok(learner)
    }
}
