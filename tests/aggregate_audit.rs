//! Audit and policy in front of the aggregator: the audit line of a routed call names the
//! namespaced tool and the upstream it went to, and a scope policy's tool glob `alpha__*`
//! allows alpha's tools and refuses beta's.
#![cfg(feature = "aggregator")]

#[path = "common/aggregate.rs"]
mod aggregate;
#[path = "common/audit.rs"]
mod audit_fixtures;
mod common;

use aggregate::{Fake, modern_request};
use audit_fixtures::Recorder;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use mcp_edge::Principal;
use mcp_edge::aggregate::{Aggregator, Upstream};
use mcp_edge::audit::AuditLayer;
use mcp_edge::auth::{AuthLayer, ScopePolicy, StaticTokens};
use mcp_edge::inspect::InspectLayer;
use serde_json::{Value, json};
use tower::{Service, ServiceBuilder, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A 2026-07-28 `tools/call` of `tool` with `token`: the HTTP status and the JSON answer.
async fn call<S, B>(stack: &S, tool: &str, token: &str) -> (u16, Value)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut request = modern_request(
        "tools/call",
        json!({"name": tool, "arguments": {}}),
        json!(1),
    );
    let value = format!("Bearer {token}").parse().unwrap();
    request.headers_mut().insert("authorization", value);
    let response = stack.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = match response.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => panic!("body failed"),
    };
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn audit_names_the_upstream_and_the_policy_glob_works_on_namespaced_names() {
    let aggregator = Aggregator::builder()
        .upstream(Upstream::new("alpha", Fake::new("alpha", 2)))
        .upstream(Upstream::new("beta", Fake::new("beta", 2)))
        .build()
        .unwrap();
    let tokens = StaticTokens::new().token(
        "alpha-token",
        Principal::new("carol").with_scopes(["alpha:tools"]),
    );
    let policy = ScopePolicy::new()
        .tool("alpha__*", ["alpha:tools"])
        .tool("beta__*", ["beta:tools"]);
    let recorder = Recorder::new();
    let stack = ServiceBuilder::new()
        .layer(AuditLayer::new(recorder.sink()))
        .layer(InspectLayer::new())
        .layer(AuthLayer::new(tokens).policy(policy))
        .service(aggregator);

    let (status, allowed) = call(&stack, "alpha__t0", "alpha-token").await;
    assert_eq!(status, 200);
    assert_eq!(allowed["result"]["content"][0]["text"], "alpha:t0");
    let (status, _) = call(&stack, "beta__t0", "alpha-token").await;
    assert_eq!(status, 403, "beta's tools need a scope carol lacks");

    let events = recorder.wait_until(|e| e.len() >= 2).await;
    let lines: Vec<Value> = events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    let routed = &lines[0];
    assert_eq!(routed["gen_ai.tool.name"], "alpha__t0", "{routed}");
    assert_eq!(routed["mcp_edge.upstream"], "alpha", "{routed}");
    assert_eq!(events[0].routed().unwrap().upstream(), "alpha");
    let refused = &lines[1];
    assert_eq!(refused["gen_ai.tool.name"], "beta__t0", "{refused}");
    assert_eq!(refused["mcp_edge.refused_by"], "auth", "{refused}");
    assert!(
        refused.get("mcp_edge.upstream").is_none(),
        "a refused call went nowhere: {refused}"
    );
}
