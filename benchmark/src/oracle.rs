//! The reference optimum the policy is judged against: a search on the twin for the cheapest
//! configuration that meets QoS in steady state.
//!
//! Not literally exhaustive (6 functions x 4 knobs is ~10^30 configurations): a random phase
//! over the whole space (half independent knobs, half balanced configurations), then
//! first-improvement coordinate descent (`faasconf_training::search`) from the `starts`
//! cheapest feasible configurations found, moving every knob of every function until no move
//! is cheaper and still feasible. Feasibility aggregates several seeds and windows, so the
//! optimum is not an artefact of one random stream; the result is then checked on other seeds.
//! With `pass_rate` > 0 a configuration must also meet QoS in that share of its windows on
//! their own: the cheapest configuration one could apply for 15 single-window iterations with
//! few violations.

use faasconf_core::rng::Rng;
use faasconf_core::{FunctionConfig, Qos, Workflow, WorkflowConfig};
use faasconf_training::search::{descend, Evaluation, Steady};
use serde::Serialize;

/// Settings of the search.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SearchOptions {
    /// Random configurations.
    pub random: usize,
    /// Starts of the descent (cheapest feasible random ones).
    pub starts: usize,
    /// Windows per seed per evaluation.
    pub windows: u32,
    /// Seeds per evaluation.
    pub seeds: u64,
    /// Seed of the random phase and first twin seed.
    pub seed: u64,
    /// Threads.
    pub threads: usize,
    /// Share of windows that must meet QoS on their own (0: only the aggregate counts).
    pub pass_rate: f64,
}

/// The search's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResult {
    /// Users.
    pub users: u32,
    /// Cheapest feasible configuration found.
    pub best: Option<WorkflowConfig>,
    /// Its figures.
    pub steady: Option<Steady>,
    /// Configurations evaluated.
    pub evaluations: usize,
}

/// Searches at `users`.
pub fn search(workflow: &Workflow, users: u32, qos: &Qos, options: &SearchOptions, progress: &(dyn Fn(&str) + Sync)) -> SearchResult {
    let mut rng = Rng::new(options.seed);
    let n = workflow.len();
    let evaluation = Evaluation { users, windows: options.windows, seeds: (0..options.seeds).map(|k| options.seed + k).collect(), window_seconds: 30.0, threads: options.threads, qos: *qos };
    let randoms: Vec<WorkflowConfig> = (0..options.random)
        .filter_map(|i| {
            let actions: Vec<[f64; 4]> = if i % 2 == 0 {
                (0..n).map(|_| [rng.uniform(), rng.uniform(), rng.uniform(), rng.uniform()]).collect()
            } else {
                let base = [rng.uniform(), rng.uniform(), rng.uniform(), rng.uniform()];
                (0..n).map(|_| base.map(|b| (b + 0.1 * rng.normal()).clamp(0.0, 1.0))).collect()
            };
            workflow.config_from_actions(&actions).ok()
        })
        .collect();
    let mut evaluations = randoms.len();
    let scored = evaluation.steady_all(workflow, &randoms);
    let acceptable = |s: &Steady| s.feasible(qos) && s.pass_rate() >= options.pass_rate;
    let mut feasible: Vec<(WorkflowConfig, Steady)> = randoms.into_iter().zip(scored).filter(|(_, s)| acceptable(s)).collect();
    feasible.sort_by(|a, b| a.1.cost.total_cmp(&b.1.cost));
    progress(&format!("{users} users: {} of {} random configurations feasible", feasible.len(), options.random));
    let mut best: Option<(WorkflowConfig, Steady)> = None;
    for (start, s) in feasible.into_iter().take(options.starts) {
        let d = descend(workflow, start, s, &acceptable, &evaluation, usize::MAX);
        evaluations += d.evaluations;
        progress(&format!("{users} users: descent ended at cost {:.3}", d.steady.cost));
        if best.as_ref().is_none_or(|(_, b)| d.steady.cost < b.cost) {
            best = Some((d.config, d.steady));
        }
    }
    SearchResult { users, steady: best.as_ref().map(|b| b.1), best: best.map(|b| b.0), evaluations }
}

/// A configuration's figures on each of `seeds` (checking a result away from its own seeds).
pub fn verify(workflow: &Workflow, config: &WorkflowConfig, users: u32, windows: u32, seeds: &[u64], qos: &Qos) -> Vec<Steady> {
    seeds.iter().map(|&s| Evaluation { users, windows, seeds: vec![s], window_seconds: 30.0, threads: 1, qos: *qos }.steady(workflow, config)).collect()
}

/// A function configuration as `cpu/mem/replicas/concurrency`.
pub fn describe(c: &FunctionConfig) -> String {
    format!("{}m/{}Mi/x{}/c{}", c.cpu_millis, c.memory_mib, c.replicas, c.concurrency)
}
