//! Messages the aggregator relays between a client and its upstreams, with real rmcp
//! upstreams and clients over TCP: a sampling request from an upstream tool reaches the
//! client and its answer gets back (legacy: a request on the call's stream, ids mapped;
//! 2026-07-28: an `InputRequiredResult` and the client's retry), cancellation reaches the
//! upstream with the upstream's id, `list_changed` reaches the client's GET stream (legacy)
//! or its `subscriptions/listen` stream (2026-07-28), and progress never crosses callers.
#![cfg(feature = "aggregator")]
#![allow(deprecated)] // rmcp marks sampling deprecated (SEP-2577); it is what is relayed here

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{TestServer, http_client, rmcp_config, rmcp_service, serve_service, text_of};
use futures::StreamExt;
use http_body_util::Full;
use mcp_edge::aggregate::{Aggregator, Upstream};
use mcp_edge::proxy::HttpUpstream;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientConfig,
    ContentBlock, CreateMessageRequestParams, CreateMessageResult, Implementation, InputRequest,
    InputRequiredResult, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
    ServerCapabilities, ServerConfig, SubscriptionFilter,
};
use rmcp::service::{RequestContext, RunningService, SubscriptionContext};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::{
    ClientHandler, ClientLifecycleMode, ClientServiceExt, ErrorData, RoleClient, RoleServer,
    ServerHandler, ServiceExt,
};
use serde_json::{Value, json};
use tokio::sync::Notify;

type Up = HttpUpstream<Full<Bytes>>;

/// What the `asker` upstream saw.
#[derive(Debug, Default)]
struct AskerLog {
    /// Set when a `wait` call was cancelled.
    cancelled: Notify,
    /// The listen streams open at the upstream (2026-07-28).
    listeners: std::sync::Mutex<Vec<rmcp::service::SubscriptionSink>>,
    listening: Notify,
    /// What the client answered to the request `ask_later` sent after its call.
    later: std::sync::Mutex<Option<String>>,
    answered_later: Notify,
}

/// An upstream whose tools talk back: `ask` samples the client, `ask_later` too once its call
/// is over (so the request goes on the session's GET stream), `wait` waits to be cancelled,
/// `change` announces that its tool list changed.
#[derive(Clone, Default)]
struct Asker {
    log: Arc<AskerLog>,
}

fn tool(name: &str) -> Value {
    json!({"name": name, "inputSchema": {"type": "object"}})
}

fn text_result(text: String) -> CallToolResponse {
    CallToolResponse::Complete(CallToolResult::success(vec![ContentBlock::text(text)]))
}

fn sampling_request(question: &str) -> CreateMessageRequestParams {
    serde_json::from_value(json!({
        "messages": [{"role": "user", "content": {"type": "text", "text": question}}],
        "maxTokens": 16,
    }))
    .unwrap()
}

/// The text of a sampling answer.
fn sampled_text(answer: &Value) -> String {
    answer["content"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

impl Asker {
    async fn ask(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // 2026-07-28: the client answered the input request and called again.
        if let Some(answer) = request.input_responses.as_ref().and_then(|r| r.get("q")) {
            return Ok(text_result(format!("asker got: {}", sampled_text(answer))));
        }
        match context
            .peer
            .create_message(sampling_request("question"))
            .await
        {
            // Legacy: a request to the client on this call's stream.
            Ok(answer) => {
                let answer = serde_json::to_value(answer).unwrap();
                Ok(text_result(format!("asker got: {}", sampled_text(&answer))))
            }
            // 2026-07-28 forbids requests to the client: ask for input instead (MRTR).
            Err(_) => {
                let ask = json!({"method": "sampling/createMessage", "params": sampling_request("question")});
                let ask: InputRequest = serde_json::from_value(ask).unwrap();
                let requests = BTreeMap::from([("q".to_owned(), ask)]);
                Ok(CallToolResponse::InputRequired(
                    InputRequiredResult::from_input_requests(requests),
                ))
            }
        }
    }
}

impl ServerHandler for Asker {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        ServerConfig::new(capabilities).with_server_info(Implementation::new("asker", "1.0.0"))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools =
            json!({"tools": [tool("ask"), tool("ask_later"), tool("wait"), tool("change")]});
        Ok(serde_json::from_value(tools).unwrap())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        match request.name.as_ref() {
            "ask" => self.ask(request, context).await,
            "ask_later" => {
                let (peer, log) = (context.peer.clone(), Arc::clone(&self.log));
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if let Ok(answer) = peer.create_message(sampling_request("later")).await {
                        let answer = serde_json::to_value(answer).unwrap();
                        *log.later.lock().unwrap() = Some(sampled_text(&answer));
                        log.answered_later.notify_one();
                    }
                });
                Ok(text_result("will ask".into()))
            }
            "wait" => {
                tokio::select! {
                    _ = context.ct.cancelled() => {
                        self.log.cancelled.notify_one();
                        Err(ErrorData::internal_error("cancelled", None))
                    }
                    _ = tokio::time::sleep(Duration::from_secs(20)) => Ok(text_result("waited".into())),
                }
            }
            "change" => {
                // Legacy: on the session's GET stream; 2026-07-28: on each listen stream.
                let _ = context.peer.notify_tool_list_changed().await;
                let log = json!({"level": "info", "logger": "asker", "data": "tools changed"});
                let log = serde_json::from_value(log).unwrap();
                let _ = context.peer.notify_logging_message(log).await;
                let sinks = self.log.listeners.lock().unwrap().clone();
                for sink in sinks {
                    let _ = sink.notify_tool_list_changed().await;
                }
                Ok(text_result("changed".into()))
            }
            _ => Err(ErrorData::invalid_params("no such tool", None)),
        }
    }

    /// Tool list changes only (rmcp intersects this with what was asked for).
    fn accepted_subscription_filter(&self, _: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        serde_json::from_value(json!({"toolsListChanged": true})).ok()
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        self.log
            .listeners
            .lock()
            .unwrap()
            .push(context.sink().clone());
        self.log.listening.notify_one();
        context.cancelled().await;
        Ok(())
    }
}

/// The client's side: answers sampling requests, hears `tools/list_changed` and log messages.
#[derive(Clone)]
struct Answering {
    info: ClientConfig,
    changed: Arc<Notify>,
    logged: Arc<Notify>,
}

impl Answering {
    fn new(version: ProtocolVersion) -> Self {
        let mut info = ClientConfig::default();
        info.protocol_version = version;
        info.capabilities =
            serde_json::from_value::<ClientCapabilities>(json!({"sampling": {}})).unwrap();
        info.client_info = Implementation::new("relay-test", "1");
        Answering {
            info,
            changed: Arc::default(),
            logged: Arc::default(),
        }
    }
}

impl ClientHandler for Answering {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let asked = serde_json::to_value(&params.messages[0]).unwrap();
        let answer = json!({
            "role": "assistant",
            "content": {"type": "text", "text": format!("sampled {}", sampled_text(&asked))},
            "model": "test-model",
        });
        Ok(serde_json::from_value(answer).unwrap())
    }

    async fn on_logging_message(
        &self,
        params: rmcp::model::LoggingMessageNotificationParam,
        _context: rmcp::service::NotificationContext<RoleClient>,
    ) {
        if params.data == "tools changed" {
            self.logged.notify_one();
        }
    }

    async fn on_tool_list_changed(&self, _context: rmcp::service::NotificationContext<RoleClient>) {
        self.changed.notify_one();
    }
}

type RelayClient = RunningService<RoleClient, Answering>;

async fn connect(url: &str, version: ProtocolVersion) -> RelayClient {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    let transport = StreamableHttpClientTransport::with_client(http_client(), config);
    let handler = Answering::new(version.clone());
    let connected = if version.has_initialize() {
        handler.serve(transport).await
    } else {
        let lifecycle = ClientLifecycleMode::Discover {
            preferred_versions: vec![version],
        };
        handler.serve_with_lifecycle(transport, lifecycle).await
    };
    connected.expect("the client connects to the aggregator")
}

/// `asker` (the tools above) and `demo` (the demo tools), aggregated.
struct Relayed {
    asker: Asker,
    _upstreams: [TestServer; 2],
    gateway: TestServer,
}

impl Relayed {
    fn start() -> Relayed {
        let asker = Asker::default();
        let handler = asker.clone();
        let rmcp: StreamableHttpService<Asker, LocalSessionManager> = StreamableHttpService::new(
            move || Ok(handler.clone()),
            Default::default(),
            rmcp_config(),
        );
        let asker_server = serve_service(rmcp);
        let demo_server = serve_service(rmcp_service());
        let up = |server: &TestServer| -> Up { HttpUpstream::new(&server.url).unwrap() };
        let aggregator = Aggregator::builder()
            .upstream(Upstream::new("asker", up(&asker_server)))
            .upstream(Upstream::new("demo", up(&demo_server)))
            .build()
            .unwrap();
        Relayed {
            asker,
            gateway: serve_service(aggregator),
            _upstreams: [asker_server, demo_server],
        }
    }
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

#[tokio::test]
async fn a_sampling_request_reaches_the_client_and_its_answer_gets_back_in_both_eras() {
    let relayed = Relayed::start();
    for version in [ProtocolVersion::V_2025_11_25, ProtocolVersion::V_2026_07_28] {
        let client = connect(&relayed.gateway.url, version.clone()).await;
        let result = within("the sampled call", call_tool_on(&client, "asker__ask")).await;
        assert_eq!(text_of(&result), "asker got: sampled question", "{version}");
        // The other upstream still answers beside it.
        let echo = within(
            "echo",
            call_tool_on_with(&client, "demo__echo", json!({"text": "hi"})),
        )
        .await;
        assert_eq!(text_of(&echo), "hi");
        client.cancel().await.unwrap();
    }
}

async fn call_tool_on(client: &RelayClient, name: &'static str) -> CallToolResult {
    call_tool_on_with(client, name, json!({})).await
}

async fn call_tool_on_with(
    client: &RelayClient,
    name: &'static str,
    arguments: Value,
) -> CallToolResult {
    let params =
        CallToolRequestParams::new(name).with_arguments(arguments.as_object().unwrap().clone());
    client.call_tool(params).await.expect("tools/call")
}

#[tokio::test]
async fn cancellation_reaches_the_upstream_with_its_own_id() {
    let relayed = Relayed::start();
    let client = connect(&relayed.gateway.url, ProtocolVersion::V_2025_11_25).await;
    // A call first, so the upstream's ids and the client's differ.
    call_tool_on(&client, "asker__change").await;
    let request = rmcp::model::ClientRequest::CallToolRequest(rmcp::model::Request::new(
        CallToolRequestParams::new("asker__wait"),
    ));
    let handle = client
        .send_cancellable_request(request, rmcp::service::PeerRequestOptions::no_options())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cancelled = relayed.asker.log.cancelled.notified();
    handle.cancel(Some("enough".into())).await.unwrap();
    within("the upstream's call cancelled", cancelled).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn list_changed_log_messages_and_requests_reach_a_legacy_client_on_its_get_stream() {
    let relayed = Relayed::start();
    let client = connect(&relayed.gateway.url, ProtocolVersion::V_2025_11_25).await;
    let changed = client.service().changed.clone();
    let logged = client.service().logged.clone();
    let heard = changed.notified();
    // The call opens the upstream session, and with it its GET stream into the client's.
    let result = call_tool_on(&client, "asker__change").await;
    assert_eq!(text_of(&result), "changed");
    if tokio::time::timeout(Duration::from_secs(2), heard)
        .await
        .is_err()
    {
        // The GET stream may have opened just after the notification: once more.
        let heard = changed.notified();
        call_tool_on(&client, "asker__change").await;
        within("tools/list_changed on the GET stream", heard).await;
    }
    // `Notify` keeps one permit: the log message arrived once at least.
    within("notifications/message on the GET stream", logged.notified()).await;

    // A request after its call is over goes on the GET stream; the answer still gets back.
    let answered = relayed.asker.log.answered_later.notified();
    call_tool_on(&client, "asker__ask_later").await;
    within("the answer to a request on the GET stream", answered).await;
    let later = relayed.asker.log.later.lock().unwrap().clone();
    assert_eq!(later.as_deref(), Some("sampled later"));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_listen_stream_is_acknowledged_and_carries_upstream_list_changes() {
    let relayed = Relayed::start();
    let listening = relayed.asker.log.listening.notified();
    let response = http_client()
        .post(&relayed.gateway.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .body(
            json!({"jsonrpc": "2.0", "id": "sub-1", "method": "subscriptions/listen", "params": {
                "notifications": {"toolsListChanged": true, "resourceSubscriptions": ["x"]},
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {},
                },
            }})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut events = response.bytes_stream();
    let mut buffer = String::new();
    let mut next = async || loop {
        if let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(data) = event.trim_end().strip_prefix("data: ") {
                return serde_json::from_str::<Value>(data).unwrap();
            }
            continue;
        }
        let chunk = within("a listen event", events.next())
            .await
            .unwrap()
            .unwrap();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    };
    let ack = next().await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true})
    );
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "sub-1"
    );

    // The upstream's own listen stream is open: a change there reaches this stream.
    within("the upstream listens", listening).await;
    let client = connect(&relayed.gateway.url, ProtocolVersion::V_2026_07_28).await;
    call_tool_on(&client, "asker__change").await;
    let changed = next().await;
    assert_eq!(changed["method"], "notifications/tools/list_changed");
    assert_eq!(
        changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "sub-1"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn two_callers_with_the_same_progress_token_each_get_only_their_own_progress() {
    let relayed = Relayed::start();
    let url = &relayed.gateway.url;
    let call = |n: u32| async move {
        let http = http_client();
        let init = http
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(
                json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"}}})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        let session = init.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = http
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .body(
                json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
                "name": "demo__slow_count", "arguments": {"n": n, "delay_ms": 20},
                "_meta": {"progressToken": "same"}}})
                .to_string(),
            )
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let messages: Vec<Value> = body
            .split("\n\n")
            .filter_map(|e| e.trim().strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let totals: Vec<f64> = messages
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            .map(|m| m["params"]["total"].as_f64().unwrap())
            .collect();
        (
            totals,
            messages.last().unwrap()["result"]["content"][0]["text"].clone(),
        )
    };
    let ((three, a), (five, b)) = tokio::join!(call(3), call(5));
    assert_eq!(three, [3.0; 3]);
    assert_eq!(five, [5.0; 5]);
    assert_eq!((a, b), (json!("counted to 3"), json!("counted to 5")));
}
