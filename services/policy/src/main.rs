//! `faasconf-policy`: trains AttMF on telemetry and answers `RecommendConfig` (see the library).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use faasconf_core::telemetry::LoadModel;
use faasconf_policy::actuators::Actuators;
use faasconf_policy::tuning::Retention;
use faasconf_policy::{Engine, PolicyService, ServiceSettings};
use faasconf_proto::v1::policy_server::PolicyServer;
use tonic::service::Routes;

/// The faasconf policy gRPC service.
#[derive(Debug, Parser)]
#[command(name = "faasconf-policy", version, about)]
struct Args {
    /// Address to serve gRPC on (port 0: any free port, printed at start).
    #[arg(long, env = "FAASCONF_GRPC_ADDR", default_value = "127.0.0.1:50052")]
    grpc_addr: SocketAddr,
    /// Address of the HTTP `/metrics` endpoint (port 0: any free port).
    #[arg(long, env = "FAASCONF_METRICS_ADDR", default_value = "127.0.0.1:9465")]
    metrics_addr: SocketAddr,
    /// The actuator tuning sessions use when a request names none (also allowed).
    #[arg(long, env = "FAASCONF_ACTUATOR")]
    actuator: Option<String>,
    /// Further actuators a `StartTuning` may name (repeat, or comma-separated). No other
    /// endpoint is accepted: sessions carry this policy's actuator credentials.
    #[arg(
        long = "allowed-actuator",
        env = "FAASCONF_ALLOWED_ACTUATORS",
        value_delimiter = ','
    )]
    allowed_actuators: Vec<String>,
    /// Send --actuator-token-file's token over plaintext `http://` actuator endpoints (loopback
    /// development only; otherwise use `https://` with --actuator-tls-ca).
    #[arg(long, env = "FAASCONF_ALLOW_PLAINTEXT_TOKEN")]
    allow_plaintext_token: bool,
    /// Training jobs running at once (StartTraining past it: RESOURCE_EXHAUSTED).
    #[arg(long, env = "FAASCONF_MAX_TRAINING_JOBS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    max_training_jobs: u32,
    /// Twin-path RecommendConfig calls (no `current` window) running at once (past it:
    /// RESOURCE_EXHAUSTED).
    #[arg(long, env = "FAASCONF_MAX_TWIN_RECOMMENDS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    max_twin_recommends: u32,
    /// How tuning sessions read the cluster's load from its telemetry and screen it on the twin,
    /// unless a session declares its own: `measured` (closed-loop users where the telemetry
    /// reports them, else open-loop arrivals at the measured rate), `open-loop` (a cluster's own
    /// traffic), `closed-loop` (a closed-loop load generator that does not report its users).
    #[arg(long, env = "FAASCONF_LOAD_MODEL", value_enum, default_value_t = LoadModelArg::Measured)]
    load_model: LoadModelArg,
    /// How long an ended tuning session stays readable, seconds.
    #[arg(
        long,
        env = "FAASCONF_SESSION_RETENTION_SECONDS",
        default_value_t = 86_400
    )]
    session_retention_seconds: u64,
    /// The experience store (SQLite file, created if missing).
    #[arg(long, env = "FAASCONF_STORE", default_value = "faasconf.db")]
    store: PathBuf,
    /// Where model versions are written (default: `models` beside the store).
    #[arg(long, env = "FAASCONF_MODELS")]
    models: Option<PathBuf>,
    /// Workflows served: built-in names or topology files (default: every built-in one).
    #[arg(long = "workflow", env = "FAASCONF_WORKFLOWS", value_delimiter = ',')]
    workflows: Vec<String>,
    /// Calibrated profiles (as `faasconf sim calibrate` writes them) replacing a served
    /// workflow's: `WORKFLOW=FILE`, or `FILE` when one workflow is served. Repeatable. A
    /// workflow named here keeps these profiles over a calibration that a training job
    /// adopted (`StartTraining` with `calibrate`, kept in `<models>/twins/`).
    #[arg(long = "profiles", env = "FAASCONF_PROFILES", value_delimiter = ',')]
    profiles: Vec<String>,
    /// TLS and bearer-token settings of this server.
    #[command(flatten)]
    security: faasconf_server::security::ServerSecurityFiles,
    /// PEM CA certificates to verify the actuator with (TLS: give it `https://` endpoints).
    #[arg(long, env = "FAASCONF_ACTUATOR_TLS_CA")]
    actuator_tls_ca: Option<PathBuf>,
    /// PEM certificate this service presents to the actuator (mutual TLS).
    #[arg(long, env = "FAASCONF_ACTUATOR_TLS_CLIENT_CERT")]
    actuator_tls_client_cert: Option<PathBuf>,
    /// PEM key of --actuator-tls-client-cert.
    #[arg(long, env = "FAASCONF_ACTUATOR_TLS_CLIENT_KEY")]
    actuator_tls_client_key: Option<PathBuf>,
    /// File holding the bearer token the actuator requires.
    #[arg(long, env = "FAASCONF_ACTUATOR_TOKEN_FILE")]
    actuator_token_file: Option<PathBuf>,
}

/// `--load-model`'s values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LoadModelArg {
    Measured,
    OpenLoop,
    ClosedLoop,
}

fn main() -> Result<()> {
    faasconf_server::run(serve())
}

async fn serve() -> Result<()> {
    let _traces = faasconf_server::init_tracing("faasconf-policy");
    let args = Args::parse();
    let workflows = faasconf_server::served_workflows(&args.workflows, &args.profiles)?;
    let security = faasconf_server::security::ServerSecurity::load(&args.security)?;
    let actuator_security = faasconf_server::security::ClientSecurity::load(
        &faasconf_server::security::ClientSecurityFiles {
            tls_ca: args.actuator_tls_ca.clone(),
            tls_client_cert: args.actuator_tls_client_cert.clone(),
            tls_client_key: args.actuator_tls_client_key.clone(),
            token_file: args.actuator_token_file.clone(),
        },
        faasconf_server::security::ClientFlags {
            tls_ca: "--actuator-tls-ca",
            tls_client_cert: "--actuator-tls-client-cert",
            tls_client_key: "--actuator-tls-client-key",
            token_file: "--actuator-token-file",
            allow_plaintext_token: "--allow-plaintext-token",
        },
    )?
    .allow_plaintext_token(args.allow_plaintext_token);
    let actuators = Actuators::new(
        args.actuator.clone(),
        args.allowed_actuators.clone(),
        actuator_security,
    )?;
    let names: Vec<String> = workflows.iter().map(|w| w.name.clone()).collect();
    let models = args
        .models
        .clone()
        .unwrap_or_else(|| args.store.with_extension("models"));
    let engine = Engine::open(workflows, args.store.clone(), models)
        .with_context(|| format!("--store {}", args.store.display()))?;
    // Calibrations adopted by training jobs before this start, unless --profiles names the
    // workflow (the operator's file wins).
    let explicit: Vec<String> = args
        .profiles
        .iter()
        .filter_map(|flag| match flag.split_once('=') {
            Some((name, _)) => Some(name.to_owned()),
            None => names.first().filter(|_| names.len() == 1).cloned(),
        })
        .collect();
    for name in engine.restore_calibrations(&explicit) {
        tracing::info!(workflow = %name, "screening on the calibration a training job adopted");
    }
    let handle = faasconf_server::install_metrics_recorder()?;
    faasconf_policy::service::describe_metrics(&names);
    // Why: before the ports are announced, so an early SIGTERM still drains.
    let stop_requested = faasconf_server::shutdown_signal()?;
    let metrics_listener = faasconf_server::bind_metrics(args.metrics_addr).await?;
    let listener = faasconf_server::bind(args.grpc_addr).await?;
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let text = handle.render();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    text,
                )
            }
        }),
    );
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let metrics_server = tokio::spawn(faasconf_server::serve_http(
        router,
        metrics_listener,
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        },
    ));
    let service = PolicyService::new(
        Arc::new(engine),
        ServiceSettings {
            actuators,
            retention: Retention {
                keep: std::time::Duration::from_secs(args.session_retention_seconds),
                ..Retention::default()
            },
            max_training_jobs: args.max_training_jobs as usize,
            max_twin_recommends: args.max_twin_recommends as usize,
            load_model: match args.load_model {
                LoadModelArg::Measured => LoadModel::Measured,
                LoadModelArg::OpenLoop => LoadModel::OpenLoop,
                LoadModelArg::ClosedLoop => LoadModel::ClosedLoop,
            },
        },
    );
    let long_work = service.long_work();
    let routes = Routes::new(PolicyServer::new(service));
    let shutdown = async move {
        stop_requested.await;
        // Why: blocking work the runtime would wait for at exit ends first (sessions stop,
        // training jobs checkpoint and stay resumable).
        long_work.stop();
        let _ = stop.send(true);
    };
    faasconf_server::serve::<PolicyServer<PolicyService>>(
        "policy", routes, listener, &security, shutdown,
    )
    .await?;
    metrics_server.abort();
    Ok(())
}
