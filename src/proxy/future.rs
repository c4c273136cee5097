use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{Response, StatusCode};
use hyper::body::Incoming;
use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::upstream::remove_hop_by_hop;
use crate::error::EdgeBody;
use crate::error::{Reason, RejectedBy, Rejection};
use crate::protocol::RequestId;
use crate::protocol::jsonrpc::code;

type ClientFuture = hyper_util::client::legacy::ResponseFuture;

pin_project! {
    /// The response future of [`HttpUpstream`](super::HttpUpstream): the upstream's response
    /// head, bounded by the response-head timeout, or a `502` / `504` JSON-RPC answer.
    pub struct ResponseFuture {
        #[pin]
        future: ClientFuture,
        #[pin]
        deadline: Option<Sleep>,
        id: Option<RequestId>,
    }
}

impl ResponseFuture {
    pub(super) fn new(
        future: ClientFuture,
        timeout: Option<Duration>,
        id: Option<RequestId>,
    ) -> Self {
        ResponseFuture {
            future,
            deadline: timeout.map(tokio::time::sleep),
            id,
        }
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<EdgeBody<Incoming>>, std::convert::Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.future.poll(cx) {
            return Poll::Ready(Ok(match result {
                Ok(response) => {
                    let (mut parts, body) = response.into_parts();
                    remove_hop_by_hop(&mut parts.headers);
                    Response::from_parts(parts, EdgeBody::new(body))
                }
                Err(err) => {
                    tracing::warn!(error = %err, connect = err.is_connect(), "upstream request failed");
                    Rejection::new(
                        RejectedBy::Proxy,
                        Reason::UpstreamUnavailable,
                        StatusCode::BAD_GATEWAY,
                        code::INTERNAL_ERROR,
                        if err.is_connect() {
                            "Bad Gateway: the upstream could not be reached"
                        } else {
                            "Bad Gateway: the upstream connection failed"
                        },
                    )
                    .with_id(this.id.take())
                    .into_response()
                }
            }));
        }
        if let Some(deadline) = this.deadline.as_pin_mut() {
            ready!(deadline.poll(cx));
            return Poll::Ready(Ok(Rejection::new(
                RejectedBy::Proxy,
                Reason::UpstreamTimeout,
                StatusCode::GATEWAY_TIMEOUT,
                code::INTERNAL_ERROR,
                "Gateway Timeout: the upstream did not answer in time",
            )
            .with_id(this.id.take())
            .into_response()));
        }
        Poll::Pending
    }
}
