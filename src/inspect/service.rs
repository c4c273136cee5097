use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use http::{HeaderMap, Method, Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::InspectLayer;
use crate::context::McpRequestSlot;
use crate::error::EdgeBody;
use crate::error::{Reason, RejectedBy, Rejection};
use crate::protocol::{BodyKind, McpRequest, body_kind};

/// The service built by [`InspectLayer`].
#[derive(Debug, Clone)]
pub struct Inspect<S> {
    pub(super) inner: S,
    pub(super) config: InspectLayer,
}

impl<S> Inspect<S> {
    /// Wraps `inner` with the default configuration.
    pub fn new(inner: S) -> Self {
        InspectLayer::new().layer(inner)
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Inspect<S>
where
    S: Service<Request<EdgeBody<ReqBody>>, Response = Response<ResBody>> + Clone,
    ReqBody: Body<Data = Bytes>,
{
    type Response = Response<EdgeBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let method = request.method();
        if method == Method::POST {
            if let Err(rejection) = check_post_head(&request, self.config.max_body_bytes) {
                return ResponseFuture::rejected(rejection);
            }
            // The body is read before the inner service is called: take the service that was
            // driven to readiness and leave a clone in its place (as tower-http does).
            let clone = self.inner.clone();
            let inner = std::mem::replace(&mut self.inner, clone);
            let (parts, body) = request.into_parts();
            return ResponseFuture::collecting(
                inner,
                parts,
                body,
                self.config.max_body_bytes,
                self.config.body_budget,
            );
        }
        let classified = if method == Method::GET || method == Method::DELETE {
            match McpRequest::classify(method, request.headers(), None) {
                Ok(mcp) => Some(Arc::new(mcp)),
                Err(err) => return ResponseFuture::rejected(Rejection::protocol(&err)),
            }
        } else {
            None
        };
        let (mut parts, body) = request.into_parts();
        if let Some(mcp) = &classified {
            if let Some(slot) = parts.extensions.get::<McpRequestSlot>() {
                slot.fill(mcp);
            }
            parts.extensions.insert(Arc::clone(mcp));
        }
        let future = self
            .inner
            .call(Request::from_parts(parts, EdgeBody::new(body)));
        ResponseFuture::calling(future, classified)
    }
}

/// Cheap checks on a POST before any body byte is read.
fn check_post_head<B>(request: &Request<B>, limit: usize) -> Result<(), Rejection> {
    if body_kind(request.headers()) != BodyKind::Json {
        return Err(Rejection::of(
            RejectedBy::Inspect,
            Reason::UnsupportedMediaType,
        ));
    }
    if !is_identity_encoding(request.headers()) {
        return Err(Rejection::of(
            RejectedBy::Inspect,
            Reason::UnsupportedContentEncoding,
        ));
    }
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(Rejection::body_too_large(limit));
    }
    Ok(())
}

/// No `Content-Encoding`, or only `identity`. The body is never decoded here: a compressed one
/// would be read as JSON by the edge and decoded (or not) by the server behind.
fn is_identity_encoding(headers: &HeaderMap) -> bool {
    headers.get_all(CONTENT_ENCODING).iter().all(|value| {
        value.to_str().is_ok_and(|value| {
            value
                .split(',')
                .map(str::trim)
                .all(|coding| coding.is_empty() || coding.eq_ignore_ascii_case("identity"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::is_identity_encoding;

    #[test]
    fn identity_encodings() {
        let encoded = |values: &[&str]| {
            let mut headers = http::HeaderMap::new();
            for value in values {
                headers.append("content-encoding", value.parse().unwrap());
            }
            is_identity_encoding(&headers)
        };
        assert!(encoded(&[]));
        assert!(encoded(&["identity"]));
        assert!(encoded(&["Identity, identity", "IDENTITY"]));
        assert!(!encoded(&["gzip"]));
        assert!(!encoded(&["identity, gzip"]));
        assert!(!encoded(&["identity", "br"]));
        assert!(!encoded(&["x-identity"]));
    }
}
