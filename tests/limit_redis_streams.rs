//! Stream caps shared across instances through a real Redis: two edge instances in front of
//! real rmcp servers hold one concurrency budget; a place held by an open stream is renewed
//! for as long as the stream lives, comes back when the stream ends or its client leaves, and
//! comes back after one lease when the instance holding it freezes or crashes.
#![cfg(feature = "redis")]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use mcp_edge::auth::StaticTokens;
use mcp_edge::limit::{LimitLayer, RedisLimits, Rule};
use mcp_edge::{AuthLayer, InspectLayer, McpEdge, Principal, SseLayer};
use serde_json::json;
use tower::{Layer, ServiceBuilder, ServiceExt};

use common::{Redis, TestServer, first_progress, rmcp_service, serve_service, slow_stream};

const ALICE: &str = "alice-token";
const BOB: &str = "bob-token";
const LEASE: Duration = Duration::from_millis(900);

fn store(url: &str, prefix: &str) -> RedisLimits {
    RedisLimits::builder(url)
        .prefix(prefix)
        .lease(LEASE)
        .timeout(Duration::from_millis(500))
        .open()
        .unwrap()
}

/// An edge instance with one stream per principal, its place kept in the Redis at `url`.
fn instance(url: &str, prefix: &str) -> (TestServer, RedisLimits) {
    let store = store(url, prefix);
    let limit = LimitLayer::new()
        .rule("tools/call=1 concurrent per principal".parse().unwrap())
        .redis(store.clone());
    let tokens = StaticTokens::new()
        .token(ALICE, Principal::new("alice"))
        .token(BOB, Principal::new("bob"));
    let edge = McpEdge::builder()
        .auth(AuthLayer::new(tokens))
        .limit(limit)
        // Short heartbeats: a stream whose client left fails its next write within 200 ms.
        .sse(SseLayer::new().heartbeat(Duration::from_millis(200)));
    (serve_service(edge.layer(rmcp_service())), store)
}

/// Retries `attempt` every 100 ms until it answers 200; panics after `within`.
async fn passes_within<F, Fut>(within: Duration, mut attempt: F) -> reqwest::Response
where
    F: FnMut() -> Fut,
    Fut: Future<Output = reqwest::Response>,
{
    let deadline = Instant::now() + within;
    loop {
        let response = attempt().await;
        if response.status() == 200 {
            return response;
        }
        assert_eq!(response.status(), 429);
        assert!(Instant::now() < deadline, "the place never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_stream_cap_renewed_while_open_and_given_back() {
    let Some(redis) = Redis::start() else { return };
    let (a, store_a) = instance(&redis.url(), "streams");
    let (b, _) = instance(&redis.url(), "streams");

    // Alice's one stream is open on A: B refuses her second, bob is not affected.
    let open = first_progress(slow_stream(&a.url, ALICE, 1000, 50).await).await;
    assert_eq!(store_a.held_places(), 1);
    let refused = slow_stream(&b.url, ALICE, 1, 1).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("key principal=alice"),
        "{body}"
    );
    let bob = slow_stream(&b.url, BOB, 1, 1).await;
    assert_eq!(bob.status(), 200);
    let _ = bob.bytes().await;

    // Three leases later the stream still holds its place: A renews it.
    tokio::time::sleep(3 * LEASE).await;
    assert_eq!(slow_stream(&b.url, ALICE, 1, 1).await.status(), 429);

    // Alice's client hangs up: the place comes back at once (well before a lease).
    drop(open);
    let passed = passes_within(Duration::from_secs(5), || slow_stream(&b.url, ALICE, 1, 1)).await;
    let _ = passed.bytes().await;

    // A stream that ends gives its place back too, and then A has none left.
    let done = slow_stream(&a.url, ALICE, 3, 50).await;
    assert_eq!(done.status(), 200);
    let _ = done.bytes().await;
    let passed = passes_within(Duration::from_secs(5), || slow_stream(&b.url, ALICE, 1, 1)).await;
    let _ = passed.bytes().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while store_a.held_places() != 0 {
        assert!(Instant::now() < deadline, "A still holds a place");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The call of [`slow_stream`] as an in-process request (for the frozen instance).
fn in_process_call() -> Request<Full<Bytes>> {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "slow_count", "arguments": {"n": 1000, "delay_ms": 50}}
    });
    Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_instances_places_come_back_after_one_lease() {
    let Some(redis) = Redis::start() else { return };
    let url = redis.url();
    // The frozen instance: a runtime of its own that takes a place for an open stream, then is
    // never driven again (no renewal, no release: as if the process had crashed).
    let held_by_frozen = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let limit = LimitLayer::new()
                .rule("tools/call=1 concurrent per principal".parse().unwrap())
                .redis(store(&url, "frozen"));
            let service = ServiceBuilder::new()
                .layer(InspectLayer::new())
                .map_request(|mut request: Request<_>| {
                    request.extensions_mut().insert(Principal::new("alice"));
                    request
                })
                .layer(limit)
                .service_fn(|_request| async {
                    let response = http::Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(Full::new(Bytes::from_static(b": open\n\n")))
                        .unwrap();
                    Ok::<_, std::convert::Infallible>(response)
                });
            let response = service.oneshot(in_process_call()).await.unwrap();
            assert_eq!(response.status(), 200);
            // The body (and its place) is never dropped.
            std::mem::forget(response);
        });
        // The runtime stays alive but idle until the test ends.
        runtime
    })
    .join()
    .unwrap();

    let (b, _) = instance(&redis.url(), "frozen");
    let start = Instant::now();
    assert_eq!(slow_stream(&b.url, ALICE, 1, 1).await.status(), 429);
    let passed = passes_within(Duration::from_secs(10), || slow_stream(&b.url, ALICE, 1, 1)).await;
    let waited = start.elapsed();
    let _ = passed.bytes().await;
    assert!(
        waited <= LEASE + Duration::from_secs(2),
        "back after about one lease: {waited:?}"
    );
    // A runtime may not be dropped inside another one.
    std::thread::spawn(move || drop(held_by_frozen))
        .join()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_place_taken_while_redis_is_down_fails_open_or_closed() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let limit = |closed: bool| {
        let rule = Rule::concurrent(1).method("tools/call");
        let rule = if closed {
            rule.fail_closed()
        } else {
            rule.fail_open()
        };
        LimitLayer::new().rule(rule).redis(store(&url, "down"))
    };
    let tokens = || StaticTokens::new().token(ALICE, Principal::new("alice"));
    let open = serve_service(
        McpEdge::builder()
            .auth(AuthLayer::new(tokens()))
            .limit(limit(false))
            .layer(rmcp_service()),
    );
    let closed = serve_service(
        McpEdge::builder()
            .auth(AuthLayer::new(tokens()))
            .limit(limit(true))
            .layer(rmcp_service()),
    );
    redis.stop();
    let start = Instant::now();
    let through = slow_stream(&open.url, ALICE, 1, 1).await;
    assert_eq!(through.status(), 200);
    let _ = through.bytes().await;
    let refused = slow_stream(&closed.url, ALICE, 1, 1).await;
    assert_eq!(refused.status(), 503);
    assert!(start.elapsed() < Duration::from_secs(3), "no hung request");
}
