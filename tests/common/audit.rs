//! Audit test fixtures: an event recorder, stand-in layers for refusals and identities, and
//! an rmcp tool server with tools that fail in each way MCP tells apart.
//!
//! Used with `#[path = "common/audit.rs"] mod audit_fixtures;` next to `mod common;`.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use http::{HeaderMap, Request, Response};
use mcp_edge::audit::AuditEvent;
use mcp_edge::{EdgeBody, Principal, Rejection, Replica};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{
    ErrorData, ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig},
    tool, tool_handler, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;
use tower::{Layer, Service};

/// Collects every event a layer emits.
#[derive(Clone, Default)]
pub struct Recorder {
    events: Arc<Mutex<Vec<AuditEvent>>>,
    changed: Arc<tokio::sync::Notify>,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A sink closure feeding this recorder.
    pub fn sink(&self) -> impl Fn(AuditEvent) + Send + Sync + 'static + Clone {
        let this = self.clone();
        move |event| {
            this.events.lock().unwrap().push(event);
            this.changed.notify_waiters();
        }
    }

    pub fn events(&self) -> Vec<AuditEvent> {
        self.events.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) until `pred` holds for the events so far, and returns them.
    pub async fn wait_until(&self, pred: impl Fn(&[AuditEvent]) -> bool) -> Vec<AuditEvent> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.changed.notified();
            let events = self.events();
            if pred(&events) {
                return events;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("timed out waiting for audit events; have {events:#?}");
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Waits for `n` events, then a little more to show no extra event follows.
    pub async fn exactly(&self, n: usize) -> Vec<AuditEvent> {
        self.wait_until(|e| e.len() >= n).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let events = self.events();
        assert_eq!(events.len(), n, "expected exactly {n} events: {events:#?}");
        events
    }

    pub fn clear(&self) {
        self.events.lock().unwrap().clear();
    }
}

/// The peer address as `serve_service` provides it (axum's `ConnectInfo`).
pub fn connect_info(ext: &http::Extensions) -> Option<SocketAddr> {
    ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A stand-in for a layer not merged yet: refuses with whatever `decide` returns, else passes
/// the request on and adds `principal` / `replica` to the response extensions (as the auth
/// layer and the affinity router do).
#[derive(Clone)]
pub struct StandInLayer {
    pub decide: fn(&HeaderMap) -> Option<Rejection>,
    pub principal: Option<Principal>,
    pub replica: Option<Replica>,
}

impl StandInLayer {
    pub fn refusing(decide: fn(&HeaderMap) -> Option<Rejection>) -> Self {
        StandInLayer {
            decide,
            principal: None,
            replica: None,
        }
    }

    pub fn identity(principal: Principal, replica: Replica) -> Self {
        StandInLayer {
            decide: |_| None,
            principal: Some(principal),
            replica: Some(replica),
        }
    }
}

impl<S> Layer<S> for StandInLayer {
    type Service = StandIn<S>;
    fn layer(&self, inner: S) -> StandIn<S> {
        StandIn {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct StandIn<S> {
    inner: S,
    layer: StandInLayer,
}

impl<S, B, RB> Service<Request<B>> for StandIn<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<EdgeBody<RB>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if let Some(rejection) = (self.layer.decide)(request.headers()) {
            return Box::pin(async move { Ok(rejection.into_response()) });
        }
        let principal = self.layer.principal.clone();
        let replica = self.layer.replica.clone();
        if let Some(p) = &principal {
            request.extensions_mut().insert(p.clone());
        }
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            let (mut parts, body) = response.into_parts();
            if let Some(p) = principal {
                parts.extensions.insert(p);
            }
            if let Some(r) = replica {
                parts.extensions.insert(r);
            }
            Ok(Response::from_parts(parts, EdgeBody::new(body)))
        })
    }
}

/// Arguments of the audit test tools.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TextArgs {
    /// Some text.
    pub text: String,
}

/// A small rmcp tool server whose tools end in each way MCP tells apart.
#[derive(Debug, Clone)]
pub struct OutcomeTools {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl OutcomeTools {
    pub fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    /// Returns its `text` argument.
    #[tool(description = "Returns its text.")]
    async fn echo(&self, Parameters(args): Parameters<TextArgs>) -> String {
        args.text
    }

    /// A tool error: `isError: true`, HTTP 200.
    #[tool(description = "Always fails as a tool.")]
    async fn fail(&self, Parameters(args): Parameters<TextArgs>) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text(format!("failed: {}", args.text))])
    }

    /// A JSON-RPC error.
    #[tool(description = "Always fails as a protocol error.")]
    async fn broken(&self) -> Result<String, ErrorData> {
        Err(ErrorData::internal_error("the tool is broken", None))
    }
}

#[tool_handler]
impl ServerHandler for OutcomeTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("audit-tests", "0"))
    }
}

/// The outcome tools as an rmcp service with `config` (Host check off).
pub fn outcome_service(
    config: StreamableHttpServerConfig,
) -> StreamableHttpService<OutcomeTools, LocalSessionManager> {
    StreamableHttpService::new(
        || Ok(OutcomeTools::new()),
        Default::default(),
        config.disable_allowed_hosts(),
    )
}
