//! Sinks: the JSON-lines file never holds a secret; the hash chain verifies and catches
//! edits; a sink that never returns (or fails) never holds up or fails a request; the tracing
//! sink uses the OpenTelemetry names.

#[path = "common/audit.rs"]
mod audit_fixtures;
mod common;

use std::io::Write as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use audit_fixtures::{Recorder, connect_info};
use mcp_edge::audit::chain::{BrokenKind, ChainError, verify_chain};
use mcp_edge::audit::{
    AuditLayer, AuditSink, Capture, ChannelSink, JsonLinesSink, REDACTED, TracingSink,
};
use mcp_edge::inspect::InspectLayer;
use serde_json::{Value, json};
use tower::ServiceBuilder;

const TOKEN: &str = "tok-SECRET-7f3a9c";
const COOKIE_VALUE: &str = "cookie-SECRET-42x";
const PARAM_VALUE: &str = "param-SECRET-eu9";
const DPOP: &str = "dpop-SECRET-proof";

fn json_rmcp() -> common::RmcpService {
    common::rmcp_service_with(
        common::rmcp_config()
            .with_json_response(true)
            .with_legacy_session_mode(false),
    )
}

fn serve_with<K: mcp_edge::audit::AuditSink>(layer: AuditLayer<K>) -> common::TestServer {
    let svc = ServiceBuilder::new()
        .layer(layer.peer_addr(connect_info))
        .layer(InspectLayer::new())
        .service(json_rmcp());
    common::serve_service(svc)
}

fn call(id: i64, tool: &str, args: Value) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":args}})
}

const V: (&str, &str) = ("mcp-protocol-version", "2025-06-18");

/// Sends requests carrying every kind of secret, through every way a secret could be echoed
/// back (tool results, error messages), and returns how many events to expect.
async fn send_secrets(server: &common::TestServer) -> usize {
    let auth = format!("Bearer {TOKEN}");
    let cookie = format!("sid={COOKIE_VALUE}; theme=dark");
    let headers = [
        V,
        ("authorization", auth.as_str()),
        ("cookie", cookie.as_str()),
        ("mcp-param-region", PARAM_VALUE),
        ("dpop", DPOP),
    ];
    // A real rmcp client sending the token on every request (2026-07-28: JSON responses).
    let client = common::modern_client_with_auth(&server.url, &auth).await;
    let echoed = common::call_tool(&client, "echo", json!({ "text": TOKEN }))
        .await
        .unwrap();
    assert_eq!(common::text_of(&echoed), TOKEN);
    client.cancel().await.unwrap();
    // Each secret echoed by a tool result.
    for (i, secret) in [TOKEN, COOKIE_VALUE, PARAM_VALUE, DPOP].iter().enumerate() {
        let body = call(
            10 + i as i64,
            "echo",
            json!({ "text": secret, "password": "hunter2" }),
        );
        let response = common::post_json(&server.url, &body, &headers).await;
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert!(
            text.contains(secret),
            "the client does get its echo: {text}"
        );
    }
    // A secret in an error message (unknown tool named after it).
    let response = common::post_json(&server.url, &call(20, TOKEN, json!({})), &headers).await;
    let _ = response.bytes().await;
    // discover + echo (modern) + 4 echoes + 1 error.
    2 + 4 + 1
}

fn assert_no_secret(text: &str) {
    for secret in [TOKEN, COOKIE_VALUE, PARAM_VALUE, DPOP, "hunter2"] {
        assert!(
            !text.contains(secret),
            "audit output contains the secret {secret:?}:\n{text}"
        );
    }
}

#[tokio::test]
async fn json_lines_file_never_holds_a_token_cookie_or_mcp_param_value() {
    let dir = common::TempDir::new("audit-secrets");
    let path = dir.path().join("audit.jsonl");
    let sink = JsonLinesSink::open(&path).await.unwrap();
    // Capture on (the riskier setting), with a pointer redaction.
    let layer =
        AuditLayer::new(sink.clone()).capture(Capture::arguments_and_results().redact("/password"));
    let server = serve_with(layer);
    let expected = send_secrets(&server).await;
    // Wait for all events to be emitted, then flush.
    for _ in 0..100 {
        sink.flush().await;
        if sink.written() as usize >= expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    sink.shutdown().await;
    let text = std::fs::read_to_string(&path).unwrap();
    assert_no_secret(&text);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), expected, "{text}");
    assert_eq!(sink.dropped(), 0);
    // Capture did run: arguments and results are there, redacted.
    let captured: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("gen_ai.tool.call.arguments").is_some())
        .collect();
    assert!(captured.len() >= 5, "{text}");
    assert!(text.contains(REDACTED));
    let args: Value =
        serde_json::from_str(captured[1]["gen_ai.tool.call.arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args["password"], REDACTED);
    assert!(captured[1]["gen_ai.tool.call.result"].is_string());
    let error = lines
        .iter()
        .find(|l| l["mcp_edge.outcome"] == "jsonrpc_error")
        .expect("the unknown tool is a JSON-RPC error");
    assert!(error.get("mcp_edge.error.message").is_some());
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tracing_sink_uses_otel_names_and_never_a_secret() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let recorder = Recorder::new();
    let layer = AuditLayer::new(TracingSink::new().and(recorder.sink()))
        .capture(Capture::arguments_and_results().redact("/password"));
    let server = serve_with(layer);
    let expected = send_secrets(&server).await;
    recorder.wait_until(|e| e.len() >= expected).await;
    let all = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    // Only audit's own lines: what rmcp itself logs is not the audit sink's output.
    let text: String = all
        .lines()
        .filter(|l| l.contains("mcp_edge::audit"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(text.lines().count(), expected, "{all}");
    assert_no_secret(&text);
    assert!(text.contains("mcp_edge::audit"), "{text}");
    assert!(text.contains(r#"mcp.method.name="tools/call""#), "{text}");
    assert!(text.contains(r#"gen_ai.tool.name="echo""#), "{text}");
    assert!(text.contains("mcp_edge.outcome=\"success\""), "{text}");
    assert!(
        text.contains("mcp_edge.outcome=\"jsonrpc_error\""),
        "{text}"
    );
    assert!(text.contains("client.address=127.0.0.1"), "{text}");
}

#[tokio::test]
async fn hash_chained_log_verifies_and_catches_edited_deleted_and_swapped_lines() {
    let dir = common::TempDir::new("audit-chain");
    let path = dir.path().join("audit.jsonl");
    let recorder = Recorder::new();
    let sink = JsonLinesSink::builder()
        .hash_chain(true)
        .open(&path)
        .await
        .unwrap();
    let server = serve_with(AuditLayer::new(sink.clone().and(recorder.sink())));
    for i in 0..5 {
        let response =
            common::post_json(&server.url, &call(i, "echo", json!({"text": "x"})), &[V]).await;
        let _ = response.bytes().await;
    }
    recorder.wait_until(|e| e.len() >= 5).await;
    sink.shutdown().await;
    drop(server);

    // Reopening continues the chain.
    let sink = JsonLinesSink::builder()
        .hash_chain(true)
        .open(&path)
        .await
        .unwrap();
    let server = serve_with(AuditLayer::new(sink.clone().and(recorder.sink())));
    let response =
        common::post_json(&server.url, &call(9, "echo", json!({"text": "y"})), &[V]).await;
    let _ = response.bytes().await;
    recorder.wait_until(|e| e.len() >= 6).await;
    sink.shutdown().await;

    let text = std::fs::read_to_string(&path).unwrap();
    let verified = verify_chain(text.as_bytes()).expect("untouched log verifies");
    assert_eq!(verified.lines, 6);
    assert_eq!(verified.last.seq(), 6);
    let lines: Vec<&str> = text.lines().collect();

    let broken = |lines: Vec<String>| -> (u64, BrokenKind) {
        let joined = lines.join("\n") + "\n";
        match verify_chain(joined.as_bytes()) {
            Err(ChainError::Broken { line, kind }) => (line, kind),
            other => panic!("tampering not detected: {other:?}"),
        }
    };
    let owned = || lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();

    let mut edited = owned();
    edited[2] = edited[2].replace("\"success\"", "\"tool_error\"");
    assert_ne!(edited[2], lines[2]);
    assert_eq!(broken(edited), (3, BrokenKind::HashMismatch));

    let mut deleted = owned();
    deleted.remove(3);
    assert_eq!(broken(deleted), (4, BrokenKind::PrevMismatch));

    let mut swapped = owned();
    swapped.swap(1, 4);
    assert_eq!(broken(swapped), (2, BrokenKind::PrevMismatch));

    // The example verifier says the same, with its exit status.
    let mut tampered = owned();
    tampered.remove(1);
    let bad = dir.path().join("tampered.jsonl");
    std::fs::File::create(&bad)
        .unwrap()
        .write_all((tampered.join("\n") + "\n").as_bytes())
        .unwrap();
    assert!(verify_chain(std::io::BufReader::new(std::fs::File::open(&bad).unwrap())).is_err());
}

/// A writer whose writes never complete.
struct Stuck;

impl tokio::io::AsyncWrite for Stuck {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Pending
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Pending
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Pending
    }
}

/// A writer that always fails (a full disk).
struct Failing;

impl tokio::io::AsyncWrite for Failing {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Err(std::io::Error::other("disk full")))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Err(std::io::Error::other("disk full")))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

async fn twenty_calls_complete(server: &common::TestServer) {
    for i in 0..20 {
        let response = common::post_json(
            &server.url,
            &call(i, "echo", json!({"text": format!("n{i}")})),
            &[V],
        )
        .await;
        assert_eq!(response.status(), 200);
        assert!(response.text().await.unwrap().contains(&format!("n{i}")));
    }
}

#[tokio::test]
async fn a_sink_that_never_returns_holds_up_nothing_and_drops_are_counted() {
    let recorder = Recorder::new();
    // The writer hangs forever; the queue holds 4 events.
    let stuck = JsonLinesSink::builder().queue(4).writer(Stuck);
    // A channel nobody reads, holding 2.
    let (channel, _never_read) = ChannelSink::new(2);
    let layer = AuditLayer::new(stuck.clone().and(channel.clone()).and(recorder.sink()));
    let server = serve_with(layer);
    twenty_calls_complete(&server).await;
    recorder.wait_until(|e| e.len() >= 20).await;
    assert_eq!(channel.dropped(), 18);
    // The writer task took what was queued before it hung; everything else is counted.
    assert!(stuck.dropped() >= 20 - 4 - 4, "dropped {}", stuck.dropped());
    assert!(stuck.written() + stuck.dropped() + 4 >= 20);
}

#[tokio::test]
async fn a_failing_writer_never_fails_a_request() {
    let recorder = Recorder::new();
    let failing = JsonLinesSink::builder().writer(Failing);
    let server = serve_with(AuditLayer::new(failing.clone().and(recorder.sink())));
    twenty_calls_complete(&server).await;
    recorder.wait_until(|e| e.len() >= 20).await;
    failing.flush().await;
    assert!(failing.write_errors() >= 1);
    // After a shutdown, events are dropped and counted, and requests still complete.
    failing.shutdown().await;
    let response =
        common::post_json(&server.url, &call(99, "echo", json!({"text": "z"})), &[V]).await;
    assert_eq!(response.status(), 200);
    let _ = response.bytes().await;
    recorder.wait_until(|e| e.len() >= 21).await;
    assert!(failing.dropped() >= 1);
}
