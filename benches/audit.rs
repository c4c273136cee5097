//! AuditLayer overhead, against the same stack without it in the same run:
//! - per JSON request with `ChannelSink` (inspect → service, with and without audit in front);
//! - per SSE frame observed (a stream of N frames, audited vs bare; the per-frame cost is the
//!   slope between two stream lengths);
//! - `JsonLinesSink` throughput (events per second), plain and hash-chained.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use mcp_edge::EdgeBody;
use mcp_edge::audit::{AuditEvent, AuditLayer, ChannelSink, CountingBody, JsonLinesSink};
use mcp_edge::inspect::InspectLayer;
use tower::{ServiceBuilder, ServiceExt};

const REQUEST: &[u8] = br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"},"_meta":{"progressToken":7}}}"#;
const RESULT: &[u8] =
    br#"{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"hello"}],"isError":false}}"#;
const PROGRESS: &[u8] = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":7,\"progress\":1,\"total\":100,\"message\":\"1/100\"}}\n\n";

fn request() -> Request<Full<Bytes>> {
    Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
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

/// A body yielding prepared frames, one per poll.
struct Frames(VecDeque<Bytes>);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// `n - 1` progress events, then the response event.
fn sse_frames(n: usize) -> VecDeque<Bytes> {
    let mut frames: VecDeque<Bytes> = (1..n).map(|_| Bytes::from_static(PROGRESS)).collect();
    let mut last = b"event: message\ndata: ".to_vec();
    last.extend_from_slice(RESULT);
    last.extend_from_slice(b"\n\n");
    frames.push_back(Bytes::from(last));
    frames
}

fn sse_response(n: usize) -> Response<Frames> {
    let mut response = Response::new(Frames(sse_frames(n)));
    response
        .headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    response
}

fn json_request(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("audit_json_request");

    let bare = ServiceBuilder::new().layer(InspectLayer::new()).service_fn(
        |_: Request<EdgeBody<Full<Bytes>>>| async { Ok::<_, Infallible>(json_response()) },
    );
    group.bench_function("inspect_only", |b| {
        b.to_async(&runtime).iter(|| {
            let call = bare.clone().oneshot(request());
            async move { call.await.unwrap().into_body().collect().await.unwrap() }
        })
    });

    let (sink, receiver) = ChannelSink::new(1024);
    let receiver = Mutex::new(receiver);
    let audited = ServiceBuilder::new()
        .layer(AuditLayer::new(sink.clone()))
        .layer(InspectLayer::new())
        .service_fn(|_: Request<EdgeBody<CountingBody<Full<Bytes>>>>| async {
            Ok::<_, Infallible>(json_response())
        });
    group.bench_function("audit_channel_sink", |b| {
        b.to_async(&runtime).iter(|| {
            let call = audited.clone().oneshot(request());
            let receiver = &receiver;
            async move {
                let body = call.await.unwrap().into_body().collect().await.unwrap();
                // The application's side of the channel takes the event.
                let event: AuditEvent = receiver.lock().unwrap().try_recv().unwrap();
                (body, event)
            }
        })
    });
    assert_eq!(sink.dropped(), 0);

    let noop = ServiceBuilder::new()
        .layer(AuditLayer::new(|event: AuditEvent| {
            drop(std::hint::black_box(event))
        }))
        .layer(InspectLayer::new())
        .service_fn(|_: Request<EdgeBody<CountingBody<Full<Bytes>>>>| async {
            Ok::<_, Infallible>(json_response())
        });
    group.bench_function("audit_noop_sink", |b| {
        b.to_async(&runtime).iter(|| {
            let call = noop.clone().oneshot(request());
            async move { call.await.unwrap().into_body().collect().await.unwrap() }
        })
    });
    group.finish();
}

fn sse_frames_observed(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("audit_sse_stream");
    for n in [10usize, 1000] {
        group.throughput(Throughput::Elements(n as u64));
        let bare =
            ServiceBuilder::new().layer(InspectLayer::new()).service_fn(
                move |_: Request<EdgeBody<Full<Bytes>>>| async move {
                    Ok::<_, Infallible>(sse_response(n))
                },
            );
        group.bench_with_input(BenchmarkId::new("inspect_only", n), &n, |b, _| {
            b.to_async(&runtime).iter(|| {
                let call = bare.clone().oneshot(request());
                async move { call.await.unwrap().into_body().collect().await.unwrap() }
            })
        });
        let audited = ServiceBuilder::new()
            .layer(AuditLayer::new(|event: AuditEvent| {
                std::hint::black_box(event);
            }))
            .layer(InspectLayer::new())
            .service_fn(
                move |_: Request<EdgeBody<CountingBody<Full<Bytes>>>>| async move {
                    Ok::<_, Infallible>(sse_response(n))
                },
            );
        group.bench_with_input(BenchmarkId::new("audit", n), &n, |b, _| {
            b.to_async(&runtime).iter(|| {
                let call = audited.clone().oneshot(request());
                async move { call.await.unwrap().into_body().collect().await.unwrap() }
            })
        });
    }
    group.finish();
}

/// One real event, taken from a request through the layer.
fn sample_event(runtime: &tokio::runtime::Runtime) -> AuditEvent {
    let (sink, mut receiver) = ChannelSink::new(1);
    let service = ServiceBuilder::new()
        .layer(AuditLayer::new(sink))
        .layer(InspectLayer::new())
        .service_fn(|_: Request<EdgeBody<CountingBody<Full<Bytes>>>>| async {
            Ok::<_, Infallible>(json_response())
        });
    runtime.block_on(async {
        let response = service.oneshot(request()).await.unwrap();
        response.into_body().collect().await.unwrap();
        receiver.recv().await.unwrap()
    })
}

fn json_lines_throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let event = sample_event(&runtime);
    const BATCH: usize = 20_000;
    let mut group = c.benchmark_group("json_lines_sink");
    group.throughput(Throughput::Elements(BATCH as u64));
    let dir = std::env::temp_dir().join(format!("mcp-edge-audit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, chain, to_file) in [
        ("to_io_sink", false, false),
        ("to_file", false, true),
        ("to_file_hash_chain", true, true),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let events: Vec<AuditEvent> = (0..BATCH).map(|_| event.clone()).collect();
                    let path = dir.join(format!("{name}-{i}.jsonl"));
                    total += runtime.block_on(async {
                        let builder = JsonLinesSink::builder().queue(BATCH).hash_chain(chain);
                        let sink = if to_file {
                            builder.open(&path).await.unwrap()
                        } else {
                            builder.writer(tokio::io::sink())
                        };
                        let start = Instant::now();
                        for event in events {
                            mcp_edge::audit::AuditSink::emit(&sink, event);
                        }
                        sink.shutdown().await;
                        let elapsed = start.elapsed();
                        assert_eq!(sink.written(), BATCH as u64);
                        assert_eq!(sink.dropped(), 0);
                        elapsed
                    });
                    let _ = std::fs::remove_file(&path);
                }
                total
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(
    benches,
    json_request,
    sse_frames_observed,
    json_lines_throughput
);
criterion_main!(benches);
