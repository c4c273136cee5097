//! InspectLayer in front of a real rmcp server, reached over TCP by real clients: both eras
//! work through it, every refusal it makes has the right status and JSON-RPC body, and the
//! server receives each body byte for byte as sent.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use mcp_edge::inspect::InspectLayer;
use mcp_edge::protocol::McpRequest;
use rmcp::model::ProtocolVersion;
use serde_json::json;

fn inspected() -> TestServer {
    serve(rmcp_router().layer(InspectLayer::new().max_body_bytes(64 * 1024)))
}

async fn full_round(client: &Client) {
    let tools = client.list_all_tools().await.expect("tools/list");
    assert_eq!(tools.len(), 3);
    let echoed = call_tool(client, "echo", json!({"text": "through the edge"}))
        .await
        .expect("echo");
    assert_eq!(text_of(&echoed), "through the edge");
    let (counted, progress) =
        call_tool_with_progress(client, "slow_count", json!({"n": 4, "delay_ms": 20}), 4).await;
    assert_eq!(text_of(&counted.expect("slow_count")), "counted to 4");
    let steps: Vec<f64> = progress.iter().map(|p| p.progress).collect();
    assert_eq!(steps, [1.0, 2.0, 3.0, 4.0]);
}

#[tokio::test]
async fn legacy_client_works_through_inspect_including_delete() {
    let server = inspected();
    let client = legacy_client(&server.url).await;
    assert_eq!(
        client.peer_info().unwrap().protocol_version,
        ProtocolVersion::V_2025_11_25
    );
    full_round(&client).await;
    client.cancel().await.expect("close (DELETE)");

    // DELETE by hand, then the session is gone on the server.
    let session = raw_legacy_session(&server.url).await;
    let response = http_client()
        .delete(&server.url)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let response = post_json(
        &server.url,
        &json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}),
        &[
            ("mcp-session-id", &session),
            ("mcp-protocol-version", "2025-11-25"),
        ],
    )
    .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn modern_client_works_through_inspect() {
    let server = inspected();
    let client = modern_client(&server.url).await;
    assert_eq!(
        client.peer_info().unwrap().protocol_version,
        ProtocolVersion::V_2026_07_28
    );
    full_round(&client).await;
    client.cancel().await.expect("close");
}

async fn error_of(response: reqwest::Response) -> (u16, String, serde_json::Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: serde_json::Value = response.json().await.expect("JSON-RPC error body");
    assert_eq!(body["jsonrpc"], "2.0");
    (status, content_type, body)
}

#[tokio::test]
async fn wrong_content_type_gets_415_with_jsonrpc_body() {
    let server = inspected();
    let response = post_raw(
        &server.url,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_vec(),
        &[("content-type", "text/plain")],
    )
    .await;
    let (status, content_type, body) = error_of(response).await;
    assert_eq!(status, 415);
    assert_eq!(content_type, "application/json");
    assert_eq!(body["error"]["code"], -32600);
}

#[tokio::test]
async fn oversized_body_gets_413_declared_or_chunked() {
    let server = inspected();
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{}"}}}}}}"#,
        "x".repeat(100 * 1024)
    );
    let (status, _, body) =
        error_of(post_raw(&server.url, big.clone().into_bytes(), &[]).await).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], -32600);

    // Chunked, no Content-Length: refused while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .into_bytes()
        .chunks(4096)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let response = http_client()
        .post(&server.url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT_BOTH)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn malformed_json_gets_400_parse_error_without_id() {
    let server = inspected();
    let (status, _, body) =
        error_of(post_raw(&server.url, b"{\"jsonrpc\": \"2.0\", ".to_vec(), &[]).await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], -32700);
    assert!(body.get("id").is_none(), "{body}");
}

#[tokio::test]
async fn bad_envelope_gets_400_invalid_request_with_the_id() {
    let server = inspected();
    let response = post_json(
        &server.url,
        &json!({"jsonrpc":"1.0","id":"req-7","method":"tools/list"}),
        &[],
    )
    .await;
    let (status, _, body) = error_of(response).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], -32600);
    assert_eq!(body["id"], "req-7");
}

#[tokio::test]
async fn unsupported_protocol_version_gets_400_with_supported_list() {
    let server = inspected();
    let response = post_json(
        &server.url,
        &json!({"jsonrpc":"2.0","id":11,"method":"tools/list"}),
        &[("mcp-protocol-version", "2030-01-01")],
    )
    .await;
    let (status, _, body) = error_of(response).await;
    assert_eq!(status, 400);
    assert_eq!(body["id"], 11);
    assert_eq!(body["error"]["code"], -32022);
    assert_eq!(body["error"]["data"]["requested"], "2030-01-01");
    assert!(
        body["error"]["data"]["supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "2025-11-25")
    );
}

#[tokio::test]
async fn modern_header_mismatch_gets_400_32020_with_the_id() {
    let server = inspected();
    let call = json!({
        "jsonrpc":"2.0","id":"m-1","method":"tools/call",
        "params":{"name":"echo","arguments":{"text":"x"},"_meta":{
            "io.modelcontextprotocol/protocolVersion":"2026-07-28",
            "io.modelcontextprotocol/clientCapabilities":{}}}
    });
    for headers in [
        vec![
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/list"),
            ("mcp-name", "echo"),
        ],
        vec![
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "whoami"),
        ],
        vec![("mcp-protocol-version", "2026-07-28"), ("mcp-name", "echo")],
        vec![
            ("mcp-protocol-version", "2025-11-25"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
        ],
    ] {
        let (status, _, body) = error_of(post_json(&server.url, &call, &headers).await).await;
        assert_eq!(status, 400, "{headers:?}");
        assert_eq!(body["error"]["code"], -32020, "{headers:?}: {body}");
        assert_eq!(body["id"], "m-1");
    }
    // Padded and base64-encoded values are decoded before comparing.
    let response = post_json(
        &server.url,
        &call,
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", " tools/call "),
            ("mcp-name", "=?base64?ZWNobw==?="),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let messages = response_messages(response).await;
    assert_eq!(
        messages.last().unwrap()["result"]["content"][0]["text"],
        "x"
    );
}

#[tokio::test]
async fn batch_in_a_version_without_batches_gets_400() {
    let server = inspected();
    let batch = json!([
        {"jsonrpc":"2.0","id":1,"method":"tools/list"},
        {"jsonrpc":"2.0","id":2,"method":"tools/list"}
    ]);
    let (status, _, body) = error_of(
        post_json(
            &server.url,
            &batch,
            &[("mcp-protocol-version", "2025-06-18")],
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], -32600);
}

#[tokio::test]
async fn server_receives_the_body_byte_for_byte_and_the_classification() {
    type Seen = Vec<(Vec<u8>, Option<String>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new()
        .route(
            "/mcp",
            axum::routing::post(
                move |axum::extract::Extension(mcp): axum::extract::Extension<Arc<McpRequest>>,
                      body: axum::body::Bytes| {
                    let record = record.clone();
                    async move {
                        record
                            .lock()
                            .unwrap()
                            .push((body.to_vec(), mcp.method().map(str::to_owned)));
                        axum::Json(json!({"jsonrpc":"2.0","id":1,"result":{}}))
                    }
                },
            ),
        )
        .layer(InspectLayer::new());
    let server = serve(app);
    // Odd spacing, escapes, unknown fields, key order: nothing is normalised.
    let body = "{ \"params\" : {\"name\":\"ech\\u006f\", \"arguments\":{\"t\":\"\\ud83d\\ude00 é\"},\"x-extra\":[1,2.50,null]},\n\"method\":\"tools/call\",\t\"id\":1 , \"jsonrpc\":\"2.0\"}";
    let response = post_raw(&server.url, body.as_bytes().to_vec(), &[]).await;
    assert_eq!(response.status(), 200);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, body.as_bytes());
    assert_eq!(seen[0].1.as_deref(), Some("tools/call"));
}
