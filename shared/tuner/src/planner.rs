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

use std::sync::Arc;

use faasconf_agents::Decision;
use faasconf_core::cancel::Cancel;
use faasconf_core::rng::Rng;
use faasconf_core::telemetry::WindowReport;
use faasconf_core::{Qos, Workflow, WorkflowConfig};
use faasconf_ses::{Band, SafeExplorer, SesError};
use faasconf_training::Model;

use crate::error::TunerError;
use crate::memo::Memo;
use crate::outcomes::Tally;

use crate::search::Verdict;

pub mod budget;
mod checks;
mod screen;
use screen::Screen;

/// Coordinate descents per screened decision.
const DESCENTS: usize = 3;
/// Safe-history configurations screened with the policy's candidates.
const SAFE_STARTS: usize = 8;
/// A warm decision (one that screens on the twin and at the load an earlier decision of the
/// session screened at) refines for this fraction (1/n) of the budget.
const WARM_SHARE: usize = 3;
/// Random moves of one kick of the iterated local search.
const KICK_MOVES: usize = 3;
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
    /// Acceptable configurations checked on held-out twin seeds: the cheapest ones...
    pub holdout_cheapest: usize,
    /// ...and ones spread over the dearer rest.
    pub holdout_spread: usize,
    /// Function calls the twin may simulate for one decision (none: no bound). A window's cost
    /// grows with the workflow's functions and its requests; past this bound a decision screens
    /// fewer configurations on fewer windows ([`budget`]), so it fits inside a window at any
    /// workflow size and load.
    pub work_budget: Option<u64>,
}

impl PlanOptions {
    /// The options of a tuning session's decision.
    pub const DEFAULT: Self = Self {
        candidates: 32,
        random_starts: 256,
        noise: 0.15,
        screen: true,
        screen_windows: 10,
        screen_seeds: 4,
        twin_seed: 0x7a1,
        refine_budget: 1500,
        latency_margin: 0.0,
        success_margin: 0.0,
        pass_rate: 0.85,
        screen_pass_rate: 0.9,
        holdout_seeds: 4,
        holdout_windows: 25,
        confirm_seeds: 4,
        confirm_windows: 50,
        confirm_pass_rate: 0.85,
        holdout_cheapest: 16,
        holdout_spread: 32,
        work_budget: Some(budget::DEFAULT_WORK_BUDGET),
    };
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self::DEFAULT
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
    /// Steady twin windows simulated for the decision (0: unscreened).
    pub twin_windows: u64,
    /// Steady twin windows the decision judged by that the memo handed back from earlier
    /// decisions instead of simulating them again ([`crate::memo`]).
    pub reused_windows: u64,
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
) -> Result<Candidate, TunerError> {
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
        Err(e) => Err(e.into()),
    }
}

/// What one decision starts from.
#[derive(Clone, Copy)]
pub struct PlanInput<'a> {
    /// The workflow.
    pub workflow: &'a Workflow,
    /// The window observed last (the state; its configuration is the one applied now).
    pub window: &'a WindowReport,
    /// The load to screen at, in closed-loop users (measured, or equivalent to the measured
    /// arrivals: safe exploration's band is looked up at it).
    pub users: u32,
    /// Open loop: screening simulates Poisson arrivals at this rate rather than `users`
    /// closed-loop users ([`crate::load::Load`]).
    pub arrivals_per_second: Option<f64>,
    /// The QoS target.
    pub qos: &'a Qos,
    /// The best configuration seen so far, screened with the candidates.
    pub incumbent: Option<&'a WorkflowConfig>,
    /// Configurations that kept missing QoS when applied: never chosen again, however well
    /// they screen.
    pub avoid: &'a [WorkflowConfig],
    /// Twin evaluations remembered from the session's earlier decisions (none: simulate every
    /// one; the choice is the same either way).
    pub memo: Option<&'a Arc<Memo>>,
}

/// What a decision reads and adds to: the session's safe-exploration strategy (none: no
/// filter), its record of confirmation windows, its random stream and its stop signal.
pub struct PlanState<'a> {
    /// Safe exploration (none: the agents' actions unfiltered).
    pub explorer: Option<&'a mut SafeExplorer>,
    /// The session's record of confirmation windows, which this decision adds to.
    pub confirmations: &'a mut Tally,
    /// The session's random stream.
    pub rng: &'a mut Rng,
    /// Raised: the decision stops with [`TunerError::Cancelled`].
    pub cancel: &'a Cancel,
}

/// The configuration for the state `input.window` at `input.users`, as `model`'s policy proposes
/// and the twin screens it (see the module doc): [`propose`] then [`screen`].
///
/// A search on fixed twin seeds ends on the edge of what passes on those seeds' noise, so the
/// cheapest acceptable configurations it visited are checked again on held-out seeds, cheapest
/// first, and the first that passes there too is chosen.
pub fn plan(
    input: &PlanInput<'_>,
    model: &Model,
    state: PlanState<'_>,
    options: &PlanOptions,
) -> Result<Plan, TunerError> {
    let PlanState {
        explorer,
        confirmations,
        rng,
        cancel,
    } = state;
    let candidates = propose(input, model, explorer, options, rng)?;
    screen(input, candidates, confirmations, rng, cancel, options)
}

/// A decision's candidates before screening: what [`propose`] hands to [`screen`].
pub struct Candidates {
    list: Vec<Candidate>,
    /// How many of `list` come from the policy (the rest: safe history).
    from_policy: usize,
    /// The actor's neighbour weights behind its decision.
    weights: Vec<f32>,
}

/// The policy's candidates (its decision, then Gaussian exploration around it), each filtered
/// by safe exploration, and (when screening) the cheapest QoS-meeting configurations of the
/// safe history.
///
/// The only step of a decision that reads the model and the safe-exploration strategy, and a
/// quick one: a caller that shares them under locks holds the locks for this step alone, not
/// for the screening.
pub fn propose(
    input: &PlanInput<'_>,
    model: &Model,
    mut explorer: Option<&mut SafeExplorer>,
    options: &PlanOptions,
    rng: &mut Rng,
) -> Result<Candidates, TunerError> {
    let (workflow, users) = (input.workflow, input.users);
    let Decision { actions, weights } = model
        .decide(workflow, input.window)
        .map_err(|source| TunerError::State { source })?;
    let greedy = rows(&actions);
    let count = if options.screen {
        options.candidates.max(1)
    } else {
        1
    };
    let mut list = Vec::with_capacity(count);
    for i in 0..count {
        let proposed = if i == 0 {
            greedy.clone()
        } else {
            greedy
                .iter()
                .map(|a| a.map(|x| (x + options.noise * rng.normal()).clamp(0.0, 1.0)))
                .collect()
        };
        list.push(filtered(workflow, users, proposed, &mut explorer)?);
    }
    if options.screen
        && let Some(explorer) = explorer.as_deref()
    {
        let band = explorer.band_for(users).cloned();
        let mut safe: Vec<Vec<[f64; 4]>> = explorer.safe_for(users).to_vec();
        safe.sort_by(|a, b| {
            faasconf_ses::price(workflow, a)
                .unwrap_or(f64::MAX)
                .total_cmp(&faasconf_ses::price(workflow, b).unwrap_or(f64::MAX))
        });
        list.extend(safe.into_iter().take(SAFE_STARTS).map(|actions| Candidate {
            actions,
            replaced: true,
            band,
        }));
    }
    Ok(Candidates {
        list,
        from_policy: count,
        weights,
    })
}

/// Screens `candidates` on the twin (when `options.screen`; else the policy's own decision is
/// the plan). The long step of a decision: it reads neither the model nor the safe-exploration
/// strategy, and polls `cancel`.
pub fn screen(
    input: &PlanInput<'_>,
    candidates: Candidates,
    confirmations: &mut Tally,
    rng: &mut Rng,
    cancel: &Cancel,
    options: &PlanOptions,
) -> Result<Plan, TunerError> {
    let Candidates {
        list,
        from_policy,
        weights,
    } = candidates;
    let workflow = input.workflow;
    if !options.screen {
        let c = list.into_iter().next().ok_or(TunerError::NoCandidate)?;
        return Ok(Plan {
            config: workflow.config_from_actions(&c.actions)?,
            actions: c.actions,
            weights,
            ses_replaced: c.replaced,
            band: c.band,
            verdict: None,
            screened: 0,
            twin_windows: 0,
            reused_windows: 0,
            expected_pass_rate: None,
        });
    }
    // What a window costs here bounds how much of the search the decision can afford.
    let budgeted = options.within_budget(budget::calls_per_window(input, &list, options, cancel));
    let options = &budgeted;
    let (list, from_policy) = budget::policy_candidates(list, from_policy, options.candidates);
    let reused = || input.memo.map_or(0, |m| m.reused_windows());
    let reused_before = reused();
    // A decision that screens where an earlier one of the session did (same twin, same load)
    // finds the ground around the incumbent remembered, and its search goes on from there for
    // a share of the budget: a session's exploration still adds up over its decisions.
    let warm = input
        .memo
        .is_some_and(|m| m.screened_before(workflow, &screen::screening(input, options, cancel)));
    let warm_options = PlanOptions {
        refine_budget: options.refine_budget / WARM_SHARE,
        ..*options
    };
    let options = if warm { &warm_options } else { options };
    let screen = Screen::new(input, options, cancel);
    let mut search = screen.start(input, &list, from_policy, rng)?;
    screen.descend_from_the_best(&mut search);
    screen.repair_if_short(&mut search);
    screen.kick(&mut search, rng);
    let verdict_of = screen.check(input, &mut search, confirmations, rng)?;
    let mut plan = search.finish(input, &list, verdict_of, weights);
    plan.reused_windows = reused() - reused_before;
    plan.twin_windows =
        plan.twin_windows.saturating_sub(plan.reused_windows) + budget::PROBE_WINDOWS;
    Ok(plan)
}

#[cfg(test)]
pub(crate) mod tests;
