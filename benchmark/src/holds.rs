//! What really holds: a method's single-window best re-run on fresh windows of the cluster it was
//! tuned on. One lucky window can make a best; an operator keeps a configuration only if it
//! meets QoS window after window. Per cell: the best's pass rate over fresh windows, and the
//! cheapest configuration the method applied (and saw meet QoS) that holds in at least
//! [`HOLDS`] of them. Every experiment with a fixed load (rq1, rq3, mismatch) judges its cells
//! here; the summary is one table beside the single-window figures.

use std::fmt::Write;

use faasconf_core::{Qos, Workflow, WorkflowConfig};
use faasconf_tuner::search::Evaluation;
use serde::{Deserialize, Serialize};

use crate::protocol::CellResult;

/// Share of fresh windows a configuration must meet QoS in to hold: the bar a session's own
/// windows hold its best to ([`faasconf_tuner::BEST_HOLDS`]).
pub const HOLDS: f64 = faasconf_tuner::BEST_HOLDS;

/// Fresh seeds (7000, 7001, ...) a best is re-run on, and windows per seed: 100 windows.
pub const FRESH: (u32, u32) = (4, 25);

/// What a cell's configurations do on fresh windows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Held {
    /// The single-window best's pass rate (`None`: the cell had no best).
    pub best_pass_rate: Option<f64>,
    /// Cost of the cheapest applied, QoS-meeting configuration that holds in at least
    /// [`HOLDS`] of the fresh windows (`None`: none does).
    pub held_cost: Option<f64>,
}

/// The fresh-window evaluation at `users` closed-loop users: `fresh.0` seeds from 7000,
/// `fresh.1` windows each.
pub fn fresh(users: u32, qos: &Qos, window_seconds: f64, fresh: (u32, u32)) -> Evaluation {
    Evaluation {
        arrivals_per_second: None,
        users,
        windows: fresh.1,
        seeds: (0..u64::from(fresh.0)).map(|s| 7_000 + s).collect(),
        window_seconds,
        threads: 0,
        qos: *qos,
        cancel: Default::default(),
        memo: None,
    }
}

/// Judges `cell` on `cluster` (the workflow as the cluster runs it) with `check`.
pub fn judge(cluster: &Workflow, cell: &CellResult, check: &Evaluation) -> Held {
    let best_pass_rate = cell
        .best_config
        .as_ref()
        .map(|c| check.steady(cluster, c).pass_rate());
    let mut applied: Vec<&WorkflowConfig> = cell
        .iterations
        .iter()
        .filter(|i| i.qos_met)
        .map(|i| &i.config)
        .collect();
    applied.sort_by(|a, b| a.cost().total_cmp(&b.cost()));
    applied.dedup();
    let held_cost = applied
        .into_iter()
        .find(|c| {
            let same_as_best = cell.best_config.as_ref() == Some(*c);
            match (same_as_best, best_pass_rate) {
                (true, Some(p)) => p >= HOLDS,
                _ => check.steady(cluster, c).pass_rate() >= HOLDS,
            }
        })
        .map(WorkflowConfig::cost);
    Held {
        best_pass_rate,
        held_cost,
    }
}

/// One method's fresh-window figures over a set of cells.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldSummary {
    /// The workflow (`all` for every workflow together).
    pub workflow: String,
    /// The method.
    pub method: String,
    /// Cells judged.
    pub judged: usize,
    /// Cells with a single-window best.
    pub with_best: usize,
    /// Mean pass rate of the bests.
    pub mean_best_pass_rate: Option<f64>,
    /// Cells whose best holds.
    pub best_holds: usize,
    /// Cells with a configuration that holds.
    pub holding: usize,
    /// Mean cost of the cheapest holding configuration.
    pub mean_held_cost: Option<f64>,
    /// Mean of `held / oracle - 1` over the cells with both.
    pub held_above_oracle: Option<f64>,
}

fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// The summary of `cells` (already scoped to a workflow and method); `oracle` gives a cell's
/// oracle cost.
pub fn summarise(
    workflow: &str,
    method: &str,
    cells: &[&CellResult],
    oracle: &dyn Fn(&CellResult) -> Option<f64>,
) -> HeldSummary {
    let judged: Vec<(&CellResult, Held)> =
        cells.iter().filter_map(|c| Some((*c, c.held?))).collect();
    HeldSummary {
        workflow: workflow.to_owned(),
        method: method.to_owned(),
        judged: judged.len(),
        with_best: judged
            .iter()
            .filter(|(_, h)| h.best_pass_rate.is_some())
            .count(),
        mean_best_pass_rate: mean(judged.iter().filter_map(|(_, h)| h.best_pass_rate)),
        best_holds: judged
            .iter()
            .filter(|(_, h)| h.best_pass_rate.is_some_and(|p| p >= HOLDS))
            .count(),
        holding: judged.iter().filter(|(_, h)| h.held_cost.is_some()).count(),
        mean_held_cost: mean(judged.iter().filter_map(|(_, h)| h.held_cost)),
        held_above_oracle: mean(
            judged
                .iter()
                .filter_map(|(c, h)| Some(h.held_cost? / oracle(c)? - 1.0)),
        ),
    }
}

/// The table of `summaries` (rows without a judged cell left out), with its heading.
pub fn table(s: &mut String, summaries: &[HeldSummary]) {
    let _ = writeln!(
        s,
        "\n## What holds on fresh windows\n\nEach cell's single-window best re-run on {} fresh seeds x {} windows; \"holding\" is the cheapest configuration the method applied and saw meet QoS that meets it in at least {:.0}% of them.\n",
        FRESH.0,
        FRESH.1,
        100.0 * HOLDS
    );
    let _ = writeln!(
        s,
        "| workflow | method | cells judged | best's mean pass rate | best holds | cells with a holding config | mean holding cost | holding above oracle |\n|---|---|---|---|---|---|---|---|"
    );
    let number = |v: Option<f64>, d: usize| v.map_or("–".to_owned(), |v| format!("{v:.d$}"));
    for m in summaries.iter().filter(|m| m.judged > 0) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {}/{} | {}/{} | {} | {} |",
            m.workflow,
            m.method,
            m.judged,
            number(m.mean_best_pass_rate, 2),
            m.best_holds,
            m.with_best,
            m.holding,
            m.judged,
            number(m.mean_held_cost, 3),
            m.held_above_oracle
                .map_or("–".to_owned(), |v| format!("{:+.1}%", 100.0 * v)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Protocol, run_cell};
    use faasconf_core::catalog;
    use faasconf_core::optimiser::{Optimiser, OptimiserError, Proposal};
    use faasconf_core::telemetry::WindowReport;

    /// Proposes the configurations in turn, then repeats the last.
    struct Scripted(Vec<WorkflowConfig>, usize);

    impl Optimiser for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn propose(&mut self, _: &WindowReport) -> Result<Proposal, OptimiserError> {
            let at = self.1.min(self.0.len() - 1);
            self.1 += 1;
            Ok(Proposal::new(self.0[at].clone()))
        }
    }

    #[test]
    fn a_best_that_met_qos_in_one_window_is_judged_on_fresh_ones() {
        let workflow = catalog::builtin("parallel").expect("built in");
        let qos = Qos::default();
        let at = |a: f64| {
            workflow
                .config_from_actions(&vec![[a; 4]; workflow.len()])
                .expect("in bounds")
        };
        let (ample, starved) = (at(1.0), at(0.0));
        let mut method = Scripted(vec![starved, ample.clone()], 0);
        let protocol = Protocol {
            iterations: 3,
            window_seconds: 30.0,
        };
        let mut cell = run_cell(&workflow, 10, &qos, &mut method, 5, &protocol).expect("runs");
        let check = fresh(10, &qos, 30.0, (2, 5));
        let held = judge(&workflow, &cell, &check);
        assert_eq!(held.best_pass_rate, Some(1.0), "ample resources hold");
        assert_eq!(held.held_cost, Some(ample.cost()));
        // The same best judged on a cluster whose functions are 20 times slower fails.
        let mut slow = workflow.clone();
        for f in &mut slow.functions {
            f.profile.cpu_core_seconds *= 20.0;
            f.profile.io_seconds *= 20.0;
        }
        let held = judge(&slow, &cell, &check);
        assert!(held.best_pass_rate.is_some_and(|p| p < HOLDS), "{held:?}");
        assert_eq!(held.held_cost, None);
        cell.held = Some(held);
        let summary = summarise("parallel", "scripted", &[&cell], &|_| Some(1.0));
        assert_eq!(
            (summary.judged, summary.best_holds, summary.holding),
            (1, 0, 0)
        );
        let mut s = String::new();
        table(&mut s, &[summary]);
        assert!(s.contains("| parallel | scripted | 1 |"), "{s}");
    }
}
