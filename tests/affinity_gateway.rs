//! The affinity router in front of real rmcp replicas, each keeping its sessions in its own
//! memory (so a misrouted request fails with rmcp's own 404), reached by real rmcp clients
//! pinned to 2025-11-25 over TCP: every session stays on its replica for POST, GET and
//! DELETE, with either strategy and across gateway instances; replicas come and go.

#![cfg(all(feature = "gateway", feature = "redis"))]

#[path = "common/affinity.rs"]
mod affinity;
mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use affinity::{Alternate, Log, Replicas, Router, Seen, serve_gateway};
use common::*;
use futures::StreamExt;
use mcp_edge::affinity::{AffinityRouter, Envelope, EnvelopeKeys, SessionKey, Table};
use mcp_edge::store::redis::RedisSessionStore;
use mcp_edge::store::{MemorySessionStore, SessionStore};
use serde_json::json;

const CLIENTS: usize = 200;
/// Sessions in flight at once: enough to interleave, few enough for a 2-core machine.
const CONCURRENCY: usize = 16;

fn envelope_router(replicas: &Replicas, key: &SessionKey) -> Router {
    AffinityRouter::envelope(replicas.set(), Envelope::new(EnvelopeKeys::new(key)))
}

fn table_router(replicas: &Replicas, store: Arc<dyn SessionStore>) -> Router {
    AffinityRouter::table(replicas.set(), Table::new(store))
}

/// initialize (+ the GET stream rmcp opens), five tool calls including `slow_count`, DELETE.
async fn full_session(url: String, n: usize) {
    let client = legacy_client(&url).await;
    for k in 0..3 {
        let text = format!("client {n} call {k}");
        let echoed = call_tool(&client, "echo", json!({ "text": text }))
            .await
            .unwrap_or_else(|e| panic!("client {n}: echo failed: {e}"));
        assert_eq!(text_of(&echoed), text);
    }
    let whoami = call_tool(&client, "whoami", json!({}))
        .await
        .unwrap_or_else(|e| panic!("client {n}: whoami failed: {e}"));
    assert!(
        text_of(&whoami).contains("2025-11-25"),
        "{}",
        text_of(&whoami)
    );
    let (counted, progress) =
        call_tool_with_progress(&client, "slow_count", json!({"n": 3, "delay_ms": 5}), 3).await;
    assert_eq!(
        text_of(&counted.unwrap_or_else(|e| panic!("client {n}: slow_count failed: {e}"))),
        "counted to 3"
    );
    assert_eq!(progress.len(), 3, "client {n}: progress notifications");
    client
        .cancel()
        .await
        .unwrap_or_else(|e| panic!("client {n}: close failed: {e}"));
}

async fn run_clients(url: &str, clients: usize) {
    futures::stream::iter(0..clients)
        .map(|n| tokio::spawn(full_session(url.to_owned(), n)))
        .buffer_unordered(CONCURRENCY)
        .for_each(|joined| async move { joined.expect("client task panicked") })
        .await;
}

/// From the gateway logs: every session's requests (POST, GET, DELETE) reached the replica
/// that issued it, nothing was refused, every session opened its GET stream and ended with
/// a successful DELETE. Returns session → replica.
fn assert_pinned(logs: &[&Log], sessions: usize) -> HashMap<String, String> {
    let seen: Vec<Seen> = logs.iter().flat_map(|log| log.all()).collect();
    let failed: Vec<&Seen> = seen.iter().filter(|s| s.status >= 400).collect();
    assert!(failed.is_empty(), "refused or failed requests: {failed:#?}");
    let mut home: HashMap<String, String> = HashMap::new();
    for s in seen.iter().filter(|s| s.session_in.is_none()) {
        if let Some(id) = &s.session_out {
            let replica = s
                .replica
                .clone()
                .expect("routed initialize names its replica");
            assert!(
                home.insert(id.clone(), replica).is_none(),
                "session id reused"
            );
        }
    }
    assert_eq!(home.len(), sessions, "one session per client");
    let mut got_stream = HashSet::new();
    let mut deleted = HashSet::new();
    for s in seen.iter() {
        let Some(id) = &s.session_in else { continue };
        let expected = home
            .get(id)
            .unwrap_or_else(|| panic!("unknown session {id}"));
        assert_eq!(s.replica.as_ref(), Some(expected), "misrouted: {s:#?}");
        if s.method == http::Method::GET && s.status == 200 {
            got_stream.insert(id.clone());
        }
        if s.method == http::Method::DELETE && (200..300).contains(&s.status) {
            deleted.insert(id.clone());
        }
    }
    assert_eq!(
        got_stream.len(),
        sessions,
        "every session opened its GET stream"
    );
    assert_eq!(deleted.len(), sessions, "every session was DELETEd");
    let used: HashSet<&String> = home.values().collect();
    assert_eq!(used.len(), 3, "new sessions spread over every replica");
    home
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_legacy_clients_stay_on_their_replica_with_envelopes() {
    let replicas = Replicas::start(3);
    let key = SessionKey::generate().unwrap();
    let (gateway, log) = serve_gateway(envelope_router(&replicas, &key), "gateway");
    run_clients(&gateway.url, CLIENTS).await;
    let home = assert_pinned(&[&log], CLIENTS);
    // The client never saw a replica's own id: every id is a sealed envelope.
    let opener = EnvelopeKeys::new(&key);
    for id in home.keys() {
        assert!(id.len() < 160 && id.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        let opened = opener.open(id.as_bytes()).expect("sealed by the gateway");
        assert!(replicas.holder_of(opened.session().as_str()).is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_legacy_clients_stay_on_their_replica_with_a_table() {
    let replicas = Replicas::start(3);
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::new());
    let (gateway, log) = serve_gateway(table_router(&replicas, Arc::clone(&store)), "gateway");
    run_clients(&gateway.url, CLIENTS).await;
    let home = assert_pinned(&[&log], CLIENTS);
    for id in home.keys() {
        let id = id.parse().unwrap();
        assert!(
            store.get(&id).await.unwrap().is_none(),
            "DELETE removed the pin"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_alternating_share_sessions_through_one_key_set() {
    let replicas = Replicas::start(3);
    let key = SessionKey::generate().unwrap();
    let (a, log_a) = serve_gateway(envelope_router(&replicas, &key), "gateway-a");
    let (b, log_b) = serve_gateway(envelope_router(&replicas, &key), "gateway-b");
    let front = serve_service(Alternate::new(&[a.url.clone(), b.url.clone()]));
    run_clients(&front.url, 40).await;
    assert_pinned(&[&log_a, &log_b], 40);
    assert!(log_a.all().len() > 100 && log_b.all().len() > 100);
}

/// Which replica each connected client's session is on, asked through `whoami` (the
/// replica's own session id) and the replicas' logs.
async fn homes(clients: &[Client], replicas: &Replicas) -> Vec<String> {
    let mut homes = Vec::new();
    for client in clients {
        let who = call_tool(client, "whoami", json!({}))
            .await
            .expect("whoami");
        let who: serde_json::Value = serde_json::from_str(&text_of(&who)).expect("whoami json");
        let session = who["session_id"]
            .as_str()
            .unwrap_or_else(|| panic!("whoami has a session id: {who}"));
        homes.push(replicas.holder_of(session).expect("a replica issued it"));
    }
    homes
}

async fn replica_removed_then_added(router: Router, replicas: &mut Replicas) {
    let set = router.replicas().clone();
    let (gateway, log) = serve_gateway(router, "gateway");
    let mut clients = Vec::new();
    for _ in 0..12 {
        clients.push(legacy_client(&gateway.url).await);
    }
    let before = homes(&clients, replicas).await;
    let gone = replicas.id(0);
    assert!(
        before.contains(&gone),
        "some session on replica 0: {before:?}"
    );

    // Remove replica 0 (the process keeps running: only the router forgets it).
    log.clear();
    assert!(set.remove(&gone));
    let after = homes(&clients, replicas).await;
    for (i, (was, now)) in before.iter().zip(&after).enumerate() {
        if *was == gone {
            assert_ne!(*now, gone, "client {i} re-initialized elsewhere");
        } else {
            assert_eq!(now, was, "client {i} was not disturbed");
        }
    }
    let seen = log.all();
    let refused: Vec<&Seen> = seen.iter().filter(|s| s.status == 404).collect();
    let moved = before.iter().filter(|h| **h == gone).count();
    assert_eq!(
        refused.len(),
        moved,
        "one 404 per moved session: {refused:#?}"
    );
    for s in &refused {
        assert_eq!(s.rejected.as_deref(), Some("affinity:replica_gone"));
    }
    assert!(
        seen.iter()
            .all(|s| s.replica.as_deref() != Some(gone.as_str())),
        "nothing reached the removed replica"
    );

    // Add a new replica: existing sessions stay where they are; new ones may land on it.
    let added = replicas.start_one();
    let added_id = replicas.id(added);
    set.add(
        mcp_edge::Replica::new(added_id.clone()),
        affinity::upstream(&added_id),
    );
    log.clear();
    let again = homes(&clients, replicas).await;
    assert_eq!(again, after, "adding a replica moved no session");
    assert!(log.all().iter().all(|s| s.status < 400));
    let mut fresh = Vec::new();
    for _ in 0..12 {
        fresh.push(legacy_client(&gateway.url).await);
    }
    assert!(
        homes(&fresh, replicas).await.contains(&added_id),
        "new sessions reach the new replica"
    );
    for client in clients.into_iter().chain(fresh) {
        client.cancel().await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_replica_sessions_get_404_and_reinitialize_elsewhere_with_envelopes() {
    let mut replicas = Replicas::start(3);
    let key = SessionKey::generate().unwrap();
    let router = envelope_router(&replicas, &key);
    replica_removed_then_added(router, &mut replicas).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_replica_sessions_get_404_and_reinitialize_elsewhere_with_a_table() {
    let mut replicas = Replicas::start(3);
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::new());
    let router = table_router(&replicas, Arc::clone(&store));
    replica_removed_then_added(router, &mut replicas).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_clients_are_balanced_and_need_no_session() {
    let replicas = Replicas::start(3);
    let key = SessionKey::generate().unwrap();
    let (gateway, log) = serve_gateway(envelope_router(&replicas, &key), "gateway");
    let client = modern_client(&gateway.url).await;
    for k in 0..30 {
        let echoed = call_tool(&client, "echo", json!({ "text": format!("m{k}") }))
            .await
            .expect("echo");
        assert_eq!(text_of(&echoed), format!("m{k}"));
    }
    let seen = log.all();
    assert!(
        seen.iter()
            .all(|s| s.status < 400 && s.session_out.is_none())
    );
    let used: HashSet<_> = seen.iter().filter_map(|s| s.replica.clone()).collect();
    assert!(used.len() >= 2, "stateless requests spread: {used:?}");
    let _ = Duration::ZERO;
}

fn redis_store(redis: &Redis) -> Arc<dyn SessionStore> {
    Arc::new(RedisSessionStore::open(redis.url()).expect("redis store"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_alternating_share_sessions_through_one_redis() {
    let Some(redis) = Redis::start() else { return };
    let replicas = Replicas::start(3);
    // Two gateway instances: each its own router, local cache and Redis connection.
    let (a, log_a) = serve_gateway(table_router(&replicas, redis_store(&redis)), "gateway-a");
    let (b, log_b) = serve_gateway(table_router(&replicas, redis_store(&redis)), "gateway-b");
    let front = serve_service(Alternate::new(&[a.url.clone(), b.url.clone()]));
    run_clients(&front.url, 40).await;
    assert_pinned(&[&log_a, &log_b], 40);
    assert!(log_a.all().len() > 100 && log_b.all().len() > 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_503_with_jsonrpc_body_for_uncached_sessions_and_service_resumes() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let replicas = Replicas::start(2);
    let (a, _) = serve_gateway(table_router(&replicas, redis_store(&redis)), "gateway-a");
    let (b, _) = serve_gateway(table_router(&replicas, redis_store(&redis)), "gateway-b");
    let session = raw_legacy_session(&a.url).await;
    let list = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"});
    let headers = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    assert_eq!(post_json(&b.url, &list, &headers).await.status(), 200);

    redis.stop();
    // Gateway a has the pin cached: the session keeps working through a Redis outage.
    assert_eq!(post_json(&a.url, &list, &headers).await.status(), 200);
    // A gateway that must ask Redis answers 503 with a JSON-RPC error, promptly.
    let started = std::time::Instant::now();
    let (c, _) = serve_gateway(table_router(&replicas, redis_store(&redis)), "gateway-c");
    let response = post_json(&c.url, &list, &headers).await;
    assert_eq!(response.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(10), "no hang");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], 7);
    assert_eq!(body["error"]["code"], -32603);
    // A new session cannot be pinned while Redis is down: 503, never a 400/404 (R45).
    let response = post_json(&c.url, &initialize_body("2025-11-25"), &[]).await;
    assert_eq!(response.status(), 503);

    redis.restart();
    // Redis came back empty: old sessions are unknown (404, the client re-initializes) and
    // new sessions work through every gateway.
    let fresh = {
        let mut fresh = None;
        for _ in 0..50 {
            let response = post_json(&c.url, &initialize_body("2025-11-25"), &[]).await;
            if response.status() == 200 {
                fresh = response
                    .headers()
                    .get("mcp-session-id")
                    .map(|v| v.to_str().unwrap().to_owned());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        fresh.expect("service resumed after Redis came back")
    };
    let headers = [
        ("mcp-session-id", fresh.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    // Each gateway's Redis connection reconnects on its own after the outage: allow it a
    // moment (a 503 meanwhile), then every gateway routes the new session.
    assert_eq!(
        status_after_reconnect(&b.url, &initialized, &headers).await,
        202
    );
    assert_eq!(status_after_reconnect(&a.url, &list, &headers).await, 200);
    let old = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    // Gateways that cached the old pin keep serving it (the replica still has the session);
    // one that must ask Redis learns it is gone.
    assert_eq!(status_after_reconnect(&b.url, &list, &old).await, 200);
    assert_eq!(status_after_reconnect(&c.url, &list, &old).await, 404);
}

async fn status_after_reconnect(
    url: &str,
    body: &serde_json::Value,
    headers: &[(&str, &str)],
) -> u16 {
    for _ in 0..50 {
        let status = post_json(url, body, headers).await.status().as_u16();
        if status != 503 {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    503
}
