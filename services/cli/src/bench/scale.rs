//! `faasconf bench scale`: the scale experiment on synthetic workflows.

use anyhow::Result;
use faasconf_benchmark::scale::{self, ScaleOptions};

use super::{end_run, report_plots, stage, work_dir, write_results};
use crate::args::BenchArgs;
use crate::sim::progress_bar;

/// Runs `scale` and writes its results and plots.
pub(super) fn run_scale(args: &BenchArgs) -> Result<()> {
    if !(args.seeds.len() <= 1
        && args.methods.is_empty()
        && args.workflows.is_empty()
        && args.loads.is_empty())
    {
        anyhow::bail!(
            "scale takes --quick, --out and one --seeds value; it generates its own workflows and runs faasconf with attmf and with mf"
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
