//! What every faasconf gRPC service shares: binding the listener (and announcing the bound
//! address, so tests and supervisors can use port 0), grpc.health.v1, server reflection over
//! the faasconf descriptors, optional TLS and bearer tokens ([`security`]), request timeouts
//! and a concurrency limit, bounded error answers ([`bounded`]), tracing, and graceful shutdown on SIGTERM or Ctrl-C (health goes
//! NOT_SERVING first, in-flight calls drain).

pub mod bounded;
pub mod rpc_layer;
pub mod security;
pub mod traces;

pub use traces::{TracingGuard, init_tracing};

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;

/// How long one request may take before the server answers DEADLINE_EXCEEDED.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// After a shutdown request, how long in-flight calls may take to finish before the server
/// closes what is left: the process exits within 5 s of SIGTERM (Kubernetes waits 30 s).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// How long a service's exit waits, after the drain, for blocking work that was told to stop
/// (a training update and its checkpoint, a decision winding down); then the process exits.
pub const EXIT_GRACE: Duration = Duration::from_millis(800);

/// Runs a service's `serve` on a multi-threaded runtime and returns its result once the
/// runtime has stopped, waiting at most [`EXIT_GRACE`] for blocking work still running.
pub fn run<F>(serve: F) -> Result<()>
where
    F: Future<Output = Result<()>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let served = runtime.block_on(serve);
    // Why: blocking work still running after the drain (a window or a decision that has been
    // told to stop) must not hold the exit past the grace period the README promises.
    runtime.shutdown_timeout(EXIT_GRACE);
    served
}
/// Requests served at once on one connection; more wait.
pub const CONCURRENCY_PER_CONNECTION: usize = 256;

/// Buckets of every latency histogram the services record, seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The workflows a service serves, from its `--workflow` flags: built-in names or topology
/// files, every built-in workflow when none is given; then each `--profiles [WORKFLOW=]FILE`
/// (profiles JSON as `faasconf sim calibrate` writes it) replaces the named workflow's profiles
/// (a bare FILE when one workflow is served). An error names the flag and its value.
pub fn served_workflows(
    names: &[String],
    profiles: &[String],
) -> Result<Vec<faasconf_core::Workflow>> {
    use faasconf_core::catalog;
    let builtin: Vec<String> = catalog::BUILTIN.iter().map(|s| (*s).to_owned()).collect();
    let names = if names.is_empty() { &builtin } else { names };
    let mut workflows: Vec<faasconf_core::Workflow> = names
        .iter()
        .map(|n| catalog::resolve(n).with_context(|| format!("--workflow {n}")))
        .collect::<Result<_>>()?;
    for flag in profiles {
        let (name, path) = match flag.split_once('=') {
            Some((name, path)) => (Some(name), path),
            None => (None, flag.as_str()),
        };
        let index = match name {
            Some(name) => workflows.iter().position(|w| w.name == name),
            None if workflows.len() == 1 => Some(0),
            None => anyhow::bail!(
                "--profiles {flag}: several workflows are served; write WORKFLOW=FILE"
            ),
        }
        .with_context(|| format!("--profiles {flag}: no served workflow is named so"))?;
        let set = catalog::ProfileSet::read(std::path::Path::new(path))
            .with_context(|| format!("--profiles {flag}"))?;
        let workflow = &workflows[index];
        if let Some(stranger) = set
            .functions
            .keys()
            .find(|f| workflow.function_index(f).is_none())
        {
            anyhow::bail!(
                "--profiles {flag}: function {stranger:?} is not in workflow {:?}",
                workflow.name
            );
        }
        workflows[index] = workflows[index].clone().with_profiles(&set);
    }
    Ok(workflows)
}

/// Installs the process-wide metrics recorder; its handle renders the Prometheus text.
pub fn install_metrics_recorder() -> Result<metrics_exporter_prometheus::PrometheusHandle> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&LATENCY_BUCKETS)
        .context("histogram buckets")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    metrics::describe_counter!(
        "faasconf_rpc_requests_total",
        "RPCs answered, by method and gRPC code."
    );
    metrics::describe_histogram!(
        "faasconf_rpc_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer an RPC (to the response headers: the first message of a stream)."
    );
    Ok(handle)
}

/// Serves `router` (e.g. `/metrics`) over HTTP/1 on `listener` until `shutdown` resolves.
pub async fn serve_http(
    router: axum::Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .context("metrics HTTP server")
}

/// Binds the metrics address and prints `metrics on <addr>` to stdout.
pub async fn bind_metrics(addr: SocketAddr) -> Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind metrics address {addr}"))?;
    let local = listener.local_addr()?;
    println!("metrics on {local}");
    Ok(listener)
}

/// Binds `addr` and prints `listening on <addr>` to stdout (the real port when 0 was asked).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind {addr}"))?;
    let local = listener.local_addr()?;
    println!("listening on {local}");
    tracing::info!(%local, "listening");
    Ok(listener)
}

/// Installs the SIGTERM and Ctrl-C handlers now and returns a future that resolves when the
/// process is asked to stop.
///
/// Call it before [`bind`]: once `listening on` is printed a supervisor may send SIGTERM at
/// once, and a handler installed lazily (when the server first polls its shutdown future) could
/// miss it, letting the default action kill the process without a drain.
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut interrupt =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => {},
                _ = interrupt.recv() => {},
            }
            tracing::info!("shutdown requested");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutdown requested");
        })
    }
}

/// Serves `routes` plus health and reflection on `listener` until `shutdown` resolves, with
/// `security`'s TLS and token check. `S` is the main service, reported SERVING while the server
/// runs.
pub async fn serve<S: NamedService>(
    service: &'static str,
    routes: Routes,
    listener: TcpListener,
    security: &security::ServerSecurity,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    tracing::info!(security = %security.describe(), "serving");
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<S>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(faasconf_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;
    // Why: Kubernetes gRPC probes speak plaintext only; with TLS on, they need a port of their own.
    let health_only = match security.health_addr {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind --health-addr {addr}"))?;
            println!("health on {}", listener.local_addr()?);
            let incoming = TcpListenerStream::new(listener).map(no_delay);
            Some(tokio::spawn(
                Server::builder()
                    .add_service(health_service.clone())
                    .serve_with_incoming(incoming),
            ))
        }
        None => None,
    };
    let routes = routes.add_service(health_service).add_service(reflection);
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let drain = async move {
        drain_on::<S>(health, shutdown).await;
        let _ = stopping.send(());
    };
    let mut builder = Server::builder();
    if let Some(tls) = &security.tls {
        builder = builder
            .tls_config(tls.clone())
            .context("TLS with --tls-cert and --tls-key")?;
    }
    let server = builder
        // Why: a stuck backend call must not hold a client forever.
        .timeout(REQUEST_TIMEOUT)
        // Why: bound the work one client can queue on us.
        .concurrency_limit_per_connection(CONCURRENCY_PER_CONNECTION)
        // Why: no error answer grows with what a caller sent (outermost: refusals too).
        .layer(bounded::BoundedErrorsLayer)
        // Why: one place observes every RPC (span, count by code, latency).
        .layer(rpc_layer::RpcObserveLayer::new(service))
        // Why: inside the observer, so refused calls are counted as UNAUTHENTICATED.
        .layer(security::AuthLayer::new(security.token.clone()))
        .add_routes(routes)
        // Why: with our own listener tonic's `tcp_nodelay` does not apply; without it Nagle's
        // algorithm and delayed ACKs add ~40 ms to small responses.
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener).map(no_delay), drain);
    // Why: graceful shutdown waits for every connection; a client that never closes its own
    // must not keep a terminating pod alive.
    let grace = async move {
        if stopped.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result.context("gRPC server")?,
        () = grace => tracing::warn!(grace = ?SHUTDOWN_GRACE, "grace period over, closing the remaining connections"),
    }
    if let Some(task) = health_only {
        task.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Marks the server and `S` NOT_SERVING when `shutdown` resolves, then lets the server drain.
async fn drain_on<S: NamedService>(health: HealthReporter, shutdown: impl Future<Output = ()>) {
    shutdown.await;
    health.set_not_serving::<S>().await;
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
}

/// Turns Nagle's algorithm off on an accepted connection (RPCs are small request/response pairs).
fn no_delay(
    stream: std::io::Result<tokio::net::TcpStream>,
) -> std::io::Result<tokio::net::TcpStream> {
    if let Ok(s) = &stream
        && let Err(e) = s.set_nodelay(true)
    {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    stream
}

#[cfg(test)]
mod served_tests;
