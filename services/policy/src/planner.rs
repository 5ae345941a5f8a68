//! From a state to a configuration: the policy's decision, exploration around it, the
//! safe-exploration filter, and (optionally) screening of the candidates on the twin.
//!
//! Screening: each candidate configuration is run on the calibrated twin at the observed load
//! (steady state over several seeds) and the cheapest one the twin predicts to meet QoS with a
//! safety margin is refined by coordinate descent on the twin (cheaper one-knob moves that keep
//! the margin, within a budget of evaluations). If no candidate meets the margin, the one
//! closest to it is used. Candidates come from the policy (its decision, plus Gaussian
//! exploration around it), the safe-exploration strategy and the session's best configuration
//! so far, so what the agents learnt decides where the search starts.

use faasconf_agents::Decision;
use faasconf_core::rng::Rng;
use faasconf_core::telemetry::WindowReport;
use faasconf_core::{Qos, Workflow, WorkflowConfig};
use faasconf_ses::{Band, SafeExplorer, SesError};
use faasconf_training::search::{descend, moves, Evaluation, Steady};
use faasconf_training::{Model, Verdict};

use crate::error::PolicyError;

/// Coordinate descents per screened decision.
const DESCENTS: usize = 3;
/// Safe-history configurations screened with the policy's candidates.
const SAFE_STARTS: usize = 8;
/// Random moves of one kick of the iterated local search.
const KICK_MOVES: usize = 3;

/// How candidates are drawn and screened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanOptions {
    /// Candidates per decision (the policy's own plus noisy ones).
    pub candidates: usize,
    /// Exploration noise around the policy's action (normalised space).
    pub noise: f64,
    /// Screen candidates on the twin.
    pub screen: bool,
    /// Steady twin windows per seed per screened configuration.
    pub screen_windows: u32,
    /// Twin seeds per screened configuration.
    pub screen_seeds: u64,
    /// First seed of the screening twin.
    pub twin_seed: u64,
    /// Twin evaluations the refinement may spend.
    pub refine_budget: usize,
    /// Safety margin: the twin must predict a mean latency this fraction below the target...
    pub latency_margin: f64,
    /// ...and a success ratio this much above the floor...
    pub success_margin: f64,
    /// ...and this share of its windows must meet QoS on their own (a configuration applied for
    /// one window should meet QoS in that window, not only on average).
    pub pass_rate: f64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self { candidates: 32, noise: 0.15, screen: true, screen_windows: 8, screen_seeds: 3, twin_seed: 0x7a1, refine_budget: 2000, latency_margin: 0.0, success_margin: 0.0, pass_rate: 0.85 }
    }
}

impl PlanOptions {
    /// The QoS target tightened by the margins.
    pub fn tightened(&self, qos: &Qos) -> Qos {
        Qos { mean_latency_seconds: qos.mean_latency_seconds * (1.0 - self.latency_margin), min_success_ratio: (qos.min_success_ratio + self.success_margin).min(1.0) }
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

/// The configuration for the state `window` at `users` (`incumbent`: the best configuration
/// seen so far, screened with the candidates).
#[allow(clippy::too_many_arguments)] // each is a distinct input of one decision
pub fn plan(
    workflow: &Workflow,
    model: &Model,
    window: &WindowReport,
    users: u32,
    qos: &Qos,
    mut explorer: Option<&mut SafeExplorer>,
    incumbent: Option<&WorkflowConfig>,
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
    if options.screen {
        // The safe history (cheapest QoS-meeting configurations) seeds the search too.
        if let Some(explorer) = explorer.as_deref() {
            let band = explorer.band_for(users).cloned();
            let mut safe: Vec<Vec<[f64; 4]>> = explorer.safe_for(users).to_vec();
            safe.sort_by(|a, b| faasconf_ses::price(workflow, a).unwrap_or(f64::MAX).total_cmp(&faasconf_ses::price(workflow, b).unwrap_or(f64::MAX)));
            candidates.extend(safe.into_iter().take(SAFE_STARTS).map(|actions| Candidate { actions, replaced: true, band }));
        }
    }
    let config_of = |c: &Candidate| workflow.config_from_actions(&c.actions).map_err(PolicyError::internal);
    if !options.screen {
        let c = candidates.swap_remove(0);
        return Ok(Plan { config: config_of(&c)?, actions: c.actions, weights, ses_replaced: c.replaced, band: c.band, verdict: None, screened: 0 });
    }
    let evaluation = Evaluation {
        users: users.max(1),
        windows: options.screen_windows,
        seeds: (0..options.screen_seeds.max(1)).map(|k| options.twin_seed.wrapping_add(k)).collect(),
        window_seconds: window.duration_seconds.clamp(1.0, 3600.0),
        threads: 0,
        qos: *qos,
    };
    let strict = options.tightened(qos);
    let acceptable = |s: &Steady| s.feasible(&strict) && s.pass_rate() >= options.pass_rate;
    let mut configs = candidates.iter().map(config_of).collect::<Result<Vec<_>, _>>()?;
    let mut origins: Vec<Option<usize>> = (0..configs.len()).map(Some).collect();
    if let Some(incumbent) = incumbent {
        configs.push(incumbent.clone());
        origins.push(None);
    }
    let scored = evaluation.steady_all(workflow, &configs);
    let screened = configs.len();
    // Candidates best first: feasible under the margin by cost, then the rest by shortfall.
    let mut order: Vec<usize> = (0..screened).collect();
    order.sort_by(|&a, &b| {
        let (sa, sb) = (&scored[a], &scored[b]);
        match (acceptable(sa), acceptable(sb)) {
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            (true, true) => sa.cost.total_cmp(&sb.cost),
            (false, false) => (shortfall(sa, &strict) - sa.pass_rate()).total_cmp(&(shortfall(sb, &strict) - sb.pass_rate())),
        }
    });
    let first = *order.first().ok_or_else(|| PolicyError::Internal("no candidate".into()))?;
    let (mut pick, mut config, mut steady) = (first, configs[first].clone(), scored[first]);
    let mut refined = 0;
    // Descents from the (up to) three best feasible candidates share the budget: the landscape
    // has many local optima.
    let starts: Vec<usize> = order.iter().copied().filter(|&k| acceptable(&scored[k])).take(DESCENTS).collect();
    for &k in &starts {
        let d = descend(workflow, configs[k].clone(), scored[k], &acceptable, &evaluation, options.refine_budget / (2 * starts.len()));
        refined += d.evaluations;
        if d.steady.cost < steady.cost || (k == first && d.steady.cost <= steady.cost) {
            (pick, config, steady) = (k, d.config, d.steady);
        }
    }
    // Iterated local search: when the best is a local optimum already (typically the session's
    // incumbent), kick it with a few random moves and descend again; keep what is cheaper.
    let mut left = options.refine_budget.saturating_sub(refined);
    while left > 0 && acceptable(&steady) {
        let mut kicked = config.clone();
        for _ in 0..KICK_MOVES {
            let around = moves(workflow, &kicked);
            if around.is_empty() {
                break;
            }
            kicked = around[rng.below(around.len())].clone();
        }
        let kicked_steady = evaluation.steady(workflow, &kicked);
        let d = descend(workflow, kicked, kicked_steady, &acceptable, &evaluation, left.min(options.refine_budget / 4));
        let spent = d.evaluations + 1;
        refined += spent;
        left = left.saturating_sub(spent.max(KICK_MOVES));
        if acceptable(&d.steady) && d.steady.cost < steady.cost {
            (config, steady) = (d.config, d.steady);
        }
    }
    let (replaced, band) = match origins[pick] {
        Some(k) => (candidates[k].replaced, candidates[k].band),
        None => (false, candidates.first().and_then(|c| c.band)),
    };
    let verdict = Verdict { e2e_mean_seconds: steady.e2e_mean_seconds, success_ratio: steady.success_ratio, cost: steady.cost, qos_met: steady.feasible(qos) };
    Ok(Plan { actions: workflow.actions_of(&config), config, weights, ses_replaced: replaced, band, verdict: Some(verdict), screened: screened + refined })
}

/// How far steady-state figures are from QoS (relative latency excess plus success-ratio gap).
fn shortfall(v: &Steady, qos: &Qos) -> f64 {
    (v.e2e_mean_seconds / qos.mean_latency_seconds - 1.0).max(0.0) + (qos.min_success_ratio - v.success_ratio).max(0.0) * 10.0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use faasconf_core::catalog::builtin;
    use faasconf_training::{train, twin_samples, SampleOptions, TrainOptions};
    use faasconf_twin::{Twin, TwinOptions, Workload};

    fn model(workflow: &Workflow) -> Model {
        let obs = twin_samples(workflow, &SampleOptions { samples: 60, episode_length: 10, ..SampleOptions::default() }, &|_| {}).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let options = TrainOptions { updates: 20, evaluate_every: 0, ..TrainOptions::default() };
        train(workflow, &obs, &options, dir.path(), faasconf_agents::default_device(), &mut |_| {}).unwrap().0
    }

    #[test]
    fn screening_returns_a_twin_verdict_no_worse_than_the_policy_alone() {
        let w = builtin("parallel").unwrap();
        let m = model(&w);
        let start = w.config_from_actions(&vec![[0.5; 4]; w.len()]).unwrap();
        let mut twin = Twin::new(w.clone(), start, Workload::ClosedLoop { users: 10 }, TwinOptions::default()).unwrap();
        let window = twin.run_window();
        let qos = Qos::default();
        let mut rng = Rng::new(1);
        let alone = plan(&w, &m, &window, 10, &qos, None, None, &PlanOptions { screen: false, ..PlanOptions::default() }, &mut rng).unwrap();
        assert_eq!(alone.verdict, None);
        assert_eq!(alone.config, Model::config_of(&w, &m.decide(&w, &window).unwrap()).unwrap(), "unscreened, the policy's own action");
        assert_eq!(alone.weights.len(), w.len() * w.len());
        let options = PlanOptions { candidates: 4, refine_budget: 60, screen_windows: 3, ..PlanOptions::default() };
        let screened = plan(&w, &m, &window, 10, &qos, None, Some(&alone.config), &options, &mut rng).unwrap();
        let verdict = screened.verdict.unwrap();
        assert!((verdict.cost - screened.config.cost()).abs() < 1e-9);
        assert!(screened.screened >= 5, "4 candidates and the incumbent at least: {}", screened.screened);
        // The incumbent was a candidate: what is chosen is acceptable and no dearer, or nothing
        // was acceptable and the incumbent was not either.
        let evaluation = Evaluation { users: 10, windows: 3, seeds: vec![options.twin_seed, options.twin_seed + 1], window_seconds: 30.0, threads: 0, qos };
        let incumbent = evaluation.steady(&w, &alone.config);
        let ok = |s: &Steady| s.feasible(&qos) && s.pass_rate() >= options.pass_rate;
        if ok(&incumbent) {
            assert!(verdict.cost <= incumbent.cost + 1e-9, "{} > {}", verdict.cost, incumbent.cost);
        }
    }
}
