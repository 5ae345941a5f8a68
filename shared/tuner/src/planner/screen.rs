//! The screening steps of a decision: the candidates, anchors and random restarts screened on
//! the twin, descents from the best of them, a repair climb when none is acceptable, an
//! iterated local search, then the held-out check and the confirmation (`checks`).

use faasconf_core::cancel::Cancel;
use faasconf_core::rng::Rng;
use faasconf_core::{Qos, Workflow, WorkflowConfig};

use super::checks::check_and_choose;
use super::{Candidate, DESCENTS, KICK_MOVES, Plan, PlanInput, PlanOptions};
use crate::error::TunerError;
use crate::outcomes::Tally;
use crate::search::{
    Descent, Evaluation, Steady, Verdict, descend, moves, random_configs, repair, shortfall,
};

/// An acceptable configuration the search stood on, its screening figures, and the screened
/// configuration whose search step it came from.
pub(super) type Visited = (WorkflowConfig, Steady, Option<usize>);

/// How one decision screens: the twin evaluation and the bar the search holds configurations
/// to.
pub(super) struct Screen<'a> {
    pub(super) workflow: &'a Workflow,
    pub(super) evaluation: Evaluation,
    /// The QoS target tightened by the margins.
    pub(super) strict: Qos,
    pub(super) options: &'a PlanOptions,
    pub(super) cancel: &'a Cancel,
    /// The missed windows after which a screening evaluation gives up: the configuration can
    /// no longer be [`Self::acceptable`].
    pub(super) misses: Option<u32>,
}

/// Where a decision's search stands.
pub(super) struct Search {
    /// Every screened configuration: the candidates, the anchors, the random restarts.
    configs: Vec<WorkflowConfig>,
    /// Each screened configuration's candidate (none: an anchor or a random restart).
    origins: Vec<Option<usize>>,
    scored: Vec<Steady>,
    /// Screened configurations best first.
    order: Vec<usize>,
    /// The session's best so far and the configuration applied now.
    anchors: Vec<WorkflowConfig>,
    /// Ends of the sources in `configs`: the policy's candidates, the safe history, the anchors.
    ends: [usize; 3],
    /// Where the search stands: the screened configuration it started from, the configuration
    /// and its figures.
    pick: usize,
    config: WorkflowConfig,
    steady: Steady,
    /// Twin evaluations after the screening.
    refined: usize,
    /// The refinement's spending against its budget, in full evaluations (one that gave up
    /// early counts as the share it simulated).
    spent: usize,
    /// Steady twin windows simulated, every step together.
    pub(super) windows: u64,
    /// Every acceptable configuration the search stood on, for the held-out check.
    visited: Vec<Visited>,
}

/// The twin evaluation a decision screens with: its load, `options`' screening seeds and
/// windows, the window length of the window it decides on.
pub(super) fn screening(
    input: &PlanInput<'_>,
    options: &PlanOptions,
    cancel: &Cancel,
) -> Evaluation {
    Evaluation {
        users: input.users.max(1),
        arrivals_per_second: input.arrivals_per_second,
        windows: options.screen_windows,
        seeds: (0..options.screen_seeds.max(1))
            .map(|k| options.twin_seed.wrapping_add(k))
            .collect(),
        window_seconds: input.window.duration_seconds.clamp(1.0, 3600.0),
        threads: 0,
        qos: *input.qos,
        cancel: cancel.clone(),
        memo: input.memo.cloned(),
    }
}

impl<'a> Screen<'a> {
    pub(super) fn new(input: &PlanInput<'a>, options: &'a PlanOptions, cancel: &'a Cancel) -> Self {
        let evaluation = screening(input, options, cancel);
        let misses = evaluation.misses_allowed(options.pass_rate.max(options.screen_pass_rate));
        Self {
            workflow: input.workflow,
            evaluation,
            strict: options.tightened(input.qos),
            options,
            cancel,
            misses,
        }
    }

    /// Whether the search may stand on a configuration. The search asks more of its few
    /// screening windows than the checks (`checks`) ask of their many: a descent stops where
    /// its own seeds stop passing, and a stricter bar stops it short of the configurations
    /// that pass only on those seeds' luck.
    fn acceptable(&self, s: &Steady) -> bool {
        s.feasible(&self.strict)
            && s.pass_rate() >= self.options.pass_rate.max(self.options.screen_pass_rate)
    }

    /// Lower is closer to acceptable.
    fn score(&self, s: &Steady) -> f64 {
        shortfall(s, &self.strict) - s.pass_rate()
    }

    fn cancelled(&self) -> Result<(), TunerError> {
        if self.cancel.is_cancelled() {
            return Err(TunerError::Cancelled);
        }
        Ok(())
    }

    /// Screens the candidates, the anchors and the random restarts. The session's best so far
    /// and the configuration applied now are always screened and checked: what is chosen is
    /// never dearer than one of them that passes, and the one applied now stays while its
    /// record holds (a session that changes configuration on noise pays for it in violations).
    pub(super) fn start(
        &self,
        input: &PlanInput<'_>,
        candidates: &[Candidate],
        count: usize,
        rng: &mut Rng,
    ) -> Result<Search, TunerError> {
        let workflow = self.workflow;
        let mut configs = candidates
            .iter()
            .map(|c| workflow.config_from_actions(&c.actions))
            .collect::<Result<Vec<_>, _>>()?;
        let mut origins: Vec<Option<usize>> = (0..configs.len()).map(Some).collect();
        let mut anchors: Vec<WorkflowConfig> = input.incumbent.into_iter().cloned().collect();
        let current = &input.window.config;
        if !anchors.contains(current) && current.0.len() == workflow.len() {
            anchors.push(current.clone());
        }
        configs.extend(anchors.iter().cloned());
        configs.extend(random_configs(workflow, self.options.random_starts, rng));
        origins.resize(configs.len(), None);
        let scored = self.evaluation.steady_each(workflow, &configs, self.misses);
        self.cancelled()?;
        // Candidates best first: feasible under the margin by cost, then the rest by shortfall.
        let mut order: Vec<usize> = (0..configs.len()).collect();
        order.sort_by(|&a, &b| {
            let (sa, sb) = (&scored[a], &scored[b]);
            match (self.acceptable(sa), self.acceptable(sb)) {
                (true, false) => std::cmp::Ordering::Less,
                (false, true) => std::cmp::Ordering::Greater,
                (true, true) => sa.cost.total_cmp(&sb.cost),
                (false, false) => self.score(sa).total_cmp(&self.score(sb)),
            }
        });
        let first = *order.first().ok_or(TunerError::NoCandidate)?;
        let visited = (0..configs.len())
            .filter(|&k| self.acceptable(&scored[k]))
            .map(|k| (configs[k].clone(), scored[k], Some(k)))
            .collect();
        Ok(Search {
            pick: first,
            config: configs[first].clone(),
            steady: scored[first],
            ends: [count, candidates.len(), candidates.len() + anchors.len()],
            configs,
            origins,
            order,
            windows: scored.iter().map(|s| u64::from(s.windows)).sum(),
            scored,
            anchors,
            refined: 0,
            spent: 0,
            visited,
        })
    }

    /// Descents from the (up to) three best acceptable configurations share half the budget:
    /// the landscape has many local optima. They start from different sources where they can
    /// (the policy's candidates, the safe history, the anchors, the random restarts): the
    /// policy's 32 noisy candidates lie in one basin and would otherwise take every start.
    pub(super) fn descend_from_the_best(&self, search: &mut Search) {
        let source = |k: usize| search.ends.iter().position(|&end| k < end).unwrap_or(3);
        let feasible: Vec<usize> = search
            .order
            .iter()
            .copied()
            .filter(|&k| self.acceptable(&search.scored[k]))
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
        let first = search.pick;
        for &k in &starts {
            let d = descend(
                self.workflow,
                search.configs[k].clone(),
                search.scored[k],
                &|s| self.acceptable(s),
                &self.evaluation,
                self.options.refine_budget / (2 * starts.len()),
                self.misses,
            );
            search.add(&d, &self.evaluation);
            let from = d.path.iter().skip(1);
            search
                .visited
                .extend(from.map(|(c, s)| (c.clone(), *s, Some(k))));
            if d.steady.cost < search.steady.cost
                || (k == first && d.steady.cost <= search.steady.cost)
            {
                (search.pick, search.config, search.steady) = (k, d.config, d.steady);
            }
        }
    }

    /// No candidate is acceptable (the policy and the safe history both fall short at this
    /// load): climb back to QoS from the closest one, then descend from there.
    pub(super) fn repair_if_short(&self, search: &mut Search) {
        if self.acceptable(&search.steady) {
            return;
        }
        let budget = self.options.refine_budget;
        let r = repair(
            self.workflow,
            search.config.clone(),
            search.steady,
            &|s| self.acceptable(s),
            &|s| self.score(s),
            &self.evaluation,
            budget / 2,
        );
        search.add(&r, &self.evaluation);
        (search.config, search.steady) = (r.config, r.steady);
        if self.acceptable(&search.steady) {
            let d = descend(
                self.workflow,
                search.config.clone(),
                search.steady,
                &|s| self.acceptable(s),
                &self.evaluation,
                budget / 4,
                self.misses,
            );
            search.add(&d, &self.evaluation);
            let first = search.order.first().copied();
            search
                .visited
                .extend(d.path.iter().map(|(c, s)| (c.clone(), *s, first)));
            (search.config, search.steady) = (d.config, d.steady);
        }
    }

    /// Iterated local search: when the best is a local optimum already (typically the
    /// session's incumbent), kick it with a few random moves and descend again; keep what is
    /// cheaper.
    pub(super) fn kick(&self, search: &mut Search, rng: &mut Rng) {
        let budget = self.options.refine_budget;
        let mut left = budget.saturating_sub(search.spent);
        while left > 0 && self.acceptable(&search.steady) {
            let mut kicked = search.config.clone();
            for _ in 0..KICK_MOVES {
                let around = moves(self.workflow, &kicked);
                if around.is_empty() {
                    break;
                }
                kicked = around[rng.below(around.len())].clone();
            }
            let kicked_steady = self.evaluation.steady(self.workflow, &kicked);
            let d = descend(
                self.workflow,
                kicked,
                kicked_steady,
                &|s| self.acceptable(s),
                &self.evaluation,
                left.min(budget / 4),
                self.misses,
            );
            let before = search.spent;
            search.add(&d, &self.evaluation);
            search.refined += 1;
            search.windows += u64::from(kicked_steady.windows);
            let spent = search.spent - before + 1;
            search.spent += 1;
            left = left.saturating_sub(spent.max(KICK_MOVES));
            let pick = Some(search.pick);
            search.visited.extend(
                d.path
                    .iter()
                    .filter(|(_, s)| self.acceptable(s))
                    .map(|(c, s)| (c.clone(), *s, pick)),
            );
            if self.acceptable(&d.steady) && d.steady.cost < search.steady.cost {
                (search.config, search.steady) = (d.config, d.steady);
            }
        }
    }

    /// The held-out check and the confirmation (`checks`) over what the search stood on,
    /// cheapest first, never a configuration to avoid: the index in `search.visited` of the
    /// choice and the share of windows it is expected to meet QoS in.
    pub(super) fn check(
        &self,
        input: &PlanInput<'_>,
        search: &mut Search,
        confirmations: &mut Tally,
        rng: &mut Rng,
    ) -> Result<Option<(usize, f64)>, TunerError> {
        search
            .visited
            .retain(|(c, s, _)| self.acceptable(s) && !input.avoid.contains(c));
        search.visited.sort_by(|a, b| a.1.cost.total_cmp(&b.1.cost));
        search.visited.dedup_by(|a, b| a.0 == b.0);
        self.cancelled()?;
        let (verdict_of, evaluations, windows) = check_and_choose(
            self,
            &search.visited,
            &search.anchors,
            &input.window.config,
            confirmations,
            rng,
        );
        // A cancelled check judged every configuration infeasible: nothing it chose holds.
        self.cancelled()?;
        search.refined += evaluations;
        search.windows += windows;
        Ok(verdict_of)
    }
}

impl Search {
    /// Counts a descent's (or a repair's) evaluations, its windows and its spending.
    fn add(&mut self, d: &Descent, evaluation: &Evaluation) {
        let full = u64::from(evaluation.full_windows().max(1));
        self.refined += d.evaluations;
        self.spent += usize::try_from(d.windows.div_ceil(full)).unwrap_or(usize::MAX);
        self.windows += d.windows;
    }

    /// The plan: the configuration the checks chose (else where the search stands, never one
    /// to avoid while a screened one is not), how it came about, and the twin's verdict.
    pub(super) fn finish(
        mut self,
        input: &PlanInput<'_>,
        candidates: &[Candidate],
        verdict_of: Option<(usize, f64)>,
        weights: Vec<f32>,
    ) -> Plan {
        let mut expected_pass_rate = None;
        if let Some((k, rate)) = verdict_of {
            let v = &self.visited[k];
            (self.config, self.steady, expected_pass_rate) = (v.0.clone(), v.1, Some(rate));
            self.pick = v.2.unwrap_or(self.pick);
        }
        // Nothing acceptable was found and the search ended on a configuration to avoid: the
        // best candidate that is not one.
        let avoid = input.avoid;
        if avoid.contains(&self.config)
            && let Some(&k) = self
                .order
                .iter()
                .find(|&&k| !avoid.contains(&self.configs[k]))
        {
            (self.pick, self.config, self.steady) = (k, self.configs[k].clone(), self.scored[k]);
            expected_pass_rate = None;
        }
        let (replaced, band) = match self.origins[self.pick] {
            Some(k) => (candidates[k].replaced, candidates[k].band),
            None => (false, candidates.first().and_then(|c| c.band)),
        };
        let steady = self.steady;
        Plan {
            actions: input.workflow.actions_of(&self.config),
            config: self.config,
            weights,
            ses_replaced: replaced,
            band,
            verdict: Some(Verdict::of(&steady, input.qos)),
            screened: self.configs.len() + self.refined,
            twin_windows: self.windows,
            reused_windows: 0,
            expected_pass_rate,
        }
    }
}
