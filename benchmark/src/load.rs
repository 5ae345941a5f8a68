//! `load`: the policy under many concurrent callers. 16 clients (by default) send
//! `RecommendConfig` for a fixed time, first all on the fast path (a telemetry window in the
//! request), then all on the twin path (no window: each call searches the twin, and at most
//! `--max-twin-recommends` run at once, the rest answered RESOURCE_EXHAUSTED and retried after
//! a pause). Per phase: answers per second, latency percentiles of the answered calls, every
//! other outcome by gRPC code, and the policy's resident memory before and after.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faasconf_proto::v1::{self, policy_client::PolicyClient};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::speed::{Latency, SpeedError, sample_window, start_policy};

/// How hard and how long.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadOptions {
    /// Concurrent clients.
    pub clients: usize,
    /// Seconds per phase.
    pub seconds: f64,
    /// Pause after a RESOURCE_EXHAUSTED answer before the client retries, milliseconds.
    pub backoff_ms: u64,
    /// Seed of the model and the window.
    pub seed: u64,
}

impl LoadOptions {
    /// 16 clients, 30 s per phase.
    pub fn full() -> Self {
        Self {
            clients: 16,
            seconds: 30.0,
            backoff_ms: 200,
            seed: 0,
        }
    }

    /// 16 clients, 5 s per phase.
    pub fn quick() -> Self {
        Self {
            seconds: 5.0,
            ..Self::full()
        }
    }
}

/// One phase's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    /// `window` or `twin`.
    pub path: String,
    /// Calls answered OK.
    pub answered: usize,
    /// From the first call to the last answer, seconds.
    pub seconds: f64,
    /// Answered calls per second.
    pub answered_per_second: f64,
    /// Latency of the answered calls.
    pub latency: Latency,
    /// Every other outcome, by gRPC code.
    pub errors: BTreeMap<String, usize>,
    /// The policy's resident memory before the phase, MB.
    pub rss_before_mb: Option<f64>,
    /// And after it.
    pub rss_after_mb: Option<f64>,
}

/// What `load` measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Load {
    /// The fast path, then the twin path.
    pub phases: Vec<Phase>,
    /// The policy's peak resident memory, MB.
    pub peak_rss_mb: Option<f64>,
    /// What was run.
    pub options: LoadOptions,
}

#[derive(Default)]
struct Outcomes {
    micros: Vec<f64>,
    errors: BTreeMap<String, usize>,
}

/// Runs both phases against the `faasconf-policy` in `bin_dir`, training its model under
/// `workdir`.
pub async fn run(
    options: &LoadOptions,
    bin_dir: &Path,
    workdir: &Path,
) -> Result<Load, SpeedError> {
    let policy = start_policy(
        &bin_dir.join("faasconf-policy"),
        workdir,
        "load",
        options.seed,
        &[],
    )?;
    let client = PolicyClient::connect(policy.endpoint())
        .await
        .map_err(|e| SpeedError::Rpc(e.to_string()))?;
    let with_window = v1::RecommendConfigRequest {
        workflow: "parallel".into(),
        load: Some(v1::Load {
            kind: Some(v1::load::Kind::ConcurrentUsers(20)),
        }),
        current: Some(sample_window(options.seed)?),
        ..Default::default()
    };
    let without = v1::RecommendConfigRequest {
        current: None,
        ..with_window.clone()
    };
    let mut phases = Vec::new();
    for (path, request) in [("window", with_window), ("twin", without)] {
        let rss_before_mb = policy.rss_mb();
        let started = Instant::now();
        let outcomes = phase(options, &client, request).await;
        let elapsed = started.elapsed().as_secs_f64();
        let answered = outcomes.micros.len();
        phases.push(Phase {
            path: path.into(),
            answered,
            seconds: elapsed,
            answered_per_second: answered as f64 / elapsed,
            latency: Latency::of(outcomes.micros),
            errors: outcomes.errors,
            rss_before_mb,
            rss_after_mb: policy.rss_mb(),
        });
    }
    Ok(Load {
        phases,
        peak_rss_mb: policy.peak_rss_mb(),
        options: options.clone(),
    })
}

/// `clients` clients sending `request` until `seconds` have passed.
async fn phase(
    options: &LoadOptions,
    client: &PolicyClient<tonic::transport::Channel>,
    request: v1::RecommendConfigRequest,
) -> Outcomes {
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let until = Instant::now() + Duration::from_secs_f64(options.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..options.clients.max(1) {
        let (mut client, request, outcomes) = (client.clone(), request.clone(), outcomes.clone());
        let backoff = Duration::from_millis(options.backoff_ms);
        tasks.spawn(async move {
            while Instant::now() < until {
                // A call started before the end runs to its answer (the phase's time is
                // measured until the last one).
                let t = Instant::now();
                let answer = client.recommend_config(request.clone()).await;
                let micros = t.elapsed().as_secs_f64() * 1e6;
                let mut o = outcomes.lock().await;
                match answer {
                    Ok(_) => o.micros.push(micros),
                    Err(status) => {
                        *o.errors.entry(format!("{:?}", status.code())).or_default() += 1;
                        drop(o);
                        if status.code() == tonic::Code::ResourceExhausted {
                            tokio::time::sleep(backoff).await;
                        }
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Arc::try_unwrap(outcomes).map_or_else(|_| Outcomes::default(), Mutex::into_inner)
}

/// The Markdown report.
pub fn markdown(load: &Load, machine: &str) -> String {
    let o = &load.options;
    let mut s = format!(
        "# load\n\nMachine: {machine}. Command: `faasconf bench load{}`. {} clients, {} s per phase, the release `faasconf-policy` with a model of `parallel` (600 samples, 300 updates, seed {}), default limits (at most 2 twin-path calls at once). A RESOURCE_EXHAUSTED answer makes the client pause {} ms.\n\n",
        if o.seconds < 30.0 { " --quick" } else { "" },
        o.clients,
        o.seconds,
        o.seed,
        o.backoff_ms
    );
    s.push_str("| path | answered | answered/s | p50 | p99 | max | other outcomes | RSS before -> after |\n|---|---|---|---|---|---|---|---|\n");
    let mb = |v: Option<f64>| v.map_or("?".into(), |v| format!("{v:.0} MB"));
    for p in &load.phases {
        let errors = if p.errors.is_empty() {
            "none".to_owned()
        } else {
            p.errors
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        s.push_str(&format!(
            "| {} | {} | {:.1} | {:.2} ms | {:.2} ms | {:.2} ms | {errors} | {} -> {} |\n",
            p.path,
            p.answered,
            p.answered_per_second,
            p.latency.p50_us / 1e3,
            p.latency.p99_us / 1e3,
            p.latency.max_us / 1e3,
            mb(p.rss_before_mb),
            mb(p.rss_after_mb)
        ));
    }
    s.push_str(&format!(
        "\nPeak RSS of the policy: {}.\n",
        mb(load.peak_rss_mb)
    ));
    s
}
