//! `faasconf.v1.Policy` over the engine: proto messages are converted and validated here, and
//! policy errors become gRPC statuses.

use std::sync::Arc;
use std::time::Instant;

use faasconf_agents::Algorithm;
use faasconf_core::Qos;
use faasconf_proto::convert::config_to_proto;
use faasconf_proto::v1::{self, policy_server::Policy};
use faasconf_proto::window::window_from_proto;
use faasconf_training::{JobSpec, TrainOptions};
use tonic::{Request, Response, Status};

use crate::engine::Engine;
use crate::error::PolicyError;
use crate::jobs::{JobRecord, Jobs};
use crate::recommend::{RecommendRequest, recommend};
use crate::tuning::{Sessions, TuningSpec, TuningState};

/// The policy service.
pub struct PolicyService {
    engine: Arc<Engine>,
    sessions: Arc<Sessions>,
    jobs: Arc<Jobs>,
    default_actuator: Option<String>,
}

impl PolicyService {
    /// A service over `engine`; restarts interrupted training jobs.
    pub fn new(engine: Arc<Engine>) -> Self {
        let jobs = Arc::new(Jobs::new(&engine.models_dir));
        let resumed = jobs.resume_interrupted(engine.clone());
        if resumed > 0 {
            tracing::info!(resumed, "interrupted training jobs resumed");
        }
        Self {
            engine,
            sessions: Arc::new(Sessions::default()),
            jobs,
            default_actuator: None,
        }
    }

    /// How tuning sessions reach actuators: TLS and token (set before serving).
    pub fn with_actuator_security(
        mut self,
        security: faasconf_server::security::ClientSecurity,
    ) -> Self {
        self.sessions = Arc::new(Sessions::with_client(security));
        self
    }

    /// The actuator a `StartTuning` without an endpoint tunes against.
    pub fn with_default_actuator(mut self, actuator: Option<String>) -> Self {
        self.default_actuator = actuator;
        self
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
        "Tuning-session reverts to the last QoS-meeting configuration."
    );
    metrics::describe_counter!(
        "faasconf_policy_ses_replacements_total",
        "Proposals safe exploration replaced."
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

/// The QoS of a request: the reference target where absent.
pub fn qos_from_proto(qos: Option<&v1::Qos>) -> Qos {
    let default = Qos::default();
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

fn users_from_proto(load: Option<&v1::Load>) -> Result<u32, PolicyError> {
    match load.and_then(|l| l.kind.as_ref()) {
        Some(v1::load::Kind::ConcurrentUsers(u)) if *u > 0 => Ok(*u),
        Some(v1::load::Kind::ConcurrentUsers(_)) => Err(PolicyError::field(
            "load.concurrent_users",
            "must be at least 1",
        )),
        Some(v1::load::Kind::RequestsPerSecond(_)) => Err(PolicyError::field(
            "load.requests_per_second",
            "the policy is trained on closed-loop users: give load.concurrent_users",
        )),
        None => Err(PolicyError::field("load", "missing: give concurrent_users")),
    }
}

fn tuning_to_proto(engine: &Engine, s: &TuningState) -> v1::TuningStatus {
    let workflow = engine.workflow(&s.spec.workflow).ok();
    let config = |c: &faasconf_core::WorkflowConfig| workflow.map(|w| config_to_proto(w, c));
    v1::TuningStatus {
        session_id: s.id.clone(),
        workflow: s.spec.workflow.clone(),
        state: s.state.to_owned(),
        iterations: s.history.len() as u32,
        best_config: s.best.as_ref().and_then(|(c, _)| config(c)),
        best_cost: s.best.as_ref().map_or(0.0, |(_, c)| *c),
        qos_violations: s.violations(),
        rollbacks: s.rollbacks,
        message: s.message.clone(),
        history: s
            .history
            .iter()
            .map(|i| v1::TuningIteration {
                iteration: i.iteration,
                config: config(&i.config),
                cost: i.cost,
                e2e_mean_seconds: i.e2e_mean_seconds,
                success_ratio: i.success_ratio,
                qos_met: i.qos_met,
                ses_replaced: i.ses_replaced,
                rollback: i.rollback,
                reward: i.reward,
            })
            .collect(),
        model_version: s.model_version.clone(),
    }
}

fn job_to_proto(r: &JobRecord) -> v1::TrainingStatus {
    v1::TrainingStatus {
        job_id: r.id.clone(),
        state: r.state.clone(),
        progress: r.progress,
        model_version: r.model_version.clone(),
        message: r.message.clone(),
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
        let users = users_from_proto(r.load.as_ref())?;
        let qos = qos_from_proto(r.qos.as_ref());
        let current = r
            .current
            .as_ref()
            .map(|w| window_from_proto(&workflow, w, "current"))
            .transpose()
            .map_err(PolicyError::Invalid)?;
        let twin_path = current.is_none();
        let request = RecommendRequest {
            workflow: r.workflow,
            users,
            qos,
            current,
            model_version: r.model_version,
        };
        let engine = self.engine.clone();
        // The twin path simulates; keep it off the async workers.
        let answer = if twin_path {
            tokio::task::spawn_blocking(move || recommend(&engine, &request))
                .await
                .map_err(|e| Status::internal(e.to_string()))?
        } else {
            recommend(&engine, &request)
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
        let spec = TuningSpec {
            workflow: r.workflow,
            actuator: if r.actuator_endpoint.is_empty() {
                self.default_actuator.clone().unwrap_or_default()
            } else {
                r.actuator_endpoint
            },
            qos: qos_from_proto(r.qos.as_ref()),
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
        let r = request.into_inner();
        self.engine.workflow(&r.workflow)?;
        let algorithm: Algorithm = if r.algorithm.is_empty() {
            Algorithm::AttMf
        } else {
            r.algorithm
                .parse()
                .map_err(|e: String| PolicyError::field("algorithm", e))?
        };
        let samples = if r.samples == 0 {
            2000
        } else {
            r.samples as usize
        };
        let defaults = TrainOptions::default();
        let updates = if r.epochs == 0 {
            defaults.updates
        } else {
            (u64::from(r.epochs) * samples as u64)
                .div_ceil(defaults.batch_size as u64)
                .max(1)
        };
        let spec = JobSpec {
            workflow: r.workflow,
            samples,
            loads: vec![10, 20, 30],
            train: TrainOptions {
                algorithm,
                updates,
                seed: r.seed,
                ..defaults
            },
            promote: false,
        };
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

    async fn list_models(
        &self,
        request: Request<v1::ListModelsRequest>,
    ) -> Result<Response<v1::ListModelsResponse>, Status> {
        let r = request.into_inner();
        let filter = if r.workflow.is_empty() {
            None
        } else {
            Some(self.engine.workflow(&r.workflow)?.name.as_str())
        };
        let models = self
            .engine
            .versions(filter)?
            .iter()
            .map(model_to_proto)
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
        Ok(Response::new(model_to_proto(&promoted)))
    }
}

fn model_to_proto(m: &faasconf_store::ModelVersion) -> v1::ModelInfo {
    let get = |k: &str| m.metadata.get(k);
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
    }
}
