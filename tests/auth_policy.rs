//! The scope policy through a real rmcp server and real rmcp clients (both eras): allowed and
//! denied tools, step-up 403 with every needed scope, `tools/list` filtered per principal,
//! hidden and missing tools answered alike, and auth on every request of a session.

mod common;

use common::{
    bearer, call_tool, initialize_body, legacy_client_with_auth, modern_client_with_auth,
    post_json, response_messages, serve_service, text_of,
};
use mcp_edge::Principal;
use mcp_edge::auth::{AuthLayer, CachedVerifier, ProtectedResource, ScopePolicy, StaticTokens};
use mcp_edge::inspect::InspectLayer;
use serde_json::json;
use tower::ServiceBuilder;

const METADATA: &str = "https://mcp.test/.well-known/oauth-protected-resource/mcp";

/// `reader`: may call `echo` only. `ops`: everything. `root`: only `mcp:admin`, which implies
/// the rest. `nobody`: a valid token without scopes.
fn server() -> common::TestServer {
    let tokens = StaticTokens::new()
        .token(
            "reader-token",
            Principal::new("reader").with_scopes(["mcp:tools"]),
        )
        .token(
            "ops-token",
            Principal::new("ops").with_scopes(["mcp:tools", "mcp:slow", "mcp:whoami"]),
        )
        .token(
            "root-token",
            Principal::new("root").with_scopes(["mcp:admin"]),
        )
        .token("nobody-token", Principal::new("nobody"));
    let policy = ScopePolicy::new()
        .method("tools/call", ["mcp:tools"])
        .tool("slow_*", ["mcp:slow"])
        .tool("who*", ["mcp:whoami"])
        .implies("mcp:admin", ["mcp:tools", "mcp:slow", "mcp:whoami"]);
    let auth = AuthLayer::new(CachedVerifier::new(tokens))
        .policy(policy)
        .protected_resource(
            ProtectedResource::new(["https://as.test"]).resource("https://mcp.test/mcp"),
        );
    serve_service(
        ServiceBuilder::new()
            .layer(InspectLayer::new())
            .layer(auth)
            .service(common::rmcp_service()),
    )
}

async fn tool_names(client: &common::Client) -> Vec<String> {
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn tools_list_is_filtered_per_principal_in_both_eras() {
    let server = server();
    for modern in [false, true] {
        let connect = |token: &'static str| {
            let url = server.url.clone();
            async move {
                if modern {
                    modern_client_with_auth(&url, &bearer(token)).await
                } else {
                    legacy_client_with_auth(&url, &bearer(token)).await
                }
            }
        };
        let reader = connect("reader-token").await;
        assert_eq!(tool_names(&reader).await, ["echo"], "modern={modern}");
        let ops = connect("ops-token").await;
        assert_eq!(
            tool_names(&ops).await,
            ["echo", "slow_count", "whoami"],
            "modern={modern}"
        );
        let root = connect("root-token").await;
        assert_eq!(
            tool_names(&root).await,
            ["echo", "slow_count", "whoami"],
            "hierarchy: mcp:admin implies the rest (modern={modern})"
        );
        let nobody = connect("nobody-token").await;
        assert!(tool_names(&nobody).await.is_empty(), "modern={modern}");
    }
}

#[tokio::test]
async fn allowed_tools_run_and_denied_tools_are_refused_in_both_eras() {
    let server = server();
    for modern in [false, true] {
        let (reader, ops) = if modern {
            (
                modern_client_with_auth(&server.url, &bearer("reader-token")).await,
                modern_client_with_auth(&server.url, &bearer("ops-token")).await,
            )
        } else {
            (
                legacy_client_with_auth(&server.url, &bearer("reader-token")).await,
                legacy_client_with_auth(&server.url, &bearer("ops-token")).await,
            )
        };
        let echoed = call_tool(&reader, "echo", json!({"text": "hi"}))
            .await
            .unwrap();
        assert_eq!(text_of(&echoed), "hi");
        assert!(
            call_tool(&reader, "whoami", json!({})).await.is_err(),
            "reader may not call whoami (modern={modern})"
        );
        assert!(
            call_tool(&reader, "slow_count", json!({"n": 1, "delay_ms": 1}))
                .await
                .is_err()
        );
        let me = call_tool(&ops, "whoami", json!({})).await.unwrap();
        let me: serde_json::Value = serde_json::from_str(&text_of(&me)).unwrap();
        assert_eq!(me["subject"], "ops", "the Principal reaches the handler");
    }
}

/// A 2026-07-28 `tools/call`, headers mirroring the body.
async fn modern_call(url: &str, token: &str, tool: &str) -> reqwest::Response {
    let body = json!({
        "jsonrpc": "2.0", "id": 42, "method": "tools/call",
        "params": {
            "name": tool, "arguments": {},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}
            }
        }
    });
    let auth = bearer(token);
    post_json(
        url,
        &body,
        &[
            ("authorization", &auth),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", tool),
        ],
    )
    .await
}

#[tokio::test]
async fn step_up_403_lists_every_scope_the_call_needs() {
    let server = server();
    let response = modern_call(&server.url, "reader-token", "slow_count").await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["www-authenticate"],
        format!(
            r#"Bearer error="insufficient_scope", scope="mcp:tools mcp:slow", resource_metadata="{METADATA}""#
        )
        .as_str()
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"jsonrpc": "2.0", "id": 42, "error": {
            "code": -32600, "message": "Forbidden: insufficient scope",
            "data": {"requiredScopes": ["mcp:tools", "mcp:slow"]}
        }})
    );
    // With the stepped-up token the same call goes through.
    let response = modern_call(&server.url, "ops-token", "slow_count").await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_hidden_tool_and_a_missing_tool_get_the_same_answer() {
    let server = server();
    // `whoami` exists (hidden from reader's list); `whoever` does not; both match `who*`.
    let hidden = modern_call(&server.url, "reader-token", "whoami").await;
    let missing = modern_call(&server.url, "reader-token", "whoever").await;
    assert_eq!(hidden.status(), 403);
    assert_eq!(hidden.status(), missing.status());
    assert_eq!(
        hidden.headers()["www-authenticate"],
        missing.headers()["www-authenticate"]
    );
    assert_eq!(
        hidden.bytes().await.unwrap(),
        missing.bytes().await.unwrap()
    );
    // With no scopes at all, an existing tool and a missing one are also refused alike.
    let existing = modern_call(&server.url, "nobody-token", "echo").await;
    let absent = modern_call(&server.url, "nobody-token", "no_such_tool").await;
    assert_eq!(existing.status(), 403);
    assert_eq!(
        existing.headers()["www-authenticate"],
        absent.headers()["www-authenticate"]
    );
    assert_eq!(
        existing.bytes().await.unwrap(),
        absent.bytes().await.unwrap()
    );
}

#[tokio::test]
async fn auth_runs_on_every_request_of_a_session() {
    let server = server();
    let reader = bearer("reader-token");
    let response = post_json(
        &server.url,
        &initialize_body("2025-11-25"),
        &[("authorization", &reader)],
    )
    .await;
    assert_eq!(response.status(), 200);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = response.bytes().await;
    let in_session = |token: Option<&'static str>| {
        let session = session.clone();
        let url = server.url.clone();
        async move {
            let auth = token.map(bearer);
            let mut headers = vec![
                ("mcp-session-id", session.as_str()),
                ("mcp-protocol-version", "2025-11-25"),
            ];
            if let Some(auth) = &auth {
                headers.push(("authorization", auth.as_str()));
            }
            let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
            post_json(&url, &list, &headers).await
        }
    };
    // The session id is no substitute for a token (R32, R51).
    let response = in_session(None).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        format!(r#"Bearer resource_metadata="{METADATA}""#).as_str()
    );
    assert_eq!(in_session(Some("forged")).await.status(), 401);
    let ok = in_session(Some("reader-token")).await;
    assert_eq!(ok.status(), 200);
    let messages = response_messages(ok).await;
    let tools = messages[0]["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 1, "filtered inside the session too");

    // GET and DELETE of the session are checked as well.
    let client = common::http_client();
    let get = client
        .get(&server.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 401);
    let delete = client
        .delete(&server.url)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 401);
}
