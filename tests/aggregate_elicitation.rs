//! Elicitation through the aggregator, with a real rmcp upstream and real rmcp clients over
//! TCP: an upstream tool asks the client for input (`elicitation/create`) during a call, the
//! client answers, and the tool's result holds the answer. Legacy: the request travels on the
//! call's stream under an id of the aggregator's, and the answer gets back to the upstream
//! with the upstream's id. 2026-07-28: the tool answers with an `InputRequiredResult` asking
//! for the elicitation, and the client's retry (`inputResponses`) is routed to the upstream.
#![cfg(feature = "aggregator")]

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::{TestServer, http_client, rmcp_config, serve_service, text_of};
use http_body_util::Full;
use mcp_edge::aggregate::{Aggregator, Upstream};
use mcp_edge::proxy::HttpUpstream;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientConfig,
    ClientResult, ContentBlock, ElicitRequest, ElicitRequestParams, ElicitResult,
    ElicitationAction, Implementation, InputRequest, InputRequiredResult, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig, ServerRequest,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::{
    ClientHandler, ClientLifecycleMode, ClientServiceExt, ErrorData, RoleClient, RoleServer,
    ServerHandler, ServiceExt,
};
use serde_json::{Value, json};

/// The elicitation the `greet` tool sends: a form asking for a name.
fn name_form() -> Value {
    json!({
        "mode": "form",
        "message": "What is your name?",
        "requestedSchema": {
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
        },
    })
}

/// The tool's answer: the name elicited, and how it was asked (`how`).
fn greeting(answer: &Value, how: &str) -> CallToolResponse {
    let text = match answer["action"].as_str() {
        Some("accept") => format!(
            "hello {} ({how})",
            answer["content"]["name"].as_str().unwrap_or("?")
        ),
        other => format!("no name ({other:?})"),
    };
    CallToolResponse::Complete(CallToolResult::success(vec![ContentBlock::text(text)]))
}

/// An upstream with one tool, `greet`, that asks the client for a name.
#[derive(Clone, Default)]
struct Greeter;

impl ServerHandler for Greeter {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("greeter", "1.0.0"))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = json!({"tools": [{"name": "greet", "inputSchema": {"type": "object"}}]});
        Ok(serde_json::from_value(tools).unwrap())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // 2026-07-28: the client answered the input request and called again.
        if let Some(answer) = request.input_responses.as_ref().and_then(|r| r.get("name")) {
            return Ok(greeting(answer, "input required"));
        }
        // rmcp's `create_elicitation` needs its `elicitation` feature: the same request, sent
        // as it is.
        let ask = json!({"method": "elicitation/create", "params": name_form()});
        let ask: ElicitRequest = serde_json::from_value(ask).unwrap();
        match context
            .peer
            .send_request(ServerRequest::ElicitRequest(ask))
            .await
        {
            // Legacy: a request to the client on this call's stream.
            Ok(ClientResult::ElicitResult(answer)) => Ok(greeting(
                &serde_json::to_value(answer).unwrap(),
                "on the stream",
            )),
            Ok(other) => Err(ErrorData::internal_error(format!("{other:?}"), None)),
            // 2026-07-28 forbids requests to the client: ask for input instead (MRTR).
            Err(_) => {
                let ask = json!({"method": "elicitation/create", "params": name_form()});
                let ask: InputRequest = serde_json::from_value(ask).unwrap();
                let requests = BTreeMap::from([("name".to_owned(), ask)]);
                Ok(CallToolResponse::InputRequired(
                    InputRequiredResult::from_input_requests(requests),
                ))
            }
        }
    }
}

/// The client's side: declares elicitation, answers every form with the name "Ada".
#[derive(Clone)]
struct Answering {
    info: ClientConfig,
}

impl ClientHandler for Answering {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let asked = serde_json::to_value(&request).unwrap();
        assert_eq!(asked["message"], "What is your name?", "{asked}");
        Ok(ElicitResult::new(ElicitationAction::Accept).with_content(json!({"name": "Ada"})))
    }
}

async fn connect(url: &str, version: ProtocolVersion) -> RunningService<RoleClient, Answering> {
    let mut info = ClientConfig::default();
    info.protocol_version = version.clone();
    info.capabilities =
        serde_json::from_value::<ClientCapabilities>(json!({"elicitation": {"form": {}}})).unwrap();
    info.client_info = Implementation::new("elicitation-test", "1");
    let handler = Answering { info };
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    let transport = StreamableHttpClientTransport::with_client(http_client(), config);
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

/// `greeter` and the demo tools, aggregated and served.
fn start() -> (TestServer, [TestServer; 2]) {
    let rmcp: StreamableHttpService<Greeter, LocalSessionManager> =
        StreamableHttpService::new(|| Ok(Greeter), Default::default(), rmcp_config());
    let greeter = serve_service(rmcp);
    let demo = serve_service(common::rmcp_service());
    let up = |server: &TestServer| -> HttpUpstream<Full<Bytes>> {
        HttpUpstream::new(&server.url).unwrap()
    };
    let aggregator = Aggregator::builder()
        .upstream(Upstream::new("greeter", up(&greeter)))
        .upstream(Upstream::new("demo", up(&demo)))
        .build()
        .unwrap();
    (serve_service(aggregator), [greeter, demo])
}

#[tokio::test]
async fn an_upstream_elicitation_reaches_the_client_and_its_answer_the_tool_in_both_eras() {
    let (gateway, _upstreams) = start();
    let eras = [
        (ProtocolVersion::V_2025_11_25, "hello Ada (on the stream)"),
        (ProtocolVersion::V_2026_07_28, "hello Ada (input required)"),
    ];
    for (version, expected) in eras {
        let client = connect(&gateway.url, version.clone()).await;
        let call = client.call_tool(CallToolRequestParams::new("greeter__greet"));
        let result = tokio::time::timeout(std::time::Duration::from_secs(10), call)
            .await
            .unwrap_or_else(|_| panic!("timed out: the elicited call ({version})"))
            .unwrap();
        assert_eq!(text_of(&result), expected, "{version}");
        client.cancel().await.unwrap();
    }
}
