//! The whole edge composed around a trivial service: what every layer together adds to one
//! `tools/call` (1 KiB request body), with a JSON answer and with an SSE answer, against the
//! bare service in the same run. The target is ≤ 3 µs added per call.
//!
//! Stacks: `bare` (the service alone) and `full` (`McpEdge`: audit with a no-op sink, loopback
//! guard, inspect, static-token auth, an enforced legacy session found in the memory store,
//! SSE with a heartbeat). Before criterion runs, each stack's heap allocations per call are
//! counted with a counting global allocator and printed (`allocs/call`).
//!
//! ```text
//! cargo bench --bench stack
//! ```
//!
//! For instruction counts (reliable on a loaded machine): `STACK_LOOP=<stack>/<answer>` with
//! `STACK_CALLS=N` runs N calls of one case and exits, without criterion, e.g. (the answer
//! `streams` instead opens N legacy GET streams, keeps them open, and prints the heap bytes
//! each one holds)
//!
//! ```text
//! STACK_LOOP=full/json STACK_CALLS=2000 valgrind --tool=callgrind target/release/deps/stack-HASH
//! ```
//!
//! Observability (issue 16), the `full` stack again with (`--features metrics,otel` for the
//! last three to record anything):
//! - `full_spans_off`: `AuditLayer::spans(false)`, no recorder (`full` has spans on and no
//!   subscriber: what users without a tracing subscriber pay);
//! - `full_otel`: spans exported through tracing-opentelemetry to an exporter that drops them
//!   (`benches/common/otel.rs`);
//! - `full_metrics`: a Prometheus recorder (metrics-exporter-prometheus) installed, every hook
//!   recording;
//! - `full_observed`: both.
//!
//! Criterion runs them in that order (a recorder, once installed, stays for the process);
//! `STACK_LOOP=full_observed/json` runs one in a process of its own.
//!
//! `STACK_LOOP=full_lines/json` is the `full` stack auditing to a hash-chained
//! `JsonLinesSink` on `/dev/null` (the gateway example's `--audit-log`): under callgrind, the
//! difference with `full/json` is what the writer thread spends per call.

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use mcp_edge::audit::{AuditEvent, AuditLayer, JsonLinesSink};
use mcp_edge::auth::StaticTokens;
use mcp_edge::store::{MemorySessionStore, SessionRecord, SessionStore};
use mcp_edge::{AuthLayer, McpEdge, Principal, SessionId, SessionLayer, SseLayer};
use tower::{Layer, Service, ServiceExt};

#[path = "common/otel.rs"]
mod otel;

/// Counts heap allocations (not frees) made by this process, and the bytes live.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

// Forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SESSION: &str = "0f3c2b9e-1d4a-4f7e-9a7b-000000000007";
const TOKEN: &str = "s3cret-token-for-the-stack-bench";

/// A 1 KiB `tools/call`.
fn request_body() -> Bytes {
    let text = "x".repeat(1024 - 120);
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{text}"}},"_meta":{{"progressToken":7}}}}}}"#
    );
    Bytes::from(body)
}

const RESULT: &[u8] = br#"{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"hello"}],"isError":false}}"#;

fn sse_result() -> Bytes {
    let mut event = b"event: message\ndata: ".to_vec();
    event.extend_from_slice(RESULT);
    event.extend_from_slice(b"\n\n");
    Bytes::from(event)
}

fn request(body: &Bytes) -> Request<Full<Bytes>> {
    Request::post("/mcp")
        .header("host", "localhost:8080")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", SESSION)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Full::new(body.clone()))
        .unwrap()
}

/// A legacy GET stream request on the bench's session.
fn get_request() -> Request<Full<Bytes>> {
    Request::get("/mcp")
        .header("host", "localhost:8080")
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", SESSION)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// An SSE body that stays open and sends nothing: a GET stream with no event yet.
struct OpenStream;

impl http_body::Body for OpenStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        std::task::Poll::Pending
    }
}

/// The trivial MCP service of the streams case: every request gets an open SSE stream.
fn stream_service<B>()
-> impl Service<Request<B>, Response = Response<OpenStream>, Error = Infallible, Future: Send>
+ Clone
+ Send {
    tower::service_fn(|_request: Request<B>| {
        let response = Response::builder()
            .header("content-type", "text/event-stream")
            .body(OpenStream)
            .unwrap();
        std::future::ready(Ok::<_, Infallible>(response))
    })
}

/// Opens `n` GET streams through `service` and keeps them open (each response body boxed, as
/// a server's connection task holds it); returns the heap bytes still live per stream.
fn bytes_per_stream<S, B>(runtime: &tokio::runtime::Runtime, service: &S, n: usize) -> f64
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    runtime.block_on(async {
        let mut open = Vec::with_capacity(n);
        let before = LIVE_BYTES.load(Ordering::Relaxed);
        for _ in 0..n {
            let response = service.clone().oneshot(get_request()).await.unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            let mut body = Box::new(response.into_body());
            // What comes at once (the SSE layer's first comment), then the stream waits.
            while let Ok(Some(_)) = tokio::time::timeout(Duration::ZERO, body.frame()).await {}
            open.push(body);
        }
        let live = LIVE_BYTES.load(Ordering::Relaxed) - before;
        drop(open);
        live as f64 / n as f64
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Json,
    Sse,
}

/// The trivial MCP service: one answer, JSON or one SSE event.
fn service<B>(
    answer: Answer,
) -> impl Service<Request<B>, Response = Response<Full<Bytes>>, Error = Infallible, Future: Send>
+ Clone
+ Send {
    let sse = sse_result();
    tower::service_fn(move |_request: Request<B>| {
        let response = match answer {
            Answer::Json => Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(RESULT))),
            Answer::Sse => Response::builder()
                .header("content-type", "text/event-stream")
                .body(Full::new(sse.clone())),
        };
        std::future::ready(Ok::<_, Infallible>(response.unwrap()))
    })
}

fn principal() -> Principal {
    Principal::new("alice")
}

/// Every layer: audit (no-op sink unless said otherwise), guard, inspect, auth, session, SSE.
type FullEdge<K = fn(AuditEvent)> = McpEdge<
    AuditLayer<K>,
    AuthLayer<StaticTokens>,
    tower::layer::util::Identity,
    SessionLayer,
    SseLayer,
>;

fn full_edge(store: &MemorySessionStore) -> FullEdge {
    full_edge_spans(store, true)
}

fn full_edge_spans(store: &MemorySessionStore, spans: bool) -> FullEdge {
    let noop: fn(AuditEvent) = |_event| {};
    full_edge_audit(store, AuditLayer::new(noop).spans(spans))
}

fn full_edge_audit<K>(store: &MemorySessionStore, audit: AuditLayer<K>) -> FullEdge<K> {
    McpEdge::builder()
        .audit(audit)
        .auth(AuthLayer::new(
            StaticTokens::new().token(TOKEN, principal()),
        ))
        .session(SessionLayer::with_store(store.clone()).enforce())
        .sse(SseLayer::new().heartbeat(Duration::from_secs(15)))
}

fn session_store(runtime: &tokio::runtime::Runtime) -> MemorySessionStore {
    let store = MemorySessionStore::new();
    let id: SessionId = SESSION.parse().unwrap();
    runtime.block_on(async {
        store
            .insert(SessionRecord::new(id).with_principal(&principal()))
            .await
            .unwrap();
    });
    store
}

/// One call through `service`, its answer read to the end.
async fn call<S, B>(service: &S, body: &Bytes) -> usize
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let response = service.clone().oneshot(request(body)).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .len()
}

/// Runs `calls` calls of one case; returns the allocations they made.
fn count<S, B>(runtime: &tokio::runtime::Runtime, service: &S, body: &Bytes, calls: u64) -> u64
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    runtime.block_on(async {
        call(service, body).await;
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for _ in 0..calls {
            call(service, body).await;
        }
        ALLOCATIONS.load(Ordering::Relaxed) - before
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// `STACK_LOOP=<bare|full>/<json|sse>`: N calls of one case, then exit (for callgrind).
fn fixed_loop(case: &str) {
    let calls: u64 = std::env::var("STACK_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let runtime = runtime();
    let store = session_store(&runtime);
    let body = request_body();
    let (stack, answer) = case.split_once('/').expect("STACK_LOOP=<stack>/<answer>");
    if answer == "streams" {
        let n = calls as usize;
        let per_stream = match stack {
            "bare" => bytes_per_stream(&runtime, &stream_service(), n),
            "full" => bytes_per_stream(&runtime, &full_edge(&store).layer(stream_service()), n),
            other => panic!("unknown stack {other}"),
        };
        println!("{case}: {n} open GET streams, {per_stream:.0} heap bytes live per stream");
        return;
    }
    let answer = match answer {
        "json" => Answer::Json,
        "sse" => Answer::Sse,
        other => panic!("unknown answer {other}"),
    };
    let full = |spans| full_edge_spans(&store, spans).layer(service(answer));
    let _subscriber = matches!(stack, "full_otel" | "full_observed")
        .then(|| tracing::subscriber::set_default(otel::otel_subscriber()));
    if matches!(stack, "full_metrics" | "full_observed") {
        install_recorder();
    }
    let allocs = match stack {
        "bare" => count(&runtime, &service(answer), &body, calls),
        "full" | "full_otel" | "full_metrics" | "full_observed" => {
            count(&runtime, &full(true), &body, calls)
        }
        "full_spans_off" => count(&runtime, &full(false), &body, calls),
        "full_lines" => {
            // The gateway's audit: a hash-chained JSON-lines file (here `/dev/null`), written
            // by its own thread; shut down before the count so that every line is written.
            let sink = runtime
                .block_on(JsonLinesSink::builder().hash_chain(true).open("/dev/null"))
                .expect("/dev/null opens");
            let edge = full_edge_audit(&store, AuditLayer::new(sink.clone()));
            let allocs = count(&runtime, &edge.layer(service(answer)), &body, calls);
            runtime.block_on(sink.shutdown());
            assert_eq!(sink.written(), calls + 1);
            allocs
        }
        other => panic!("unknown stack {other}"),
    };
    println!(
        "{case}: {calls} calls, {} allocs/call",
        allocs as f64 / calls as f64
    );
}

/// A Prometheus recorder for the rest of the process.
fn install_recorder() {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("one recorder per process");
}

/// The observability cases (see the module docs), JSON answers.
fn observe(c: &mut Criterion, runtime: &tokio::runtime::Runtime, store: &MemorySessionStore) {
    let body = request_body();
    let mut group = c.benchmark_group("stack_observe_json");
    let mut run = |name: &str, spans: bool| {
        let full = full_edge_spans(store, spans).layer(service(Answer::Json));
        let allocs = count(runtime, &full, &body, 1000) as f64 / 1000.0;
        println!("allocs/call {name}: {allocs:.1}");
        group.bench_function(name, |b| b.to_async(runtime).iter(|| call(&full, &body)));
    };
    run("full_spans_off", false);
    run("full", true);
    {
        let _otel = tracing::subscriber::set_default(otel::otel_subscriber());
        run("full_otel", true);
    }
    install_recorder();
    run("full_metrics", true);
    let _otel = tracing::subscriber::set_default(otel::otel_subscriber());
    run("full_observed", true);
    group.finish();
}

fn stack(c: &mut Criterion) {
    if let Ok(case) = std::env::var("STACK_LOOP") {
        fixed_loop(&case);
        std::process::exit(0);
    }
    let runtime = runtime();
    let store = session_store(&runtime);
    let body = request_body();
    for (name, answer) in [("json", Answer::Json), ("sse", Answer::Sse)] {
        let bare = service(answer);
        let full = full_edge(&store).layer(service(answer));
        let calls = 1000;
        let bare_allocs = count(&runtime, &bare, &body, calls) as f64 / calls as f64;
        let full_allocs = count(&runtime, &full, &body, calls) as f64 / calls as f64;
        println!(
            "allocs/call {name}: bare {bare_allocs:.1}, full {full_allocs:.1}, added {:.1}",
            full_allocs - bare_allocs
        );
        let mut group = c.benchmark_group(format!("stack_tools_call_1k_{name}"));
        group.bench_function("bare", |b| {
            b.to_async(&runtime).iter(|| call(&bare, &body));
        });
        group.bench_function("full", |b| {
            b.to_async(&runtime).iter(|| call(&full, &body));
        });
        group.finish();
    }
    observe(c, &runtime, &store);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = stack
}
criterion_main!(benches);
