//! Affinity router costs: envelope seal + open, the least-loaded decision, a table lookup on a
//! local cache hit, and a whole routed call in process against calling the replica directly.
//!
//! `cargo bench --bench affinity -- --warm-up-time 1 --measurement-time 3`

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use mcp_edge::affinity::{
    AffinityRouter, Envelope, EnvelopeKeys, ReplicaSet, SessionEnvelope, SessionKey, Table,
};
use mcp_edge::store::MemorySessionStore;
use mcp_edge::{Principal, Replica, SessionId};
use tower::ServiceExt;
use tower::util::BoxCloneService;

type Replicas = BoxCloneService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible>;

const SERVER_ID: &str = "0f3c2b9e-1d4a-4f7e-9a7b-2c1d3e4f5a6b";

/// An in-process replica: issues `SERVER_ID`-like ids to requests without one.
fn replica(name: &'static str) -> Replicas {
    BoxCloneService::new(tower::service_fn(
        move |request: Request<Full<Bytes>>| async move {
            let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
            if request.headers().get("mcp-session-id").is_none() {
                let id = format!("{}-{name}", &SERVER_ID[..30]);
                response
                    .headers_mut()
                    .insert("mcp-session-id", id.parse().unwrap());
            }
            Ok::<_, Infallible>(response)
        },
    ))
}

fn replicas() -> ReplicaSet<Replicas> {
    let set = ReplicaSet::new();
    for name in ["a", "b", "c"] {
        set.add(
            Replica::new(format!("http://10.0.0.{name}:8080/mcp")),
            replica(name),
        );
    }
    set
}

fn envelope(c: &mut Criterion) {
    let key = SessionKey::from_bytes(&[7; 32]).unwrap();
    let keys = EnvelopeKeys::new(&key).with_previous(&SessionKey::from_bytes(&[9; 32]).unwrap());
    let principal = Principal::new("alice").with_issuer("https://as.example");
    let contents = SessionEnvelope::new(
        &Replica::new("http://10.0.0.1:8080/mcp"),
        SERVER_ID.parse().unwrap(),
        Some(&principal),
        SystemTime::now(),
    );
    let sealed = keys.seal(&contents).unwrap();
    let mut group = c.benchmark_group("envelope");
    group.bench_function("seal", |b| {
        b.iter(|| keys.seal(black_box(&contents)).unwrap())
    });
    group.bench_function("open", |b| {
        b.iter(|| keys.open(black_box(sealed.as_str().as_bytes())).unwrap())
    });
    group.bench_function("seal_and_open", |b| {
        b.iter(|| {
            let sealed = keys.seal(black_box(&contents)).unwrap();
            keys.open(sealed.as_str().as_bytes()).unwrap()
        })
    });
    group.finish();
}

fn decisions(c: &mut Criterion) {
    let set = replicas();
    let mut group = c.benchmark_group("routing");
    group.bench_function("least_loaded_of_3", |b| {
        b.iter(|| black_box(&set).least_loaded_replica().unwrap())
    });

    // A table whose local cache knows the session (warmed by one routed initialize).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let table = Table::new(Arc::new(MemorySessionStore::new()));
    let router = AffinityRouter::table(replicas(), table.clone());
    let session: SessionId = runtime.block_on(async {
        let response = router
            .clone()
            .oneshot(Request::post("/mcp").body(Full::default()).unwrap())
            .await
            .unwrap();
        SessionId::from_header(&response.headers()["mcp-session-id"]).unwrap()
    });
    assert!(table.cached_replica(&session).is_some());
    group.bench_function("table_cache_hit", |b| {
        b.iter(|| table.cached_replica(black_box(&session)).unwrap())
    });
    group.finish();
}

/// A whole request through the router (in process, replica answers at once) against the
/// replica service called directly.
fn routed_call(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = SessionKey::from_bytes(&[7; 32]).unwrap();
    let envelope_router =
        AffinityRouter::envelope(replicas(), Envelope::new(EnvelopeKeys::new(&key)));
    let table_router =
        AffinityRouter::table(replicas(), Table::new(Arc::new(MemorySessionStore::new())));
    let session_of = |router: &AffinityRouter<Replicas>| -> HeaderValue {
        runtime.block_on(async {
            let response = router
                .clone()
                .oneshot(Request::post("/mcp").body(Full::default()).unwrap())
                .await
                .unwrap();
            response.headers()["mcp-session-id"].clone()
        })
    };
    let sealed = session_of(&envelope_router);
    let pinned = session_of(&table_router);
    let bare = replica("a");
    let request = |session: &HeaderValue| {
        Request::post("/mcp")
            .header("mcp-session-id", session.clone())
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap()
    };
    let raw = HeaderValue::from_static(SERVER_ID);

    let mut group = c.benchmark_group("call");
    group.bench_function("bare_replica", |b| {
        b.to_async(&runtime)
            .iter(|| bare.clone().oneshot(request(&raw)))
    });
    group.bench_function("envelope_router", |b| {
        b.to_async(&runtime)
            .iter(|| envelope_router.clone().oneshot(request(&sealed)))
    });
    group.bench_function("table_router_cache_hit", |b| {
        b.to_async(&runtime)
            .iter(|| table_router.clone().oneshot(request(&pinned)))
    });
    group.bench_function("new_session_envelope", |b| {
        b.to_async(&runtime).iter(|| {
            envelope_router
                .clone()
                .oneshot(Request::post("/mcp").body(Full::default()).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, envelope, decisions, routed_call);
criterion_main!(benches);
