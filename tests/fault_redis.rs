//! Fault injection: the Redis behind the session layer crashes (SIGKILL, then a restart that
//! loads the snapshot it had written) or freezes (SIGSTOP) while clients keep calling.
//!
//! What must hold, checked on every request of the load: an answer within the store's
//! timeout plus slack (never a hang), `503` with a JSON-RPC body carrying the request's id and
//! `Retry-After` while Redis is unreachable, `200` again within seconds of its return, and no
//! session that Redis kept is lost (no `404` afterwards).
#![cfg(all(feature = "redis", feature = "rmcp"))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use mcp_edge::session::SessionLayer;
use mcp_edge::store::redis::RedisSessionStore;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// The store's per-command timeout; a request may take this plus the layers' own work.
const STORE_TIMEOUT: Duration = Duration::from_millis(500);
/// The longest any request may take, Redis up or down: a session request makes at most two
/// store calls (each bounded by `STORE_TIMEOUT`), plus scheduling slack on a loaded 2-core CI
/// machine (observed: about 1.1 s at most at load 20).
const NO_HANG: Duration = Duration::from_secs(5);
const CLIENTS: usize = 8;

/// One answer seen by the load: when, how long it took, status, `Retry-After`, JSON body.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    took: Duration,
    status: u16,
    retry_after: Option<String>,
    body: Value,
    session: usize,
}

async fn start() -> Option<(Redis, TestServer, Vec<String>)> {
    let redis = Redis::start()?;
    let store = RedisSessionStore::builder(redis.url())
        .timeout(STORE_TIMEOUT)
        .connect()
        .await
        .expect("connect to the test redis");
    let server = serve_with_session_layer(SessionLayer::with_store(store).enforce(), rmcp_config());
    let mut sessions = Vec::new();
    for _ in 0..CLIENTS {
        sessions.push(raw_legacy_session(&server.url).await);
    }
    Some((redis, server, sessions))
}

/// `CLIENTS` loops of `tools/list`, one per session, until `stop`; every answer recorded.
fn load(
    url: &str,
    sessions: &[String],
    stop: Arc<AtomicBool>,
) -> (Arc<Mutex<Vec<Seen>>>, Vec<tokio::task::JoinHandle<()>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tasks = sessions
        .iter()
        .enumerate()
        .map(|(index, session)| {
            let (url, session, stop, seen) =
                (url.to_owned(), session.clone(), stop.clone(), seen.clone());
            tokio::spawn(async move {
                let mut id = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    id += 1;
                    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"});
                    let started = Instant::now();
                    let response = post_json(
                        &url,
                        &body,
                        &[
                            ("mcp-session-id", &session),
                            ("mcp-protocol-version", "2025-11-25"),
                        ],
                    )
                    .await;
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let messages = response_messages(response).await;
                    seen.lock().await.push(Seen {
                        at: started,
                        took: started.elapsed(),
                        status,
                        retry_after,
                        body: messages.into_iter().next().unwrap_or(Value::Null),
                        session: index,
                    });
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();
    (seen, tasks)
}

/// Checks every answer: bounded, 200 or a well-formed 503; returns the 503s.
fn check_answers(seen: &[Seen]) -> Vec<Seen> {
    let mut refused = Vec::new();
    for s in seen {
        assert!(
            s.took < NO_HANG,
            "a request took {:?} (status {})",
            s.took,
            s.status
        );
        match s.status {
            200 => assert!(
                s.body["result"]["tools"].is_array(),
                "200 with a result: {}",
                s.body
            ),
            503 => {
                assert_eq!(
                    s.retry_after.as_deref(),
                    Some("1"),
                    "503 says when to retry"
                );
                assert_eq!(
                    s.body["jsonrpc"], "2.0",
                    "503 with a JSON-RPC body: {}",
                    s.body
                );
                assert!(
                    s.body["id"].is_u64(),
                    "the refusal keeps the request id: {}",
                    s.body
                );
                assert!(s.body["error"]["code"].is_i64());
                refused.push(s.clone());
            }
            other => panic!("unexpected status {other} (session lost?): {}", s.body),
        }
    }
    refused
}

/// After `back`, how long until every session had a 200 again.
fn recovery(seen: &[Seen], back: Instant) -> Duration {
    (0..CLIENTS)
        .map(|session| {
            seen.iter()
                .filter(|s| s.session == session && s.at >= back && s.status == 200)
                .map(|s| s.at + s.took - back)
                .min()
                .unwrap_or_else(|| {
                    panic!("session {session} never answered 200 after Redis returned")
                })
        })
        .max()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_under_load_503s_then_recovers_without_losing_sessions() {
    let Some((mut redis, server, sessions)) = start().await else {
        return;
    };
    // Redis keeps what it has written to disk: the snapshot taken here holds every session.
    assert!(redis.command(&["SAVE"]).unwrap().starts_with("+OK"));

    let stop = Arc::new(AtomicBool::new(false));
    let (seen, tasks) = load(&server.url, &sessions, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let down = Instant::now();
    redis.stop(); // SIGKILL
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Same port, same directory: it loads the snapshot, so the sessions are back.
    let restart = tokio::task::block_in_place(|| {
        redis.restart();
        Instant::now()
    });
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }

    let seen = seen.lock().await.clone();
    let refused = check_answers(&seen);
    assert!(
        !refused.is_empty(),
        "requests while Redis was down were refused"
    );
    assert!(
        refused.iter().all(|s| s.at + s.took >= down),
        "no refusal before the crash"
    );
    let took = recovery(&seen, restart);
    assert!(
        took < Duration::from_secs(5),
        "every session answered again within {took:?}"
    );
    eprintln!(
        "redis kill: {} answers, {} refused with 503 while down, slowest {:?}, recovered in {took:?}",
        seen.len(),
        refused.len(),
        seen.iter().map(|s| s.took).max().unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen_under_load_never_hangs_a_request_and_keeps_every_session() {
    let Some((redis, server, sessions)) = start().await else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (seen, tasks) = load(&server.url, &sessions, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.freeze(); // SIGSTOP: connections stay open, nothing answers
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.thaw();
    let back = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }

    let seen = seen.lock().await.clone();
    let refused = check_answers(&seen);
    assert!(
        !refused.is_empty(),
        "requests while Redis was frozen were refused"
    );
    let took = recovery(&seen, back);
    assert!(
        took < Duration::from_secs(5),
        "every session answered again within {took:?}"
    );
    eprintln!(
        "redis freeze: {} answers, {} refused with 503, slowest {:?}, recovered in {took:?}",
        seen.len(),
        refused.len(),
        seen.iter().map(|s| s.took).max().unwrap_or_default()
    );
}
