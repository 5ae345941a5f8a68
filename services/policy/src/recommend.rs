//! `RecommendConfig`, stateless: a workflow and a load (and optionally the latest telemetry
//! window) in, a configuration with its predicted cost, the safe-exploration verdict and the
//! attention behind it out.
//!
//! With a window the state is that window and the answer is one forward pass plus the SES
//! filter (the fast path CI jobs use). Without one the twin builds the state: the middle
//! configuration runs on the twin at the load, then a few policy steps are taken there, each
//! screened on the twin, and the cheapest configuration the twin predicts to meet QoS is
//! returned with the twin's predicted latency and success ratio.

use std::sync::{Arc, Mutex};

use faasconf_agents::attention::neighbourhood;
use faasconf_core::cancel::Cancel;
use faasconf_core::limits::{MAX_REQUESTS_PER_SECOND, MAX_USERS};
use faasconf_core::rng::Rng;
use faasconf_core::telemetry::WindowReport;
use faasconf_core::{Qos, Workflow, WorkflowConfig};
use faasconf_ses::Band;
use faasconf_tuner::outcomes::Tally;
use faasconf_tuner::planner::{PlanInput, PlanOptions, PlanState, plan};
use faasconf_tuner::twin_path::decide_on_twin;
use faasconf_tuner::{Verdict, lock};
use faasconf_twin::Workload;

use crate::engine::Engine;
use crate::error::PolicyError;

/// A recommendation request, validated.
#[derive(Debug, Clone)]
pub struct RecommendRequest {
    /// The workflow.
    pub workflow: String,
    /// The load: closed-loop users or Poisson arrivals.
    pub load: Workload,
    /// The QoS target.
    pub qos: Qos,
    /// The latest measured window, if any.
    pub current: Option<WindowReport>,
    /// Model version (empty: the promoted one).
    pub model_version: String,
}

/// One function's neighbours and their weights in its decision.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionRow {
    /// The function.
    pub function: String,
    /// Neighbours and weights (summing to one for `attmf` and `mf`; zeros for the ablations
    /// without a mean field).
    pub neighbours: Vec<(String, f64)>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// The configuration.
    pub config: WorkflowConfig,
    /// Its cost.
    pub cost: f64,
    /// The twin's prediction (twin path only).
    pub predicted: Option<Verdict>,
    /// Safe exploration replaced the policy's action.
    pub ses_replaced: bool,
    /// The band that applied.
    pub band: Option<Band>,
    /// The model version used.
    pub model_version: i64,
    /// Attention per function.
    pub attention: Vec<AttentionRow>,
}

/// The attention map of a decision, per function over its neighbourhood.
pub fn attention_rows(workflow: &Workflow, weights: &[f32]) -> Vec<AttentionRow> {
    let n = workflow.len();
    let mask = neighbourhood(&workflow.adjacency());
    workflow
        .functions
        .iter()
        .enumerate()
        .map(|(j, f)| AttentionRow {
            function: f.name.clone(),
            neighbours: (0..n)
                .filter(|&k| mask[j][k] > 0.0)
                .map(|k| {
                    (
                        workflow.functions[k].name.clone(),
                        f64::from(weights.get(j * n + k).copied().unwrap_or(0.0)),
                    )
                })
                .collect(),
        })
        .collect()
}

/// Checks a load against [`MAX_USERS`] or [`MAX_REQUESTS_PER_SECOND`]; only closed-loop users
/// and Poisson arrivals are recommended for.
pub fn check_load(load: &Workload) -> Result<(), PolicyError> {
    match load {
        Workload::ClosedLoop { users } => check_users(*users),
        Workload::Poisson {
            requests_per_second: r,
        } if r.is_finite() && *r > 0.0 && *r <= MAX_REQUESTS_PER_SECOND => Ok(()),
        Workload::Poisson {
            requests_per_second: r,
        } => Err(PolicyError::field(
            "load.requests_per_second",
            format!("{r} is not in (0, {MAX_REQUESTS_PER_SECOND}]"),
        )),
        Workload::Trace { .. } => Err(PolicyError::field(
            "load",
            "give concurrent_users or requests_per_second",
        )),
    }
}

/// Checks closed-loop users against [`MAX_USERS`].
pub fn check_users(users: u32) -> Result<(), PolicyError> {
    if (1..=MAX_USERS).contains(&users) {
        Ok(())
    } else {
        Err(PolicyError::field(
            "load.concurrent_users",
            format!("{users} is not in 1..={MAX_USERS}"),
        ))
    }
}

/// Answers a recommendation request.
///
/// The twin path polls `cancel` and stops with [`PolicyError::Cancelled`] when it is raised
/// (the caller hung up or its deadline passed).
pub fn recommend(
    engine: &Engine,
    request: &RecommendRequest,
    cancel: &Cancel,
) -> Result<Recommendation, PolicyError> {
    let workflow = &*engine.workflow(&request.workflow)?;
    check_load(&request.load)?;
    request
        .qos
        .validate("qos")
        .map_err(|e| PolicyError::Invalid(e.field_errors().to_vec()))?;
    let (version, model) = engine.model(workflow, &request.model_version)?;
    let seed = match &request.load {
        Workload::Poisson {
            requests_per_second,
        } => requests_per_second.to_bits(),
        other => other.users_at_minute(0).into(),
    };
    // The RPC is stateless: safe exploration answers from a copy seeded by the request, so
    // identical requests get identical answers and tuning sessions' stream is not moved.
    let shared = engine.explorer(workflow)?;
    let explorer = Arc::new(Mutex::new(lock(&shared).for_answer(seed ^ 0x5e5_a45e)));
    let mut rng = Rng::new(seed);
    let plan = match &request.current {
        Some(window) => {
            let model = lock(&model);
            let mut explorer = lock(&explorer);
            let input = PlanInput {
                workflow,
                window,
                users: match &request.load {
                    Workload::ClosedLoop { users } => *users,
                    _ => window.closed_loop_users(workflow.platform.user_think_seconds),
                },
                // The window path does not screen: the load only places safe exploration's band.
                arrivals_per_second: None,
                qos: &request.qos,
                incumbent: None,
                avoid: &[],
                memo: None,
            };
            let state = PlanState {
                explorer: Some(&mut explorer),
                confirmations: &mut Tally::default(),
                rng: &mut rng,
                cancel,
            };
            let options = PlanOptions {
                screen: false,
                ..PlanOptions::DEFAULT
            };
            plan(&input, &model, state, &options)?
        }
        None => decide_on_twin(
            workflow,
            &model,
            &explorer,
            &request.load,
            &request.qos,
            &mut rng,
            cancel,
        )?,
    };
    Ok(Recommendation {
        cost: plan.config.cost(),
        predicted: plan.verdict,
        ses_replaced: plan.ses_replaced,
        band: plan.band,
        model_version: version.version,
        attention: attention_rows(workflow, &plan.weights),
        config: plan.config,
    })
}
