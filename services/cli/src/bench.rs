//! `faasconf bench`: runs an experiment of `faasconf-benchmark` with a progress bar and writes
//! `<out>/<experiment>.json` and `<out>/<experiment>.md`.

use anyhow::{Context, Result};
use faasconf_benchmark::journal::Contents;
use faasconf_benchmark::load::{self, LoadOptions};
use faasconf_benchmark::methods::Method;
use faasconf_benchmark::mismatch::{self, MismatchOptions};
use faasconf_benchmark::report::{held_summaries, interim_markdown, markdown, summaries};
use faasconf_benchmark::rq1::{self, Event, Rq1Options, loads_of};
use faasconf_benchmark::rq2::{self, Rq2Event, Rq2Options};
use faasconf_benchmark::rq3;
use faasconf_benchmark::speed::{self, SpeedOptions};

use crate::args::{BenchArgs, Experiment};
use crate::sim::progress_bar;

/// The options of the `rq1` or `rq3` run the flags ask for.
fn grid_options(args: &BenchArgs) -> Result<Rq1Options> {
    let (mut options, loads_for): (_, fn(&str) -> Vec<u32>) = match (args.experiment, args.quick) {
        (Experiment::Rq3, true) => (rq3::quick(), |w| vec![rq3::middle_load(w)]),
        (Experiment::Rq3, false) => (rq3::full(), |w| vec![rq3::middle_load(w)]),
        (_, true) => (Rq1Options::quick(), loads_of),
        (_, false) => (Rq1Options::full(), loads_of),
    };
    if !args.workflows.is_empty() {
        options.grid = args
            .workflows
            .iter()
            .map(|w| {
                faasconf_core::catalog::builtin(w).with_context(|| format!("--workflows {w}"))?;
                Ok((w.clone(), loads_for(w)))
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
        options.methods = parse_methods(&args.methods)?;
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
    if args.shape.is_some() && args.experiment != Experiment::Rq2 {
        anyhow::bail!("--shape: only rq2 plays a load shape");
    }
    if !args.functions.is_empty() && args.experiment != Experiment::Scale {
        anyhow::bail!("--functions: only scale generates workflows of a given size");
    }
    match args.experiment {
        Experiment::Rq1 => run_grid(args, "rq1", "best QoS-meeting cost in 15 online iterations"),
        Experiment::Rq2 => run_dynamic(args),
        Experiment::Rq3 => run_grid(args, "rq3", "ablations of faasconf, 15 online iterations"),
        Experiment::Speed => run_speed(args),
        Experiment::Load => run_load(args),
        Experiment::Mismatch => run_mismatch(args),
        Experiment::Scale => scale::run_scale(args),
        Experiment::Results => {
            let path = args.out.join("RESULTS.md");
            std::fs::write(&path, results(&args.out))
                .with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
            Ok(())
        }
    }
}

/// Every experiment, the command that produces its results under `<out>/<name>/`, and what it
/// answers.
const EXPERIMENTS: [(&str, &str); 7] = [
    (
        "rq1",
        "best QoS-meeting cost against the baselines and the oracle",
    ),
    ("rq2", "dynamic load"),
    ("rq3", "ablations"),
    (
        "speed",
        "latency, throughput, training step, twin speed, memory",
    ),
    ("load", "16 concurrent RecommendConfig clients on each path"),
    ("mismatch", "tuning a cluster that is not the twin"),
    (
        "scale",
        "synthetic workflows of 25-100 functions: decisions, updates, twin speed, memory",
    ),
];

/// `RESULTS.md`: per experiment, the report of every run under `out` (each names the machine it
/// ran on and the command that produced it), the runs still in progress (a journal without a
/// report), or the command that produces it.
fn results(out: &std::path::Path) -> String {
    let mut s = format!(
        "# faasconf benchmark results\n\nAssembled by `faasconf bench results --out {}` from the experiments' own reports. Every number below was measured on the twin, on the machine and by the command each report names.\n",
        out.display()
    );
    let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir(out)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    for (name, what) in EXPERIMENTS {
        s.push_str(&format!("\n## {name}: {what}\n"));
        let mut any = false;
        for dir in &dirs {
            let shown = dir.display();
            if let Ok(md) = std::fs::read_to_string(dir.join(format!("{name}.md"))) {
                any = true;
                s.push_str(&format!("\nFrom `{shown}`:\n\n{}", demoted(&md)));
            } else if dir.join(format!("{name}.journal.jsonl")).exists() {
                any = true;
                s.push_str(&in_progress(name, dir));
            }
        }
        if !any {
            s.push_str(&format!(
                "\nNot run yet: `faasconf bench {name} --out {}`.\n",
                out.join(name).display()
            ));
        }
    }
    s
}

/// A run in progress (a journal without a report): for the grid experiments (rq1, rq3) the
/// summary of what it finished so far, for rq2 how far it got.
fn in_progress(name: &str, dir: &std::path::Path) -> String {
    let shown = dir.display();
    let journal = dir.join(format!("{name}.journal.jsonl"));
    let resume = format!("the same command with `--out {shown}` resumes it");
    let unreadable = |e: &dyn std::fmt::Display| {
        format!("\n`{shown}`: in progress, but its journal is unreadable: {e}\n")
    };
    if name == "rq2" {
        return match Contents::<rq2::Rq2Run>::read(&journal) {
            Ok(now) => format!(
                "\n`{shown}`: in progress, {} oracle searches and {} (method, seed) runs journalled; {resume}.\n",
                now.searches.len(),
                now.cells.len()
            ),
            Err(e) => unreadable(&e),
        };
    }
    match rq1::interim(&journal) {
        Ok(now) => {
            let md = interim_markdown(&now, &format!("{name} in progress (interim)"));
            format!("\nFrom `{shown}` ({resume}):\n\n{}", demoted(&md))
        }
        Err(e) => unreadable(&e),
    }
}

/// `md` with every heading two levels down, to sit under the experiment's own heading.
fn demoted(md: &str) -> String {
    let mut s = String::new();
    for line in md.lines() {
        if line.starts_with('#') {
            s.push_str("##");
        }
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// Runs `speed` against the service binaries beside this one and writes its results.
fn run_speed(args: &BenchArgs) -> Result<()> {
    if !(args.seeds.len() <= 1
        && args.methods.is_empty()
        && args.workflows.is_empty()
        && args.loads.is_empty())
    {
        anyhow::bail!(
            "speed takes --quick, --out and one --seeds value; the other flags are for rq1-rq3"
        );
    }
    let mut options = if args.quick {
        SpeedOptions::quick()
    } else {
        SpeedOptions::full()
    };
    if let Some(&seed) = args.seeds.first() {
        options.seed = seed;
    }
    let exe = std::env::current_exe().context("where faasconf runs from")?;
    let bin_dir = exe.parent().context("faasconf's directory")?;
    let workdir = work_dir(args)?;
    let bar = progress_bar(1, "speed");
    bar.set_message("measuring");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let measured = runtime.block_on(speed::run(&options, bin_dir, &workdir));
    let machine = end_run(&bar, &workdir);
    let measured = measured?;
    let json = serde_json::json!({ "speed": measured, "machine": machine });
    write_results(args, "speed", &json, &speed::markdown(&measured, &machine))
}

/// Runs `load` against the policy binary beside this one and writes its results.
fn run_load(args: &BenchArgs) -> Result<()> {
    if !(args.seeds.len() <= 1
        && args.methods.is_empty()
        && args.workflows.is_empty()
        && args.loads.is_empty())
    {
        anyhow::bail!(
            "load takes --quick, --out and one --seeds value; the other flags are for rq1-rq3"
        );
    }
    let mut options = if args.quick {
        LoadOptions::quick()
    } else {
        LoadOptions::full()
    };
    if let Some(&seed) = args.seeds.first() {
        options.seed = seed;
    }
    let exe = std::env::current_exe().context("where faasconf runs from")?;
    let bin_dir = exe.parent().context("faasconf's directory")?;
    let workdir = work_dir(args)?;
    let bar = progress_bar(1, "load");
    bar.set_message(format!(
        "{} clients, {} s per path",
        options.clients, options.seconds
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let measured = runtime.block_on(load::run(&options, bin_dir, &workdir));
    let machine = end_run(&bar, &workdir);
    let measured = measured?;
    let json = serde_json::json!({ "load": measured, "machine": machine });
    write_results(args, "load", &json, &load::markdown(&measured, &machine))
}

/// Runs `mismatch` and writes its results.
fn run_mismatch(args: &BenchArgs) -> Result<()> {
    let mut options = if args.quick {
        MismatchOptions::quick()
    } else {
        MismatchOptions::full()
    };
    if !args.loads.is_empty() {
        anyhow::bail!(
            "--loads: mismatch runs each workflow at its own load; the flag is for rq1 and rq3"
        );
    }
    if !args.workflows.is_empty() {
        let full = MismatchOptions::full().cells;
        options.cells = args
            .workflows
            .iter()
            .map(|w| {
                faasconf_core::catalog::builtin(w).with_context(|| format!("--workflows {w}"))?;
                let users = full.iter().find(|(n, _)| n == w).map_or(20, |c| c.1);
                Ok((w.clone(), users))
            })
            .collect::<Result<_>>()?;
    }
    if !args.seeds.is_empty() {
        options.seeds.clone_from(&args.seeds);
    }
    if !args.methods.is_empty() {
        options.methods = parse_methods(&args.methods)?;
    }
    let workdir = work_dir(args)?;
    let per_draw = options.methods.len() + usize::from(options.ceiling);
    let total = options.cells.len() * options.seeds.len() * options.draws as usize * per_draw;
    let bar = progress_bar(total, "mismatch");
    let run = mismatch::run(&options, &workdir, &mut |event| match event {
        mismatch::Event::Phase(what) => stage(&bar, what),
        mismatch::Event::Cell(c) => {
            bar.inc(1);
            bar.println(format!(
                "{} draw {} ({:.2}): {} misses {}, best {:?} holds {:?}, oracle {:?}",
                c.cell.workflow,
                c.draw.index,
                c.draw.size,
                c.cell.method,
                c.cell.violations,
                c.cell.best_cost,
                c.cell.held.and_then(|h| h.best_pass_rate),
                c.oracle_cost
            ));
        }
    });
    let machine = end_run(&bar, &workdir);
    let run = run?;
    let json = serde_json::json!({ "mismatch": run, "machine": machine });
    write_results(args, "mismatch", &json, &mismatch::markdown(&run, &machine))
}

/// The options of the `rq2` run the flags ask for.
fn rq2_options(args: &BenchArgs) -> Result<Rq2Options> {
    let mut options = if args.quick {
        Rq2Options::quick()
    } else {
        Rq2Options::full()
    };
    match args.workflows.as_slice() {
        [] => {}
        [w] => {
            faasconf_core::catalog::builtin(w).with_context(|| format!("--workflows {w}"))?;
            options.workflow.clone_from(w);
        }
        _ => anyhow::bail!("--workflows: rq2 tunes one workflow; give one"),
    }
    if !args.loads.is_empty() {
        anyhow::bail!("--loads: rq2's load follows the trace; the flag is for rq1 and rq3");
    }
    if let Some(name) = &args.shape {
        let shape = faasconf_benchmark::rq2::Shape::parse(name)
            .map_err(|e| anyhow::anyhow!("--shape: {e}"))?;
        options = options.with_shape(shape);
    }
    if !args.seeds.is_empty() {
        options.seeds.clone_from(&args.seeds);
    }
    if !args.methods.is_empty() {
        options.methods = parse_methods(&args.methods)?;
    }
    Ok(options)
}

/// A run's next stage: the bar's message, or a line on standard error where there is no bar
/// to show (not a terminal: a log, a CI job), so a long run shows where it is either way.
fn stage(bar: &indicatif::ProgressBar, message: String) {
    if bar.is_hidden() {
        eprintln!("{message}");
    }
    bar.set_message(message);
}

/// A finished piece of a run, above the bar or on standard error where there is none.
fn finished(bar: &indicatif::ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// Runs `rq2` and writes its results.
fn run_dynamic(args: &BenchArgs) -> Result<()> {
    let options = rq2_options(args)?;
    let workdir = work_dir(args)?;
    let bar = progress_bar(
        options.seeds.len() * options.methods.len() + loads_of(&options.workflow).len(),
        "rq2",
    );
    let journal = args.out.join("rq2.journal.jsonl");
    let report = rq2::run(&options, &workdir, &journal, &mut |event| match event {
        Rq2Event::Oracle(users) => {
            stage(&bar, format!("oracle {users}u"));
            bar.inc(1);
        }
        Rq2Event::WarmUp(seed) => stage(&bar, format!("warm-up seed {seed}")),
        Rq2Event::Run(r) => {
            finished(
                &bar,
                format!(
                    "{} seed {}: QoS compliance {:.1}%, {} violating windows, mean cost {:.3}",
                    r.method,
                    r.seed,
                    100.0 * r.compliance,
                    r.violations,
                    r.mean_cost
                ),
            );
            bar.inc(1);
        }
    })?;
    let machine = end_run(&bar, &workdir);
    // The runs themselves are in the journal (one JSON line each): not written twice.
    let json = serde_json::json!({
        "journal": "rq2.journal.jsonl",
        "oracle": report.oracle,
        "summary": rq2::summaries(&report),
        "options": report.options,
        "machine": machine,
    });
    write_results(args, "rq2", &json, &rq2::markdown(&report, &machine))?;
    report_plots(faasconf_benchmark::plots::rq2_plots(&report, &args.out));
    Ok(())
}

/// Ends a run: the bar goes, and the scratch folder; the machine it was measured on, for the
/// results.
fn end_run(bar: &indicatif::ProgressBar, workdir: &std::path::Path) -> String {
    bar.finish_and_clear();
    let _ = std::fs::remove_dir_all(workdir);
    machine()
}

/// Creates `--out` and the scratch folder under it (warm-up models, the speed run's store)
/// that a run removes when it ends.
fn work_dir(args: &BenchArgs) -> Result<std::path::PathBuf> {
    let workdir = args.out.join("work");
    std::fs::create_dir_all(&workdir).with_context(|| format!("--out {}", workdir.display()))?;
    Ok(workdir)
}

fn parse_methods(names: &[String]) -> Result<Vec<Method>> {
    names
        .iter()
        .map(|m| Method::parse(m).map_err(|e| anyhow::anyhow!("--methods: {e}")))
        .collect()
}

/// Runs `rq1` or `rq3` (the same run over other methods) and writes its results.
fn run_grid(args: &BenchArgs, name: &str, title: &str) -> Result<()> {
    let options = grid_options(args)?;
    let workdir = work_dir(args)?;
    let (cells, searches) = options.size();
    let bar = progress_bar(cells + searches, name);
    let journal = args.out.join(format!("{name}.journal.jsonl"));
    let report = rq1::run(&options, &workdir, &journal, &mut |event| match event {
        Event::Oracle { workflow, users } => {
            stage(&bar, format!("oracle {workflow} {users}u"));
            bar.inc(1);
        }
        Event::WarmUp { workflow, seed } => {
            stage(&bar, format!("warm-up {workflow} seed {seed}"));
        }
        Event::Cell(c) => {
            finished(
                &bar,
                format!(
                    "{} {}u seed {} {}: best {} with {} violations",
                    c.workflow,
                    c.users,
                    c.seed,
                    c.method,
                    c.best_cost.map_or("none".into(), |b| format!("{b:.3}")),
                    c.violations
                ),
            );
            bar.inc(1);
        }
    })?;
    let machine = end_run(&bar, &workdir);
    // The cells themselves are in the journal (one JSON line each): not written twice.
    let json = serde_json::json!({
        "journal": format!("{name}.journal.jsonl"),
        "oracle": report.oracle,
        "summary": summaries(&report),
        "held": held_summaries(&report),
        "options": report.options,
        "warm_up_seconds": report.warm_up_seconds,
        "machine": machine,
    });
    let md = markdown(&report, &machine, &format!("{name}: {title}"));
    write_results(args, name, &json, &md)?;
    // The figures last: without a font the results above are still written.
    let plots = if name == "rq3" {
        faasconf_benchmark::plots::rq3_plots(&report, &args.out)
    } else {
        faasconf_benchmark::plots::rq1_plots(&report, &args.out)
    };
    report_plots(plots);
    Ok(())
}

/// Writes `<out>/<name>.json` and `<out>/<name>.md` and prints the table.
pub(crate) fn write_results(
    args: &BenchArgs,
    name: &str,
    json: &serde_json::Value,
    md: &str,
) -> Result<()> {
    let json_path = args.out.join(format!("{name}.json"));
    std::fs::write(&json_path, serde_json::to_string_pretty(json)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    let md_path = args.out.join(format!("{name}.md"));
    let command: Vec<String> = std::env::args()
        .enumerate()
        .map(|(i, a)| if i == 0 { "faasconf".into() } else { a })
        .collect();
    let md = format!("{md}\nCommand: `{}`.\n", command.join(" "));
    std::fs::write(&md_path, &md).with_context(|| format!("writing {}", md_path.display()))?;
    println!("{md}");
    println!("wrote {} and {}", json_path.display(), md_path.display());
    Ok(())
}

/// Prints the plot files written, or why none were.
pub(crate) fn report_plots(
    plots: Result<Vec<std::path::PathBuf>, faasconf_benchmark::plots::PlotError>,
) {
    match plots {
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
}

mod scale;
#[cfg(test)]
mod tests;
