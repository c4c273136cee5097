//! The demo MCP server used by the examples and by the integration tests.
//!
//! An ordinary rmcp 3.11 tool server with three tools:
//!
//! - `echo { text }` returns `text`;
//! - `slow_count { n, delay_ms }` sends `n` progress notifications `delay_ms` apart (over the
//!   request's SSE stream, to the request's progress token), then returns `"counted to n"`;
//! - `whoami {}` returns, as JSON, what the server knows of the caller: the
//!   `mcp_edge::Principal` subject put there by the auth layer, the session id, and the
//!   protocol version of the request.
//!
//! Nothing in here knows about mcp-edge's layers except `whoami`, which reads the request
//! extensions the layers fill in. rmcp passes the HTTP request's `http::request::Parts` to every
//! handler in `RequestContext::extensions`, so anything a tower layer inserts into the request
//! extensions is visible to your tools the same way.

use std::time::Duration;

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{Implementation, ProgressNotificationParam, ServerCapabilities, ServerConfig},
    service::RequestContext,
    tool, tool_handler, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;

/// Upper bound for `slow_count`'s `n`, so a caller cannot keep a stream open forever.
pub const MAX_COUNT: u32 = 10_000;
/// Upper bound for `slow_count`'s `delay_ms`.
pub const MAX_DELAY_MS: u64 = 60_000;

/// Arguments of `echo`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct EchoArgs {
    /// The text to send back.
    pub text: String,
}

/// Arguments of `slow_count`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SlowCountArgs {
    /// How many progress notifications to send (at most 10000).
    pub n: u32,
    /// Milliseconds to wait before each notification (at most 60000).
    #[serde(default)]
    pub delay_ms: u64,
}

/// The demo tool server. Cheap to construct: build one per rmcp session.
#[derive(Debug, Clone)]
pub struct DemoTools {
    tool_router: ToolRouter<Self>,
}

impl Default for DemoTools {
    fn default() -> Self {
        Self::new()
    }
}

impl DemoTools {
    /// A new server with the three tools.
    pub fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_router]
impl DemoTools {
    /// Returns its `text` argument.
    #[tool(description = "Returns its `text` argument unchanged.")]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> String {
        args.text
    }

    /// Sends `n` progress notifications, `delay_ms` apart, then returns "counted to n".
    #[tool(
        description = "Sends `n` progress notifications `delay_ms` milliseconds apart, then returns \"counted to n\"."
    )]
    async fn slow_count(
        &self,
        Parameters(args): Parameters<SlowCountArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<String, ErrorData> {
        if args.n > MAX_COUNT || args.delay_ms > MAX_DELAY_MS {
            return Err(ErrorData::invalid_params(
                format!("n must be at most {MAX_COUNT} and delay_ms at most {MAX_DELAY_MS}"),
                None,
            ));
        }
        let token = ctx.meta.get_progress_token();
        let delay = Duration::from_millis(args.delay_ms);
        for i in 1..=args.n {
            tokio::select! {
                // The client cancelled (or, in 2026-07-28, closed the stream): stop counting.
                _ = ctx.ct.cancelled() => {
                    return Err(ErrorData::internal_error("cancelled", None));
                }
                _ = tokio::time::sleep(delay) => {}
            }
            if let Some(token) = &token {
                let progress = ProgressNotificationParam::new(token.clone(), f64::from(i))
                    .with_total(f64::from(args.n))
                    .with_message(format!("{i}/{}", args.n));
                if ctx.peer.notify_progress(progress).await.is_err() {
                    // The stream is gone; nobody is listening any more.
                    return Err(ErrorData::internal_error("client went away", None));
                }
            }
        }
        Ok(format!("counted to {}", args.n))
    }

    /// Returns what the server knows of the caller, as JSON.
    #[tool(
        description = "Returns what the server knows of the caller: authenticated subject, session id and protocol version."
    )]
    async fn whoami(&self, ctx: RequestContext<RoleServer>) -> String {
        let parts = ctx.extensions.get::<http::request::Parts>();
        let subject = parts
            .and_then(|p| p.extensions.get::<mcp_edge::Principal>())
            .map(|p| p.subject().to_owned());
        // mcp-edge's session layer puts the validated `SessionId` in the extensions; without
        // it, fall back to the raw header rmcp saw.
        let session_id = parts.and_then(|p| {
            p.extensions
                .get::<mcp_edge::SessionId>()
                .map(|id| id.as_str().to_owned())
                .or_else(|| header(p, "mcp-session-id"))
        });
        let protocol_version = parts.and_then(|p| header(p, "mcp-protocol-version"));
        serde_json::json!({
            "subject": subject,
            "session_id": session_id,
            "protocol_version": protocol_version,
        })
        .to_string()
    }
}

fn header(parts: &http::request::Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DemoTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "mcp-edge-demo",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions("Demo tools: echo, slow_count, whoami.")
    }
}
