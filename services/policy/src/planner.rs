//! From a state to a configuration: the policy's decision, exploration around it, the
//! safe-exploration filter, and (optionally) screening of the candidates on the twin.
//!
//! Screening: each candidate configuration is run on the calibrated twin at the observed load
//! (steady state over several seeds) and the cheapest ones the twin predicts to meet QoS with a
//! safety margin are refined by coordinate descent on the twin (cheaper one-knob moves that keep
//! the margin, within a budget of evaluations). If no candidate meets the margin, a repair
//! climb leads from the closest one back to it. Candidates come from the policy (its decision,
//! plus Gaussian exploration around it), the safe-exploration strategy, the session's best
//! configuration so far, the configuration applied now and random restarts, so the search
//! starts where the agents and the history point and is not confined there.
//!
//! A window holds a few dozen requests, so whether one meets QoS is noisy, and a search over
//! thousands of configurations finds ones that look better on its seeds than they are. Three
//! samples guard the choice: the search's own screening windows (with a stricter bar), fixed
//! held-out seeds for the cheapest configurations it stood on, and fresh confirmation seeds on
//! every decision, whose windows add up per configuration over the session. The cheapest
//! configuration whose record passes is chosen; the one applied now stays while its record
//! holds, so the session does not change configuration on noise.

use faasconf_agents::Decision;
use faasconf_core::cancel::Cancel;
use faasconf_core::rng::Rng;
use faasconf_core::telemetry::WindowReport;
use faasconf_core::{Qos, Workflow, WorkflowConfig};
use faasconf_ses::{Band, SafeExplorer, SesError};
use faasconf_training::search::{
    Evaluation, Steady, descend, moves, random_configs, repair, shortfall,
};
use faasconf_training::{Model, Verdict};

use crate::error::PolicyError;
use crate::outcomes::Tally;

mod checks;
use checks::check_and_choose;

/// Coordinate descents per screened decision.
const DESCENTS: usize = 3;
/// Safe-history configurations screened with the policy's candidates.
const SAFE_STARTS: usize = 8;
/// Random moves of one kick of the iterated local search.
const KICK_MOVES: usize = 3;
/// Acceptable configurations checked on held-out twin seeds: the cheapest ones, and ones
/// spread over the dearer rest.
const VALIDATION_CHEAPEST: usize = 16;
const VALIDATION_SPREAD: usize = 32;
/// Configurations that pass the held-out check and are confirmed on fresh seeds again, cheapest
/// first.
const CONFIRMED: usize = 6;
/// How far below `pass_rate` the record of the configuration applied now may fall
/// before it is given up (hysteresis: a record near the bar crosses it on noise).
const KEEP_SLACK: f64 = 0.05;

/// How candidates are drawn and screened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanOptions {
    /// Candidates per decision (the policy's own plus noisy ones).
    pub candidates: usize,
    /// Random configurations screened with them (restarts of the search away from where the
    /// policy and the history point; 0: none).
    pub random_starts: usize,
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
    /// Held-out twin seeds the search's cheapest results are checked on. A window holds a few
    /// dozen requests, so whether one meets QoS is noisy; a search over thousands of
    /// configurations finds ones that look better on its seeds than they are, and the check
    /// needs many more windows than the screening to see through it.
    pub holdout_seeds: u64,
    /// Steady windows per held-out seed.
    pub holdout_windows: u32,
    /// The share of screening windows a configuration must meet QoS in for the search to stand
    /// on it (at least `pass_rate`, which the held-out check and the confirmation ask).
    pub screen_pass_rate: f64,
    /// Fresh twin seeds the cheapest configurations that pass the held-out check are confirmed
    /// on. Choosing the cheapest of several that passed is itself a selection on noise (the
    /// winner passed partly by luck); a second, independent sample of windows takes it out, and
    /// its pass rate is what the session expects online.
    pub confirm_seeds: u64,
    /// Steady windows per confirmation seed.
    pub confirm_windows: u32,
    /// The share of confirmation windows that must meet QoS (at least `pass_rate`): a
    /// configuration is applied for windows one at a time, and each miss is a violation.
    pub confirm_pass_rate: f64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            candidates: 32,
            random_starts: 256,
            noise: 0.15,
            screen: true,
            screen_windows: 10,
            screen_seeds: 4,
            twin_seed: 0x7a1,
            refine_budget: 4000,
            latency_margin: 0.0,
            success_margin: 0.0,
            pass_rate: 0.85,
            screen_pass_rate: 0.9,
            holdout_seeds: 4,
            holdout_windows: 25,
            confirm_seeds: 4,
            confirm_windows: 50,
            confirm_pass_rate: 0.85,
        }
    }
}

impl PlanOptions {
    /// The QoS target tightened by the margins.
    pub fn tightened(&self, qos: &Qos) -> Qos {
        Qos {
            mean_latency_seconds: qos.mean_latency_seconds * (1.0 - self.latency_margin),
            min_success_ratio: (qos.min_success_ratio + self.success_margin).min(1.0),
        }
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
    /// The share of held-out twin windows in which the configuration met QoS (when screened):
    /// what to expect of it online.
    pub expected_pass_rate: Option<f64>,
}

struct Candidate {
    actions: Vec<[f64; 4]>,
    replaced: bool,
    band: Option<Band>,
}

fn rows(actions: &[f32]) -> Vec<[f64; 4]> {
    actions
        .chunks(4)
        .map(|c| [0, 1, 2, 3].map(|i| f64::from(c.get(i).copied().unwrap_or(0.0)).clamp(0.0, 1.0)))
        .collect()
}

fn filtered(
    workflow: &Workflow,
    users: u32,
    proposed: Vec<[f64; 4]>,
    explorer: &mut Option<&mut SafeExplorer>,
) -> Result<Candidate, PolicyError> {
    let Some(explorer) = explorer.as_deref_mut() else {
        return Ok(Candidate {
            actions: proposed,
            replaced: false,
            band: None,
        });
    };
    match explorer.filter(workflow, users, proposed.clone()) {
        Ok(f) => Ok(Candidate {
            actions: f.actions,
            replaced: f.replaced,
            band: Some(f.band),
        }),
        Err(SesError::NoSafeHistory) => Ok(Candidate {
            actions: proposed,
            replaced: false,
            band: None,
        }),
        Err(e) => Err(PolicyError::internal(e)),
    }
}

/// The configuration for the state `window` at `users` (`incumbent`: the best configuration
/// seen so far, screened with the candidates; `avoid`: configurations that kept missing QoS when
/// applied, never chosen again however well they screen; `confirmations`: the session's record
/// of confirmation windows, which this decision adds to).
///
/// A search on fixed twin seeds ends on the edge of what passes on those seeds' noise, so the
/// cheapest acceptable configurations it visited are checked again on held-out seeds, cheapest
/// first, and the first that passes there too is chosen.
#[allow(clippy::too_many_arguments)] // each is a distinct input of one decision
pub fn plan(
    workflow: &Workflow,
    model: &Model,
    window: &WindowReport,
    users: u32,
    qos: &Qos,
    mut explorer: Option<&mut SafeExplorer>,
    incumbent: Option<&WorkflowConfig>,
    avoid: &[WorkflowConfig],
    confirmations: &mut Tally,
    options: &PlanOptions,
    rng: &mut Rng,
    cancel: &Cancel,
) -> Result<Plan, PolicyError> {
    let Decision { actions, weights } = model
        .decide(workflow, window)
        .map_err(|e| PolicyError::field("current", e.to_string()))?;
    let greedy = rows(&actions);
    let count = if options.screen {
        options.candidates.max(1)
    } else {
        1
    };
    let mut candidates = Vec::with_capacity(count);
    for i in 0..count {
        let proposed = if i == 0 {
            greedy.clone()
        } else {
            greedy
                .iter()
                .map(|a| a.map(|x| (x + options.noise * rng.normal()).clamp(0.0, 1.0)))
                .collect()
        };
        candidates.push(filtered(workflow, users, proposed, &mut explorer)?);
    }
    if options.screen {
        // The safe history (cheapest QoS-meeting configurations) seeds the search too.
        if let Some(explorer) = explorer.as_deref() {
            let band = explorer.band_for(users).cloned();
            let mut safe: Vec<Vec<[f64; 4]>> = explorer.safe_for(users).to_vec();
            safe.sort_by(|a, b| {
                faasconf_ses::price(workflow, a)
                    .unwrap_or(f64::MAX)
                    .total_cmp(&faasconf_ses::price(workflow, b).unwrap_or(f64::MAX))
            });
            candidates.extend(safe.into_iter().take(SAFE_STARTS).map(|actions| Candidate {
                actions,
                replaced: true,
                band,
            }));
        }
    }
    let config_of = |c: &Candidate| {
        workflow
            .config_from_actions(&c.actions)
            .map_err(PolicyError::internal)
    };
    if !options.screen {
        let c = candidates.swap_remove(0);
        return Ok(Plan {
            config: config_of(&c)?,
            actions: c.actions,
            weights,
            ses_replaced: c.replaced,
            band: c.band,
            verdict: None,
            screened: 0,
            expected_pass_rate: None,
        });
    }
    let evaluation = Evaluation {
        users: users.max(1),
        windows: options.screen_windows,
        seeds: (0..options.screen_seeds.max(1))
            .map(|k| options.twin_seed.wrapping_add(k))
            .collect(),
        window_seconds: window.duration_seconds.clamp(1.0, 3600.0),
        threads: 0,
        qos: *qos,
        cancel: cancel.clone(),
    };
    let strict = options.tightened(qos);
    // The search asks more of its few screening windows than the checks (`checks`) ask of their
    // many: a descent stops where its own seeds stop passing, and a stricter bar stops it short
    // of the configurations that pass only on those seeds' luck.
    let acceptable = |s: &Steady| {
        s.feasible(&strict) && s.pass_rate() >= options.pass_rate.max(options.screen_pass_rate)
    };
    // Lower is closer to acceptable.
    let score = |s: &Steady| shortfall(s, &strict) - s.pass_rate();
    let mut configs = candidates
        .iter()
        .map(config_of)
        .collect::<Result<Vec<_>, _>>()?;
    let mut origins: Vec<Option<usize>> = (0..configs.len()).map(Some).collect();
    // The session's best so far and the configuration applied now are always screened and
    // checked: what is chosen is never dearer than one of them that passes, and the one applied
    // now stays while its record holds (a session that changes configuration on noise pays for
    // it in violations).
    let mut anchors: Vec<&WorkflowConfig> = incumbent.into_iter().collect();
    if !anchors.contains(&&window.config) && window.config.0.len() == workflow.len() {
        anchors.push(&window.config);
    }
    for anchor in &anchors {
        configs.push((*anchor).clone());
        origins.push(None);
    }
    for random in random_configs(workflow, options.random_starts, rng) {
        configs.push(random);
        origins.push(None);
    }
    let scored = evaluation.steady_all(workflow, &configs);
    if cancel.is_cancelled() {
        return Err(PolicyError::Cancelled);
    }
    let screened = configs.len();
    // Candidates best first: feasible under the margin by cost, then the rest by shortfall.
    let mut order: Vec<usize> = (0..screened).collect();
    order.sort_by(|&a, &b| {
        let (sa, sb) = (&scored[a], &scored[b]);
        match (acceptable(sa), acceptable(sb)) {
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            (true, true) => sa.cost.total_cmp(&sb.cost),
            (false, false) => score(sa).total_cmp(&score(sb)),
        }
    });
    let first = *order
        .first()
        .ok_or_else(|| PolicyError::Internal("no candidate".into()))?;
    let (mut pick, mut config, mut steady) = (first, configs[first].clone(), scored[first]);
    let mut refined = 0;
    // Every acceptable configuration the search stood on, for the held-out check.
    let mut visited: Vec<(WorkflowConfig, Steady, Option<usize>)> = (0..screened)
        .filter(|&k| acceptable(&scored[k]))
        .map(|k| (configs[k].clone(), scored[k], Some(k)))
        .collect();
    // Descents from the (up to) three best feasible candidates share the budget: the landscape
    // has many local optima. They start from different sources where they can (the policy's
    // candidates, the safe history, the anchors, the random restarts): the policy's 32 noisy
    // candidates lie in one basin and would otherwise take every start.
    let (policy_end, safe_end) = (count, candidates.len());
    let anchors_end = safe_end + anchors.len();
    let source = |k: usize| match k {
        _ if k < policy_end => 0,
        _ if k < safe_end => 1,
        _ if k < anchors_end => 2,
        _ => 3,
    };
    let feasible: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&k| acceptable(&scored[k]))
        .collect();
    let mut starts: Vec<usize> = Vec::with_capacity(DESCENTS);
    for &k in &feasible {
        if starts.len() < DESCENTS && starts.iter().all(|&s| source(s) != source(k)) {
            starts.push(k);
        }
    }
    for &k in &feasible {
        if starts.len() < DESCENTS && !starts.contains(&k) {
            starts.push(k);
        }
    }
    for &k in &starts {
        let d = descend(
            workflow,
            configs[k].clone(),
            scored[k],
            &acceptable,
            &evaluation,
            options.refine_budget / (2 * starts.len()),
        );
        refined += d.evaluations;
        visited.extend(d.path.iter().skip(1).map(|(c, s)| (c.clone(), *s, Some(k))));
        if d.steady.cost < steady.cost || (k == first && d.steady.cost <= steady.cost) {
            (pick, config, steady) = (k, d.config, d.steady);
        }
    }
    // No candidate is acceptable (the policy and the safe history both fall short at this
    // load): climb back to QoS from the closest one, then descend from there.
    if !acceptable(&steady) {
        let r = repair(
            workflow,
            config.clone(),
            steady,
            &acceptable,
            &score,
            &evaluation,
            options.refine_budget / 2,
        );
        refined += r.evaluations;
        (config, steady) = (r.config, r.steady);
        if acceptable(&steady) {
            let d = descend(
                workflow,
                config.clone(),
                steady,
                &acceptable,
                &evaluation,
                options.refine_budget / 4,
            );
            refined += d.evaluations;
            visited.extend(d.path.iter().map(|(c, s)| (c.clone(), *s, Some(first))));
            (config, steady) = (d.config, d.steady);
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
        let d = descend(
            workflow,
            kicked,
            kicked_steady,
            &acceptable,
            &evaluation,
            left.min(options.refine_budget / 4),
        );
        let spent = d.evaluations + 1;
        refined += spent;
        left = left.saturating_sub(spent.max(KICK_MOVES));
        visited.extend(
            d.path
                .iter()
                .filter(|(_, s)| acceptable(s))
                .map(|(c, s)| (c.clone(), *s, Some(pick))),
        );
        if acceptable(&d.steady) && d.steady.cost < steady.cost {
            (config, steady) = (d.config, d.steady);
        }
    }
    // The held-out check: cheapest first, never a configuration to avoid.
    visited.retain(|(c, s, _)| acceptable(s) && !avoid.contains(c));
    visited.sort_by(|a, b| a.1.cost.total_cmp(&b.1.cost));
    visited.dedup_by(|a, b| a.0 == b.0);
    if cancel.is_cancelled() {
        return Err(PolicyError::Cancelled);
    }
    let (verdict_of, evaluations) = check_and_choose(
        workflow,
        &visited,
        &anchors,
        &window.config,
        &evaluation,
        &strict,
        options,
        confirmations,
        rng,
    );
    // A cancelled check judged every configuration infeasible: nothing it chose holds.
    if cancel.is_cancelled() {
        return Err(PolicyError::Cancelled);
    }
    refined += evaluations;
    let mut expected_pass_rate = None;
    if let Some((k, rate)) = verdict_of {
        let v = &visited[k];
        (config, steady, expected_pass_rate) = (v.0.clone(), v.1, Some(rate));
        pick = v.2.unwrap_or(pick);
    }
    // Nothing acceptable was found and the search ended on a configuration to avoid: the best
    // candidate that is not one.
    if avoid.contains(&config)
        && let Some(&k) = order.iter().find(|&&k| !avoid.contains(&configs[k]))
    {
        (pick, config, steady, expected_pass_rate) = (k, configs[k].clone(), scored[k], None);
    }
    let (replaced, band) = match origins[pick] {
        Some(k) => (candidates[k].replaced, candidates[k].band),
        None => (false, candidates.first().and_then(|c| c.band)),
    };
    let verdict = Verdict {
        e2e_mean_seconds: steady.e2e_mean_seconds,
        success_ratio: steady.success_ratio,
        cost: steady.cost,
        qos_met: steady.feasible(qos),
    };
    Ok(Plan {
        actions: workflow.actions_of(&config),
        config,
        weights,
        ses_replaced: replaced,
        band,
        verdict: Some(verdict),
        screened: screened + refined,
        expected_pass_rate,
    })
}

#[cfg(test)]
mod tests;
