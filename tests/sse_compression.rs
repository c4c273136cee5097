//! tower-http's `CompressionLayer` stacked outside mcp-edge, as users do: each SSE event must
//! still reach the client promptly.
//!
//! With the default predicate, `text/event-stream` is not compressed at all. With a predicate
//! that forgets `NotForContentType::SSE`, the stream is gzipped, but tower-http 0.7 (with
//! async-compression 0.4) flushes the encoder whenever the inner body has nothing ready, so
//! each event still arrives, decodable, as its own chunk: the test decodes the gzip stream
//! chunk by chunk to prove it.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use futures::StreamExt;
use mcp_edge::protocol::sse::{SseItem, SseParser};
use mcp_edge::sse::SseLayer;
use serde_json::{Value, json};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};

const N: u64 = 4;
const DELAY_MS: u64 = 300;

/// POSTs `slow_count` with `Accept-Encoding: gzip`; returns the `Content-Encoding` and, for
/// each progress notification, how long after it was sent the client could decode it.
async fn progress_delays(
    server: &TestServer,
    log: &Handwritten,
) -> (Option<String>, Vec<Duration>) {
    let call = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "slow_count", "arguments": {"n": N, "delay_ms": DELAY_MS},
                   "_meta": {"progressToken": "p"}}
    });
    let response = post_json(&server.url, &call, &[("accept-encoding", "gzip")]).await;
    assert_eq!(response.status(), 200);
    let encoding = response
        .headers()
        .get("content-encoding")
        .map(|v| v.to_str().unwrap().to_owned());
    let mut gunzip =
        (encoding.as_deref() == Some("gzip")).then(|| flate2::write::GzDecoder::new(Vec::new()));
    let mut parser = SseParser::new();
    let mut arrivals = Vec::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        let now = Instant::now();
        let plain = match gunzip.as_mut() {
            Some(decoder) => {
                decoder.write_all(&chunk).unwrap();
                decoder.flush().unwrap();
                Bytes::from(std::mem::take(decoder.get_mut()))
            }
            None => chunk,
        };
        for item in parser.feed(&plain) {
            if let SseItem::Event(event) = item {
                let message: Value = serde_json::from_slice(event.data.as_ref().unwrap()).unwrap();
                if message["method"] == "notifications/progress" {
                    arrivals.push(now);
                }
            }
        }
    }
    let sent = log.sent();
    assert_eq!(sent.len(), N as usize);
    assert_eq!(arrivals.len(), N as usize, "every notification decoded");
    let delays = sent
        .iter()
        .zip(&arrivals)
        .map(|((_, sent), arrived)| arrived.saturating_duration_since(*sent))
        .collect();
    (encoding, delays)
}

fn assert_prompt(delays: &[Duration]) {
    for delay in delays {
        assert!(*delay <= Duration::from_millis(100), "{delays:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_layer_outside_with_defaults_lets_events_through_one_by_one() {
    let (router, log) = handwritten_router();
    let app = router.layer(SseLayer::new()).layer(CompressionLayer::new());
    let server = serve(app);
    let (encoding, delays) = progress_delays(&server, &log).await;
    eprintln!("CompressionLayer (default predicate) outside SseLayer: {delays:?}");
    assert_eq!(encoding, None, "text/event-stream is not compressed");
    assert_prompt(&delays);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_predicate_that_keeps_not_for_sse_leaves_the_stream_alone() {
    let (router, log) = handwritten_router();
    let predicate = SizeAbove::new(0).and(NotForContentType::SSE);
    let app = router
        .layer(SseLayer::new())
        .layer(CompressionLayer::new().compress_when(predicate));
    let server = serve(app);
    let (encoding, delays) = progress_delays(&server, &log).await;
    assert_eq!(encoding, None);
    assert_prompt(&delays);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_predicate_that_compresses_sse_still_flushes_each_event() {
    let (router, log) = handwritten_router();
    let app = router
        .layer(SseLayer::new())
        .layer(CompressionLayer::new().compress_when(SizeAbove::new(0)));
    let server = serve(app);
    let (encoding, delays) = progress_delays(&server, &log).await;
    eprintln!("CompressionLayer (SizeAbove(0)) outside SseLayer: {encoding:?} {delays:?}");
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert_prompt(&delays);
}
