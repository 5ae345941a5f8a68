//! A decision's bound on work. A twin window costs in proportion to the function calls it
//! simulates — the workflow's functions times its requests — so a search sized for a 5-function
//! workflow at a few hundred requests per window takes half an hour on a 25-function one at 100
//! requests/s. [`PlanOptions::within_budget`] shrinks a decision that would simulate more calls
//! than [`PlanOptions::work_budget`]: half the shrinking on the windows per evaluation (a window
//! of thousands of requests is less noisy than one of dozens), half on the configurations
//! screened and refined, each down to a floor below which the search stops making sense. Below
//! the bound nothing changes, so small workflows decide exactly as before.

use faasconf_core::cancel::Cancel;

use super::screen::screening;
use super::{CONFIRMED, Candidate, PlanInput, PlanOptions, SAFE_STARTS};

/// Function calls one decision may simulate by default: about 10 s of the twin on 2 cores
/// where a window costs what the configuration in force predicts (the twin simulates about 2
/// million calls per second on one core; `bench scale`). The search's congested configurations
/// cost more per call (more requests in service per replica), and a search already at its
/// floors cannot shrink further: 50 functions at 100 requests/s take 22-29 s at p95
/// (docs/benchmark.md).
pub const DEFAULT_WORK_BUDGET: u64 = 40_000_000;

/// The session's best and the configuration applied now, screened and checked with the rest.
const ANCHORS: usize = 2;

/// Twin windows [`calls_per_window`] simulates.
pub(super) const PROBE_WINDOWS: u64 = 2;

/// Function calls a steady screening window of `input` simulates, measured on the
/// configuration applied now (else the first candidate that makes a configuration).
pub(super) fn calls_per_window(
    input: &PlanInput<'_>,
    candidates: &[Candidate],
    options: &PlanOptions,
    cancel: &Cancel,
) -> u64 {
    let workflow = input.workflow;
    let current = &input.window.config;
    let probe = if current.0.len() == workflow.len() {
        Some(current.clone())
    } else {
        candidates
            .iter()
            .find_map(|c| workflow.config_from_actions(&c.actions).ok())
    };
    probe.map_or(0, |c| {
        screening(input, options, cancel).calls_per_window(workflow, &c)
    })
}

/// The first `keep` of the policy's `from_policy` candidates at the head of `list` (its own
/// decision first; at least that one) and every candidate after them, and how many of the
/// policy's are left.
pub(super) fn policy_candidates(
    mut list: Vec<Candidate>,
    from_policy: usize,
    keep: usize,
) -> (Vec<Candidate>, usize) {
    let keep = keep.clamp(1, from_policy.max(1)).min(from_policy);
    list.drain(keep..from_policy);
    (list, keep)
}

/// Windows one evaluation simulates in full: per seed a warm-up window and the steady ones.
fn per_evaluation(seeds: u64, windows: u32) -> f64 {
    seeds.max(1) as f64 * (f64::from(windows.max(1)) + 1.0)
}

impl PlanOptions {
    /// Twin windows a screened decision under these options simulates at most: every
    /// evaluation in full (descents, repairs and kicks together spend the refinement's budget).
    pub fn planned_windows(&self) -> f64 {
        let screen = per_evaluation(self.screen_seeds, self.screen_windows);
        let first = (self.candidates + SAFE_STARTS + ANCHORS + self.random_starts) as f64;
        let checked = (self.holdout_cheapest + self.holdout_spread + ANCHORS) as f64;
        (first + self.refine_budget as f64) * screen
            + checked * per_evaluation(self.holdout_seeds, self.holdout_windows)
            + (CONFIRMED + ANCHORS) as f64
                * per_evaluation(self.confirm_seeds, self.confirm_windows)
    }

    /// The share of the full search a decision can afford when a twin window simulates
    /// `calls_per_window` function calls (1: all of it, or no bound).
    pub fn affordable_share(&self, calls_per_window: u64) -> f64 {
        let Some(budget) = self.work_budget else {
            return 1.0;
        };
        let planned = self.planned_windows() * calls_per_window.max(1) as f64;
        (budget as f64 / planned).min(1.0)
    }

    /// These options shrunk to [`Self::work_budget`] when a twin window simulates
    /// `calls_per_window` function calls (unchanged when the full search fits). Windows per
    /// evaluation and configurations each take the square root of the share, down to floors
    /// (2 seeds of 2 screening windows, 4 held-out and 5 confirmation windows per seed; 4 of
    /// the policy's candidates, 8 random restarts, 24 evaluations of refinement, 4 + 4
    /// configurations checked on held-out seeds); the configurations make up for windows held
    /// at their floors.
    pub fn within_budget(&self, calls_per_window: u64) -> Self {
        let share = self.affordable_share(calls_per_window);
        if share >= 1.0 {
            return *self;
        }
        let root = share.sqrt();
        let windows =
            |v: u32, floor: u32| ((f64::from(v) * root).round() as u32).clamp(floor.min(v), v);
        let seeds = |v: u64, floor: u64| ((v as f64 * root).round() as u64).clamp(floor.min(v), v);
        let mut o = Self {
            screen_windows: windows(self.screen_windows, 2),
            screen_seeds: seeds(self.screen_seeds, 2),
            holdout_windows: windows(self.holdout_windows, 4),
            holdout_seeds: seeds(self.holdout_seeds, 2),
            confirm_windows: windows(self.confirm_windows, 5),
            confirm_seeds: seeds(self.confirm_seeds, 2),
            ..*self
        };
        let before = per_evaluation(self.screen_seeds, self.screen_windows);
        let after = per_evaluation(o.screen_seeds, o.screen_windows);
        let counts = (share * before / after).min(1.0);
        let count =
            |v: usize, floor: usize| ((v as f64 * counts).round() as usize).clamp(floor.min(v), v);
        o.candidates = count(self.candidates, 4);
        o.random_starts = count(self.random_starts, 8);
        o.refine_budget = count(self.refine_budget, 24);
        o.holdout_cheapest = count(self.holdout_cheapest, 4);
        o.holdout_spread = count(self.holdout_spread, 4);
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_that_fits_is_left_as_it_is() {
        let o = PlanOptions::DEFAULT;
        let calls = DEFAULT_WORK_BUDGET / o.planned_windows() as u64;
        assert_eq!(o.within_budget(calls), o);
        let unbounded = PlanOptions {
            work_budget: None,
            ..o
        };
        assert_eq!(unbounded.within_budget(u64::MAX), unbounded);
    }

    #[test]
    fn a_search_that_does_not_fit_shrinks_to_the_budget_or_to_its_floors() {
        let o = PlanOptions::DEFAULT;
        let full = o.planned_windows();
        // Twice the budget: close to half the windows, every knob moved down, none up.
        let calls = 2 * DEFAULT_WORK_BUDGET / full as u64;
        let half = o.within_budget(calls);
        let ratio = half.planned_windows() / full;
        assert!((0.4..=0.6).contains(&ratio), "{ratio}");
        assert!(half.refine_budget < o.refine_budget && half.random_starts < o.random_starts);
        assert!(half.screen_windows < o.screen_windows);
        // Far beyond it (a 50-function workflow at 100 requests/s): the windows at their floors,
        // the configurations close to theirs (they make up for the windows held up).
        let tiny = o.within_budget(150_000);
        assert_eq!((tiny.screen_seeds, tiny.screen_windows), (2, 2));
        assert_eq!((tiny.holdout_seeds, tiny.holdout_windows), (2, 4));
        assert_eq!((tiny.candidates, tiny.holdout_cheapest), (4, 4));
        assert!(
            (8..=16).contains(&tiny.random_starts),
            "{}",
            tiny.random_starts
        );
        assert!(
            (24..=100).contains(&tiny.refine_budget),
            "{}",
            tiny.refine_budget
        );
        assert!(tiny.planned_windows() < 900.0, "{}", tiny.planned_windows());
    }
}
