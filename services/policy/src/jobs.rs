//! Training jobs started over RPC. Each job's spec and state are written to
//! `<models>/jobs/<id>.json`; a job still marked active when the service starts (it was
//! killed) is started again and resumes from its last checkpoint. Samples are in the store,
//! committed as they are drawn, so none is lost.
//!
//! A job is checked against the limits before anything is written; a job that fails is
//! recorded `failed` with the reason and never resumed; a job that was started
//! [`MAX_STARTS`] times without ending (it took the process down each time) is not started
//! again. At most `max_running` jobs run at once; a job can be cancelled.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use faasconf_core::cancel::Cancel;
use faasconf_core::limits::quoted;
use faasconf_training::calibration::TwinCalibration;
use faasconf_training::{Error as TrainingError, JobSpec, Stage, run_job};
use serde::{Deserialize, Serialize};

use crate::engine::{Engine, lock};
use crate::error::PolicyError;

/// Starts of one job (the first and the resumptions) after which a job that never ended is
/// given up: it most likely takes the process down.
pub const MAX_STARTS: u32 = 3;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted, not started yet.
    Pending,
    /// Sampling or training.
    Running,
    /// Finished: a model version was registered.
    Done,
    /// Ended without a model (the message says why).
    Failed,
    /// Stopped on request.
    Cancelled,
}

impl JobState {
    /// Still to end.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Pending | Self::Running)
    }
}

impl From<JobState> for faasconf_proto::v1::TrainingJobState {
    fn from(s: JobState) -> Self {
        match s {
            JobState::Pending => Self::Pending,
            JobState::Running => Self::Running,
            JobState::Done => Self::Done,
            JobState::Failed => Self::Failed,
            JobState::Cancelled => Self::Cancelled,
        }
    }
}

/// A job's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Job id.
    pub id: String,
    /// What it trains.
    pub spec: JobSpec,
    /// Where it stands.
    pub state: JobState,
    /// 0..=1.
    pub progress: f64,
    /// The model version, when done.
    pub model_version: String,
    /// News.
    pub message: String,
    /// How many times the job was started (1 + resumptions).
    #[serde(default)]
    pub starts: u32,
    /// What its calibration found, once it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<TwinCalibration>,
}

struct Job {
    record: Arc<Mutex<JobRecord>>,
    cancel: Cancel,
}

/// The jobs of this service.
pub struct Jobs {
    dir: PathBuf,
    jobs: Mutex<HashMap<String, Job>>,
    max_running: usize,
    next: AtomicU64,
    /// Raised on shutdown: a job cancelled from then on was interrupted, not cancelled.
    stopping: AtomicBool,
}

impl Jobs {
    /// Jobs recorded under `models_dir/jobs`, at most `max_running` of them running at once.
    pub fn new(models_dir: &std::path::Path, max_running: usize) -> Self {
        Self {
            dir: models_dir.join("jobs"),
            jobs: Mutex::new(HashMap::new()),
            max_running: max_running.max(1),
            next: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
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

    fn running(&self) -> usize {
        lock(&self.jobs)
            .values()
            .filter(|j| lock(&j.record).state.is_active())
            .count()
    }

    /// Starts a job whose spec the caller validated; RESOURCE_EXHAUSTED when `max_running`
    /// jobs are running.
    pub fn start(
        self: &Arc<Self>,
        engine: Arc<Engine>,
        spec: JobSpec,
    ) -> Result<JobRecord, PolicyError> {
        engine.workflow(&spec.workflow)?;
        if self.running() >= self.max_running {
            return Err(PolicyError::Exhausted(format!(
                "{} training jobs are running, the most this policy runs at once (--max-training-jobs); retry when one ends",
                self.max_running
            )));
        }
        let id = format!(
            "train-{}-{}-{}-{}",
            spec.workflow,
            spec.train.algorithm.name(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis()),
            self.next.fetch_add(1, Ordering::Relaxed) + 1
        );
        let record = JobRecord {
            id,
            spec,
            state: JobState::Pending,
            progress: 0.0,
            model_version: String::new(),
            message: String::new(),
            starts: 0,
            calibration: None,
        };
        Ok(self.launch(engine, record))
    }

    /// Restarts the jobs a killed service left active, unless they cannot run (their spec is
    /// past today's limits, they were started [`MAX_STARTS`] times, too many are active):
    /// those are recorded `failed` with the reason. Returns how many were resumed.
    pub fn resume_interrupted(
        self: &Arc<Self>,
        engine: Arc<Engine>,
        check: impl Fn(&JobSpec) -> Result<(), PolicyError>,
    ) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut resumed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Ok(mut record) = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<JobRecord>(&b).map_err(|e| e.to_string()))
            else {
                tracing::warn!(path = %path.display(), "unreadable job record left alone");
                continue;
            };
            if !record.state.is_active() {
                continue;
            }
            let refused = if record.starts >= MAX_STARTS {
                Some(format!(
                    "started {} times without ending (the service stopped each time); not resumed again",
                    record.starts
                ))
            } else if let Err(e) = check(&record.spec) {
                Some(format!("not resumed: {e}"))
            } else if resumed >= self.max_running {
                Some(format!(
                    "not resumed: {} jobs were resumed, the most this policy runs at once",
                    self.max_running
                ))
            } else {
                None
            };
            if let Some(reason) = refused {
                tracing::warn!(job = %record.id, %reason, "interrupted training job given up");
                record.state = JobState::Failed;
                record.message = reason;
                self.save(&record);
                // Readable over GetTrainingStatus: the operator sees why.
                let cancel = record.spec.train.cancel.clone();
                lock(&self.jobs).insert(
                    record.id.clone(),
                    Job {
                        record: Arc::new(Mutex::new(record)),
                        cancel,
                    },
                );
                continue;
            }
            tracing::info!(job = %record.id, "resuming an interrupted training job");
            record.message = "resumed after a restart".into();
            self.launch(engine.clone(), record);
            resumed += 1;
        }
        resumed
    }

    fn launch(self: &Arc<Self>, engine: Arc<Engine>, mut record: JobRecord) -> JobRecord {
        record.starts += 1;
        // Persisted before the work starts: a start that takes the process down still counts.
        self.save(&record);
        let cancel = record.spec.train.cancel.clone();
        let shared = Arc::new(Mutex::new(record.clone()));
        lock(&self.jobs).insert(
            record.id.clone(),
            Job {
                record: shared.clone(),
                cancel,
            },
        );
        let jobs = self.clone();
        tokio::task::spawn_blocking(move || jobs.run(&engine, &shared));
        record
    }

    fn run(&self, engine: &Engine, shared: &Arc<Mutex<JobRecord>>) {
        let spec = {
            let mut r = lock(shared);
            if r.state.is_active() {
                r.state = JobState::Running;
                self.save(&r);
            }
            r.spec.clone()
        };
        if spec.train.cancel.is_cancelled() {
            self.finish(engine, shared, &spec, Err(TrainingError::Cancelled));
            return;
        }
        let result = engine
            .workflow(&spec.workflow)
            .map_err(|e| TrainingError::Invalid {
                field: "workflow".into(),
                message: e.to_string(),
            })
            .and_then(|workflow| {
                // Its own connection: the service's stays free for recommendations.
                let mut store = faasconf_store::Store::open(&engine.store_path)?;
                let progress = shared.clone();
                let calibrating = spec.calibrate.is_some();
                run_job(
                    &mut store,
                    &workflow,
                    &spec,
                    &engine.models_dir,
                    faasconf_agents::default_device(),
                    &mut |stage| lock(&progress).progress = fraction(stage, calibrating),
                )
            });
        self.finish(engine, shared, &spec, result);
    }

    fn finish(
        &self,
        engine: &Engine,
        shared: &Arc<Mutex<JobRecord>>,
        spec: &JobSpec,
        result: Result<faasconf_training::JobOutcome, TrainingError>,
    ) {
        let mut r = lock(shared);
        match result {
            Ok(outcome) => {
                r.state = JobState::Done;
                r.progress = 1.0;
                r.model_version = outcome.version.to_string();
                r.message = format!(
                    "trained on {} transitions in {:.1} s",
                    outcome.report.transitions, outcome.report.seconds
                );
                if let Some(calibration) = outcome.calibration {
                    r.message = format!("{}; {}", calibration.summary(), r.message);
                    if calibration.adopted
                        && let Err(e) = engine.adopt_profiles(&spec.workflow, &calibration.profiles)
                    {
                        tracing::warn!(job = %r.id, error = %e, "calibration not served");
                        r.message = format!("{}; but {e}", r.message);
                    }
                    r.calibration = Some(calibration);
                }
                engine.refresh_explorer(&spec.workflow);
            }
            Err(TrainingError::Cancelled) if self.stopping.load(Ordering::SeqCst) => {
                r.state = JobState::Running;
                r.starts = r.starts.saturating_sub(1);
                r.message = "interrupted by a shutdown; resumes from its last checkpoint".into();
            }
            Err(TrainingError::Cancelled) => {
                r.state = JobState::Cancelled;
                r.message = "cancelled on request".into();
            }
            Err(e) => {
                tracing::warn!(job = %r.id, error = %e, "training job failed");
                r.state = JobState::Failed;
                r.message = e.to_string();
            }
        }
        self.save(&r);
    }

    fn job<T>(&self, id: &str, f: impl FnOnce(&Job) -> T) -> Result<T, PolicyError> {
        let jobs = lock(&self.jobs);
        let job = jobs.get(id).ok_or_else(|| {
            PolicyError::NotFound(format!("training job {} does not exist", quoted(id)))
        })?;
        Ok(f(job))
    }

    /// A job's record.
    pub fn status(&self, id: &str) -> Result<JobRecord, PolicyError> {
        self.job(id, |j| lock(&j.record).clone())
    }

    /// Interrupts every running job because the service is shutting down: each stops within a
    /// training update or a twin episode, writes its checkpoint and stays `running` in its
    /// record, so the next start resumes it from there (an interruption on shutdown does not
    /// count as one of the starts that ended without the job ending).
    pub fn interrupt_all(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for job in lock(&self.jobs).values() {
            if lock(&job.record).state.is_active() {
                job.cancel.cancel();
            }
        }
    }

    /// Asks a job to stop; it ends `cancelled` within a training update or a twin episode.
    /// An ended job is left as it is.
    pub fn cancel(&self, id: &str) -> Result<JobRecord, PolicyError> {
        self.job(id, |j| {
            if lock(&j.record).state.is_active() {
                j.cancel.cancel();
            }
            lock(&j.record).clone()
        })
    }
}

/// The share of a job done at `stage`: sampling is the first 30%, training the rest; a job
/// that calibrates first gives calibration the first 30% and the others the rest, in the same
/// proportions.
fn fraction(stage: Stage, calibrating: bool) -> f64 {
    let share = |done: u64, total: u64| done as f64 / total.max(1) as f64;
    let after = |f: f64| if calibrating { 0.3 + 0.7 * f } else { f };
    match stage {
        Stage::Calibrating(done, total) => 0.3 * share(done as u64, total as u64),
        Stage::Sampling(done, total) => after(0.3 * share(done as u64, total as u64)),
        Stage::Training(p) => after(0.3 + 0.7 * share(p.update, p.total)),
    }
}
