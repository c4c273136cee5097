//! Upstream streams merged into a client's stream are reopened when they end: a real rmcp
//! upstream whose first GET stream (legacy) or `subscriptions/listen` stream (2026-07-28) is
//! cut by a layer in front of it gets a new one from the aggregator (a legacy GET with
//! `Last-Event-ID`, since rmcp gives its streams event ids), and a notification the upstream
//! sends after that still reaches the client's stream.
#![cfg(feature = "aggregator")]

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{TestServer, http_client, rmcp_config, serve_service};
use futures::StreamExt;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, BodyStream, Full, StreamBody};
use hyper::body::Incoming;
use mcp_edge::aggregate::{Aggregator, Upstream};
use mcp_edge::protocol::sse::{SseItem, SseParser};
use mcp_edge::proxy::HttpUpstream;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, SubscriptionFilter,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tower::ServiceExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An upstream with one tool, `change`, that announces its tool list changed: on the
/// session's GET stream (legacy) and on every listen stream (2026-07-28).
#[derive(Clone, Default)]
struct Changer {
    listeners: Arc<Mutex<Vec<rmcp::service::SubscriptionSink>>>,
}

impl ServerHandler for Changer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        ServerConfig::new(capabilities).with_server_info(Implementation::new("changer", "1.0.0"))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = json!({"tools": [{"name": "change", "inputSchema": {"type": "object"}}]});
        Ok(serde_json::from_value(tools).unwrap())
    }

    async fn call_tool(
        &self,
        _request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let _ = context.peer.notify_tool_list_changed().await;
        let sinks = self.listeners.lock().unwrap().clone();
        for sink in sinks {
            let _ = sink.notify_tool_list_changed().await;
        }
        let result = rmcp::model::CallToolResult::success(vec![ContentBlock::text("changed")]);
        Ok(result.into())
    }

    fn accepted_subscription_filter(&self, _: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        serde_json::from_value(json!({"toolsListChanged": true})).ok()
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        self.listeners.lock().unwrap().push(context.sink().clone());
        context.cancelled().await;
        Ok(())
    }
}

/// What the cutting layer saw of the upstream's streams.
#[derive(Default)]
struct Streams {
    /// How many streams were opened (GET, or POST `subscriptions/listen`).
    opened: AtomicUsize,
    /// Each opening's `Last-Event-ID`, in order.
    last_event_ids: Mutex<Vec<Option<String>>>,
    /// The last event id the first (cut) stream carried, if any.
    cut_at: Mutex<Option<String>>,
    /// Notified at each opening.
    opening: Notify,
}

/// The upstream's first stream ends after `CUT_AFTER`, as a restart or a proxy's idle timeout
/// would end it; the ones after it are left alone.
const CUT_AFTER: Duration = Duration::from_millis(300);

fn is_stream(request: &Request<Incoming>) -> bool {
    request.method() == http::Method::GET
        || request
            .headers()
            .get("mcp-method")
            .is_some_and(|m| m == "subscriptions/listen")
}

/// The `Changer` upstream behind a layer that cuts its first stream, served over TCP.
fn start_upstream(streams: Arc<Streams>) -> TestServer {
    let handler = Changer::default();
    let rmcp: StreamableHttpService<Changer, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Default::default(),
        rmcp_config(),
    );
    let service = tower::service_fn(move |request: Request<Incoming>| {
        let (rmcp, streams) = (rmcp.clone(), Arc::clone(&streams));
        async move {
            let stream = is_stream(&request);
            let first = stream && streams.opened.fetch_add(1, Ordering::SeqCst) == 0;
            if stream {
                let id = request.headers().get("last-event-id");
                let id = id.map(|v| v.to_str().unwrap().to_owned());
                streams.last_event_ids.lock().unwrap().push(id);
                streams.opening.notify_one();
            }
            let response = rmcp.oneshot(request).await.unwrap();
            let (parts, body) = response.into_parts();
            let body: UnsyncBoxBody<Bytes, BoxError> = if first {
                // Read until the cut, noting the event ids that went by.
                let seen = Arc::clone(&streams);
                let mut parser = SseParser::default();
                let frames = BodyStream::new(body.map_err(BoxError::from))
                    .take_until(tokio::time::sleep(CUT_AFTER))
                    .inspect(move |frame| {
                        let Some(data) = frame.as_ref().ok().and_then(|f| f.data_ref()) else {
                            return;
                        };
                        for item in parser.feed(data) {
                            if let SseItem::Event(event) = item
                                && let Some(id) = event.id
                            {
                                let id = String::from_utf8(id.to_vec()).unwrap();
                                *seen.cut_at.lock().unwrap() = Some(id);
                            }
                        }
                    });
                StreamBody::new(frames).boxed_unsync()
            } else {
                body.map_err(BoxError::from).boxed_unsync()
            };
            Ok::<_, Infallible>(Response::from_parts(parts, body))
        }
    });
    serve_service(service)
}

/// The aggregator over the cut upstream (`changer`), served over TCP.
fn start_aggregator(upstream: &TestServer) -> TestServer {
    let service: HttpUpstream<Full<Bytes>> = HttpUpstream::new(&upstream.url).unwrap();
    let aggregator = Aggregator::builder()
        .upstream(Upstream::new("changer", service))
        .build()
        .unwrap();
    serve_service(aggregator)
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(15), future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Waits until the upstream has seen `n` stream openings.
async fn opened(streams: &Streams, n: usize) {
    within("the upstream stream reopened", async {
        while streams.opened.load(Ordering::SeqCst) < n {
            let opening = streams.opening.notified();
            if streams.opened.load(Ordering::SeqCst) >= n {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), opening).await;
        }
    })
    .await;
}

/// Reads a client's SSE stream message by message.
struct Events {
    stream: futures::stream::BoxStream<'static, reqwest::Result<Bytes>>,
    parser: SseParser,
    pending: std::collections::VecDeque<Value>,
}

impl Events {
    fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Events {
            stream: response.bytes_stream().boxed(),
            parser: SseParser::default(),
            pending: Default::default(),
        }
    }

    async fn next(&mut self) -> Value {
        loop {
            if let Some(message) = self.pending.pop_front() {
                return message;
            }
            let chunk = within("an event on the client's stream", self.stream.next())
                .await
                .expect("the client's stream is open")
                .unwrap();
            for item in self.parser.feed(&chunk) {
                if let SseItem::Event(event) = item
                    && let Some(data) = event.data.filter(|d| !d.is_empty())
                {
                    self.pending
                        .push_back(serde_json::from_slice(&data).unwrap());
                }
            }
        }
    }

    /// The next message with method `method`, skipping others.
    async fn next_with(&mut self, method: &str) -> Value {
        loop {
            let message = self.next().await;
            if message["method"] == method {
                return message;
            }
        }
    }
}

fn post(url: &str) -> reqwest::RequestBuilder {
    http_client()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
}

#[tokio::test]
async fn a_legacy_get_stream_that_ends_is_reopened_with_last_event_id() {
    let streams = Arc::new(Streams::default());
    let upstream = start_upstream(Arc::clone(&streams));
    let gateway = start_aggregator(&upstream);
    let url = &gateway.url;

    let init = post(url)
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "streams-test", "version": "1"},
            }})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let session_post = |body: Value| {
        post(url)
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .body(body.to_string())
            .send()
    };
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(session_post(initialized).await.unwrap().status(), 202);

    // The client's GET stream: the aggregator opens the upstream session's GET stream into it.
    let get = http_client()
        .get(url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    let mut events = Events::new(get);
    opened(&streams, 1).await;

    // The layer cuts it; the aggregator opens it again, resuming after the last id it saw.
    opened(&streams, 2).await;
    let ids = streams.last_event_ids.lock().unwrap().clone();
    let cut_at = streams.cut_at.lock().unwrap().clone();
    assert_eq!(ids[0], None);
    assert!(
        cut_at.is_some(),
        "rmcp primes its GET stream with an event id"
    );
    assert_eq!(
        ids[1], cut_at,
        "the reopened GET resumes after the last event id"
    );

    // A notification the upstream sends now reaches the client's (never interrupted) stream.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "changer__change", "arguments": {}}});
    let answer = session_post(call).await.unwrap();
    assert_eq!(answer.status(), 200);
    let _ = answer.bytes().await.unwrap();
    let changed = events.next_with("notifications/tools/list_changed").await;
    assert_eq!(changed["jsonrpc"], "2.0");
}

#[tokio::test]
async fn a_listen_stream_that_ends_is_listened_to_again() {
    let streams = Arc::new(Streams::default());
    let upstream = start_upstream(Arc::clone(&streams));
    let gateway = start_aggregator(&upstream);
    let url = &gateway.url;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let listen = post(url)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .body(
            json!({"jsonrpc": "2.0", "id": "sub-1", "method": "subscriptions/listen", "params": {
                "notifications": {"toolsListChanged": true}, "_meta": meta,
            }})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let mut events = Events::new(listen);
    let ack = events.next().await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");

    // The upstream's listen stream is cut, and listened to again (2026-07-28 has no
    // Last-Event-ID: a new request, R21).
    opened(&streams, 2).await;
    let ids = streams.last_event_ids.lock().unwrap().clone();
    assert_eq!(ids, [None, None]);

    // Once the upstream listens again, a change there reaches the client's stream.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let call = post(url)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "changer__change")
        .body(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "changer__change", "arguments": {}, "_meta": meta}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), 200);
    let _ = call.bytes().await.unwrap();
    let changed = events.next_with("notifications/tools/list_changed").await;
    assert_eq!(
        changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "sub-1"
    );
}
