use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::Config;
use super::{SseBody, SseLayer};
use crate::protocol::header::MCP_PROTOCOL_VERSION;
use crate::protocol::{Era, McpRequest, ProtocolVersion};

/// The service built by [`SseLayer`].
#[derive(Debug, Clone)]
pub struct Sse<S> {
    pub(super) inner: S,
    pub(super) config: Arc<Config>,
}

impl<S> Sse<S> {
    /// Wraps `inner` with the default configuration.
    pub fn new(inner: S) -> Self {
        SseLayer::new().layer(inner)
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Sse<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes>,
{
    type Response = Response<SseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let may_retry = may_send_retry(&request);
        ResponseFuture {
            future: self.inner.call(request),
            config: Some(Arc::clone(&self.config)),
            may_retry,
        }
    }
}

/// Whether the client negotiated a version that knows SSE polling (R20): 2025-11-25 in the
/// legacy era. The version comes from the `Arc<McpRequest>` that `InspectLayer` put in the
/// request extensions, or else from the `MCP-Protocol-Version` header; when neither tells,
/// the layer assumes an old client and never writes `retry:` (§L.5).
fn may_send_retry<B>(request: &Request<B>) -> bool {
    let version = match request.extensions().get::<Arc<McpRequest>>() {
        Some(mcp) => Some(mcp.version()),
        None => request
            .headers()
            .get(MCP_PROTOCOL_VERSION)
            .and_then(|v| ProtocolVersion::from_header(v.as_bytes()).ok()),
    };
    version.is_some_and(|v| v >= ProtocolVersion::V2025_11_25 && v.era() == Era::Legacy)
}
