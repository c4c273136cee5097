//! Fault injection: a replica behind the gateway dies mid-stream (its server and every
//! connection it holds are torn down at once, the in-process equivalent of `kill -9`), while
//! its clients and the clients of the other replicas have SSE streams open.
//!
//! What must hold: the dead replica's streams end promptly at an event boundary (no half
//! event), the other replicas' streams and calls are untouched, the dead replica's sessions are
//! answered at once (a `502` for the request that finds it dead, then a `503` with
//! `Retry-After` while it is ejected: the router cannot tell a crash from a blip) and get the
//! `404` that makes a client start over as soon as the replica is removed from the set, after
//! which they re-initialize on a live replica.
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
            assert!(
                status == 502 || status == 503,
                "session {i}: {status} {body}"
            );
            assert_eq!(body["id"], 5);
        } else {
            assert_eq!(status, 200, "session {i} unaffected: {body}");
        }
    }

    // The operator (or a health check) removes the dead replica: its sessions start over.
    assert!(set.remove(&dead));
    let mut moved = 0;
    for (i, session) in sessions.iter().enumerate() {
        let response = post_json(&gateway.url, &list, &headers(session)).await;
        if on_dead[i] {
            assert_eq!(response.status(), 404, "session {i}: start over (R28)");
            let fresh = raw_legacy_session(&gateway.url).await;
            assert_ne!(home(&fresh), dead, "re-initialized on a live replica");
            let again = post_json(&gateway.url, &list, &headers(&fresh)).await;
            assert_eq!(again.status(), 200);
            moved += 1;
        } else {
            assert_eq!(response.status(), 200, "session {i} still unaffected");
        }
    }
    eprintln!(
        "replica kill: {moved} of {SESSIONS} sessions on it; its streams ended within {ended:?}; \
         the others finished and kept working"
    );
}
