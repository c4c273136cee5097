//! The cost of the observability added to the audit layer, per call (a JSON `tools/call`
//! through audit → inspect → a trivial service), against the same stack in the same run:
//! - `spans_off`: `AuditLayer::spans(false)`, no recorder: the baseline;
//! - `no_subscriber`: spans on, nobody listening (what every user without a tracing
//!   subscriber for `mcp_edge::span` pays; equal to the baseline within noise);
//! - `otel_spans`: spans exported through tracing-opentelemetry to an exporter that discards
//!   them (the span's own cost: created, attributed, closed and handed to the SDK);
//! - `metrics` (feature `metrics`): a Prometheus recorder installed, every hook recording;
//! - `otel_spans_and_metrics`: both.
//!
//! `cargo bench --bench observe --features metrics,otel`; without the features, the recorder
//! rows measure a build where the hooks compile to nothing. The same cases around the whole
//! default stack: `benches/stack.rs` (`full`, `full_spans_off`, `full_otel`, `full_metrics`,
//! `full_observed`).

use std::convert::Infallible;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use mcp_edge::EdgeBody;
use mcp_edge::audit::{AuditEvent, AuditLayer, CountingBody};
use mcp_edge::inspect::InspectLayer;
use tower::{ServiceBuilder, ServiceExt};

#[path = "common/otel.rs"]
mod otel;
use otel::otel_subscriber;

const REQUEST: &[u8] = br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}"#;
const RESULT: &[u8] =
    br#"{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"hello"}],"isError":false}}"#;

fn request() -> Request<Full<Bytes>> {
    Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(Full::new(Bytes::from_static(REQUEST)))
        .unwrap()
}

fn json_response() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(RESULT)));
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

fn per_call(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("observe_per_call");
    let stack = |spans: bool| {
        ServiceBuilder::new()
            .layer(
                AuditLayer::new(|event: AuditEvent| drop(std::hint::black_box(event))).spans(spans),
            )
            .layer(InspectLayer::new())
            .service_fn(|_: Request<EdgeBody<CountingBody<Full<Bytes>>>>| async {
                Ok::<_, Infallible>(json_response())
            })
    };
    let run = |group: &mut criterion::BenchmarkGroup<'_, _>, name: &str, spans: bool| {
        let service = stack(spans);
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let call = service.clone().oneshot(request());
                async move { call.await.unwrap().into_body().collect().await.unwrap() }
            })
        });
    };

    run(&mut group, "spans_off", false);
    run(&mut group, "no_subscriber", true);
    {
        let _guard = tracing::subscriber::set_default(otel_subscriber());
        run(&mut group, "otel_spans", true);
    }
    // From here on a recorder is installed for the rest of the process.
    let _handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    run(&mut group, "metrics", false);
    {
        let _guard = tracing::subscriber::set_default(otel_subscriber());
        run(&mut group, "otel_spans_and_metrics", true);
    }
    group.finish();
}

criterion_group!(benches, per_call);
criterion_main!(benches);
