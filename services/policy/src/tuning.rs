//! Tuning sessions: a closed loop against an actuator. Subscribe to its telemetry; on each
//! steady window of the configuration in force, record the observation, learn online, and
//! decide the next configuration (policy -> SES -> twin screening) and apply it; stop after the
//! budget of iterations, when converged, or when asked.
//!
//! The guard: when QoS is missed for `rollback_after` consecutive windows after a change, the
//! session reverts to the last QoS-meeting configuration and records why. Windows marked
//! `transient` (an apply finished inside them) and windows of an older configuration are never
//! learnt from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faasconf_core::optimiser::Proposal;
use faasconf_core::{FieldError, Qos, Workflow, WorkflowConfig};
use faasconf_proto::convert::{config_from_proto, config_to_proto};
use faasconf_proto::v1::{self, actuator_client::ActuatorClient};
use faasconf_proto::window::window_from_proto;
use faasconf_store::{Observation, Source};
use faasconf_training::Model;
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tracing::Instrument;

use faasconf_core::cancel::Cancel;
use faasconf_core::limits::{clip_to, quoted};

use crate::actuators::Actuators;
use crate::engine::{Engine, lock};
use crate::error::PolicyError;
use crate::tuner::{Tuner, TunerOptions};

/// What a session was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct TuningSpec {
    /// The workflow.
    pub workflow: String,
    /// The actuator, e.g. `http://127.0.0.1:50051`.
    pub actuator: String,
    /// The QoS target.
    pub qos: Qos,
    /// Iterations (configurations applied and observed).
    pub max_iterations: u32,
    /// Consecutive QoS-missing windows after a change before reverting.
    pub rollback_after: u32,
    /// Screen proposals on the twin.
    pub screen: bool,
    /// Model version (empty: promoted).
    pub model_version: String,
    /// Convergence patience (0: off).
    pub converge_after: u32,
    /// Seed.
    pub seed: u64,
}

impl TuningSpec {
    /// Checks every count and the QoS against their limits (before anything starts).
    pub fn validate(&self) -> Result<(), PolicyError> {
        use faasconf_core::limits::{MAX_ROLLBACK_WINDOWS, MAX_TUNING_ITERATIONS};
        let mut errors = Vec::new();
        if !(1..=MAX_TUNING_ITERATIONS).contains(&self.max_iterations) {
            errors.push(FieldError::new(
                "max_iterations",
                format!(
                    "{} is not in 1..={MAX_TUNING_ITERATIONS}",
                    self.max_iterations
                ),
            ));
        }
        if !(1..=MAX_ROLLBACK_WINDOWS).contains(&self.rollback_after) {
            errors.push(FieldError::new(
                "rollback_after_windows",
                format!(
                    "{} is not in 1..={MAX_ROLLBACK_WINDOWS}",
                    self.rollback_after
                ),
            ));
        }
        if self.converge_after > MAX_TUNING_ITERATIONS {
            errors.push(FieldError::new(
                "converge_after",
                format!("{} is over {MAX_TUNING_ITERATIONS}", self.converge_after),
            ));
        }
        if let Err(e) = self.qos.validate("qos") {
            errors.extend(e.field_errors().iter().cloned());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(PolicyError::Invalid(errors))
        }
    }
}

/// One iteration.
#[derive(Debug, Clone, PartialEq)]
pub struct Iteration {
    /// 1-based.
    pub iteration: u32,
    /// Configuration applied.
    pub config: WorkflowConfig,
    /// Its cost.
    pub cost: f64,
    /// Mean end-to-end latency of its first steady window.
    pub e2e_mean_seconds: f64,
    /// Success ratio of that window.
    pub success_ratio: f64,
    /// QoS met.
    pub qos_met: bool,
    /// Safe exploration replaced the policy's proposal.
    pub ses_replaced: bool,
    /// A rollback.
    pub rollback: bool,
    /// Reward.
    pub reward: f64,
}

/// Where a session stands.
#[derive(Debug, Clone, PartialEq)]
pub struct TuningState {
    /// Session id.
    pub id: String,
    /// The spec.
    pub spec: TuningSpec,
    /// pending, running, converged, budget_spent, stopped, failed.
    pub state: &'static str,
    /// Iterations done.
    pub history: Vec<Iteration>,
    /// Cheapest QoS-meeting configuration seen.
    pub best: Option<(WorkflowConfig, f64)>,
    /// Rollbacks done.
    pub rollbacks: u32,
    /// Last news (why it stopped, why it rolled back).
    pub message: String,
    /// The model version used.
    pub model_version: String,
    /// When the session ended (it is dropped [`Retention::keep`] later).
    pub ended: Option<Instant>,
}

impl TuningState {
    /// Iterations that missed QoS.
    pub fn violations(&self) -> u32 {
        self.history.iter().filter(|i| !i.qos_met).count() as u32
    }
}

struct Session {
    state: Arc<Mutex<TuningState>>,
    stop: watch::Sender<bool>,
    /// Stops a decision in progress (raised with `stop`).
    cancel: Cancel,
}

/// How long ended sessions stay readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// An ended session is dropped this long after it ended.
    pub keep: Duration,
    /// At most this many ended sessions are kept (the oldest go first).
    pub max_ended: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            keep: Duration::from_secs(24 * 3600),
            max_ended: 1000,
        }
    }
}

/// The sessions of this service.
#[derive(Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    next: std::sync::atomic::AtomicU64,
    actuators: Actuators,
    retention: Retention,
}

impl Sessions {
    /// Sessions that tune against `actuators` only, keeping ended ones per `retention`.
    pub fn new(actuators: Actuators, retention: Retention) -> Self {
        Self {
            actuators,
            retention,
            ..Self::default()
        }
    }

    /// Drops the sessions that ended more than `keep` ago, and the oldest ended ones past
    /// `max_ended`.
    fn prune(&self, sessions: &mut HashMap<String, Session>) {
        let mut ended: Vec<(Instant, String)> = sessions
            .iter()
            .filter_map(|(id, s)| lock(&s.state).ended.map(|t| (t, id.clone())))
            .collect();
        ended.sort();
        let excess = ended.len().saturating_sub(self.retention.max_ended);
        for (k, (at, id)) in ended.iter().enumerate() {
            if k < excess || at.elapsed() > self.retention.keep {
                sessions.remove(id);
            }
        }
    }

    /// Starts a session; at most one runs per workflow.
    pub fn start(
        &self,
        engine: Arc<Engine>,
        mut spec: TuningSpec,
    ) -> Result<TuningState, PolicyError> {
        let workflow = engine.workflow(&spec.workflow)?.clone();
        spec.actuator = self.actuators.resolve(&spec.actuator)?;
        spec.validate()?;
        let (version, _) = engine.model(&workflow, &spec.model_version)?;
        let mut sessions = lock(&self.sessions);
        self.prune(&mut sessions);
        if let Some((id, _)) = sessions.iter().find(|(_, s)| {
            let s = lock(&s.state);
            s.spec.workflow == spec.workflow && matches!(s.state, "pending" | "running")
        }) {
            return Err(PolicyError::Precondition(format!(
                "session {id} is already tuning {:?}; stop it first",
                spec.workflow
            )));
        }
        let id = format!(
            "tune-{}-{}",
            spec.workflow,
            self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
        );
        let state = TuningState {
            id: id.clone(),
            spec: spec.clone(),
            state: "pending",
            history: Vec::new(),
            best: None,
            rollbacks: 0,
            message: String::new(),
            model_version: version.version.to_string(),
            ended: None,
        };
        let shared = Arc::new(Mutex::new(state.clone()));
        let (stop, stopped) = watch::channel(false);
        let task_state = shared.clone();
        let client = self.actuators.client().clone();
        let cancel = Cancel::new();
        let task_cancel = cancel.clone();
        let span = tracing::info_span!("tuning_session", session = %id, workflow = %spec.workflow);
        tokio::spawn(
            async move {
                let result = run(
                    engine,
                    &client,
                    workflow,
                    version.path.into(),
                    task_state.clone(),
                    stopped,
                    task_cancel,
                )
                .await;
                let mut s = lock(&task_state);
                if let Err(e) = result {
                    tracing::warn!(error = %e, "tuning session failed");
                    s.state = "failed";
                    s.message = e.to_string();
                }
                s.ended = Some(Instant::now());
            }
            .instrument(span),
        );
        sessions.insert(
            id,
            Session {
                state: shared,
                stop,
                cancel,
            },
        );
        Ok(state)
    }

    /// The state of a session.
    pub fn status(&self, id: &str) -> Result<TuningState, PolicyError> {
        let mut sessions = lock(&self.sessions);
        self.prune(&mut sessions);
        let s = sessions.get(id).ok_or_else(|| {
            PolicyError::NotFound(format!("tuning session {} does not exist", quoted(id)))
        })?;
        Ok(lock(&s.state).clone())
    }

    /// Asks a session to stop (it finishes the step in hand).
    pub fn stop(&self, id: &str) -> Result<TuningState, PolicyError> {
        let sessions = lock(&self.sessions);
        let s = sessions.get(id).ok_or_else(|| {
            PolicyError::NotFound(format!("tuning session {} does not exist", quoted(id)))
        })?;
        let _ = s.stop.send(true);
        s.cancel.cancel();
        let mut state = lock(&s.state);
        if matches!(state.state, "pending" | "running") {
            state.state = "stopped";
            state.message = "stopped on request".into();
        }
        Ok(state.clone())
    }
}

/// The error of an actuator's answer, naming the actuator (and every cause of a transport
/// failure, not only "transport error").
fn from_status(actuator: &str, s: tonic::Status) -> PolicyError {
    let mut message = clip_to(s.message(), 480).into_owned();
    if let Some(source) = std::error::Error::source(&s) {
        message = format!("{message}: {}", faasconf_server::security::chain(source));
    }
    match s.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
            PolicyError::Unavailable(format!("{actuator}: {message}"))
        }
        code => PolicyError::Precondition(format!(
            "the actuator at {actuator} answered {code:?}: {message}"
        )),
    }
}

fn traced<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    faasconf_server::traces::inject_context(request.metadata_mut());
    request
}

async fn run(
    engine: Arc<Engine>,
    client: &faasconf_server::security::ClientSecurity,
    workflow: Workflow,
    model_dir: std::path::PathBuf,
    state: Arc<Mutex<TuningState>>,
    mut stopped: watch::Receiver<bool>,
    cancel: Cancel,
) -> Result<(), PolicyError> {
    let spec = lock(&state).spec.clone();
    // No per-call timeout: the telemetry stream lives as long as the session.
    let channel = client
        .connect(&spec.actuator, std::time::Duration::from_secs(10), None)
        .await
        .map_err(|e| PolicyError::Unavailable(e.to_string()))?;
    let mut client = ActuatorClient::new(channel);
    let remote = client
        .get_workflow(traced(v1::GetWorkflowRequest {
            workflow: workflow.name.clone(),
        }))
        .await
        .map_err(|e| from_status(&spec.actuator, e))?
        .into_inner();
    let remote_functions = remote.workflow.map(|w| w.functions).unwrap_or_default();
    if remote_functions != workflow.function_names() {
        return Err(PolicyError::Precondition(format!(
            "the actuator's {:?} has functions {remote_functions:?}; this policy knows {:?}",
            workflow.name,
            workflow.function_names()
        )));
    }
    let mut version = remote.config_version;
    // The actuator's configuration must fit this policy's workflow (bounds included).
    config_from_proto(&workflow, remote.current_config.as_ref(), "current_config")
        .map_err(PolicyError::Invalid)?;
    // A private copy: online learning must not change the stored version others are served.
    let model = Model::load(&model_dir, &workflow, faasconf_agents::default_device())
        .map_err(PolicyError::internal)?;
    let explorer = engine.explorer(&workflow)?;
    let mut tuner = {
        let stored = engine
            .store()
            .observations(&workflow)
            .map_err(PolicyError::internal)?;
        let refs: Vec<&Observation> = stored.iter().map(|s| &s.observation).collect();
        Tuner::new(
            workflow.clone(),
            model,
            explorer,
            &refs,
            TunerOptions {
                qos: spec.qos,
                rollback_after: spec.rollback_after,
                screen: spec.screen,
                safe_exploration: true,
                seed: spec.seed,
                cancel,
            },
        )?
    };
    // Lockstep: a virtual-clock twin waits for each decision, so a session is reproducible from
    // its seed whatever the planning takes (a cluster does not wait).
    let mut stream = client
        .stream_telemetry(traced(v1::StreamTelemetryRequest {
            workflow: workflow.name.clone(),
            lockstep: true,
        }))
        .await
        .map_err(|e| from_status(&spec.actuator, e))?
        .into_inner();
    lock(&state).state = "running";
    let mut pending: Option<(bool, bool)> = None; // (ses_replaced, rollback) of the applied change
    let mut since_best = 0u32;
    let session = lock(&state).id.clone();
    let mut seq = 0u64;
    loop {
        let message = tokio::select! {
            m = stream.next() => m,
            _ = stopped.wait_for(|s| *s) => return Ok(()),
        };
        let Some(message) = message else {
            return Err(PolicyError::Unavailable(format!(
                "{}: the actuator ended the telemetry stream",
                spec.actuator
            )));
        };
        let message = message.map_err(|e| from_status(&spec.actuator, e))?;
        let window = window_from_proto(&workflow, &message, "telemetry").map_err(|e| {
            PolicyError::Internal(format!(
                "the actuator sent a bad window: {}",
                PolicyError::Invalid(e)
            ))
        })?;
        if window.config_version > version {
            return Err(PolicyError::Precondition(format!(
                "the configuration of {:?} was changed outside this session (version {} after this session's {version})",
                workflow.name, window.config_version
            )));
        }
        if window.transient || window.config_version != version {
            continue;
        }
        let step = tracing::info_span!(
            "tuning_step",
            iteration = lock(&state).history.len() + 1,
            users = window.users
        );
        let met = spec.qos.met(&window.workflow);
        let reward = spec.qos.reward(&window.workflow);
        let observation = Observation {
            workflow: workflow.name.clone(),
            source: Source::Online,
            session: session.clone(),
            seq,
            users: window.users,
            actions: workflow.actions_of(&window.config),
            window: window.clone(),
            reward,
            qos_met: met,
        };
        seq += 1;
        engine
            .store()
            .record(std::slice::from_ref(&observation))
            .map_err(PolicyError::internal)?;
        metrics::counter!("faasconf_policy_windows_total", "workflow" => workflow.name.clone(), "qos" => if met { "met" } else { "missed" }).increment(1);
        metrics::gauge!("faasconf_policy_cost", "workflow" => workflow.name.clone())
            .set(window.workflow.cost);
        metrics::gauge!("faasconf_policy_reward", "workflow" => workflow.name.clone()).set(reward);
        if !met {
            metrics::counter!("faasconf_policy_qos_violations_total", "workflow" => workflow.name.clone()).increment(1);
        }
        tokio::task::block_in_place(|| tuner.observe(&window))?;
        if let Some((ses_replaced, rollback)) = pending.take() {
            let mut s = lock(&state);
            let iteration = s.history.len() as u32 + 1;
            s.history.push(Iteration {
                iteration,
                config: window.config.clone(),
                cost: window.config.cost(),
                e2e_mean_seconds: window.workflow.mean_latency_seconds,
                success_ratio: window.workflow.success_ratio,
                qos_met: met,
                ses_replaced,
                rollback,
                reward,
            });
            let improved = met
                && s.best
                    .as_ref()
                    .is_none_or(|(_, c)| window.config.cost() < *c);
            if improved {
                s.best = Some((window.config.clone(), window.config.cost()));
                since_best = 0;
            } else {
                since_best += 1;
            }
            // Converged before budget spent: when both hold on the last iteration, that the
            // best stopped improving is what the caller wants to know.
            if spec.converge_after > 0 && s.best.is_some() && since_best >= spec.converge_after {
                s.state = "converged";
                s.message = format!("the best cost has not improved for {since_best} iterations");
                return Ok(());
            }
            if iteration >= spec.max_iterations {
                s.state = "budget_spent";
                s.message = format!("{iteration} iterations done");
                return Ok(());
            }
        }
        if *stopped.borrow() {
            return Ok(());
        }
        let rollbacks = tuner.rollbacks();
        let next = match tokio::task::block_in_place(|| tuner.decide(&window)) {
            // Stopped while deciding: nothing is applied after a stop.
            Err(PolicyError::Cancelled) => return Ok(()),
            other => other?,
        };
        if *stopped.borrow() {
            return Ok(());
        }
        if tuner.rollbacks() > rollbacks {
            let mut s = lock(&state);
            s.rollbacks = tuner.rollbacks();
            s.message = tuner.news().to_owned();
        }
        let Proposal {
            config: next,
            ses_replaced,
            rollback,
        } = next;
        pending = Some((ses_replaced, rollback));
        // Applied even when unchanged: the decision is what a lockstep clock waits for (the
        // actuator changes nothing then). The apply carries this step's trace context.
        {
            let request = {
                let _entered = step.enter();
                traced(v1::ApplyConfigRequest {
                    workflow: workflow.name.clone(),
                    config: Some(config_to_proto(&workflow, &next)),
                    dry_run: false,
                    expected_version: version,
                })
            };
            let applied = client
                .apply_config(request)
                .instrument(step)
                .await
                .map_err(|e| from_status(&spec.actuator, e))?
                .into_inner();
            version = applied.config_version;
        }
    }
}
