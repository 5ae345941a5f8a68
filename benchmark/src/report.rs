//! What a run of `rq1` says: per workflow and overall, each method's cells with a QoS-meeting
//! configuration, mean best cost, violations and iterations to the first feasible one; how
//! much cheaper faasconf's best is than each baseline's (on the cells where both found one);
//! and how far each method's best is above the oracle's. Rendered as a Markdown table.

use std::fmt::Write;

use serde::Serialize;

use crate::holds::{self, HeldSummary};
use crate::protocol::CellResult;
use crate::rq1::{Interim, OracleCell, Rq1};

/// One method's figures over a set of cells.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodSummary {
    /// The workflow (`all` for every workflow together).
    pub workflow: String,
    /// The method.
    pub method: String,
    /// Cells run.
    pub cells: usize,
    /// Cells where some iteration met QoS.
    pub feasible: usize,
    /// Mean best QoS-meeting cost over the feasible cells.
    pub mean_best_cost: Option<f64>,
    /// Mean violations per cell.
    pub mean_violations: f64,
    /// Mean iteration of the first QoS-meeting configuration (feasible cells).
    pub mean_iterations_to_feasible: Option<f64>,
    /// Mean of `1 - faasconf / method` best cost over the cells where both found one: how much
    /// cheaper faasconf is (negative: dearer). None for faasconf itself or without such cells.
    pub faasconf_saving: Option<f64>,
    /// Cells the saving is taken over.
    pub paired_cells: usize,
    /// Mean of `best / oracle - 1` over the feasible cells with an oracle.
    pub above_oracle: Option<f64>,
    /// Mean decision seconds per cell.
    pub mean_decision_seconds: f64,
    /// Median and 95th percentile of one decision's seconds, over every decision of the cells
    /// (`None` for records that did not time decisions one by one).
    pub decision_percentiles_s: Option<(f64, f64)>,
    /// Mean steady twin windows one decision simulated (`None`: a method without a twin).
    pub mean_twin_windows: Option<f64>,
    /// Mean end-to-end latency over every iteration's window, seconds.
    pub mean_latency_s: Option<f64>,
    /// Mean iterations per cell whose proposal safe exploration replaced.
    pub mean_ses_replaced: f64,
}

fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

fn same_cell(a: &CellResult, b: &CellResult) -> bool {
    a.workflow == b.workflow && a.users == b.users && a.seed == b.seed
}

fn oracle_of<'a>(oracle: &'a [OracleCell], c: &CellResult) -> Option<&'a OracleCell> {
    oracle
        .iter()
        .find(|o| o.workflow == c.workflow && o.users == c.users)
}

/// The summaries of `method` over the cells of `workflow` (`None`: all).
fn summarise(run: &Rq1, workflow: Option<&str>, method: &str) -> MethodSummary {
    let in_scope = |c: &&CellResult| workflow.is_none_or(|w| c.workflow == w);
    let mine: Vec<&CellResult> = run
        .cells
        .iter()
        .filter(in_scope)
        .filter(|c| c.method == method)
        .collect();
    let feasible: Vec<&&CellResult> = mine.iter().filter(|c| c.best_cost.is_some()).collect();
    let savings: Vec<f64> = if method == "faasconf" {
        Vec::new()
    } else {
        mine.iter()
            .filter_map(|c| {
                let theirs = c.best_cost?;
                let ours = run
                    .cells
                    .iter()
                    .find(|f| f.method == "faasconf" && same_cell(f, c))?
                    .best_cost?;
                Some(1.0 - ours / theirs)
            })
            .collect()
    };
    MethodSummary {
        workflow: workflow.unwrap_or("all").to_owned(),
        method: method.to_owned(),
        cells: mine.len(),
        feasible: feasible.len(),
        mean_best_cost: mean(feasible.iter().filter_map(|c| c.best_cost)),
        mean_violations: mean(mine.iter().map(|c| f64::from(c.violations))).unwrap_or(0.0),
        mean_iterations_to_feasible: mean(
            feasible
                .iter()
                .filter_map(|c| c.iterations_to_feasible.map(f64::from)),
        ),
        paired_cells: savings.len(),
        faasconf_saving: mean(savings),
        above_oracle: mean(feasible.iter().filter_map(|c| {
            let o = oracle_of(&run.oracle, c)?.cost?;
            Some(c.best_cost? / o - 1.0)
        })),
        mean_decision_seconds: mean(mine.iter().map(|c| c.decision_seconds)).unwrap_or(0.0),
        decision_percentiles_s: decision_percentiles(&mine),
        mean_twin_windows: mean(
            mine.iter()
                .flat_map(|c| c.iterations.iter().filter_map(|i| i.twin_windows))
                .map(|w| w as f64),
        ),
        mean_latency_s: mean(
            mine.iter()
                .flat_map(|c| c.iterations.iter().map(|i| i.e2e_mean_s)),
        ),
        mean_ses_replaced: mean(
            mine.iter()
                .map(|c| c.iterations.iter().filter(|i| i.ses_replaced).count() as f64),
        )
        .unwrap_or(0.0),
    }
}

/// The median and 95th percentile of the cells' decisions, one by one; `None` where the records
/// predate per-decision times (every one 0 though the cells spent time deciding).
fn decision_percentiles(cells: &[&CellResult]) -> Option<(f64, f64)> {
    let mut times: Vec<f64> = cells
        .iter()
        .flat_map(|c| c.iterations.iter().map(|i| i.decision_s))
        .collect();
    let timed = times.iter().any(|&t| t > 0.0) || cells.iter().all(|c| c.decision_seconds == 0.0);
    if times.is_empty() || !timed {
        return None;
    }
    let p50 = faasconf_twin::report::percentile(&mut times, 0.5);
    Some((p50, faasconf_twin::report::percentile(&mut times, 0.95)))
}

/// Each (workflow, method) scope of the run: per workflow of the grid, and over all of them
/// when the grid has several.
fn scopes(run: &Rq1) -> Vec<(Option<&str>, String)> {
    let mut workflows: Vec<Option<&str>> = run
        .options
        .grid
        .iter()
        .map(|(w, _)| Some(w.as_str()))
        .collect();
    if workflows.len() > 1 {
        workflows.push(None);
    }
    workflows
        .into_iter()
        .flat_map(|w| run.options.methods.iter().map(move |m| (w, m.name())))
        .collect()
}

/// Every method's summary, per workflow of the grid and over all of them.
pub fn summaries(run: &Rq1) -> Vec<MethodSummary> {
    scopes(run)
        .into_iter()
        .map(|(w, m)| summarise(run, w, &m))
        .collect()
}

/// Every method's fresh-window figures ([`holds`]), in the scopes of [`summaries`].
pub fn held_summaries(run: &Rq1) -> Vec<HeldSummary> {
    scopes(run)
        .into_iter()
        .map(|(w, m)| {
            let mine: Vec<&CellResult> = run
                .cells
                .iter()
                .filter(|c| c.method == m && w.is_none_or(|w| c.workflow == w))
                .collect();
            let oracle = |c: &CellResult| oracle_of(&run.oracle, c)?.cost;
            holds::summarise(w.unwrap_or("all"), &m, &mine, &oracle)
        })
        .collect()
}

fn percent(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:+.1}%", 100.0 * v))
}

fn number(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.digits$}"))
}

/// The run as Markdown under the heading `title`: the summary table, the oracle, and every
/// cell.
pub fn markdown(run: &Rq1, machine: &str, title: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {title}\n");
    let _ = writeln!(
        s,
        "Machine: {machine}. Seeds {:?}; {} iterations of {} s windows per cell; warm-up {} twin samples per (workflow, seed).\n",
        run.options.seeds,
        run.options.protocol.iterations,
        run.options.protocol.window_seconds,
        run.options.warm_up.samples
    );
    summary_table(&mut s, run);
    holds::table(&mut s, &held_summaries(run));
    let _ = writeln!(
        s,
        "\n## Oracle\n\nThe search's cheapest configuration meeting QoS in steady state and in at least {:.0}% of its windows; a method's best replaces it when cheaper and it passes the same bar on {} fresh seeds x {} windows.\n",
        100.0 * run.options.oracle.pass_rate,
        crate::rq1::CHECK_SEEDS.len(),
        crate::rq1::CHECK_WINDOWS
    );
    oracle_table(&mut s, run);
    let _ = writeln!(
        s,
        "\n## Cells\n\n| workflow | users | seed | method | best cost | violations | first feasible |\n|---|---|---|---|---|---|---|"
    );
    for c in &run.cells {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            c.workflow,
            c.users,
            c.seed,
            c.method,
            number(c.best_cost, 3),
            c.violations,
            c.iterations_to_feasible
                .map_or("–".into(), |i| i.to_string())
        );
    }
    s
}

/// A run in progress as Markdown under the heading `title`: the summary of the cells finished
/// so far, against the oracle searches finished so far.
pub fn interim_markdown(interim: &Interim, title: &str) -> String {
    let run = &interim.run;
    let mut s = String::new();
    let _ = writeln!(s, "# {title}\n");
    let _ = writeln!(
        s,
        "In progress: {} of {} cells finished, {} oracle searches. Seeds {:?}; {} iterations of {} s windows per cell. Interim figures: \"above oracle\" is against the search's own result, which a method's best replaces (once verified) only when the run ends.\n",
        run.cells.len(),
        interim.planned_cells,
        run.oracle.len(),
        run.options.seeds,
        run.options.protocol.iterations,
        run.options.protocol.window_seconds,
    );
    summary_table(&mut s, run);
    holds::table(&mut s, &held_summaries(run));
    let _ = writeln!(s, "\n## Oracle searches so far\n");
    oracle_table(&mut s, run);
    s
}

fn summary_table(s: &mut String, run: &Rq1) {
    let _ = writeln!(
        s,
        "| workflow | method | feasible cells | mean best cost | faasconf saving (paired cells) | above oracle | mean violations | mean iterations to feasible | mean latency s | SES replacements per cell | decision s per cell | decision s p50 / p95 | twin windows per decision |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for m in summaries(run).into_iter().filter(|m| m.cells > 0) {
        let _ = writeln!(
            s,
            "| {} | {} | {}/{} | {} | {} ({}) | {} | {:.1} | {} | {} | {:.1} | {:.1} | {} | {} |",
            m.workflow,
            m.method,
            m.feasible,
            m.cells,
            number(m.mean_best_cost, 3),
            percent(m.faasconf_saving),
            m.paired_cells,
            percent(m.above_oracle),
            m.mean_violations,
            number(m.mean_iterations_to_feasible, 1),
            number(m.mean_latency_s, 2),
            m.mean_ses_replaced,
            m.mean_decision_seconds,
            m.decision_percentiles_s.map_or_else(
                || "–".to_owned(),
                |(p50, p95)| format!("{p50:.2} / {p95:.2}")
            ),
            number(m.mean_twin_windows, 0),
        );
    }
}

fn oracle_table(s: &mut String, run: &Rq1) {
    let _ = writeln!(
        s,
        "| workflow | users | cost | from | search's own | seconds |\n|---|---|---|---|---|---|"
    );
    for o in &run.oracle {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.0} |",
            o.workflow,
            o.users,
            number(o.cost, 3),
            o.source,
            number(o.search_cost, 3),
            o.seconds
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::Method;
    use crate::rq1::Rq1Options;

    fn cell(method: &str, seed: u64, best: Option<f64>, violations: u32) -> CellResult {
        CellResult {
            workflow: "parallel".into(),
            users: 20,
            method: method.into(),
            seed,
            best_cost: best,
            best_config: None,
            feasible: best.is_some(),
            violations,
            iterations_to_feasible: best.map(|_| 2),
            decision_seconds: 1.0,
            wall_seconds: 2.0,
            iterations: Vec::new(),
            held: None,
        }
    }

    #[test]
    fn savings_are_paired_per_cell_and_infeasible_cells_are_counted_not_averaged() {
        let mut judged = cell("faasconf", 0, Some(3.0), 1);
        judged.held = Some(crate::holds::Held {
            best_pass_rate: Some(0.5),
            held_cost: Some(3.3),
        });
        let run = Rq1 {
            cells: vec![
                judged,
                cell("random", 0, Some(4.0), 5),
                cell("faasconf", 1, Some(4.0), 0),
                cell("random", 1, None, 15),
            ],
            oracle: vec![OracleCell {
                workflow: "parallel".into(),
                users: 20,
                cost: Some(3.0),
                source: "search".into(),
                search_cost: Some(3.0),
                seconds: 1.0,
            }],
            options: Rq1Options {
                grid: vec![("parallel".into(), vec![20])],
                seeds: vec![0, 1],
                methods: vec![Method::FAASCONF, Method::Random],
                ..Rq1Options::quick()
            },
            warm_up_seconds: Vec::new(),
        };
        let s = summaries(&run);
        assert_eq!(s.len(), 2, "one workflow: no `all` rows");
        let (ours, random) = (&s[0], &s[1]);
        assert_eq!(
            (ours.method.as_str(), random.method.as_str()),
            ("faasconf", "random")
        );
        assert_eq!(ours.faasconf_saving, None);
        assert_eq!(random.paired_cells, 1, "seed 1 has no random best to pair");
        assert!((random.faasconf_saving.expect("paired") - 0.25).abs() < 1e-12);
        assert_eq!((random.feasible, random.cells), (1, 2));
        assert!((random.mean_violations - 10.0).abs() < 1e-12);
        assert!((ours.mean_best_cost.expect("feasible") - 3.5).abs() < 1e-12);
        // (3/3 - 1 + 4/3 - 1) / 2
        assert!((ours.above_oracle.expect("oracle") - 1.0 / 6.0).abs() < 1e-12);
        let md = markdown(&run, "test machine", "rq1");
        assert!(
            md.contains("| parallel | random | 1/2 | 4.000 | +25.0% (1) | +33.3% |"),
            "{md}"
        );
        assert!(
            md.contains("| parallel | 20 | 1 | random | – | 15 | – |"),
            "{md}"
        );
        // Only the judged cell is in the fresh-window table: its best fails, a dearer one holds.
        assert!(
            md.contains("| parallel | faasconf | 1 | 0.50 | 0/1 | 1/1 | 3.300 | +10.0% |"),
            "{md}"
        );
        assert!(!md.contains("| parallel | random | 0 |"), "{md}");
    }
}
