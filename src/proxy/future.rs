use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use hyper::body::Incoming;
use pin_project_lite::pin_project;

use super::pool::Failure;
use super::upstream::remove_hop_by_hop;
use crate::error::EdgeBody;
use crate::error::{RejectedBy, Rejection};
use crate::protocol::RequestId;

/// The one allocation per request: it erases the request body type, so this future (and
/// [`HttpUpstream`](super::HttpUpstream)'s response type) is the same for every body.
type SendFuture = Pin<Box<dyn Future<Output = Result<Response<Incoming>, Failure>> + Send>>;

pin_project! {
    /// The response future of [`HttpUpstream`](super::HttpUpstream): the upstream's response
    /// head, bounded by the response-head timeout (kept by the connection's driver: no timer
    /// per request), or a `502` / `504` JSON-RPC answer. The `502` for a connection that
    /// could not be made carries the [`std::io::ErrorKind`] in its extensions
    /// (`ConnectionRefused`: nothing listens at the upstream address).
    pub struct ResponseFuture {
        future: SendFuture,
        id: Option<RequestId>,
    }
}

impl ResponseFuture {
    pub(super) fn new(future: SendFuture, id: Option<RequestId>) -> Self {
        ResponseFuture { future, id }
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<EdgeBody<Incoming>>, std::convert::Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Poll::Ready(result) = this.future.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        Poll::Ready(Ok(match result {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                remove_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, EdgeBody::new(body))
            }
            Err(failure) => {
                let id = this.id.take();
                // A connect failure's kind (refused: nothing listens there) goes in the
                // extensions, for the affinity router to tell a dead replica from a blip.
                let connect_error = match &failure {
                    Failure::Connect(err) => Some(err.kind()),
                    #[cfg(feature = "proxy-tls")]
                    Failure::Tls(err) => Some(err.kind()),
                    _ => None,
                };
                let mut response = match failure {
                    Failure::Connect(_) => {
                        tracing::warn!(error = %failure, "upstream unreachable");
                        Rejection::upstream_unavailable(RejectedBy::Proxy, id)
                    }
                    #[cfg(feature = "proxy-tls")]
                    Failure::Tls(_) => {
                        tracing::warn!(error = %failure, "upstream TLS handshake failed");
                        Rejection::upstream_unavailable(RejectedBy::Proxy, id)
                            .with_message("Bad Gateway: the TLS handshake with the upstream failed")
                    }
                    Failure::Send(_) => {
                        tracing::warn!(error = %failure, "upstream request failed");
                        Rejection::upstream_connection_failed(RejectedBy::Proxy, id)
                    }
                    Failure::Timeout => {
                        tracing::warn!("upstream sent no response head in time");
                        Rejection::upstream_timeout(RejectedBy::Proxy, id)
                    }
                }
                .into_response();
                if let Some(kind) = connect_error {
                    response.extensions_mut().insert(kind);
                }
                response
            }
        }))
    }
}
