//! From a state to a configuration: the policy's decision, exploration around it, the
//! safe-exploration filter, and (optionally) screening of the candidates on the twin.
//!
//! Screening: each candidate configuration is run on the calibrated twin at the observed load
//! and the cheapest one the twin predicts to meet QoS is chosen (if none does, the one with the
//! best predicted reward). Candidates come only from the policy (its decision, plus Gaussian
//! exploration around it) and the safe-exploration strategy, so what the agents learnt still
//! decides where the search looks.

use faasconf_agents::Decision;
use faasconf_core::rng::Rng;
use faasconf_core::telemetry::WindowReport;
use faasconf_core::{Qos, Workflow, WorkflowConfig};
use faasconf_ses::{Band, SafeExplorer, SesError};
use faasconf_training::{verdict, Model, Verdict};
use faasconf_twin::TwinOptions;

use crate::error::PolicyError;

/// How candidates are drawn and screened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanOptions {
    /// Candidates per decision (the policy's own plus noisy ones).
    pub candidates: usize,
    /// Exploration noise around the policy's action (normalised space).
    pub noise: f64,
    /// Screen candidates on the twin.
    pub screen: bool,
    /// Steady twin windows per screened candidate.
    pub screen_windows: u32,
    /// Seed of the screening twin.
    pub twin_seed: u64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self { candidates: 8, noise: 0.1, screen: true, screen_windows: 3, twin_seed: 0x7a1 }
    }
}

/// A chosen configuration and how it was chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The configuration.
    pub config: WorkflowConfig,
    /// Its normalised actions.
    pub actions: Vec<[f64; 4]>,
    /// The actor's neighbour weights `[n * n]` behind the decision.
    pub weights: Vec<f32>,
    /// Safe exploration replaced the chosen candidate's proposal.
    pub ses_replaced: bool,
    /// The band that applied (none without QoS-meeting history).
    pub band: Option<Band>,
    /// The twin's verdict on the configuration, when screened.
    pub verdict: Option<Verdict>,
    /// Candidates screened.
    pub screened: usize,
}

struct Candidate {
    actions: Vec<[f64; 4]>,
    replaced: bool,
    band: Option<Band>,
}

fn rows(actions: &[f32]) -> Vec<[f64; 4]> {
    actions.chunks(4).map(|c| [0, 1, 2, 3].map(|i| f64::from(c.get(i).copied().unwrap_or(0.0)).clamp(0.0, 1.0))).collect()
}

fn filtered(workflow: &Workflow, users: u32, proposed: Vec<[f64; 4]>, explorer: &mut Option<&mut SafeExplorer>) -> Result<Candidate, PolicyError> {
    let Some(explorer) = explorer.as_deref_mut() else { return Ok(Candidate { actions: proposed, replaced: false, band: None }) };
    match explorer.filter(workflow, users, proposed.clone()) {
        Ok(f) => Ok(Candidate { actions: f.actions, replaced: f.replaced, band: Some(f.band) }),
        Err(SesError::NoSafeHistory) => Ok(Candidate { actions: proposed, replaced: false, band: None }),
        Err(e) => Err(PolicyError::internal(e)),
    }
}

/// The configuration for the state `window` at `users`.
pub fn plan(
    workflow: &Workflow,
    model: &Model,
    window: &WindowReport,
    users: u32,
    qos: &Qos,
    mut explorer: Option<&mut SafeExplorer>,
    options: &PlanOptions,
    rng: &mut Rng,
) -> Result<Plan, PolicyError> {
    let Decision { actions, weights } = model.decide(workflow, window).map_err(|e| PolicyError::field("current", e.to_string()))?;
    let greedy = rows(&actions);
    let count = if options.screen { options.candidates.max(1) } else { 1 };
    let mut candidates = Vec::with_capacity(count);
    for i in 0..count {
        let proposed = if i == 0 { greedy.clone() } else { greedy.iter().map(|a| a.map(|x| (x + options.noise * rng.normal()).clamp(0.0, 1.0))).collect() };
        candidates.push(filtered(workflow, users, proposed, &mut explorer)?);
    }
    let config_of = |c: &Candidate| workflow.config_from_actions(&c.actions).map_err(PolicyError::internal);
    if !options.screen {
        let c = candidates.swap_remove(0);
        return Ok(Plan { config: config_of(&c)?, actions: c.actions, weights, ses_replaced: c.replaced, band: c.band, verdict: None, screened: 0 });
    }
    let twin = TwinOptions { window_seconds: window.duration_seconds.clamp(1.0, 3600.0), seed: options.twin_seed };
    let mut best: Option<(Candidate, WorkflowConfig, Verdict)> = None;
    for c in candidates {
        let config = config_of(&c)?;
        let v = verdict(workflow, &config, users.max(1), options.screen_windows, qos, twin).map_err(PolicyError::internal)?;
        let better = match &best {
            None => true,
            Some((_, _, b)) => match (v.qos_met, b.qos_met) {
                (true, false) => true,
                (false, true) => false,
                (true, true) => v.cost < b.cost,
                (false, false) => shortfall(&v, qos) < shortfall(b, qos),
            },
        };
        if better {
            best = Some((c, config, v));
        }
    }
    let (c, config, v) = best.ok_or_else(|| PolicyError::Internal("no candidate".into()))?;
    Ok(Plan { config, actions: c.actions, weights, ses_replaced: c.replaced, band: c.band, verdict: Some(v), screened: count })
}

/// How far a verdict is from QoS (relative latency excess plus success-ratio gap).
fn shortfall(v: &Verdict, qos: &Qos) -> f64 {
    (v.e2e_mean_seconds / qos.mean_latency_seconds - 1.0).max(0.0) + (qos.min_success_ratio - v.success_ratio).max(0.0) * 10.0
}
