//! The cost of the observability added to the audit layer, per call (a JSON `tools/call`
//! through audit → inspect → a trivial service), against the same stack in the same run:
//! - `spans_off`: `AuditLayer::spans(false)`, no recorder: the baseline;
//! - `no_subscriber`: spans on, nobody listening (what every user without a tracing
//!   subscriber for `mcp_edge::span` pays; equal to the baseline within noise);
//! - `otel_spans`: spans exported through tracing-opentelemetry to an exporter that discards
//!   them (the span's own cost: created, attributed, closed and handed to the SDK);
//! - `otel_direct` (feature `otel`): the same spans handed straight to the SDK tracer by
//!   `AuditLayer::otel_spans` (`observe::OtelSpans`), same exporter;
//! - `otel_direct_noop_tracer`: that path to the API's `NoopTracer`: mcp-edge's own share
//!   (the parent context, the name and the attribute `Vec` built, then dropped), without the
//!   SDK's;
//! - `otel_direct_unsampled`: that path, the caller's `traceparent` not sampled (flags `00`):
//!   the span is dropped before any attribute work;
//! - `metrics` (feature `metrics`): a Prometheus recorder installed, every hook recording;
//! - `otel_spans_and_metrics`, `otel_direct_and_metrics`: both.
//!
//! `cargo bench --bench observe --features metrics,otel`; without the features, the recorder
//! rows measure a build where the hooks compile to nothing. The same cases around the whole
//! default stack: `benches/stack.rs` (`full`, `full_spans_off`, `full_otel`, `full_metrics`,
//! `full_observed`).
//!
//! With `OBSERVE_BATCH=1`, the loop's spans go through the SDK's batch processor (a thread of
//! its own, as `examples/server.rs --otel-noop` exports them) and it prints the process's CPU
//! time per call, the batch thread's included (from `/proc/self/stat`: run enough calls for
//! its 10 ms ticks; without valgrind).
//!
//! For instruction counts: `OBSERVE_LOOP=<case>` with `OBSERVE_CALLS=N` (default 1000) runs N
//! calls of one case and exits, without criterion:
//!
//! ```text
//! OBSERVE_LOOP=otel_direct OBSERVE_CALLS=2000 valgrind --tool=callgrind \
//!     --toggle-collect='*measured_calls*' target/release/deps/observe-HASH
//! ```

use std::convert::Infallible;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use mcp_edge::EdgeBody;
use mcp_edge::audit::{AuditEvent, AuditLayer, CountingBody};
use mcp_edge::inspect::InspectLayer;
use tower::{Service, ServiceBuilder, ServiceExt};

#[path = "common/otel.rs"]
mod otel;
use otel::otel_subscriber;

const REQUEST: &[u8] = br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}"#;
const RESULT: &[u8] =
    br#"{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"hello"}],"isError":false}}"#;
const SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const UNSAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

fn request(traceparent: &'static str) -> Request<Full<Bytes>> {
    Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .header("traceparent", traceparent)
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

/// How the case's spans are exported.
#[derive(Clone, Copy)]
enum Spans {
    Off,
    /// `tracing` spans (exported when a subscriber is installed).
    Tracing,
    /// `AuditLayer::otel_spans` to the discarding tracer.
    Direct,
    /// `AuditLayer::otel_spans` to the API's no-op tracer.
    DirectNoop,
}

type Audited = AuditLayer<fn(AuditEvent)>;

/// `OBSERVE_BATCH=1`: the batch processor instead of the simple one.
fn batch() -> bool {
    std::env::var_os("OBSERVE_BATCH").is_some_and(|v| v == "1")
}

fn audit(spans: Spans) -> Audited {
    let sink: fn(AuditEvent) = |event| drop(std::hint::black_box(event));
    let layer = AuditLayer::new(sink);
    match spans {
        Spans::Off => layer.spans(false),
        Spans::Tracing => layer,
        #[cfg(feature = "otel")]
        Spans::Direct => {
            layer.otel_spans(mcp_edge::observe::OtelSpans::new(otel::discard_tracer()))
        }
        #[cfg(feature = "otel")]
        Spans::DirectNoop => layer.otel_spans(mcp_edge::observe::OtelSpans::new(
            opentelemetry::trace::noop::NoopTracer::new(),
        )),
        #[cfg(not(feature = "otel"))]
        Spans::Direct | Spans::DirectNoop => layer,
    }
}

fn stack(
    spans: Spans,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<impl http_body::Body<Data = Bytes, Error: std::fmt::Debug>>,
    Error = Infallible,
    Future: Send,
> + Clone {
    ServiceBuilder::new()
        .layer(audit(spans))
        .layer(InspectLayer::new())
        .service_fn(|_: Request<EdgeBody<CountingBody<Full<Bytes>>>>| async {
            Ok::<_, Infallible>(json_response())
        })
}

/// A case by name: its spans, whether a tracing subscriber and a recorder are installed, and
/// the `traceparent` it sends.
fn case(name: &str) -> (Spans, bool, bool, &'static str) {
    match name {
        "spans_off" => (Spans::Off, false, false, SAMPLED),
        "no_subscriber" => (Spans::Tracing, false, false, SAMPLED),
        "otel_spans" => (Spans::Tracing, true, false, SAMPLED),
        "otel_direct" => (Spans::Direct, false, false, SAMPLED),
        "otel_direct_noop_tracer" => (Spans::DirectNoop, false, false, SAMPLED),
        "otel_direct_unsampled" => (Spans::Direct, false, false, UNSAMPLED),
        "metrics" => (Spans::Off, false, true, SAMPLED),
        "otel_spans_and_metrics" => (Spans::Tracing, true, true, SAMPLED),
        "otel_direct_and_metrics" => (Spans::Direct, false, true, SAMPLED),
        other => panic!("unknown case {other}"),
    }
}

fn install_recorder() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    std::mem::forget(handle);
}

/// `OBSERVE_LOOP=<case>`: N calls of one case, then exit (for callgrind). 100 calls first
/// warm up (handles registered, the recorder's clock calibrated), outside
/// [`measured_calls`], so `--toggle-collect=*measured_calls*` counts only the N calls.
fn fixed_loop(name: &str) {
    let calls: u64 = std::env::var("OBSERVE_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let (spans, subscriber, recorder, traceparent) = case(name);
    if recorder {
        install_recorder();
    }
    let _guard = subscriber.then(|| {
        if batch() {
            tracing::subscriber::set_default(otel::otel_batch_subscriber())
        } else {
            tracing::subscriber::set_default(otel_subscriber())
        }
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let service = stack(spans);
    measured_calls_of(&runtime, &service, traceparent, 100);
    let before = process_cpu_ticks();
    measured_calls(&runtime, &service, traceparent, calls);
    let ticks = process_cpu_ticks()
        .zip(before)
        .map(|(after, before)| after - before);
    match ticks {
        // Linux counts CPU time in ticks of 10 ms.
        Some(ticks) => println!(
            "{name}: {calls} calls, {:.2} µs of process CPU per call",
            ticks as f64 * 10_000.0 / calls as f64
        ),
        None => println!("{name}: {calls} calls"),
    }
}

/// The process's user + system CPU time so far, in clock ticks (`/proc/self/stat`).
fn process_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces), from field 3 on.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[inline(never)]
fn measured_calls<S, B>(
    runtime: &tokio::runtime::Runtime,
    service: &S,
    traceparent: &'static str,
    calls: u64,
) where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body<Data = Bytes, Error: std::fmt::Debug>,
{
    measured_calls_of(runtime, service, traceparent, calls)
}

fn measured_calls_of<S, B>(
    runtime: &tokio::runtime::Runtime,
    service: &S,
    traceparent: &'static str,
    calls: u64,
) where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body<Data = Bytes, Error: std::fmt::Debug>,
{
    runtime.block_on(async {
        for _ in 0..calls {
            let response = service.clone().oneshot(request(traceparent)).await.unwrap();
            std::hint::black_box(response.into_body().collect().await.unwrap());
        }
    });
}

fn per_call(c: &mut Criterion) {
    if let Ok(name) = std::env::var("OBSERVE_LOOP") {
        fixed_loop(&name);
        std::process::exit(0);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("observe_per_call");
    let mut run = |name: &str| {
        let (spans, subscriber, _, traceparent) = case(name);
        let _guard = subscriber.then(|| tracing::subscriber::set_default(otel_subscriber()));
        let service = stack(spans);
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let call = service.clone().oneshot(request(traceparent));
                async move { call.await.unwrap().into_body().collect().await.unwrap() }
            })
        });
    };
    for name in [
        "spans_off",
        "no_subscriber",
        "otel_spans",
        "otel_direct",
        "otel_direct_noop_tracer",
        "otel_direct_unsampled",
    ] {
        run(name);
    }
    // From here on a recorder is installed for the rest of the process.
    install_recorder();
    for name in [
        "metrics",
        "otel_spans_and_metrics",
        "otel_direct_and_metrics",
    ] {
        run(name);
    }
    group.finish();
}

criterion_group!(benches, per_call);
criterion_main!(benches);
