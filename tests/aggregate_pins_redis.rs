//! Pinned tool definitions in Redis, against a real `redis-server` the test starts itself:
//! two aggregator instances sharing it agree on the first definition, hide a changed one on
//! both and show it on both once approved on one; a restarted aggregator keeps its pins; and
//! with Redis stopped, the hiding policy leaves unchecked tools out of lists (fail closed)
//! while calls go by the changes already known; instances seeing a new tool at once pin one
//! definition.
#![cfg(all(feature = "aggregator", feature = "redis"))]

#[path = "common/aggregate.rs"]
mod aggregate;
mod common;

use std::time::Duration;

use aggregate::Fake;
use common::Redis;
use http_body_util::BodyExt;
use mcp_edge::aggregate::{Aggregator, PinPolicy, Upstream};
use mcp_edge::store::redis::RedisPinStore;
use mcp_edge::store::{PinCheck, PinStore};
use serde_json::{Value, json};
use tower::ServiceExt;

/// How often the instances read other instances' changes from Redis, for calls.
const SYNC: Duration = Duration::from_millis(50);

fn instance(redis: &Redis, fake: &Fake, policy: PinPolicy) -> Aggregator<Fake> {
    let store = RedisPinStore::builder(redis.url())
        .prefix("pins-test")
        .timeout(Duration::from_millis(300))
        .open()
        .expect("a redis URL");
    Aggregator::builder()
        .upstream(Upstream::new("one", fake.clone()))
        .pin_tools(policy)
        .pin_store(store)
        .pin_sync_interval(SYNC)
        .build()
        .unwrap()
}

async fn modern(aggregator: &Aggregator<Fake>, method: &str, params: Value) -> Value {
    let request = aggregate::modern_request(method, params, json!(1));
    let response = aggregator.clone().oneshot(request).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

async fn tool_names(aggregator: &Aggregator<Fake>) -> Vec<String> {
    let list = modern(aggregator, "tools/list", json!({})).await;
    list["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("a tools list: {list}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Calls `tool`: its text, or the JSON-RPC error code.
async fn call(aggregator: &Aggregator<Fake>, tool: &str) -> Result<String, i64> {
    let answer = modern(aggregator, "tools/call", json!({"name": tool})).await;
    match answer["result"]["content"][0]["text"].as_str() {
        Some(text) => Ok(text.to_owned()),
        None => Err(answer["error"]["code"].as_i64().unwrap()),
    }
}

/// Lets the sync interval pass, so the next tool request reads the store.
async fn after_sync() {
    tokio::time::sleep(SYNC * 3).await;
}

#[tokio::test]
async fn two_instances_hide_a_changed_definition_and_share_its_approval() {
    let Some(redis) = Redis::start() else { return };
    let fake = Fake::new("one", 2);
    let a = instance(&redis, &fake, PinPolicy::Hide);
    let b = instance(&redis, &fake, PinPolicy::Hide);
    assert_eq!(tool_names(&a).await, ["one__t0", "one__t1"]);

    fake.change_t0();
    // `b` never saw t0 before, yet compares with the definition `a` pinned first.
    assert_eq!(tool_names(&b).await, ["one__t1"]);
    assert_eq!(tool_names(&a).await, ["one__t1"]);
    assert_eq!(call(&a, "one__t0").await, Err(-32602));
    assert_eq!(call(&b, "one__t0").await, Err(-32602));
    assert_eq!(call(&b, "one__t1").await.as_deref(), Ok("one:t1"));
    let changed = b.changed_tools().await.unwrap();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(
        (changed[0].upstream.as_str(), changed[0].tool.as_str()),
        ("one", "t0")
    );
    assert_eq!(a.changed_tools().await.unwrap(), changed);
    // Stored in Redis under the prefix, one hash per upstream.
    let stored = redis.command(&["HLEN", "pins-test:pins:{one}"]).unwrap();
    assert_eq!(stored.trim(), ":3", "t0 and t1 pinned, t0's change waiting");

    assert!(a.approve_tool("one", "t0").await.unwrap());
    assert!(
        !b.approve_tool("one", "t0").await.unwrap(),
        "approved already"
    );
    assert!(b.changed_tools().await.unwrap().is_empty());
    assert_eq!(tool_names(&b).await, ["one__t0", "one__t1"]);
    assert_eq!(tool_names(&a).await, ["one__t0", "one__t1"]);
    assert_eq!(call(&b, "one__t0").await.as_deref(), Ok("one:t0"));

    // Another change, seen by `a` alone: `b` refuses the call once it has synced, without
    // listing; approved on `b`, `a` takes calls again once it has synced.
    fake.change_t0();
    assert_eq!(tool_names(&a).await, ["one__t1"]);
    after_sync().await;
    assert_eq!(call(&b, "one__t0").await, Err(-32602));
    assert!(b.approve_tool("one", "t0").await.unwrap());
    after_sync().await;
    assert_eq!(call(&a, "one__t0").await.as_deref(), Ok("one:t0"));
}

#[tokio::test]
async fn a_restarted_aggregator_keeps_its_pins() {
    let Some(redis) = Redis::start() else { return };
    let fake = Fake::new("one", 2);
    let first = instance(&redis, &fake, PinPolicy::Hide);
    assert_eq!(tool_names(&first).await, ["one__t0", "one__t1"]);
    drop(first);

    // The definition changed while no aggregator ran: the new one still knows the old pin.
    fake.change_t0();
    let restarted = instance(&redis, &fake, PinPolicy::Hide);
    assert_eq!(
        call(&restarted, "one__t0").await.as_deref(),
        Ok("one:t0"),
        "not seen yet"
    );
    assert_eq!(tool_names(&restarted).await, ["one__t1"]);
    assert_eq!(call(&restarted, "one__t0").await, Err(-32602));
    drop(restarted);

    // A change waiting for approval survives a restart too, calls included.
    let again = instance(&redis, &fake, PinPolicy::Hide);
    assert_eq!(call(&again, "one__t0").await, Err(-32602));
    assert_eq!(again.changed_tools().await.unwrap().len(), 1);
}

#[tokio::test]
async fn with_redis_stopped_hidden_lists_fail_closed_and_calls_go_by_what_is_known() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let fake = Fake::new("one", 2);
    let hide = instance(&redis, &fake, PinPolicy::Hide);
    let flag = instance(&redis, &fake, PinPolicy::Flag);
    assert_eq!(tool_names(&hide).await, ["one__t0", "one__t1"]);
    fake.change_t0();
    assert_eq!(tool_names(&hide).await, ["one__t1"]);

    redis.stop();
    // Hide: definitions that cannot be checked are not shown.
    assert!(tool_names(&hide).await.is_empty());
    // Calls: a tool known changed stays refused, the others still work.
    after_sync().await;
    assert_eq!(call(&hide, "one__t0").await, Err(-32602));
    assert_eq!(call(&hide, "one__t1").await.as_deref(), Ok("one:t1"));
    // Flag: shown unchecked.
    assert_eq!(tool_names(&flag).await, ["one__t0", "one__t1"]);
    // The approval API says the store failed.
    assert!(hide.changed_tools().await.is_err());
    assert!(hide.approve_tool("one", "t0").await.is_err());

    // Redis is back (empty): the first definition seen now is pinned.
    redis.restart();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let names = tool_names(&hide).await;
        if names == ["one__t0", "one__t1"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {names:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    after_sync().await;
    assert_eq!(call(&hide, "one__t0").await.as_deref(), Ok("one:t0"));
}

#[tokio::test]
async fn instances_seeing_a_new_tool_at_once_pin_one_definition() {
    let Some(redis) = Redis::start() else { return };
    let stores: Vec<RedisPinStore> = (0..8)
        .map(|_| {
            RedisPinStore::builder(redis.url())
                .prefix("race")
                .open()
                .unwrap()
        })
        .collect();
    stores[0].ping().await.unwrap();
    // Eight instances, each seeing its own definition of the same new tool at once.
    let checks = futures::future::join_all(
        stores
            .iter()
            .enumerate()
            .map(|(i, store)| store.check("up", vec![("t".to_owned(), format!("hash-{i}"))])),
    )
    .await;
    let checks: Vec<PinCheck> = checks.into_iter().map(|c| c.unwrap().remove(0)).collect();
    let winners = checks.iter().filter(|c| **c == PinCheck::Pinned).count();
    assert_eq!(winners, 1, "{checks:?}");
    let winner = checks.iter().position(|c| *c == PinCheck::Pinned).unwrap();
    for check in &checks {
        if let PinCheck::Changed { pinned } = check {
            assert_eq!(
                *pinned,
                format!("hash-{winner}"),
                "all compare with one pin"
            );
        }
    }
    let changed = stores[3].changed("up").await.unwrap();
    assert_eq!(
        changed.len(),
        1,
        "the last definition seen waits for approval"
    );
    assert_eq!(changed[0].pinned, format!("hash-{winner}"));
}
