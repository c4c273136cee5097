//! The limit layer in the full stack over real sockets, in front of the real rmcp demo server,
//! with real rmcp clients of both eras: per-tool and per-principal rules isolate each other,
//! refusals are 429 with an honest `Retry-After` and a JSON-RPC body, `initialize` is never
//! refused with 400/404/405 (R45), and audit records the rule and the key.

#[path = "common/audit.rs"]
mod audit_fixtures;
mod common;

use std::time::Duration;

use audit_fixtures::Recorder;
use mcp_edge::audit::{AuditLayer, Outcome};
use mcp_edge::auth::StaticTokens;
use mcp_edge::limit::{LimitLayer, Rule};
use mcp_edge::{AuthLayer, McpEdge, Principal, Reason, RejectedBy, SseLayer};
use serde_json::json;
use tower::Layer;

use common::{
    TestServer, bearer, call_tool, initialize_body, legacy_client_with_auth,
    modern_client_with_auth, post_json, rmcp_service, serve_service,
};

const ALICE: &str = "alice-token";
const BOB: &str = "bob-token";

fn server(limit: LimitLayer, recorder: &Recorder) -> TestServer {
    let tokens = StaticTokens::new()
        .token(
            ALICE,
            Principal::new("alice").with_issuer("https://as.test"),
        )
        .token(BOB, Principal::new("bob").with_issuer("https://as.test"));
    let edge = McpEdge::builder()
        .audit(AuditLayer::new(recorder.sink()))
        .auth(AuthLayer::new(tokens))
        .limit(limit)
        .sse(SseLayer::new());
    serve_service(edge.layer(rmcp_service()))
}

#[tokio::test]
async fn per_tool_and_per_principal_rules_isolate_each_other_in_both_eras() {
    let recorder = Recorder::new();
    // `slow_count` stands for the expensive `deploy_*` tools: 2 a minute per principal.
    let limit = LimitLayer::new()
        .rule("tools/call:slow_*=2/min per principal".parse().unwrap())
        .rule("tools/call:echo=100/min per principal".parse().unwrap());
    let server = server(limit, &recorder);
    let alice = legacy_client_with_auth(&server.url, &bearer(ALICE)).await;
    let bob = modern_client_with_auth(&server.url, &bearer(BOB)).await;
    let slow = || json!({"n": 1, "delay_ms": 1});

    for _ in 0..2 {
        call_tool(&alice, "slow_count", slow()).await.unwrap();
    }
    assert!(
        call_tool(&alice, "slow_count", slow()).await.is_err(),
        "alice's third slow call is over the limit"
    );
    // Bob's budget and alice's echo budget are untouched.
    for _ in 0..2 {
        call_tool(&bob, "slow_count", slow()).await.unwrap();
    }
    for i in 0..5 {
        let echoed = call_tool(&alice, "echo", json!({"text": format!("hi {i}")})).await;
        assert!(
            echoed.is_ok(),
            "alice's echo is not slowed by her slow_count"
        );
    }
    assert!(call_tool(&bob, "slow_count", slow()).await.is_err());
    call_tool(&bob, "echo", json!({"text": "still fine"}))
        .await
        .unwrap();

    // Audit: the refusals, by the limit layer, each naming its rule and its caller's key.
    let events = recorder
        .wait_until(|events| {
            events
                .iter()
                .filter(|e| matches!(e.outcome(), Outcome::Refused { .. }))
                .count()
                == 2
        })
        .await;
    let refused: Vec<_> = events
        .iter()
        .filter_map(|e| match e.outcome() {
            Outcome::Refused {
                by,
                reason,
                code,
                message,
            } => Some((*by, *reason, *code, message.to_string(), e.status())),
            _ => None,
        })
        .collect();
    for (who, (by, reason, code, message, status)) in ["alice", "bob"].iter().zip(&refused) {
        assert_eq!(
            (*by, *reason, *code),
            (RejectedBy::Limit, Reason::RateLimited, -32600)
        );
        assert_eq!(status.map(|s| s.as_u16()), Some(429));
        assert!(
            message.contains("rule `tools/call:slow_*=2/min per principal`")
                && message.contains(&format!("key principal={who}")),
            "{message}"
        );
    }
    alice.cancel().await.unwrap();
    bob.cancel().await.unwrap();
}

#[tokio::test]
async fn an_initialize_over_the_limit_gets_429_with_retry_after_never_400_404_405() {
    let recorder = Recorder::new();
    let limit = LimitLayer::new().rule("initialize=1/min per principal".parse().unwrap());
    let server = server(limit, &recorder);
    let auth = bearer(ALICE);
    let first = post_json(
        &server.url,
        &initialize_body("2025-11-25"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(first.status(), 200);
    let again = post_json(
        &server.url,
        &initialize_body("2025-11-25"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(again.status(), 429, "R45: 429, not 400/404/405");
    let retry_after: u64 = again.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((59..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(again.headers()["content-type"], "application/json");
    let body: serde_json::Value = again.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], 1);
    assert_eq!(body["error"]["code"], -32600);
    assert_eq!(
        body["error"]["data"]["rule"],
        "initialize=1/min per principal"
    );
    assert_eq!(body["error"]["data"]["retryAfter"], retry_after);
}

#[tokio::test]
async fn retry_after_is_honest() {
    let recorder = Recorder::new();
    let limit = LimitLayer::new().rule(
        Rule::rate(1, Duration::from_secs(2))
            .method("tools/call")
            .tool("echo"),
    );
    let server = server(limit, &recorder);
    let client = modern_client_with_auth(&server.url, &bearer(ALICE)).await;
    call_tool(&client, "echo", json!({"text": "one"}))
        .await
        .unwrap();
    let body = json!({
        "jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {
            "name": "echo", "arguments": {"text": "two"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}
            }
        }
    });
    let auth = bearer(ALICE);
    let headers = [
        ("authorization", auth.as_str()),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "echo"),
    ];
    let refused = post_json(&server.url, &body, &headers).await;
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let retried = post_json(&server.url, &body, &headers).await;
    assert_eq!(retried.status(), 200, "a retry after Retry-After passes");
    client.cancel().await.unwrap();
}
