//! One session's run: connect to the actuator, check that its workflow is this policy's, build
//! the tuner, then run the tuning loop (`faasconf_tuner::tuning_loop`) on a blocking thread with
//! the actuator as its environment, recording every steady window in the store and the
//! session's progress in its state.

use std::sync::{Arc, Mutex};

use faasconf_core::Workflow;
use faasconf_core::cancel::Cancel;
use faasconf_core::limits::clip_to;
use faasconf_core::optimiser::Proposal;
use faasconf_core::telemetry::WindowReport;
use faasconf_proto::convert::{DefinedStart, bounds_from_proto, config_to_proto, defined_start};
use faasconf_proto::v1::{self, actuator_client::ActuatorClient};
use faasconf_proto::window::window_from_proto;
use faasconf_server::security::AuthChannel;
use faasconf_store::{Observation, Source};
use faasconf_training::Model;
use faasconf_tuner::Best;
use faasconf_tuner::tuning_loop::{self, Ended, Hooks, Iteration, Judged, LoopError};
use faasconf_tuner::{Environment, LoopOptions, Tuner, TunerOptions};
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tracing::Instrument;

use super::{SessionState, TuningSpec, TuningState};
use crate::engine::{Engine, lock};
use crate::error::PolicyError;

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

/// Runs a session to its end (see the module doc); its state says how it ended.
pub(super) async fn run(
    engine: Arc<Engine>,
    client: &faasconf_server::security::ClientSecurity,
    workflow: Workflow,
    model_dir: std::path::PathBuf,
    state: Arc<Mutex<TuningState>>,
    stopped: watch::Receiver<bool>,
    cancel: Cancel,
) -> Result<(), PolicyError> {
    let spec = lock(&state).spec.clone();
    // No per-call timeout: the telemetry stream lives as long as the session.
    let channel = client
        .connect(&spec.actuator, std::time::Duration::from_secs(10), None)
        .await
        .map_err(|e| PolicyError::Unavailable(e.to_string()))?;
    let mut client = ActuatorClient::new(channel);
    let remote = checked_remote(&mut client, &workflow, &spec.actuator).await?;
    let version = start_from_defined(&mut client, &workflow, &remote, &spec, &state).await?;
    let planning = remote.planning;
    // A private copy: online learning must not change the stored version others are served.
    let model = Model::load(&model_dir, &workflow, faasconf_agents::default_device())
        .map_err(PolicyError::internal)?;
    let explorer = engine.explorer(&workflow)?;
    let tuner = {
        let stored = engine
            .store()
            .observations(&workflow)
            .map_err(PolicyError::internal)?;
        let refs: Vec<&Observation> = stored.iter().map(|s| &s.observation).collect();
        Tuner::new(
            planning,
            model,
            explorer,
            &refs,
            TunerOptions {
                qos: spec.qos,
                rollback_after: spec.rollback_after,
                screen: spec.screen,
                safe_exploration: true,
                follow: true,
                forecast: spec.forecast,
                load_model: spec.load_model,
                work_budget: Some(faasconf_tuner::DEFAULT_WORK_BUDGET),
                seed: spec.seed,
                cancel: cancel.clone(),
            },
        )?
    };
    // Lockstep: a virtual-clock twin waits for each decision, so a session is reproducible from
    // its seed whatever the planning takes (a cluster does not wait).
    let stream = client
        .stream_telemetry(traced(v1::StreamTelemetryRequest {
            workflow: workflow.name.clone(),
            lockstep: true,
        }))
        .await
        .map_err(|e| from_status(&spec.actuator, e))?
        .into_inner();
    lock(&state).state = SessionState::Running;
    let session = lock(&state).id.clone();
    let mut environment = ActuatorEnvironment {
        handle: tokio::runtime::Handle::current(),
        client,
        stream,
        stopped,
        actuator: spec.actuator.clone(),
        workflow: workflow.clone(),
        version,
        users: 0,
        span: tracing::Span::current(),
    };
    let mut hooks = SessionHooks {
        engine,
        state: state.clone(),
        workflow,
        session,
        seq: 0,
    };
    let options = LoopOptions {
        qos: spec.qos,
        max_iterations: spec.max_iterations,
        converge_after: spec.converge_after,
        cancel,
    };
    let span = tracing::Span::current();
    let report = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let mut tuner = tuner;
        tuning_loop::run(&mut environment, &mut tuner, &options, &mut hooks)
    })
    .await
    .map_err(|e| PolicyError::Internal(format!("the tuning loop panicked: {e}")))?
    .map_err(|e| match e {
        LoopError::Environment(e) | LoopError::Hook(e) => e,
        LoopError::Method(e) => e.into(),
    })?;
    let mut s = lock(&state);
    match report.ended {
        Ended::BudgetSpent => {
            s.state = SessionState::BudgetSpent;
            s.message = format!("{} iterations done", report.iterations.len());
        }
        Ended::Converged { since_best } => {
            s.state = SessionState::Converged;
            s.message = format!("the best cost has not improved for {since_best} iterations");
        }
        // A stop set the state when it was asked for.
        Ended::Stopped | Ended::EnvironmentEnded => {}
    }
    Ok(())
}

/// What the actuator serves of `workflow`: the configuration version, and the workflow to plan
/// with — this policy's, every function's bounds narrowed to the bounds the actuator announces
/// (its platform's limits, e.g. OpenFaaS CE's 5 replicas), so that nothing proposed is refused.
/// Refused when the functions differ or the bounds do not overlap.
async fn checked_remote(
    client: &mut ActuatorClient<AuthChannel>,
    workflow: &Workflow,
    actuator: &str,
) -> Result<Remote, PolicyError> {
    let remote = client
        .get_workflow(traced(v1::GetWorkflowRequest {
            workflow: workflow.name.clone(),
        }))
        .await
        .map_err(|e| from_status(actuator, e))?
        .into_inner();
    let (remote_functions, remote_bounds) = remote
        .workflow
        .map(|w| (w.functions, w.bounds))
        .unwrap_or_default();
    if remote_functions != workflow.function_names() {
        return Err(PolicyError::Precondition(format!(
            "the actuator's {:?} has functions {remote_functions:?}; this policy knows {:?}",
            workflow.name,
            workflow.function_names()
        )));
    }
    // An actuator that announces no bounds leaves this policy's in force.
    let planning = if remote_bounds.is_empty() {
        workflow.clone()
    } else {
        let limits =
            bounds_from_proto(workflow, &remote_bounds, "workflow.bounds").map_err(|errors| {
                PolicyError::Precondition(format!(
                    "the actuator at {actuator} announced bad bounds: {}",
                    faasconf_core::Error::Invalid(errors)
                ))
            })?;
        workflow.within(&limits, "workflow.bounds").map_err(|e| {
            PolicyError::Precondition(format!(
                "the actuator at {actuator} accepts nothing this policy may propose: {e}"
            ))
        })?
    };
    let start = defined_start(&planning, remote.current_config.as_ref(), "current_config")
        .map_err(|errors| {
            PolicyError::Precondition(format!(
                "the actuator at {actuator} reports an unusable configuration in force: {}",
                faasconf_core::Error::Invalid(errors)
            ))
        })?;
    Ok(Remote {
        version: remote.config_version,
        planning,
        start,
    })
}

/// What the actuator serves of a session's workflow ([`checked_remote`]).
struct Remote {
    /// Its configuration version.
    version: u64,
    /// The workflow to plan with (bounds within the actuator's).
    planning: Workflow,
    /// The configuration in force, as one the session can start from.
    start: DefinedStart,
}

/// Applies the defined start when the configuration in force needed defining and the operator
/// consented (`define_start`); refuses the session, naming every such knob, when not. The
/// version the session starts at.
async fn start_from_defined(
    client: &mut ActuatorClient<AuthChannel>,
    workflow: &Workflow,
    remote: &Remote,
    spec: &TuningSpec,
    state: &Mutex<TuningState>,
) -> Result<u64, PolicyError> {
    if remote.start.defined.is_empty() {
        return Ok(remote.version);
    }
    let what = faasconf_core::Error::Invalid(remote.start.defined.clone()).to_string();
    if !spec.define_start {
        return Err(PolicyError::Precondition(format!(
            "the configuration in force is not one to start from ({what}); start the session with define_start to apply that first"
        )));
    }
    let applied = client
        .apply_config(traced(v1::ApplyConfigRequest {
            workflow: workflow.name.clone(),
            config: Some(config_to_proto(workflow, &remote.start.config)),
            dry_run: false,
            expected_version: remote.version,
        }))
        .await
        .map_err(|e| from_status(&spec.actuator, e))?
        .into_inner();
    tracing::info!(%what, version = applied.config_version, "started from a defined configuration");
    lock(state).message = format!("started from a defined configuration: {what}");
    Ok(applied.config_version)
}

/// The actuator as the loop's environment: its telemetry stream (steady windows of the
/// configuration this session applied last) and `ApplyConfig`. Runs on the loop's blocking
/// thread and waits on the runtime through `handle`.
struct ActuatorEnvironment {
    handle: tokio::runtime::Handle,
    client: ActuatorClient<AuthChannel>,
    stream: tonic::Streaming<v1::TelemetryWindow>,
    stopped: watch::Receiver<bool>,
    actuator: String,
    workflow: Workflow,
    /// The configuration version this session applied last.
    version: u64,
    /// Users of the window observed last (for the step's span).
    users: u32,
    /// The session's span, parent of every step's.
    span: tracing::Span,
}

impl Environment for ActuatorEnvironment {
    type Error = PolicyError;

    fn observe(&mut self) -> Result<Option<WindowReport>, PolicyError> {
        loop {
            let (stream, stopped) = (&mut self.stream, &mut self.stopped);
            let next = self.handle.block_on(async {
                tokio::select! {
                    m = stream.next() => Some(m),
                    _ = stopped.wait_for(|s| *s) => None,
                }
            });
            let Some(message) = next else {
                return Ok(None); // stopped
            };
            let Some(message) = message else {
                return Err(PolicyError::Unavailable(format!(
                    "{}: the actuator ended the telemetry stream",
                    self.actuator
                )));
            };
            let message = message.map_err(|e| from_status(&self.actuator, e))?;
            // The version first: windows of earlier configurations (perhaps with knobs unset,
            // before this session defined them) are skipped unread.
            if message.config_version > self.version {
                return Err(PolicyError::Precondition(format!(
                    "the configuration of {:?} was changed outside this session (version {} after this session's {})",
                    self.workflow.name, message.config_version, self.version
                )));
            }
            if message.transient || message.config_version != self.version {
                continue;
            }
            let window = window_from_proto(&self.workflow, &message, "telemetry").map_err(|e| {
                PolicyError::Internal(format!(
                    "the actuator sent a bad window: {}",
                    PolicyError::Invalid(e)
                ))
            })?;
            self.users = window.users;
            return Ok(Some(window));
        }
    }

    /// Applied even when unchanged: the decision is what a lockstep clock waits for (the
    /// actuator changes nothing then). The apply carries the step's trace context.
    fn apply(
        &mut self,
        config: &faasconf_core::WorkflowConfig,
        iteration: u32,
    ) -> Result<(), PolicyError> {
        let step = tracing::info_span!(
            parent: &self.span,
            "tuning_step",
            iteration,
            users = self.users
        );
        let request = {
            let _entered = step.enter();
            traced(v1::ApplyConfigRequest {
                workflow: self.workflow.name.clone(),
                config: Some(config_to_proto(&self.workflow, config)),
                dry_run: false,
                expected_version: self.version,
            })
        };
        let applied = self
            .handle
            .block_on(self.client.apply_config(request).instrument(step))
            .map_err(|e| from_status(&self.actuator, e))?
            .into_inner();
        self.version = applied.config_version;
        Ok(())
    }
}

/// What a session records as its loop runs: every steady window in the store (and the
/// dashboards' metrics), each iteration and the best in the session's state, rollbacks and why.
struct SessionHooks {
    engine: Arc<Engine>,
    state: Arc<Mutex<TuningState>>,
    workflow: Workflow,
    session: String,
    seq: u64,
}

impl Hooks<Tuner> for SessionHooks {
    type Error = PolicyError;

    /// Counted, and the status says which series are missing while they are.
    fn incomplete(&mut self, window: &WindowReport) -> Result<(), PolicyError> {
        let missing = window.workflow.missing_series.join(", ");
        tracing::warn!(%missing, "window {} skipped: series missing", window.index);
        metrics::counter!("faasconf_policy_incomplete_windows_total", "workflow" => self.workflow.name.clone())
            .increment(1);
        let mut s = lock(&self.state);
        s.incomplete_windows += 1;
        s.message = format!(
            "{} windows skipped so far, neither judged nor learnt from: the telemetry source has no data for {missing} (deploy/prometheus has the scrape job that provides the cAdvisor series)",
            s.incomplete_windows
        );
        Ok(())
    }

    fn window(&mut self, window: &WindowReport, judged: Judged) -> Result<(), PolicyError> {
        let workflow = &self.workflow;
        let observation = Observation {
            workflow: workflow.name.clone(),
            source: Source::Online,
            session: self.session.clone(),
            seq: self.seq,
            users: window.users,
            actions: workflow.actions_of(&window.config),
            window: window.clone(),
            reward: judged.reward,
            qos_met: judged.qos_met,
        };
        self.seq += 1;
        self.engine
            .store()
            .record(std::slice::from_ref(&observation))
            .map_err(PolicyError::internal)?;
        let name = workflow.name.clone();
        let qos = if judged.qos_met { "met" } else { "missed" };
        metrics::counter!("faasconf_policy_windows_total", "workflow" => name.clone(), "qos" => qos)
            .increment(1);
        metrics::gauge!("faasconf_policy_cost", "workflow" => name.clone())
            .set(window.workflow.cost);
        metrics::gauge!("faasconf_policy_reward", "workflow" => name.clone()).set(judged.reward);
        if !judged.qos_met {
            metrics::counter!("faasconf_policy_qos_violations_total", "workflow" => name)
                .increment(1);
        }
        Ok(())
    }

    fn proposed(&mut self, tuner: &Tuner, _proposal: &Proposal) {
        let mut s = lock(&self.state);
        // News: a rollback, or a growth of the measured bottleneck while the twin stays wrong.
        if !tuner.news().is_empty() && tuner.news() != s.message {
            s.message = tuner.news().to_owned();
        }
        s.rollbacks = tuner.rollbacks();
        s.twin_error = tuner.twin_error();
        if let Some(last) = s.history.last_mut() {
            last.twin_error = tuner.twin_error();
        }
        s.twin_wrong = tuner.twin_wrong();
        s.twin_fit = tuner.twin_factors();
        s.fine_tunes = tuner.fine_tunes();
    }

    fn iteration(&mut self, record: &Iteration, best: Option<&Best>) -> Result<(), PolicyError> {
        let mut s = lock(&self.state);
        s.history.push(record.clone());
        s.best = best.cloned();
        Ok(())
    }
}
