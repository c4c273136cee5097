//! `McpRequest::classify` with MCP headers, on stable, with the properties of the `classify`
//! fuzz targets (`fuzz/src/classify.rs`, included here): beyond never panicking and agreeing
//! with serde_json on what parses (also `tests/protocol_classify_props.rs`), what it reports
//! (method, target, arguments) is what serde_json reads, and a modern request it passes has
//! `Mcp-Method`/`Mcp-Name` headers that say the same.

#[path = "../fuzz/src/classify.rs"]
mod classify;

use http::{HeaderMap, HeaderValue, Method};
use mcp_edge::protocol::header::encode_value;
use proptest::prelude::*;

fn version() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(prop::sample::select(vec![
        "2025-03-26",
        "2025-11-25",
        "2026-07-28",
        "2099-01-01",
    ]))
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "tools/call",
        "resources/read",
        "prompts/get",
        "initialize",
        "ping",
        "tools/list",
    ])
}

/// A header: absent, what the body says (plain or encoded), or something else.
fn header(body_says: String) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(encode_value(&body_says).into_owned())),
        Just(Some(format!(
            "=?base64?{}?=",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &body_says)
        ))),
        "[ -~]{0,8}".prop_map(Some),
    ]
}

fn request() -> impl Strategy<Value = (HeaderMap, Vec<u8>)> {
    (method(), "\\PC{0,8}", version(), version(), any::<i64>(), any::<u16>(), any::<u8>())
        .prop_flat_map(|(method, name, header_version, meta_version, id, at, byte)| {
            (
                header(method.to_owned()),
                header(name.clone()),
                Just((method, name, header_version, meta_version, id, at, byte)),
            )
        })
        .prop_map(|(method_header, name_header, (method, name, hv, mv, id, at, byte))| {
            let key = if method == "resources/read" { "uri" } else { "name" };
            let mut params = serde_json::json!({ key: name, "arguments": {"a": [1, "b"]} });
            if let Some(v) = mv {
                params["_meta"] = serde_json::json!({"io.modelcontextprotocol/protocolVersion": v});
            }
            let body = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
            let mut body = serde_json::to_vec(&body).unwrap();
            // One byte in four bodies replaced.
            if at % 4 == 0 {
                let len = body.len();
                body[usize::from(at / 4) % len] = byte;
            }
            let mut headers = HeaderMap::new();
            let mut set = |name: &'static str, value: Option<String>| {
                if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                    headers.insert(name, value);
                }
            };
            set("mcp-protocol-version", hv.map(str::to_owned));
            set("mcp-method", method_header);
            set("mcp-name", name_header);
            (headers, body)
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1024,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn classify_reads_what_serde_json_reads_and_what_the_headers_say(
        (headers, body) in request()
    ) {
        classify::check(&Method::POST, &headers, &body);
    }

    #[test]
    fn classify_never_panics_on_bytes(
        body in prop::collection::vec(any::<u8>(), 0..128),
        get in any::<bool>(),
    ) {
        let method = if get { Method::GET } else { Method::POST };
        classify::check(&method, &HeaderMap::new(), &body);
    }
}
