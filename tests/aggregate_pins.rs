//! Pinned tool definitions: a definition that changes after it was first listed is flagged
//! (in the audit record too), and with the hiding policy left out of lists and refused until
//! approved; clients listening for list changes (GET stream, `subscriptions/listen`) are told
//! when a tool is hidden or shown again.
#![cfg(feature = "aggregator")]

#[path = "common/aggregate.rs"]
mod aggregate;
#[path = "common/audit.rs"]
mod audit_fixtures;
mod common;

use std::sync::Arc;
use std::time::Duration;

use aggregate::Fake;
use audit_fixtures::Recorder;
use http_body_util::BodyExt;
use mcp_edge::aggregate::{Aggregator, PinPolicy, Upstream};
use mcp_edge::audit::AuditLayer;
use mcp_edge::inspect::InspectLayer;
use rmcp::model::{ProtocolVersion, ServerNotification, SubscriptionFilter};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt as _};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tower::{ServiceBuilder, ServiceExt};

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

#[tokio::test]
async fn a_changed_definition_reaches_the_audit_record_of_its_list_and_of_a_refused_call() {
    let fake = Fake::new("one", 2);
    let aggregator = Aggregator::builder()
        .upstream(Upstream::new("one", fake.clone()))
        .pin_tools(PinPolicy::Hide)
        .build()
        .unwrap();
    let recorder = Recorder::new();
    let stack = ServiceBuilder::new()
        .layer(AuditLayer::new(recorder.sink()))
        .layer(InspectLayer::new())
        .service(aggregator);
    let send = |method: &str, params: Value| {
        let request = aggregate::modern_request(method, params, json!(1));
        let stack = stack.clone();
        async move {
            let response = stack.oneshot(request).await.unwrap();
            response.into_body().collect().await.unwrap();
        }
    };
    send("tools/list", json!({})).await;
    fake.change_t0();
    send("tools/list", json!({})).await;
    send("tools/call", json!({"name": "one__t0"})).await;

    let events = recorder.wait_until(|e| e.len() >= 3).await;
    assert!(events[0].pin_alert().is_none(), "nothing changed yet");
    for event in &events[1..] {
        let alert = event.pin_alert().expect("the change is flagged");
        assert_eq!(alert.tools().collect::<Vec<_>>(), [("one", "t0")]);
        assert!(alert.hidden());
        let line = serde_json::to_value(event).unwrap();
        assert_eq!(line["mcp_edge.pin.changed"], json!(["one/t0"]), "{line}");
        assert_eq!(line["mcp_edge.pin.hidden"], true, "{line}");
    }
    let refused = serde_json::to_value(&events[2]).unwrap();
    assert!(
        refused.get("mcp_edge.upstream").is_none(),
        "it went nowhere: {refused}"
    );
    assert_eq!(refused["rpc.response.status_code"], "-32602", "{refused}");
}

/// A client that counts the `tools/list_changed` notifications it hears.
#[derive(Clone, Default)]
struct Listening {
    changed: Arc<Notify>,
}

impl ClientHandler for Listening {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.changed.notify_one();
    }
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

async fn rmcp_tool_names(client: &RunningService<RoleClient, Listening>) -> Vec<String> {
    let tools = client.list_all_tools().await.unwrap();
    tools.into_iter().map(|t| t.name.to_string()).collect()
}

#[tokio::test]
async fn listening_clients_of_both_eras_hear_when_pins_hide_or_show_a_tool() {
    let fake = Fake::new("one", 2);
    let aggregator = Aggregator::builder()
        .upstream(Upstream::new("one", fake.clone()))
        .pin_tools(PinPolicy::Hide)
        .build()
        .unwrap();
    let server = common::serve_service(aggregator.clone());

    // Legacy: the GET stream. The capability says the list may change.
    let transport = StreamableHttpClientTransport::with_client(
        common::http_client(),
        StreamableHttpClientTransportConfig::with_uri(server.url.clone()),
    );
    let listening = Listening::default();
    let legacy = listening.clone().serve(transport).await.unwrap();
    let info = legacy.peer_info().unwrap();
    assert_eq!(
        info.capabilities.tools.as_ref().unwrap().list_changed,
        Some(true)
    );
    assert_eq!(rmcp_tool_names(&legacy).await, ["one__t0", "one__t1"]);

    // 2026-07-28: `subscriptions/listen`.
    let transport = StreamableHttpClientTransport::with_client(
        common::http_client(),
        StreamableHttpClientTransportConfig::with_uri(server.url.clone()),
    );
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let modern = Listening::default()
        .serve_with_lifecycle(transport, lifecycle)
        .await
        .unwrap();
    let info = modern.peer_info().unwrap();
    assert_eq!(
        info.capabilities.tools.as_ref().unwrap().list_changed,
        Some(true)
    );
    let filter = SubscriptionFilter::builder().tools_list_changed().build();
    let mut subscription = modern.peer().listen(filter).await.unwrap();

    // rmcp opens its GET stream after `initialize`, on its own time: give it a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let heard = listening.changed.notified();
    fake.change_t0();
    // Whoever lists first meets the change: t0 is hidden, and both clients are told.
    assert_eq!(rmcp_tool_names(&modern).await, ["one__t1"]);
    let notification = within(
        "tools/list_changed on the listen stream",
        subscription.next(),
    )
    .await
    .unwrap()
    .expect("a notification");
    assert!(
        matches!(
            notification,
            ServerNotification::ToolListChangedNotification(_)
        ),
        "{notification:?}"
    );
    within("tools/list_changed on the GET stream", heard).await;
    assert_eq!(rmcp_tool_names(&legacy).await, ["one__t1"]);

    // Approved: shown again, and both are told.
    let heard = listening.changed.notified();
    assert!(aggregator.approve_tool("one", "t0").await.unwrap());
    let notification = within("tools/list_changed after approval", subscription.next())
        .await
        .unwrap()
        .expect("a notification");
    assert!(matches!(
        notification,
        ServerNotification::ToolListChangedNotification(_)
    ));
    within("tools/list_changed on the GET stream after approval", heard).await;
    assert_eq!(rmcp_tool_names(&legacy).await, ["one__t0", "one__t1"]);
    legacy.cancel().await.unwrap();
    modern.cancel().await.unwrap();
}
