//! A tower layer that observes every faasconf RPC in one place: a tracing span per call, and on
//! `/metrics` `faasconf_rpc_requests_total{service, method, code}` and
//! `faasconf_rpc_duration_seconds{service, method}` (time to the response headers, i.e. to the
//! first message of a stream).
//!
//! The code is read from the response's `grpc-status` header: tonic puts it there for every
//! error (a trailers-only response); a successful call carries it in the trailers, so a response
//! without it counts as OK. Health checks and reflection are not counted.
//!
//! Labels come from the fixed set of the contract's methods ([`faasconf_proto::rpc_paths`]): a
//! path outside it is `method="unknown"`, and so is every call refused as unauthenticated, so
//! no caller can add series (a label per path a client invents grew `/metrics` without bound).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tower::{Layer, Service};
use tracing::Instrument;

/// Observes the RPCs of the service named `service` (a label value, e.g. `actuator`).
#[derive(Debug, Clone, Copy)]
pub struct RpcObserveLayer {
    service: &'static str,
}

impl RpcObserveLayer {
    /// Labels the observations with `service`.
    pub fn new(service: &'static str) -> Self {
        Self { service }
    }
}

impl<S> Layer<S> for RpcObserveLayer {
    type Service = RpcObserve<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcObserve {
            inner,
            service: self.service,
        }
    }
}

/// The service [`RpcObserveLayer`] wraps around the routes.
#[derive(Debug, Clone)]
pub struct RpcObserve<S> {
    inner: S,
    service: &'static str,
}

/// The gRPC code name (as tonic's `Code` debug-prints it) of a `grpc-status` header value.
pub fn code_name(header: Option<&http::HeaderValue>) -> String {
    match header
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
    {
        None | Some(0) => "OK".to_owned(),
        Some(n) => format!("{:?}", tonic::Code::from_i32(n)),
    }
}

/// The method name of a faasconf RPC path (`/faasconf.v1.Actuator/ApplyConfig` -> `ApplyConfig`),
/// `None` for paths of other services (health, reflection).
pub fn faasconf_method(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/faasconf.")?;
    let (_, method) = rest.split_once('/')?;
    (!method.is_empty()).then_some(method)
}

/// The label of a faasconf RPC path: the method's name when the contract has it, else
/// `unknown`.
pub fn method_label(path: &str) -> &str {
    match faasconf_method(path) {
        Some(method) if faasconf_proto::rpc_paths().contains(path) => method,
        _ => UNKNOWN,
    }
}

/// The method label of calls to paths the contract does not have, and of unauthenticated calls.
pub const UNKNOWN: &str = "unknown";

impl<S, B, R> Service<http::Request<B>> for RpcObserve<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone that was driven ready serves this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let service = self.service;
        let path = request.uri().path();
        if faasconf_method(path).is_none() {
            return Box::pin(inner.call(request));
        }
        let method = method_label(path).to_owned();
        let span = tracing::info_span!("rpc", otel.kind = "server", rpc.system = "grpc", rpc.service = service, rpc.method = %method, rpc.code = tracing::field::Empty);
        {
            use tracing_opentelemetry::OpenTelemetrySpanExt;
            // Continues the caller's trace when it sent one (W3C traceparent); without an
            // OpenTelemetry layer installed this does nothing.
            let _ = span.set_parent(crate::traces::remote_context(request.headers()));
        }
        Box::pin(
            async move {
                let started = Instant::now();
                let result = inner.call(request).await;
                let code = match &result {
                    Ok(response) => code_name(response.headers().get("grpc-status")),
                    Err(_) => "Internal".to_owned(),
                };
                tracing::Span::current().record("rpc.code", code.as_str());
                // Who did not authenticate does not choose a label.
                let method = if code == "Unauthenticated" {
                    UNKNOWN.to_owned()
                } else {
                    method
                };
                tracing::debug!(elapsed = ?started.elapsed(), "answered");
                metrics::histogram!("faasconf_rpc_duration_seconds", "service" => service, "method" => method.clone()).record(started.elapsed().as_secs_f64());
                metrics::counter!("faasconf_rpc_requests_total", "service" => service, "method" => method, "code" => code).increment(1);
                result
            }
            .instrument(span),
        )
    }
}

/// Tests that drive the layer take this lock: tracing caches each callsite's interest process-wide,
/// and a span first registered by one test while another installs its subscriber can be missed.
#[cfg(test)]
pub(crate) static LAYER_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_codes_read_as_labels() {
        assert_eq!(
            faasconf_method("/faasconf.v1.Actuator/ApplyConfig"),
            Some("ApplyConfig")
        );
        assert_eq!(faasconf_method("/grpc.health.v1.Health/Check"), None);
        assert_eq!(faasconf_method("/faasconf.v1.Actuator/"), None);
        assert_eq!(
            method_label("/faasconf.v1.Actuator/ApplyConfig"),
            "ApplyConfig"
        );
        assert_eq!(method_label("/faasconf.v1.Actuator/Invented123"), "unknown");
        assert_eq!(method_label("/faasconf.evil/ApplyConfig"), "unknown");
        assert_eq!(code_name(None), "OK");
        assert_eq!(code_name(Some(&http::HeaderValue::from_static("0"))), "OK");
        assert_eq!(
            code_name(Some(&http::HeaderValue::from_static("10"))),
            "Aborted"
        );
        assert_eq!(
            code_name(Some(&http::HeaderValue::from_static("3"))),
            "InvalidArgument"
        );
    }

    #[test]
    fn counts_each_call_by_method_and_code() {
        let _serial = LAYER_TESTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let answer = tower::service_fn(|request: http::Request<()>| async move {
            let path = request.uri().path();
            let status = if path.ends_with("ApplyConfig") {
                "10"
            } else if path.ends_with("SetWorkload") {
                "16"
            } else {
                "0"
            };
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .header("grpc-status", status)
                    .body(())
                    .unwrap(),
            )
        });
        let mut service = RpcObserveLayer::new("actuator").layer(answer);
        metrics::with_local_recorder(&recorder, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(async {
                for path in [
                    "/faasconf.v1.Actuator/ApplyConfig",
                    "/faasconf.v1.Actuator/ApplyConfig",
                    "/faasconf.v1.Actuator/GetWorkflow",
                    "/grpc.health.v1.Health/Check",
                    "/faasconf.v1.Actuator/Invented1",
                    "/faasconf.v1.Actuator/Invented2",
                    "/faasconf.v1.Actuator/SetWorkload",
                ] {
                    let request = http::Request::builder().uri(path).body(()).unwrap();
                    std::future::poll_fn(|cx| service.poll_ready(cx))
                        .await
                        .unwrap();
                    service.call(request).await.unwrap();
                }
            });
        });
        let text = handle.render();
        assert!(text.contains("faasconf_rpc_requests_total{service=\"actuator\",method=\"ApplyConfig\",code=\"Aborted\"} 2"), "{text}");
        assert!(text.contains("faasconf_rpc_requests_total{service=\"actuator\",method=\"GetWorkflow\",code=\"OK\"} 1"), "{text}");
        assert!(!text.contains("Check"), "health checks are not counted");
        assert!(
            text.contains(
                "faasconf_rpc_requests_total{service=\"actuator\",method=\"unknown\",code=\"OK\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("faasconf_rpc_requests_total{service=\"actuator\",method=\"unknown\",code=\"Unauthenticated\"} 1"), "{text}");
        assert!(
            !text.contains("Invented") && !text.contains("method=\"SetWorkload\""),
            "{text}"
        );
    }
}
