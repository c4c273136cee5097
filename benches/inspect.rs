//! McpRequest parsing and InspectLayer overhead, against the bare service in the same run.

use std::convert::Infallible;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use mcp_edge::inspect::InspectLayer;
use mcp_edge::protocol::McpRequest;
use tower::{ServiceBuilder, ServiceExt};

/// A `tools/call` body of about `size` bytes, most of it in `arguments`.
fn tools_call(size: usize) -> Bytes {
    let head = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"text":""#;
    let tail = r#""},"_meta":{"progressToken":7}}}"#;
    let fill = size.saturating_sub(head.len() + tail.len());
    let mut body = String::with_capacity(size);
    body.push_str(head);
    body.extend(std::iter::repeat_n('x', fill));
    body.push_str(tail);
    Bytes::from(body)
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for size in [1024usize, 1 << 20] {
        let body = tools_call(size);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("McpRequest", size), &body, |b, body| {
            let headers = HeaderMap::new();
            b.iter(|| McpRequest::classify(&Method::POST, &headers, Some(black_box(body))).unwrap())
        });
        group.bench_with_input(
            BenchmarkId::new("utf8_validate_only", size),
            &body,
            |b, body| b.iter(|| std::str::from_utf8(black_box(body)).unwrap().len()),
        );
        group.bench_with_input(
            BenchmarkId::new("serde_json_Value_full_tree", size),
            &body,
            |b, body| {
                b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(body)).unwrap())
            },
        );
    }
    group.finish();
}

fn request(body: &Bytes) -> Request<Full<Bytes>> {
    Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(Full::new(body.clone()))
        .unwrap()
}

fn layer_overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let body = tools_call(1024);
    let mut group = c.benchmark_group("inspect_layer_1KiB");

    let bare = tower::service_fn(|request: Request<Full<Bytes>>| async move {
        let body = request.into_body().collect().await.unwrap().to_bytes();
        Ok::<_, Infallible>(Response::new(Full::new(body)))
    });
    group.bench_function("bare", |b| {
        b.to_async(&runtime).iter(|| {
            let call = bare.oneshot(request(&body));
            async move { call.await.unwrap() }
        })
    });

    let inspected = ServiceBuilder::new().layer(InspectLayer::new()).service_fn(
        |request: Request<mcp_edge::EdgeBody<Full<Bytes>>>| async move {
            let body = request.into_body().collect().await.unwrap().to_bytes();
            Ok::<_, Infallible>(Response::new(Full::new(body)))
        },
    );
    group.bench_function("inspect", |b| {
        b.to_async(&runtime).iter(|| {
            let call = inspected.clone().oneshot(request(&body));
            async move { call.await.unwrap() }
        })
    });
    group.finish();
}

criterion_group!(benches, parse, layer_overhead);
criterion_main!(benches);
