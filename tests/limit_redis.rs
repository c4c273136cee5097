//! Rate budgets in a real Redis, shared by two edge instances in front of real rmcp servers:
//! one budget for both (the accepted rate over 10 s within 10% of the configured one), the
//! burst honoured, `Retry-After` honest; Redis stopped mid-test: fail-open rules let calls
//! through, fail-closed rules answer 503, and no request hangs.
#![cfg(feature = "redis")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mcp_edge::auth::StaticTokens;
use mcp_edge::limit::{LimitLayer, RedisLimits, Rule};
use mcp_edge::{AuthLayer, McpEdge, Principal};
use serde_json::json;
use tower::Layer;

use common::{Redis, TestServer, bearer, http_client, rmcp_service, serve_service};

/// An edge instance with `limit`'s budgets in the Redis at `url` (under `prefix`).
fn instance(limit: LimitLayer, url: &str, prefix: &str) -> (TestServer, LimitLayer) {
    let store = RedisLimits::builder(url)
        .prefix(prefix)
        .timeout(Duration::from_millis(300))
        .open()
        .unwrap();
    let limit = limit.redis(store);
    let tokens = StaticTokens::new()
        .token("alice-token", Principal::new("alice"))
        .token("bob-token", Principal::new("bob"))
        .token("carol-token", Principal::new("carol"));
    let edge = McpEdge::builder()
        .auth(AuthLayer::new(tokens))
        .limit(limit.clone());
    (serve_service(edge.layer(rmcp_service())), limit)
}

/// A 2026-07-28 `tools/call` of `tool` as `who`, on a client kept for the test (a new
/// client per call would cost more than the call).
async fn call(client: &reqwest::Client, url: &str, who: &str, tool: &str) -> reqwest::Response {
    let arguments = if tool == "echo" {
        json!({"text": "x"})
    } else {
        json!({})
    };
    let body = json!({
        "jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {
            "name": tool, "arguments": arguments,
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}
            }
        }
    });
    client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", bearer(&format!("{who}-token")))
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_budget_honour_the_burst_and_retry_after() {
    let Some(redis) = Redis::start() else { return };
    let client = http_client();
    let rules = LimitLayer::new()
        .rule(
            "tools/call:echo=10/s per principal burst 5"
                .parse()
                .unwrap(),
        )
        .rule("tools/call:whoami=5/min per principal".parse().unwrap());
    let (a, _) = instance(rules.clone(), &redis.url(), "shared");
    let (b, _) = instance(rules, &redis.url(), "shared");
    let urls = [a.url.clone(), b.url.clone()];

    // The burst: 5 whoami calls a minute, all at once, across both instances; the sixth waits
    // for the next one, 12 s away.
    for i in 0..5 {
        let response = call(&client, &urls[i % 2], "alice", "whoami").await;
        assert_eq!(response.status(), 200, "call {i} of the burst");
    }
    let refused = call(&client, &urls[1], "alice", "whoami").await;
    assert_eq!(refused.status(), 429);
    assert!((11..=12).contains(&retry_after(&refused)));

    // One budget of 10/s (burst 5) for bob across both instances, hammered for 10 s by four
    // callers.
    let accepted = Arc::new(AtomicU64::new(0));
    let attempts = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let window = Duration::from_secs(10);
    let mut workers = Vec::new();
    for worker in 0..4 {
        let url = urls[worker % 2].clone();
        let accepted = Arc::clone(&accepted);
        let attempts = Arc::clone(&attempts);
        let client = client.clone();
        workers.push(tokio::spawn(async move {
            let mut last_wait = None;
            while start.elapsed() < window {
                let response = call(&client, &url, "bob", "echo").await;
                attempts.fetch_add(1, Ordering::Relaxed);
                match response.status().as_u16() {
                    200 => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    429 => last_wait = Some(retry_after(&response)),
                    other => panic!("unexpected {other}"),
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            last_wait
        }));
    }
    let mut waits = Vec::new();
    for worker in workers {
        waits.extend(worker.await.unwrap());
    }
    let accepted = accepted.load(Ordering::Relaxed);
    let attempts = attempts.load(Ordering::Relaxed);
    println!("accepted {accepted} of {attempts} calls in 10 s");
    // 10/s for 10 s, plus the burst of 5.
    let expected = 105.0;
    assert!(
        (accepted as f64 - expected).abs() <= expected * 0.1,
        "accepted {accepted} of {attempts} calls in 10 s, configured 10/s burst 5: \
         {expected} ± 10%"
    );
    assert!(!waits.is_empty(), "some calls were refused");
    assert!(waits.iter().all(|&w| w == 1), "{waits:?}");

    // Retry-After is honest: after waiting it out, the call passes (carol's own budget).
    let mut refused = None;
    for _ in 0..50 {
        let response = call(&client, &urls[0], "carol", "echo").await;
        if response.status() == 429 {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), 200);
    }
    let refused = refused.expect("a 10/s budget refuses back-to-back calls");
    tokio::time::sleep(Duration::from_secs(retry_after(&refused))).await;
    assert_eq!(call(&client, &urls[1], "carol", "echo").await.status(), 200);
}

#[tokio::test]
async fn redis_stopped_mid_test_fails_open_or_closed_as_configured_without_hanging() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let client = http_client();
    let rules = LimitLayer::new()
        .rule(
            Rule::rate(100, Duration::from_secs(1))
                .method("tools/call")
                .tool("echo")
                .fail_open(),
        )
        .rule(
            Rule::rate(100, Duration::from_secs(1))
                .method("tools/call")
                .tool("whoami")
                .fail_closed(),
        );
    let (server, limit) = instance(rules, &redis.url(), "outage");
    assert_eq!(
        call(&client, &server.url, "alice", "echo").await.status(),
        200
    );
    assert_eq!(
        call(&client, &server.url, "alice", "whoami").await.status(),
        200
    );

    redis.stop();
    for _ in 0..3 {
        let start = Instant::now();
        let open = call(&client, &server.url, "alice", "echo").await;
        assert_eq!(open.status(), 200, "fail open: the call goes through");
        let closed = call(&client, &server.url, "alice", "whoami").await;
        assert_eq!(closed.status(), 503, "fail closed: refused");
        assert_eq!(closed.headers()["retry-after"], "1");
        let body: serde_json::Value = closed.json().await.unwrap();
        assert_eq!(body["error"]["code"], -32603);
        assert_eq!(body["id"], 3);
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "no hung request: {:?}",
            start.elapsed()
        );
    }
    let counts = limit.counts();
    assert!(counts.store_failed_open >= 3, "{counts:?}");
    assert!(counts.store_failed_closed >= 3, "{counts:?}");

    // Redis is back: the connection manager reconnects by itself.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = call(&client, &server.url, "alice", "whoami").await.status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Redis URL nothing listens on: every decision fails at once (connection refused).
fn dead_redis_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("redis://127.0.0.1:{port}")
}

#[tokio::test]
async fn a_fail_open_pass_is_noted_in_the_response_and_the_audit_record() {
    use bytes::Bytes;
    use http::Request;
    use http_body_util::{BodyExt, Full};
    use mcp_edge::audit::{AuditEvent, AuditLayer};
    use mcp_edge::{InspectLayer, LimitNote};
    use tower::{ServiceBuilder, ServiceExt};

    let events = Arc::new(std::sync::Mutex::new(Vec::<AuditEvent>::new()));
    let sink = {
        let events = Arc::clone(&events);
        move |event: AuditEvent| events.lock().unwrap().push(event)
    };
    let store = RedisLimits::builder(dead_redis_url())
        .timeout(Duration::from_millis(200))
        .open()
        .unwrap();
    let limit = LimitLayer::new()
        .rule(
            Rule::rate(100, Duration::from_secs(1))
                .tool("echo")
                .fail_open(),
        )
        .rule(
            Rule::rate(100, Duration::from_secs(1))
                .tool("whoami")
                .fail_closed(),
        )
        .redis(store);
    let seen_inside = Arc::new(std::sync::Mutex::new(Vec::<Option<LimitNote>>::new()));
    let inside = Arc::clone(&seen_inside);
    let service = ServiceBuilder::new()
        .layer(AuditLayer::new(sink))
        .layer(InspectLayer::new())
        .map_request(|mut request: Request<_>| {
            request.extensions_mut().insert(Principal::new("alice"));
            request
        })
        .layer(limit.clone())
        .service_fn(move |request: Request<_>| {
            inside
                .lock()
                .unwrap()
                .push(request.extensions().get::<LimitNote>().copied());
            async {
                Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(
                    r#"{"jsonrpc":"2.0","id":3,"result":{}}"#,
                ))))
            }
        });
    let call = |tool: &str| {
        let body = json!({
            "jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": tool, "arguments": {}}
        });
        Request::post("/mcp")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap()
    };

    // Fail open: through, with the note in the response and for the service inside.
    let open = service.clone().oneshot(call("echo")).await.unwrap();
    assert_eq!(open.status(), 200);
    assert_eq!(
        open.extensions().get::<LimitNote>(),
        Some(&LimitNote::StoreFailedOpen)
    );
    open.into_body().collect().await.unwrap();
    assert_eq!(
        *seen_inside.lock().unwrap(),
        [Some(LimitNote::StoreFailedOpen)]
    );
    // Fail closed: a 503 refusal, no note (the refusal says it all).
    let closed = service.clone().oneshot(call("whoami")).await.unwrap();
    assert_eq!(closed.status(), 503);
    assert!(closed.extensions().get::<LimitNote>().is_none());
    closed.into_body().collect().await.unwrap();

    let events = events.lock().unwrap().clone();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].limit_note(), Some(LimitNote::StoreFailedOpen));
    let line = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(line["mcp_edge.limit.note"], "store_failed_open");
    assert_eq!(events[1].limit_note(), None);
    assert!(serde_json::to_value(&events[1]).unwrap()["mcp_edge.limit.note"].is_null());
    let counts = limit.counts();
    assert_eq!(
        (counts.store_failed_open, counts.store_failed_closed),
        (1, 1)
    );
}
