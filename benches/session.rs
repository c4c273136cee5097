//! Session store lookups and SessionLayer overhead, against the bare service in the same run.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, Method, Request, Response};
use http_body_util::Full;
use mcp_edge::protocol::McpRequest;
use mcp_edge::session::SessionLayer;
use mcp_edge::store::{MemorySessionStore, SessionRecord, SessionStore};
use mcp_edge::{Principal, SessionId};
use tower::{Service, ServiceBuilder, ServiceExt};

const SESSIONS: usize = 10_000;

fn loaded_store() -> (MemorySessionStore, Vec<SessionId>) {
    let store = MemorySessionStore::new();
    let principal = Principal::new("alice").with_issuer("https://as.example");
    let ids: Vec<SessionId> = (0..SESSIONS)
        .map(|i| format!("0f3c2b9e-1d4a-4f7e-9a7b-{i:012}").parse().unwrap())
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        for id in &ids {
            store
                .insert(SessionRecord::new(id.clone()).with_principal(&principal))
                .await
                .unwrap();
        }
    });
    (store, ids)
}

fn store_lookup(c: &mut Criterion) {
    let (store, ids) = loaded_store();
    let hit = ids[SESSIONS / 2].clone();
    let miss: SessionId = "not-a-session".parse().unwrap();
    let shared: Arc<dyn SessionStore> = Arc::new(store.clone());
    let mut group = c.benchmark_group("memory_store_10k");
    // Memory futures are ready on return: `into_ready` takes the value without polling.
    group.bench_function("get_hit", |b| {
        b.iter(|| {
            store
                .get(black_box(&hit))
                .into_ready()
                .ok()
                .unwrap()
                .unwrap()
        })
    });
    group.bench_function("get_hit_dyn", |b| {
        b.iter(|| {
            shared
                .get(black_box(&hit))
                .into_ready()
                .ok()
                .unwrap()
                .unwrap()
        })
    });
    group.bench_function("touch_hit", |b| {
        b.iter(|| {
            store
                .touch(black_box(&hit))
                .into_ready()
                .ok()
                .unwrap()
                .unwrap()
        })
    });
    group.bench_function("get_miss", |b| {
        b.iter(|| {
            store
                .get(black_box(&miss))
                .into_ready()
                .ok()
                .unwrap()
                .unwrap()
        })
    });
    group.finish();
}

fn layer_overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (store, ids) = loaded_store();
    let session = ids[7].clone();
    let body = Bytes::from_static(br#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#);
    let mut headers = HeaderMap::new();
    headers.insert("mcp-protocol-version", "2025-11-25".parse().unwrap());
    let mcp = Arc::new(McpRequest::classify(&Method::POST, &headers, Some(&body)).unwrap());
    let principal = Principal::new("alice").with_issuer("https://as.example");
    // What the layer sees inside inspect and auth: the classified request and the principal.
    let request = || {
        let mut request = Request::post("/mcp")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .header("mcp-session-id", session.as_str())
            .body(Full::new(body.clone()))
            .unwrap();
        request.extensions_mut().insert(Arc::clone(&mcp));
        request.extensions_mut().insert(principal.clone());
        request
    };
    let server = tower::service_fn(|_request: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
    });

    let mut group = c.benchmark_group("session_layer_known_session");
    group.bench_function("bare", |b| {
        b.to_async(&runtime).iter(|| {
            let call = server.oneshot(request());
            async move { call.await.unwrap() }
        })
    });
    for (name, layer) in [
        ("observe", SessionLayer::with_store(store.clone())),
        ("enforce", SessionLayer::with_store(store.clone()).enforce()),
    ] {
        let mut service = ServiceBuilder::new().layer(layer).service(server);
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let call = service.call(request());
                async move { call.await.unwrap() }
            })
        });
    }
    group.finish();
}

/// `touch` on a real local `redis-server` (skipped when the binary is absent): one round trip
/// running the touch script, what the session layer adds per legacy request with Redis.
#[cfg(feature = "redis")]
fn redis_touch(c: &mut Criterion) {
    use mcp_edge::store::redis::RedisSessionStore;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let child = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .stdout(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("redis-server not found: skipping redis_store benches");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("redis://127.0.0.1:{port}");
    let store = runtime.block_on(async {
        for _ in 0..100 {
            if let Ok(store) = RedisSessionStore::connect(url.as_str()).await {
                return Some(store);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        None
    });
    if let Some(store) = store {
        let id: SessionId = "0f3c2b9e-1d4a-4f7e-9a7b-2c1d3e4f5a6b".parse().unwrap();
        runtime
            .block_on(store.insert(SessionRecord::new(id.clone())))
            .unwrap();
        let mut group = c.benchmark_group("redis_store_local");
        group.bench_function("touch_hit", |b| {
            b.to_async(&runtime).iter(|| store.touch(&id))
        });
        group.bench_function("get_hit", |b| b.to_async(&runtime).iter(|| store.get(&id)));
        group.finish();
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(not(feature = "redis"))]
fn redis_touch(_: &mut Criterion) {}

criterion_group!(benches, store_lookup, layer_overhead, redis_touch);
criterion_main!(benches);
