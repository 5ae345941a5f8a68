//! Search on the twin: steady-state evaluation of a configuration (several seeds, many
//! windows) and first-improvement coordinate descent towards the cheapest configuration that
//! still meets a QoS target. The policy refines its proposals with it before anything touches
//! the cluster; the benchmark's reference optimum uses it from random starts.

use faasconf_core::{Knob, Qos, Workflow, WorkflowConfig};
use faasconf_twin::parallel::parallel_map;
use faasconf_twin::{Twin, TwinOptions, Workload};
use serde::{Deserialize, Serialize};

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
        self.e2e_mean_seconds < qos.mean_latency_seconds && self.success_ratio >= qos.min_success_ratio
    }
}

/// How configurations are evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Closed-loop users.
    pub users: u32,
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
}

impl Evaluation {
    /// Figures of `config`.
    pub fn steady(&self, workflow: &Workflow, config: &WorkflowConfig) -> Steady {
        let (mut latency, mut total, mut ok, mut met) = (0.0, 0u64, 0u64, 0u32);
        let windows = self.windows * self.seeds.len() as u32;
        for &seed in &self.seeds {
            let Ok(mut twin) = Twin::new(workflow.clone(), config.clone(), Workload::ClosedLoop { users: self.users }, TwinOptions { window_seconds: self.window_seconds, seed }) else {
                return Steady { e2e_mean_seconds: f64::INFINITY, success_ratio: 0.0, cost: config.cost(), windows, windows_met: 0 };
            };
            twin.run_window();
            for _ in 0..self.windows {
                let w = twin.run_window();
                met += u32::from(self.qos.met(&w.workflow));
                latency += w.workflow.mean_latency_seconds * w.workflow.total_requests as f64;
                total += w.workflow.total_requests;
                ok += w.workflow.successful_requests;
            }
        }
        let t = total.max(1) as f64;
        Steady { e2e_mean_seconds: if total == 0 { f64::INFINITY } else { latency / t }, success_ratio: ok as f64 / t, cost: config.cost(), windows, windows_met: met }
    }

    /// Figures of every configuration, in order.
    pub fn steady_all(&self, workflow: &Workflow, configs: &[WorkflowConfig]) -> Vec<Steady> {
        parallel_map(configs, self.threads, |c| self.steady(workflow, c))
    }
}

/// The moves from `config`: every one-knob move (CPU -200/-100/-50/+50/+100 m, memory
/// -256/-64/+64 MiB, replicas ±1, concurrency ±1), one replica fewer with 1-3 more concurrency
/// (capacity kept, cost cut), and every function's CPU scaled by 0.95 or 0.9 at once (within
/// bounds).
pub fn moves(workflow: &Workflow, config: &WorkflowConfig) -> Vec<WorkflowConfig> {
    let steps: [(Knob, &[i64]); 4] = [(Knob::CpuMillis, &[-200, -100, -50, 50, 100]), (Knob::MemoryMib, &[-256, -64, 64]), (Knob::Replicas, &[-1, 1]), (Knob::Concurrency, &[-1, 1])];
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
        let (replicas, concurrency) = (spec.bounds.range(Knob::Replicas), spec.bounds.range(Knob::Concurrency));
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
    for factor in [0.95, 0.9] {
        let mut next = config.clone();
        for (f, spec) in next.0.iter_mut().zip(&workflow.functions) {
            let range = spec.bounds.range(Knob::CpuMillis);
            f.cpu_millis = ((f64::from(f.cpu_millis) * factor).round() as u32).clamp(range.min, range.max);
        }
        if next != *config {
            out.push(next);
        }
    }
    out.dedup();
    out
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
}

/// From an acceptable `start`, repeatedly takes the cheapest one-knob move that is cheaper and
/// still `acceptable`, until none is or `budget` evaluations are spent.
pub fn descend(workflow: &Workflow, start: WorkflowConfig, start_steady: Steady, acceptable: &(dyn Fn(&Steady) -> bool + Sync), evaluation: &Evaluation, budget: usize) -> Descent {
    let (mut current, mut steady) = (start, start_steady);
    let mut evaluations = 0;
    loop {
        let mut candidates = moves(workflow, &current);
        candidates.retain(|c| c.cost() < steady.cost);
        candidates.sort_by(|a, b| a.cost().total_cmp(&b.cost()));
        candidates.truncate(budget.saturating_sub(evaluations));
        if candidates.is_empty() {
            break;
        }
        evaluations += candidates.len();
        let scored = evaluation.steady_all(workflow, &candidates);
        let Some((c, s)) = candidates.into_iter().zip(scored).find(|(_, s)| acceptable(s)) else { break };
        (current, steady) = (c, s);
    }
    Descent { config: current, steady, evaluations }
}
