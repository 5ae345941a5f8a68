//! `faasconf.v1.Policy` over the engine: proto messages are converted and validated here, and
//! policy errors become gRPC statuses.

use std::sync::Arc;
use std::time::Instant;

use faasconf_core::Qos;
use faasconf_core::cancel::Cancel;
use faasconf_core::telemetry::LoadModel;
use faasconf_proto::convert::{config_to_proto, load_model_from_proto};
use faasconf_proto::v1::{self, policy_server::Policy};
use faasconf_proto::window::window_from_proto;
use faasconf_twin::Workload;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

use crate::actuators::Actuators;
use crate::engine::Engine;
use crate::error::PolicyError;
use crate::job_proto::{check_job_spec, job_spec_from_proto, job_to_proto};
use crate::jobs::Jobs;
use crate::recommend::{RecommendRequest, check_load, recommend};
use crate::tuning::{Retention, Sessions, TuningSpec, TuningState};

/// How long `CancelTraining` waits for the job to stop before it answers.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The policy service.
pub struct PolicyService {
    engine: Arc<Engine>,
    sessions: Arc<Sessions>,
    jobs: Arc<Jobs>,
    /// Permits for twin-path recommendations running at once.
    twin_recommends: Arc<Semaphore>,
    max_twin_recommends: usize,
    load_model: LoadModel,
}

/// How much of each kind of heavy work the service takes on, and whom it may tune against.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// The actuators tuning sessions may use.
    pub actuators: Actuators,
    /// How long ended tuning sessions stay readable.
    pub retention: Retention,
    /// Training jobs running at once.
    pub max_training_jobs: usize,
    /// Twin-path `RecommendConfig` calls running at once.
    pub max_twin_recommends: usize,
    /// How tuning sessions read the cluster's load, unless a session declares its own.
    pub load_model: LoadModel,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            actuators: Actuators::default(),
            retention: Retention::default(),
            max_training_jobs: 1,
            max_twin_recommends: 2,
            load_model: LoadModel::default(),
        }
    }
}

impl PolicyService {
    /// A service over `engine`; restarts interrupted training jobs that may still run.
    pub fn new(engine: Arc<Engine>, settings: ServiceSettings) -> Self {
        let jobs = Arc::new(Jobs::new(&engine.models_dir, settings.max_training_jobs));
        let resumed = jobs.resume_interrupted(engine.clone(), check_job_spec);
        if resumed > 0 {
            tracing::info!(resumed, "interrupted training jobs resumed");
        }
        let max_twin_recommends = settings.max_twin_recommends.max(1);
        Self {
            engine,
            sessions: Arc::new(Sessions::new(settings.actuators, settings.retention)),
            jobs,
            twin_recommends: Arc::new(Semaphore::new(max_twin_recommends)),
            max_twin_recommends,
            load_model: settings.load_model,
        }
    }
}

/// What a shutdown stops of a service's long work: its tuning sessions and training jobs.
#[derive(Clone)]
pub struct LongWork {
    sessions: Arc<Sessions>,
    jobs: Arc<Jobs>,
}

impl LongWork {
    /// Stops every tuning session (nothing more is applied) and interrupts every training job
    /// (it checkpoints and resumes at the next start): the process can then exit within its
    /// grace period, whatever it was doing.
    pub fn stop(&self) {
        self.sessions.stop_all();
        self.jobs.interrupt_all();
    }
}

impl PolicyService {
    /// The handle a shutdown stops the service's long work with.
    pub fn long_work(&self) -> LongWork {
        LongWork {
            sessions: self.sessions.clone(),
            jobs: self.jobs.clone(),
        }
    }
}

/// Describes the service's own metrics (the RPC layer describes the RPC ones) and starts the
/// event counters of every served workflow at zero, so dashboards see a series (and rates of
/// zero) before the first event.
pub fn describe_metrics(workflows: &[String]) {
    for workflow in workflows {
        for counter in [
            "faasconf_policy_qos_violations_total",
            "faasconf_policy_rollbacks_total",
            "faasconf_policy_ses_replacements_total",
            "faasconf_policy_incomplete_windows_total",
            "faasconf_policy_fine_tunes_total",
        ] {
            metrics::counter!(counter, "workflow" => workflow.clone()).absolute(0);
        }
    }
    metrics::describe_histogram!(
        "faasconf_policy_recommendation_seconds",
        metrics::Unit::Seconds,
        "RecommendConfig latency inside the service, by path (window, twin)."
    );
    metrics::describe_counter!(
        "faasconf_policy_windows_total",
        "Steady telemetry windows observed by tuning sessions, by QoS outcome."
    );
    metrics::describe_counter!(
        "faasconf_policy_qos_violations_total",
        "Tuning-session windows that missed QoS."
    );
    metrics::describe_counter!(
        "faasconf_policy_rollbacks_total",
        "Tuning-session reverts to the best configuration so far."
    );
    metrics::describe_counter!(
        "faasconf_policy_ses_replacements_total",
        "Proposals safe exploration replaced."
    );
    metrics::describe_counter!(
        "faasconf_policy_incomplete_windows_total",
        "Tuning-session windows skipped, neither judged nor learnt from: the telemetry source had a series missing."
    );
    metrics::describe_counter!(
        "faasconf_policy_fine_tunes_total",
        "Tuning sessions: fine-tunings of the agents on a refitted twin that moved far from the one they learnt on."
    );
    metrics::describe_gauge!(
        "faasconf_policy_twin_error",
        "Tuning sessions: the twin's relative error on the newest window's end-to-end latency, before refitting."
    );
    metrics::describe_gauge!(
        "faasconf_policy_cost",
        "Cost of the configuration in the latest observed window."
    );
    metrics::describe_gauge!(
        "faasconf_policy_reward",
        "Reward of the latest observed window."
    );
    metrics::describe_gauge!(
        "faasconf_policy_critic_loss",
        "Critic TD loss of the latest online update."
    );
    metrics::describe_gauge!(
        "faasconf_policy_actor_loss",
        "Actor loss of the latest online update."
    );
}

/// The QoS of a request: where a field is absent, the workflow's own target
/// ([`faasconf_core::Workflow::qos`]: its topology file's, else the reference's).
pub fn qos_from_proto(qos: Option<&v1::Qos>, default: Qos) -> Qos {
    match qos {
        None => default,
        Some(q) => Qos {
            mean_latency_seconds: if q.mean_latency_ms == 0.0 {
                default.mean_latency_seconds
            } else {
                q.mean_latency_ms / 1000.0
            },
            min_success_ratio: if q.min_success_ratio == 0.0 {
                default.min_success_ratio
            } else {
                q.min_success_ratio
            },
        },
    }
}

fn load_from_proto(load: Option<&v1::Load>) -> Result<Workload, PolicyError> {
    let load = match load.and_then(|l| l.kind.as_ref()) {
        Some(v1::load::Kind::ConcurrentUsers(u)) => Workload::ClosedLoop { users: *u },
        Some(v1::load::Kind::RequestsPerSecond(r)) => Workload::Poisson {
            requests_per_second: *r,
        },
        None => {
            return Err(PolicyError::field(
                "load",
                "missing: give concurrent_users or requests_per_second",
            ));
        }
    };
    check_load(&load).map(|()| load)
}

fn tuning_to_proto(engine: &Engine, s: &TuningState) -> v1::TuningStatus {
    let workflow = engine.workflow(&s.spec.workflow).ok();
    let config =
        |c: &faasconf_core::WorkflowConfig| workflow.as_deref().map(|w| config_to_proto(w, c));
    v1::TuningStatus {
        session_id: s.id.clone(),
        workflow: s.spec.workflow.clone(),
        state: v1::TuningSessionState::from(s.state).into(),
        iterations: s.history.len() as u32,
        best_config: s.best.as_ref().and_then(|b| config(&b.config)),
        best_cost: s.best.as_ref().map_or(0.0, |b| b.cost),
        qos_violations: s.violations(),
        rollbacks: s.rollbacks,
        twin_error: s.twin_error,
        twin_wrong: s.twin_wrong,
        twin_fit: s
            .twin_fit
            .iter()
            .map(|(function, cpu, io)| v1::TwinFit {
                function: function.clone(),
                cpu_work_factor: *cpu,
                io_time_factor: *io,
            })
            .collect(),
        incomplete_windows: s.incomplete_windows,
        fine_tunes: s.fine_tunes,
        qos: Some(v1::Qos {
            mean_latency_ms: s.spec.qos.mean_latency_seconds * 1000.0,
            min_success_ratio: s.spec.qos.min_success_ratio,
        }),
        message: s.message.clone(),
        history: s
            .history
            .iter()
            .map(|i| v1::TuningIteration {
                iteration: i.iteration,
                config: config(&i.config),
                cost: i.cost,
                e2e_mean_seconds: i.e2e_mean_s,
                success_ratio: i.success_ratio,
                qos_met: i.qos_met,
                ses_replaced: i.ses_replaced,
                rollback: i.rollback,
                reward: i.reward,
                twin_error: i.twin_error,
            })
            .collect(),
        model_version: s.model_version.clone(),
    }
}

#[tonic::async_trait]
impl Policy for PolicyService {
    async fn recommend_config(
        &self,
        request: Request<v1::RecommendConfigRequest>,
    ) -> Result<Response<v1::RecommendConfigResponse>, Status> {
        let started = Instant::now();
        let r = request.into_inner();
        let workflow = self.engine.workflow(&r.workflow)?.clone();
        let load = load_from_proto(r.load.as_ref())?;
        let qos = qos_from_proto(r.qos.as_ref(), workflow.qos());
        let current = r
            .current
            .as_ref()
            .map(|w| window_from_proto(&workflow, w, "current"))
            .transpose()
            .map_err(PolicyError::Invalid)?;
        let twin_path = current.is_none();
        let request = RecommendRequest {
            workflow: r.workflow,
            load,
            qos,
            current,
            model_version: r.model_version,
        };
        let engine = self.engine.clone();
        let answer = if twin_path {
            // The twin path simulates: off the async workers, a bounded number at once, and
            // stopped when this call's future is dropped (the caller hung up, its deadline or
            // the server's request timeout passed). The permit is held until the work has
            // wound down, so abandoned work still counts against the limit.
            let permit = self.twin_recommends.clone().try_acquire_owned().map_err(|_| {
                PolicyError::Exhausted(format!(
                    "{} twin-path recommendations are running, the most this policy runs at once (--max-twin-recommends); retry later, or send `current` for the fast path",
                    self.max_twin_recommends
                ))
            })?;
            let cancel = Cancel::new();
            let guard = cancel.on_drop();
            let answer = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                recommend(&engine, &request, &cancel)
            })
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
            guard.disarm();
            answer
        } else {
            recommend(&engine, &request, &Cancel::new())
        }?;
        let path = if twin_path { "twin" } else { "window" };
        metrics::histogram!("faasconf_policy_recommendation_seconds", "path" => path)
            .record(started.elapsed().as_secs_f64());
        if answer.ses_replaced {
            metrics::counter!("faasconf_policy_ses_replacements_total", "workflow" => workflow.name.clone()).increment(1);
        }
        Ok(Response::new(v1::RecommendConfigResponse {
            config: Some(config_to_proto(&workflow, &answer.config)),
            predicted_cost: answer.cost,
            predicted_mean_latency_ms: answer
                .predicted
                .map_or(0.0, |v| v.e2e_mean_seconds * 1000.0),
            predicted_success_ratio: answer.predicted.map_or(0.0, |v| v.success_ratio),
            ses_replaced: answer.ses_replaced,
            band: answer.band.map(|b| v1::PriceBand {
                lower: b.lower,
                upper: b.upper,
                source_load: Some(v1::Load {
                    kind: Some(v1::load::Kind::ConcurrentUsers(b.users)),
                }),
            }),
            model_version: answer.model_version.to_string(),
            attention: answer
                .attention
                .into_iter()
                .map(|row| v1::AttentionWeights {
                    function: row.function,
                    neighbours: row.neighbours.iter().map(|(n, _)| n.clone()).collect(),
                    weights: row.neighbours.iter().map(|(_, w)| *w).collect(),
                })
                .collect(),
            twin_validated: answer.predicted.is_some(),
        }))
    }

    async fn start_tuning(
        &self,
        request: Request<v1::StartTuningRequest>,
    ) -> Result<Response<v1::TuningStatus>, Status> {
        let r = request.into_inner();
        let qos = qos_from_proto(r.qos.as_ref(), self.engine.workflow(&r.workflow)?.qos());
        let load_model = load_model_from_proto("load_model", r.load_model)
            .map_err(|e| PolicyError::Invalid(vec![e]))?
            .unwrap_or(self.load_model);
        let spec = TuningSpec {
            workflow: r.workflow,
            actuator: r.actuator_endpoint,
            qos,
            max_iterations: if r.max_iterations == 0 {
                15
            } else {
                r.max_iterations
            },
            rollback_after: if r.rollback_after_windows == 0 {
                3
            } else {
                r.rollback_after_windows
            },
            screen: !r.no_twin_screening,
            model_version: r.model_version,
            converge_after: r.converge_after,
            seed: r.seed,
            load_model,
            define_start: r.define_start,
            forecast: !r.reactive,
        };
        let state = self.sessions.start(self.engine.clone(), spec)?;
        Ok(Response::new(tuning_to_proto(&self.engine, &state)))
    }

    async fn stop_tuning(
        &self,
        request: Request<v1::StopTuningRequest>,
    ) -> Result<Response<v1::TuningStatus>, Status> {
        let state = self.sessions.stop(&request.into_inner().session_id)?;
        Ok(Response::new(tuning_to_proto(&self.engine, &state)))
    }

    async fn get_tuning_status(
        &self,
        request: Request<v1::GetTuningStatusRequest>,
    ) -> Result<Response<v1::TuningStatus>, Status> {
        let state = self.sessions.status(&request.into_inner().session_id)?;
        Ok(Response::new(tuning_to_proto(&self.engine, &state)))
    }

    async fn start_training(
        &self,
        request: Request<v1::StartTrainingRequest>,
    ) -> Result<Response<v1::TrainingStatus>, Status> {
        let spec = job_spec_from_proto(&self.engine, request.into_inner())?;
        let record = self.jobs.start(self.engine.clone(), spec)?;
        Ok(Response::new(job_to_proto(&record)))
    }

    async fn get_training_status(
        &self,
        request: Request<v1::GetTrainingStatusRequest>,
    ) -> Result<Response<v1::TrainingStatus>, Status> {
        Ok(Response::new(job_to_proto(
            &self.jobs.status(&request.into_inner().job_id)?,
        )))
    }

    async fn cancel_training(
        &self,
        request: Request<v1::CancelTrainingRequest>,
    ) -> Result<Response<v1::TrainingStatus>, Status> {
        let id = request.into_inner().job_id;
        let mut record = self.jobs.cancel(&id)?;
        // A job stops within a training update or a twin episode: wait a little for it to say
        // so, then answer where it stands.
        let deadline = Instant::now() + CANCEL_WAIT;
        while record.state.is_active() && Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            record = self.jobs.status(&id)?;
        }
        Ok(Response::new(job_to_proto(&record)))
    }

    async fn list_models(
        &self,
        request: Request<v1::ListModelsRequest>,
    ) -> Result<Response<v1::ListModelsResponse>, Status> {
        let r = request.into_inner();
        let filter = if r.workflow.is_empty() {
            None
        } else {
            Some(self.engine.workflow(&r.workflow)?.name.clone())
        };
        let models = self
            .engine
            .versions(filter.as_deref())?
            .iter()
            .map(|m| model_to_proto(&self.engine, m))
            .collect();
        Ok(Response::new(v1::ListModelsResponse { models }))
    }

    async fn promote_model(
        &self,
        request: Request<v1::PromoteModelRequest>,
    ) -> Result<Response<v1::ModelInfo>, Status> {
        let r = request.into_inner();
        let workflow = self.engine.workflow(&r.workflow)?.clone();
        let version: i64 = r.version.parse().map_err(|_| {
            PolicyError::field(
                "version",
                format!("{:?} is not a version number", r.version),
            )
        })?;
        let found = self
            .engine
            .versions(Some(&workflow.name))?
            .into_iter()
            .find(|m| m.version == version);
        if found.is_none() {
            return Err(PolicyError::NotFound(format!(
                "model version {version} of {:?} does not exist",
                workflow.name
            ))
            .into());
        }
        // Loads it first: a version that cannot be loaded is not promoted.
        self.engine.model(&workflow, &r.version)?;
        self.engine
            .store()
            .promote(version)
            .map_err(PolicyError::internal)?;
        let promoted = self
            .engine
            .versions(Some(&workflow.name))?
            .into_iter()
            .find(|m| m.version == version)
            .ok_or_else(|| PolicyError::Internal("promoted version vanished".into()))?;
        Ok(Response::new(model_to_proto(&self.engine, &promoted)))
    }
}

fn model_to_proto(engine: &Engine, m: &faasconf_store::ModelVersion) -> v1::ModelInfo {
    let get = |k: &str| m.metadata.get(k);
    let twin_fingerprint = get("twin_fingerprint")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    let on_current_twin = engine
        .workflow(&m.workflow)
        .is_ok_and(|w| w.fingerprint() == twin_fingerprint);
    v1::ModelInfo {
        version: m.version.to_string(),
        workflow: m.workflow.clone(),
        algorithm: get("algorithm")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned(),
        promoted: m.promoted,
        created_unix_seconds: get("created_unix_seconds")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or_default(),
        samples: get("samples")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or_default(),
        twin_fingerprint,
        on_current_twin,
    }
}
