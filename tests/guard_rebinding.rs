//! DNS rebinding and cross-origin protection through a real rmcp server and real rmcp clients,
//! in both protocol eras: the guard (with inspect) in front of rmcp, whose own Host check is
//! off.

mod common;

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use common::*;
use mcp_edge::guard::GuardLayer;
use mcp_edge::inspect::InspectLayer;
use rmcp::model::ProtocolVersion;
use tower::ServiceBuilder;

fn guarded(guard: GuardLayer) -> TestServer {
    let guard = guard.peer_addr_with(|ext: &http::Extensions| {
        ext.get::<ConnectInfo<SocketAddr>>().map(|info| info.0)
    });
    serve_service(
        ServiceBuilder::new()
            .layer(guard)
            .layer(InspectLayer::new())
            .service(rmcp_service()),
    )
}

/// `http://{name}:PORT/mcp`, resolving `name` to the server.
fn named_url(server: &TestServer, name: &str) -> String {
    format!("http://{name}:{}/mcp", server.addr.port())
}

async fn assert_forbidden_jsonrpc(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), 403, "{what}");
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{what}"
    );
    let body: serde_json::Value = response.json().await.expect("JSON body");
    assert_eq!(body["jsonrpc"], "2.0", "{what}: {body}");
    assert_eq!(body["error"]["code"], -32600, "{what}: {body}");
    assert!(body.get("id").is_none(), "{what}: {body}");
}

/// The rmcp client failed to connect because the guard answered 403 with `message`.
fn assert_refused_403<T>(
    result: Result<T, rmcp::service::ClientInitializeError>,
    message: &str,
    version: &ProtocolVersion,
) {
    let Err(err) = result else {
        panic!("{version}: connected, expected a 403 ({message})");
    };
    let err = err.to_string();
    assert!(
        err.contains("403") && err.contains(message),
        "{version}: expected a 403 with {message:?}, got: {err}"
    );
}

async fn list_and_echo(client: &Client) {
    let tools = client.list_all_tools().await.expect("tools/list");
    assert_eq!(tools.len(), 3);
    let echoed = call_tool(
        client,
        "echo",
        serde_json::json!({"text": "through the guard"}),
    )
    .await
    .expect("echo");
    assert_eq!(text_of(&echoed), "through the guard");
}

#[tokio::test]
async fn localhost_names_are_accepted_in_both_eras() {
    let server = guarded(GuardLayer::loopback());
    for version in BOTH_ERAS {
        for name in ["localhost", "127.0.0.1"] {
            let url = named_url(&server, name);
            let client = try_connect_via(&url, version.clone(), &[("localhost", server.addr)], &[])
                .await
                .unwrap_or_else(|e| panic!("{version} via {name} refused: {e}"));
            list_and_echo(&client).await;
            client.cancel().await.expect("close");
        }
    }
}

#[tokio::test]
async fn rebound_evil_host_is_refused_in_both_eras() {
    let server = guarded(GuardLayer::loopback());
    let url = named_url(&server, "evil.example.com");
    let resolve = [("evil.example.com", server.addr)];
    for version in BOTH_ERAS {
        let refused = try_connect_via(&url, version.clone(), &resolve, &[]).await;
        assert_refused_403(refused, "Host header is not allowed", &version);
    }
    // The refusal itself, as the conformance scenario `dns-rebinding-protection` sees it.
    let client = http_client_via(&resolve, &[]);
    for body in [
        initialize_body("2025-11-25"),
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    ] {
        let response = client
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", ACCEPT_BOTH)
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", body["method"].as_str().unwrap())
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_forbidden_jsonrpc(response, "Host: evil.example.com").await;
    }
}

#[tokio::test]
async fn evil_origin_is_refused_in_both_eras() {
    let server = guarded(GuardLayer::loopback());
    for version in BOTH_ERAS {
        let refused = try_connect_via(
            &server.url,
            version.clone(),
            &[],
            &[("origin", "http://evil.example.com")],
        )
        .await;
        assert_refused_403(refused, "Origin not allowed", &version);
    }
    let response = post_json(
        &server.url,
        &initialize_body("2025-11-25"),
        &[("origin", "http://evil.example.com")],
    )
    .await;
    assert_forbidden_jsonrpc(response, "Origin: http://evil.example.com").await;
}

#[tokio::test]
async fn localhost_origins_are_accepted_in_both_eras() {
    let server = guarded(GuardLayer::loopback());
    let own = format!("http://127.0.0.1:{}", server.addr.port());
    for version in BOTH_ERAS {
        for origin in [own.as_str(), "http://localhost:6274"] {
            let client = try_connect_via(&server.url, version.clone(), &[], &[("origin", origin)])
                .await
                .unwrap_or_else(|e| panic!("{version} with Origin {origin} refused: {e}"));
            list_and_echo(&client).await;
            client.cancel().await.expect("close");
        }
    }
}

#[tokio::test]
async fn required_origin_refuses_plain_clients_and_lets_allowed_pages_in() {
    let server = guarded(
        GuardLayer::loopback()
            .require_origin(true)
            .allow_origins(["https://app.example.com"]),
    );
    let response = post_json(&server.url, &initialize_body("2025-11-25"), &[]).await;
    assert_forbidden_jsonrpc(response, "no Origin").await;
    for version in BOTH_ERAS {
        let client = try_connect_via(
            &server.url,
            version.clone(),
            &[],
            &[("origin", "https://app.example.com")],
        )
        .await
        .unwrap_or_else(|e| panic!("{version}: allowed origin refused: {e}"));
        list_and_echo(&client).await;
        client.cancel().await.expect("close");
    }
}

#[tokio::test]
async fn public_host_allowlist_accepts_its_name_and_refuses_loopback_names() {
    let server = guarded(GuardLayer::new().allow_hosts(["mcp.example.com"]));
    let resolve = [("mcp.example.com", server.addr)];
    for version in BOTH_ERAS {
        let client = try_connect_via(
            &named_url(&server, "mcp.example.com"),
            version.clone(),
            &resolve,
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{version}: allowed host refused: {e}"));
        list_and_echo(&client).await;
        client.cancel().await.expect("close");
        let refused = try_connect_via(&server.url, version.clone(), &[], &[]).await;
        assert_refused_403(refused, "Host header is not allowed", &version);
    }
}
