//! What "best" means: the cheapest configuration a session applied that holds — one definition
//! for every method's session, every benchmark cell and the tuner's incumbent.
//!
//! A window is noisy: a configuration at the edge of the target meets it in most windows and
//! misses it in some, and the cheapest of several that each met QoS a few times is, more often
//! than not, one whose record flattered it (the winner's curse). So a best must be seen to hold
//! in two ways: by count (it met QoS in at least [`BEST_HOLDS`] of its windows) and by headroom
//! (its windows kept far enough inside the target, [`faasconf_core::Qos::headroom`], that a
//! window-to-window spread like the session's own would still leave [`BEST_HOLDS`] of fresh
//! windows inside it).
//! Where nothing applied holds by headroom, the cheapest that holds by count is the best.
//!
//! The same record says which configurations a session must not propose again
//! ([`Bests::to_avoid`]): one that missed QoS and kept outside the target on average, and —
//! where what proposed it is not to be trusted — one that missed it and does not hold by
//! headroom: after a miss at the edge, a second window misses about as often as not.

use faasconf_core::WorkflowConfig;
use serde::{Deserialize, Serialize};

use crate::tuning_loop::Judged;

/// The share of fresh windows a best must meet QoS in (and of the windows it was applied in).
/// The bar the benchmark holds a best to on fresh windows (`holds::HOLDS`).
pub const BEST_HOLDS: f64 = 0.8;

/// The standard normal quantile of [`BEST_HOLDS`]: a configuration whose headroom is normal with
/// mean `m` and spread `s` meets QoS in [`BEST_HOLDS`] of windows when `m >= HOLDS_Z * s`.
const HOLDS_Z: f64 = 0.841_6;

/// How many standard errors of its mean headroom a configuration must keep on top: its mean is
/// from a handful of windows, and the cheapest of several such means is biased up. Half a
/// standard error; a whole one, replayed on the mismatch benchmark's session windows, put one
/// cell's best 18% above its oracle.
const STANDARD_ERRORS: f64 = 0.5;

/// The window-to-window spread of the headroom assumed before the session has seen its own
/// (relative to the target; `parallel` on the twin at 20 users spreads 0.03-0.055), and how many
/// degrees of freedom that assumption weighs.
const SPREAD_PRIOR: f64 = 0.05;
const SPREAD_PRIOR_WEIGHT: f64 = 4.0;

/// A window's headroom counts at most this far either way: a quarter of the target beyond the
/// edge says nothing more about whether the configuration holds at the edge, and a stalled or
/// empty window must not swamp the spread.
const HEADROOM_CAP: f64 = 0.25;

/// The best configuration so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    /// The configuration.
    pub config: WorkflowConfig,
    /// Its cost.
    pub cost: f64,
}

/// One configuration's windows in a session.
#[derive(Debug, Clone, PartialEq)]
struct Applied {
    config: WorkflowConfig,
    cost: f64,
    met: u32,
    missed: u32,
    /// Mean capped headroom of its windows.
    mean: f64,
    /// Sum of squared deviations from `mean` (Welford).
    squares: f64,
    /// Whether a window of it followed the method's own proposal: only those may be best (the
    /// configuration a session found in force is not its finding).
    proposed: bool,
}

impl Applied {
    fn windows(&self) -> u32 {
        self.met + self.missed
    }

    fn holds_by_count(&self) -> bool {
        self.met > 0 && f64::from(self.met) >= BEST_HOLDS * f64::from(self.windows())
    }

    fn holds_by_headroom(&self, spread: f64) -> bool {
        let standard_error = spread / f64::from(self.windows()).sqrt();
        self.mean >= HOLDS_Z * spread + STANDARD_ERRORS * standard_error
    }

    /// Missed QoS in at least two windows and in more than `1 - pass_rate` of them; or missed it
    /// and its windows fell outside the target on average, or (`strict`) do not hold by
    /// headroom.
    fn to_avoid(&self, spread: f64, pass_rate: f64, strict: bool) -> bool {
        let by_count = self.missed >= 2
            && f64::from(self.missed) > (1.0 - pass_rate) * f64::from(self.windows());
        let by_headroom = if strict {
            !self.holds_by_headroom(spread)
        } else {
            self.mean < 0.0
        };
        self.missed > 0 && (by_count || by_headroom)
    }
}

/// Every configuration's windows and the [`Best`] they make.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bests {
    applied: Vec<Applied>,
    best: Option<Best>,
}

impl Bests {
    /// Records a window of `config` and the loop's verdict on it: true when the best became
    /// cheaper (or there was none). A best that stops holding gives way to the next cheapest
    /// that holds, which is not an improvement.
    pub fn offer(&mut self, config: &WorkflowConfig, judged: Judged) -> bool {
        self.record(config, judged, true)
    }

    /// Records a window of `config` that did not follow the method's own proposal (the
    /// configuration found in force): it counts for [`Self::to_avoid`] and the spread, and
    /// makes `config` a possible best only once a proposal applies it.
    pub fn witness(&mut self, config: &WorkflowConfig, judged: Judged) -> bool {
        self.record(config, judged, false)
    }

    /// The best so far.
    pub fn best(&self) -> Option<&Best> {
        self.best.as_ref()
    }

    /// Configurations not to propose again: each that missed QoS in at least two windows and in
    /// more than `1 - pass_rate` of them, or that missed it and whose windows fell outside the
    /// target on average (a single window outside it included). `strict` — the evidence
    /// that proposed them is weak, e.g. the twin that screened them was found wrong — also
    /// each that missed it and whose windows do not hold by headroom: at the edge, a window
    /// after a miss misses about as often as not.
    pub fn to_avoid(&self, pass_rate: f64, strict: bool) -> Vec<WorkflowConfig> {
        let spread = self.spread();
        self.applied
            .iter()
            .filter(|a| a.to_avoid(spread, pass_rate, strict))
            .map(|a| a.config.clone())
            .collect()
    }

    /// Records a window and derives the best again (see [`Self::offer`]).
    fn record(&mut self, config: &WorkflowConfig, judged: Judged, proposed: bool) -> bool {
        self.add(config, judged, proposed);
        let before = self.best.as_ref().map(|b| b.cost);
        self.best = self.holding().map(|a| Best {
            config: a.config.clone(),
            cost: a.cost,
        });
        match (&self.best, before) {
            (Some(_), None) => true,
            (Some(b), Some(cost)) => b.cost < cost,
            (None, _) => false,
        }
    }

    fn add(&mut self, config: &WorkflowConfig, judged: Judged, proposed: bool) {
        let at = match self.applied.iter().position(|a| a.config == *config) {
            Some(at) => at,
            None => {
                self.applied.push(Applied {
                    config: config.clone(),
                    cost: config.cost(),
                    met: 0,
                    missed: 0,
                    mean: 0.0,
                    squares: 0.0,
                    proposed: false,
                });
                self.applied.len() - 1
            }
        };
        let a = &mut self.applied[at];
        a.proposed |= proposed;
        if judged.qos_met {
            a.met += 1;
        } else {
            a.missed += 1;
        }
        let headroom = judged.headroom.clamp(-HEADROOM_CAP, HEADROOM_CAP);
        let delta = headroom - a.mean;
        a.mean += delta / f64::from(a.windows());
        a.squares += delta * (headroom - a.mean);
    }

    /// The window-to-window spread of the headroom: the session's configurations' own spreads
    /// pooled with the prior.
    fn spread(&self) -> f64 {
        let (squares, freedom) = self.applied.iter().fold((0.0, 0.0), |(s, f), a| {
            (s + a.squares, f + f64::from(a.windows() - 1))
        });
        let prior = SPREAD_PRIOR_WEIGHT * SPREAD_PRIOR * SPREAD_PRIOR;
        ((prior + squares) / (SPREAD_PRIOR_WEIGHT + freedom)).sqrt()
    }

    /// The cheapest that holds by count and headroom, else the cheapest by count alone (of
    /// equal costs the first applied).
    fn holding(&self) -> Option<&Applied> {
        let spread = self.spread();
        let cheapest = |with_headroom: bool| {
            self.applied
                .iter()
                .filter(|a| {
                    a.proposed
                        && a.holds_by_count()
                        && (!with_headroom || a.holds_by_headroom(spread))
                })
                .min_by(|a, b| a.cost.total_cmp(&b.cost))
        };
        cheapest(true).or_else(|| cheapest(false))
    }
}

#[cfg(test)]
mod tests;
