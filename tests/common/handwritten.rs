//! A minimal hand-written MCP endpoint (plain axum, no SDK) with none of the SSE hygiene:
//! no `X-Accel-Buffering`, no `Cache-Control`, no keep-alive comments. It is what many
//! servers look like, and lets the tests show the difference `SseLayer` makes.
//!
//! - `POST /mcp`: `initialize` (JSON answer), notifications (202), `tools/call` of
//!   `slow_count {n, delay_ms}` answered as SSE: `n` progress notifications `delay_ms` apart
//!   (one frame each, to `params._meta.progressToken` when given), then the result.
//!   Every frame's send instant is recorded in [`Handwritten::sent`].
//! - `GET /mcp`: an SSE stream that never says anything, until the client leaves
//!   ([`Handwritten::quiet_streams_dropped`] counts the ones that ended); with
//!   `MCP-Protocol-Version: 2025-11-25` it first sends a priming event (`id: 0`, empty data).

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde_json::{Value, json};

/// What the hand-written endpoint did, for assertions.
#[derive(Debug, Default)]
pub struct Handwritten {
    sent: Mutex<Vec<(u64, Instant)>>,
    dropped: AtomicUsize,
}

impl Handwritten {
    /// `(progress, instant the frame was handed to the body)` for every progress notification
    /// sent so far.
    pub fn sent(&self) -> Vec<(u64, Instant)> {
        self.sent.lock().unwrap().clone()
    }

    /// How many quiet GET streams have been dropped by the server (client gone or cut).
    pub fn quiet_streams_dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
}

/// The router (`/mcp`) and its log.
pub fn handwritten_router() -> (axum::Router, Arc<Handwritten>) {
    let log = Arc::new(Handwritten::default());
    let router = axum::Router::new()
        .route("/mcp", post(rpc).get(quiet_stream))
        .with_state(Arc::clone(&log));
    (router, log)
}

async fn rpc(State(log): State<Arc<Handwritten>>, body: Bytes) -> Response {
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "bad json").into_response();
    };
    let id = message.get("id").cloned();
    let method = message.get("method").and_then(Value::as_str).unwrap_or("");
    let Some(id) = id else {
        return StatusCode::ACCEPTED.into_response();
    };
    match method {
        "initialize" => {
            let version = message
                .pointer("/params/protocolVersion")
                .cloned()
                .unwrap_or(json!("2025-11-25"));
            axum::Json(json!({
                "jsonrpc": "2.0", "id": id,
                "result": {
                    "protocolVersion": version,
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "handwritten", "version": "0"}
                }
            }))
            .into_response()
        }
        "tools/call" if message.pointer("/params/name") == Some(&json!("slow_count")) => {
            let n = message
                .pointer("/params/arguments/n")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .min(1000);
            let delay = message
                .pointer("/params/arguments/delay_ms")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .min(60_000);
            let token = message.pointer("/params/_meta/progressToken").cloned();
            let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
            tokio::spawn(async move {
                for i in 1..=n {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    if let Some(token) = &token {
                        let note = json!({
                            "jsonrpc": "2.0", "method": "notifications/progress",
                            "params": {"progressToken": token, "progress": i, "total": n}
                        });
                        log.sent.lock().unwrap().push((i, Instant::now()));
                        if tx.send(event(&note)).await.is_err() {
                            return;
                        }
                    }
                }
                let result = json!({
                    "jsonrpc": "2.0", "id": id,
                    "result": {"content": [{"type": "text", "text": format!("counted to {n}")}]}
                });
                let _ = tx.send(event(&result)).await;
            });
            let stream = futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
            });
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .body(Body::from_stream(stream))
                .unwrap()
        }
        _ => axum::Json(json!({
            "jsonrpc": "2.0", "id": id,
            "error": {"code": -32601, "message": "method not found"}
        }))
        .into_response(),
    }
}

fn event(message: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
}

/// Counts a quiet stream as dropped when the server lets go of it.
struct DropGuard(Arc<Handwritten>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

async fn quiet_stream(State(log): State<Arc<Handwritten>>, headers: HeaderMap) -> Response {
    // A 2025-11-25 client gets a priming event (R19): an id and empty data.
    let prime = headers
        .get("mcp-protocol-version")
        .is_some_and(|v| v.as_bytes() >= b"2025-11-25".as_slice());
    let guard = DropGuard(log);
    let stream = futures::stream::unfold((guard, prime), |(guard, prime)| async move {
        if prime {
            let priming = Bytes::from_static(b"id: 0\ndata:\n\n");
            return Some((Ok::<Bytes, Infallible>(priming), (guard, false)));
        }
        futures::future::pending::<()>().await;
        Some((Ok::<Bytes, Infallible>(Bytes::new()), (guard, false)))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}
