//! `McpRequest::classify` on hostile input.
//!
//! - It never panics, whatever the method, headers and body.
//! - It never passes a POST body that serde_json (the server's parser, default settings)
//!   refuses, and such a body is always a `-32700`.
//! - What it reports agrees with serde_json's reading of the same body: the method, and the
//!   target name of `tools/call`, `prompts/get` and `resources/read`.
//! - A modern request it passes carries `Mcp-Method` (and `Mcp-Name` where required) headers
//!   that decode to what the body says.

use bytes::Bytes;
use http::{HeaderMap, Method};
use mcp_edge::protocol::header::{MCP_METHOD, MCP_NAME, decode_value};
use mcp_edge::protocol::{Era, McpRequest, Target};
use serde_json::Value;

/// Classifies and checks every property above. Panics on the first one that fails.
pub fn check(method: &Method, headers: &HeaderMap, body: &[u8]) {
    let bytes = Bytes::copy_from_slice(body);
    let ours = McpRequest::classify(method, headers, Some(&bytes));
    if method != Method::POST {
        return;
    }
    let serde = serde_json::from_slice::<Value>(body);
    let Ok(request) = ours else {
        if serde.is_err() {
            assert_eq!(ours.unwrap_err().code(), -32700, "{body:?}");
        }
        return;
    };
    let value = match serde {
        Ok(value) => value,
        Err(e) => panic!("classify passed what serde_json refuses ({e}): {body:?}"),
    };
    let Some(message) = request.message().filter(|_| !request.is_batch()) else {
        return;
    };
    let method = value.get("method").and_then(Value::as_str);
    assert_eq!(message.method(), method, "method of {body:?}");
    let params = value.get("params");
    let field = |name: &str| params.and_then(|p| p.get(name)).and_then(Value::as_str);
    match (method, message.target()) {
        (Some("tools/call"), Some(Target::Tool(name)))
        | (Some("prompts/get"), Some(Target::Prompt(name))) => {
            assert_eq!(Some(&**name), field("name"), "target of {body:?}");
        }
        (Some("resources/read"), Some(Target::Resource(uri))) => {
            assert_eq!(Some(&**uri), field("uri"), "target of {body:?}");
        }
        _ => {}
    }
    if let (Some(arguments), Some(expected)) =
        (message.arguments(), params.and_then(|p| p.get("arguments")))
    {
        let arguments: Value = serde_json::from_slice(arguments).expect("arguments are JSON");
        assert_eq!(&arguments, expected, "arguments of {body:?}");
    }
    if request.era() == Era::Modern && message.id().is_some() && method.is_some() {
        let decoded = |name: http::HeaderName| {
            headers
                .get(&name)
                .and_then(|v| decode_value(v.as_bytes()))
                .map(|v| v.into_owned())
        };
        let method_header = decoded(MCP_METHOD);
        assert_eq!(method_header.as_deref(), method, "Mcp-Method of {body:?}");
        if let (Some(Target::Tool(name)), Some("tools/call")) = (message.target(), method) {
            let name_header = decoded(MCP_NAME);
            assert_eq!(
                name_header.as_deref(),
                Some(&**name),
                "Mcp-Name of {body:?}"
            );
        }
    }
}
