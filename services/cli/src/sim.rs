//! The `workflows` and `sim` subcommands.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use faasconf_core::catalog::{self, ProfileSet};
use faasconf_core::history::read_history;
use faasconf_core::{FailureMode, FieldError, Routing, Workflow, WorkflowConfig};
use faasconf_twin::calibrate::{self, CalibrationOptions};
use faasconf_twin::evaluate::{self as what_if, parse_config};
use faasconf_twin::fidelity::Fidelity;
use faasconf_twin::workload::read_azure_series;
use faasconf_twin::{Twin, TwinOptions, Workload};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::args::{
    CalibrateArgs, EvaluateArgs, FailureChoice, FidelityArgs, ImportArgs, LoadArgs, RoutingChoice,
    RunArgs, TraceArgs, WorkflowArgs,
};

/// Formats every field error on its own line.
fn field_report(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn load_workflow(args: &WorkflowArgs) -> Result<Workflow> {
    let workflow = catalog::resolve(&args.workflow)
        .with_context(|| format!("--workflow {}", args.workflow))?;
    match &args.profiles {
        None => Ok(workflow),
        Some(path) => {
            let set =
                ProfileSet::read(path).with_context(|| format!("--profiles {}", path.display()))?;
            Ok(workflow.with_profiles(&set))
        }
    }
}

fn workload(load: &LoadArgs, trace: &TraceArgs) -> Result<Workload> {
    let workload = match (load.users, load.rps, &load.trace) {
        (Some(users), None, None) => Workload::ClosedLoop { users },
        (None, Some(requests_per_second), None) => Workload::Poisson {
            requests_per_second,
        },
        (None, None, Some(path)) => Workload::Trace {
            per_minute: read_azure_series(
                path,
                trace.trace_row,
                trace.trace_start,
                trace.trace_minutes,
            )
            .with_context(|| format!("--trace {}", path.display()))?,
            min_users: trace.min_users,
            max_users: trace.max_users,
        },
        _ => bail!("give exactly one of --users, --rps, --trace"),
    };
    workload.validate().context("load flags")?;
    Ok(workload)
}

/// A progress bar on standard error, as every long CLI command shows.
pub(crate) fn progress_bar(total: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

pub fn list_workflows() -> Result<()> {
    for name in catalog::BUILTIN {
        let w = catalog::builtin(name)?;
        println!("{name:<12} {:>2} functions  entry {}", w.len(), w.entry());
    }
    Ok(())
}

pub fn show_workflow(name: &str) -> Result<()> {
    let w = catalog::resolve(name).with_context(|| format!("workflow {name}"))?;
    let out = json!({
        "name": w.name,
        "entry": w.entry(),
        "functions": w.functions,
        "edges": w.edges.iter().map(|e| json!({"from": w.functions[e.from].name, "to": w.functions[e.to].name, "weight": e.weight})).collect::<Vec<_>>(),
        "adjacency": w.adjacency(),
        "platform": w.platform,
        "qos": w.qos(),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// `workflows generate`: a synthetic workflow's topology file, printed or written to `out`.
pub fn generate_workflow(
    shape: faasconf_core::synthetic::Shape,
    functions: usize,
    seed: u64,
    out: Option<&std::path::Path>,
) -> Result<()> {
    let w = faasconf_core::synthetic::generate(shape, functions, seed).context("--functions")?;
    let text = serde_json::to_string_pretty(&catalog::topology_file(&w))?;
    match out {
        None => println!("{text}"),
        Some(path) => {
            fs::write(path, text).with_context(|| format!("--out {}", path.display()))?;
            eprintln!("wrote {} ({} functions)", path.display(), w.len());
        }
    }
    Ok(())
}

fn middle_config(w: &Workflow) -> Result<WorkflowConfig> {
    Ok(w.config_from_actions(&vec![[0.5; 4]; w.len()])?)
}

pub fn run(args: &RunArgs) -> Result<()> {
    let w = load_workflow(&args.workflow)?;
    let load = workload(&args.load, &args.trace)?;
    let config = match &args.config {
        None => middle_config(&w)?,
        Some(path) => {
            let text =
                fs::read_to_string(path).with_context(|| format!("--config {}", path.display()))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("--config {}: malformed JSON", path.display()))?;
            parse_config(&w, &value, "config").map_err(|e| {
                anyhow::anyhow!("--config {}:\n{}", path.display(), field_report(&e))
            })?
        }
    };
    let options = TwinOptions {
        window_seconds: args.window_seconds,
        seed: args.seed,
    };
    let mut twin = Twin::new(w, config, load, options)?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            fs::File::create(path).with_context(|| format!("--output {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    for _ in 0..args.windows {
        let window = twin.run_window();
        serde_json::to_writer(&mut out, &window)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// `sim import`: a history CSV into a store.
pub fn import(args: &ImportArgs) -> Result<()> {
    let w = catalog::resolve(&args.workflow)
        .with_context(|| format!("--workflow {}", args.workflow))?;
    let mut store = faasconf_store::Store::open(&args.store)
        .with_context(|| format!("--store {}", args.store.display()))?;
    crate::policy::import_history_file(&mut store, &w, &args.history, &w.qos())?;
    Ok(())
}

/// The rows `sim calibrate` fits: the CSV's, or the store's usable windows of the workflow.
fn calibration_rows(
    args: &CalibrateArgs,
    w: &Workflow,
) -> Result<(Vec<faasconf_core::history::HistoryRow>, String)> {
    if let Some(path) = &args.history {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        return Ok((history_rows(path, w)?, format!("--history {name}")));
    }
    let path = args.store.as_ref().context("give --history or --store")?;
    let store =
        faasconf_store::Store::open(path).with_context(|| format!("--store {}", path.display()))?;
    let stored = store
        .observations(w)
        .with_context(|| format!("--store {}", path.display()))?;
    let rows: Vec<_> = stored
        .iter()
        .filter_map(|s| faasconf_store::history_from_observation(w, &s.observation))
        .collect();
    eprintln!(
        "store: {} of {} stored windows of {} are usable rows ({} open-loop at their measured arrival rate)",
        rows.len(),
        stored.len(),
        w.name,
        rows.iter()
            .filter(|r| r.arrivals_per_second.is_some())
            .count()
    );
    if rows.len() < 2 {
        bail!(
            "--store {}: {} usable windows of {} (with users or measured arrivals, rollout complete, every series measured); at least 2 are needed",
            path.display(),
            rows.len(),
            w.name
        );
    }
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok((rows, format!("--store {name}")))
}

pub fn calibrate(args: &CalibrateArgs) -> Result<()> {
    let w = catalog::resolve(&args.workflow)
        .with_context(|| format!("--workflow {}", args.workflow))?;
    let (rows, from) = calibration_rows(args, &w)?;
    if let Some(users) = args.users {
        let mismatched: Vec<String> = rows
            .iter()
            .filter(|r| r.arrivals_per_second.is_none() && r.users.round() as u32 != users)
            .take(10)
            .map(|r| format!("line {} (qps {})", r.line, r.users))
            .collect();
        if !mismatched.is_empty() {
            bail!(
                "--users {users}: the history's qps column differs on {}",
                mismatched.join(", ")
            );
        }
    }
    let options = CalibrationOptions {
        windows: args.windows,
        seed: args.seed,
        max_evaluations: args.max_evaluations.max(2),
        routing: match args.routing {
            RoutingChoice::Auto => None,
            RoutingChoice::LeastInflight => Some(Routing::LeastInflight),
            RoutingChoice::Random => Some(Routing::Random),
        },
        failure_mode: match args.failure_mode {
            FailureChoice::Auto => None,
            FailureChoice::FailFast => Some(FailureMode::FailFast),
            FailureChoice::RunToEnd => Some(FailureMode::RunToEnd),
        },
        ..CalibrationOptions::default()
    };
    let bar = progress_bar(1, "calibrating");
    let fit = calibrate::calibrate(&w, &rows, &options, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    let fitted = w.clone().with_profiles(&fit.profiles);
    let in_sample = Fidelity::measure(
        &w,
        &rows,
        &calibrate::predict_rows(&fitted, &rows, args.report_windows, args.seed, 0),
    );
    let cross_validation = if args.folds >= 2 {
        let bar = progress_bar(1, "validating");
        let cv = calibrate::cross_validate(
            &w,
            &rows,
            args.folds,
            args.report_windows,
            &options,
            &mut |fold, done, total| {
                bar.set_message(format!("fold {}/{}", fold + 1, args.folds));
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            },
        );
        bar.finish_and_clear();
        Some(cv)
    } else {
        None
    };
    let mut profiles = fit.profiles.clone();
    profiles.source = format!(
        "faasconf sim calibrate {from} --workflow {}{} --folds {} --max-evaluations {} --seed {} ({} rows)",
        args.workflow,
        args.users
            .map(|u| format!(" --users {u}"))
            .unwrap_or_default(),
        args.folds,
        args.max_evaluations,
        args.seed,
        rows.len()
    );
    profiles.fit = Some(json!({
        "loss": fit.loss,
        "initial_loss": fit.initial_loss,
        "evaluations": fit.evaluations,
        "structures": fit.structures,
        "in_sample": in_sample,
        "cross_validation": cross_validation,
    }));
    write_atomically(&args.out, serde_json::to_string_pretty(&profiles)? + "\n")?;
    eprintln!(
        "routing {:?}, failure mode {:?}; loss {:.4} (from {:.4}), {} evaluations",
        profiles.platform.routing,
        profiles.platform.failure_mode,
        fit.loss,
        fit.initial_loss,
        fit.evaluations
    );
    eprintln!("in-sample: {}", summary(&in_sample));
    if let Some(cv) = &cross_validation {
        eprintln!(
            "{}-fold cross-validated (pooled held-out rows): {}",
            cv.folds,
            summary(&cv.pooled)
        );
    }
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

fn history_rows(path: &Path, w: &Workflow) -> Result<Vec<faasconf_core::history::HistoryRow>> {
    read_history(path, w).map_err(|e| match e {
        faasconf_core::Error::Invalid(errors) => {
            anyhow::anyhow!("--history {}:\n{}", path.display(), field_report(&errors))
        }
        other => anyhow::Error::new(other).context(format!("--history {}", path.display())),
    })
}

pub fn fidelity(args: &FidelityArgs) -> Result<()> {
    let w = load_workflow(&args.workflow)?;
    let rows = history_rows(&args.history, &w)?;
    let predictions = calibrate::predict_rows(&w, &rows, args.windows, args.seed, 0);
    let fidelity = Fidelity::measure(&w, &rows, &predictions);
    println!("{}", serde_json::to_string_pretty(&fidelity)?);
    eprintln!("{}", summary(&fidelity));
    Ok(())
}

fn summary(f: &Fidelity) -> String {
    format!(
        "e2e Spearman {:.3}, e2e median APE {:.1}%, worst p75 Spearman {:.3}, success Spearman {:.3}",
        f.e2e_spearman,
        100.0 * f.e2e_median_ape,
        f.worst_p75_spearman(),
        f.success_spearman
    )
}

/// Writes through a temporary file and a rename, so a failed run never leaves half a file.
fn write_atomically(path: &Path, text: String) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub fn evaluate(args: &EvaluateArgs) -> Result<()> {
    let w = load_workflow(&args.workflow)?;
    let load = Workload::ClosedLoop { users: args.users };
    load.validate().context("--users")?;
    let text = fs::read_to_string(&args.input)
        .with_context(|| format!("--input {}", args.input.display()))?;
    let requests = what_if::parse_requests(&w, &text).map_err(|errors| {
        anyhow::anyhow!(
            "--input {}: {} problem(s), nothing simulated:\n{}",
            args.input.display(),
            errors.len(),
            field_report(&errors)
        )
    })?;
    let bar = progress_bar(requests.len(), "evaluating");
    let done = AtomicUsize::new(0);
    let outcomes = what_if::evaluate(
        &w,
        &requests,
        &load,
        args.windows,
        TwinOptions {
            window_seconds: 30.0,
            seed: args.seed,
        },
        0,
        &|n| {
            let now = done.fetch_add(n, Ordering::Relaxed) + n;
            bar.set_position(now as u64);
        },
    )?;
    bar.finish_and_clear();
    let mut text = String::new();
    for o in &outcomes {
        text.push_str(&serde_json::to_string(o)?);
        text.push('\n');
    }
    write_atomically(&args.output, text)?;
    eprintln!(
        "evaluated {} configurations -> {}",
        outcomes.len(),
        args.output.display()
    );
    Ok(())
}
