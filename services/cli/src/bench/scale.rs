//! `faasconf bench scale`: the scale experiment on synthetic workflows.

use anyhow::Result;
use faasconf_benchmark::scale::{self, ScaleOptions};
use faasconf_core::synthetic::Shape;

use super::{end_run, report_plots, stage, work_dir, write_results};
use crate::args::BenchArgs;
use crate::sim::progress_bar;

/// The grid `args` ask for: `--quick` or the full one, narrowed to `--workflows` (synthetic
/// shapes) and `--functions`, with one `--seeds` value.
pub(super) fn scale_options(args: &BenchArgs) -> Result<ScaleOptions> {
    if !(args.seeds.len() <= 1 && args.methods.is_empty() && args.loads.is_empty()) {
        anyhow::bail!(
            "scale takes --quick, --out, --workflows (synthetic shapes), --functions and one --seeds value; it runs faasconf with attmf and with mf at its own load"
        );
    }
    let mut options = if args.quick {
        ScaleOptions::quick()
    } else {
        ScaleOptions::full()
    };
    if let Some(&seed) = args.seeds.first() {
        options.seed = seed;
    }
    if !args.workflows.is_empty() {
        options.shapes = args
            .workflows
            .iter()
            .map(|name| Shape::parse(name).map_err(|e| anyhow::anyhow!("--workflows: {e}")))
            .collect::<Result<_>>()?;
    }
    if !args.functions.is_empty() {
        if let Some(n) = args.functions.iter().find(|n| !(2..=200).contains(*n)) {
            anyhow::bail!("--functions: {n}: a synthetic workflow has 2-200 functions");
        }
        options.sizes = args.functions.clone();
    }
    Ok(options)
}

/// Runs `scale` and writes its results and plots.
pub(super) fn run_scale(args: &BenchArgs) -> Result<()> {
    let options = scale_options(args)?;
    let workdir = work_dir(args)?;
    let bar = progress_bar(options.shapes.len() * options.sizes.len() * 3, "scale");
    let run = scale::run(&options, &workdir, &mut |what| {
        bar.inc(1);
        stage(&bar, what);
    });
    let machine = end_run(&bar, &workdir);
    let run = run?;
    let json = serde_json::json!({ "scale": run, "machine": machine });
    write_results(args, "scale", &json, &scale::markdown(&run, &machine))?;
    report_plots(scale::plots(&run, &args.out));
    Ok(())
}
