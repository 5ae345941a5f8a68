//! `faasconf-actuator`: the only component that touches the cluster (or the twin).
//!
//! Serves `faasconf.v1.Actuator` over a backend: the embedded twin (default) or a Kubernetes
//! cluster running OpenFaaS, with telemetry from Prometheus. `ListWorkflows`, `GetWorkflow`,
//! `ApplyConfig` (validated whole, dry run, idempotent, optimistic concurrency, all or nothing),
//! `StreamTelemetry` (many subscribers) and `SetWorkload` (twin). Health, reflection, timeouts and
//! graceful shutdown come from `faasconf-server`; on SIGTERM every telemetry stream ends cleanly.

mod apply;
mod backend;
mod fanout;
mod kubernetes;
mod service;
mod service_metrics;
mod telemetry;
mod twin_backend;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use faasconf_proto::v1::actuator_server::ActuatorServer;
use faasconf_twin::Workload;
use tonic::service::Routes;

use crate::backend::Backend;
use crate::kubernetes::objects::Target;
use crate::kubernetes::{KubernetesBackend, KubernetesSettings, Platform, detect_target};
use crate::service::ActuatorService;
use crate::twin_backend::{Clock, TwinBackend, TwinSettings};

/// Where configurations are applied and telemetry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendKind {
    /// The embedded twin (a calibrated simulator).
    Twin,
    /// OpenFaaS on the Kubernetes cluster of the kubeconfig or the pod's service account.
    Kubernetes,
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
    /// Calibrated profiles (as `faasconf sim calibrate` writes them) replacing a served
    /// workflow's: `WORKFLOW=FILE`, or `FILE` when one workflow is served. Repeatable.
    #[arg(long = "profiles", env = "FAASCONF_PROFILES", value_delimiter = ',')]
    profiles: Vec<String>,
    /// Initial closed-loop users of every workflow (twin).
    #[arg(
        long,
        env = "FAASCONF_USERS",
        default_value_t = 10,
        conflicts_with = "rps"
    )]
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
    /// Kubernetes: which object holds a function's configuration: deployment (OpenFaaS CE),
    /// function (the Pro operator manages the Deployments), or auto (function when the cluster
    /// serves functions.openfaas.com).
    #[arg(long, env = "FAASCONF_KUBERNETES_TARGET", value_enum, default_value_t = TargetChoice::Auto)]
    kubernetes_target: TargetChoice,
    /// Kubernetes: the OpenFaaS edition, for its limits (CE: at most 5 replicas per function).
    #[arg(long, env = "FAASCONF_PLATFORM", value_enum, default_value_t = Platform::Ce)]
    platform: Platform,
    /// Kubernetes: our server-side apply field manager.
    #[arg(
        long,
        env = "FAASCONF_FIELD_MANAGER",
        default_value = "faasconf-actuator"
    )]
    field_manager: String,
    /// Kubernetes: how long one function's rollout may take before the apply is rolled back.
    #[arg(long, env = "FAASCONF_ROLLOUT_DEADLINE_SECONDS", default_value_t = 300)]
    rollout_deadline_seconds: u64,
    /// Prometheus server the telemetry is read from (kubernetes backend), e.g.
    /// `http://prometheus.openfaas:9090`.
    #[arg(long, env = "FAASCONF_PROMETHEUS_URL")]
    prometheus_url: Option<String>,
    /// YAML or JSON file with `labels` and `queries` overriding the PromQL defaults.
    #[arg(long, env = "FAASCONF_PROMETHEUS_QUERIES")]
    prometheus_queries: Option<std::path::PathBuf>,
    /// TLS and bearer-token settings.
    #[command(flatten)]
    security: faasconf_server::security::ServerSecurityFiles,
}

/// `--kubernetes-target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TargetChoice {
    /// Ask the cluster.
    Auto,
    /// The Deployment faas-netes created.
    Deployment,
    /// The OpenFaaS `Function` resource.
    Function,
}

fn prometheus_source(args: &Args) -> Result<Option<Arc<faasconf_prometheus::PrometheusSource>>> {
    let Some(url) = &args.prometheus_url else {
        if args.prometheus_queries.is_some() {
            bail!("--prometheus-queries needs --prometheus-url");
        }
        return Ok(None);
    };
    let overrides = match &args.prometheus_queries {
        None => faasconf_prometheus::Overrides::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--prometheus-queries {}", path.display()))?;
            faasconf_prometheus::Overrides::parse(&text)
                .with_context(|| format!("--prometheus-queries {}", path.display()))?
        }
    };
    let settings = faasconf_prometheus::PrometheusSettings {
        url: url.clone(),
        namespace: args.namespace.clone(),
        labels: overrides.labels,
        queries: overrides.queries,
        timeout: std::time::Duration::from_secs(10),
    };
    Ok(Some(Arc::new(
        faasconf_prometheus::PrometheusSource::new(settings)
            .context("--prometheus-url / --prometheus-queries")?,
    )))
}

/// What `/metrics` renders.
#[derive(Clone)]
struct MetricsState {
    handle: metrics_exporter_prometheus::PrometheusHandle,
    backend: Arc<dyn Backend>,
    namespace: Arc<str>,
}

async fn render_metrics(
    axum::extract::State(state): axum::extract::State<MetricsState>,
) -> impl axum::response::IntoResponse {
    let mut text = state.handle.render();
    text.push_str(&state.backend.cluster_metrics(&state.namespace).await);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
}

fn main() -> Result<()> {
    faasconf_server::run(serve())
}

async fn serve() -> Result<()> {
    let _traces = faasconf_server::init_tracing("faasconf-actuator");
    let args = Args::parse();
    // All configuration is checked before any port is bound.
    if !(args.window_seconds.is_finite() && (1.0..=3600.0).contains(&args.window_seconds)) {
        bail!(
            "--window-seconds {}: must be in [1, 3600]",
            args.window_seconds
        );
    }
    let workload = match args.rps {
        Some(requests_per_second) => Workload::Poisson {
            requests_per_second,
        },
        None => Workload::ClosedLoop { users: args.users },
    };
    workload.validate().context("--users / --rps")?;
    if let Err(errors) = telemetry::check_limits(&workload, "") {
        let flag = if args.rps.is_some() {
            "--rps"
        } else {
            "--users"
        };
        bail!("{flag}: {}", errors[0].message);
    }
    let workflows = faasconf_server::served_workflows(&args.workflows, &args.profiles)?;
    let security = faasconf_server::security::ServerSecurity::load(&args.security)?;
    let handle = faasconf_server::install_metrics_recorder()?;
    service_metrics::describe(&workflows);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let source = prometheus_source(&args)?;
    let backend: Arc<dyn Backend> = match args.backend {
        BackendKind::Twin => {
            if source.is_some() {
                bail!(
                    "--prometheus-url is for --backend kubernetes (the twin reports its own windows)"
                );
            }
            Arc::new(TwinBackend::start(
                workflows,
                &TwinSettings {
                    clock: args.clock,
                    window_seconds: args.window_seconds,
                    workload,
                    seed: args.seed,
                },
                stopped.clone(),
            )?)
        }
        BackendKind::Kubernetes => {
            if args.clock == Clock::Virtual {
                bail!("--clock virtual is for --backend twin: a cluster runs in real time");
            }
            let client = kube::Client::try_default().await.context(
                "--backend kubernetes: no usable kubeconfig or in-cluster service account",
            )?;
            let target = match args.kubernetes_target {
                TargetChoice::Deployment => Target::Deployment,
                TargetChoice::Function => Target::Function,
                TargetChoice::Auto => detect_target(&client, std::time::Duration::from_secs(10))
                    .await
                    .map_err(|e| anyhow::anyhow!("--kubernetes-target auto: {e}"))?,
            };
            tracing::info!(?target, "applying configurations to this object kind");
            let settings = KubernetesSettings {
                namespace: args.namespace.clone(),
                field_manager: args.field_manager.clone(),
                target,
                platform: args.platform,
                rollout_deadline: std::time::Duration::from_secs(args.rollout_deadline_seconds),
                poll_interval: std::time::Duration::from_secs(2),
                request_timeout: std::time::Duration::from_secs(10),
                window: std::time::Duration::from_secs_f64(args.window_seconds),
            };
            KubernetesBackend::start(client, workflows, settings, source, stopped.clone())
                .map_err(|e| anyhow::anyhow!("{e}"))?
        }
    };
    // Why: before the ports are announced, so an early SIGTERM still drains.
    let stop_requested = faasconf_server::shutdown_signal()?;
    let metrics_listener = faasconf_server::bind_metrics(args.metrics_addr).await?;
    let listener = faasconf_server::bind(args.grpc_addr).await?;
    let router = axum::Router::new()
        .route("/metrics", axum::routing::get(render_metrics))
        .with_state(MetricsState {
            handle,
            backend: backend.clone(),
            namespace: args.namespace.into(),
        });
    let mut metrics_stop = stopped;
    let metrics_server = tokio::spawn(faasconf_server::serve_http(
        router,
        metrics_listener,
        async move {
            let _ = metrics_stop.wait_for(|stop| *stop).await;
        },
    ));
    let routes = Routes::new(ActuatorServer::new(ActuatorService::new(backend)));
    let shutdown = async move {
        stop_requested.await;
        // Ends every clock and with it every telemetry stream, so the server can drain.
        let _ = stop.send(true);
    };
    faasconf_server::serve::<ActuatorServer<ActuatorService>>(
        "actuator", routes, listener, &security, shutdown,
    )
    .await?;
    metrics_server.abort();
    Ok(())
}
