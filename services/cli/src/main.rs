//! `faasconf`: the command line of faasconf for users.
//!
//! - `faasconf workflows list|show` — the built-in workflows and topology files.
//! - `faasconf sim run` — run the twin and print one JSON telemetry window per line.
//! - `faasconf sim calibrate` — fit function profiles to history (FaaSConf CSV format).
//! - `faasconf sim evaluate` — what-if evaluation of many configurations (JSON Lines).
//! - `faasconf sim fidelity` — how well the twin predicts a history file.
//! - `faasconf train` — train a workflow's agents offline and register the model.
//! - `faasconf train-job` — train in a running policy service (calibration from its store), follow it.
//! - `faasconf recommend` — ask the policy service for a configuration (JSON, stack.yml, patch).
//! - `faasconf tune` — start a tuning session against a cluster's actuator, follow it, stop it.
//! - `faasconf demo` — pre-train, start both services, tune on the twin, print each iteration.
//! - `faasconf bench` — faasconf against the baselines on the twin (JSON and Markdown).

mod args;
mod bench;
mod ci_output;
mod demo;
mod policy;
mod sim;
mod train_job;
mod tune;

use anyhow::Result;
use clap::Parser;

use crate::args::{Cli, Command, SimCommand, WorkflowsCommand};

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    match cli.command {
        Command::Train(a) => policy::train(&a),
        Command::TrainJob(a) => runtime()?.block_on(train_job::train_job(&a)),
        Command::Recommend(a) => runtime()?.block_on(policy::recommend(&a)),
        Command::Tune(a) => runtime()?.block_on(tune::tune(&a)),
        Command::Demo(a) => runtime()?.block_on(demo::demo(&a)),
        Command::Bench(a) => bench::bench(&a),
        Command::Workflows(WorkflowsCommand::List) => sim::list_workflows(),
        Command::Workflows(WorkflowsCommand::Show { workflow }) => sim::show_workflow(&workflow),
        Command::Workflows(WorkflowsCommand::Generate {
            shape,
            functions,
            seed,
            out,
        }) => sim::generate_workflow(shape, functions, seed, out.as_deref()),
        Command::Sim(SimCommand::Run(a)) => sim::run(&a),
        Command::Sim(SimCommand::Calibrate(a)) => sim::calibrate(&a),
        Command::Sim(SimCommand::Import(a)) => sim::import(&a),
        Command::Sim(SimCommand::Evaluate(a)) => sim::evaluate(&a),
        Command::Sim(SimCommand::Fidelity(a)) => sim::fidelity(&a),
    }
}
