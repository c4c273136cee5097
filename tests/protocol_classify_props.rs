//! Properties of `McpRequest::classify` on hostile input: it never panics, whatever bytes
//! come, and it never passes a body that serde_json (the parser of the server behind, with its
//! default settings) would refuse; such a body is always a `-32700`.

use bytes::Bytes;
use http::{HeaderMap, Method};
use mcp_edge::protocol::McpRequest;
use proptest::prelude::*;

/// Scalars, the tricky ones included: numbers out of `f64` range, lone and paired surrogates.
fn scalar() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "0",
        "-1",
        "1e308",
        "1e309",
        "-1e400",
        "1.5e-400",
        "123456789012345678901234567890",
        "1E+2",
        "true",
        "null",
        r#""a""#,
        r#""é""#,
        r#""\ud800""#,
        r#""\udc00""#,
        r#""\ud83d\ude00""#,
        r#""\ud800\u0041""#,
        r#""x\u0000""#,
    ])
    .prop_map(str::to_owned)
}

/// Object keys: plain ones, the ones the edge reads, their look-alikes, escaped spellings.
fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "a",
        "b",
        "\\u0061",
        "name",
        "Name",
        "uri",
        "URI",
        "id",
        "method",
        "METHOD",
        "method\\u0000",
        "arguments",
        "_meta",
        "params",
        "progressToken",
        "io.modelcontextprotocol/protocolVersion",
        "\\ud800",
    ])
    .prop_map(|k| format!("\"{k}\""))
}

/// Any JSON-ish value: nested arrays and objects of the above, keys possibly repeated.
fn value() -> impl Strategy<Value = String> {
    let nested = (100usize..140).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n)));
    let tree = scalar().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((key(), inner), 0..4).prop_map(|members| {
                let members: Vec<String> =
                    members.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    });
    prop_oneof![4 => tree, 1 => nested]
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "tools/call",
        "resources/read",
        "completion/complete",
        "initialize",
        "ping",
    ])
}

/// A message that is nearly an MCP request, with values and keys from above in the places the
/// edge reads, skips, or slices.
fn message() -> impl Strategy<Value = String> {
    (method(), value(), key(), value(), key(), value()).prop_map(
        |(method, arguments, k1, v1, k2, v2)| {
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{{"name":"echo","uri":"u","arguments":{arguments},{k1}:{v1}}},{k2}:{v2}}}"#
            )
        },
    )
}

/// One message or a batch of them.
fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => message(),
        1 => prop::collection::vec(message(), 1..3).prop_map(|ms| format!("[{}]", ms.join(","))),
    ]
}

fn classify(bytes: &[u8]) -> Result<McpRequest, mcp_edge::protocol::ProtocolError> {
    McpRequest::classify(
        &Method::POST,
        &HeaderMap::new(),
        Some(&Bytes::copy_from_slice(bytes)),
    )
}

/// The property itself: accepted by classify ⇒ accepted by serde_json; refused by serde_json
/// ⇒ a parse error.
fn agrees_with_serde_json(bytes: &[u8]) -> Result<(), TestCaseError> {
    let ours = classify(bytes);
    let serde = serde_json::from_slice::<serde_json::Value>(bytes);
    if ours.is_ok() {
        prop_assert!(
            serde.is_ok(),
            "classify passed what serde_json refuses: {serde:?}"
        );
    }
    if serde.is_err() {
        let code = ours.as_ref().err().map(|e| e.code());
        prop_assert_eq!(code, Some(-32700), "{:?}", ours);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic_and_agree_with_serde_json(
        bytes in prop::collection::vec(any::<u8>(), 0..256)
    ) {
        agrees_with_serde_json(&bytes)?;
    }

    #[test]
    fn near_mcp_bodies_agree_with_serde_json(body in body()) {
        agrees_with_serde_json(body.as_bytes())?;
    }

    #[test]
    fn mutated_bodies_never_panic_and_agree_with_serde_json(
        body in message(),
        at in any::<prop::sample::Index>(),
        byte in prop::sample::select(b"\"\\{}[],:0e-u \x00\xff".to_vec()),
    ) {
        let mut bytes = body.into_bytes();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        agrees_with_serde_json(&bytes)?;
    }
}
