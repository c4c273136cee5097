//! Session binding in the DEFAULT configuration (R32, R27): observe mode, JWT principals from
//! a JWKS served over HTTP, as `examples/server.rs` builds it with `--jwks-url`. Bob, with his
//! own valid token and Alice's `Mcp-Session-Id`, gets 404 with a JSON-RPC body for his POST,
//! his GET stream and his DELETE; the server never sees them, Alice's session still works,
//! and the audit names both subjects. A DELETE of an unknown id gets 404 too.
#![cfg(feature = "jwks-fetch")]

mod common;

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use common::auth::*;
use common::*;
use http::{Method, Request, StatusCode};
use mcp_edge::audit::{AuditEvent, AuditLayer, ChannelSink};
use mcp_edge::auth::{AuthLayer, HttpJwks, Issuer, JwtVerifier, RemoteKeys};
use mcp_edge::session::{SessionLayer, SessionMode};
use mcp_edge::{McpEdge, Principal, Reason};
use serde_json::json;
use tokio::sync::mpsc;
use tower::{Service, ServiceBuilder};

type Log = Arc<Mutex<Vec<(Method, Option<String>, Option<String>)>>>;

/// Records (HTTP method, session header, subject) of every request that reaches the server.
#[derive(Clone)]
struct Reach<S> {
    inner: S,
    log: Log,
}

impl<S: Service<Request<B>>, B> Service<Request<B>> for Reach<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> S::Future {
        let session = request
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let subject = request
            .extensions()
            .get::<Principal>()
            .map(|p| p.subject().to_owned());
        self.log
            .lock()
            .unwrap()
            .push((request.method().clone(), session, subject));
        self.inner.call(request)
    }
}

struct Stack {
    url: String,
    server: Option<TestServer>,
    events: mpsc::Receiver<AuditEvent>,
    log: Log,
    _jwks: JwksServer,
}

impl Stack {
    fn start() -> Stack {
        let jwks = JwksServer::start(vec![rsa1().jwk]);
        let keys = RemoteKeys::new(HttpJwks::new(&jwks.url));
        let verifier = JwtVerifier::new(AUDIENCE).issuer(Issuer::remote(ISSUER, keys));
        let (channel, events) = ChannelSink::new(1024);
        // The example server's session layer: a memory store, observe mode (the default).
        let session = SessionLayer::new();
        assert_eq!(session.session_mode(), SessionMode::Observe);
        let edge = McpEdge::builder()
            .audit(AuditLayer::new(channel))
            .auth(AuthLayer::new(verifier))
            .session(session);
        let log = Log::default();
        let inner = Reach {
            inner: rmcp_service(),
            log: Arc::clone(&log),
        };
        let server = serve_service(ServiceBuilder::new().layer(edge).service(inner));
        Stack {
            url: server.url.clone(),
            server: Some(server),
            events,
            log,
            _jwks: jwks,
        }
    }

    async fn finish(mut self) -> Vec<AuditEvent> {
        drop(self.server.take());
        let mut events = Vec::new();
        while let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_secs(20), self.events.recv()).await
        {
            events.push(event);
        }
        events
    }
}

fn token(sub: &str) -> String {
    format!("Bearer {}", mint(&rsa1(), &claims(sub, "mcp:tools")))
}

async fn send(
    url: &str,
    method: Method,
    auth: &str,
    session: &str,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut request = http_client()
        .request(method, url)
        .header("authorization", auth)
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .header("accept", "application/json, text/event-stream");
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    request.send().await.unwrap()
}

async fn assert_404_jsonrpc(response: reqwest::Response, id: Option<i64>) {
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["error"]["code"], -32001);
    assert_eq!(body["error"]["message"], "Session not found");
    if let Some(id) = id {
        assert_eq!(body["id"], id);
    }
    assert!(!body.to_string().contains("alice"), "{body}");
}

fn call(id: i64, method: &str) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": {}})
}

#[tokio::test]
async fn another_principals_session_gets_404_in_the_default_observe_mode() {
    let stack = Stack::start();
    let (alice, bob) = (token("alice"), token("bob"));
    let response = post_json(
        &stack.url,
        &initialize_body("2025-11-25"),
        &[("authorization", alice.as_str())],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let sid = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    drop(response.bytes().await);
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = send(&stack.url, Method::POST, &alice, &sid, Some(initialized)).await;
    assert!(response.status().is_success(), "{}", response.status());
    let reached_before = stack.log.lock().unwrap().len();

    // Bob's tools/call, GET stream and DELETE in Alice's session: 404, JSON-RPC body.
    let whoami = json!({"jsonrpc": "2.0", "id": 41, "method": "tools/call",
                        "params": {"name": "whoami", "arguments": {}}});
    let response = send(&stack.url, Method::POST, &bob, &sid, Some(whoami)).await;
    assert_404_jsonrpc(response, Some(41)).await;
    let response = send(&stack.url, Method::GET, &bob, &sid, None).await;
    assert_404_jsonrpc(response, None).await;
    let response = send(&stack.url, Method::DELETE, &bob, &sid, None).await;
    assert_404_jsonrpc(response, None).await;
    // The server never saw them.
    assert_eq!(stack.log.lock().unwrap().len(), reached_before);

    // Alice's session still works.
    let response = send(
        &stack.url,
        Method::POST,
        &alice,
        &sid,
        Some(call(5, "tools/list")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    drop(response.bytes().await);

    // DELETE of an id the store never recorded: 404, and the server never sees it.
    let response = send(&stack.url, Method::DELETE, &alice, "never-issued", None).await;
    assert_404_jsonrpc(response, None).await;
    // Alice ends her session; a second DELETE of it is 404 as well.
    let response = send(&stack.url, Method::DELETE, &alice, &sid, None).await;
    assert!(response.status().is_success(), "{}", response.status());
    let response = send(&stack.url, Method::DELETE, &alice, &sid, None).await;
    assert_404_jsonrpc(response, None).await;

    let log = stack.log.lock().unwrap().clone();
    // A modern request with a stray Mcp-Session-Id is not a session request: unaffected.
    let modern = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list",
        "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}});
    let response = post_json(
        &stack.url,
        &modern,
        &[
            ("authorization", bob.as_str()),
            ("mcp-session-id", sid.as_str()),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/list"),
        ],
    )
    .await;
    assert_ne!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        stack.log.lock().unwrap().len(),
        log.len() + 1,
        "it reached the server"
    );

    assert!(
        !log.iter()
            .any(|(_, s, who)| s.as_deref() == Some(sid.as_str()) && who.as_deref() == Some("bob")),
        "{log:?}"
    );
    assert!(
        !log.iter()
            .any(|(_, s, _)| s.as_deref() == Some("never-issued")),
        "{log:?}"
    );

    // Audit: Bob's three attempts are refusals naming Bob and, for audit only, Alice.
    let events = stack.finish().await;
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e.principal().map(Principal::subject) == Some("bob"))
        .filter(|e| e.session_id().map(|s| s.as_str()) == Some(sid.as_str()))
        .collect();
    assert_eq!(refused.len(), 3, "{refused:#?}");
    for event in refused {
        assert_eq!(event.status(), Some(StatusCode::NOT_FOUND));
        let outcome = serde_json::to_value(event).unwrap();
        assert_eq!(outcome["mcp_edge.outcome"], "refused", "{outcome}");
        assert_eq!(outcome["mcp_edge.refused_by"], "session");
        assert_eq!(
            outcome["mcp_edge.refusal.reason"],
            Reason::SessionPrincipalMismatch.as_str()
        );
        assert_eq!(outcome["mcp_edge.principal.subject"], "bob");
        assert_eq!(outcome["mcp_edge.session.owner.subject"], "alice");
        assert_eq!(
            event.session_owner().map(|o| o.subject()),
            Some("alice"),
            "{event:?}"
        );
    }
}
