//! `Principal`, `SessionId` and `Caller` as parameters of real rmcp tool handlers, behind the
//! `McpEdge` stack (loopback guard, inspect, static-token auth, observe-mode sessions), called by the rmcp client in both eras.
#![cfg(feature = "rmcp")]

mod common;

use common::*;
use mcp_edge::auth::{AuthLayer, StaticTokens};
use mcp_edge::context::Caller;
use mcp_edge::{GuardLayer, McpEdge, Principal, SessionId, SessionLayer};
use rmcp::transport::streamable_http_server::{
    StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{
    ServerHandler,
    handler::server::router::tool::ToolRouter,
    model::{ServerCapabilities, ServerConfig},
    tool, tool_handler, tool_router,
};
use tower::Layer;

const TOKEN: &str = "tok-alice-extractors";

#[derive(Clone)]
struct Tools {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Tools {
    #[tool(description = "The authenticated caller's subject.")]
    async fn subject(&self, principal: Principal) -> String {
        principal.subject().to_owned()
    }

    #[tool(description = "The caller's session id.")]
    async fn session(&self, session: SessionId) -> String {
        session.as_str().to_owned()
    }

    #[tool(description = "Everything the edge learned, as JSON.")]
    async fn caller(&self, caller: Caller) -> String {
        serde_json::json!({
            "subject": caller.principal.map(|p| p.subject().to_owned()),
            "session": caller.session.map(|s| s.as_str().to_owned()),
            "method": caller.request.and_then(|r| r.message().and_then(|m| m.method()).map(str::to_owned)),
        })
        .to_string()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// The tools behind the default stack with one static token; `auth` off leaves callers
/// anonymous.
fn server(auth: bool) -> TestServer {
    let rmcp = StreamableHttpService::new(
        || {
            Ok(Tools {
                tool_router: Tools::tool_router(),
            })
        },
        LocalSessionManager::default().into(),
        rmcp_config(),
    );
    let auth = auth.then(|| {
        AuthLayer::new(StaticTokens::new().token(TOKEN, Principal::new("alice").with_issuer("i")))
    });
    let edge = McpEdge::builder()
        .guard(GuardLayer::loopback())
        .auth_opt(auth)
        .session(SessionLayer::new());
    serve(axum::Router::new().nest_service("/mcp", edge.layer(rmcp)))
}

/// The call failed with the extractor's JSON-RPC error: -32600 and its message.
fn assert_invalid_request(error: rmcp::ServiceError, message: &str) {
    match error {
        rmcp::ServiceError::McpError(data) => {
            assert_eq!(data.code.0, -32600, "{data:?}");
            assert_eq!(data.message, message);
        }
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

fn json_of(result: &rmcp::model::CallToolResult) -> serde_json::Value {
    serde_json::from_str(&text_of(result)).unwrap()
}

#[tokio::test]
async fn legacy_tools_read_the_principal_and_the_session() {
    let server = server(true);
    let client = legacy_client_with_auth(&server.url, &bearer(TOKEN)).await;
    let subject = call_tool(&client, "subject", serde_json::Value::Null)
        .await
        .unwrap();
    assert_eq!(text_of(&subject), "alice");
    let session = call_tool(&client, "session", serde_json::Value::Null)
        .await
        .unwrap();
    let id = text_of(&session);
    assert!(!id.is_empty());
    let caller = json_of(
        &call_tool(&client, "caller", serde_json::Value::Null)
            .await
            .unwrap(),
    );
    assert_eq!(caller["subject"], "alice");
    assert_eq!(caller["session"], id.as_str());
    assert_eq!(caller["method"], "tools/call");
}

#[tokio::test]
async fn modern_tools_read_the_principal_and_have_no_session() {
    let server = server(true);
    let client = modern_client_with_auth(&server.url, &bearer(TOKEN)).await;
    let subject = call_tool(&client, "subject", serde_json::Value::Null)
        .await
        .unwrap();
    assert_eq!(text_of(&subject), "alice");
    // 2026-07-28 has no sessions: the required extractor fails the call with -32600.
    let error = call_tool(&client, "session", serde_json::Value::Null)
        .await
        .unwrap_err();
    assert_invalid_request(error, "this tool needs a session");
    let caller = json_of(
        &call_tool(&client, "caller", serde_json::Value::Null)
            .await
            .unwrap(),
    );
    assert_eq!(caller["subject"], "alice");
    assert!(caller["session"].is_null());
    assert_eq!(caller["method"], "tools/call");
}

#[tokio::test]
async fn anonymous_callers_fail_the_principal_tool_and_pass_caller() {
    let server = server(false);
    let client = legacy_client(&server.url).await;
    let error = call_tool(&client, "subject", serde_json::Value::Null)
        .await
        .unwrap_err();
    assert_invalid_request(error, "this tool needs an authenticated caller");
    let caller = json_of(
        &call_tool(&client, "caller", serde_json::Value::Null)
            .await
            .unwrap(),
    );
    assert!(caller["subject"].is_null());
    assert!(caller["session"].is_string());
}
