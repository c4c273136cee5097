//! `McpRequest::classify` on near-valid JSON-RPC: a message built from arbitrary parts (the
//! methods, names, ids, `_meta` and headers the edge reads), written as JSON, then a few
//! arbitrary byte edits (see `mcp_edge_fuzz::classify`).
#![no_main]

use arbitrary::Arbitrary;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use mcp_edge::protocol::header::encode_value;
use serde_json::{Map, Value, json};

const METHODS: &[&str] = &[
    "tools/call",
    "tools/list",
    "resources/read",
    "prompts/get",
    "completion/complete",
    "initialize",
    "notifications/initialized",
    "ping",
    "tasks/get",
    "subscriptions/listen",
];
const VERSIONS: &[&str] = &[
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
    "2099-01-01",
];

#[derive(Debug, Arbitrary)]
enum Id {
    None,
    Number(i64),
    Float(f64),
    Text(String),
    Null,
}

#[derive(Debug, Arbitrary)]
enum Header {
    /// The value the body implies, plain or in the base64 form.
    Matching {
        base64: bool,
    },
    Other(String),
    Absent,
    Twice(String),
}

#[derive(Debug, Arbitrary)]
struct Message {
    id: Id,
    method: u8,
    other_method: Option<String>,
    name: String,
    arguments: Option<Vec<(String, i32)>>,
    meta_version: Option<u8>,
    progress_token: Option<i64>,
    extra: Option<(String, String)>,
    jsonrpc: Option<String>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    messages: Vec<Message>,
    batch: bool,
    version_header: Option<u8>,
    method_header: Header,
    name_header: Header,
    edits: Vec<(u16, u8)>,
}

fn render(m: &Message) -> (Value, String, String) {
    let method = match &m.other_method {
        Some(other) if m.method >= 0xf0 => other.clone(),
        _ => METHODS[usize::from(m.method) % METHODS.len()].to_owned(),
    };
    let mut object = Map::new();
    object.insert(
        "jsonrpc".into(),
        json!(m.jsonrpc.as_deref().unwrap_or("2.0")),
    );
    match &m.id {
        Id::None => {}
        Id::Number(n) => drop(object.insert("id".into(), json!(n))),
        Id::Float(f) => drop(object.insert("id".into(), json!(f))),
        Id::Text(s) => drop(object.insert("id".into(), json!(s))),
        Id::Null => drop(object.insert("id".into(), Value::Null)),
    }
    object.insert("method".into(), json!(method));
    let mut params = Map::new();
    let key = if method == "resources/read" {
        "uri"
    } else {
        "name"
    };
    params.insert(key.into(), json!(m.name));
    if let Some(arguments) = &m.arguments {
        let arguments: Map<String, Value> = arguments
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        params.insert("arguments".into(), Value::Object(arguments));
    }
    let mut meta = Map::new();
    if let Some(v) = m.meta_version {
        let version = VERSIONS[usize::from(v) % VERSIONS.len()];
        meta.insert(
            "io.modelcontextprotocol/protocolVersion".into(),
            json!(version),
        );
        if method == "initialize" {
            params.insert("protocolVersion".into(), json!(version));
        }
    }
    if let Some(token) = m.progress_token {
        meta.insert("progressToken".into(), json!(token));
    }
    if !meta.is_empty() {
        params.insert("_meta".into(), Value::Object(meta));
    }
    if let Some((k, v)) = &m.extra {
        params.insert(k.clone(), json!(v));
    }
    object.insert("params".into(), Value::Object(params));
    (Value::Object(object), method, m.name.clone())
}

fn header(headers: &mut HeaderMap, name: &'static str, how: &Header, matching: &str) {
    let name = HeaderName::from_static(name);
    let value = |text: &str| HeaderValue::from_str(text).ok();
    match how {
        Header::Matching { base64: false } => {
            if let Some(v) = value(&encode_value(matching)) {
                headers.insert(name, v);
            }
        }
        Header::Matching { base64: true } => {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD.encode(matching);
            if let Some(v) = value(&format!("=?base64?{b64}?=")) {
                headers.insert(name, v);
            }
        }
        Header::Other(text) => {
            if let Some(v) = value(text) {
                headers.insert(name, v);
            }
        }
        Header::Absent => {}
        Header::Twice(text) => {
            if let (Some(a), Some(b)) = (value(&encode_value(matching)), value(text)) {
                headers.append(name.clone(), a);
                headers.append(name, b);
            }
        }
    }
}

fuzz_target!(|input: Input| {
    if input.messages.is_empty() || input.messages.len() > 8 {
        return;
    }
    let rendered: Vec<(Value, String, String)> = input.messages.iter().map(render).collect();
    let value = if input.batch {
        Value::Array(rendered.iter().map(|(v, _, _)| v.clone()).collect())
    } else {
        rendered[0].0.clone()
    };
    let mut body = serde_json::to_vec(&value).unwrap();
    for &(at, byte) in input.edits.iter().take(4) {
        if !body.is_empty() {
            let len = body.len();
            body[usize::from(at) % len] = byte;
        }
    }
    let (_, method, name) = &rendered[0];
    let mut headers = HeaderMap::new();
    if let Some(v) = input.version_header {
        let version = VERSIONS[usize::from(v) % VERSIONS.len()];
        headers.insert("mcp-protocol-version", HeaderValue::from_static(version));
    }
    header(&mut headers, "mcp-method", &input.method_header, method);
    header(&mut headers, "mcp-name", &input.name_header, name);
    mcp_edge_fuzz::classify::check(&Method::POST, &headers, &body);
});
