//! Raw HTTP helpers (reqwest) for probing status codes, headers and bodies.

use std::time::Duration;

/// The `Accept` header MCP clients send on POST.
pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// A reqwest client for 127.0.0.1: no proxy from the environment, no redirects followed, a
/// 30 s overall safety timeout.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// POSTs `body` as JSON to `url` with `Content-Type: application/json` and
/// `Accept: application/json, text/event-stream`, plus `headers` (a header given here replaces
/// the default of the same name). Panics only if the request cannot be sent at all.
pub async fn post_json(
    url: &str,
    body: &serde_json::Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    post_raw(url, serde_json::to_vec(body).expect("json"), headers).await
}

/// Like [`post_json`] with a raw body (for malformed or oversized payloads).
pub async fn post_raw(url: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut map = reqwest::header::HeaderMap::new();
    map.insert(
        reqwest::header::CONTENT_TYPE,
        "application/json".parse().unwrap(),
    );
    map.insert(reqwest::header::ACCEPT, ACCEPT_BOTH.parse().unwrap());
    for (name, value) in headers {
        let name: reqwest::header::HeaderName = name.parse().expect("header name");
        map.insert(name, value.parse().expect("header value"));
    }
    http_client()
        .post(url)
        .headers(map)
        .body(body)
        .send()
        .await
        .expect("POST failed to send")
}

/// A legacy `initialize` request body (id 1) for `version`.
pub fn initialize_body(version: &str) -> serde_json::Value {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": { "name": "mcp-edge-tests", "version": "0" }
        }
    })
}

/// Performs a raw legacy handshake (`initialize` with 2025-11-25, then
/// `notifications/initialized`) and returns the `Mcp-Session-Id` the server assigned.
pub async fn raw_legacy_session(url: &str) -> String {
    let response = post_json(url, &initialize_body("2025-11-25"), &[]).await;
    assert!(
        response.status().is_success(),
        "initialize failed: {}",
        response.status()
    );
    let session = response
        .headers()
        .get("mcp-session-id")
        .expect("initialize response has Mcp-Session-Id")
        .to_str()
        .expect("ascii session id")
        .to_owned();
    // Drain the (SSE) body so the stream is released.
    let _ = response.bytes().await;
    let initialized = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = post_json(
        url,
        &initialized,
        &[
            ("mcp-session-id", &session),
            ("mcp-protocol-version", "2025-11-25"),
        ],
    )
    .await;
    assert_eq!(response.status(), 202, "notifications/initialized refused");
    session
}

/// The JSON-RPC messages in an SSE body (`data:` lines of every event), or the body itself
/// when it is plain JSON.
pub fn json_messages(content_type: Option<&str>, body: &[u8]) -> Vec<serde_json::Value> {
    let text = String::from_utf8_lossy(body);
    if content_type.is_some_and(|ct| ct.starts_with("text/event-stream")) {
        let mut out = Vec::new();
        for event in text.split("\n\n") {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if data.is_empty() {
                continue;
            }
            if let Ok(value) = serde_json::from_str(&data.join("\n")) {
                out.push(value);
            }
        }
        out
    } else {
        serde_json::from_str(&text).into_iter().collect()
    }
}

/// Reads a whole response and returns its JSON-RPC messages (see [`json_messages`]).
pub async fn response_messages(response: reqwest::Response) -> Vec<serde_json::Value> {
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.bytes().await.expect("read body");
    json_messages(content_type.as_deref(), &body)
}
