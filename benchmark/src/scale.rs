//! `scale`: faasconf on synthetic workflows of 25-100 functions (`faasconf_core::synthetic`):
//! how fast the twin simulates them at 10, 100 and 1000 requests/s, how long a training update
//! and a tuning decision take, how much memory the process holds, and attmf against mf where
//! attention has many neighbours to choose from.
//!
//! Per (shape, size): the twin at each rate on a generous configuration (requests and function
//! calls simulated per second, one thread); one MADDPG update per algorithm; then each method
//! (faasconf with attmf, and with mf) warms up and runs rq1's protocol for a few iterations
//! under open-loop arrivals at the decision rate, which gives the per-decision times, the twin
//! windows per decision, the best cost and the misses. QoS: mean latency within twice the
//! workflow's alone latency at half a core per function, success ratio 0.9.

use std::path::Path;
use std::time::Instant;

use faasconf_agents::Algorithm;
use faasconf_core::synthetic::{Shape, alone_latency, generate};
use faasconf_core::{FunctionConfig, Qos, Workflow, WorkflowConfig};
use faasconf_store::Observation;
use faasconf_twin::{Twin, TwinOptions, Workload};
use serde::Serialize;

use crate::methods::{Method, Variant, WarmUpOptions, build, warm_up};
use crate::protocol::{Protocol, run_cell_under};

/// What `scale` measures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScaleOptions {
    /// Workflow shapes.
    pub shapes: Vec<Shape>,
    /// Functions per workflow.
    pub sizes: Vec<usize>,
    /// Rates the twin's speed is measured at, requests/s.
    pub twin_rates: Vec<f64>,
    /// Rate the decisions are taken at, requests/s.
    pub decision_rate: f64,
    /// Decisions per method and workflow.
    pub iterations: u32,
    /// The warm-up of each method.
    pub warm_up: WarmUpOptions,
    /// Timed training updates per algorithm.
    pub training_steps: usize,
    /// Twin samples the timed updates learn from.
    pub update_samples: usize,
    /// Seed of the workflows, samples, models and twin.
    pub seed: u64,
}

impl ScaleOptions {
    /// Every shape at 25, 50 and 100 functions.
    pub fn full() -> Self {
        Self {
            shapes: Shape::ALL.to_vec(),
            sizes: vec![25, 50, 100],
            twin_rates: vec![10.0, 100.0, 1000.0],
            decision_rate: 100.0,
            iterations: 5,
            warm_up: WarmUpOptions {
                samples: 300,
                updates: 300,
                online_steps: 200,
            },
            training_steps: 20,
            update_samples: 100,
            seed: 0,
        }
    }

    /// The mixed shape at 25 and 50 functions, 3 decisions per method.
    pub fn quick() -> Self {
        Self {
            shapes: vec![Shape::Mixed],
            sizes: vec![25, 50],
            iterations: 3,
            warm_up: WarmUpOptions {
                samples: 200,
                updates: 200,
                online_steps: 100,
            },
            training_steps: 10,
            ..Self::full()
        }
    }
}

/// The twin's speed at one rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TwinSpeed {
    /// Offered requests/s.
    pub rate: f64,
    /// Workflow requests simulated per second of one thread.
    pub requests_per_second: f64,
    /// Function calls simulated per second of one thread.
    pub calls_per_second: f64,
}

/// One method's decisions on one workflow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decisions {
    /// The method.
    pub method: String,
    /// Seconds of each decision.
    pub seconds: Vec<f64>,
    /// Steady twin windows each decision simulated.
    pub twin_windows: Vec<u64>,
    /// Iterations that missed QoS.
    pub misses: u32,
    /// The cheapest QoS-meeting cost seen.
    pub best_cost: Option<f64>,
    /// Seconds the warm-up took.
    pub warm_up_seconds: f64,
}

/// Everything measured on one workflow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScaleRow {
    /// The shape.
    pub shape: Shape,
    /// Functions.
    pub functions: usize,
    /// The QoS target's mean latency, seconds.
    pub qos_latency_s: f64,
    /// The twin at each rate.
    pub twin: Vec<TwinSpeed>,
    /// Milliseconds of one training update, per algorithm.
    pub update_ms: Vec<(String, f64)>,
    /// Decisions per method.
    pub decisions: Vec<Decisions>,
    /// The process's resident memory after this workflow, and its peak so far, MB.
    pub rss_mb: Option<(f64, f64)>,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scale {
    /// Every workflow.
    pub rows: Vec<ScaleRow>,
    /// What was run.
    pub options: ScaleOptions,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum ScaleError {
    /// A workflow could not be generated or configured.
    #[error(transparent)]
    Core(#[from] faasconf_core::Error),
    /// The twin refused.
    #[error(transparent)]
    Twin(#[from] faasconf_twin::Error),
    /// A warm-up failed.
    #[error(transparent)]
    WarmUp(#[from] crate::methods::WarmUpError),
    /// A measurement of training failed.
    #[error(transparent)]
    Speed(#[from] crate::speed::SpeedError),
    /// A method could not be built.
    #[error("{0}")]
    Build(String),
    /// A cell failed.
    #[error(transparent)]
    Cell(#[from] crate::protocol::CellError),
}

/// The QoS of a synthetic workflow (see the module docs).
pub fn qos_of(workflow: &Workflow) -> Qos {
    Qos {
        mean_latency_seconds: 2.0 * alone_latency(workflow, 0.5),
        min_success_ratio: 0.9,
    }
}

/// Every function at its largest CPU and memory, 8 replicas, concurrency 10.
fn generous(workflow: &Workflow) -> WorkflowConfig {
    WorkflowConfig(
        workflow
            .functions
            .iter()
            .map(|f| FunctionConfig {
                cpu_millis: f.bounds.cpu_millis.max,
                memory_mib: f.bounds.memory_mib.max,
                replicas: f.bounds.replicas.max,
                concurrency: f.bounds.concurrency.max,
            })
            .collect(),
    )
}

fn twin_speed(workflow: &Workflow, rate: f64, seed: u64) -> Result<TwinSpeed, ScaleError> {
    let mut twin = Twin::new(
        workflow.clone(),
        generous(workflow),
        Workload::Poisson {
            requests_per_second: rate,
        },
        TwinOptions {
            window_seconds: 30.0,
            seed,
        },
    )?;
    twin.run_window();
    let started = Instant::now();
    let (mut requests, mut calls) = (0u64, 0u64);
    for _ in 0..2 {
        let w = twin.run_window();
        requests += w.workflow.total_requests;
        calls += w.functions.iter().map(|f| f.requests).sum::<u64>();
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    Ok(TwinSpeed {
        rate,
        requests_per_second: requests as f64 / seconds,
        calls_per_second: calls as f64 / seconds,
    })
}

/// The closed-loop users that offer about `rate` requests/s to `workflow` (one user's cycle is
/// its latency alone plus think time): the load the warm-up samples at.
fn users_for(workflow: &Workflow, rate: f64) -> u32 {
    let cycle = alone_latency(workflow, 1.0) + workflow.platform.user_think_seconds;
    ((rate * cycle).round() as u32).clamp(1, faasconf_core::limits::MAX_USERS)
}

fn update_times(
    workflow: &Workflow,
    options: &ScaleOptions,
    users: u32,
    workdir: &Path,
) -> Result<Vec<(String, f64)>, ScaleError> {
    let samples: Vec<Observation> = faasconf_training::twin_samples(
        workflow,
        &faasconf_training::SampleOptions {
            loads: vec![users],
            samples: options.update_samples,
            seed: options.seed,
            ..faasconf_training::SampleOptions::default()
        },
        &|_| {},
    )
    .map_err(crate::speed::SpeedError::from)?;
    let refs: Vec<&Observation> = samples.iter().collect();
    let mut out = Vec::new();
    for algorithm in [Algorithm::AttMf, Algorithm::Mf] {
        let (mut model, _) = faasconf_training::train(
            workflow,
            &samples,
            &faasconf_training::TrainOptions {
                algorithm,
                updates: 2,
                online_steps: 0,
                evaluate_every: 0,
                seed: options.seed,
                ..faasconf_training::TrainOptions::default()
            },
            &workdir.join(format!("scale-{}-{}", workflow.name, algorithm.name())),
            faasconf_agents::default_device(),
            &mut |_| {},
        )
        .map_err(crate::speed::SpeedError::from)?;
        let (_, ms) = crate::speed::update_ms(
            workflow,
            &mut model,
            &refs,
            options.training_steps,
            options.seed,
        )?;
        out.push((algorithm.name().to_owned(), ms));
    }
    Ok(out)
}

fn decisions(
    workflow: &Workflow,
    options: &ScaleOptions,
    users: u32,
    workdir: &Path,
) -> Result<Vec<Decisions>, ScaleError> {
    let qos = qos_of(workflow);
    let methods = [
        Method::FAASCONF,
        Method::Faasconf(Variant {
            algorithm: Algorithm::Mf,
            ..Variant::FULL
        }),
    ];
    let warm = warm_up(
        workflow,
        &[users],
        &qos,
        &options.warm_up,
        options.seed,
        workdir,
        &methods,
    )?;
    let mut out = Vec::new();
    for method in methods {
        let mut optimiser =
            build(method, workflow, &qos, &warm, options.seed).map_err(ScaleError::Build)?;
        let cell = run_cell_under(
            workflow,
            Workload::Poisson {
                requests_per_second: options.decision_rate,
            },
            &qos,
            optimiser.as_mut(),
            options.seed,
            &Protocol {
                iterations: options.iterations,
                window_seconds: 30.0,
            },
        )?;
        out.push(Decisions {
            method: method.name(),
            seconds: cell.iterations.iter().map(|i| i.decision_s).collect(),
            twin_windows: cell
                .iterations
                .iter()
                .filter_map(|i| i.twin_windows)
                .collect(),
            misses: cell.violations,
            best_cost: cell.best_cost,
            warm_up_seconds: warm.seconds,
        });
    }
    Ok(out)
}

/// The process's resident memory now and at its peak, MB.
fn rss_mb() -> Option<(f64, f64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Runs every (shape, size); `progress` hears what starts.
pub fn run(
    options: &ScaleOptions,
    workdir: &Path,
    progress: &mut dyn FnMut(String),
) -> Result<Scale, ScaleError> {
    let mut rows = Vec::new();
    for &shape in &options.shapes {
        for &functions in &options.sizes {
            let workflow = generate(shape, functions, options.seed)?;
            let name = format!("{} x{functions}", shape.name());
            progress(format!("{name}: twin"));
            let twin = options
                .twin_rates
                .iter()
                .map(|&rate| twin_speed(&workflow, rate, options.seed))
                .collect::<Result<Vec<_>, _>>()?;
            let users = users_for(&workflow, options.decision_rate);
            progress(format!("{name}: training updates"));
            let update_ms = update_times(&workflow, options, users, workdir)?;
            progress(format!(
                "{name}: warm-up and decisions ({users} users sampled)"
            ));
            let decisions = decisions(&workflow, options, users, workdir)?;
            rows.push(ScaleRow {
                shape,
                functions,
                qos_latency_s: qos_of(&workflow).mean_latency_seconds,
                twin,
                update_ms,
                decisions,
                rss_mb: rss_mb(),
            });
        }
    }
    Ok(Scale {
        rows,
        options: options.clone(),
    })
}

fn percentile(values: &[f64], q: f64) -> Option<f64> {
    let mut v = values.to_vec();
    (!v.is_empty()).then(|| faasconf_twin::report::percentile(&mut v, q))
}

/// The report as Markdown.
pub fn markdown(run: &Scale, machine: &str) -> String {
    use std::fmt::Write;
    let mut s = format!(
        "# scale: synthetic workflows of {:?} functions\n\nMachine: {machine}. Seed {}; decisions under Poisson arrivals at {} requests/s, {} per method after a warm-up of {} twin samples; QoS mean latency 2x the alone latency at half a core per function.\n\n",
        run.options.sizes,
        run.options.seed,
        run.options.decision_rate,
        run.options.iterations,
        run.options.warm_up.samples
    );
    s.push_str("| shape | functions | method | decision s p50 / p95 / max | twin windows per decision | misses | best cost | update ms | warm-up s | RSS MB (now / peak) |\n|---|---|---|---|---|---|---|---|---|---|\n");
    let num = |v: Option<f64>, d: usize| v.map_or("–".to_owned(), |v| format!("{v:.d$}"));
    for r in &run.rows {
        for d in &r.decisions {
            let algorithm = if d.method.contains("-mf") {
                "mf"
            } else {
                "attmf"
            };
            let update = r
                .update_ms
                .iter()
                .find(|(a, _)| a == algorithm)
                .map(|x| x.1);
            let windows =
                d.twin_windows.iter().sum::<u64>() as f64 / d.twin_windows.len().max(1) as f64;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} / {} / {} | {windows:.0} | {} / {} | {} | {} | {:.0} | {} |",
                r.shape.name(),
                r.functions,
                d.method,
                num(percentile(&d.seconds, 0.5), 2),
                num(percentile(&d.seconds, 0.95), 2),
                num(d.seconds.iter().copied().reduce(f64::max), 2),
                d.misses,
                d.seconds.len(),
                num(d.best_cost, 3),
                num(update, 1),
                d.warm_up_seconds,
                r.rss_mb.map_or("–".to_owned(), |(now, peak)| format!(
                    "{now:.0} / {peak:.0}"
                )),
            );
        }
    }
    s.push_str("\n## The twin's speed (generous configuration, one thread)\n\n| shape | functions | requests/s offered | workflow requests simulated per s | function calls simulated per s |\n|---|---|---|---|---|\n");
    for r in &run.rows {
        for t in &r.twin {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.0} | {:.0} |",
                r.shape.name(),
                r.functions,
                t.rate,
                t.requests_per_second,
                t.calls_per_second
            );
        }
    }
    s
}

/// The plots: decision time and memory against functions, the twin's speed against load.
pub fn plots(run: &Scale, dir: &Path) -> Result<Vec<std::path::PathBuf>, crate::plots::PlotError> {
    use crate::plots::{Chart, save_chart};
    let by_size = |value: &dyn Fn(&ScaleRow) -> Option<f64>, shape: Shape| {
        run.rows
            .iter()
            .filter(|r| r.shape == shape)
            .filter_map(|r| Some((r.functions as f64, value(r)?)))
            .collect::<Vec<_>>()
    };
    let mut decision = Chart::new(
        "decision time (p95) against workflow size",
        "functions",
        "seconds",
    );
    let mut memory = Chart::new(
        "resident memory against workflow size",
        "functions",
        "MB (peak so far)",
    );
    let mut speed = Chart::new(
        "twin speed against offered load",
        "requests/s offered",
        "function calls simulated per s",
    );
    for &shape in &run.options.shapes {
        for method in ["faasconf", "faasconf-mf"] {
            decision.line(
                format!("{} {method}", shape.name()),
                by_size(
                    &|r| {
                        let d = r.decisions.iter().find(|d| d.method == method)?;
                        percentile(&d.seconds, 0.95)
                    },
                    shape,
                ),
            );
        }
        memory.line(
            shape.name().to_owned(),
            by_size(&|r| Some(r.rss_mb?.1), shape),
        );
        for r in run.rows.iter().filter(|r| r.shape == shape) {
            speed.line(
                format!("{} x{}", shape.name(), r.functions),
                r.twin
                    .iter()
                    .map(|t| (t.rate, t.calls_per_second))
                    .collect(),
            );
        }
    }
    let mut files = save_chart(&decision, dir, "scale-decision-time")?;
    files.extend(save_chart(&memory, dir, "scale-memory")?);
    files.extend(save_chart(&speed, dir, "scale-twin-speed")?);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_scale_run_measures_every_part() {
        let options = ScaleOptions {
            shapes: vec![Shape::FanOut],
            sizes: vec![4],
            twin_rates: vec![5.0],
            decision_rate: 5.0,
            iterations: 1,
            warm_up: WarmUpOptions {
                samples: 20,
                updates: 2,
                online_steps: 0,
            },
            training_steps: 1,
            update_samples: 20,
            seed: 1,
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let mut heard = Vec::new();
        let run = run(&options, dir.path(), &mut |p| heard.push(p)).expect("runs");
        assert_eq!(run.rows.len(), 1);
        let row = &run.rows[0];
        assert!(row.twin[0].requests_per_second > 0.0 && row.twin[0].calls_per_second > 0.0);
        assert_eq!(row.update_ms.len(), 2);
        assert_eq!(row.decisions.len(), 2);
        assert!(row.decisions.iter().all(|d| d.seconds.len() == 1));
        assert!(heard.iter().any(|p| p.contains("decisions")));
        let md = markdown(&run, "test");
        assert!(md.contains("| fan-out | 4 | faasconf |"), "{md}");
        assert!(md.contains("| fan-out | 4 | faasconf-mf |"), "{md}");
    }
}
