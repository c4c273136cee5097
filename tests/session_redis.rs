//! The Redis session store against a real `redis-server` the test starts itself, behind the
//! session layer in front of real rmcp servers; and rmcp's own session restore across two
//! rmcp servers sharing one Redis through our store.
#![cfg(all(feature = "redis", feature = "rmcp"))]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mcp_edge::store::redis::RedisSessionStore;
use mcp_edge::store::{SessionRecord, SessionStore, StoreErrorKind};
use mcp_edge::{Principal, Replica, SessionId};
use serde_json::json;

fn id(s: &str) -> SessionId {
    s.parse().unwrap()
}

async fn store_for(redis: &Redis) -> RedisSessionStore {
    RedisSessionStore::builder(redis.url())
        .timeout(Duration::from_millis(500))
        .connect()
        .await
        .expect("connect to the test redis")
}

#[tokio::test]
async fn redis_store_keeps_records_indexes_and_ttls_in_redis() {
    let Some(redis) = Redis::start() else { return };
    let store = store_for(&redis).await;
    let alice = Principal::new("alice").with_issuer("https://as");
    let record = SessionRecord::new(id("s1"))
        .with_principal(&alice)
        .with_replica(Some(Replica::new("r1")))
        .with_idle_ttl(Duration::from_secs(60));
    store.insert(record).await.unwrap();
    store
        .insert(SessionRecord::new(id("s2")).with_principal(&alice))
        .await
        .unwrap();
    store.insert(SessionRecord::new(id("s3"))).await.unwrap();

    let got = store.touch(&id("s1")).await.unwrap().expect("live");
    assert_eq!(got.principal(), Some(alice.binding_key().as_str()));
    assert_eq!(got.replica(), Some(&Replica::new("r1")));
    assert!(got.is_bound_to(Some(&alice)));
    // Redis keeps the TTL: at most the idle TTL.
    let pttl = redis.command(&["PTTL", &store.session_key("s1")]).unwrap();
    let pttl: i64 = pttl.trim().trim_start_matches(':').parse().unwrap();
    assert!(pttl > 55_000 && pttl <= 60_000, "PTTL {pttl}");

    let count = store.count(Some(&alice.binding_key())).await.unwrap();
    assert_eq!((count.total, count.principal), (3, 2));

    assert!(
        store
            .set_replica(&id("s1"), Some(Replica::new("r2")))
            .await
            .unwrap()
    );
    assert_eq!(
        store.replica(&id("s1")).await.unwrap(),
        Some(Replica::new("r2"))
    );
    assert!(
        !store
            .set_replica(&id("nope"), Some(Replica::new("r2")))
            .await
            .unwrap()
    );

    assert!(store.remove(&id("s1")).await.unwrap());
    assert!(!store.remove(&id("s1")).await.unwrap());
    assert!(store.get(&id("s1")).await.unwrap().is_none());
    let count = store.count(Some(&alice.binding_key())).await.unwrap();
    assert_eq!((count.total, count.principal), (2, 1));
}

#[tokio::test]
async fn redis_expires_idle_sessions_and_caps_lifetime() {
    let Some(redis) = Redis::start() else { return };
    let store = store_for(&redis).await;
    store
        .insert(SessionRecord::new(id("idle")).with_idle_ttl(Duration::from_millis(300)))
        .await
        .unwrap();
    store
        .insert(
            SessionRecord::new(id("busy"))
                .with_idle_ttl(Duration::from_secs(60))
                .with_max_lifetime(Duration::from_millis(600)),
        )
        .await
        .unwrap();
    let pttl = redis
        .command(&["PTTL", &store.session_key("busy")])
        .unwrap();
    let pttl: i64 = pttl.trim().trim_start_matches(':').parse().unwrap();
    assert!(pttl <= 600, "the lifetime bounds the key TTL: {pttl}");
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(store.get(&id("idle")).await.unwrap().is_none());
    assert!(store.touch(&id("busy")).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(store.touch(&id("busy")).await.unwrap().is_none());
    assert_eq!(store.count(None).await.unwrap().total, 0);
}

#[tokio::test]
async fn redis_down_gives_timely_errors_and_recovers() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let store = store_for(&redis).await;
    store.insert(SessionRecord::new(id("a"))).await.unwrap();
    redis.stop();
    let started = Instant::now();
    let err = store.get(&id("a")).await.unwrap_err();
    assert!(matches!(
        err.kind(),
        StoreErrorKind::Unavailable | StoreErrorKind::Timeout
    ));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "bounded by the timeout"
    );
    redis.restart();
    let mut recovered = false;
    for _ in 0..50 {
        if store.insert(SessionRecord::new(id("b"))).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the store works again once Redis is back");
}

#[tokio::test]
async fn redis_stopped_mid_test_gives_503_jsonrpc_then_service_resumes() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let store = store_for(&redis).await;
    let layer = mcp_edge::session::SessionLayer::with_store(store.clone()).enforce();
    let server = serve_with_session_layer(layer, rmcp_config());
    let client = legacy_client(&server.url).await;
    let echoed = call_tool(&client, "echo", json!({"text": "before"}))
        .await
        .unwrap();
    assert_eq!(text_of(&echoed), "before");
    let session = raw_legacy_session(&server.url).await;

    redis.stop();
    let list = json!({"jsonrpc":"2.0","id":9,"method":"tools/list"});
    let started = Instant::now();
    let response = post_json(
        &server.url,
        &list,
        &[
            ("mcp-session-id", &session),
            ("mcp-protocol-version", "2025-11-25"),
        ],
    )
    .await;
    assert_eq!(response.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(5), "no hang");
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["id"], 9);
    assert_eq!(body["error"]["code"], -32603);
    // A real client sees an error, and the process is still serving.
    assert!(
        call_tool(&client, "echo", json!({"text": "during"}))
            .await
            .is_err()
    );
    let response = post_json(&server.url, &initialize_body("2025-11-25"), &[]).await;
    assert_eq!(
        response.status(),
        503,
        "a new session cannot be recorded either"
    );

    redis.restart();
    // Redis came back empty (no persistence): new sessions work again.
    let mut resumed = None;
    for _ in 0..50 {
        match try_connect(
            &server.url,
            rmcp::model::ProtocolVersion::V_2025_11_25,
            None,
        )
        .await
        {
            Ok(client) => {
                resumed = Some(client);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let client = resumed.expect("service resumes when Redis is back");
    let echoed = call_tool(&client, "echo", json!({"text": "after"}))
        .await
        .unwrap();
    assert_eq!(text_of(&echoed), "after");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn two_gateways_share_sessions_through_redis_and_rmcp_restores_them() {
    let Some(redis) = Redis::start() else { return };
    let store_a = store_for(&redis).await;
    let store_b = store_for(&redis).await;
    // Each gateway has its own rmcp replica; both replicas keep rmcp's session state in the
    // same Redis through our store, so either can serve any session.
    let rmcp_with = |store: &RedisSessionStore| {
        let mut config = rmcp_config();
        config.session_store = Some(Arc::new(store.clone()));
        config
    };
    let a = serve_with_session_layer(
        mcp_edge::session::SessionLayer::with_store(store_a.clone()).enforce(),
        rmcp_with(&store_a),
    );
    let b = serve_with_session_layer(
        mcp_edge::session::SessionLayer::with_store(store_b.clone()).enforce(),
        rmcp_with(&store_b),
    );
    let alice = legacy_client_with_auth(&a.url, &bearer("alice")).await;
    let result = call_tool(&alice, "whoami", serde_json::Value::Null)
        .await
        .unwrap();
    let me: serde_json::Value = serde_json::from_str(&text_of(&result)).unwrap();
    let session = me["session_id"].as_str().unwrap().to_owned();
    // Gateway B (another instance, its own connection) knows the session and its owner.
    let record = store_b.get(&id(&session)).await.unwrap().expect("shared");
    assert!(record.is_bound_to(Some(&Principal::new("alice").with_issuer(TEST_ISSUER))));
    let call = json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"via b"}}});
    let response = post_json(
        &b.url,
        &call,
        &[
            ("mcp-session-id", &session),
            ("authorization", "Bearer mallory"),
            ("mcp-protocol-version", "2025-11-25"),
        ],
    )
    .await;
    assert_eq!(response.status(), 404, "B refuses a foreign principal too");
    // Alice's session continues through gateway B, on B's replica.
    let response = post_json(
        &b.url,
        &call,
        &[
            ("mcp-session-id", &session),
            ("authorization", "Bearer alice"),
            ("mcp-protocol-version", "2025-11-25"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let messages = response_messages(response).await;
    let answer = messages.iter().find(|m| m["id"] == 3).expect("answered");
    assert_eq!(answer["result"]["content"][0]["text"], "via b");
    alice.cancel().await.unwrap();
}

#[tokio::test]
async fn rmcp_servers_restore_each_others_sessions_through_the_redis_store() {
    let Some(redis) = Redis::start() else { return };
    let store = Arc::new(store_for(&redis).await);
    let config = || {
        let mut config = rmcp_config();
        config.session_store = Some(store.clone());
        config
    };
    let a = serve(rmcp_router_with(config()));
    let b = serve(rmcp_router_with(config()));
    let session = raw_legacy_session(&a.url).await;
    let state = redis
        .command(&["EXISTS", &format!("mcp-edge:{{{session}}}:rmcp")])
        .unwrap();
    assert_eq!(state.trim(), ":1", "rmcp stored its session state in Redis");

    // Replica B never saw this session; rmcp restores it from Redis.
    let call = json!({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"text":"moved"}}});
    let response = post_json(
        &b.url,
        &call,
        &[
            ("mcp-session-id", &session),
            ("mcp-protocol-version", "2025-11-25"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let messages = response_messages(response).await;
    let answer = messages
        .iter()
        .find(|m| m["id"] == 4)
        .expect("a response to the call");
    assert_eq!(answer["result"]["content"][0]["text"], "moved");

    // DELETE on B removes rmcp's state from Redis.
    let response = http_client()
        .delete(&b.url)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let state = redis
        .command(&["EXISTS", &format!("mcp-edge:{{{session}}}:rmcp")])
        .unwrap();
    assert_eq!(state.trim(), ":0");
}

#[tokio::test]
async fn redis_caps_are_atomic_and_foreign_touches_move_nothing() {
    use mcp_edge::store::{Capped, SessionCaps};
    let Some(redis) = Redis::start() else { return };
    let store = store_for(&redis).await;
    let alice = Principal::new("alice").with_issuer("i");
    let bob = Principal::new("bob").with_issuer("i");
    let caps = SessionCaps {
        total: Some(10),
        per_principal: Some(6),
    };
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            let mut record = SessionRecord::new(format!("cap-{i}").parse().unwrap());
            if i % 2 == 0 {
                record = record.with_principal(&alice);
            }
            tokio::spawn(async move { store.insert_within(record, caps).await.unwrap() })
        })
        .collect();
    let mut inserted = 0;
    for task in tasks {
        if task.await.unwrap() == Capped::Inserted {
            inserted += 1;
        }
    }
    assert_eq!(inserted, 10, "exactly the cap, under 40 concurrent inserts");
    let key = mcp_edge::context::BindingKey::of(&alice);
    let count = store.count(Some(key.as_str())).await.unwrap();
    assert_eq!(count.total, 10);
    assert!(count.principal <= 6, "{count:?}");

    // A foreign touch returns the record but leaves the owner's idle deadline alone.
    let ttl = Duration::from_millis(800);
    for name in ["owned-a", "owned-b"] {
        let record = SessionRecord::new(name.parse().unwrap())
            .with_principal(&alice)
            .with_idle_ttl(ttl);
        store.insert(record).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(450)).await;
    let a: SessionId = "owned-a".parse().unwrap();
    let b: SessionId = "owned-b".parse().unwrap();
    assert!(store.touch_as(&a, Some(&bob)).await.unwrap().is_some());
    assert!(store.touch_as(&a, None).await.unwrap().is_some());
    assert!(store.touch_as(&b, Some(&alice)).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(550)).await;
    assert!(
        store.get(&a).await.unwrap().is_none(),
        "bob refreshed alice"
    );
    assert!(
        store.get(&b).await.unwrap().is_some(),
        "alice's touch counts"
    );
}
