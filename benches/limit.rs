//! Limit layer cost: one local decision against `governor` alone (the anchor), and one Redis
//! decision against a bare `EVALSHA` loop on the same Redis.
//!
//! - `limit/bare`: a classified `tools/call` (with its `Principal`) through a trivial service;
//! - `limit/local/one_rule` and `limit/local/three_rules`: the same through `LimitLayer` with
//!   a rate per principal (and a per-tool rate and a quota): the difference with `bare` is the
//!   layer's cost per call, target ≤ 200 ns;
//! - `limit/local/1000_principals`: the key rotates among 1000 callers;
//! - `governor/keyed_check`: `governor`'s keyed GCRA check of a `String` key, on its own;
//! - with a `redis-server` on the `PATH` (or `MCP_EDGE_BENCH_REDIS=redis://…`):
//!   `redis/evalsha_bare` (a one-line script, the round-trip floor) and `redis/decision` (the
//!   layer's decision through Redis, one `EVALSHA`).
//!
//! ```text
//! cargo bench --features redis --bench limit -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! For instruction counts (reliable on a loaded machine):
//! `LIMIT_LOOP=<bare|one_rule|three_rules|governor>`
//! with `LIMIT_CALLS=N` runs N calls of one case and exits, without criterion, e.g.
//!
//! ```text
//! LIMIT_LOOP=one_rule LIMIT_CALLS=100000 valgrind --tool=callgrind target/release/deps/limit-HASH
//! ```

use std::convert::Infallible;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures::FutureExt;
use http::{Method, Request, Response};
use http_body_util::Full;
use mcp_edge::limit::{LimitLayer, Rule};
use mcp_edge::{McpRequest, Principal};
use tower::{Layer, Service, service_fn};

type Req = Request<Full<Bytes>>;

const CALL: &[u8] = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"deploy_prod","arguments":{"env":"prod"}}}"#;

fn bare() -> impl Service<Req, Response = Response<Full<Bytes>>, Error = Infallible> + Clone {
    service_fn(|_request: Req| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
    })
}

/// What the inspect and auth layers leave behind: the parsed call and the caller.
fn classified() -> Arc<McpRequest> {
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert("mcp-protocol-version", "2025-11-25".parse().unwrap());
    Arc::new(
        McpRequest::classify(&Method::POST, &headers, Some(&Bytes::from_static(CALL))).unwrap(),
    )
}

fn request(mcp: &Arc<McpRequest>, principal: &Principal) -> Req {
    let mut request = Request::post("/mcp").body(Full::default()).unwrap();
    request.extensions_mut().insert(Arc::clone(mcp));
    request.extensions_mut().insert(principal.clone());
    request
}

fn run<S>(c: &mut Criterion, name: &str, mut service: S, mut make: impl FnMut() -> Req)
where
    S: Service<Req>,
    S::Error: std::fmt::Debug,
{
    c.bench_function(name, |b| {
        b.iter_batched(
            &mut make,
            |request| {
                let response = service.call(request).now_or_never().unwrap().unwrap();
                std::hint::black_box(response)
            },
            BatchSize::SmallInput,
        )
    });
}

/// A budget that never runs out, so every call is decided and passes.
fn open_rate() -> Rule {
    Rule::rate(u32::MAX, Duration::from_secs(1))
}

/// The three rules of `limit/local/three_rules`.
fn three_rules() -> LimitLayer {
    LimitLayer::new()
        .rule(open_rate())
        .rule(open_rate().method("tools/call").tool("deploy_*"))
        .rule(Rule::quota(u64::MAX, Duration::from_secs(3600)).method("tools/call"))
}

/// `LIMIT_LOOP=<bare|one_rule|three_rules|governor>`: N calls of one case, then exit (for
/// callgrind).
fn fixed_loop(case: &str) {
    let calls: u64 = std::env::var("LIMIT_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let mcp = classified();
    let alice = Principal::new("alice").with_issuer("https://as.example");
    fn drive<S: Service<Req>>(mut service: S, calls: u64, make: impl Fn() -> Req)
    where
        S::Error: std::fmt::Debug,
    {
        for _ in 0..calls {
            let response = service.call(make()).now_or_never().unwrap().unwrap();
            std::hint::black_box(response);
        }
    }
    match case {
        "bare" => drive(bare(), calls, || request(&mcp, &alice)),
        "one_rule" => drive(
            LimitLayer::new().rule(open_rate()).layer(bare()),
            calls,
            || request(&mcp, &alice),
        ),
        "three_rules" => drive(three_rules().layer(bare()), calls, || request(&mcp, &alice)),
        "governor" => {
            let quota = governor::Quota::per_second(NonZeroU32::MAX);
            let limiter = governor::RateLimiter::keyed(quota);
            let key = "https://as.example\u{1f}alice".to_owned();
            for _ in 0..calls {
                std::hint::black_box(limiter.check_key(std::hint::black_box(&key)).is_ok());
            }
        }
        other => panic!("unknown LIMIT_LOOP case {other}"),
    }
    std::process::exit(0);
}

fn local(c: &mut Criterion) {
    if let Ok(case) = std::env::var("LIMIT_LOOP") {
        fixed_loop(&case);
    }
    let mcp = classified();
    let alice = Principal::new("alice").with_issuer("https://as.example");
    run(c, "limit/bare", bare(), || request(&mcp, &alice));
    let one = LimitLayer::new().rule(open_rate());
    run(c, "limit/local/one_rule", one.layer(bare()), || {
        request(&mcp, &alice)
    });
    run(
        c,
        "limit/local/three_rules",
        three_rules().layer(bare()),
        || request(&mcp, &alice),
    );
    let principals: Vec<Principal> = (0..1000)
        .map(|i| Principal::new(format!("user-{i}")).with_issuer("https://as.example"))
        .collect();
    let mut next = 0;
    run(
        c,
        "limit/local/1000_principals",
        one.layer(bare()),
        move || {
            next = (next + 1) % principals.len();
            request(&mcp, &principals[next])
        },
    );

    // The anchor: governor's keyed limiter alone, keyed by the caller's subject.
    let quota = governor::Quota::per_second(NonZeroU32::MAX);
    let limiter = governor::RateLimiter::keyed(quota);
    let key = "https://as.example\u{1f}alice".to_owned();
    c.bench_function("governor/keyed_check", |b| {
        b.iter(|| std::hint::black_box(limiter.check_key(std::hint::black_box(&key)).is_ok()))
    });
}

#[cfg(feature = "redis")]
fn redis(c: &mut Criterion) {
    let Some((url, _server)) = redis_url() else {
        eprintln!("redis benches skipped: no redis-server on the PATH and no MCP_EDGE_BENCH_REDIS");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let conn = runtime
        .block_on(client.get_multiplexed_async_connection())
        .unwrap();
    let script = redis::Script::new("return 1");
    c.bench_function("redis/evalsha_bare", |b| {
        b.to_async(&runtime).iter(|| {
            let mut conn = conn.clone();
            let script = &script;
            async move {
                let one: i64 = script.invoke_async(&mut conn).await.unwrap();
                std::hint::black_box(one)
            }
        })
    });
    let store = runtime.block_on(async {
        mcp_edge::limit::RedisLimits::builder(url.as_str())
            .prefix("bench")
            .open()
            .unwrap()
    });
    let layer = LimitLayer::new().rule(open_rate()).redis(store);
    let service = layer.layer(bare());
    let mcp = classified();
    let alice = Principal::new("alice").with_issuer("https://as.example");
    c.bench_function("redis/decision", |b| {
        b.to_async(&runtime).iter(|| {
            let mut service = service.clone();
            let request = request(&mcp, &alice);
            async move {
                let response = service.call(request).await.unwrap();
                assert_eq!(response.status(), 200);
                std::hint::black_box(response)
            }
        })
    });
    let _ = conn;
}

/// The Redis to use: `MCP_EDGE_BENCH_REDIS`, or a `redis-server` started here (killed when
/// the guard drops).
#[cfg(feature = "redis")]
fn redis_url() -> Option<(String, Option<KillOnDrop>)> {
    if let Ok(url) = std::env::var("MCP_EDGE_BENCH_REDIS") {
        return Some((url, None));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let guard = KillOnDrop(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((format!("redis://127.0.0.1:{port}"), Some(guard)));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[cfg(feature = "redis")]
struct KillOnDrop(std::process::Child);

#[cfg(feature = "redis")]
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(not(feature = "redis"))]
fn redis(_c: &mut Criterion) {
    eprintln!("redis benches skipped: build with --features redis");
}

criterion_group!(benches, local, redis);
criterion_main!(benches);
