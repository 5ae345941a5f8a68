//! When the twin stays wrong: grow the bottleneck the telemetry shows, as model-free FIRM does,
//! rather than trust the twin's ranking. One knob of one function moves per window, chosen from
//! what the window measured:
//!
//! 1. calls lost to memory (OOM kills, pods that cannot start): that function's memory x1.5;
//! 2. calls rejected at the concurrency limit: that function's replicas +1 (at the most
//!    replicas: concurrency +1);
//! 3. otherwise the slowest function (its p75) that can still grow: CPU x1.25 (at least
//!    +100 m; at the most CPU: replicas +1).

use faasconf_core::config::Knob;
use faasconf_core::telemetry::WindowReport;
use faasconf_core::{Workflow, WorkflowConfig};

/// What grew, for the session's news.
#[derive(Debug, Clone, PartialEq)]
pub struct Grown {
    /// The configuration with the bottleneck grown.
    pub config: WorkflowConfig,
    /// The function.
    pub function: String,
    /// The knob.
    pub knob: Knob,
}

/// The window's configuration with its bottleneck grown (see the module doc); `None` when the
/// window does not match the workflow or nothing can grow.
pub fn grow_bottleneck(workflow: &Workflow, window: &WindowReport) -> Option<Grown> {
    let n = workflow.len();
    if window.functions.len() != n || window.config.0.len() != n {
        return None;
    }
    let most =
        |count: &dyn Fn(usize) -> u64| (0..n).filter(|&j| count(j) > 0).max_by_key(|&j| count(j));
    let f = &window.functions;
    let mut order: Vec<(usize, [Knob; 2])> = Vec::new();
    if let Some(j) = most(&|j| f[j].oom_failures) {
        order.push((j, [Knob::MemoryMib, Knob::MemoryMib]));
    }
    if let Some(j) = most(&|j| f[j].rejections) {
        order.push((j, [Knob::Replicas, Knob::Concurrency]));
    }
    let mut slowest: Vec<usize> = (0..n).collect();
    slowest.sort_by(|&a, &b| {
        f[b].latency_p75_seconds
            .total_cmp(&f[a].latency_p75_seconds)
    });
    order.extend(
        slowest
            .into_iter()
            .map(|j| (j, [Knob::CpuMillis, Knob::Replicas])),
    );
    for (j, knobs) in order {
        for knob in knobs {
            let range = workflow.functions[j].bounds.range(knob);
            let now = window.config.0[j].get(knob);
            let next = match knob {
                Knob::MemoryMib => now.saturating_mul(3) / 2,
                Knob::CpuMillis => (now.saturating_mul(5) / 4).max(now.saturating_add(100)),
                Knob::Replicas | Knob::Concurrency => now.saturating_add(1),
            }
            .clamp(range.min, range.max);
            if next > now {
                let mut config = window.config.clone();
                config.0[j].set(knob, next);
                return Some(Grown {
                    config,
                    function: workflow.functions[j].name.clone(),
                    knob,
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasconf_core::catalog;
    use faasconf_twin::{Twin, TwinOptions, Workload};

    fn window(workflow: &Workflow, level: f64, users: u32) -> WindowReport {
        let config = workflow
            .config_from_actions(&vec![[level; 4]; workflow.len()])
            .expect("in bounds");
        let mut twin = Twin::new(
            workflow.clone(),
            config,
            Workload::ClosedLoop { users },
            TwinOptions::default(),
        )
        .expect("valid");
        twin.run_window();
        twin.run_window()
    }

    #[test]
    fn rejections_grow_replicas_and_memory_loss_grows_memory_first() {
        let workflow = catalog::builtin("parallel").expect("built in");
        let mut w = window(&workflow, 0.3, 10);
        for f in &mut w.functions {
            f.rejections = 0;
            f.oom_failures = 0;
        }
        w.functions[2].rejections = 5;
        let grown = grow_bottleneck(&workflow, &w).expect("room to grow");
        assert_eq!(grown.function, workflow.functions[2].name);
        assert_eq!(grown.knob, Knob::Replicas);
        assert_eq!(grown.config.0[2].replicas, w.config.0[2].replicas + 1);
        w.functions[1].oom_failures = 1;
        let grown = grow_bottleneck(&workflow, &w).expect("room to grow");
        assert_eq!(
            (grown.function.as_str(), grown.knob),
            (workflow.functions[1].name.as_str(), Knob::MemoryMib)
        );
        assert!(grown.config.0[1].memory_mib > w.config.0[1].memory_mib);
        // Everything else is as it was.
        for j in (0..workflow.len()).filter(|&j| j != 1) {
            assert_eq!(grown.config.0[j], w.config.0[j]);
        }
    }

    #[test]
    fn without_loss_the_slowest_function_gets_cpu_and_at_the_top_nothing_grows() {
        let workflow = catalog::builtin("parallel").expect("built in");
        let mut w = window(&workflow, 0.3, 10);
        for f in &mut w.functions {
            f.rejections = 0;
            f.oom_failures = 0;
        }
        let slowest = (0..workflow.len())
            .max_by(|&a, &b| {
                w.functions[a]
                    .latency_p75_seconds
                    .total_cmp(&w.functions[b].latency_p75_seconds)
            })
            .expect("functions");
        let grown = grow_bottleneck(&workflow, &w).expect("room to grow");
        assert_eq!(grown.knob, Knob::CpuMillis);
        assert_eq!(grown.function, workflow.functions[slowest].name);
        let top = window(&workflow, 1.0, 10);
        let mut top = top;
        for f in &mut top.functions {
            f.rejections = 0;
            f.oom_failures = 0;
        }
        assert!(grow_bottleneck(&workflow, &top).is_none());
    }
}
