use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body::Body;
use tower_service::Service;

use super::Config;
use super::ResumeBody;
use super::cursor::{Owner, StreamKind};
use super::future::ResponseFuture;
use crate::context::Principal;
use crate::error::{Reason, RejectedBy, Rejection};
use crate::protocol::header::{LAST_EVENT_ID, MCP_PROTOCOL_VERSION, MCP_SESSION_ID};
use crate::protocol::{Era, McpRequest, ProtocolVersion, SessionId};

/// The service built by [`ResumeLayer`](super::ResumeLayer).
#[derive(Clone)]
pub struct Resume<S> {
    pub(super) inner: S,
    pub(super) config: Arc<Config>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Resume<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resume")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Resume<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes> + Send + 'static,
{
    type Response = Response<ResumeBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let Some((kind, prime)) = tracked_kind(&request) else {
            if request.method() == Method::DELETE
                && let Some(session) = owner_of(&request).session
            {
                // The session ends: so do its recorded streams, once the server agrees.
                let future = self.inner.call(request);
                return ResponseFuture::delete(future, Arc::clone(&self.config), session);
            }
            return ResponseFuture::passthrough(self.inner.call(request));
        };
        let owner = owner_of(&request);
        if kind == StreamKind::Get
            && let Some(last) = request.headers().get(LAST_EVENT_ID)
        {
            let Some(cursor) = self.config.sealer.check(last.as_bytes(), &owner) else {
                return ResponseFuture::rejected(Rejection::of(
                    RejectedBy::Sse,
                    Reason::EventIdUnknown,
                ));
            };
            let fresh = match cursor.kind {
                StreamKind::Post => None,
                StreamKind::Get => {
                    // The replayed GET stream goes on as a fresh one from the server.
                    request.headers_mut().remove(LAST_EVENT_ID);
                    Some((self.inner.call(request), owner))
                }
            };
            return ResponseFuture::replay(Arc::clone(&self.config), cursor, fresh, prime);
        }
        let future = self.inner.call(request);
        ResponseFuture::track(future, Arc::clone(&self.config), kind, owner, prime)
    }
}

/// Which streams are recorded: legacy-era (R21: none in 2026-07-28) GET streams and POST
/// streams, except an `initialize`'s answer (the session starts there); and whether the
/// client takes a priming event (2025-11-25, R19; older clients choke on empty data, §L.5).
fn tracked_kind<B>(request: &Request<B>) -> Option<(StreamKind, bool)> {
    let mcp = request.extensions().get::<Arc<McpRequest>>();
    let version = match mcp {
        Some(mcp) => Some(mcp.version()),
        None => request
            .headers()
            .get(MCP_PROTOCOL_VERSION)
            .and_then(|v| ProtocolVersion::from_header(v.as_bytes()).ok()),
    };
    // R34: no header means 2025-03-26.
    if version.is_some_and(|v| v.era() != Era::Legacy) {
        return None;
    }
    let prime = version.is_some_and(|v| v >= ProtocolVersion::V2025_11_25);
    let kind = match *request.method() {
        Method::GET => StreamKind::Get,
        Method::POST if mcp.is_some_and(|m| m.is_initialize()) => return None,
        Method::POST => StreamKind::Post,
        _ => return None,
    };
    Some((kind, prime))
}

/// The session (as the session layer resolved it, else as the client named it) and the
/// principal (as the auth layer verified it) a stream belongs to.
fn owner_of<B>(request: &Request<B>) -> Owner {
    let session = request
        .extensions()
        .get::<SessionId>()
        .cloned()
        .or_else(|| {
            request
                .headers()
                .get(MCP_SESSION_ID)
                .and_then(|v| SessionId::from_header(v).ok())
        });
    Owner::new(session, request.extensions().get::<Principal>())
}
