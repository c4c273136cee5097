//! The session layer in front of a real rmcp 3.11 server, with real rmcp clients pinned to
//! 2025-11-25 (sessions) and 2026-07-28 (stateless), and raw HTTP probes for every refusal.

mod common;

use std::time::Duration;

use common::*;
use mcp_edge::SessionId;
use mcp_edge::session::SessionLayer;
use mcp_edge::store::{MemorySessionStore, SessionRecord, SessionStore};
use serde_json::json;

const LIST: &str = r#"{"jsonrpc":"2.0","id":5,"method":"tools/list"}"#;

fn enforce(store: &MemorySessionStore) -> SessionLayer {
    SessionLayer::with_store(store.clone()).enforce()
}

async fn list_with(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    post_raw(url, LIST.as_bytes().to_vec(), headers).await
}

async fn jsonrpc_error(response: reqwest::Response) -> serde_json::Value {
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "a refusal carries a JSON-RPC body"
    );
    let body: serde_json::Value = response.json().await.expect("JSON-RPC body");
    assert_eq!(body["jsonrpc"], "2.0");
    body
}

async fn whoami(client: &Client) -> serde_json::Value {
    let result = call_tool(client, "whoami", serde_json::Value::Null)
        .await
        .expect("whoami");
    serde_json::from_str(&text_of(&result)).expect("whoami returns JSON")
}

#[tokio::test]
async fn legacy_client_works_through_enforce_and_its_session_is_recorded_then_ended() {
    let store = MemorySessionStore::new();
    let server = serve_with_session_layer(enforce(&store), rmcp_config());
    let client = legacy_client_with_auth(&server.url, &bearer("alice")).await;
    let me = whoami(&client).await;
    let id: SessionId = me["session_id"].as_str().unwrap().parse().unwrap();
    let record = store.get(&id).await.unwrap().expect("session recorded");
    assert_eq!(
        record.principal(),
        Some(
            mcp_edge::Principal::new("alice")
                .with_issuer(TEST_ISSUER)
                .binding_key()
                .as_str()
        )
    );
    assert_eq!(record.protocol_version().as_str(), "2025-11-25");
    assert_eq!(
        record.client_info().and_then(|c| c.name.as_deref()),
        Some("mcp-edge-tests")
    );
    let echoed = call_tool(&client, "echo", json!({"text": "hi"}))
        .await
        .unwrap();
    assert_eq!(text_of(&echoed), "hi");
    let (counted, progress) =
        call_tool_with_progress(&client, "slow_count", json!({"n": 3, "delay_ms": 5}), 3).await;
    assert_eq!(text_of(&counted.unwrap()), "counted to 3");
    assert_eq!(progress.len(), 3);
    // Closing the client DELETEs the session: the server accepts, the record goes.
    client.cancel().await.unwrap();
    let mut gone = false;
    for _ in 0..50 {
        if store.get(&id).await.unwrap().is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "DELETE accepted by the server ends the record");
    let response = list_with(
        &server.url,
        &[
            ("mcp-session-id", id.as_str()),
            ("authorization", "Bearer alice"),
        ],
    )
    .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn missing_session_id_gets_400_and_jsonrpc_body() {
    let store = MemorySessionStore::new();
    let server = serve_with_session_layer(enforce(&store), rmcp_config());
    let response = list_with(&server.url, &[("mcp-protocol-version", "2025-11-25")]).await;
    assert_eq!(response.status(), 400);
    let body = jsonrpc_error(response).await;
    assert_eq!(body["error"]["code"], -32000);
    assert_eq!(body["id"], 5);
    // GET without a session too.
    let response = http_client()
        .get(&server.url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    jsonrpc_error(response).await;
}

#[tokio::test]
async fn invalid_session_id_gets_400_and_jsonrpc_body() {
    let store = MemorySessionStore::new();
    let server = serve_with_session_layer(enforce(&store), rmcp_config());
    let response = http_client()
        .post(&server.url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT_BOTH)
        .header(
            "mcp-session-id",
            reqwest::header::HeaderValue::from_bytes(b"bad\tid").unwrap(),
        )
        .body(LIST)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body = jsonrpc_error(response).await;
    assert_eq!(body["error"]["code"], -32000);
}

#[tokio::test]
async fn unknown_session_gets_404_and_jsonrpc_body_for_post_get_and_delete() {
    let store = MemorySessionStore::new();
    let server = serve_with_session_layer(enforce(&store), rmcp_config());
    let response = list_with(&server.url, &[("mcp-session-id", "no-such-session")]).await;
    assert_eq!(response.status(), 404);
    let body = jsonrpc_error(response).await;
    assert_eq!(body["error"]["code"], -32001);
    assert_eq!(body["id"], 5);
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let response = http_client()
            .request(method, &server.url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", "no-such-session")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
        assert_eq!(jsonrpc_error(response).await["error"]["code"], -32001);
    }
}

#[tokio::test]
async fn session_of_another_principal_gets_404_and_the_owner_keeps_it() {
    let store = MemorySessionStore::new();
    let server = serve_with_session_layer(enforce(&store), rmcp_config());
    let alice = legacy_client_with_auth(&server.url, &bearer("alice")).await;
    let id = whoami(&alice).await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = list_with(
        &server.url,
        &[
            ("mcp-session-id", &id),
            ("authorization", "Bearer mallory"),
            ("mcp-protocol-version", "2025-11-25"),
        ],
    )
    .await;
    assert_eq!(response.status(), 404);
    assert_eq!(jsonrpc_error(response).await["error"]["code"], -32001);
    // Without any token, neither.
    let response = list_with(&server.url, &[("mcp-session-id", &id)]).await;
    assert_eq!(response.status(), 404);
    // Alice carries on.
    assert_eq!(whoami(&alice).await["subject"], "alice");
    alice.cancel().await.unwrap();
}

#[tokio::test]
async fn caps_refuse_initialize_with_429_and_503_never_400_404_405() {
    let store = MemorySessionStore::new();
    let layer = enforce(&store)
        .max_sessions_per_principal(1)
        .max_sessions(2);
    let server = serve_with_session_layer(layer, rmcp_config());
    let first = legacy_client_with_auth(&server.url, &bearer("alice")).await;
    let again = post_json(
        &server.url,
        &initialize_body("2025-11-25"),
        &[("authorization", "Bearer alice")],
    )
    .await;
    assert_eq!(again.status(), 429);
    assert_eq!(again.headers()["retry-after"], "1");
    let body = jsonrpc_error(again).await;
    assert_eq!(body["id"], 1);
    let _bob = legacy_client_with_auth(&server.url, &bearer("bob")).await;
    let carol = post_json(
        &server.url,
        &initialize_body("2025-11-25"),
        &[("authorization", "Bearer carol")],
    )
    .await;
    assert_eq!(carol.status(), 503);
    jsonrpc_error(carol).await;
    // A real client refused at initialize gets an error, not a fallback to the old transport.
    let refused = try_connect(
        &server.url,
        rmcp::model::ProtocolVersion::V_2025_11_25,
        Some(&bearer("alice")),
    )
    .await;
    assert!(refused.is_err());
    // Ending alice's first session frees her slot.
    first.cancel().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = legacy_client_with_auth(&server.url, &bearer("alice")).await;
    second.cancel().await.unwrap();
}

#[tokio::test]
async fn server_404_removes_the_record() {
    let store = MemorySessionStore::new();
    let server = serve_with_session_layer(enforce(&store), rmcp_config());
    // A record the server does not know (say, the replica restarted).
    let ghost: SessionId = "ghost-session".parse().unwrap();
    store
        .insert(SessionRecord::new(ghost.clone()))
        .await
        .unwrap();
    let response = list_with(
        &server.url,
        &[
            ("mcp-session-id", "ghost-session"),
            ("mcp-protocol-version", "2025-11-25"),
        ],
    )
    .await;
    assert_eq!(
        response.status(),
        404,
        "the server's own 404 passes through"
    );
    assert!(store.get(&ghost).await.unwrap().is_none());
}

#[tokio::test]
async fn modern_client_passes_untouched_through_enforce() {
    let store = MemorySessionStore::new();
    let server = serve_with_session_layer(enforce(&store), rmcp_config());
    let client = modern_client(&server.url).await;
    let echoed = call_tool(&client, "echo", json!({"text": "stateless"}))
        .await
        .unwrap();
    assert_eq!(text_of(&echoed), "stateless");
    assert!(whoami(&client).await["session_id"].is_null());
    assert!(store.is_empty(), "no session recorded for 2026-07-28");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn observe_mode_records_sessions_and_leaves_refusals_to_the_server() {
    let store = MemorySessionStore::new();
    let server = serve_with_session_layer(SessionLayer::with_store(store.clone()), rmcp_config());
    let client = legacy_client_with_auth(&server.url, &bearer("alice")).await;
    let id: SessionId = whoami(&client).await["session_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(store.get(&id).await.unwrap().is_some());
    // A foreign principal is refused in observe mode too (R32): 404 before the server.
    let response = list_with(
        &server.url,
        &[
            ("mcp-session-id", id.as_str()),
            ("authorization", "Bearer mallory"),
            ("mcp-protocol-version", "2025-11-25"),
        ],
    )
    .await;
    assert_eq!(response.status(), 404);
    // Unknown ids reach the server, which answers its own 404.
    let response = list_with(&server.url, &[("mcp-session-id", "no-such-session")]).await;
    assert_eq!(response.status(), 404);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn session_layer_in_the_mcp_edge_stack_serves_both_eras() {
    let store = MemorySessionStore::new();
    let edge = mcp_edge::McpEdge::builder().session(enforce(&store));
    let server = serve(rmcp_router().layer(edge));
    let legacy = legacy_client(&server.url).await;
    let echoed = call_tool(&legacy, "echo", json!({"text": "stacked"}))
        .await
        .unwrap();
    assert_eq!(text_of(&echoed), "stacked");
    assert_eq!(store.len(), 1);
    let modern = modern_client(&server.url).await;
    let echoed = call_tool(&modern, "echo", json!({"text": "modern"}))
        .await
        .unwrap();
    assert_eq!(text_of(&echoed), "modern");
    let response = list_with(&server.url, &[("mcp-session-id", "no-such-session")]).await;
    assert_eq!(response.status(), 404);
    legacy.cancel().await.unwrap();
    modern.cancel().await.unwrap();
}

/// A hand-written MCP endpoint (as other SDKs and hand-rolled servers do) that answers
/// `initialize` with plain JSON (rmcp always answers it with SSE) and a session header.
async fn json_endpoint(body: axum::body::Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let reply = json!({"jsonrpc": "2.0", "id": request["id"], "result": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "serverInfo": {"name": "json-endpoint", "version": "0"}
    }});
    let mut response = axum::Json(reply).into_response();
    if request["method"] == "initialize" {
        response
            .headers_mut()
            .insert("mcp-session-id", "json-session-1".parse().unwrap());
    }
    response
}

#[tokio::test]
async fn session_is_learned_from_a_json_initialize_response_too() {
    let store = MemorySessionStore::new();
    let app = axum::Router::new().route("/mcp", axum::routing::post(json_endpoint));
    let service = tower::ServiceBuilder::new()
        .layer(mcp_edge::inspect::InspectLayer::new())
        .layer(enforce(&store))
        .service(app);
    let server = serve_service(service);
    let response = post_json(&server.url, &initialize_body("2025-11-25"), &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["mcp-session-id"], "json-session-1");
    let id: SessionId = "json-session-1".parse().unwrap();
    assert!(store.get(&id).await.unwrap().is_some());
    let response = list_with(&server.url, &[("mcp-session-id", "json-session-1")]).await;
    assert_eq!(response.status(), 200);
    let response = list_with(&server.url, &[("mcp-session-id", "json-session-2")]).await;
    assert_eq!(response.status(), 404);
}
