//! Stream caps over real sockets, in front of the real rmcp demo server: the (n+1)-th open
//! stream of a principal (POST or GET) is refused; its place comes back when a stream ends and
//! when its client hangs up; a stream's lifetime ends it cleanly at an event boundary.

mod common;

use std::time::{Duration, Instant};

use futures::StreamExt;
use mcp_edge::auth::StaticTokens;
use mcp_edge::limit::{LimitLayer, Rule};
use mcp_edge::{AuthLayer, McpEdge, Principal, SseLayer};
use serde_json::json;
use tower::Layer;

use common::{
    TestServer, bearer, first_progress, http_client, initialize_body, post_json, rmcp_service,
    serve_service, slow_stream,
};

const ALICE: &str = "alice-token";
const BOB: &str = "bob-token";

fn server(limit: LimitLayer) -> TestServer {
    let tokens = StaticTokens::new()
        .token(ALICE, Principal::new("alice"))
        .token(BOB, Principal::new("bob"));
    let edge = McpEdge::builder()
        .auth(AuthLayer::new(tokens))
        .limit(limit)
        // Short heartbeats: a stream whose client left fails its next write within 200 ms.
        .sse(SseLayer::new().heartbeat(Duration::from_millis(200)));
    serve_service(edge.layer(rmcp_service()))
}

/// Retries `attempt` every 100 ms for up to 10 s until it answers 200.
async fn passes_within_10s<F, Fut>(mut attempt: F) -> reqwest::Response
where
    F: FnMut() -> Fut,
    Fut: Future<Output = reqwest::Response>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
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

#[tokio::test]
async fn the_next_post_stream_is_refused_until_one_ends_or_its_client_leaves() {
    let server =
        server(LimitLayer::new().rule("tools/call=2 concurrent per principal".parse().unwrap()));
    let long = first_progress(slow_stream(&server.url, ALICE, 1000, 50).await).await;
    let short = slow_stream(&server.url, ALICE, 3, 300).await;
    assert_eq!(short.status(), 200);

    // Two open streams: the third is refused, bob is not.
    let third = slow_stream(&server.url, ALICE, 1, 1).await;
    assert_eq!(third.status(), 429);
    assert_eq!(third.headers()["retry-after"], "1");
    let body: serde_json::Value = third.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("key principal=alice"),
        "{body}"
    );
    let bob = slow_stream(&server.url, BOB, 1, 1).await;
    assert_eq!(bob.status(), 200);
    let _ = bob.bytes().await;

    // The short stream ends: its place comes back.
    let done = short.bytes().await.unwrap();
    assert!(String::from_utf8_lossy(&done).contains("counted to 3"));
    let next = passes_within_10s(|| slow_stream(&server.url, ALICE, 1000, 50)).await;
    let next = first_progress(next).await;
    assert_eq!(slow_stream(&server.url, ALICE, 1, 1).await.status(), 429);

    // A client hangs up mid-stream: its place comes back.
    drop(long);
    let after = passes_within_10s(|| slow_stream(&server.url, ALICE, 1, 1)).await;
    let _ = after.bytes().await;
    drop(next);
}

/// A legacy session of `token`'s principal, by hand: `initialize`, then `initialized`.
async fn session_of(url: &str, token: &str) -> String {
    let auth = bearer(token);
    let response = post_json(
        url,
        &initialize_body("2025-11-25"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(response.status(), 200);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = response.bytes().await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = post_json(
        url,
        &initialized,
        &[
            ("authorization", &auth),
            ("mcp-session-id", &session),
            ("mcp-protocol-version", "2025-11-25"),
        ],
    )
    .await;
    assert_eq!(response.status(), 202);
    session
}

async fn get_stream(url: &str, token: &str, session: &str) -> reqwest::Response {
    http_client()
        .get(url)
        .header("authorization", bearer(token))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_next_get_stream_is_refused_until_its_client_leaves() {
    let server = server(LimitLayer::new().rule("GET=1 concurrent per principal".parse().unwrap()));
    let one = session_of(&server.url, ALICE).await;
    let two = session_of(&server.url, ALICE).await;
    let open = get_stream(&server.url, ALICE, &one).await;
    assert_eq!(open.status(), 200);
    let mut open = open.bytes_stream();
    // Wait for the first bytes (the SSE layer's first comment): the stream is live.
    let _ = tokio::time::timeout(Duration::from_secs(10), open.next())
        .await
        .unwrap();
    assert_eq!(get_stream(&server.url, ALICE, &two).await.status(), 429);
    // POSTs are not GET streams: they pass.
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let auth = bearer(ALICE);
    let listed = post_json(
        &server.url,
        &list,
        &[
            ("authorization", &auth),
            ("mcp-session-id", &two),
            ("mcp-protocol-version", "2025-11-25"),
        ],
    )
    .await;
    assert_eq!(listed.status(), 200);
    drop(open);
    let second = passes_within_10s(|| get_stream(&server.url, ALICE, &two)).await;
    drop(second);
}

#[tokio::test]
async fn a_streams_lifetime_ends_it_at_an_event_boundary() {
    let rule = Rule::concurrent(10)
        .method("tools/call")
        .lifetime(Duration::from_secs(1));
    let server = server(LimitLayer::new().rule(rule));
    let start = Instant::now();
    let response = slow_stream(&server.url, ALICE, 1000, 50).await;
    assert_eq!(response.status(), 200);
    // The whole body: the server would go on for 50 s, the lifetime ends it after 1 s.
    let body = tokio::time::timeout(Duration::from_secs(10), response.bytes())
        .await
        .expect("the stream ends by itself")
        .expect("cleanly, not with an error");
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(8),
        "{elapsed:?}"
    );
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        text.ends_with("\n\n"),
        "ends at an event boundary: {text:?}"
    );
    let progress = text.matches("notifications/progress").count();
    assert!(progress >= 2, "events went through first: {text}");
    // Every event is whole: each data line is a complete JSON message.
    for line in text.lines().filter_map(|l| l.strip_prefix("data:")) {
        let line = line.trim();
        if !line.is_empty() {
            let _: serde_json::Value = serde_json::from_str(line).unwrap();
        }
    }
}
