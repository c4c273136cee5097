//! Real rmcp 3.11 clients over Streamable HTTP, pinned to one protocol era.
//!
//! How the version is pinned (rmcp 3.11):
//! - legacy: `ClientHandler::get_info().protocol_version = ProtocolVersion::V_2025_11_25` and the
//!   plain `.serve(transport)` (lifecycle `ClientLifecycleMode::Initialize`): `initialize`,
//!   `Mcp-Session-Id`, the GET stream, DELETE on close.
//! - modern: `.serve_with_lifecycle(transport, ClientLifecycleMode::Discover { preferred_versions:
//!   vec![ProtocolVersion::V_2026_07_28] })` (trait `rmcp::ClientServiceExt`): `server/discover`,
//!   then stateless requests with per-request `_meta` and `Mcp-Method`/`Mcp-Name` headers, no
//!   session id. Beware: the plain `.serve()` with rmcp's default `ProtocolVersion::LATEST`
//!   (2026-07-28) still sends `initialize`, and an rmcp 3.11 server negotiates that down to
//!   2025-11-25, so the plain `.serve()` ends up legacy.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use http::{HeaderName, HeaderValue, header::AUTHORIZATION};
use rmcp::{
    ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceError, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResult, ClientConfig, ClientRequest, Implementation,
        ProgressNotificationParam, ProgressToken, ProtocolVersion, Request, ServerResult,
    },
    service::{ClientInitializeError, NotificationContext, PeerRequestOptions, RunningService},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};

use super::http::http_client;

/// A connected rmcp client. Derefs to rmcp's `Peer<RoleClient>`: `list_tools`, `call_tool`,
/// `peer_info`, ...; `cancel().await` closes it (DELETEs the session in the legacy era).
pub type Client = RunningService<RoleClient, TestClient>;

/// The test client's handler: declares the pinned protocol version and records every progress
/// notification it receives.
#[derive(Debug, Clone)]
pub struct TestClient {
    info: ClientConfig,
    progress: Arc<ProgressLog>,
}

/// Every progress notification a [`TestClient`] received, in arrival order.
#[derive(Debug, Default)]
pub struct ProgressLog {
    seen: Mutex<Vec<ProgressNotificationParam>>,
    changed: tokio::sync::Notify,
}

impl ProgressLog {
    /// All notifications received so far for `token`.
    pub fn for_token(&self, token: &ProgressToken) -> Vec<ProgressNotificationParam> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|p| &p.progress_token == token)
            .cloned()
            .collect()
    }

    /// Waits until at least `count` notifications for `token` arrived, or `timeout` passed;
    /// returns what arrived either way (rmcp dispatches notifications on their own tasks, so
    /// the last ones can land just after the response).
    pub async fn wait_for(
        &self,
        token: &ProgressToken,
        count: usize,
        timeout: Duration,
    ) -> Vec<ProgressNotificationParam> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let got = self.for_token(token);
            if got.len() >= count || tokio::time::Instant::now() >= deadline {
                return got;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}

impl TestClient {
    /// A handler announcing `version` in `initialize`.
    pub fn new(version: ProtocolVersion) -> Self {
        let mut info = ClientConfig::default();
        info.protocol_version = version;
        info.client_info = Implementation::new("mcp-edge-tests", env!("CARGO_PKG_VERSION"));
        Self {
            info,
            progress: Arc::default(),
        }
    }

    /// The progress notifications received so far.
    pub fn progress(&self) -> &ProgressLog {
        &self.progress
    }
}

impl ClientHandler for TestClient {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.seen.lock().unwrap().push(params);
        self.progress.changed.notify_waiters();
    }
}

/// `"Bearer {token}"`, for the `*_with_auth` constructors.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Connects an rmcp client speaking `version` to `url` (`initialize` for versions that have
/// it, `server/discover` for 2026-07-28 and later), sending `authorization` (the whole
/// header value, e.g. `"Bearer abc"`) on every request when given. The error is rmcp's, for
/// tests that expect the connection to be refused.
pub async fn try_connect(
    url: &str,
    version: ProtocolVersion,
    authorization: Option<&str>,
) -> Result<Client, ClientInitializeError> {
    let mut headers: HashMap<HeaderName, HeaderValue> = HashMap::new();
    if let Some(value) = authorization {
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(value).expect("valid Authorization value"),
        );
    }
    let config =
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).custom_headers(headers);
    let transport = StreamableHttpClientTransport::with_client(http_client(), config);
    let handler = TestClient::new(version.clone());
    if version.has_initialize() {
        handler.serve(transport).await
    } else {
        handler
            .serve_with_lifecycle(
                transport,
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![version],
                },
            )
            .await
    }
}

async fn connect(url: &str, version: ProtocolVersion, authorization: Option<&str>) -> Client {
    match try_connect(url, version.clone(), authorization).await {
        Ok(client) => client,
        Err(e) => panic!("rmcp client ({version}) failed to connect to {url}: {e}"),
    }
}

/// An rmcp client pinned to 2025-11-25 (legacy: `initialize`, `Mcp-Session-Id`, GET stream).
pub async fn legacy_client(url: &str) -> Client {
    connect(url, ProtocolVersion::V_2025_11_25, None).await
}

/// An rmcp client on 2026-07-28 (`server/discover` lifecycle: stateless, no session id).
pub async fn modern_client(url: &str) -> Client {
    connect(url, ProtocolVersion::V_2026_07_28, None).await
}

/// [`legacy_client`] sending `Authorization: {authorization}` on every request.
pub async fn legacy_client_with_auth(url: &str, authorization: &str) -> Client {
    connect(url, ProtocolVersion::V_2025_11_25, Some(authorization)).await
}

/// [`modern_client`] sending `Authorization: {authorization}` on every request.
pub async fn modern_client_with_auth(url: &str, authorization: &str) -> Client {
    connect(url, ProtocolVersion::V_2026_07_28, Some(authorization)).await
}

/// Builds `tools/call` params from a JSON object literal.
pub fn tool_params(name: &'static str, arguments: serde_json::Value) -> CallToolRequestParams {
    let params = CallToolRequestParams::new(name);
    match arguments {
        serde_json::Value::Object(map) => params.with_arguments(map),
        serde_json::Value::Null => params,
        other => panic!("tool arguments must be an object, got {other}"),
    }
}

/// Calls tool `name` with `arguments` (a JSON object, or `null`).
pub async fn call_tool(
    client: &Client,
    name: &'static str,
    arguments: serde_json::Value,
) -> Result<CallToolResult, ServiceError> {
    client.call_tool(tool_params(name, arguments)).await
}

/// Calls tool `name` and returns its result together with the progress notifications sent to
/// this call's progress token, waiting up to 5 s after the response for `expected_progress`
/// of them to be dispatched.
pub async fn call_tool_with_progress(
    client: &Client,
    name: &'static str,
    arguments: serde_json::Value,
    expected_progress: usize,
) -> (
    Result<CallToolResult, ServiceError>,
    Vec<ProgressNotificationParam>,
) {
    let request = ClientRequest::CallToolRequest(Request::new(tool_params(name, arguments)));
    let handle = client
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .expect("send tools/call");
    let token = handle.progress_token.clone();
    let result = handle.await_response().await.and_then(|r| match r {
        ServerResult::CallToolResult(r) => Ok(r),
        _ => Err(ServiceError::UnexpectedResponse),
    });
    let progress = client
        .service()
        .progress()
        .wait_for(&token, expected_progress, Duration::from_secs(5))
        .await;
    (result, progress)
}

/// The concatenated text content of a tool result.
pub fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text())
        .map(|t| t.text.as_str())
        .collect()
}
