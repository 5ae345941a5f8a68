//! `rq1`: every method on every (workflow, load) cell of the grid, with several seeds, against
//! the oracle of each (workflow, load). The answer to "how much cheaper than the baselines, and
//! how far from the best there is".

use std::path::Path;

use faasconf_core::{Qos, Workflow, catalog};
use serde::{Deserialize, Serialize};

use crate::holds;
use crate::journal::{Contents, Journal, SearchRecord};
use crate::methods::{Method, WarmUpOptions, build, warm_up};
use crate::protocol::{CellResult, Protocol, run_cell};
use faasconf_tuner::oracle::{SearchOptions, search};

/// The grid and budgets of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rq1Options {
    /// (workflow, loads) pairs.
    pub grid: Vec<(String, Vec<u32>)>,
    /// Seeds (each one a warm-up and a run of every cell).
    pub seeds: Vec<u64>,
    /// Methods.
    pub methods: Vec<Method>,
    /// Warm-up every method gets.
    pub warm_up: WarmUpOptions,
    /// The online protocol.
    pub protocol: Protocol,
    /// The oracle's search.
    pub oracle: SearchOptions,
}

/// The load levels of a workflow in the paper's evaluation: 10-30 users for the ML workflows,
/// 20-40 for TcktApp.
pub fn loads_of(workflow: &str) -> Vec<u32> {
    if workflow == "tcktapp" {
        vec![20, 25, 30, 35, 40]
    } else {
        vec![10, 15, 20, 25, 30]
    }
}

/// The QoS target of a built-in workflow (`workflows.md`; [`faasconf_core::catalog::builtin_qos`]).
pub fn qos_of(workflow: &str) -> Qos {
    faasconf_core::catalog::builtin_qos(workflow)
}

impl Rq1Options {
    /// The whole grid: 4 workflows x 5 loads, 3 seeds, every method.
    pub fn full() -> Self {
        Self {
            grid: ["sequential", "parallel", "branch", "tcktapp"]
                .map(|w| (w.to_owned(), loads_of(w)))
                .to_vec(),
            seeds: vec![0, 1, 2],
            methods: Method::ALL.to_vec(),
            warm_up: WarmUpOptions::default(),
            protocol: Protocol::default(),
            oracle: SearchOptions {
                pass_rate: 0.8,
                ..SearchOptions::default()
            },
        }
    }

    /// A reduced grid for a quick look (minutes on 2 cores): `parallel` at 20 users, one seed,
    /// every method, a smaller oracle search.
    pub fn quick() -> Self {
        Self {
            grid: vec![("parallel".to_owned(), vec![20])],
            seeds: vec![0],
            oracle: SearchOptions {
                random: 1000,
                starts: 4,
                windows: 6,
                seeds: 2,
                holdout_seeds: 2,
                holdout_windows: 10,
                confirm_seeds: 2,
                confirm_windows: 30,
                ..Self::full().oracle
            },
            ..Self::full()
        }
    }

    /// Cells to run (methods x loads x seeds) and oracle searches.
    pub fn size(&self) -> (usize, usize) {
        let loads: usize = self.grid.iter().map(|(_, l)| l.len()).sum();
        (loads * self.seeds.len() * self.methods.len(), loads)
    }
}

/// The oracle of one (workflow, load).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OracleCell {
    /// The workflow.
    pub workflow: String,
    /// Users.
    pub users: u32,
    /// The cheapest configuration known to meet QoS (none: `None`): the search's, or a
    /// method's best when it is cheaper and passes the same bar on fresh twin seeds.
    pub cost: Option<f64>,
    /// Where it came from: `search`, or the method and seed whose best it is.
    pub source: String,
    /// The search's own result.
    pub search_cost: Option<f64>,
    /// Seconds the search and the checks took.
    pub seconds: f64,
}

/// Fresh twin seeds a method's best configuration is checked on before it may stand as the
/// oracle, and windows per seed.
pub const CHECK_SEEDS: [u64; 5] = [9001, 9002, 9003, 9004, 9005];
/// Windows per check seed.
pub const CHECK_WINDOWS: u32 = 40;

/// The oracle of `users`: the search's cost, or a cheaper best configuration of `cells` that
/// meets QoS in steady state on [`CHECK_SEEDS`] and in at least `pass_rate` of those windows.
fn best_known(
    workflow: &Workflow,
    users: u32,
    qos: &Qos,
    search_cost: Option<f64>,
    cells: &[CellResult],
    pass_rate: f64,
) -> (Option<f64>, String) {
    let mut best = (search_cost, "search".to_owned());
    let mut candidates: Vec<&CellResult> = cells
        .iter()
        .filter(|c| c.workflow == workflow.name && c.users == users && c.best_config.is_some())
        .collect();
    candidates.sort_by(|a, b| {
        a.best_cost
            .unwrap_or(f64::MAX)
            .total_cmp(&b.best_cost.unwrap_or(f64::MAX))
    });
    for c in candidates {
        let (Some(config), Some(cost)) = (&c.best_config, c.best_cost) else {
            continue;
        };
        if best.0.is_some_and(|b| cost >= b) {
            break; // sorted: none further is cheaper
        }
        let check = faasconf_tuner::search::Evaluation {
            arrivals_per_second: None,
            users,
            windows: CHECK_WINDOWS,
            seeds: CHECK_SEEDS.to_vec(),
            window_seconds: 30.0,
            threads: 0,
            qos: *qos,
            cancel: Default::default(),
            memo: None,
        }
        .steady(workflow, config);
        if check.feasible(qos) && check.pass_rate() >= pass_rate {
            best = (Some(cost), format!("{} seed {}", c.method, c.seed));
            break;
        }
    }
    best
}

/// Whether `a` and `b` are the same (workflow, load, method, seed) cell.
fn same_key(a: &CellResult, b: &CellResult) -> bool {
    a.workflow == b.workflow && a.users == b.users && a.method == b.method && a.seed == b.seed
}

/// `cell` judged on fresh windows ([`holds`]); a journalled cell judged only now is journalled
/// again with its judgement.
fn judged(
    workflow: &Workflow,
    cell: CellResult,
    qos: &Qos,
    protocol: &Protocol,
    journal: &mut Journal,
) -> Result<CellResult, Rq1Error> {
    if cell.held.is_some() {
        return Ok(cell);
    }
    let check = holds::fresh(cell.users, qos, protocol.window_seconds, holds::FRESH);
    let mut cell = cell;
    cell.held = Some(holds::judge(workflow, &cell, &check));
    journal.record_cell(&cell)?;
    Ok(cell)
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rq1 {
    /// Every cell.
    pub cells: Vec<CellResult>,
    /// The oracle of every (workflow, load).
    pub oracle: Vec<OracleCell>,
    /// What was run.
    pub options: Rq1Options,
    /// Seconds the warm-ups took, per (workflow, seed).
    pub warm_up_seconds: Vec<(String, u64, f64)>,
}

/// What a run tells as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A warm-up starts.
    WarmUp {
        /// The workflow.
        workflow: String,
        /// The seed.
        seed: u64,
    },
    /// An oracle search starts.
    Oracle {
        /// The workflow.
        workflow: String,
        /// Users.
        users: u32,
    },
    /// A cell finished.
    Cell(Box<CellResult>),
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum Rq1Error {
    /// A workflow of the grid is unknown.
    #[error("grid: {0}")]
    Workflow(#[from] faasconf_core::Error),
    /// A warm-up failed.
    #[error(transparent)]
    WarmUp(#[from] crate::methods::WarmUpError),
    /// A method could not be built.
    #[error("{0}")]
    Build(String),
    /// A cell failed.
    #[error(transparent)]
    Cell(#[from] crate::protocol::CellError),
    /// The journal could not be used.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// A journal's options are not those of a grid run.
    #[error("journal {path}: {message}")]
    JournalOptions {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// Where a run in progress stands, read from its journal without disturbing the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Interim {
    /// The cells and searches finished so far. The oracle is each search's own result: a
    /// method's best replaces it only when the run ends and that best is verified.
    pub run: Rq1,
    /// Cells of the whole grid.
    pub planned_cells: usize,
}

/// What the run journalled at `journal` has finished so far.
pub fn interim(journal: &Path) -> Result<Interim, Rq1Error> {
    let mut contents: Contents = Contents::read(journal)?;
    // A cell journalled again (amended) supersedes its earlier line.
    let mut latest: Vec<CellResult> = Vec::with_capacity(contents.cells.len());
    for cell in contents.cells.drain(..) {
        latest.retain(|c| !same_key(c, &cell));
        latest.push(cell);
    }
    contents.cells = latest;
    let options_error = |message: String| Rq1Error::JournalOptions {
        path: journal.display().to_string(),
        message,
    };
    let options: Rq1Options = serde_json::from_value(
        contents
            .options
            .ok_or_else(|| options_error("no options line".into()))?,
    )
    .map_err(|e| options_error(e.to_string()))?;
    let oracle = contents
        .searches
        .into_iter()
        .map(|s| OracleCell {
            workflow: s.workflow,
            users: s.users,
            cost: s.cost,
            source: "search".into(),
            search_cost: s.cost,
            seconds: s.seconds,
        })
        .collect();
    let (planned_cells, _) = options.size();
    Ok(Interim {
        run: Rq1 {
            cells: contents.cells,
            oracle,
            options,
            warm_up_seconds: Vec::new(),
        },
        planned_cells,
    })
}

/// Runs the grid; `workdir` holds the warm-up models. Finished cells and searches go to the
/// `journal` file as they finish; what a stopped run of the same options journalled there is
/// taken from it, not run again.
pub fn run(
    options: &Rq1Options,
    workdir: &Path,
    journal: &Path,
    progress: &mut dyn FnMut(Event),
) -> Result<Rq1, Rq1Error> {
    let mut journal = Journal::open(journal, options)?;
    let mut cells = Vec::new();
    let mut oracle = Vec::new();
    let mut warm_up_seconds = Vec::new();
    for (name, loads) in &options.grid {
        let workflow: Workflow = catalog::builtin(name)?;
        let qos = qos_of(name);
        let mut searched = Vec::with_capacity(loads.len());
        for &users in loads {
            progress(Event::Oracle {
                workflow: name.clone(),
                users,
            });
            if journal.search(name, users).is_none() {
                let started = std::time::Instant::now();
                let found = search(&workflow, users, &qos, &options.oracle, &|_| {});
                journal.record_search(&SearchRecord {
                    workflow: name.clone(),
                    users,
                    cost: found.steady.map(|s| s.cost),
                    seconds: started.elapsed().as_secs_f64(),
                })?;
            }
            if let Some(done) = journal.search(name, users) {
                searched.push((users, done.cost, done.seconds));
            }
        }
        let first_cell = cells.len();
        for &seed in &options.seeds {
            let journalled = |users: u32, method: Method| {
                journal.cell(name, users, &method.name(), seed).cloned()
            };
            let pending = loads
                .iter()
                .any(|&u| options.methods.iter().any(|&m| journalled(u, m).is_none()));
            if !pending {
                for &users in loads {
                    for &method in &options.methods {
                        let found = journal.cell(name, users, &method.name(), seed).cloned();
                        if let Some(cell) = found {
                            let cell =
                                judged(&workflow, cell, &qos, &options.protocol, &mut journal)?;
                            progress(Event::Cell(Box::new(cell.clone())));
                            cells.push(cell);
                        }
                    }
                }
                continue;
            }
            progress(Event::WarmUp {
                workflow: name.clone(),
                seed,
            });
            let warm = warm_up(
                &workflow,
                loads,
                &qos,
                &options.warm_up,
                seed,
                workdir,
                &options.methods,
            )?;
            warm_up_seconds.push((name.clone(), seed, warm.seconds));
            for &users in loads {
                for &method in &options.methods {
                    let cell = match journal.cell(name, users, &method.name(), seed) {
                        Some(done) => done.clone(),
                        None => {
                            let mut optimiser = build(method, &workflow, &qos, &warm, seed)
                                .map_err(Rq1Error::Build)?;
                            let mut cell = run_cell(
                                &workflow,
                                users,
                                &qos,
                                optimiser.as_mut(),
                                seed,
                                &options.protocol,
                            )?;
                            // A variant's tuner calls itself faasconf.
                            cell.method = method.name();
                            cell
                        }
                    };
                    let cell = judged(&workflow, cell, &qos, &options.protocol, &mut journal)?;
                    progress(Event::Cell(Box::new(cell.clone())));
                    cells.push(cell);
                }
            }
        }
        for (users, search_cost, search_seconds) in searched {
            let started = std::time::Instant::now();
            let (cost, source) = best_known(
                &workflow,
                users,
                &qos,
                search_cost,
                &cells[first_cell..],
                options.oracle.pass_rate,
            );
            oracle.push(OracleCell {
                workflow: name.clone(),
                users,
                cost,
                source,
                search_cost,
                seconds: search_seconds + started.elapsed().as_secs_f64(),
            });
        }
    }
    Ok(Rq1 {
        cells,
        oracle,
        options: options.clone(),
        warm_up_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_grid_runs_every_cell_with_its_oracle() {
        let options = Rq1Options {
            grid: vec![("parallel".into(), vec![10, 30])],
            seeds: vec![7],
            methods: vec![Method::Random],
            warm_up: WarmUpOptions {
                samples: 40,
                ..WarmUpOptions::default()
            },
            protocol: Protocol {
                iterations: 4,
                window_seconds: 30.0,
            },
            oracle: SearchOptions::smallest(60),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let journal = dir.path().join("journal.jsonl");
        let mut events = Vec::new();
        let first = run(&options, dir.path(), &journal, &mut |e| events.push(e)).expect("runs");
        assert_eq!(options.size(), (2, 2));
        assert_eq!(first.cells.len(), 2);
        assert_eq!(
            first.cells.iter().map(|c| c.users).collect::<Vec<_>>(),
            vec![10, 30]
        );
        assert!(
            first
                .cells
                .iter()
                .all(|c| c.iterations.len() == 4 && c.seed == 7)
        );
        assert_eq!(first.oracle.len(), 2);
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, Event::Cell(_)))
                .count(),
            2
        );
        let json = serde_json::to_value(&first).expect("serialises");
        for key in [
            "workflow",
            "users",
            "method",
            "seed",
            "best_cost",
            "feasible",
            "violations",
            "iterations_to_feasible",
        ] {
            assert!(json["cells"][0].get(key).is_some(), "cells carry {key}");
        }
        for key in ["workflow", "users", "cost"] {
            assert!(json["oracle"][0].get(key).is_some(), "oracle carries {key}");
        }
        // Run again on the journal: nothing is warmed up or run again, the result is the same.
        let mut again = Vec::new();
        let second = run(&options, dir.path(), &journal, &mut |e| again.push(e)).expect("resumes");
        assert!(!again.iter().any(|e| matches!(e, Event::WarmUp { .. })));
        assert_eq!(second.cells, first.cells);
        assert_eq!(second.oracle.len(), first.oracle.len());
        assert!(first.cells.iter().all(|c| c.held.is_some()), "judged");
        // A journal from before cells were judged: judged on resume and journalled again, the
        // later line winning.
        let text = std::fs::read_to_string(&journal).expect("reads");
        let unjudged: Vec<String> = text
            .lines()
            .map(|line| {
                let mut v: serde_json::Value = serde_json::from_str(line).expect("json");
                if let Some(cell) = v.get_mut("cell").and_then(|c| c.as_object_mut()) {
                    cell.remove("held");
                }
                v.to_string()
            })
            .collect();
        std::fs::write(&journal, unjudged.join("\n") + "\n").expect("writes");
        let third = run(&options, dir.path(), &journal, &mut |_| {}).expect("resumes");
        assert_eq!(third.cells, first.cells, "judged again alike");
        let lines = std::fs::read_to_string(&journal)
            .expect("reads")
            .lines()
            .count();
        assert_eq!(lines, unjudged.len() + 2, "both cells journalled again");
        assert_eq!(interim(&journal).expect("reads").run.cells, first.cells);
        // Other options do not mix into this journal.
        let other = Rq1Options {
            seeds: vec![8],
            ..options.clone()
        };
        let e = run(&other, dir.path(), &journal, &mut |_| {}).expect_err("refused");
        assert!(e.to_string().contains("other options"), "{e}");
        // A run in progress is read as it stands, without touching the journal: its options
        // come back whole, a line being written is left out.
        let mut text = std::fs::read_to_string(&journal).expect("reads");
        text.push_str(r#"{"cell":{"workflow":"para"#);
        std::fs::write(&journal, &text).expect("writes");
        let now = interim(&journal).expect("reads the journal");
        assert_eq!(now.run.options, options);
        assert_eq!(now.run.cells, first.cells);
        assert_eq!(now.planned_cells, 2);
        assert_eq!(
            now.run
                .oracle
                .iter()
                .map(|o| o.search_cost)
                .collect::<Vec<_>>(),
            first
                .oracle
                .iter()
                .map(|o| o.search_cost)
                .collect::<Vec<_>>()
        );
        assert_eq!(std::fs::read_to_string(&journal).expect("reads"), text);
        let e = interim(&dir.path().join("none.jsonl")).expect_err("no journal");
        assert!(e.to_string().contains("none.jsonl"), "{e}");
    }

    #[test]
    fn each_workflow_has_its_loads_and_qos_target() {
        assert_eq!(loads_of("tcktapp"), vec![20, 25, 30, 35, 40]);
        assert_eq!(loads_of("parallel"), vec![10, 15, 20, 25, 30]);
        assert_eq!(qos_of("sequential").mean_latency_seconds, 12.0);
        assert_eq!(qos_of("tcktapp").mean_latency_seconds, 15.0);
        assert_eq!(qos_of("branch").mean_latency_seconds, 13.0);
        assert_eq!(
            Rq1Options::full().size(),
            (4 * 5 * 3 * Method::ALL.len(), 20)
        );
    }
}
