//! The shared fixtures work: a bare rmcp server (the demo tools) reached by real rmcp clients
//! in both protocol eras, and the raw HTTP helpers.

mod common;

use common::*;
use rmcp::model::ProtocolVersion;

async fn exercise(client: &Client) {
    let tools = client.list_all_tools().await.expect("tools/list");
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(names, ["echo", "slow_count", "whoami"]);

    let echoed = call_tool(client, "echo", serde_json::json!({"text": "héllo"}))
        .await
        .expect("echo");
    assert_eq!(text_of(&echoed), "héllo");

    let (counted, progress) = call_tool_with_progress(
        client,
        "slow_count",
        serde_json::json!({"n": 5, "delay_ms": 10}),
        5,
    )
    .await;
    assert_eq!(text_of(&counted.expect("slow_count")), "counted to 5");
    let steps: Vec<f64> = progress.iter().map(|p| p.progress).collect();
    assert_eq!(steps, [1.0, 2.0, 3.0, 4.0, 5.0]);
    assert!(progress.iter().all(|p| p.total == Some(5.0)));
}

async fn whoami(client: &Client) -> serde_json::Value {
    let result = call_tool(client, "whoami", serde_json::Value::Null)
        .await
        .expect("whoami");
    serde_json::from_str(&text_of(&result)).expect("whoami returns JSON")
}

#[tokio::test]
async fn legacy_client_gets_a_session_lists_tools_and_receives_every_progress_notification() {
    let server = serve(rmcp_router());
    let client = legacy_client(&server.url).await;
    assert_eq!(
        client.peer_info().expect("initialized").protocol_version,
        ProtocolVersion::V_2025_11_25
    );
    exercise(&client).await;
    let me = whoami(&client).await;
    assert!(me["session_id"].is_string(), "legacy has a session: {me}");
    assert_eq!(me["protocol_version"], "2025-11-25");
    assert!(me["subject"].is_null(), "no auth layer, no subject: {me}");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn modern_client_is_stateless_lists_tools_and_receives_every_progress_notification() {
    let server = serve(rmcp_router());
    let client = modern_client(&server.url).await;
    assert_eq!(
        client.peer_info().expect("initialized").protocol_version,
        ProtocolVersion::V_2026_07_28
    );
    exercise(&client).await;
    let me = whoami(&client).await;
    assert!(
        me["session_id"].is_null(),
        "2026-07-28 has no session: {me}"
    );
    assert_eq!(me["protocol_version"], "2026-07-28");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn client_with_auth_sends_the_authorization_header_on_every_request() {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let record = seen.clone();
    let router = rmcp_router().layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let value = req
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned());
            record.lock().unwrap().push(value);
            next.run(req)
        },
    ));
    let server = serve(router);
    for client in [
        legacy_client_with_auth(&server.url, &bearer("t0ken")).await,
        modern_client_with_auth(&server.url, &bearer("t0ken")).await,
    ] {
        call_tool(&client, "echo", serde_json::json!({"text": "x"}))
            .await
            .expect("echo");
        client.cancel().await.expect("close");
    }
    let seen = seen.lock().unwrap();
    assert!(seen.len() >= 4, "requests seen: {}", seen.len());
    assert!(
        seen.iter().all(|v| v.as_deref() == Some("Bearer t0ken")),
        "every request carries the header: {seen:?}"
    );
}

#[tokio::test]
async fn raw_helpers_speak_json_rpc_to_the_bare_server() {
    let server = serve(rmcp_router());
    let session = raw_legacy_session(&server.url).await;
    let list = serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"});
    let response = post_json(
        &server.url,
        &list,
        &[
            ("mcp-session-id", &session),
            ("mcp-protocol-version", "2025-11-25"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let messages = response_messages(response).await;
    let reply = messages
        .iter()
        .find(|m| m["id"] == 7)
        .expect("a response with id 7");
    assert_eq!(reply["result"]["tools"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn dropping_the_test_server_closes_its_port() {
    let server = serve(rmcp_router());
    let url = server.url.clone();
    drop(server);
    tokio::task::yield_now().await;
    let err = http_client().get(&url).send().await;
    assert!(err.is_err(), "server still answering after drop");
}

/// Why `modern_client` uses the `server/discover` lifecycle: rmcp's plain `.serve()` sends
/// `initialize` even with its default `ProtocolVersion::LATEST` (2026-07-28), and an rmcp 3.11
/// server answers `initialize` with the newest version that still has one, 2025-11-25.
#[tokio::test]
async fn rmcp_plain_serve_with_default_version_ends_up_on_2025_11_25_with_a_session() {
    use rmcp::{
        ServiceExt,
        transport::{
            StreamableHttpClientTransport,
            streamable_http_client::StreamableHttpClientTransportConfig,
        },
    };
    let server = serve(rmcp_router());
    let transport = StreamableHttpClientTransport::with_client(
        http_client(),
        StreamableHttpClientTransportConfig::with_uri(server.url.clone()),
    );
    let client = TestClient::new(ProtocolVersion::default())
        .serve(transport)
        .await
        .expect("connect");
    assert_eq!(
        client.peer_info().unwrap().protocol_version,
        ProtocolVersion::V_2025_11_25
    );
    assert!(whoami(&client).await["session_id"].is_string());
    client.cancel().await.expect("close");
}
