//! Pinned tool definitions: a definition that changes after it was first listed is flagged,
//! and with the hiding policy left out of lists and refused until approved.
#![cfg(feature = "aggregator")]

#[path = "common/aggregate.rs"]
mod aggregate;
mod common;

use aggregate::Fake;
use http_body_util::BodyExt;
use mcp_edge::aggregate::{Aggregator, PinPolicy, Upstream};
use serde_json::{Value, json};
use tower::ServiceExt;

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
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_changed_definition_is_hidden_and_refused_until_approved() {
    let fake = Fake::new("one", 2);
    let aggregator = Aggregator::builder()
        .upstream(Upstream::new("one", fake.clone()))
        .pin_tools(PinPolicy::Hide)
        .build()
        .unwrap();
    assert_eq!(tool_names(&aggregator).await, ["one__t0", "one__t1"]);
    assert!(aggregator.changed_tools().await.unwrap().is_empty());

    fake.change_t0();
    assert_eq!(tool_names(&aggregator).await, ["one__t1"]);
    let changed = aggregator.changed_tools().await.unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(
        (changed[0].upstream.as_str(), changed[0].tool.as_str()),
        ("one", "t0")
    );
    assert_ne!(changed[0].pinned, changed[0].seen);
    let refused = modern(&aggregator, "tools/call", json!({"name": "one__t0"})).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    let other = modern(&aggregator, "tools/call", json!({"name": "one__t1"})).await;
    assert_eq!(other["result"]["content"][0]["text"], "one:t1");

    assert!(aggregator.approve_tool("one", "t0").await.unwrap());
    assert!(aggregator.changed_tools().await.unwrap().is_empty());
    assert_eq!(tool_names(&aggregator).await, ["one__t0", "one__t1"]);
    let called = modern(&aggregator, "tools/call", json!({"name": "one__t0"})).await;
    assert_eq!(called["result"]["content"][0]["text"], "one:t0");
}

#[tokio::test]
async fn by_default_a_changed_definition_is_flagged_but_still_shown() {
    let fake = Fake::new("one", 1);
    let aggregator = Aggregator::builder()
        .upstream(Upstream::new("one", fake.clone()))
        .build()
        .unwrap();
    assert_eq!(tool_names(&aggregator).await, ["one__t0"]);
    fake.change_t0();
    assert_eq!(tool_names(&aggregator).await, ["one__t0"]);
    assert_eq!(aggregator.changed_tools().await.unwrap().len(), 1);
    let called = modern(&aggregator, "tools/call", json!({"name": "one__t0"})).await;
    assert_eq!(called["result"]["content"][0]["text"], "one:t0");
}
