//! The checks that guard a decision against the noise of its own search: the held-out seeds
//! for the cheapest configurations the search stood on, then fresh confirmation seeds whose
//! windows add up per configuration over a session.

use faasconf_core::WorkflowConfig;
use faasconf_core::rng::Rng;

use super::screen::{Screen, Visited};
use super::{CONFIRMED, KEEP_SLACK};
use crate::outcomes::Tally;
use crate::search::{Evaluation, Steady, shortfall};

/// Picks from `visited` (acceptable configurations the search stood on, cheapest first, none to
/// avoid; with the search step each came from): the index of the choice and the share of
/// windows it is expected to meet QoS in, and the twin evaluations spent. `anchors` (the
/// session's best and the configuration applied now, `current`) are always checked.
///
/// The cheapest ones that pass the held-out check (and the anchors) are confirmed on fresh
/// seeds, adding to the session's record of each (see [`choose_confirmed`]). When none passes
/// the held-out check: the cheapest of those nearly as close to passing as the closest (the
/// closest alone is often the dearest). Also: the twin evaluations and windows spent.
pub(super) fn check_and_choose(
    screen: &Screen<'_>,
    visited: &[Visited],
    anchors: &[WorkflowConfig],
    current: &WorkflowConfig,
    confirmations: &mut Tally,
    rng: &mut Rng,
) -> (Option<(usize, f64)>, usize, u64) {
    let (chosen, checked) = holdout_check(screen, visited, anchors);
    let mut evaluations = chosen.len();
    let mut windows: u64 = checked.iter().map(|s| u64::from(s.windows)).sum();
    let passes = |s: &Steady| passes(screen, s);
    let mut passed: Vec<usize> = chosen
        .iter()
        .zip(&checked)
        .filter(|(_, h)| passes(h))
        .map(|(&k, _)| k)
        .take(CONFIRMED)
        .collect();
    passed.extend(
        chosen
            .iter()
            .zip(&checked)
            .filter(|&(&k, h)| anchors.contains(&visited[k].0) && passes(h))
            .map(|(&k, _)| k),
    );
    passed.sort_unstable();
    passed.dedup();
    let verdict_of = if passed.is_empty() {
        // Lower is closer to acceptable.
        let score = |s: &Steady| shortfall(s, &screen.strict) - s.pass_rate();
        let nearest = checked.iter().map(score).fold(f64::INFINITY, f64::min);
        chosen
            .iter()
            .zip(&checked)
            .find(|(_, h)| score(h) <= nearest + 0.05)
            .map(|(&k, h)| (k, h.pass_rate()))
    } else {
        evaluations += passed.len();
        windows += passed.len() as u64
            * u64::from(screen.options.confirm_windows.max(1))
            * screen.options.confirm_seeds.max(1);
        let ask = Confirmation {
            visited,
            anchors,
            current,
            passed: &passed,
        };
        choose_confirmed(screen, &ask, confirmations, rng)
    };
    tracing::debug!(
        visited = visited.len(),
        checked = chosen.len(),
        passed = passed.len(),
        cheapest_checked = visited.first().map(|v| v.1.cost),
        chosen = verdict_of.map(|(k, _)| visited[k].1.cost),
        record = verdict_of.map(|(_, r)| r),
        "held-out check and confirmation"
    );
    (verdict_of, evaluations, windows)
}

/// Whether figures pass the checks' bar: QoS under the margins and `pass_rate` of windows.
fn passes(screen: &Screen<'_>, s: &Steady) -> bool {
    s.feasible(&screen.strict) && s.pass_rate() >= screen.options.pass_rate
}

/// The configurations checked on held-out seeds (indices into `visited`: the cheapest ones, a
/// spread over the dearer rest — earlier steps of the search paths, further from the edge —
/// and the anchors) and their figures there (given up once they cannot pass).
fn holdout_check(
    screen: &Screen<'_>,
    visited: &[Visited],
    anchors: &[WorkflowConfig],
) -> (Vec<usize>, Vec<Steady>) {
    let options = screen.options;
    let holdout = Evaluation {
        seeds: (0..options.holdout_seeds.max(1))
            .map(|k| options.twin_seed.wrapping_add(1000 + k))
            .collect(),
        windows: options.holdout_windows.max(1),
        ..screen.evaluation.clone()
    };
    let (cheapest, spread) = (options.holdout_cheapest, options.holdout_spread);
    let mut chosen: Vec<usize> = (0..visited.len().min(cheapest)).collect();
    let rest = visited.len().saturating_sub(cheapest);
    chosen.extend((0..spread.min(rest)).map(|i| cheapest + i * rest / spread.min(rest)));
    chosen.extend(
        anchors
            .iter()
            .filter_map(|a| visited.iter().position(|v| v.0 == *a)),
    );
    chosen.sort_unstable();
    chosen.dedup();
    let configs: Vec<WorkflowConfig> = chosen.iter().map(|&k| visited[k].0.clone()).collect();
    // A configuration that can no longer pass is given up: it only competes for "nearest" when
    // none passes, on the windows it ran.
    let misses = holdout.misses_allowed(options.pass_rate);
    let checked = holdout.steady_each(screen.workflow, &configs, misses);
    (chosen, checked)
}

/// What the confirmation chooses among.
struct Confirmation<'a> {
    visited: &'a [Visited],
    anchors: &'a [WorkflowConfig],
    /// The configuration applied now.
    current: &'a WorkflowConfig,
    /// Indices into `visited` that passed the held-out check, cheapest first.
    passed: &'a [usize],
}

/// Confirms `ask.passed` on fresh seeds (seeds reused over a session's decisions would become
/// one more sample the search is selected on) and chooses: the cheapest whose record passes
/// the confirmation bar, unless the configuration applied now is cheaper and its record still
/// passes `pass_rate` less a slack; failing both, the cheapest whose record passes
/// `pass_rate`, then the cheapest of those nearly as reliable as the most reliable.
fn choose_confirmed(
    screen: &Screen<'_>,
    ask: &Confirmation<'_>,
    confirmations: &mut Tally,
    rng: &mut Rng,
) -> Option<(usize, f64)> {
    let (options, visited, passed) = (screen.options, ask.visited, ask.passed);
    let confirm = Evaluation {
        seeds: (0..options.confirm_seeds.max(1))
            .map(|_| rng.next_u64())
            .collect(),
        windows: options.confirm_windows.max(1),
        ..screen.evaluation.clone()
    };
    let configs: Vec<WorkflowConfig> = passed.iter().map(|&k| visited[k].0.clone()).collect();
    let confirmed = confirm.steady_all(screen.workflow, &configs);
    for (&k, c) in passed.iter().zip(&confirmed) {
        confirmations.add(&visited[k].0, c.windows_met, c.windows - c.windows_met);
        tracing::debug!(
            cost = visited[k].1.cost,
            screening = visited[k].1.pass_rate(),
            confirmation = c.pass_rate(),
            record = confirmations.pass_rate(&visited[k].0),
            anchor = ask.anchors.contains(&visited[k].0),
            "confirmed"
        );
    }
    let record = |k: usize| confirmations.pass_rate(&visited[k].0).unwrap_or(0.0);
    let confirm_pass_rate = options.confirm_pass_rate.max(options.pass_rate);
    let holds = |k: usize, bar: f64| {
        record(k) >= bar
            && passed
                .iter()
                .position(|&p| p == k)
                .is_some_and(|i| confirmed[i].feasible(&screen.strict))
    };
    let cheapest_holding = |bar: f64| passed.iter().copied().find(|&k| holds(k, bar));
    let keep = passed
        .iter()
        .copied()
        .find(|&k| visited[k].0 == *ask.current)
        .filter(|&k| holds(k, options.pass_rate - KEEP_SLACK));
    let most = passed.iter().map(|&k| record(k)).fold(0.0, f64::max);
    let nearly = passed.iter().copied().find(|&k| record(k) >= most - 0.03);
    let choice = match (cheapest_holding(confirm_pass_rate), keep) {
        (Some(a), Some(b)) => Some(a.min(b)), // indices run in cost order
        (a, b) => a.or(b),
    };
    choice
        .or_else(|| cheapest_holding(options.pass_rate))
        .or(nearly)
        .map(|k| (k, record(k)))
}
