//! Fault injection: a replica behind the gateway dies mid-stream (its server and every
//! connection it holds are torn down at once, the in-process equivalent of `kill -9`), while
//! its clients and the clients of the other replicas have SSE streams open.
//!
//! What must hold: the dead replica's streams end promptly at an event boundary (no half
//! event), the other replicas' streams and calls are untouched, the dead replica's sessions get
//! the `404` that makes a client start over (R28) on their very next request (its port refuses
//! connections: proof that it is down, so nothing was sent), after which they re-initialize on
//! a live replica. A POST that reached a replica which then died before answering gets a `502`
//! with a JSON-RPC error instead: the call may have run, so it must not look refused.
//!
//! `tests/fault_replica_process.rs` does the same with replicas that are OS processes killed
//! with SIGKILL.
#![cfg(feature = "proxy")]

#[path = "common/affinity.rs"]
mod affinity;
mod common;

use std::time::{Duration, Instant};

use affinity::{Replicas, serve_gateway};
use common::*;
use futures::StreamExt;
use mcp_edge::affinity::{AffinityRouter, Envelope, EnvelopeKeys, SessionKey};
use serde_json::{Value, json};

const SESSIONS: usize = 9;

fn headers(session: &str) -> [(&'static str, &str); 2] {
    [
        ("mcp-session-id", session),
        ("mcp-protocol-version", "2025-11-25"),
    ]
}

/// Starts `slow_count` (n progress events `delay_ms` apart) on `session` and reads the SSE
/// body to its end; returns the bytes and whether the final result arrived.
async fn stream(url: String, session: String, n: u64, delay_ms: u64) -> (Vec<u8>, bool, Instant) {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "slow_count", "arguments": {"n": n, "delay_ms": delay_ms},
        "_meta": {"progressToken": "p"}}});
    let response = post_json(&url, &body, &headers(&session)).await;
    assert_eq!(response.status(), 200);
    let mut bytes = Vec::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(_) => break, // the connection ended: what arrived so far is what counts
        }
    }
    let finished = String::from_utf8_lossy(&bytes).contains("counted to");
    (bytes, finished, Instant::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_stream_ends_its_streams_cleanly_and_its_sessions_start_over() {
    let mut replicas = Replicas::start(3);
    let set = replicas.set();
    let key = SessionKey::generate().unwrap();
    let router = AffinityRouter::envelope(set.clone(), Envelope::new(EnvelopeKeys::new(&key)));
    let (gateway, log) = serve_gateway(router, "gateway");

    let mut sessions = Vec::new();
    for _ in 0..SESSIONS {
        sessions.push(raw_legacy_session(&gateway.url).await);
    }
    let home = |session: &str| -> String {
        log.all()
            .into_iter()
            .find(|s| s.session_out.as_deref() == Some(session))
            .and_then(|s| s.replica)
            .expect("the gateway logged the session's replica")
    };
    let homes: Vec<String> = sessions.iter().map(|s| home(s)).collect();
    let dead = homes[0].clone();
    let on_dead: Vec<bool> = homes.iter().map(|h| *h == dead).collect();
    assert!(
        on_dead.iter().any(|d| !d),
        "some session lives elsewhere: {homes:?}"
    );

    // Every session streams: 40 progress events, 50 ms apart (2 s).
    let streams: Vec<_> = sessions
        .iter()
        .map(|s| tokio::spawn(stream(gateway.url.clone(), s.clone(), 40, 50)))
        .collect();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let killed = Instant::now();
    let index = replicas.servers.iter().position(|s| s.url == dead).unwrap();
    drop(replicas.servers.remove(index));

    let mut ended = Duration::ZERO;
    for (i, task) in streams.into_iter().enumerate() {
        let (bytes, finished, end) = task.await.unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.is_empty() || text.ends_with("\n\n"),
            "stream {i} ends at an event boundary: {:?}",
            &text[text.len().saturating_sub(80)..]
        );
        if on_dead[i] {
            assert!(!finished, "stream {i} was on the dead replica");
            let after = end.saturating_duration_since(killed);
            assert!(
                after < Duration::from_secs(2),
                "stream {i} ended {after:?} after the kill"
            );
            ended = ended.max(after);
        } else {
            assert!(finished, "stream {i} on a live replica ran to its result");
        }
    }

    let list = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"});
    let mut moved = 0;
    for (i, session) in sessions.iter().enumerate() {
        let started = Instant::now();
        let response = post_json(&gateway.url, &list, &headers(session)).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "session {i}: no hang"
        );
        let status = response.status().as_u16();
        let body: Value = response_messages(response)
            .await
            .into_iter()
            .next()
            .unwrap_or(Value::Null);
        if on_dead[i] {
            assert_eq!(status, 404, "session {i}: start over (R28): {body}");
            assert_eq!(body["error"]["code"], -32001);
            assert_eq!(body["id"], 5);
            let fresh = raw_legacy_session(&gateway.url).await;
            assert_ne!(home(&fresh), dead, "re-initialized on a live replica");
            let again = post_json(&gateway.url, &list, &headers(&fresh)).await;
            assert_eq!(again.status(), 200);
            moved += 1;
        } else {
            assert_eq!(status, 200, "session {i} unaffected: {body}");
        }
    }
    let dead_status = set.status().into_iter().find(|s| s.replica().id() == dead);
    assert!(dead_status.is_some_and(|s| s.is_down()), "marked down");
    eprintln!(
        "replica kill: {moved} of {SESSIONS} sessions on it; its streams ended within {ended:?}; \
         their next request got 404 and they re-initialized on a live replica; the others \
         finished and kept working"
    );
}

/// A replica that answers `initialize` (issuing `s-raw`) and, for any request carrying a
/// session, reads the request head and closes the connection without answering: a replica
/// that died after the request reached it.
async fn dies_after_reading() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    if head.contains("mcp-session-id") {
                        return; // dies: the connection closes with no answer
                    }
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    while buf.len() < end + 4 + length {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..end + 4 + length);
                    let body = r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"raw","version":"0"}}}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         mcp-session-id: s-raw\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_whose_replica_dies_after_receiving_it_gets_502_with_a_jsonrpc_error_not_404() {
    let url = dies_after_reading().await;
    let set = mcp_edge::affinity::ReplicaSet::new();
    set.add(
        mcp_edge::Replica::new(url.clone()),
        affinity::upstream(&url),
    );
    let key = SessionKey::generate().unwrap();
    let router = AffinityRouter::envelope(set.clone(), Envelope::new(EnvelopeKeys::new(&key)));
    let (gateway, log) = serve_gateway(router, "gateway");
    let response = post_json(&gateway.url, &initialize_body("2025-11-25"), &[]).await;
    assert_eq!(response.status(), 200);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "deploy", "arguments": {}}});
    let response = post_json(&gateway.url, &call, &headers(&session)).await;
    assert_eq!(response.status(), 502, "the call may have run: not 404");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], 9);
    assert_eq!(body["error"]["code"], -32603);
    assert_eq!(
        body["error"]["message"],
        "Bad Gateway: the upstream connection failed"
    );
    let last = log.all().pop().unwrap();
    assert_eq!(last.rejected.as_deref(), Some("proxy:upstream_unavailable"));
    // Not proof that it is down: suspect, so its sessions still go to it.
    let status = &set.status()[0];
    assert!(status.is_ejected() && !status.is_down(), "{status:?}");
}
