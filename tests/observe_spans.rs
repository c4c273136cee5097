//! The span of each MCP message, exported through tracing-opentelemetry to the SDK's
//! in-memory exporter: the parent from the W3C trace context (header, or `_meta`), the MCP
//! attributes, an error status and an event on a refusal, one span per batch element, and a
//! span that ends only once the SSE stream carried the result.
#![cfg(feature = "otel")]

use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::channel::mpsc;
use http::{Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use mcp_edge::audit::AuditLayer;
use mcp_edge::{GuardLayer, InspectLayer};
use opentelemetry::Value;
use opentelemetry::trace::{SpanId, Status, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tower::{ServiceBuilder, ServiceExt};
use tracing_subscriber::layer::SubscriberExt;

#[path = "common/spans.rs"]
mod spans;

use spans::{Inner, PARENT, TRACE, assert_call_span, attr, json, post, str_attr};

/// Installs a tracing-opentelemetry subscriber for this thread (the tests run on tokio's
/// current-thread runtime) and returns the exporter with the guard.
fn exporter() -> (InMemorySpanExporter, tracing::subscriber::DefaultGuard) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let guard = tracing::subscriber::set_default(subscriber);
    (exporter, guard)
}

fn spans(exporter: &InMemorySpanExporter) -> Vec<SpanData> {
    exporter.get_finished_spans().unwrap()
}

#[tokio::test]
async fn a_call_span_takes_its_parent_from_traceparent_and_carries_the_mcp_attributes() {
    let (exporter, _guard) = exporter();
    let service = ServiceBuilder::new()
        .layer(AuditLayer::new(|_| {}))
        .layer(GuardLayer::loopback())
        .layer(InspectLayer::new())
        .service_fn(|_: Inner| async {
            Ok::<_, Infallible>(json(
                r#"{"jsonrpc":"2.0","id":7,"result":{"content":[],"isError":false}}"#,
            ))
        });
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let response = service
        .oneshot(post(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#,
            &[
                ("traceparent", traceparent.as_str()),
                ("mcp-protocol-version", "2025-11-25"),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body().collect().await.unwrap();

    let spans = spans(&exporter);
    assert_eq!(spans.len(), 1, "{spans:#?}");
    let span = &spans[0];
    assert_call_span(span);
}

#[tokio::test]
async fn without_a_header_the_parent_comes_from_meta() {
    let (exporter, _guard) = exporter();
    let service = ServiceBuilder::new()
        .layer(AuditLayer::new(|_| {}))
        .layer(InspectLayer::new())
        .service_fn(|_: Inner| async {
            Ok::<_, Infallible>(json(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#))
        });
    let response = service
        .oneshot(post(
            r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"greet","_meta":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}}"#,
            &[("mcp-protocol-version", "2025-11-25")],
        ))
        .await
        .unwrap();
    response.into_body().collect().await.unwrap();
    let spans = spans(&exporter);
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "prompts/get greet");
    assert_eq!(
        spans[0].span_context.trace_id(),
        TraceId::from_hex(TRACE).unwrap()
    );
    assert_eq!(spans[0].parent_span_id, SpanId::from_hex(PARENT).unwrap());
    assert_eq!(
        str_attr(&spans[0], "gen_ai.prompt.name").as_deref(),
        Some("greet")
    );
}

#[tokio::test]
async fn a_refusal_gives_an_error_status_and_a_refused_event_naming_the_layer() {
    let (exporter, _guard) = exporter();
    let service = ServiceBuilder::new()
        .layer(AuditLayer::new(|_| {}))
        .layer(GuardLayer::loopback())
        .layer(InspectLayer::new())
        .service_fn(|_: Inner| async {
            Ok::<_, Infallible>(json(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#))
        });
    let response = service
        .oneshot(post(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            &[("origin", "https://evil.example")],
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    response.into_body().collect().await.unwrap();

    let spans = spans(&exporter);
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert!(
        matches!(&span.status, Status::Error { description } if description.contains("refused by guard")),
        "{:?}",
        span.status
    );
    assert_eq!(
        str_attr(span, "mcp_edge.outcome").as_deref(),
        Some("refused")
    );
    assert!(attr(span, "error.type").is_some());
    assert_eq!(
        attr(span, "http.response.status_code"),
        Some(&Value::I64(403))
    );
    let refused: Vec<_> = span.events.iter().filter(|e| e.name == "refused").collect();
    assert_eq!(refused.len(), 1, "{:?}", span.events);
    let layer = refused[0]
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "mcp_edge.layer")
        .map(|kv| kv.value.as_str().into_owned());
    assert_eq!(layer.as_deref(), Some("guard"));
}

#[tokio::test]
async fn each_batch_element_gets_its_own_span_under_one_parent() {
    let (exporter, _guard) = exporter();
    let service = ServiceBuilder::new()
        .layer(AuditLayer::new(|_| {}))
        .layer(InspectLayer::new())
        .service_fn(|_: Inner| async {
            Ok::<_, Infallible>(json(
                r#"[{"jsonrpc":"2.0","id":"a","result":{}},{"jsonrpc":"2.0","id":"b","error":{"code":-32601,"message":"no"}}]"#,
            ))
        });
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let response = service
        .oneshot(post(
            r#"[{"jsonrpc":"2.0","id":"a","method":"tools/list"},{"jsonrpc":"2.0","id":"b","method":"nope"}]"#,
            &[
                ("traceparent", traceparent.as_str()),
                ("mcp-protocol-version", "2025-03-26"),
            ],
        ))
        .await
        .unwrap();
    response.into_body().collect().await.unwrap();
    let mut spans = spans(&exporter);
    spans.sort_by_key(|s| str_attr(s, "jsonrpc.request.id"));
    assert_eq!(spans.len(), 2, "{spans:#?}");
    assert_eq!(spans[0].name, "tools/list");
    assert_eq!(spans[0].status, Status::Unset);
    assert_eq!(spans[1].name, "nope");
    assert!(matches!(spans[1].status, Status::Error { .. }));
    assert_eq!(
        attr(&spans[1], "rpc.response.status_code"),
        Some(&Value::I64(-32601))
    );
    for span in &spans {
        assert_eq!(span.parent_span_id, SpanId::from_hex(PARENT).unwrap());
    }
}

#[tokio::test]
async fn an_sse_span_ends_only_after_the_stream_carried_the_result() {
    let (exporter, _guard) = exporter();
    let (tx, rx) = mpsc::unbounded::<Result<Frame<Bytes>, Infallible>>();
    let rx = std::sync::Arc::new(std::sync::Mutex::new(Some(rx)));
    let service = ServiceBuilder::new()
        .layer(AuditLayer::new(|_| {}))
        .layer(InspectLayer::new())
        .service_fn(move |_: Inner| {
            let rx = rx.lock().unwrap().take().expect("one call");
            async move {
                let mut response = Response::new(StreamBody::new(rx));
                response
                    .headers_mut()
                    .insert("content-type", "text/event-stream".parse().unwrap());
                Ok::<_, Infallible>(response)
            }
        });
    let response = service
        .oneshot(post(
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"slow"}}"#,
            &[("mcp-protocol-version", "2025-11-25")],
        ))
        .await
        .unwrap();
    let mut body = response.into_body();
    let event = |text: &str| Ok(Frame::data(Bytes::from(format!("data: {text}\n\n"))));

    tx.unbounded_send(event(
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}"#,
    ))
    .unwrap();
    body.frame().await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(spans(&exporter).is_empty(), "no span before the result");

    let result_sent = SystemTime::now();
    tx.unbounded_send(event(
        r#"{"jsonrpc":"2.0","id":3,"result":{"content":[],"isError":true}}"#,
    ))
    .unwrap();
    drop(tx);
    while body.frame().await.is_some() {}
    let spans = spans(&exporter);
    assert_eq!(spans.len(), 1);
    assert!(spans[0].end_time >= result_sent);
    assert!(
        spans[0]
            .end_time
            .duration_since(spans[0].start_time)
            .unwrap()
            >= Duration::from_millis(20)
    );
    assert_eq!(
        str_attr(&spans[0], "mcp_edge.outcome").as_deref(),
        Some("tool_error")
    );
    assert_eq!(
        str_attr(&spans[0], "error.type").as_deref(),
        Some("tool_error")
    );
    assert!(matches!(spans[0].status, Status::Error { .. }));
}

#[tokio::test]
async fn spans_off_exports_nothing() {
    let (exporter, _guard) = exporter();
    let service = ServiceBuilder::new()
        .layer(AuditLayer::new(|_| {}).spans(false))
        .layer(InspectLayer::new())
        .service_fn(|_: Inner| async {
            Ok::<_, Infallible>(json(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#))
        });
    let response = service
        .oneshot(post(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, &[]))
        .await
        .unwrap();
    response.into_body().collect().await.unwrap();
    assert!(spans(&exporter).is_empty());
}
