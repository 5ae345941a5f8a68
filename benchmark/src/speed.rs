//! `speed`: how fast and how big faasconf is, on the machine it runs on.
//!
//! - `RecommendConfig` over loopback gRPC against the release `faasconf-policy` binary with a
//!   loaded model: latency percentiles with a telemetry window in the request (the CI path) and
//!   without one (the twin-validated path), and throughput with concurrent clients.
//! - One training step (a MADDPG update of one batch) per learning algorithm.
//! - Twin windows per second (`parallel` at 20 users, TcktApp at 40).
//! - Peak resident memory of both services: the policy after the requests above, the
//!   actuator (twin backend) after streaming windows as fast as its virtual clock allows.

use std::path::{Path, PathBuf};
use std::time::Instant;

use faasconf_agents::Algorithm;
use faasconf_core::catalog;
use faasconf_core::rng::Rng;
use faasconf_launch::{Logs, ServiceProcess};
use faasconf_proto::v1::{self, actuator_client::ActuatorClient, policy_client::PolicyClient};
use faasconf_store::{Observation, Store};
use faasconf_training::replay::{ReplayBuffer, transitions};
use faasconf_training::{JobSpec, SampleOptions, TrainOptions, run_job, train, twin_samples};
use faasconf_twin::{Twin, TwinOptions, Workload};
use serde::Serialize;

/// What `speed` measures, and how much.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpeedOptions {
    /// Timed requests with a telemetry window.
    pub requests: usize,
    /// Timed requests without one (each runs the twin).
    pub twin_requests: usize,
    /// Concurrent clients of the throughput run, and requests each sends.
    pub clients: usize,
    /// Requests per client.
    pub requests_per_client: usize,
    /// Timed training steps per algorithm.
    pub training_steps: usize,
    /// Twin windows per scenario.
    pub twin_windows: u32,
    /// Windows the actuator streams before its memory is read.
    pub actuator_windows: u64,
    /// Seed of the samples, the model and the twin.
    pub seed: u64,
}

impl SpeedOptions {
    /// The full measurement.
    pub fn full() -> Self {
        Self {
            requests: 5000,
            twin_requests: 20,
            clients: 8,
            requests_per_client: 1000,
            training_steps: 200,
            twin_windows: 200,
            actuator_windows: 200,
            seed: 0,
        }
    }

    /// A shorter one (about a minute).
    pub fn quick() -> Self {
        Self {
            requests: 1000,
            twin_requests: 5,
            requests_per_client: 250,
            training_steps: 50,
            twin_windows: 50,
            actuator_windows: 50,
            ..Self::full()
        }
    }
}

/// Latency percentiles, microseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// Requests timed.
    pub requests: usize,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Slowest.
    pub max_us: f64,
    /// Mean.
    pub mean_us: f64,
}

impl Latency {
    /// The percentiles of `micros` (nearest rank).
    pub fn of(mut micros: Vec<f64>) -> Self {
        micros.sort_by(f64::total_cmp);
        let at = |q: f64| {
            micros
                .get(((micros.len().max(1) - 1) as f64 * q).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        Self {
            requests: micros.len(),
            p50_us: at(0.5),
            p90_us: at(0.9),
            p99_us: at(0.99),
            max_us: micros.last().copied().unwrap_or(f64::NAN),
            mean_us: micros.iter().sum::<f64>() / micros.len().max(1) as f64,
        }
    }
}

/// What `speed` measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Speed {
    /// `RecommendConfig` with a telemetry window.
    pub recommend_window: Latency,
    /// `RecommendConfig` without one (twin-validated).
    pub recommend_twin: Latency,
    /// Requests per second with a window, `clients` concurrent clients.
    pub throughput_rps: f64,
    /// Milliseconds per training step, per algorithm (`parallel`, the default batch).
    pub training_step_ms: Vec<(String, f64)>,
    /// Twin windows per second, per scenario.
    pub twin_windows_per_second: Vec<(String, f64)>,
    /// Peak resident memory of `faasconf-policy`, MB.
    pub policy_peak_rss_mb: Option<f64>,
    /// Resident memory of `faasconf-policy` after each phase (started with its model loaded,
    /// the requests with a window, the twin-validated ones, the throughput run), MB.
    pub policy_rss_mb: Vec<(String, f64)>,
    /// Peak resident memory of `faasconf-actuator`, MB.
    pub actuator_peak_rss_mb: Option<f64>,
    /// What was run.
    pub options: SpeedOptions,
}

/// Why a measurement failed.
#[derive(Debug, thiserror::Error)]
pub enum SpeedError {
    /// A service binary could not be started or did not listen.
    #[error(transparent)]
    Launch(#[from] faasconf_launch::LaunchError),
    /// An RPC failed.
    #[error("{0}")]
    Rpc(String),
    /// Training or sampling failed.
    #[error(transparent)]
    Training(#[from] faasconf_training::Error),
    /// The twin refused the scenario.
    #[error(transparent)]
    Twin(#[from] faasconf_twin::Error),
    /// A domain error.
    #[error(transparent)]
    Core(#[from] faasconf_core::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] faasconf_store::Error),
    /// A file could not be written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Starts a service binary for a measurement (stopped when dropped).
fn start_service(binary: &Path, args: &[&str]) -> Result<ServiceProcess, SpeedError> {
    Ok(ServiceProcess::start_on_loopback(
        binary,
        args,
        Logs::Discard,
    )?)
}

fn rpc(e: impl std::fmt::Display) -> SpeedError {
    SpeedError::Rpc(e.to_string())
}

/// Runs every measurement; the service binaries are looked for in `bin_dir`, the model is
/// trained under `workdir`.
pub async fn run(
    options: &SpeedOptions,
    bin_dir: &Path,
    workdir: &Path,
) -> Result<Speed, SpeedError> {
    let training_step_ms = training_steps(options, workdir)?;
    let twin_windows_per_second = twin_speed(options)?;
    let Recommend {
        window: recommend_window,
        twin: recommend_twin,
        throughput_rps,
        peak_rss_mb: policy_peak_rss_mb,
        rss_mb: policy_rss_mb,
    } = recommend(options, &bin_dir.join("faasconf-policy"), workdir).await?;
    let actuator_peak_rss_mb = actuator_memory(options, &bin_dir.join("faasconf-actuator")).await?;
    Ok(Speed {
        recommend_window,
        recommend_twin,
        throughput_rps,
        training_step_ms,
        twin_windows_per_second,
        policy_peak_rss_mb,
        policy_rss_mb,
        actuator_peak_rss_mb,
        options: options.clone(),
    })
}

/// Trains a small `parallel` model into `<workdir>/<name>.db` (600 samples, 300 updates, seeded)
/// and starts `faasconf-policy` over it on free loopback ports, with `extra` arguments.
pub fn start_policy(
    policy_bin: &Path,
    workdir: &Path,
    name: &str,
    seed: u64,
    extra: &[&str],
) -> Result<ServiceProcess, SpeedError> {
    let workflow = catalog::builtin("parallel")?;
    let store_path = workdir.join(format!("{name}.db"));
    let models: PathBuf = workdir.join(format!("{name}-models"));
    {
        let mut store = Store::open(&store_path)?;
        let spec = JobSpec {
            workflow: "parallel".into(),
            samples: 600,
            loads: vec![10, 20, 30],
            train: TrainOptions {
                updates: 300,
                evaluate_every: 0,
                seed,
                ..TrainOptions::default()
            },
            promote: true,
            calibrate: None,
        };
        run_job(
            &mut store,
            &workflow,
            &spec,
            &models,
            faasconf_agents::default_device(),
            &mut |_| {},
        )?;
    }
    let store_arg = store_path.display().to_string();
    let models_arg = models.display().to_string();
    let mut args = vec![
        "--workflow",
        "parallel",
        "--store",
        &store_arg,
        "--models",
        &models_arg,
    ];
    args.extend_from_slice(extra);
    start_service(policy_bin, &args)
}

/// A steady twin window of `parallel` at 20 users under the middle configuration, as a
/// telemetry message (the fast path's `current`).
pub fn sample_window(seed: u64) -> Result<v1::TelemetryWindow, SpeedError> {
    let workflow = catalog::builtin("parallel")?;
    let start = workflow.config_from_actions(&vec![[0.5; 4]; workflow.len()])?;
    let mut twin = Twin::new(
        workflow.clone(),
        start,
        Workload::ClosedLoop { users: 20 },
        TwinOptions {
            window_seconds: 30.0,
            seed,
        },
    )?;
    twin.run_window();
    Ok(faasconf_proto::window::window_to_proto(
        &workflow,
        &twin.run_window(),
    ))
}

/// Milliseconds per update of each algorithm, after a few untimed ones.
fn training_steps(
    options: &SpeedOptions,
    workdir: &Path,
) -> Result<Vec<(String, f64)>, SpeedError> {
    let workflow = catalog::builtin("parallel")?;
    let samples: Vec<Observation> = twin_samples(
        &workflow,
        &SampleOptions {
            samples: 300,
            seed: options.seed,
            ..SampleOptions::default()
        },
        &|_| {},
    )?;
    let refs: Vec<&Observation> = samples.iter().collect();
    let mut out = Vec::new();
    for algorithm in Algorithm::ALL {
        let (mut model, _) = train(
            &workflow,
            &samples,
            &TrainOptions {
                algorithm,
                updates: 5,
                online_steps: 0,
                evaluate_every: 0,
                seed: options.seed,
                ..TrainOptions::default()
            },
            &workdir.join(format!("speed-{}", algorithm.name())),
            faasconf_agents::default_device(),
            &mut |_| {},
        )?;
        let (batch, ms) = update_ms(
            &workflow,
            &mut model,
            &refs,
            options.training_steps,
            options.seed,
        )?;
        out.push((format!("{} (batch {batch})", algorithm.name()), ms));
    }
    Ok(out)
}

/// Milliseconds one MADDPG update of `model` takes, over `steps` batches of transitions from
/// `samples`; also the batch size.
pub fn update_ms(
    workflow: &faasconf_core::Workflow,
    model: &mut faasconf_training::Model,
    samples: &[&Observation],
    steps: usize,
    seed: u64,
) -> Result<(usize, f64), SpeedError> {
    let mut replay = ReplayBuffer::new(10_000);
    replay.extend(transitions(workflow, &model.encoder, samples)?);
    let batch = model.learner.config().batch_size;
    let mut rng = Rng::new(seed);
    let batches: Vec<_> = (0..steps.max(1))
        .map(|_| replay.sample(batch, &mut rng))
        .collect();
    let started = Instant::now();
    for b in &batches {
        model
            .learner
            .update(b)
            .map_err(faasconf_training::Error::from)?;
    }
    Ok((
        batch,
        started.elapsed().as_secs_f64() * 1e3 / batches.len() as f64,
    ))
}

/// Windows per second of the twin in two scenarios.
fn twin_speed(options: &SpeedOptions) -> Result<Vec<(String, f64)>, SpeedError> {
    let mut out = Vec::new();
    for (name, users) in [("parallel", 20), ("tcktapp", 40)] {
        let workflow = catalog::builtin(name)?;
        let config = workflow.config_from_actions(&vec![[0.5; 4]; workflow.len()])?;
        let mut twin = Twin::new(
            workflow,
            config,
            Workload::ClosedLoop { users },
            TwinOptions {
                window_seconds: 30.0,
                seed: options.seed,
            },
        )?;
        twin.run_window();
        let started = Instant::now();
        for _ in 0..options.twin_windows.max(1) {
            twin.run_window();
        }
        let rate = f64::from(options.twin_windows.max(1)) / started.elapsed().as_secs_f64();
        out.push((format!("{name}, {users} users, 30 s windows"), rate));
    }
    Ok(out)
}

/// What the policy service measured.
struct Recommend {
    window: Latency,
    twin: Latency,
    throughput_rps: f64,
    peak_rss_mb: Option<f64>,
    rss_mb: Vec<(String, f64)>,
}

/// Latency of both paths, throughput, and the policy's memory.
async fn recommend(
    options: &SpeedOptions,
    policy_bin: &Path,
    workdir: &Path,
) -> Result<Recommend, SpeedError> {
    let policy = start_policy(policy_bin, workdir, "speed", options.seed, &[])?;
    let mut client = PolicyClient::connect(policy.endpoint())
        .await
        .map_err(rpc)?;
    let mut rss_mb = Vec::new();
    let mut phase = |name: &str| {
        if let Some(mb) = policy.rss_mb() {
            rss_mb.push((name.to_owned(), mb));
        }
    };
    let window = sample_window(options.seed)?;
    let with_window = v1::RecommendConfigRequest {
        workflow: "parallel".into(),
        load: Some(v1::Load {
            kind: Some(v1::load::Kind::ConcurrentUsers(20)),
        }),
        qos: None,
        current: Some(window),
        model_version: String::new(),
    };
    let without = v1::RecommendConfigRequest {
        current: None,
        ..with_window.clone()
    };
    let time = |client: &mut PolicyClient<tonic::transport::Channel>,
                request: v1::RecommendConfigRequest| {
        let mut client = client.clone();
        async move {
            let t = Instant::now();
            client.recommend_config(request).await.map_err(rpc)?;
            Ok::<f64, SpeedError>(t.elapsed().as_secs_f64() * 1e6)
        }
    };
    for _ in 0..200 {
        time(&mut client, with_window.clone()).await?;
    }
    phase("started, model loaded, 200 requests");
    let mut fast = Vec::with_capacity(options.requests);
    for _ in 0..options.requests {
        fast.push(time(&mut client, with_window.clone()).await?);
    }
    phase("requests with a window");
    let mut slow = Vec::with_capacity(options.twin_requests);
    for _ in 0..options.twin_requests {
        slow.push(time(&mut client, without.clone()).await?);
    }
    phase("twin-validated requests");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..options.clients.max(1) {
        let mut client = client.clone();
        let request = with_window.clone();
        let count = options.requests_per_client;
        tasks.spawn(async move {
            for _ in 0..count {
                client
                    .recommend_config(request.clone())
                    .await
                    .map_err(rpc)?;
            }
            Ok::<(), SpeedError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(rpc)??;
    }
    let throughput = (options.clients.max(1) * options.requests_per_client) as f64
        / started.elapsed().as_secs_f64();
    phase("throughput run");
    Ok(Recommend {
        window: Latency::of(fast),
        twin: Latency::of(slow),
        throughput_rps: throughput,
        peak_rss_mb: policy.peak_rss_mb(),
        rss_mb,
    })
}

/// The actuator's peak memory after streaming `actuator_windows` windows of `parallel` at 20
/// users from its twin backend.
async fn actuator_memory(options: &SpeedOptions, binary: &Path) -> Result<Option<f64>, SpeedError> {
    let actuator = start_service(
        binary,
        &[
            "--workflow",
            "parallel",
            "--clock",
            "virtual",
            "--users",
            "20",
        ],
    )?;
    let mut client = ActuatorClient::connect(actuator.endpoint())
        .await
        .map_err(rpc)?;
    let mut stream = client
        .stream_telemetry(v1::StreamTelemetryRequest {
            workflow: "parallel".into(),
            lockstep: false,
        })
        .await
        .map_err(rpc)?
        .into_inner();
    for _ in 0..options.actuator_windows {
        if stream.message().await.map_err(rpc)?.is_none() {
            break;
        }
    }
    Ok(actuator.peak_rss_mb())
}

/// The measurements as a Markdown table.
pub fn markdown(speed: &Speed, machine: &str) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# speed\n\nMachine: {machine}; burn backend flex (CPU).\n"
    );
    let _ = writeln!(
        s,
        "## RecommendConfig over loopback gRPC (`parallel`, 20 users, loaded model)\n\n| path | requests | p50 µs | p90 µs | p99 µs | max µs |\n|---|---|---|---|---|---|"
    );
    for (name, l) in [
        ("with a telemetry window", &speed.recommend_window),
        ("twin-validated (no window)", &speed.recommend_twin),
    ] {
        let _ = writeln!(
            s,
            "| {name} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            l.requests, l.p50_us, l.p90_us, l.p99_us, l.max_us
        );
    }
    let _ = writeln!(
        s,
        "\nThroughput with a window, {} concurrent clients: {:.0} requests/s.\n\n## Training step (one update of one batch, `parallel`)\n\n| algorithm | ms per step |\n|---|---|",
        speed.options.clients, speed.throughput_rps
    );
    for (name, ms) in &speed.training_step_ms {
        let _ = writeln!(s, "| {name} | {ms:.2} |");
    }
    let _ = writeln!(
        s,
        "\n## Twin\n\n| scenario | windows per second |\n|---|---|"
    );
    for (name, rate) in &speed.twin_windows_per_second {
        let _ = writeln!(s, "| {name} | {rate:.1} |");
    }
    let mb = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.1} MB"));
    let phases = speed
        .policy_rss_mb
        .iter()
        .map(|(phase, mb)| format!("{phase}: {mb:.1} MB"))
        .collect::<Vec<_>>()
        .join("; ");
    let _ = writeln!(
        s,
        "\n## Memory (peak resident set)\n\n| service | peak |\n|---|---|\n| faasconf-policy (after the requests above) | {} |\n| faasconf-actuator (twin backend, {} windows streamed) | {} |\n\nThe policy's resident set after each phase: {phases}.",
        mb(speed.policy_peak_rss_mb),
        speed.options.actuator_windows,
        mb(speed.actuator_peak_rss_mb)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = Latency::of((1..=100).rev().map(f64::from).collect());
        assert_eq!(
            (l.p50_us, l.p90_us, l.p99_us, l.max_us),
            (51.0, 90.0, 99.0, 100.0)
        );
        assert!((l.mean_us - 50.5).abs() < 1e-12);
        assert_eq!(Latency::of(Vec::new()).requests, 0);
    }

    #[test]
    fn the_twin_and_the_learners_are_timed() {
        let options = SpeedOptions {
            training_steps: 2,
            twin_windows: 2,
            ..SpeedOptions::quick()
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let steps = training_steps(&options, dir.path()).expect("trains");
        assert_eq!(steps.len(), 4);
        assert!(
            steps.iter().all(|(_, ms)| ms.is_finite() && *ms > 0.0),
            "{steps:?}"
        );
        let twin = twin_speed(&options).expect("runs");
        assert!(
            twin.iter().all(|(_, r)| r.is_finite() && *r > 0.0),
            "{twin:?}"
        );
    }
}
