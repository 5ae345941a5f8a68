//! Tuning sessions: a closed loop against an actuator. Subscribe to its telemetry; on each
//! steady window of the configuration in force, record the observation, learn online, and
//! decide the next configuration (policy -> SES -> twin screening) and apply it; stop after the
//! budget of iterations, when converged, or when asked.
//!
//! The guard: when QoS is missed for `rollback_after` consecutive windows after a change, the
//! session reverts to its best configuration so far and records why. Windows marked
//! `transient` (an apply finished inside them) and windows of an older configuration are never
//! learnt from.
//!
//! The loop itself is `faasconf_tuner::tuning_loop`, run on a blocking thread over the
//! actuator as its environment (`run`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faasconf_core::cancel::Cancel;
use faasconf_core::limits::quoted;
use faasconf_core::{FieldError, Qos};
use faasconf_proto::v1;
use faasconf_tuner::{Best, Iteration};
use tokio::sync::watch;
use tracing::Instrument;

use crate::actuators::Actuators;
use crate::engine::{Engine, lock};
use crate::error::PolicyError;

mod run;

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
    /// How the cluster's load is read from its windows and screened.
    pub load_model: faasconf_core::telemetry::LoadModel,
    /// The operator consents to starting from a defined configuration when knobs in force are
    /// unset or outside the bounds (`StartTuningRequest.define_start`).
    pub define_start: bool,
    /// Plan for the load forecast ahead (off: `StartTuningRequest.reactive`).
    pub forecast: bool,
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

/// Where a session stands (the proto's `TuningSessionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Accepted; connecting to the actuator.
    Pending,
    /// Observing windows and applying decisions.
    Running,
    /// The best cost stopped improving.
    Converged,
    /// Every iteration done.
    BudgetSpent,
    /// Stopped on request.
    Stopped,
    /// Ended by an error.
    Failed,
}

impl SessionState {
    /// Still to end.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Pending | Self::Running)
    }
}

impl From<SessionState> for v1::TuningSessionState {
    fn from(s: SessionState) -> Self {
        match s {
            SessionState::Pending => Self::Pending,
            SessionState::Running => Self::Running,
            SessionState::Converged => Self::Converged,
            SessionState::BudgetSpent => Self::BudgetSpent,
            SessionState::Stopped => Self::Stopped,
            SessionState::Failed => Self::Failed,
        }
    }
}

/// Where a session stands.
#[derive(Debug, Clone, PartialEq)]
pub struct TuningState {
    /// Session id.
    pub id: String,
    /// The spec.
    pub spec: TuningSpec,
    /// Its state.
    pub state: SessionState,
    /// Iterations done.
    pub history: Vec<Iteration>,
    /// Cheapest QoS-meeting configuration seen.
    pub best: Option<Best>,
    /// Rollbacks done.
    pub rollbacks: u32,
    /// The twin's error on the newest window ([`faasconf_tuner::Tuner::twin_error`]).
    pub twin_error: Option<f64>,
    /// The twin stays wrong ([`faasconf_tuner::Tuner::twin_wrong`]).
    pub twin_wrong: bool,
    /// Per function: the refitted twin's (CPU work, I/O time) factors
    /// ([`faasconf_tuner::Tuner::twin_factors`]).
    pub twin_fit: Vec<(String, f64, f64)>,
    /// Windows with a series missing, skipped (neither judged nor learnt from).
    pub incomplete_windows: u32,
    /// Fine-tunings of the agents on the refitted twin ([`faasconf_tuner::Tuner::fine_tunes`]).
    pub fine_tunes: u32,
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
        let workflow = (*engine.workflow(&spec.workflow)?).clone();
        spec.actuator = self.actuators.resolve(&spec.actuator)?;
        spec.validate()?;
        let (version, _) = engine.model(&workflow, &spec.model_version)?;
        let mut sessions = lock(&self.sessions);
        self.prune(&mut sessions);
        if let Some((id, _)) = sessions.iter().find(|(_, s)| {
            let s = lock(&s.state);
            s.spec.workflow == spec.workflow && s.state.is_active()
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
            state: SessionState::Pending,
            history: Vec::new(),
            best: None,
            rollbacks: 0,
            twin_error: None,
            twin_wrong: false,
            twin_fit: Vec::new(),
            fine_tunes: 0,
            incomplete_windows: 0,
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
                let result = run::run(
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
                    s.state = SessionState::Failed;
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

    /// Stops every session still running (the service is shutting down): each decision in
    /// progress is cancelled and nothing more is applied.
    pub fn stop_all(&self) {
        for s in lock(&self.sessions).values() {
            let _ = s.stop.send(true);
            s.cancel.cancel();
            let mut state = lock(&s.state);
            if state.state.is_active() {
                state.state = SessionState::Stopped;
                state.message = "stopped: the policy service is shutting down".into();
            }
        }
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
        if state.state.is_active() {
            state.state = SessionState::Stopped;
            state.message = "stopped on request".into();
        }
        Ok(state.clone())
    }
}
