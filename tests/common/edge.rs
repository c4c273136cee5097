//! The complete `McpEdge` stack in front of the real rmcp demo server: audit (to a channel and
//! to a JSON-lines file) → guard → inspect → auth (static tokens for alice and bob, a scope
//! policy) → session (enforce, memory store) → sse → a log of what reached the MCP server →
//! rmcp.
//!
//! Used with `#[path = "common/edge.rs"] mod edge;` next to `mod common;`.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Method, Request};
use mcp_edge::audit::{AuditEvent, AuditLayer, AuditSink, ChannelSink, JsonLinesSink, Outcome};
use mcp_edge::auth::{AuthLayer, ScopePolicy, StaticTokens};
use mcp_edge::guard::PeerAddr;
use mcp_edge::protocol::Target;
use mcp_edge::session::SessionLayer;
use mcp_edge::store::MemorySessionStore;
use mcp_edge::{McpEdge, McpRequest, Principal, Reason, RejectedBy, SessionId, SseLayer};
use tokio::sync::mpsc;
use tower::{Service, ServiceBuilder};

use crate::common::{TempDir, TestServer, rmcp_service, serve_service};

/// Alice's API key: every scope, `slow_count` included.
pub const ALICE_TOKEN: &str = "tok-alice-SECRET-a11ce7";
/// Bob's API key: tools, but not `mcp:slow`.
pub const BOB_TOKEN: &str = "tok-bob-SECRET-b0b42";
/// A key nobody was given.
pub const WRONG_TOKEN: &str = "tok-wrong-SECRET-00000";
/// The issuer of both principals.
pub const ISSUER: &str = "https://as.edge.test";

/// What reached the MCP server (below every mcp-edge layer).
#[derive(Debug, Clone)]
pub struct Reached {
    pub http_method: Method,
    pub mcp_method: Option<String>,
    pub tool: Option<String>,
    pub session: Option<String>,
    pub subject: Option<String>,
}

type ReachLog = Arc<Mutex<Vec<Reached>>>;

/// Records every request that reaches the inner service.
#[derive(Clone)]
pub struct Reach<S> {
    inner: S,
    log: ReachLog,
}

impl<S, B> Service<Request<B>> for Reach<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> S::Future {
        let mcp = request.extensions().get::<Arc<McpRequest>>();
        let message = mcp.and_then(|m| m.message());
        let tool = match message.and_then(|m| m.target()) {
            Some(Target::Tool(name)) => Some(name.to_string()),
            _ => None,
        };
        self.log.lock().unwrap().push(Reached {
            http_method: request.method().clone(),
            mcp_method: message.and_then(|m| m.method()).map(str::to_owned),
            tool,
            session: request
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            subject: request
                .extensions()
                .get::<Principal>()
                .map(|p| p.subject().to_owned()),
        });
        self.inner.call(request)
    }
}

/// The principals the static tokens map to.
pub fn alice() -> Principal {
    Principal::new("alice")
        .with_issuer(ISSUER)
        .with_client_id("alice-app")
        .with_scopes(["mcp:tools", "mcp:slow"])
}

/// Bob: no `mcp:slow`.
pub fn bob() -> Principal {
    Principal::new("bob")
        .with_issuer(ISSUER)
        .with_client_id("bob-app")
        .with_scopes(["mcp:tools"])
}

/// The running stack.
pub struct EdgeStack {
    pub url: String,
    pub store: MemorySessionStore,
    server: Option<TestServer>,
    events: mpsc::Receiver<AuditEvent>,
    json_lines: JsonLinesSink,
    log_path: std::path::PathBuf,
    _dir: TempDir,
    reached: ReachLog,
}

/// Everything the stack recorded, read after it stopped.
pub struct Finished {
    /// Every audit event, from the channel sink.
    pub events: Vec<AuditEvent>,
    /// Every line of the JSON-lines audit file.
    pub lines: Vec<String>,
    /// Every request that reached the MCP server.
    pub reached: Vec<Reached>,
}

impl EdgeStack {
    /// Builds the stack and serves it on a free port.
    pub async fn start() -> EdgeStack {
        let dir = TempDir::new("edge");
        let log_path = dir.path().join("audit.jsonl");
        let json_lines = JsonLinesSink::open(&log_path)
            .await
            .expect("open audit log");
        let (channel, events) = ChannelSink::new(4096);
        let tokens = StaticTokens::new()
            .token(ALICE_TOKEN, alice())
            .token(BOB_TOKEN, bob());
        let policy = ScopePolicy::new()
            .method("tools/call", ["mcp:tools"])
            .tool("slow_*", ["mcp:slow"]);
        let store = MemorySessionStore::new();
        let edge = McpEdge::builder()
            .audit(
                AuditLayer::new(channel.and(json_lines.clone()))
                    .peer_addr(|ext| ext.get::<PeerAddr>().map(|p| p.0)),
            )
            .auth(AuthLayer::new(tokens).policy(policy))
            .session(SessionLayer::with_store(store.clone()).enforce())
            .sse(SseLayer::new());
        let reached = ReachLog::default();
        let inner = Reach {
            inner: rmcp_service(),
            log: Arc::clone(&reached),
        };
        let server = serve_service(ServiceBuilder::new().layer(edge).service(inner));
        EdgeStack {
            url: server.url.clone(),
            store,
            server: Some(server),
            events,
            json_lines,
            log_path,
            _dir: dir,
            reached,
        }
    }

    /// Stops the server (closing every connection), then reads every audit event: the channel
    /// closes once the last connection, and with it the last clone of the audit layer, is
    /// gone, so nothing is missed and nothing is waited for by the clock. Then flushes the
    /// JSON-lines file and reads it.
    pub async fn finish(mut self) -> Finished {
        drop(self.server.take());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut events = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(_) => {
                    panic!("audit channel still open 20 s after the server stopped: {events:#?}")
                }
            }
        }
        self.json_lines.shutdown().await;
        assert_eq!(self.json_lines.dropped(), 0, "no audit line dropped");
        assert_eq!(self.json_lines.write_errors(), 0, "no audit write failed");
        let text = std::fs::read_to_string(&self.log_path).expect("read audit log");
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let reached = self.reached.lock().unwrap().clone();
        Finished {
            events,
            lines,
            reached,
        }
    }
}

/// The layer and reason of a refusal; panics on any other outcome.
pub fn refusal(event: &AuditEvent) -> (RejectedBy, Reason, i64) {
    match event.outcome() {
        Outcome::Refused {
            by, reason, code, ..
        } => (*by, *reason, *code),
        other => panic!("expected a refusal, got {other:?}: {event:#?}"),
    }
}

/// The principal subject of an event.
pub fn subject(event: &AuditEvent) -> Option<&str> {
    event.principal().map(Principal::subject)
}

/// The session id of an event, as a string.
pub fn session(event: &AuditEvent) -> Option<&str> {
    event.session_id().map(SessionId::as_str)
}

/// The tool an event is about.
pub fn tool(event: &AuditEvent) -> Option<&str> {
    match event.target() {
        Some(Target::Tool(name)) => Some(name),
        _ => None,
    }
}

/// Asserts no audit event and no JSON line holds any token, in any form we know of.
pub fn assert_no_token_anywhere(finished: &Finished) {
    for token in [ALICE_TOKEN, BOB_TOKEN, WRONG_TOKEN] {
        let secret_part = token.split('-').nth(2).unwrap();
        for line in &finished.lines {
            assert!(!line.contains(token), "token in the audit log: {line}");
            assert!(
                !line.contains(secret_part),
                "token part in the audit log: {line}"
            );
        }
        for event in &finished.events {
            let line = serde_json::to_string(event).unwrap();
            assert!(!line.contains(token), "token in an audit event: {line}");
            let debug = format!("{event:?}");
            assert!(!debug.contains(token), "token in an audit event: {debug}");
        }
    }
}
