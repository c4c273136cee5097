//! The aggregator's merged `tools/list` served from its list cache: 3 upstreams × 50 tools,
//! the whole call (body read, request classified, the merged answer looked up, the answer
//! written). The answer's frames are read as a server writes them, one after the other (a
//! merged answer from cache goes out as its id, the kept bytes, and its hints: concatenating
//! them would copy the 27 KB the aggregator does not). Target: ≤ 5 µs.
//!
//! `cargo bench --bench aggregate --features aggregator -- --warm-up-time 1 --measurement-time 3`
//!
//! Instruction counts (the machine may be shared): run the bench binary under
//! `valgrind --tool=callgrind` with `--bench --profile-time 5`, and divide the inclusive cost
//! of `Aggregator::call`'s future by its number of calls.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use mcp_edge::aggregate::{Aggregator, Upstream};
use serde_json::{Value, json};
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

type Up = BoxCloneSyncService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible>;

const TOOLS: usize = 50;

/// An in-process upstream with `TOOLS` tools, each with a small input schema.
fn upstream() -> Up {
    BoxCloneSyncService::new(tower::service_fn(
        |request: Request<Full<Bytes>>| async move {
            let body = request.into_body().collect().await.unwrap().to_bytes();
            let message: Value = serde_json::from_slice(&body).unwrap();
            let tools: Vec<Value> = (0..TOOLS)
            .map(|i| {
                json!({
                    "name": format!("tool_{i}"),
                    "description": format!("Does thing number {i} to its input."),
                    "inputSchema": {
                        "type": "object",
                        "properties": {"text": {"type": "string"}, "count": {"type": "integer"}},
                        "required": ["text"],
                    },
                })
            })
            .collect();
            let result = json!({"tools": tools, "ttlMs": 3_600_000, "cacheScope": "public"});
            let answer = json!({"jsonrpc": "2.0", "id": message["id"], "result": result});
            let mut response = Response::new(Full::new(Bytes::from(answer.to_string())));
            response
                .headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            Ok::<_, Infallible>(response)
        },
    ))
}

fn request() -> Request<Full<Bytes>> {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{
        "io.modelcontextprotocol/protocolVersion":"2026-07-28",
        "io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/list")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

fn cached_list(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let aggregator = ["alpha", "beta", "gamma"]
        .into_iter()
        .fold(Aggregator::builder(), |b, name| {
            b.upstream(Upstream::new(name, upstream()))
        })
        .list_max_age(Duration::from_secs(3600))
        .build()
        .unwrap();
    // Fill the cache, and check the answer once.
    let answer: Value = runtime.block_on(async {
        let response = aggregator.clone().oneshot(request()).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&body).unwrap()
    });
    assert_eq!(
        answer["result"]["tools"].as_array().unwrap().len(),
        3 * TOOLS
    );

    c.bench_function("aggregate/tools_list_cached_3x50", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = aggregator.clone().oneshot(request()).await.unwrap();
            let mut body = std::pin::pin!(response.into_body());
            let mut written = 0;
            while let Some(frame) = body.frame().await {
                written += frame.unwrap().into_data().map_or(0, |data| data.len());
            }
            written
        })
    });
}

criterion_group!(benches, cached_list);
criterion_main!(benches);
