//! A tracing subscriber exporting spans through tracing-opentelemetry to an exporter that
//! discards them: the spans' own cost (created, attributed, closed, handed to the SDK), with
//! no network. Shared by `benches/observe.rs` and `benches/stack.rs`.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt;

/// Takes the spans and drops them.
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        drop(std::hint::black_box(batch));
        Ok(())
    }
}

/// An SDK tracer with a simple (synchronous) processor in front of [`Discard`]: what
/// `AuditLayer::otel_spans` hands its spans to in the benches.
#[allow(dead_code)]
pub fn discard_tracer() -> opentelemetry_sdk::trace::SdkTracer {
    SdkTracerProvider::builder()
        .with_simple_exporter(Discard)
        .build()
        .tracer("bench")
}

/// [`discard_tracer`] with the SDK's batch processor instead (its own thread, as
/// `examples/server.rs --otel-noop` runs it).
#[allow(dead_code)]
pub fn discard_batch_tracer() -> opentelemetry_sdk::trace::SdkTracer {
    SdkTracerProvider::builder()
        .with_batch_exporter(Discard)
        .build()
        .tracer("bench")
}

/// [`otel_subscriber`] with the SDK's batch processor.
#[allow(dead_code)]
pub fn otel_batch_subscriber() -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(discard_batch_tracer()))
}

/// The subscriber: the registry and tracing-opentelemetry's layer with its defaults, a simple
/// (synchronous) processor in front of [`Discard`].
pub fn otel_subscriber() -> impl tracing::Subscriber + Send + Sync {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(Discard)
        .build();
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")))
}
