//! Merged lists: prompts, resources and templates with namespaced names and reversible URIs,
//! pagination across upstreams with one opaque cursor, and per-upstream tool rules.
#![cfg(feature = "aggregator")]

#[path = "common/aggregate.rs"]
mod aggregate;
mod common;

use std::collections::BTreeSet;

use aggregate::{Aggregated, Fake};
use bytes::Bytes;
use common::{call_tool, legacy_client, modern_client, text_of};
use http::Request;
use http_body_util::{BodyExt, Full};
use mcp_edge::aggregate::{Aggregator, Upstream};
use serde_json::{Value, json};
use tower::ServiceExt;

fn fakes() -> Aggregator<Fake> {
    Aggregator::builder()
        .upstream(Upstream::new("one", Fake::new("one", 5)))
        .upstream(Upstream::new("two", Fake::new("two", 3)))
        .build()
        .unwrap()
}

/// A 2026-07-28 request to the aggregator, answered as JSON.
async fn modern(aggregator: &Aggregator<Fake>, method: &str, params: Value) -> Value {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": method, "params": params});
    let mut request = Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    let name = params
        .get("name")
        .or(params.get("uri"))
        .and_then(Value::as_str);
    if let Some(name) = name {
        request = request.header("mcp-name", name);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = aggregator.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["id"], 9, "{answer}");
    answer
}

#[tokio::test]
async fn pages_of_every_upstream_continue_with_one_opaque_cursor() {
    let aggregator = fakes();
    let mut seen = Vec::new();
    let mut params = json!({});
    let mut pages = 0;
    loop {
        let answer = modern(&aggregator, "tools/list", params.clone()).await;
        let result = &answer["result"];
        for tool in result["tools"].as_array().unwrap() {
            seen.push(tool["name"].as_str().unwrap().to_owned());
        }
        pages += 1;
        match result["nextCursor"].as_str() {
            Some(cursor) => params = json!({"cursor": cursor}),
            None => break,
        }
    }
    // one: 5 tools (pages of 2 → 3 pages), two: 3 tools (2 pages), asked together.
    assert_eq!(pages, 3);
    let expected = [
        "one__t0", "one__t1", "two__t0", "two__t1", "one__t2", "one__t3", "two__t2", "one__t4",
    ];
    assert_eq!(seen, expected);

    let bad = modern(&aggregator, "tools/list", json!({"cursor": "forged"})).await;
    assert_eq!(bad["error"]["code"], -32602);
}

#[tokio::test]
async fn prompts_resources_and_templates_are_namespaced_and_route_back() {
    let aggregator = fakes();
    let prompts = modern(&aggregator, "prompts/list", json!({})).await;
    let names: Vec<_> = prompts["result"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["one__greet", "two__greet"]);
    let got = modern(&aggregator, "prompts/get", json!({"name": "two__greet"})).await;
    assert_eq!(got["result"]["messages"][0]["content"]["text"], "two:greet");

    let resources = modern(&aggregator, "resources/list", json!({})).await;
    let uris: Vec<_> = resources["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(uris, ["one+file:///one/a.txt", "two+file:///two/a.txt"]);
    let read = modern(
        &aggregator,
        "resources/read",
        json!({"uri": "two+file:///two/a.txt"}),
    )
    .await;
    // The upstream was asked for its own URI.
    assert_eq!(read["result"]["contents"][0]["uri"], "file:///two/a.txt");
    assert_eq!(read["result"]["contents"][0]["text"], "read by two");

    let templates = modern(&aggregator, "resources/templates/list", json!({})).await;
    assert_eq!(
        templates["result"]["resourceTemplates"][0]["uriTemplate"],
        "one+file:///one/{path}"
    );
    // Modern list results carry the 2026-07-28 caching hints.
    assert_eq!(templates["result"]["resultType"], "complete");
    assert_eq!(templates["result"]["cacheScope"], "private");

    let unknown = modern(&aggregator, "resources/read", json!({"uri": "file:///x"})).await;
    assert_eq!(unknown["error"]["code"], -32602);
}

#[tokio::test]
async fn tool_rules_hide_and_rename_per_upstream_in_both_eras() {
    let agg = Aggregated::start_with(|alpha, beta| {
        Aggregator::builder()
            .upstream(alpha.exclude_tools("who*").rename_tool("echo", "say"))
            .upstream(beta.include_tools("add"))
    });
    for client in [
        legacy_client(&agg.gateway.url).await,
        modern_client(&agg.gateway.url).await,
    ] {
        let names: BTreeSet<String> = client
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        let expected: BTreeSet<String> = ["alpha__say", "alpha__slow_count", "beta__add"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(names, expected);
        let said = call_tool(&client, "alpha__say", json!({"text": "hi"}))
            .await
            .unwrap();
        assert_eq!(text_of(&said), "hi");
        for hidden in ["alpha__echo", "alpha__whoami", "beta__echo"] {
            assert!(
                call_tool(&client, hidden, json!({"text": "x"}))
                    .await
                    .is_err(),
                "{hidden}"
            );
        }
        client.cancel().await.unwrap();
    }
}
