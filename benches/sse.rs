//! SseLayer against the bare body, in the same run.
//!
//! - `sse_frames/*`: polling 1,000 ready SSE frames through the response body, bare and
//!   through `SseLayer` (throughput in events/s; divide the time by 1,000 for ns per frame).
//!   Small frames are typical progress notifications (~130 B), large ones 4 KiB tool results.
//! - `sse_stream_e2e/*`: one HTTP/1.1 response of 2,000 ready events (~130 B each) served by
//!   hyper over loopback TCP and read to the end by a raw TCP client, bare and through
//!   `SseLayer` (throughput in events/s): the cost as a server sees it.
//! - memory per idle stream: printed before the timing runs. 10,000 streams are opened
//!   through the layer and each polled once while its inner body is idle (so its heartbeat
//!   timer exists and is registered); a counting global allocator measures the heap they
//!   hold, plus the inline size of the body wrapper over the bare body.
//!
//! - `resume_frames/*`: the same 1,000 ready frames through `ResumeLayer` (memory event
//!   store, a 2025-11-25 POST stream): each event gets its id line and is handed to the
//!   stream's writer task; the store write itself runs on that task, off the body's path, and
//!   is measured apart (`resume_store/append_batch_256`). Per-event added cost = (resume -
//!   bare) / 1,000.
//! - memory per detached stream: 1,000 recorded streams whose client left (their inner body
//!   idle, read on by the drain task), printed before the timing runs.
//! - `resume_redis/*` (feature `redis`, with `MCP_EDGE_BENCH_REDIS=redis://…`): the Redis event
//!   store's `append_batch` of 256 events (one script call) against a bare loop of `XADD`s
//!   awaited one by one, in events/s.
//!
//! `cargo bench --bench sse -- --warm-up-time 1 --measurement-time 3`
//!
//! For instruction counts (reliable on a loaded machine): `RESUME_LOOP=<bare|resume>` with
//! `RESUME_STREAMS=N` drains N streams of 1,000 small events, bare or through `ResumeLayer`
//! (the writer tasks run between streams, as in the timed bench), and exits, e.g.
//!
//! ```text
//! RESUME_LOOP=resume RESUME_STREAMS=20 valgrind --tool=callgrind target/release/deps/sse-HASH
//! ```
//!
//! The difference between two values of N, divided by 1,000 events per stream, is the
//! per-event count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use mcp_edge::sse::{Drain, ResumeLayer, SseBody, SseLayer};
use mcp_edge::store::{EventStore, MemoryEventStore, StoredEvent, StreamKey};
use tower::{Layer, Service, ServiceExt};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const FRAMES: usize = 1_000;

/// A body yielding prepared frames, all ready at once.
struct Frames(std::vec::IntoIter<Bytes>);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.next().map(|b| Ok(Frame::data(b))))
    }
}

/// An idle stream: never ready.
struct Idle;

impl Body for Idle {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Pending
    }
    fn size_hint(&self) -> SizeHint {
        SizeHint::new()
    }
}

fn sse_response<B>(body: B) -> Response<B> {
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(body)
        .unwrap()
}

fn drain_body<B: Body<Data = Bytes> + Unpin>(mut body: B) -> usize {
    let mut cx = Context::from_waker(Waker::noop());
    let mut bytes = 0;
    while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
        if let Ok(frame) = frame {
            bytes += frame.data_ref().map_or(0, Bytes::len);
        }
    }
    bytes
}

fn event(size: usize) -> Bytes {
    let head = r#"event: message
data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p","progress":1,"total":10,"message":""#;
    let tail = "\"}}\n\n";
    let pad = size.saturating_sub(head.len() + tail.len());
    Bytes::from(format!("{head}{}{tail}", "x".repeat(pad)))
}

fn frames_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("sse_frames");
    group.throughput(Throughput::Elements(FRAMES as u64));
    for (name, size) in [("small_130B", 130), ("large_4KiB", 4096)] {
        let frame = event(size);
        let frames = move || vec![frame.clone(); FRAMES];

        let f = frames.clone();
        group.bench_function(format!("bare/{name}"), |b| {
            b.iter_batched(
                || sse_response(Frames(f().into_iter())).into_body(),
                |body| black_box(drain_body(body)),
                BatchSize::SmallInput,
            )
        });

        let f = frames.clone();
        let layer = SseLayer::new();
        group.bench_function(format!("sse_layer/{name}"), |b| {
            b.iter_batched(
                || {
                    let body = Frames(f().into_iter());
                    let slot = std::sync::Mutex::new(Some(body));
                    let svc = layer.layer(tower::service_fn(move |_: Request<()>| {
                        let body = slot.lock().unwrap().take().unwrap();
                        async move { Ok::<_, Infallible>(sse_response(body)) }
                    }));
                    rt.block_on(svc.oneshot(Request::new(())))
                        .unwrap()
                        .into_body()
                },
                |body| black_box(drain_body(body)),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn legacy_post() -> Request<()> {
    Request::post("/mcp")
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", "bench-session")
        .body(())
        .unwrap()
}

/// `RESUME_LOOP=<bare|resume>`: N streams of one case, then exit (for callgrind).
fn resume_loop(case: &str) {
    let streams: usize = std::env::var("RESUME_STREAMS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let frame = event(130);
    let frames = move || vec![frame.clone(); FRAMES];
    let layer = ResumeLayer::new(MemoryEventStore::new());
    for _ in 0..streams {
        rt.block_on(tokio::task::yield_now());
        let body = Frames(frames().into_iter());
        let bytes = match case {
            "bare" => drain_body(sse_response(body).into_body()),
            "resume" => {
                let slot = std::sync::Mutex::new(Some(body));
                let svc = layer.layer(tower::service_fn(move |_: Request<()>| {
                    let body = slot.lock().unwrap().take().unwrap();
                    async move { Ok::<_, Infallible>(sse_response(body)) }
                }));
                drain_body(rt.block_on(svc.oneshot(legacy_post())).unwrap().into_body())
            }
            other => panic!("unknown RESUME_LOOP case {other}"),
        };
        black_box(bytes);
    }
    rt.block_on(tokio::task::yield_now());
    std::process::exit(0);
}

fn resume_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("resume_frames");
    group.throughput(Throughput::Elements(FRAMES as u64));
    for (name, size) in [("small_130B", 130), ("large_4KiB", 4096)] {
        let frame = event(size);
        let frames = move || vec![frame.clone(); FRAMES];
        let layer = ResumeLayer::new(MemoryEventStore::new());
        group.bench_function(format!("resume_layer/{name}"), |b| {
            b.iter_batched(
                || {
                    // The writer tasks of earlier iterations run here, outside the timing.
                    rt.block_on(tokio::task::yield_now());
                    let body = Frames(frames().into_iter());
                    let slot = std::sync::Mutex::new(Some(body));
                    let svc = layer.layer(tower::service_fn(move |_: Request<()>| {
                        let body = slot.lock().unwrap().take().unwrap();
                        async move { Ok::<_, Infallible>(sse_response(body)) }
                    }));
                    rt.block_on(svc.oneshot(legacy_post())).unwrap().into_body()
                },
                |body| black_box(drain_body(body)),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("resume_store");
    group.throughput(Throughput::Elements(256));
    // One stream, appended to in batches of 256 (it keeps its last 1,024 events).
    let store = MemoryEventStore::new();
    let data = event(130);
    let key = StreamKey::new(None, "bench");
    let mut next = 1u64;
    group.bench_function("append_batch_256", |b| {
        b.iter_batched(
            || {
                let events: Vec<StoredEvent> = (next..next + 256)
                    .map(|seq| StoredEvent {
                        seq,
                        data: data.clone(),
                    })
                    .collect();
                next += 256;
                events
            },
            |events| rt.block_on(store.append_batch(&key, events)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

#[cfg(feature = "redis")]
fn redis_benches(c: &mut Criterion) {
    let Ok(url) = std::env::var("MCP_EDGE_BENCH_REDIS") else {
        println!("resume_redis: skipped (set MCP_EDGE_BENCH_REDIS=redis://127.0.0.1:6379)");
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store =
        rt.block_on(async { mcp_edge::store::redis::RedisEventStore::open(url.clone()).unwrap() });
    let mut conn = rt.block_on(async {
        redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    });
    let data = event(130);
    let mut group = c.benchmark_group("resume_redis");
    group.throughput(Throughput::Elements(256));
    let mut stream = 0u64;
    group.bench_function("append_batch_256", |b| {
        b.iter_batched(
            || {
                stream += 1;
                let key = StreamKey::new(None, format!("bench-{stream}"));
                let events: Vec<StoredEvent> = (1..=256)
                    .map(|seq| StoredEvent {
                        seq,
                        data: data.clone(),
                    })
                    .collect();
                (key, events)
            },
            |(key, events)| rt.block_on(store.append_batch(&key, events)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("bare_xadd_loop_256", |b| {
        b.iter(|| {
            stream += 1;
            let key = format!("bench-bare-{stream}");
            rt.block_on(async {
                for seq in 1..=256u64 {
                    let _: String = redis::cmd("XADD")
                        .arg(&key)
                        .arg(format!("0-{seq}"))
                        .arg("d")
                        .arg(&data[..])
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                }
            })
        })
    });
    group.finish();
}

/// Heap each recorded stream holds once its client left and the drain task reads it on.
fn detached_memory_report() {
    const STREAMS: usize = 1_000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let layer = ResumeLayer::new(MemoryEventStore::new());
    let heap = rt.block_on(async {
        let mut svc = layer.layer(tower::service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(sse_response(Idle))
        }));
        let before = LIVE.load(Ordering::SeqCst);
        for _ in 0..STREAMS {
            let svc = svc.ready().await.unwrap();
            let body = svc.call(legacy_post()).await.unwrap().into_body();
            // The client leaves at once: the drain task takes the inner body.
            drop(body);
        }
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        LIVE.load(Ordering::SeqCst) - before
    });
    println!(
        "memory per detached recorded stream, {STREAMS} open: {:.0} B heap (bounded by the \
         drain's byte and time limits, plus one held partial event of at most 1 MiB)",
        heap as f64 / STREAMS as f64
    );
}

const E2E_EVENTS: usize = 2_000;

/// Serves every connection with `make_response` on a free loopback port.
async fn serve_e2e<S, B>(svc: S) -> std::net::SocketAddr
where
    S: Service<Request<hyper::body::Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            let svc = svc.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| svc.clone().oneshot(req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

async fn fetch_to_end(addr: std::net::SocketAddr) -> usize {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .write_all(b"GET /mcp HTTP/1.1\r\nhost: bench\r\naccept: text/event-stream\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            return total;
        }
        total += n;
    }
}

fn e2e_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let frame = event(130);
    let bare = {
        let frame = frame.clone();
        tower::service_fn(move |_: Request<hyper::body::Incoming>| {
            let body = Frames(vec![frame.clone(); E2E_EVENTS].into_iter());
            async move { Ok::<_, Infallible>(sse_response(body)) }
        })
    };
    let layered = SseLayer::new().layer(bare.clone());
    let bare_addr = rt.block_on(serve_e2e(bare));
    let layered_addr = rt.block_on(serve_e2e(layered));
    let expected = rt.block_on(fetch_to_end(bare_addr));
    assert!(expected >= E2E_EVENTS * 130);

    let mut group = c.benchmark_group("sse_stream_e2e");
    group.throughput(Throughput::Elements(E2E_EVENTS as u64));
    group.bench_function("bare/2000x130B", |b| {
        b.to_async(&rt).iter(|| fetch_to_end(bare_addr))
    });
    group.bench_function("sse_layer/2000x130B", |b| {
        b.to_async(&rt).iter(|| fetch_to_end(layered_addr))
    });
    group.finish();
}

/// Heap and inline bytes each idle stream adds, with 10,000 of them open.
fn memory_report() {
    const STREAMS: usize = 10_000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    for (label, layer) in [
        ("heartbeat 15 s", SseLayer::new()),
        ("heartbeat 15 s + drain + max age", {
            SseLayer::new()
                .drain(Drain::new())
                .max_stream_age(Duration::from_secs(3600))
        }),
        ("no heartbeat", SseLayer::new().no_heartbeat()),
    ] {
        let (heap, streams) = rt.block_on(async {
            let mut svc = layer.layer(tower::service_fn(|_: Request<()>| async {
                Ok::<_, Infallible>(sse_response(Idle))
            }));
            let mut streams: Vec<SseBody<Idle>> = Vec::with_capacity(STREAMS);
            let before = LIVE.load(Ordering::SeqCst);
            let mut cx = Context::from_waker(Waker::noop());
            for _ in 0..STREAMS {
                let svc = svc.ready().await.unwrap();
                let response = svc.call(Request::new(())).await.unwrap();
                let (parts, body) = response.into_parts();
                drop(parts);
                streams.push(body);
                let last = streams.last_mut().unwrap();
                assert!(Pin::new(last).poll_frame(&mut cx).is_pending());
            }
            let heap = LIVE.load(Ordering::SeqCst) - before;
            (heap, streams)
        });
        // The Vec's own buffer (reserved before `before`) holds the inline part.
        let inline = std::mem::size_of::<SseBody<Idle>>() - std::mem::size_of::<Idle>();
        let per_stream_heap = heap as f64 / STREAMS as f64;
        println!(
            "memory per idle SSE stream ({label}), {STREAMS} open: {per_stream_heap:.0} B heap \
             + {inline} B inline = {:.0} B (bare idle body: 0 B)",
            per_stream_heap + inline as f64
        );
        drop(streams);
    }
}

fn main() {
    if let Ok(case) = std::env::var("RESUME_LOOP") {
        resume_loop(&case);
    }
    memory_report();
    detached_memory_report();
    let mut criterion = Criterion::default().configure_from_args();
    frames_benches(&mut criterion);
    resume_benches(&mut criterion);
    #[cfg(feature = "redis")]
    redis_benches(&mut criterion);
    e2e_benches(&mut criterion);
    criterion.final_summary();
}
