//! A client that hangs up before the response head, over real TCP through hyper: the audit
//! event still names the MCP request (method, id, tool), because inspect fills the
//! `McpRequestSlot` audit puts in the request extensions.

#[path = "common/audit.rs"]
mod audit_fixtures;
mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use audit_fixtures::Recorder;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use mcp_edge::McpRequestSlot;
use mcp_edge::audit::{AuditLayer, Outcome};
use mcp_edge::inspect::InspectLayer;
use mcp_edge::protocol::{RequestId, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tower::ServiceBuilder;

#[tokio::test]
async fn a_tools_call_whose_client_hangs_up_before_the_head_is_recorded_with_its_tool() {
    let recorder = Recorder::new();
    let arrived = Arc::new(Notify::new());
    let service = {
        let arrived = Arc::clone(&arrived);
        ServiceBuilder::new()
            .layer(AuditLayer::new(recorder.sink()))
            .layer(InspectLayer::new())
            .service_fn(move |request: Request<_>| {
                let arrived = Arc::clone(&arrived);
                async move {
                    // The slot audit gave is already filled when the service runs.
                    let filled = request
                        .extensions()
                        .get::<McpRequestSlot>()
                        .and_then(McpRequestSlot::get)
                        .is_some();
                    assert!(filled, "inspect fills the slot before calling inside");
                    drop(request);
                    arrived.notify_one();
                    // A tool far slower than the client's patience.
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                }
            })
    };
    let server = common::serve_service(service);

    let body = r#"{"jsonrpc":"2.0","id":31,"method":"tools/call","params":{"name":"slow_count","arguments":{"n":3,"delay_ms":60000},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\nmcp-protocol-version: 2026-07-28\r\n\
         mcp-method: tools/call\r\nmcp-name: slow_count\r\ncontent-length: {}\r\n\r\n",
        server.addr,
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    if tokio::time::timeout(Duration::from_secs(10), arrived.notified())
        .await
        .is_err()
    {
        let mut answer = vec![0u8; 4096];
        let n = stream.read(&mut answer).await.unwrap_or(0);
        panic!(
            "the request never reached the service; answer: {}",
            String::from_utf8_lossy(&answer[..n])
        );
    }
    // Nothing has been answered yet: not a single response byte.
    let mut byte = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(100), stream.read(&mut byte))
            .await
            .is_err(),
        "no response byte before the hang-up"
    );
    drop(stream);

    let events = recorder.exactly(1).await;
    let gone = &events[0];
    assert_eq!(gone.outcome(), &Outcome::ClientGone, "{gone:#?}");
    assert!(gone.status().is_none(), "no response head was sent");
    assert_eq!(gone.mcp_method(), Some("tools/call"));
    assert_eq!(gone.jsonrpc_id(), Some(&RequestId::from(31)));
    assert_eq!(gone.target(), Some(&Target::Tool("slow_count".into())));
}
