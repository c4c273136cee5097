use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::deadline::{BodyBudget, BodyTimer};
use crate::context::McpRequestSlot;
use crate::error::EdgeBody;
use crate::error::{Reason, RejectedBy, Rejection};
use crate::protocol::McpRequest;

pin_project! {
    /// The response future of [`Inspect`](super::Inspect): reads a POST body, then calls the
    /// inner service.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<EdgeBody<B>>>,
    {
        #[pin]
        state: State<S, B, S::Future>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B, F> {
        Collecting {
            #[pin]
            body: B,
            parts: Option<Parts>,
            inner: Option<S>,
            collected: Collected,
            limit: usize,
            #[pin]
            timer: BodyTimer,
        },
        Calling {
            #[pin]
            future: F,
            mcp: Option<Arc<McpRequest>>,
        },
        Rejected {
            rejection: Option<Rejection>,
        },
    }
}

/// The body so far: a single chunk is kept as it came (zero-copy); more are joined.
#[derive(Default)]
struct Collected {
    first: Option<Bytes>,
    joined: BytesMut,
    len: usize,
}

impl Collected {
    fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len();
        if chunk.is_empty() {
            return;
        }
        if self.first.is_none() && self.joined.is_empty() {
            self.first = Some(chunk);
            return;
        }
        if let Some(first) = self.first.take() {
            self.joined.reserve(first.len() + chunk.len());
            self.joined.extend_from_slice(&first);
        }
        self.joined.extend_from_slice(&chunk);
    }

    fn finish(&mut self) -> Bytes {
        match self.first.take() {
            Some(first) => first,
            None => std::mem::take(&mut self.joined).freeze(),
        }
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<EdgeBody<B>>>,
{
    pub(super) fn collecting(
        inner: S,
        parts: Parts,
        body: B,
        limit: usize,
        budget: BodyBudget,
    ) -> Self {
        ResponseFuture {
            state: State::Collecting {
                body,
                parts: Some(parts),
                inner: Some(inner),
                collected: Collected::default(),
                limit,
                timer: BodyTimer::new(budget),
            },
        }
    }

    pub(super) fn calling(future: S::Future, mcp: Option<Arc<McpRequest>>) -> Self {
        ResponseFuture {
            state: State::Calling { future, mcp },
        }
    }

    pub(super) fn rejected(rejection: Rejection) -> Self {
        ResponseFuture {
            state: State::Rejected {
                rejection: Some(rejection),
            },
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<EdgeBody<B>>, Response = Response<ResBody>>,
    B: Body<Data = Bytes>,
{
    type Output = Result<Response<EdgeBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Collecting {
                    mut body,
                    parts,
                    inner,
                    collected,
                    limit,
                    timer,
                } => {
                    let Poll::Ready(frame) = body.as_mut().poll_frame(cx) else {
                        ready!(timer.poll_expired(cx, collected.len));
                        return Poll::Ready(Ok(Rejection::body_timeout().into_response()));
                    };
                    match frame {
                        Some(Ok(frame)) => {
                            if let Ok(data) = frame.into_data() {
                                if collected.len + data.len() > *limit {
                                    return Poll::Ready(Ok(
                                        Rejection::body_too_large(*limit).into_response()
                                    ));
                                }
                                collected.push(data);
                            }
                            continue;
                        }
                        Some(Err(_)) => {
                            return Poll::Ready(Ok(Rejection::of(
                                RejectedBy::Inspect,
                                Reason::BodyUnreadable,
                            )
                            .into_response()));
                        }
                        None => {}
                    }
                    let bytes = collected.finish();
                    let (Some(mut parts), Some(mut inner)) = (parts.take(), inner.take()) else {
                        unreachable!("Collecting is left as soon as the body ends");
                    };
                    let mcp =
                        match McpRequest::classify(&parts.method, &parts.headers, Some(&bytes)) {
                            Ok(mcp) => Arc::new(mcp),
                            Err(err) => {
                                return Poll::Ready(Ok(Rejection::protocol(&err).into_response()));
                            }
                        };
                    if let Some(slot) = parts.extensions.get::<McpRequestSlot>() {
                        slot.fill(&mcp);
                    }
                    parts.extensions.insert(Arc::clone(&mcp));
                    mcp.remove_superseded_headers(&mut parts.headers);
                    let future = inner.call(Request::from_parts(parts, EdgeBody::full(bytes)));
                    this.state.set(State::Calling {
                        future,
                        mcp: Some(mcp),
                    });
                }
                StateProj::Calling { future, mcp } => {
                    let response = ready!(future.poll(cx))?;
                    let (mut parts, body) = response.into_parts();
                    if let Some(mcp) = mcp.take() {
                        parts.extensions.insert(mcp);
                    }
                    return Poll::Ready(Ok(Response::from_parts(parts, EdgeBody::new(body))));
                }
                StateProj::Rejected { rejection } => {
                    let rejection = rejection.take().expect("polled after completion");
                    return Poll::Ready(Ok(rejection.into_response()));
                }
            }
        }
    }
}
