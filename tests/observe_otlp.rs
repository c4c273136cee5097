//! `examples/otlp.rs` end to end: the example server exports its spans over OTLP/HTTP
//! (protobuf) to a receiver this test runs (an axum route decoding
//! `ExportTraceServiceRequest` with `opentelemetry-proto`), after real traffic: a stateless
//! `tools/call` whose `traceparent` header must become the span's parent, and a request the
//! guard refuses; on both span paths (`tracing-opentelemetry`, and `--direct`:
//! `AuditLayer::otel_spans`). SIGINT flushes the batch. It runs `target/<profile>/examples/otlp`:
//! `cargo test --all-features` builds it; for a filtered run,
//! `cargo build --all-features --example otlp` first.
#![cfg(feature = "otel")]

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{KillOnDrop, TestServer, example_binary, free_port, post_json, serve, skip_or_fail};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

/// An OTLP/HTTP traces receiver: keeps every span it is sent.
fn receiver() -> (TestServer, Arc<Mutex<Vec<Span>>>) {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let kept = spans.clone();
    let router = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let kept = kept.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                let received = request
                    .resource_spans
                    .into_iter()
                    .flat_map(|r| r.scope_spans)
                    .flat_map(|s| s.spans);
                kept.lock().unwrap().extend(received);
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    (serve(router), spans)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span
        .attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .clone()?;
    Some(match value.value? {
        Value::StringValue(s) => s,
        Value::IntValue(i) => i.to_string(),
        Value::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}

#[tokio::test]
async fn the_otlp_example_exports_message_spans_with_the_callers_parent() {
    exports_message_spans_with_the_callers_parent(&[]).await;
}

#[tokio::test]
async fn with_direct_the_otlp_example_exports_the_same_spans_without_tracing() {
    exports_message_spans_with_the_callers_parent(&["--direct"]).await;
}

/// Runs the example with `flags`, sends a traced call and a refused one, and checks what the
/// receiver got.
async fn exports_message_spans_with_the_callers_parent(flags: &[&str]) {
    let Some(binary) = example_binary("otlp") else {
        skip_or_fail("target/*/examples/otlp not built (cargo test --all-features builds it)");
        return;
    };
    let (collector, spans) = receiver();
    let bind: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(&binary)
        .args(["--bind", &bind.to_string()])
        .args(["--endpoint", &collector.url_for("/v1/traces")])
        .args(flags)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the otlp example");
    let mut server = KillOnDrop(child);
    let url = format!("http://{bind}/mcp");

    // A stateless 2026-07-28 tools/call, sent by a caller with a trace of its own.
    let call = json!({
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {
            "name": "echo", "arguments": {"text": "traced"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "otlp-test", "version": "0"}
            }
        }
    });
    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN}-01");
    let headers = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "echo"),
        ("traceparent", traceparent.as_str()),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        match common::http_client()
            .get(format!("http://{bind}/"))
            .send()
            .await
        {
            Ok(_) => break post_json(&url, &call, &headers).await.status(),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(error) => panic!("the otlp example did not start: {error}"),
        }
    };
    assert_eq!(status, 200);
    // The guard refuses a foreign Host: a span with error.type and a `refused` event.
    let refused = common::http_client()
        .post(&url)
        .header("host", "evil.example")
        .header("content-type", "application/json")
        .header("accept", common::ACCEPT_BOTH)
        .body(serde_json::to_vec(&call).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);

    // SIGINT: the example stops serving and flushes the batch before it exits.
    let sent = Command::new("kill")
        .args(["-INT", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the otlp example did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let spans = spans.lock().unwrap().clone();
    let call = spans
        .iter()
        .find(|s| s.name == "tools/call echo")
        .unwrap_or_else(|| panic!("no `tools/call echo` span in {spans:#?}"));
    assert_eq!(hex(&call.trace_id), TRACE_ID, "the caller's trace");
    assert_eq!(hex(&call.parent_span_id), PARENT_SPAN, "the caller's span");
    assert_eq!(call.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(
        attribute(call, "mcp.method.name").as_deref(),
        Some("tools/call")
    );
    assert_eq!(attribute(call, "gen_ai.tool.name").as_deref(), Some("echo"));
    assert_eq!(attribute(call, "jsonrpc.request.id").as_deref(), Some("7"));
    assert_eq!(
        attribute(call, "mcp.protocol.version").as_deref(),
        Some("2026-07-28")
    );
    assert!(call.end_time_unix_nano >= call.start_time_unix_nano);

    let refusal = spans
        .iter()
        .find(|s| attribute(s, "mcp_edge.outcome").as_deref() == Some("refused"))
        .unwrap_or_else(|| panic!("no refused span in {spans:#?}"));
    assert!(attribute(refusal, "error.type").is_some());
    assert!(
        refusal.events.iter().any(|e| e.name == "refused"),
        "{refusal:#?}"
    );
}
