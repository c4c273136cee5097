//! The aggregator over two real rmcp upstreams (`alpha`: the demo tools; `beta`: `echo` and
//! `add`), reached over TCP through `HttpUpstream`, with real rmcp clients in both eras.
#![cfg(feature = "aggregator")]

#[path = "common/aggregate.rs"]
mod aggregate;
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use aggregate::Aggregated;
use common::{
    Client, call_tool, call_tool_with_progress, http_client, legacy_client, modern_client, text_of,
};
use futures::StreamExt;
use serde_json::{Value, json};

async fn tool_names(client: &Client) -> BTreeSet<String> {
    client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

async fn both_namespaces_work(client: &Client) {
    let names = tool_names(client).await;
    let expected: BTreeSet<String> = [
        "alpha__echo",
        "alpha__slow_count",
        "alpha__whoami",
        "beta__echo",
        "beta__add",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(names, expected);

    let alpha = call_tool(client, "alpha__echo", json!({"text": "hi"}))
        .await
        .unwrap();
    assert_eq!(text_of(&alpha), "hi");
    let beta = call_tool(client, "beta__echo", json!({"text": "hi"}))
        .await
        .unwrap();
    assert_eq!(text_of(&beta), "beta: hi");
    let sum = call_tool(client, "beta__add", json!({"a": 2, "b": 3}))
        .await
        .unwrap();
    assert_eq!(text_of(&sum), "5");

    let unknown = call_tool(client, "gamma__echo", json!({"text": "hi"})).await;
    assert!(unknown.is_err(), "{unknown:?}");
}

#[tokio::test]
async fn legacy_client_lists_both_namespaces_and_calls_each_tool() {
    let agg = Aggregated::start();
    let client = legacy_client(&agg.gateway.url).await;
    let info = client.peer_info().expect("initialized");
    assert_eq!(
        info.server_info.as_ref().unwrap().name,
        "mcp-edge-aggregator"
    );
    assert!(info.capabilities.tools.is_some());
    let instructions = info.instructions.clone().unwrap_or_default();
    assert!(
        instructions.contains("Demo tools") && instructions.contains("Beta tools"),
        "{instructions}"
    );
    both_namespaces_work(&client).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn modern_client_lists_both_namespaces_and_calls_each_tool() {
    let agg = Aggregated::start();
    let client = modern_client(&agg.gateway.url).await;
    both_namespaces_work(&client).await;
    // Stateless all the way: no session at the aggregator, none upstream.
    assert_eq!(agg.aggregator.open_sessions(), 0);
    for log in [&agg.alpha.log, &agg.beta.log] {
        assert_eq!(log.count("initialize"), 0);
        assert!(log.all().iter().all(|s| s.session.is_none()));
        assert!(log.count("tools/call") >= 1);
    }
    // The upstream got the 2026-07-28 headers, with its own tool name.
    let call = agg
        .beta
        .log
        .all()
        .into_iter()
        .find(|s| s.rpc.as_deref() == Some("tools/call"))
        .unwrap();
    assert_eq!(call.headers["mcp-method"], "tools/call");
    assert_eq!(call.headers["mcp-protocol-version"], "2026-07-28");
    assert!(["echo", "add"].contains(&call.headers["mcp-name"].to_str().unwrap()));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn progress_reaches_the_caller_in_both_eras() {
    let agg = Aggregated::start();
    for client in [
        legacy_client(&agg.gateway.url).await,
        modern_client(&agg.gateway.url).await,
    ] {
        let (result, progress) = call_tool_with_progress(
            &client,
            "alpha__slow_count",
            json!({"n": 3, "delay_ms": 10}),
            3,
        )
        .await;
        assert_eq!(text_of(&result.unwrap()), "counted to 3");
        let seen: Vec<f64> = progress.iter().map(|p| p.progress).collect();
        assert_eq!(seen, [1.0, 2.0, 3.0]);
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn legacy_sessions_open_lazily_per_upstream_and_end_on_delete() {
    let agg = Aggregated::start();
    let first = legacy_client(&agg.gateway.url).await;
    // Nothing known yet: the first client's initialize asked both upstreams.
    assert_eq!(agg.alpha.log.count("initialize"), 1);
    assert_eq!(agg.beta.log.count("initialize"), 1);

    // A second client: both upstreams are known, so no upstream session until needed.
    let second = legacy_client(&agg.gateway.url).await;
    assert_eq!(agg.aggregator.open_sessions(), 2);
    assert_eq!(agg.alpha.log.count("initialize"), 1);
    let sum = call_tool(&second, "beta__add", json!({"a": 1, "b": 1}))
        .await
        .unwrap();
    assert_eq!(text_of(&sum), "2");
    assert_eq!(agg.beta.log.count("initialize"), 2);
    assert_eq!(agg.alpha.log.count("initialize"), 1);
    // Again: the same upstream session.
    call_tool(&second, "beta__add", json!({"a": 1, "b": 2}))
        .await
        .unwrap();
    assert_eq!(agg.beta.log.count("initialize"), 2);
    let sessions: BTreeSet<_> = agg
        .beta
        .log
        .all()
        .into_iter()
        .filter(|s| s.rpc.as_deref() == Some("tools/call"))
        .map(|s| s.session.expect("a session"))
        .collect();
    assert_eq!(sessions.len(), 1);

    // Closing the second client DELETEs its aggregator session, which ends its beta session.
    second.cancel().await.unwrap();
    wait_until(|| agg.beta.log.deletes() == 1).await;
    assert_eq!(agg.alpha.log.deletes(), 0);
    assert_eq!(agg.aggregator.open_sessions(), 1);

    first.cancel().await.unwrap();
    wait_until(|| agg.alpha.log.deletes() == 1 && agg.beta.log.deletes() == 2).await;
    assert_eq!(agg.aggregator.open_sessions(), 0);
}

#[tokio::test]
async fn unknown_session_gets_404_and_get_gets_405() {
    let agg = Aggregated::start();
    let http = http_client();
    let response = http
        .post(&agg.gateway.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", "nope")
        .header("mcp-protocol-version", "2025-11-25")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32001);
    assert_eq!(body["id"], 1);

    let response = http.get(&agg.gateway.url).send().await.unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn upstreams_learn_the_client_capabilities_the_aggregator_relays() {
    let agg = Aggregated::start();
    let response = http_client()
        .post(&agg.gateway.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {"sampling": {}, "elicitation": {}, "roots": {}, "experimental": {}},
                "clientInfo": {"name": "raw", "version": "1"},
            }})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("mcp-session-id"));
    let answer: Value = response.json().await.unwrap();
    // The version the client asked for, and each upstream negotiated on its own.
    assert_eq!(answer["result"]["protocolVersion"], "2025-06-18");
    let init = agg
        .alpha
        .log
        .all()
        .into_iter()
        .find(|s| s.rpc.as_deref() == Some("initialize"))
        .unwrap();
    let params = &init.body.unwrap()["params"];
    assert_eq!(params["protocolVersion"], "2025-06-18");
    assert_eq!(params["clientInfo"]["name"], "raw");
    // Sampling, elicitation and roots requests are relayed back to the client, so the
    // upstream may send them.
    assert_eq!(
        params["capabilities"],
        json!({"sampling": {}, "elicitation": {}, "roots": {}, "experimental": {}})
    );
    let initialized = agg
        .alpha
        .log
        .all()
        .into_iter()
        .find(|s| s.rpc.as_deref() == Some("notifications/initialized"))
        .unwrap();
    assert_eq!(initialized.headers["mcp-protocol-version"], "2025-06-18");
}

fn modern_call(id: &Value, tool: &str, text: &str) -> String {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "tools/call",
        "params": {
            "name": tool,
            "arguments": { "text": text },
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}
            }
        }
    })
    .to_string()
}

/// The text of a tool result in a JSON or SSE answer, with the answer's id.
fn answer_of(content_type: &str, body: &str) -> (Value, String) {
    let json = if content_type.starts_with("text/event-stream") {
        body.split("\n\n")
            .filter_map(|event| event.strip_prefix("data: "))
            .map(|data| serde_json::from_str::<Value>(data).unwrap())
            .find(|m| m.get("result").is_some() || m.get("error").is_some())
            .expect("an answer in the stream")
    } else {
        serde_json::from_str(body).unwrap()
    };
    let text = json["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (json["id"].clone(), text)
}

#[tokio::test]
async fn a_thousand_concurrent_calls_with_colliding_ids_each_get_their_own_answer() {
    let agg = Aggregated::start();
    let http = http_client();
    let url = agg.gateway.url.clone();
    let results = futures::stream::iter(0..1000)
        .map(|i| {
            let http = http.clone();
            let url = url.clone();
            async move {
                // Every call uses id 1 or "x": ids collide within and across upstreams.
                let id = if i % 2 == 0 { json!(1) } else { json!("x") };
                let (tool, expected) = if i % 3 == 0 {
                    ("beta__echo", format!("beta: call {i}"))
                } else {
                    ("alpha__echo", format!("call {i}"))
                };
                let response = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2026-07-28")
                    .header("mcp-method", "tools/call")
                    .header("mcp-name", tool)
                    .body(modern_call(&id, tool, &format!("call {i}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let content_type = response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                let body = response.text().await.unwrap();
                let (got_id, text) = answer_of(&content_type, &body);
                (id, got_id, expected, text)
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(results.len(), 1000);
    for (id, got_id, expected, text) in results {
        assert_eq!(got_id, id);
        assert_eq!(text, expected);
    }
}

#[tokio::test]
async fn a_dead_upstream_leaves_the_list_and_its_calls_get_an_error_naming_it() {
    let mut agg = Aggregated::start();
    let legacy = legacy_client(&agg.gateway.url).await;
    let modern = modern_client(&agg.gateway.url).await;
    agg.beta.kill();
    for client in [&legacy, &modern] {
        let names = tool_names(client).await;
        assert!(names.iter().all(|n| n.starts_with("alpha__")), "{names:?}");
        assert_eq!(names.len(), 3);
        let alpha = call_tool(client, "alpha__echo", json!({"text": "still"}))
            .await
            .unwrap();
        assert_eq!(text_of(&alpha), "still");
        let err = call_tool(client, "beta__add", json!({"a": 1, "b": 1}))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("beta"), "{err}");
    }
    // It comes back (with no memory of the old sessions): its tools return, and calls work
    // again (the legacy client's upstream session is opened anew).
    agg.beta.revive();
    for client in [&legacy, &modern] {
        assert_eq!(tool_names(client).await.len(), 5);
        let sum = call_tool(client, "beta__add", json!({"a": 2, "b": 2}))
            .await
            .unwrap();
        assert_eq!(text_of(&sum), "4");
    }
    legacy.cancel().await.unwrap();
    modern.cancel().await.unwrap();
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
