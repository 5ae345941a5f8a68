//! Search on the twin: steady-state evaluation of a configuration (several seeds, many
//! windows) and first-improvement coordinate descent towards the cheapest configuration that
//! still meets a QoS target, and the twin's [`Verdict`] on one configuration. The planner
//! refines its proposals with it before anything touches the cluster; the reference search
//! ([`crate::oracle`]) uses it from random starts.

use std::sync::Arc;

use faasconf_core::cancel::Cancel;
use faasconf_core::rng::Rng;
use faasconf_core::{Knob, Qos, Workflow, WorkflowConfig};
use faasconf_twin::parallel::{parallel_map, parallel_until};
use faasconf_twin::{Twin, TwinOptions, Workload};
use serde::{Deserialize, Serialize};

use crate::memo::Memo;

/// Steady-state figures of one configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Steady {
    /// Request-weighted mean end-to-end latency, seconds.
    pub e2e_mean_seconds: f64,
    /// Successful / total over every window.
    pub success_ratio: f64,
    /// Cost.
    pub cost: f64,
    /// Windows simulated.
    pub windows: u32,
    /// Of them, those that met QoS on their own (set by [`Evaluation::steady`] for its QoS).
    pub windows_met: u32,
}

impl Steady {
    /// Share of windows that met QoS on their own.
    pub fn pass_rate(&self) -> f64 {
        f64::from(self.windows_met) / f64::from(self.windows.max(1))
    }

    /// Whether QoS is met in steady state.
    pub fn feasible(&self, qos: &Qos) -> bool {
        self.e2e_mean_seconds < qos.mean_latency_seconds
            && self.success_ratio >= qos.min_success_ratio
    }
}

/// The twin's verdict on one configuration (what a screened recommendation reports).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Mean end-to-end latency, seconds.
    pub e2e_mean_seconds: f64,
    /// Success ratio.
    pub success_ratio: f64,
    /// Cost of the configuration.
    pub cost: f64,
    /// Whether every window met QoS.
    pub qos_met: bool,
}

impl Verdict {
    /// The verdict of steady-state figures against `qos`.
    pub fn of(steady: &Steady, qos: &Qos) -> Self {
        Self {
            e2e_mean_seconds: steady.e2e_mean_seconds,
            success_ratio: steady.success_ratio,
            cost: steady.cost,
            qos_met: steady.feasible(qos),
        }
    }
}

/// How configurations are evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Closed-loop users.
    pub users: u32,
    /// Open loop: Poisson arrivals at this rate instead of `users` closed-loop users.
    #[serde(default)]
    pub arrivals_per_second: Option<f64>,
    /// Steady windows per seed (after one warm-up window).
    pub windows: u32,
    /// Twin seeds; figures aggregate over all of them.
    pub seeds: Vec<u64>,
    /// Window length, seconds.
    pub window_seconds: f64,
    /// Threads for batches of evaluations (0: every core).
    pub threads: usize,
    /// The QoS each window is judged against for [`Steady::windows_met`].
    pub qos: Qos,
    /// Raised: every evaluation from then on returns at once as infeasible (no window met), so
    /// a search winds down in moments; its caller reports the cancellation.
    #[serde(skip)]
    pub cancel: Cancel,
    /// Evaluations remembered from earlier (none: simulate every one). Figures are the same
    /// either way: the twin is deterministic given its seeds ([`crate::memo`]).
    #[serde(skip)]
    pub memo: Option<Arc<Memo>>,
}

impl Evaluation {
    /// Steady windows one evaluation simulates in full (every seed).
    pub fn full_windows(&self) -> u32 {
        self.windows.saturating_mul(self.seeds.len() as u32)
    }

    /// The most windows of a full evaluation that may miss QoS while `pass_rate` of them still
    /// meet it (`None`: not even a perfect record reaches `pass_rate`).
    pub fn misses_allowed(&self, pass_rate: f64) -> Option<u32> {
        let n = self.full_windows();
        (0..=n)
            .rev()
            .find(|&m| f64::from(n - m) / f64::from(n.max(1)) >= pass_rate)
    }

    /// Function calls one steady window of `config` simulates (a warm-up window, then one
    /// counted; on the first seed): what a window of this evaluation costs.
    pub fn calls_per_window(&self, workflow: &Workflow, config: &WorkflowConfig) -> u64 {
        let seed = self.seeds.first().copied().unwrap_or(0);
        let options = TwinOptions {
            window_seconds: self.window_seconds,
            seed,
        };
        let Ok(mut twin) = Twin::new(workflow.clone(), config.clone(), self.workload(), options)
        else {
            return 0;
        };
        twin.run_window();
        let w = twin.run_window();
        w.functions.iter().map(|f| f.requests).sum()
    }

    /// The twin's workload: Poisson arrivals when open loop, else closed-loop users.
    fn workload(&self) -> Workload {
        match self.arrivals_per_second {
            Some(requests_per_second) => Workload::Poisson {
                requests_per_second,
            },
            None => Workload::ClosedLoop { users: self.users },
        }
    }

    /// Figures of `config`.
    pub fn steady(&self, workflow: &Workflow, config: &WorkflowConfig) -> Steady {
        self.steady_until(workflow, config, None)
    }

    /// Figures of `config`, given up once more than `misses` windows have missed QoS: such a
    /// configuration cannot reach the pass rate `misses` was allowed for
    /// ([`Self::misses_allowed`]), and its figures cover the windows simulated until then
    /// (`windows` says how many; their pass rate is below that bar too).
    pub fn steady_until(
        &self,
        workflow: &Workflow,
        config: &WorkflowConfig,
        misses: Option<u32>,
    ) -> Steady {
        let Some(memo) = &self.memo else {
            return self.simulate(workflow, config, misses);
        };
        if let Some(s) = memo.get(workflow, self, config, misses) {
            return s;
        }
        let s = self.simulate(workflow, config, misses);
        if !self.cancel.is_cancelled() {
            memo.put(workflow, self, config, misses, s);
        }
        s
    }

    /// [`Self::steady_until`] on the twin, every window simulated.
    fn simulate(
        &self,
        workflow: &Workflow,
        config: &WorkflowConfig,
        misses: Option<u32>,
    ) -> Steady {
        let (mut latency, mut total, mut ok, mut met, mut run) = (0.0, 0u64, 0u64, 0u32, 0u32);
        let windows = self.full_windows();
        let failed = Steady {
            e2e_mean_seconds: f64::INFINITY,
            success_ratio: 0.0,
            cost: config.cost(),
            windows,
            windows_met: 0,
        };
        'seeds: for &seed in &self.seeds {
            if self.cancel.is_cancelled() {
                return failed;
            }
            let workload = self.workload();
            let options = TwinOptions {
                window_seconds: self.window_seconds,
                seed,
            };
            let Ok(mut twin) = Twin::new(workflow.clone(), config.clone(), workload, options)
            else {
                return failed;
            };
            twin.run_window();
            for _ in 0..self.windows {
                if self.cancel.is_cancelled() {
                    return failed;
                }
                let w = twin.run_window();
                run += 1;
                met += u32::from(self.qos.met(&w.workflow));
                latency += w.workflow.mean_latency_seconds * w.workflow.total_requests as f64;
                total += w.workflow.total_requests;
                ok += w.workflow.successful_requests;
                if misses.is_some_and(|m| run - met > m) {
                    break 'seeds;
                }
            }
        }
        let t = total.max(1) as f64;
        Steady {
            e2e_mean_seconds: if total == 0 {
                f64::INFINITY
            } else {
                latency / t
            },
            success_ratio: ok as f64 / t,
            cost: config.cost(),
            windows: run,
            windows_met: met,
        }
    }

    /// Figures of every configuration, in order.
    pub fn steady_all(&self, workflow: &Workflow, configs: &[WorkflowConfig]) -> Vec<Steady> {
        self.steady_each(workflow, configs, None)
    }

    /// Figures of every configuration, in order, each given up after `misses` missed windows
    /// ([`Self::steady_until`]).
    pub fn steady_each(
        &self,
        workflow: &Workflow,
        configs: &[WorkflowConfig],
        misses: Option<u32>,
    ) -> Vec<Steady> {
        parallel_map(configs, self.threads, |c| {
            self.steady_until(workflow, c, misses)
        })
    }

    /// Figures of `configs` in order up to and including the first `acceptable` one (of all
    /// when none is), each given up after `misses` missed windows ([`Self::steady_until`]).
    /// Every core works on the next configurations meanwhile; what returns does not depend on
    /// their timing.
    pub fn until_acceptable(
        &self,
        workflow: &Workflow,
        configs: &[WorkflowConfig],
        misses: Option<u32>,
        acceptable: &(dyn Fn(&Steady) -> bool + Sync),
    ) -> Vec<Steady> {
        parallel_until(
            configs,
            self.threads,
            |c| self.steady_until(workflow, c, misses),
            acceptable,
        )
    }
}

/// The moves from `config`: every one-knob move (CPU -200/-100/-50/+50/+100 m, memory
/// -256/-64/+64 MiB, replicas ±1, concurrency ±1), one replica fewer with 1-3 more concurrency
/// (capacity kept, cost cut), and moves of every function at once: CPU ×0.9, ×0.95 or ×1.1,
/// memory +64 or +256 MiB, one more replica, one more concurrency (within bounds).
pub fn moves(workflow: &Workflow, config: &WorkflowConfig) -> Vec<WorkflowConfig> {
    let steps: [(Knob, &[i64]); 4] = [
        (Knob::CpuMillis, &[-200, -100, -50, 50, 100]),
        (Knob::MemoryMib, &[-256, -64, 64]),
        (Knob::Replicas, &[-1, 1]),
        (Knob::Concurrency, &[-1, 1]),
    ];
    let mut out = Vec::new();
    for (j, spec) in workflow.functions.iter().enumerate() {
        for (knob, deltas) in steps {
            let range = spec.bounds.range(knob);
            for d in deltas {
                let now = i64::from(config.0[j].get(knob));
                let next = (now + d).clamp(i64::from(range.min), i64::from(range.max));
                if next != now {
                    let mut c = config.clone();
                    c.0[j].set(knob, next as u32);
                    out.push(c);
                }
            }
        }
        let (replicas, concurrency) = (
            spec.bounds.range(Knob::Replicas),
            spec.bounds.range(Knob::Concurrency),
        );
        let f = config.0[j];
        if f.replicas > replicas.min {
            for more in 1..=3 {
                let c = (f.concurrency + more).min(concurrency.max);
                if c != f.concurrency {
                    let mut next = config.clone();
                    next.0[j].replicas = f.replicas - 1;
                    next.0[j].concurrency = c;
                    out.push(next);
                }
            }
        }
    }
    // Moves of every function at once: CPU scaled down (a cheaper balanced configuration) or
    // up, memory, replicas or concurrency up (the way out of a plateau where one function's
    // change alone cannot help, e.g. when every function lacks memory).
    type To = fn(u32) -> i64;
    let global: [(Knob, To); 7] = [
        (Knob::CpuMillis, |v| (f64::from(v) * 0.95).round() as i64),
        (Knob::CpuMillis, |v| (f64::from(v) * 0.9).round() as i64),
        (Knob::CpuMillis, |v| (f64::from(v) * 1.1).round() as i64),
        (Knob::MemoryMib, |v| i64::from(v) + 64),
        (Knob::MemoryMib, |v| i64::from(v) + 256),
        (Knob::Replicas, |v| i64::from(v) + 1),
        (Knob::Concurrency, |v| i64::from(v) + 1),
    ];
    for (knob, to) in global {
        let mut next = config.clone();
        for (f, spec) in next.0.iter_mut().zip(&workflow.functions) {
            let range = spec.bounds.range(knob);
            f.set(
                knob,
                to(f.get(knob)).clamp(i64::from(range.min), i64::from(range.max)) as u32,
            );
        }
        if next != *config {
            out.push(next);
        }
    }
    out.dedup();
    out
}

/// `count` random configurations over the whole space: half with every knob drawn
/// independently, half balanced (one draw per knob, every function near it).
pub fn random_configs(workflow: &Workflow, count: usize, rng: &mut Rng) -> Vec<WorkflowConfig> {
    let n = workflow.len();
    (0..count)
        .filter_map(|i| {
            let actions: Vec<[f64; 4]> = if i % 2 == 0 {
                (0..n)
                    .map(|_| [rng.uniform(), rng.uniform(), rng.uniform(), rng.uniform()])
                    .collect()
            } else {
                let base = [rng.uniform(), rng.uniform(), rng.uniform(), rng.uniform()];
                (0..n)
                    .map(|_| base.map(|b| (b + 0.1 * rng.normal()).clamp(0.0, 1.0)))
                    .collect()
            };
            workflow.config_from_actions(&actions).ok()
        })
        .collect()
}

/// How far steady-state figures are from QoS: the relative latency excess plus ten times the
/// success-ratio gap (0 when both are met).
pub fn shortfall(v: &Steady, qos: &Qos) -> f64 {
    (v.e2e_mean_seconds / qos.mean_latency_seconds - 1.0).max(0.0)
        + (qos.min_success_ratio - v.success_ratio).max(0.0) * 10.0
}

/// What a descent did.
#[derive(Debug, Clone, PartialEq)]
pub struct Descent {
    /// Where it ended.
    pub config: WorkflowConfig,
    /// Its figures.
    pub steady: Steady,
    /// Configurations evaluated.
    pub evaluations: usize,
    /// Twin windows simulated for them (steady windows; fewer than `evaluations` full ones
    /// where evaluations gave up early).
    pub windows: u64,
    /// Every configuration it stood on, the start first and `config` last.
    pub path: Vec<(WorkflowConfig, Steady)>,
}

/// From an acceptable `start`, repeatedly takes the cheapest one-knob move that is cheaper and
/// still `acceptable`, until none is or `budget` evaluations are spent.
///
/// The moves are evaluated cheapest first and only up to the first acceptable one; with
/// `misses` (the misses `acceptable`'s pass rate allows, [`Evaluation::misses_allowed`]) an
/// evaluation gives up once it cannot pass. Either way the path is the one a full evaluation
/// of every move would take; the budget counts an evaluation that gave up as the share of a
/// full one it simulated.
pub fn descend(
    workflow: &Workflow,
    start: WorkflowConfig,
    start_steady: Steady,
    acceptable: &(dyn Fn(&Steady) -> bool + Sync),
    evaluation: &Evaluation,
    budget: usize,
    misses: Option<u32>,
) -> Descent {
    let (mut current, mut steady) = (start, start_steady);
    let full = u64::from(evaluation.full_windows().max(1));
    let (mut evaluations, mut windows) = (0, 0u64);
    let mut path = vec![(current.clone(), steady)];
    loop {
        let spent = usize::try_from(windows.div_ceil(full)).unwrap_or(usize::MAX);
        let mut candidates = moves(workflow, &current);
        candidates.retain(|c| c.cost() < steady.cost);
        candidates.sort_by(|a, b| a.cost().total_cmp(&b.cost()));
        candidates.truncate(budget.saturating_sub(spent));
        if candidates.is_empty() {
            break;
        }
        let scored = evaluation.until_acceptable(workflow, &candidates, misses, acceptable);
        evaluations += scored.len();
        windows += scored.iter().map(|s| u64::from(s.windows)).sum::<u64>();
        let Some((c, s)) = candidates
            .into_iter()
            .zip(scored)
            .find(|(_, s)| acceptable(s))
        else {
            break;
        };
        path.push((c.clone(), s));
        (current, steady) = (c, s);
    }
    Descent {
        config: current,
        steady,
        evaluations,
        windows,
        path,
    }
}

/// From a `start` that is not `acceptable`, repeatedly takes the move with the lowest `score`
/// (lower is closer to acceptable) until an acceptable configuration is reached (the cheapest
/// acceptable move of a step is taken), no move scores better, or `budget` evaluations are
/// spent. The way back to feasibility when every candidate falls short.
pub fn repair(
    workflow: &Workflow,
    start: WorkflowConfig,
    start_steady: Steady,
    acceptable: &(dyn Fn(&Steady) -> bool + Sync),
    score: &dyn Fn(&Steady) -> f64,
    evaluation: &Evaluation,
    budget: usize,
) -> Descent {
    let (mut current, mut steady) = (start, start_steady);
    let mut evaluations = 0;
    let mut path = vec![(current.clone(), steady)];
    while !acceptable(&steady) {
        let mut candidates = moves(workflow, &current);
        let left = budget.saturating_sub(evaluations);
        if candidates.len() > left {
            // Not every move can be tried (a large workflow on a bounded decision): the ones
            // that add the most first — the moves of every function at once, then the largest
            // single steps up — rather than the first functions' moves.
            candidates.sort_by(|a, b| b.cost().total_cmp(&a.cost()));
        }
        candidates.truncate(left);
        if candidates.is_empty() {
            break;
        }
        evaluations += candidates.len();
        let scored: Vec<(WorkflowConfig, Steady)> = candidates
            .iter()
            .cloned()
            .zip(evaluation.steady_all(workflow, &candidates))
            .collect();
        let next = scored
            .iter()
            .filter(|(_, s)| acceptable(s))
            .min_by(|a, b| a.1.cost.total_cmp(&b.1.cost))
            .or_else(|| {
                scored
                    .iter()
                    .min_by(|a, b| score(&a.1).total_cmp(&score(&b.1)))
            });
        let Some((c, s)) = next.cloned() else { break };
        if !acceptable(&s) && score(&s) >= score(&steady) {
            break;
        }
        path.push((c.clone(), s));
        (current, steady) = (c, s);
    }
    Descent {
        config: current,
        steady,
        evaluations,
        windows: evaluations as u64 * u64::from(evaluation.full_windows()),
        path,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use faasconf_core::catalog::builtin;

    fn evaluation(qos: Qos) -> Evaluation {
        Evaluation {
            arrivals_per_second: None,
            users: 10,
            windows: 2,
            seeds: vec![3],
            window_seconds: 20.0,
            threads: 0,
            qos,
            cancel: Default::default(),
            memo: None,
        }
    }

    #[test]
    fn a_window_costs_the_calls_of_every_function_at_the_load_evaluated() {
        let w = builtin("parallel").unwrap();
        let config = w
            .config_from_actions(&vec![[0.9, 0.5, 0.6, 0.6]; w.len()])
            .unwrap();
        let at = |arrivals_per_second| Evaluation {
            arrivals_per_second,
            ..evaluation(Qos::default())
        };
        // 20 s windows at 5 requests/s: about 100 requests, each calling one function or more.
        let five = at(Some(5.0)).calls_per_window(&w, &config);
        assert!(five >= 80, "{five}");
        let fifty = at(Some(50.0)).calls_per_window(&w, &config);
        assert!(fifty > 5 * five, "{fifty} against {five}");
        // Deterministic given the evaluation's seeds.
        assert_eq!(at(Some(5.0)).calls_per_window(&w, &config), five);
    }

    #[test]
    fn open_loop_evaluation_simulates_arrivals_that_do_not_wait_for_answers() {
        let w = builtin("parallel").unwrap();
        let qos = Qos::default();
        let config = w
            .config_from_actions(&vec![[0.9, 0.5, 0.6, 0.6]; w.len()])
            .unwrap();
        // Closed loop, 10 users: they wait for their answers, and QoS is met (as above).
        let closed = evaluation(qos).steady(&w, &config);
        assert!(closed.feasible(&qos), "{closed:?}");
        // The same configuration under arrivals far beyond what 10 users send: the queue grows.
        let open = Evaluation {
            arrivals_per_second: Some(30.0),
            ..evaluation(qos)
        }
        .steady(&w, &config);
        assert!(!open.feasible(&qos), "{open:?}");
        // A trickle of arrivals is easy.
        let trickle = Evaluation {
            arrivals_per_second: Some(0.2),
            ..evaluation(qos)
        }
        .steady(&w, &config);
        assert!(trickle.feasible(&qos), "{trickle:?}");
        // Overloaded, the platform sheds calls (HTTP 429 at the concurrency limits).
        assert!(
            open.success_ratio < trickle.success_ratio,
            "{open:?} vs {trickle:?}"
        );
    }

    #[test]
    fn an_evaluation_gives_up_only_on_what_cannot_pass() {
        let w = builtin("parallel").unwrap();
        let qos = Qos::default();
        let e = Evaluation {
            windows: 10,
            seeds: vec![1, 2],
            ..evaluation(qos)
        };
        for rate in [0.0, 0.3, 0.85, 0.9, 0.95, 1.0] {
            let m = e.misses_allowed(rate).unwrap();
            assert!(f64::from(20 - m) / 20.0 >= rate, "{rate}: {m} misses pass");
            assert!(
                m == 20 || f64::from(19 - m) / 20.0 < rate,
                "{rate}: {m} is the most"
            );
        }
        assert_eq!(e.misses_allowed(0.9), Some(2));
        assert_eq!(e.misses_allowed(1.01), None);
        let config = |a: [f64; 4]| w.config_from_actions(&vec![a; w.len()]).unwrap();
        // A starved configuration misses window after window: given up on the third miss, and
        // what was simulated is below the bar too.
        let starved = e.steady_until(&w, &config([0.0; 4]), Some(2));
        assert!(starved.windows < 20, "{starved:?}");
        assert_eq!(starved.windows - starved.windows_met, 3, "{starved:?}");
        assert!(starved.pass_rate() < 0.9);
        // A generous one is evaluated in full, exactly as without giving up.
        let generous = config([0.9, 0.5, 0.6, 0.6]);
        assert_eq!(
            e.steady_until(&w, &generous, Some(2)),
            e.steady(&w, &generous)
        );
    }

    #[test]
    fn descent_only_takes_cheaper_acceptable_steps_and_records_its_path() {
        let w = builtin("parallel").unwrap();
        let qos = Qos::default();
        let e = evaluation(qos);
        let start = w
            .config_from_actions(&vec![[0.9, 0.5, 0.6, 0.6]; w.len()])
            .unwrap();
        let s = e.steady(&w, &start);
        let acceptable = |s: &Steady| s.feasible(&qos);
        assert!(
            acceptable(&s),
            "a generous start meets QoS at 10 users: {s:?}"
        );
        let d = descend(&w, start.clone(), s, &acceptable, &e, 150, None);
        assert!(d.evaluations <= 150);
        // Giving up on moves that cannot pass takes the same path for fewer windows (with a
        // budget that does not bind: a binding one goes further on the windows saved).
        let strict = |s: &Steady| s.feasible(&qos) && s.pass_rate() >= 0.75;
        let misses = e.misses_allowed(0.75);
        assert_eq!(misses, Some(0), "2 windows: one miss is already below 75%");
        let quick = descend(&w, start.clone(), s, &strict, &e, usize::MAX, misses);
        let full = descend(&w, start.clone(), s, &strict, &e, usize::MAX, None);
        assert_eq!(quick.path, full.path);
        assert!(
            quick.windows < full.windows,
            "{} vs {}",
            quick.windows,
            full.windows
        );
        assert!(
            d.steady.cost < s.cost,
            "some move is cheaper and still feasible"
        );
        assert_eq!(d.path.first().unwrap().0, start);
        assert_eq!(d.path.last().unwrap().0, d.config);
        for pair in d.path.windows(2) {
            assert!(pair[1].1.cost < pair[0].1.cost && acceptable(&pair[1].1));
        }
    }

    #[test]
    fn repair_climbs_from_a_starved_configuration_back_to_qos() {
        let w = builtin("parallel").unwrap();
        let qos = Qos::default();
        let e = evaluation(qos);
        // Some CPU but one replica of concurrency one everywhere: requests are rejected.
        let start = w
            .config_from_actions(&vec![[0.6, 0.3, 0.0, 0.0]; w.len()])
            .unwrap();
        let s = e.steady(&w, &start);
        let acceptable = |s: &Steady| s.feasible(&qos);
        assert!(!acceptable(&s), "the start misses QoS: {s:?}");
        let score = |s: &Steady| shortfall(s, &qos);
        let r = repair(&w, start, s, &acceptable, &score, &e, 3000);
        assert!(
            acceptable(&r.steady),
            "repaired within budget: {:?} after {}",
            r.steady,
            r.evaluations
        );
        for pair in r.path.windows(2) {
            assert!(
                acceptable(&pair[1].1) || score(&pair[1].1) < score(&pair[0].1),
                "every step gets closer"
            );
        }
        assert_eq!(shortfall(&r.steady, &qos), 0.0);
    }
}
