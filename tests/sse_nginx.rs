//! SseLayer through a real nginx (Debian's, started on a free port with a stock `proxy_pass`
//! configuration, buffering on) in front of a hand-written MCP endpoint and of rmcp.
//!
//! Each test shows the failure without the layer too, so the test proves the problem is real.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use futures::StreamExt;
use mcp_edge::protocol::sse::{SseItem, SseParser};
use mcp_edge::sse::{HEARTBEAT_COMMENT, SseLayer};
use serde_json::{Value, json};

const N: u64 = 5;
const DELAY_MS: u64 = 500;

/// What a client saw of an SSE response: each item with its arrival instant, and how the
/// stream ended (`None`: still open at the deadline).
struct Seen {
    items: Vec<(Instant, SseItem)>,
    ended_at: Option<Instant>,
}

impl Seen {
    /// Arrival instant of each progress notification, by progress value.
    fn progress(&self) -> Vec<(u64, Instant)> {
        self.items
            .iter()
            .filter_map(|(at, item)| match item {
                SseItem::Event(e) => {
                    let message: Value = serde_json::from_slice(e.data.as_ref()?).ok()?;
                    (message["method"] == "notifications/progress")
                        .then(|| (message["params"]["progress"].as_f64().unwrap() as u64, *at))
                }
                _ => None,
            })
            .collect()
    }

    fn comments(&self) -> usize {
        self.items
            .iter()
            .filter(|(_, item)| matches!(item, SseItem::Comment(_)))
            .count()
    }
}

/// Reads an SSE response with the crate's parser until it ends or `deadline` passes.
async fn read_sse(response: reqwest::Response, deadline: Duration) -> Seen {
    let until = tokio::time::Instant::now() + deadline;
    let mut parser = SseParser::new();
    let mut stream = response.bytes_stream();
    let mut items = Vec::new();
    loop {
        match tokio::time::timeout_at(until, stream.next()).await {
            Err(_) => {
                return Seen {
                    items,
                    ended_at: None,
                };
            }
            Ok(Some(Ok(chunk))) => {
                let now = Instant::now();
                items.extend(parser.feed(&chunk).map(|item| (now, item)));
            }
            Ok(Some(Err(_)) | None) => {
                return Seen {
                    items,
                    ended_at: Some(Instant::now()),
                };
            }
        }
    }
}

fn slow_count_call(id: u64) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {
            "name": "slow_count",
            "arguments": {"n": N, "delay_ms": DELAY_MS},
            "_meta": {"progressToken": "p"}
        }
    })
}

/// Stock nginx `proxy_pass` to `upstream` (buffering on, HTTP/1.0 upstream, nginx defaults),
/// plus `extra` directives.
fn nginx_in_front_of(upstream: &TestServer, extra: &str) -> Option<Nginx> {
    Nginx::start(&format!(
        "location / {{ proxy_pass http://{}; {extra} }}",
        upstream.addr
    ))
}

async fn progress_delays_through_nginx(with_layer: bool) -> Option<Vec<Duration>> {
    let (router, log) = handwritten_router();
    let router = if with_layer {
        router.layer(SseLayer::new())
    } else {
        router
    };
    let server = serve(router);
    let nginx = nginx_in_front_of(&server, "")?;
    let response = post_json(&nginx.url_for("/mcp"), &slow_count_call(7), &[]).await;
    assert_eq!(response.status(), 200, "{}", nginx.error_log());
    let seen = read_sse(response, Duration::from_secs(20)).await;
    assert!(seen.ended_at.is_some(), "the tool call finishes");
    let arrived = seen.progress();
    let sent = log.sent();
    assert_eq!(arrived.len(), N as usize, "every notification arrives");
    assert_eq!(sent.len(), N as usize);
    Some(
        sent.iter()
            .zip(&arrived)
            .map(|((i, sent_at), (j, arrived_at))| {
                assert_eq!(i, j, "in order");
                arrived_at.saturating_duration_since(*sent_at)
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sse_layer_each_progress_notification_passes_nginx_within_100ms() {
    let Some(delays) = progress_delays_through_nginx(true).await else {
        return;
    };
    eprintln!("with SseLayer, sent → received through nginx: {delays:?}");
    for (i, delay) in delays.iter().enumerate() {
        assert!(
            *delay <= Duration::from_millis(100),
            "progress {} took {delay:?} through nginx (all: {delays:?})",
            i + 1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sse_layer_nginx_holds_the_progress_notifications() {
    let Some(delays) = progress_delays_through_nginx(false).await else {
        return;
    };
    eprintln!("without SseLayer, sent → received through nginx: {delays:?}");
    // The first notification is sent at 0.5 s and only leaves nginx with the result at 2.5 s.
    assert!(
        delays[0] >= Duration::from_millis((N - 1) * DELAY_MS - 300),
        "expected nginx to buffer the stream, but the first notification took only {:?} \
         (all: {delays:?})",
        delays[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_behind_sse_layer_streams_progress_through_nginx_too() {
    let server = serve(rmcp_router().layer(SseLayer::new()));
    let Some(nginx) = nginx_in_front_of(&server, "") else {
        return;
    };
    let url = nginx.url_for("/mcp");
    let session = raw_legacy_session(&url).await;
    let headers = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];

    // Straight to the server (nginx consumes X-Accel-Buffering): rmcp's own header and ours
    // are merged into one.
    let direct = post_json(&server.url, &slow_count_call(1), &headers).await;
    assert_eq!(direct.headers()["x-accel-buffering"], "no");
    assert_eq!(
        direct.headers().get_all("x-accel-buffering").iter().count(),
        1
    );
    assert_eq!(direct.headers().get_all("cache-control").iter().count(), 1);
    let _ = read_sse(direct, Duration::from_secs(20)).await;

    let started = Instant::now();
    let response = post_json(&url, &slow_count_call(2), &headers).await;
    assert_eq!(response.status(), 200);
    let seen = read_sse(response, Duration::from_secs(20)).await;
    let arrived = seen.progress();
    assert_eq!(arrived.len(), N as usize);
    for (i, at) in &arrived {
        // rmcp sends progress i at about i × 500 ms.
        let due = Duration::from_millis(i * DELAY_MS);
        let elapsed = at.duration_since(started);
        assert!(
            elapsed < due + Duration::from_millis(400),
            "progress {i} arrived at {elapsed:?}, due at {due:?}"
        );
    }
}

async fn quiet_get_through_nginx_read_timeout(layer: Option<SseLayer>) -> Option<Seen> {
    let (router, _log) = handwritten_router();
    let router = match layer {
        Some(layer) => router.layer(layer),
        None => router,
    };
    let server = serve(router);
    let nginx = nginx_in_front_of(&server, "proxy_read_timeout 2s;")?;
    let response = http_client()
        .get(nginx.url_for("/mcp"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    Some(read_sse(response, Duration::from_secs(10)).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_get_stream_survives_nginx_read_timeout_with_a_1s_heartbeat() {
    let opened = Instant::now();
    let layer = SseLayer::new().heartbeat(Duration::from_secs(1));
    let Some(seen) = quiet_get_through_nginx_read_timeout(Some(layer)).await else {
        return;
    };
    assert!(
        seen.ended_at.is_none(),
        "cut after {:?}",
        seen.ended_at.map(|t| t.duration_since(opened))
    );
    assert!(
        seen.comments() >= 8,
        "{} heartbeats in 10 s",
        seen.comments()
    );
    assert!(
        seen.items.iter().all(|(_, item)| *item
            == SseItem::Comment(Bytes::from_static(
                &HEARTBEAT_COMMENT[1..HEARTBEAT_COMMENT.len() - 2]
            ))),
        "nothing but heartbeat comments"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_get_stream_is_cut_by_nginx_read_timeout_without_heartbeat() {
    let opened = Instant::now();
    let Some(seen) = quiet_get_through_nginx_read_timeout(None).await else {
        return;
    };
    let ended = seen
        .ended_at
        .expect("nginx cuts a stream quiet for longer than proxy_read_timeout");
    let after = ended.duration_since(opened);
    assert!(
        after >= Duration::from_millis(1500) && after < Duration::from_secs(6),
        "cut after {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_a_quiet_stream_is_noticed_through_the_heartbeat() {
    let (router, log) = handwritten_router();
    let server = serve(router.layer(SseLayer::new().heartbeat(Duration::from_millis(300))));
    let response = http_client()
        .get(server.url.clone())
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    let deadline = Instant::now() + Duration::from_secs(5);
    while log.quiet_streams_dropped() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        log.quiet_streams_dropped(),
        1,
        "the server's stream is dropped once a heartbeat finds the client gone"
    );
}
