//! The context types as parameters of rmcp tool and prompt handlers (feature `rmcp`).
//!
//! rmcp hands every handler the HTTP request's [`http::request::Parts`] in
//! `RequestContext::extensions`; what the layers put in the request extensions is inside those
//! parts, one level down, where rmcp's own [`Extension<T>`](rmcp::handler::server::common::Extension)
//! extractor does not look. These impls of rmcp's
//! [`FromContextPart`] reach it, so a tool takes the caller as a parameter:
//!
//! | parameter | what it holds | when it is missing |
//! |---|---|---|
//! | [`Principal`] | the caller the auth layer verified | the call fails with `-32600` (no auth layer in front, or an anonymous caller) |
//! | [`SessionId`] | the legacy session the session layer validated | the call fails with `-32600` (a 2026-07-28 request, or no session layer) |
//! | [`Caller`] | all of the above and the parsed [`McpRequest`], each optional | never fails |
//!
//! ```
//! use mcp_edge::Principal;
//! use mcp_edge::context::Caller;
//! use rmcp::{ServerHandler, handler::server::router::tool::ToolRouter, tool, tool_handler, tool_router};
//!
//! #[derive(Clone)]
//! struct Tools {
//!     tool_router: ToolRouter<Self>,
//! }
//!
//! #[tool_router]
//! impl Tools {
//!     /// Only for authenticated callers: rmcp answers `-32600` for the others.
//!     #[tool(description = "Greets the authenticated caller.")]
//!     async fn hello(&self, principal: Principal) -> String {
//!         format!("hello, {}", principal.subject())
//!     }
//!
//!     /// For everyone: each part is optional.
//!     #[tool(description = "Says who is calling, if anyone.")]
//!     async fn who(&self, caller: Caller) -> String {
//!         caller.principal.map_or("anonymous".to_owned(), |p| p.subject().to_owned())
//!     }
//! }
//!
//! #[tool_handler(router = self.tool_router)]
//! impl ServerHandler for Tools {}
//! # let _ = Tools { tool_router: Tools::tool_router() };
//! ```
//!
//! In axum handlers the same types need nothing of this: `Extension<Principal>` and
//! `Extension<SessionId>` read the request extensions directly.

use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::handler::server::common::{AsRequestContext, FromContextPart};

use super::Principal;
use crate::protocol::{McpRequest, SessionId};

/// Everything the edge learned about a call, each part optional: for handlers that also serve
/// anonymous callers or 2026-07-28 (sessionless) requests. Extracting it never fails.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Caller {
    /// The caller the auth layer verified, if any.
    pub principal: Option<Principal>,
    /// The legacy session the session layer validated, if any.
    pub session: Option<SessionId>,
    /// The request as the inspect layer parsed it, if it ran.
    pub request: Option<Arc<McpRequest>>,
}

/// The request extensions the layers filled in, inside rmcp's context.
fn edge_extensions<C: AsRequestContext>(context: &C) -> Option<&http::Extensions> {
    context
        .as_request_context()
        .extensions
        .get::<http::request::Parts>()
        .map(|parts| &parts.extensions)
}

fn found<T: Clone + Send + Sync + 'static, C: AsRequestContext>(context: &C) -> Option<T> {
    edge_extensions(context)?.get::<T>().cloned()
}

impl<C: AsRequestContext> FromContextPart<C> for Principal {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        found(context).ok_or_else(|| {
            ErrorData::invalid_request("this tool needs an authenticated caller", None)
        })
    }
}

impl<C: AsRequestContext> FromContextPart<C> for SessionId {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        found(context).ok_or_else(|| ErrorData::invalid_request("this tool needs a session", None))
    }
}

impl<C: AsRequestContext> FromContextPart<C> for Caller {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        Ok(Caller {
            principal: found(context),
            session: found(context),
            request: found(context),
        })
    }
}
