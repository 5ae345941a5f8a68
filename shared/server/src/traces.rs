//! Logs and traces: `tracing` to stderr (filtered by `RUST_LOG`), and, when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, every span exported over OTLP/gRPC to an OpenTelemetry
//! collector, with W3C trace context (`traceparent`) read from incoming RPCs so a trace follows a
//! call across services.

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How long the last traces may take to leave at exit: the process must stop within 5 s of
/// SIGTERM even when the collector is gone.
const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1000);

/// Flushes and stops the trace exporter when dropped (at the end of `main`).
#[must_use = "traces are flushed when the guard drops"]
pub struct TracingGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown_with_timeout(FLUSH_TIMEOUT)
        {
            eprintln!("flushing traces: {e}");
        }
    }
}

/// Installs the process-wide subscriber for `service` (the OpenTelemetry `service.name`).
pub fn init_tracing(service: &'static str) -> TracingGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let provider = match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => match opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
        {
            Ok(exporter) => Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(
                        opentelemetry_sdk::Resource::builder()
                            .with_service_name(service)
                            .build(),
                    )
                    .build(),
            ),
            Err(e) => {
                eprintln!("OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}: cannot export traces: {e}");
                None
            }
        },
        _ => None,
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service)));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init();
    TracingGuard { provider }
}

/// Reads W3C trace context from HTTP/2 request headers.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The remote parent a request names in its `traceparent` header (empty when none).
pub fn remote_context(headers: &http::HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Writes the current span's trace context into outgoing gRPC metadata, so the server's spans
/// join this trace.
pub fn inject_context(metadata: &mut tonic::metadata::MetadataMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    struct Injector<'a>(&'a mut tonic::metadata::MetadataMap);
    impl opentelemetry::propagation::Injector for Injector<'_> {
        fn set(&mut self, key: &str, value: String) {
            if let (Ok(key), Ok(value)) = (
                tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
                value.parse(),
            ) {
                self.0.insert(key, value);
            }
        }
    }
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&context, &mut Injector(metadata))
    });
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TraceContextExt;
    use tower::{Layer, Service};
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use super::*;
    use crate::rpc_layer::RpcObserveLayer;

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn rpcs_continue_the_callers_trace_and_calls_carry_ours() {
        let _serial = crate::rpc_layer::LAYER_TESTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let seen = Arc::new(Mutex::new(None));
        let record = seen.clone();
        let answer = tower::service_fn(move |_request: http::Request<()>| {
            let record = record.clone();
            async move {
                // Inside the RPC's span: its trace is the caller's, and what we call next carries it.
                let mut metadata = tonic::metadata::MetadataMap::new();
                inject_context(&mut metadata);
                let trace = tracing::Span::current()
                    .context()
                    .span()
                    .span_context()
                    .trace_id()
                    .to_string();
                *record.lock().unwrap() = Some((
                    trace,
                    metadata
                        .get("traceparent")
                        .map(|v| v.to_str().unwrap().to_owned()),
                ));
                Ok::<_, std::convert::Infallible>(http::Response::new(()))
            }
        });
        let mut service = RpcObserveLayer::new("policy").layer(answer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::callsite::rebuild_interest_cache();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(async {
                let request = http::Request::builder()
                    .uri("/faasconf.v1.Policy/RecommendConfig")
                    .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
                    .body(())
                    .unwrap();
                std::future::poll_fn(|cx| service.poll_ready(cx))
                    .await
                    .unwrap();
                service.call(request).await.unwrap();
            });
        });
        let (trace, outgoing) = seen.lock().unwrap().clone().unwrap();
        assert_eq!(trace, TRACE_ID);
        let outgoing = outgoing.expect("a traceparent for the next hop");
        assert!(
            outgoing.starts_with(&format!("00-{TRACE_ID}-"))
                && !outgoing.contains("00f067aa0ba902b7"),
            "a new span of the same trace: {outgoing}"
        );
    }
}
