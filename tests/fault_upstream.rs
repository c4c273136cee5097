//! Fault injection: an upstream that accepts TCP connections and never answers (a wedged
//! process, a full accept backlog behind a load balancer), one that reads the request and
//! stalls before the head, and one that sends half a head then stalls.
//!
//! What must hold: each request through the proxy is answered within its response-head
//! timeout with a `504` and a JSON-RPC body carrying the request's id, many of them at once
//! do not queue behind each other, and the proxy keeps serving afterwards.
#![cfg(feature = "proxy")]

mod common;

use std::time::{Duration, Instant};

use common::*;
use hyper::body::Incoming;
use mcp_edge::proxy::{HttpUpstream, HttpUpstreamBuilder};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const HEAD_TIMEOUT: Duration = Duration::from_millis(300);

/// How the black-hole upstream treats a connection it accepted.
#[derive(Clone, Copy, Debug)]
enum Hole {
    /// Never reads, never writes.
    Silent,
    /// Reads the request, never answers.
    Reads,
    /// Reads the request, writes half a status line, stalls.
    HalfHead,
}

/// A TCP listener that accepts every connection and keeps it open without answering.
async fn black_hole(hole: Hole) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            held.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                if !matches!(hole, Hole::Silent) {
                    let _ = socket.read(&mut buf).await;
                }
                if matches!(hole, Hole::HalfHead) {
                    let _ = socket.write_all(b"HTTP/1.1 20").await;
                }
                // Keep the socket open, reading (and discarding) until the peer goes.
                while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
            }));
        }
    });
    (url, task)
}

async fn ping(url: &str, id: u64) -> (u16, Value, Duration) {
    let started = Instant::now();
    let response = post_json(
        url,
        &json!({"jsonrpc": "2.0", "id": id, "method": "ping"}),
        &[],
    )
    .await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_never_answers_is_a_prompt_504_with_jsonrpc_body() {
    for hole in [Hole::Silent, Hole::Reads, Hole::HalfHead] {
        let (url, task) = black_hole(hole).await;
        let proxy: HttpUpstream<mcp_edge::EdgeBody<Incoming>> = HttpUpstreamBuilder::new()
            .response_head_timeout(HEAD_TIMEOUT)
            .build(&url)
            .unwrap();
        // As in a gateway: the inspect layer reads the body, so refusals know the request id.
        let proxy = serve_service(
            tower::ServiceBuilder::new()
                .layer(mcp_edge::InspectLayer::new())
                .service(proxy),
        );

        // Twenty at once: each bounded by its own timeout, not queued behind the others.
        let started = Instant::now();
        let calls: Vec<_> = (0..20u64)
            .map(|id| {
                let url = proxy.url.clone();
                tokio::spawn(async move { ping(&url, id).await })
            })
            .collect();
        let mut slowest = Duration::ZERO;
        for (id, call) in calls.into_iter().enumerate() {
            let (status, body, took) = call.await.unwrap();
            assert_eq!(status, 504, "{hole:?}: {body}");
            assert_eq!(body["jsonrpc"], "2.0");
            assert_eq!(body["id"], id as u64, "{hole:?}: the request's id");
            assert_eq!(body["error"]["code"], -32603);
            slowest = slowest.max(took);
        }
        let all = started.elapsed();
        assert!(
            all < Duration::from_secs(4),
            "{hole:?}: 20 concurrent calls took {all:?}"
        );
        // And again, on whatever connections the pool kept: still bounded.
        let (status, _, took) = ping(&proxy.url, 99).await;
        assert_eq!(status, 504);
        assert!(took < Duration::from_secs(2), "{hole:?}: {took:?}");
        eprintln!(
            "upstream {hole:?}: 20 concurrent calls all 504 within {all:?} (slowest {slowest:?}), one more alone in {took:?}; head timeout {HEAD_TIMEOUT:?}"
        );
        task.abort();
    }
}
