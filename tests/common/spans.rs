//! What tests/observe_spans.rs (spans through tracing-opentelemetry) and
//! tests/observe_otel_spans.rs (`OtelSpans`, straight to the SDK) share: the trace context
//! they send, the requests and answers they build, and the span a `tools/call` must give on
//! either path. Included by path (`#[path = "common/spans.rs"] mod spans;`), not through
//! `common`, so other tests do not build it.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use mcp_edge::EdgeBody;
use mcp_edge::audit::CountingBody;
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};
use opentelemetry::{Key, Value};
use opentelemetry_sdk::trace::SpanData;

/// The request the inner service sees behind audit and inspect.
pub type Inner = Request<EdgeBody<CountingBody<Full<Bytes>>>>;

/// The caller's trace and span ids (W3C trace context).
pub const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const PARENT: &str = "00f067aa0ba902b7";

pub fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == Key::from(key.to_owned()))
        .map(|kv| &kv.value)
}

pub fn str_attr(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}

pub fn post(body: &'static str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut request = Request::post("/mcp")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

pub fn json(body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

/// The span of a successful `tools/call echo` (id 7, 2025-11-25) sent with a `traceparent`
/// of [`TRACE`]/[`PARENT`]: its name, kind, remote parent, MCP attributes and status.
pub fn assert_call_span(span: &SpanData) {
    assert_eq!(span.name, "tools/call echo");
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(
        span.span_context.trace_id(),
        TraceId::from_hex(TRACE).unwrap()
    );
    assert_eq!(span.parent_span_id, SpanId::from_hex(PARENT).unwrap());
    assert!(span.parent_span_is_remote);
    assert_eq!(
        str_attr(span, "mcp.method.name").as_deref(),
        Some("tools/call")
    );
    assert_eq!(str_attr(span, "gen_ai.tool.name").as_deref(), Some("echo"));
    assert_eq!(
        str_attr(span, "gen_ai.operation.name").as_deref(),
        Some("execute_tool")
    );
    assert_eq!(str_attr(span, "jsonrpc.request.id").as_deref(), Some("7"));
    assert_eq!(
        str_attr(span, "mcp.protocol.version").as_deref(),
        Some("2025-11-25")
    );
    assert_eq!(
        str_attr(span, "network.protocol.name").as_deref(),
        Some("http")
    );
    assert_eq!(
        str_attr(span, "mcp_edge.outcome").as_deref(),
        Some("success")
    );
    assert_eq!(
        attr(span, "http.response.status_code"),
        Some(&Value::I64(200))
    );
    assert_eq!(attr(span, "error.type"), None);
    assert_eq!(span.status, Status::Unset);
}
