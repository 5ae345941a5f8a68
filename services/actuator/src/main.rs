//! `faasconf-actuator`: the only component that touches the cluster (or the twin).
//!
//! Serves `faasconf.v1.Actuator` over a backend. This build has the `twin` backend (issue 3 in
//! progress: the Kubernetes backend, the Prometheus telemetry source and `/metrics` follow):
//! `ListWorkflows`, `GetWorkflow`, `ApplyConfig` (validated whole, dry run, idempotent,
//! optimistic concurrency), `StreamTelemetry` (many subscribers, real or virtual clock) and
//! `SetWorkload`. Health, reflection, timeouts and graceful shutdown come from
//! `faasconf-server`; on SIGTERM every telemetry stream ends cleanly.

mod backend;
mod fanout;
mod service;
mod service_metrics;
mod telemetry;
mod twin_backend;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use faasconf_core::catalog;
use faasconf_proto::v1::actuator_server::ActuatorServer;
use faasconf_twin::Workload;
use tonic::service::Routes;

use crate::backend::Backend;
use crate::service::ActuatorService;
use crate::twin_backend::{Clock, TwinBackend, TwinSettings};

/// Where configurations are applied and telemetry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendKind {
    /// The embedded twin (a calibrated simulator).
    Twin,
}

/// The faasconf actuator gRPC service.
#[derive(Debug, Parser)]
#[command(name = "faasconf-actuator", version, about)]
struct Args {
    /// Address to serve gRPC on (port 0: any free port, printed at start).
    #[arg(long, env = "FAASCONF_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    grpc_addr: SocketAddr,
    /// Backend.
    #[arg(long, env = "FAASCONF_BACKEND", value_enum, default_value_t = BackendKind::Twin)]
    backend: BackendKind,
    /// Window pacing of the twin: real (every --window-seconds) or virtual (as fast as the
    /// slowest subscriber reads).
    #[arg(long, env = "FAASCONF_CLOCK", value_enum, default_value_t = Clock::Real)]
    clock: Clock,
    /// Telemetry window, seconds.
    #[arg(long, env = "FAASCONF_WINDOW_SECONDS", default_value_t = 30.0)]
    window_seconds: f64,
    /// Workflows to manage: built-in names or topology files (default: every built-in one).
    #[arg(long = "workflow", env = "FAASCONF_WORKFLOWS", value_delimiter = ',')]
    workflows: Vec<String>,
    /// Initial closed-loop users of every workflow (twin).
    #[arg(long, env = "FAASCONF_USERS", default_value_t = 10, conflicts_with = "rps")]
    users: u32,
    /// Initial Poisson arrivals per second instead of users (twin).
    #[arg(long, env = "FAASCONF_RPS")]
    rps: Option<f64>,
    /// Seed of the twin.
    #[arg(long, env = "FAASCONF_SEED", default_value_t = 0)]
    seed: u64,
    /// Address of the HTTP `/metrics` endpoint: the service's own metrics and, for the twin
    /// backend, the simulated cluster's (gateway and cAdvisor names). Port 0: any free port.
    #[arg(long, env = "FAASCONF_METRICS_ADDR", default_value = "127.0.0.1:9464")]
    metrics_addr: SocketAddr,
    /// Namespace the functions live in (OpenFaaS: openfaas-fn).
    #[arg(long, env = "FAASCONF_NAMESPACE", default_value = "openfaas-fn")]
    namespace: String,
}

/// What `/metrics` renders.
#[derive(Clone)]
struct MetricsState {
    handle: metrics_exporter_prometheus::PrometheusHandle,
    backend: Arc<dyn Backend>,
    namespace: Arc<str>,
}

async fn render_metrics(axum::extract::State(state): axum::extract::State<MetricsState>) -> impl axum::response::IntoResponse {
    let mut text = state.handle.render();
    text.push_str(&state.backend.cluster_metrics(&state.namespace).await);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

#[tokio::main]
async fn main() -> Result<()> {
    faasconf_server::init_tracing();
    let args = Args::parse();
    // All configuration is checked before any port is bound.
    if !(args.window_seconds.is_finite() && (1.0..=3600.0).contains(&args.window_seconds)) {
        bail!("--window-seconds {}: must be in [1, 3600]", args.window_seconds);
    }
    let workload = match args.rps {
        Some(requests_per_second) => Workload::Poisson { requests_per_second },
        None => Workload::ClosedLoop { users: args.users },
    };
    workload.validate().context("--users / --rps")?;
    let names: Vec<String> = if args.workflows.is_empty() { catalog::BUILTIN.iter().map(|s| (*s).to_owned()).collect() } else { args.workflows.clone() };
    let workflows = names.iter().map(|n| catalog::resolve(n).with_context(|| format!("--workflow {n}"))).collect::<Result<Vec<_>>>()?;
    let handle = faasconf_server::install_metrics_recorder()?;
    service_metrics::describe();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let backend: Arc<dyn Backend> = match args.backend {
        BackendKind::Twin => Arc::new(TwinBackend::start(workflows, &TwinSettings { clock: args.clock, window_seconds: args.window_seconds, workload, seed: args.seed }, stopped.clone())?),
    };
    let metrics_listener = faasconf_server::bind_metrics(args.metrics_addr).await?;
    let listener = faasconf_server::bind(args.grpc_addr).await?;
    let router = axum::Router::new()
        .route("/metrics", axum::routing::get(render_metrics))
        .with_state(MetricsState { handle, backend: backend.clone(), namespace: args.namespace.into() });
    let mut metrics_stop = stopped;
    let metrics_server = tokio::spawn(faasconf_server::serve_http(router, metrics_listener, async move {
        let _ = metrics_stop.wait_for(|stop| *stop).await;
    }));
    let routes = Routes::new(ActuatorServer::new(ActuatorService::new(backend)));
    let shutdown = async move {
        faasconf_server::shutdown_signal().await;
        // Ends every clock and with it every telemetry stream, so the server can drain.
        let _ = stop.send(true);
    };
    faasconf_server::serve::<ActuatorServer<ActuatorService>>(routes, listener, shutdown).await?;
    metrics_server.abort();
    Ok(())
}
