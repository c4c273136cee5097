//! Resumption fixtures: reading SSE events with their ids, cutting a `slow_count` stream,
//! resuming it with `Last-Event-ID`, and the hand-written endpoint behind `ResumeLayer`.

use std::time::Duration;

use futures::StreamExt;
use mcp_edge::protocol::sse::{SseItem, SseParser};
use mcp_edge::sse::{ResumeLayer, SseLayer};
use serde_json::{Value, json};
use tower::ServiceBuilder;

use super::handwritten::handwritten_router;
use super::http::{http_client, post_json};
use super::server::{TestServer, serve_service};
use super::session::test_principal;

/// One event as the client saw it: its id (as `Last-Event-ID` would carry it) and its JSON.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The event's id.
    pub id: String,
    /// Its data, parsed.
    pub message: Value,
}

/// Reads events until `stop` says so, or the stream ends, or 20 s pass.
pub async fn read_events(
    response: reqwest::Response,
    mut stop: impl FnMut(&[Seen]) -> bool,
) -> (Vec<Seen>, bool) {
    let mut parser = SseParser::new();
    let mut stream = response.bytes_stream();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if stop(&seen) {
            return (seen, false);
        }
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => {
                for item in parser.feed(&chunk) {
                    if let SseItem::Event(event) = item
                        && let Some(data) = event.data_str()
                        && !data.is_empty()
                    {
                        seen.push(Seen {
                            id: event
                                .id
                                .as_ref()
                                .map(|id| String::from_utf8(id.to_vec()).unwrap())
                                .unwrap_or_default(),
                            message: serde_json::from_str(data).unwrap(),
                        });
                    }
                }
            }
            Ok(_) => return (seen, true),
            Err(_) => panic!("no end after 20 s; saw {seen:?}"),
        }
    }
}

pub fn progress_of(seen: &[Seen]) -> Vec<u64> {
    seen.iter()
        .filter(|s| s.message["method"] == "notifications/progress")
        .map(|s| s.message["params"]["progress"].as_f64().unwrap() as u64)
        .collect()
}

pub fn has_result(seen: &[Seen]) -> bool {
    seen.iter().any(|s| s.message.get("result").is_some())
}

pub fn slow_count(n: u64, delay_ms: u64) -> Value {
    json!({
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {
            "name": "slow_count",
            "arguments": {"n": n, "delay_ms": delay_ms},
            "_meta": {"progressToken": "p"}
        }
    })
}

/// The hand-written endpoint behind a test principal, SseLayer and `resume`.
pub fn serve_handwritten(resume: ResumeLayer) -> TestServer {
    serve_resumable(handwritten_router().0, resume)
}

/// `router` behind a test principal (`Authorization: Bearer <subject>`), SseLayer with
/// heartbeats off, and `resume`: one gateway instance.
pub fn serve_resumable(router: axum::Router, resume: ResumeLayer) -> TestServer {
    let service = ServiceBuilder::new()
        .map_request(test_principal)
        .layer(SseLayer::new().no_heartbeat())
        .layer(resume)
        .service(router);
    serve_service(service)
}

/// The version header of a 2025-11-25 client.
pub const LEGACY: (&str, &str) = ("mcp-protocol-version", "2025-11-25");

pub async fn resume_get(url: &str, session: &str, who: &str, last: &str) -> reqwest::Response {
    http_client()
        .get(url)
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", session)
        .header("authorization", format!("Bearer {who}"))
        .header("last-event-id", last)
        .send()
        .await
        .unwrap()
}

/// POSTs slow_count as `who` in `session` and cuts the stream after `k` progress events.
pub async fn cut_after(url: &str, session: &str, who: &str, n: u64, k: usize) -> Vec<Seen> {
    let bearer = format!("Bearer {who}");
    let response = post_json(
        url,
        &slow_count(n, 100),
        &[
            LEGACY,
            ("mcp-session-id", session),
            ("authorization", &bearer),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let (seen, ended) = read_events(response, |s| progress_of(s).len() >= k).await;
    assert!(!ended);
    seen
}
