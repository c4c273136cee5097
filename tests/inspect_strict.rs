//! Safe by default: the `McpEdge` stack in front of a real rmcp server refuses, with a JSON-RPC
//! error, every body the server's own JSON parser would refuse and every body the edge and the
//! server could read differently, and every request whose MCP headers contradict themselves.
//! An `initialize` is never refused over its `MCP-Protocol-Version` header (R33, R45).

mod common;

use common::*;
use mcp_edge::McpEdge;
use serde_json::json;

fn edge_server() -> TestServer {
    serve(rmcp_router().layer(McpEdge::builder()))
}

/// A `tools/call` of `echo` (id 7) with `arguments` as given, byte for byte.
fn echo_call(arguments: &str) -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"echo","arguments":{arguments}}}}}"#
    )
    .into_bytes()
}

/// POSTs `body` inside `session`, with `extra` headers appended (so a name may repeat).
async fn post_in_session(
    url: &str,
    session: &str,
    body: Vec<u8>,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = http_client()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT_BOTH)
        .body(body);
    let mut named_session = false;
    let mut named_version = false;
    for (name, value) in extra {
        named_session |= name.eq_ignore_ascii_case("mcp-session-id");
        named_version |= name.eq_ignore_ascii_case("mcp-protocol-version");
        request = request.header(*name, *value);
    }
    if !named_session {
        request = request.header("mcp-session-id", session);
    }
    if !named_version {
        request = request.header("mcp-protocol-version", "2025-11-25");
    }
    request.send().await.expect("POST")
}

/// Status and JSON-RPC error of a refusal; panics unless the body is a JSON-RPC error.
async fn refusal(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("body");
    assert_eq!(content_type, "application/json", "{status}: {text}");
    let body: serde_json::Value = serde_json::from_str(&text).expect("JSON-RPC error body");
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert!(body["error"]["code"].is_i64(), "{body}");
    (status, body)
}

/// The echo tool's answer in a successful `tools/call` response.
async fn echoed(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    let messages = response_messages(response).await;
    let last = messages.last().expect("a JSON-RPC response");
    last["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("echo result: {last}"))
        .to_owned()
}

#[tokio::test]
async fn bodies_the_server_cannot_parse_get_400_parse_error() {
    let server = edge_server();
    let session = raw_legacy_session(&server.url).await;
    let deep = format!(
        r#"{{"text":"x","deep":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("nesting 100,000 deep", echo_call(&deep)),
        ("1e999999", echo_call(r#"{"text":"x","n":1e999999}"#)),
        ("-1e400", echo_call(r#"{"text":"x","n":-1e400}"#)),
        ("lone leading surrogate", echo_call(r#"{"text":"\ud800"}"#)),
        ("lone trailing surrogate", echo_call(r#"{"text":"a\udc00b"}"#)),
        ("surrogate in a key", echo_call(r#"{"text":"x","\ud800":1}"#)),
        (
            "surrogate in an unread field",
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/list","x-note":"\udbff"}"#.to_vec(),
        ),
        (
            "range in _meta",
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"_meta":{"com.example/n":9e9999}}}"#
                .to_vec(),
        ),
    ];
    for (what, body) in cases {
        assert!(
            serde_json::from_slice::<serde_json::Value>(&body).is_err(),
            "{what}: serde_json refuses it"
        );
        let (status, error) =
            refusal(post_in_session(&server.url, &session, body, &[]).await).await;
        assert_eq!(status, 400, "{what}: {error}");
        assert_eq!(error["error"]["code"], -32700, "{what}: {error}");
    }
    // The session is still good.
    let response =
        post_in_session(&server.url, &session, echo_call(r#"{"text":"after"}"#), &[]).await;
    assert_eq!(echoed(response).await, "after");
}

#[tokio::test]
async fn what_serde_json_accepts_still_reaches_the_server() {
    let server = edge_server();
    let session = raw_legacy_session(&server.url).await;
    // The message, params and arguments objects take three of serde_json's 127 open levels.
    let nested = |levels: usize| {
        echo_call(&format!(
            r#"{{"text":"deep enough","deep":{}{}}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        ))
    };
    let at_limit = nested(127 - 3);
    let past_limit = nested(128 - 3);
    assert!(serde_json::from_slice::<serde_json::Value>(&at_limit).is_ok());
    assert!(serde_json::from_slice::<serde_json::Value>(&past_limit).is_err());
    let response = post_in_session(&server.url, &session, at_limit, &[]).await;
    assert_eq!(echoed(response).await, "deep enough");
    let (status, error) =
        refusal(post_in_session(&server.url, &session, past_limit, &[]).await).await;
    assert_eq!(
        (status, error["error"]["code"].as_i64()),
        (400, Some(-32700))
    );

    for arguments in [
        r#"{"text":"\ud83d\ude00 paired","n":1e308}"#,
        r#"{"text":"big","n":123456789012345678901234567890,"m":-1e-99999}"#,
        r#"{"text":"escapes \" \\ \/ \b \f \n \r \t \u00e9"}"#,
    ] {
        let body = echo_call(arguments);
        assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());
        let response = post_in_session(&server.url, &session, body, &[]).await;
        assert_eq!(response.status(), 200, "{arguments}");
        echoed(response).await;
    }
}

#[tokio::test]
async fn bodies_the_edge_and_the_server_could_read_differently_get_400_invalid_request() {
    let server = edge_server();
    let session = raw_legacy_session(&server.url).await;
    let cases: [(&str, &str); 14] = [
        (
            "repeated argument",
            r#""params":{"name":"echo","arguments":{"text":"a","text":"b"}}"#,
        ),
        (
            "repeated key deep in arguments",
            r#""params":{"name":"echo","arguments":{"text":"a","o":[{"k":1,"k":2}]}}"#,
        ),
        (
            "repeated unread key",
            r#""params":{"name":"echo","arguments":{"text":"a"}},"x":1,"x":2"#,
        ),
        (
            "repeated _meta key",
            r#""params":{"name":"echo","arguments":{"text":"a"},"_meta":{"com.example/k":1,"com.example/k":2}}"#,
        ),
        (
            "Method beside method",
            r#""Method":"tools/list","params":{"name":"echo","arguments":{"text":"a"}}"#,
        ),
        (
            "METHOD beside method",
            r#""METHOD":"tools/list","params":{"name":"echo","arguments":{"text":"a"}}"#,
        ),
        (
            "NUL-suffixed method",
            r#""method\u0000":"tools/list","params":{"name":"echo","arguments":{"text":"a"}}"#,
        ),
        (
            "Params",
            r#""Params":{"name":"whoami"},"params":{"name":"echo","arguments":{"text":"a"}}"#,
        ),
        (
            "Id",
            r#""Id":8,"params":{"name":"echo","arguments":{"text":"a"}}"#,
        ),
        (
            "Name",
            r#""params":{"name":"echo","Name":"whoami","arguments":{"text":"a"}}"#,
        ),
        (
            "name\\u0000",
            r#""params":{"name":"echo","name\u0000":"whoami","arguments":{"text":"a"}}"#,
        ),
        (
            "Arguments",
            r#""params":{"name":"echo","Arguments":{"text":"b"},"arguments":{"text":"a"}}"#,
        ),
        (
            "_META",
            r#""params":{"name":"echo","arguments":{"text":"a"},"_META":{}}"#,
        ),
        (
            "Uri in ref",
            r#""params":{"name":"echo","arguments":{"text":"a"},"ref":{"type":"ref/resource","uri":"a","URI":"b"}}"#,
        ),
    ];
    for (what, fields) in cases {
        let body = format!(r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call",{fields}}}"#);
        let response = post_in_session(&server.url, &session, body.into_bytes(), &[]).await;
        let (status, error) = refusal(response).await;
        assert_eq!(status, 400, "{what}: {error}");
        assert_eq!(error["error"]["code"], -32600, "{what}: {error}");
        assert_eq!(error["id"], 7, "{what}: {error}");
    }
    // Keys that only look alike, and the same key in different objects, are fine.
    let body = echo_call(r#"{"text":"ok","Text":"other","name":"x","o":{"name":"y"}}"#);
    let response = post_in_session(&server.url, &session, body, &[]).await;
    assert_eq!(echoed(response).await, "ok");
}

#[tokio::test]
async fn a_content_encoding_other_than_identity_gets_415_with_jsonrpc_body() {
    let server = edge_server();
    let session = raw_legacy_session(&server.url).await;
    for encoding in ["gzip", "br", "deflate", "identity, gzip", "x-custom"] {
        // Not gzip at all: the edge must not read it as plain JSON.
        let body = echo_call(r#"{"text":"garbage"}"#);
        let response = post_in_session(
            &server.url,
            &session,
            body,
            &[("content-encoding", encoding)],
        )
        .await;
        let (status, error) = refusal(response).await;
        assert_eq!(status, 415, "{encoding}: {error}");
        assert_eq!(error["error"]["code"], -32600, "{encoding}");
    }
    // An initialize too: 415 is not read as "old transport" (R45).
    let response = post_raw(
        &server.url,
        serde_json::to_vec(&initialize_body("2025-11-25")).unwrap(),
        &[("content-encoding", "gzip")],
    )
    .await;
    assert_eq!(refusal(response).await.0, 415);
    for identity in ["identity", "Identity"] {
        let response = post_in_session(
            &server.url,
            &session,
            echo_call(r#"{"text":"plain"}"#),
            &[("content-encoding", identity)],
        )
        .await;
        assert_eq!(echoed(response).await, "plain", "{identity}");
    }
}

#[tokio::test]
async fn duplicate_mcp_headers_with_different_values_get_400() {
    let server = edge_server();
    let session = raw_legacy_session(&server.url).await;
    let other = raw_legacy_session(&server.url).await;
    let call = || echo_call(r#"{"text":"dup"}"#);
    let conflicting: [&[(&str, &str)]; 3] = [
        &[
            ("mcp-protocol-version", "2025-11-25"),
            ("mcp-protocol-version", "2025-06-18"),
        ],
        &[("mcp-session-id", &session), ("mcp-session-id", &other)],
        &[
            ("mcp-protocol-version", "2025-11-25"),
            ("mcp-protocol-version", "2031-01-01"),
        ],
    ];
    for headers in conflicting {
        let response = post_in_session(&server.url, &session, call(), headers).await;
        let (status, error) = refusal(response).await;
        assert_eq!(status, 400, "{headers:?}: {error}");
        assert_eq!(error["error"]["code"], -32000, "{headers:?}: {error}");
        assert_eq!(error["id"], 7, "{headers:?}");
    }
    // A GET stream with two session ids is refused the same way.
    let response = http_client()
        .get(&server.url)
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", &session)
        .header("mcp-session-id", &other)
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(response).await.0, 400);
    // The same value twice says one thing: it passes.
    let same: [&[(&str, &str)]; 2] = [
        &[
            ("mcp-protocol-version", "2025-11-25"),
            ("mcp-protocol-version", "2025-11-25"),
        ],
        &[("mcp-session-id", &session), ("mcp-session-id", &session)],
    ];
    for headers in same {
        let response = post_in_session(&server.url, &session, call(), headers).await;
        assert_eq!(echoed(response).await, "dup", "{headers:?}");
    }
}

#[tokio::test]
async fn initialize_is_never_refused_over_its_protocol_version_header() {
    let server = edge_server();
    let cases: [&[(&str, &str)]; 5] = [
        &[("mcp-protocol-version", "garbage")],
        &[("mcp-protocol-version", "2031-01-01")],
        &[("mcp-protocol-version", "2025-06-18")],
        &[("mcp-protocol-version", "2025-11-25, 2025-06-18")],
        &[
            ("mcp-protocol-version", "2025-11-25"),
            ("mcp-protocol-version", "2025-03-26"),
        ],
    ];
    for headers in cases {
        let mut request = http_client()
            .post(&server.url)
            .header("content-type", "application/json")
            .header("accept", ACCEPT_BOTH)
            .body(serde_json::to_vec(&initialize_body("2025-11-25")).unwrap());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{headers:?}");
        assert!(
            response.headers().contains_key("mcp-session-id"),
            "{headers:?}"
        );
        let messages = response_messages(response).await;
        assert_eq!(
            messages.last().unwrap()["result"]["protocolVersion"],
            json!("2025-11-25"),
            "{headers:?}"
        );
    }
}
