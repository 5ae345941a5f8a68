//! Training jobs started over RPC. Each job's spec and state are written to
//! `<models>/jobs/<id>.json`; a job still marked running when the service starts (it was
//! killed) is started again and resumes from its last checkpoint. Samples are in the store,
//! committed as they are drawn, so none is lost.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use faasconf_training::{JobSpec, Stage, run_job};
use serde::{Deserialize, Serialize};

use crate::engine::{Engine, lock};
use crate::error::PolicyError;

/// A job's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Job id.
    pub id: String,
    /// What it trains.
    pub spec: JobSpec,
    /// pending, running, done, failed.
    pub state: String,
    /// 0..=1.
    pub progress: f64,
    /// The model version, when done.
    pub model_version: String,
    /// News.
    pub message: String,
}

/// The jobs of this service.
pub struct Jobs {
    dir: PathBuf,
    jobs: Mutex<HashMap<String, Arc<Mutex<JobRecord>>>>,
}

impl Jobs {
    /// Jobs recorded under `models_dir/jobs`.
    pub fn new(models_dir: &std::path::Path) -> Self {
        Self {
            dir: models_dir.join("jobs"),
            jobs: Mutex::new(HashMap::new()),
        }
    }

    fn save(&self, record: &JobRecord) {
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let tmp = self.dir.join(format!("{}.json.tmp", record.id));
            std::fs::write(&tmp, serde_json::to_vec_pretty(record)?)?;
            std::fs::rename(tmp, self.dir.join(format!("{}.json", record.id)))
        };
        if let Err(e) = write() {
            tracing::warn!(job = %record.id, error = %e, "cannot record the job's state");
        }
    }

    /// Starts a job.
    pub fn start(
        self: &Arc<Self>,
        engine: Arc<Engine>,
        spec: JobSpec,
    ) -> Result<JobRecord, PolicyError> {
        engine.workflow(&spec.workflow)?;
        let id = format!(
            "train-{}-{}-{}",
            spec.workflow,
            spec.train.algorithm.name(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
        );
        let record = JobRecord {
            id,
            spec,
            state: "pending".into(),
            progress: 0.0,
            model_version: String::new(),
            message: String::new(),
        };
        self.launch(engine, record.clone());
        Ok(record)
    }

    /// Restarts the jobs a killed service left running.
    pub fn resume_interrupted(self: &Arc<Self>, engine: Arc<Engine>) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut resumed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Ok(record) = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<JobRecord>(&b).map_err(|e| e.to_string()))
            else {
                tracing::warn!(path = %path.display(), "unreadable job record left alone");
                continue;
            };
            if matches!(record.state.as_str(), "pending" | "running") {
                tracing::info!(job = %record.id, "resuming an interrupted training job");
                self.launch(
                    engine.clone(),
                    JobRecord {
                        message: "resumed after a restart".into(),
                        ..record
                    },
                );
                resumed += 1;
            }
        }
        resumed
    }

    fn launch(self: &Arc<Self>, engine: Arc<Engine>, record: JobRecord) {
        let shared = Arc::new(Mutex::new(record.clone()));
        lock(&self.jobs).insert(record.id.clone(), shared.clone());
        self.save(&record);
        let jobs = self.clone();
        tokio::task::spawn_blocking(move || {
            let spec = lock(&shared).spec.clone();
            {
                let mut r = lock(&shared);
                r.state = "running".into();
                jobs.save(&r);
            }
            let result = engine
                .workflow(&spec.workflow)
                .map_err(|e| e.to_string())
                .and_then(|workflow| {
                    let workflow = workflow.clone();
                    // Its own connection: the service's stays free for recommendations.
                    let mut store = faasconf_store::Store::open(&engine.store_path)
                        .map_err(|e| e.to_string())?;
                    let progress_state = shared.clone();
                    run_job(
                        &mut store,
                        &workflow,
                        &spec,
                        &engine.models_dir,
                        faasconf_agents::default_device(),
                        &mut |stage| {
                            let p = match stage {
                                Stage::Sampling(done, total) => {
                                    0.3 * done as f64 / total.max(1) as f64
                                }
                                Stage::Training(p) => {
                                    0.3 + 0.7 * p.update as f64 / p.total.max(1) as f64
                                }
                            };
                            lock(&progress_state).progress = p;
                        },
                    )
                    .map_err(|e| e.to_string())
                });
            let mut r = lock(&shared);
            match result {
                Ok(outcome) => {
                    r.state = "done".into();
                    r.progress = 1.0;
                    r.model_version = outcome.version.to_string();
                    r.message = format!(
                        "trained on {} transitions in {:.1} s",
                        outcome.report.transitions, outcome.report.seconds
                    );
                    engine.refresh_explorer(&spec.workflow);
                }
                Err(e) => {
                    r.state = "failed".into();
                    r.message = e;
                }
            }
            jobs.save(&r);
        });
    }

    /// A job's record.
    pub fn status(&self, id: &str) -> Result<JobRecord, PolicyError> {
        let jobs = lock(&self.jobs);
        let job = jobs
            .get(id)
            .ok_or_else(|| PolicyError::NotFound(format!("training job {id:?} does not exist")))?;
        Ok(lock(job).clone())
    }
}
