//! The Redis event store against a real `redis-server`: per-stream logs, replay after a
//! cursor, live tail, bounds, removal; and rmcp 3.11 resuming a stream on another replica
//! through it.
#![cfg(all(feature = "redis", feature = "rmcp"))]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures::StreamExt;
use mcp_edge::store::redis::RedisEventStore;
use mcp_edge::store::{EventLogLimits, EventStore, StoreErrorKind, StreamKey};
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

fn key(session: &str, stream: &str) -> StreamKey {
    StreamKey::new(Some(session.parse().unwrap()), stream)
}

fn store(redis: &Redis, limits: EventLogLimits) -> RedisEventStore {
    RedisEventStore::builder(redis.url())
        .limits(limits)
        .poll_interval(Duration::from_millis(10))
        .open()
        .unwrap()
}

#[tokio::test]
async fn replays_after_the_cursor_then_follows_live_appends_until_finished() {
    let Some(redis) = Redis::start() else { return };
    let store = store(&redis, EventLogLimits::default());
    let k = key("s1", "get");
    let mut seqs = Vec::new();
    for i in 1..=3u64 {
        let seq = store
            .append(&k, Bytes::from(format!("e{i}")))
            .await
            .unwrap();
        seqs.push(seq);
    }
    assert_eq!(
        seqs,
        [seqs[0], seqs[0] + 1, seqs[0] + 2],
        "one up per event"
    );
    let mut tail = store
        .tail(&k, seqs[0])
        .await
        .unwrap()
        .expect("known stream");
    assert_eq!(tail.next().await.unwrap().unwrap().data, "e2");
    assert_eq!(tail.next().await.unwrap().unwrap().data, "e3");
    let writer = {
        let store = store.clone();
        let k = k.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            store.append(&k, Bytes::from_static(b"e4")).await.unwrap();
            store.finish(&k).await.unwrap();
        })
    };
    let live = tokio::time::timeout(Duration::from_secs(5), tail.next())
        .await
        .expect("live event arrives")
        .unwrap()
        .unwrap();
    assert_eq!((live.seq, &live.data[..]), (seqs[2] + 1, &b"e4"[..]));
    let end = tokio::time::timeout(Duration::from_secs(5), tail.next())
        .await
        .unwrap();
    assert!(end.is_none(), "a finished stream ends its tails");
    writer.await.unwrap();
    // A finished stream takes no more events.
    let err = store
        .append(&k, Bytes::from_static(b"late"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Evicted);
}

#[tokio::test]
async fn streams_never_mix_and_trimmed_cursors_are_refused() {
    let Some(redis) = Redis::start() else { return };
    let store = store(
        &redis,
        EventLogLimits {
            max_events_per_stream: 2,
            ..EventLogLimits::default()
        },
    );
    let k = key("s1", "a");
    let mut seqs = Vec::new();
    for _ in 0..5 {
        seqs.push(store.append(&k, Bytes::from_static(b"x")).await.unwrap());
    }
    assert!(store.tail(&key("s2", "a"), 0).await.unwrap().is_none());
    assert!(store.tail(&key("s1", "b"), 0).await.unwrap().is_none());
    assert!(
        store.tail(&k, seqs[0]).await.unwrap().is_none(),
        "events 2 and 3 were trimmed"
    );
    assert!(
        store.tail(&k, seqs[4] + 4).await.unwrap().is_none(),
        "a cursor from the future"
    );
    assert!(
        store.tail(&k, 0).await.unwrap().is_none(),
        "the first event is gone"
    );
    let mut tail = store
        .tail(&k, seqs[2])
        .await
        .unwrap()
        .expect("4 and 5 are kept");
    assert_eq!(tail.next().await.unwrap().unwrap().seq, seqs[3]);
}

#[tokio::test]
async fn removing_a_session_drops_its_streams_and_ends_tails() {
    let Some(redis) = Redis::start() else { return };
    let store = store(&redis, EventLogLimits::default());
    let seq = store
        .append(&key("s1", "a"), Bytes::from_static(b"1"))
        .await
        .unwrap();
    store
        .append(&key("s1", "b"), Bytes::from_static(b"1"))
        .await
        .unwrap();
    store
        .append(&key("s2", "a"), Bytes::from_static(b"1"))
        .await
        .unwrap();
    let mut tail = store.tail(&key("s1", "a"), seq).await.unwrap().unwrap();
    store.remove_session(&"s1".parse().unwrap()).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), tail.next())
        .await
        .unwrap();
    assert!(end.is_none());
    assert!(store.tail(&key("s1", "b"), 0).await.unwrap().is_none());
    assert!(store.tail(&key("s2", "a"), 0).await.unwrap().is_some());
}

#[tokio::test]
async fn a_cursor_from_an_earlier_stream_with_the_same_key_is_refused() {
    let Some(redis) = Redis::start() else { return };
    let store = store(&redis, EventLogLimits::default());
    let k = key("s1", "a");
    let old = store.append(&k, Bytes::from_static(b"old")).await.unwrap();
    store.remove_session(&"s1".parse().unwrap()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2)).await;
    let new = store.append(&k, Bytes::from_static(b"new")).await.unwrap();
    store
        .append(&k, Bytes::from_static(b"newer"))
        .await
        .unwrap();
    assert!(
        new > old + 1,
        "a new stream starts above every earlier number"
    );
    assert!(store.tail(&k, old).await.unwrap().is_none());
}

#[tokio::test]
async fn redis_down_is_an_error_not_a_hang() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let store = RedisEventStore::builder(redis.url())
        .timeout(Duration::from_millis(300))
        .open()
        .unwrap();
    store
        .append(&key("s", "a"), Bytes::from_static(b"1"))
        .await
        .unwrap();
    redis.stop();
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        store.append(&key("s", "a"), Bytes::from_static(b"2")),
    )
    .await
    .expect("bounded");
    assert!(result.is_err());
}

/// Raw SSE events: (id, data).
fn sse_events(body: &str) -> Vec<(Option<String>, String)> {
    body.split("\n\n")
        .filter_map(|event| {
            let mut id = None;
            let mut data = Vec::new();
            for line in event.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            (!data.is_empty() && !data.join("").is_empty()).then(|| (id, data.join("\n")))
        })
        .collect()
}

#[tokio::test]
async fn rmcp_resumes_a_stream_on_another_replica_from_the_redis_event_log() {
    let Some(redis) = Redis::start() else { return };
    let events = Arc::new(RedisEventStore::open(redis.url()).unwrap());
    let replica = || {
        let manager = LocalSessionManager::default().with_event_store(events.clone());
        let service =
            StreamableHttpService::new(|| Ok(DemoTools::new()), Arc::new(manager), rmcp_config());
        serve(axum::Router::new().nest_service("/mcp", service))
    };
    let a = replica();
    let b = replica();
    let meta = serde_json::json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "0"},
        "progressToken": 1
    });
    let call = serde_json::json!({
        "jsonrpc": "2.0", "id": 11, "method": "tools/call",
        "params": {"name": "slow_count", "arguments": {"n": 4, "delay_ms": 5}, "_meta": meta}
    });
    let response = post_json(
        &a.url,
        &call,
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "slow_count"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let seen = sse_events(&body);
    assert!(
        seen.len() >= 5,
        "4 progress notifications and the result: {body}"
    );
    assert!(
        seen.iter().all(|(id, _)| id.is_some()),
        "every event has an id: {body}"
    );

    // The client lost the connection after the second event; it resumes on replica B.
    let cursor = seen[1].0.clone().unwrap();
    let resumed = http_client()
        .get(&b.url)
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("last-event-id", &cursor)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let replayed = sse_events(&resumed.text().await.unwrap());
    assert_eq!(
        replayed,
        seen[2..].to_vec(),
        "exactly the missed events, same ids"
    );
}
