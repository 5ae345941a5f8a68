//! `faasconf bench`: runs an experiment of `faasconf-benchmark` with a progress bar and writes
//! `<out>/<experiment>.json` and `<out>/<experiment>.md`.

use anyhow::{Context, Result};
use faasconf_benchmark::methods::Method;
use faasconf_benchmark::report::{markdown, summaries};
use faasconf_benchmark::rq1::{self, Event, Rq1Options, loads_of};

use crate::args::{BenchArgs, Experiment};
use crate::sim::progress_bar;

/// The options of the run the flags ask for.
fn rq1_options(args: &BenchArgs) -> Result<Rq1Options> {
    let mut options = if args.quick {
        Rq1Options::quick()
    } else {
        Rq1Options::full()
    };
    if !args.workflows.is_empty() {
        options.grid = args
            .workflows
            .iter()
            .map(|w| {
                faasconf_core::catalog::builtin(w).with_context(|| format!("--workflows {w}"))?;
                Ok((w.clone(), loads_of(w)))
            })
            .collect::<Result<_>>()?;
    }
    if !args.loads.is_empty() {
        for (_, loads) in &mut options.grid {
            loads.clone_from(&args.loads);
        }
    }
    if !args.seeds.is_empty() {
        options.seeds.clone_from(&args.seeds);
    }
    if !args.methods.is_empty() {
        options.methods = args
            .methods
            .iter()
            .map(|m| Method::parse(m).map_err(|e| anyhow::anyhow!("--methods: {e}")))
            .collect::<Result<_>>()?;
    }
    Ok(options)
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores ({cpu}), {}", std::env::consts::OS)
}

/// Runs the experiment.
pub fn bench(args: &BenchArgs) -> Result<()> {
    match args.experiment {
        Experiment::Rq1 => {
            let options = rq1_options(args)?;
            std::fs::create_dir_all(&args.out)
                .with_context(|| format!("--out {}", args.out.display()))?;
            let workdir = args.out.join("work");
            std::fs::create_dir_all(&workdir)
                .with_context(|| format!("--out {}", workdir.display()))?;
            let (cells, searches) = options.size();
            let bar = progress_bar(cells + searches, "rq1");
            let journal = args.out.join("rq1.journal.jsonl");
            let report = rq1::run(&options, &workdir, &journal, &mut |event| match event {
                Event::Oracle { workflow, users } => {
                    bar.set_message(format!("oracle {workflow} {users}u"));
                    bar.inc(1);
                }
                Event::WarmUp { workflow, seed } => {
                    bar.set_message(format!("warm-up {workflow} seed {seed}"));
                }
                Event::Cell(c) => {
                    bar.println(format!(
                        "{} {}u seed {} {}: best {} with {} violations",
                        c.workflow,
                        c.users,
                        c.seed,
                        c.method,
                        c.best_cost.map_or("none".into(), |b| format!("{b:.3}")),
                        c.violations
                    ));
                    bar.inc(1);
                }
            })?;
            bar.finish_and_clear();
            let _ = std::fs::remove_dir_all(&workdir);
            let json = serde_json::json!({
                "cells": report.cells,
                "oracle": report.oracle,
                "summary": summaries(&report),
                "options": report.options,
                "warm_up_seconds": report.warm_up_seconds,
                "machine": machine(),
            });
            let json_path = args.out.join("rq1.json");
            std::fs::write(&json_path, serde_json::to_string_pretty(&json)?)
                .with_context(|| format!("writing {}", json_path.display()))?;
            let md = markdown(&report, &machine());
            let md_path = args.out.join("rq1.md");
            std::fs::write(&md_path, &md)
                .with_context(|| format!("writing {}", md_path.display()))?;
            println!("{md}");
            println!("wrote {} and {}", json_path.display(), md_path.display());
            // The figures last: without a font the results above are still written.
            match faasconf_benchmark::plots::rq1_plots(&report, &args.out) {
                Ok(files) => println!(
                    "plots: {}",
                    files
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Err(e) => eprintln!("warning: {e}"),
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn args() -> BenchArgs {
        BenchArgs {
            experiment: Experiment::Rq1,
            quick: true,
            out: PathBuf::from("out"),
            seeds: Vec::new(),
            methods: Vec::new(),
            workflows: Vec::new(),
            loads: Vec::new(),
        }
    }

    #[test]
    fn flags_narrow_the_grid() {
        let options = rq1_options(&BenchArgs {
            workflows: vec!["tcktapp".into()],
            seeds: vec![4, 5],
            methods: vec!["faasconf".into(), "rambo".into()],
            ..args()
        })
        .expect("valid");
        assert_eq!(
            options.grid,
            vec![("tcktapp".to_owned(), loads_of("tcktapp"))]
        );
        assert_eq!(options.seeds, vec![4, 5]);
        assert_eq!(options.methods, vec![Method::Faasconf, Method::Rambo]);
        let loads = rq1_options(&BenchArgs {
            loads: vec![12],
            ..args()
        })
        .expect("valid");
        assert_eq!(loads.grid, vec![("parallel".to_owned(), vec![12])]);
    }

    #[test]
    fn unknown_methods_and_workflows_name_their_flag() {
        let e = rq1_options(&BenchArgs {
            methods: vec!["simplex".into()],
            ..args()
        })
        .expect_err("unknown method");
        assert!(
            e.to_string().contains("--methods") && e.to_string().contains("simplex"),
            "{e}"
        );
        let e = rq1_options(&BenchArgs {
            workflows: vec!["nope".into()],
            ..args()
        })
        .expect_err("unknown workflow");
        assert!(format!("{e:#}").contains("--workflows nope"), "{e:#}");
    }
}
