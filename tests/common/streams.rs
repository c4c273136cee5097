//! Long-lived 2026-07-28 SSE calls for the stream-limit tests: a `slow_count` call that streams
//! progress, and a reader that waits for its first progress notification.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use super::{bearer, post_json};

/// A 2026-07-28 `slow_count` call with a progress token: an SSE stream of `n` progress
/// notifications `delay_ms` apart, then the result.
pub async fn slow_stream(url: &str, token: &str, n: u32, delay_ms: u64) -> reqwest::Response {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {
            "name": "slow_count", "arguments": {"n": n, "delay_ms": delay_ms},
            "_meta": {
                "progressToken": "p",
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}
            }
        }
    });
    let auth = bearer(token);
    post_json(
        url,
        &body,
        &[
            ("authorization", &auth),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "slow_count"),
        ],
    )
    .await
}

/// Reads a stream until its first progress notification has arrived.
pub async fn first_progress(response: reqwest::Response) -> impl futures::Stream {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("notifications/progress") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("a progress notification within 10 s")
            .expect("the stream is open")
            .unwrap();
        seen.extend_from_slice(&chunk);
    }
    stream
}
