use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::body::LimitBody;
use super::decide::Admission;
use crate::context::LimitNote;
use crate::error::EdgeBody;
use crate::error::Rejection;
use crate::protocol::{BodyKind, body_kind};

/// A shared-store decision in flight: `Ok` to go on, `Err` with the refusal (a limit, or the
/// store's failure under a fail-closed rule). Boxed: it crosses the network anyway.
pub(crate) type RemoteDecision =
    Pin<Box<dyn Future<Output = Result<RemotePass, Rejection>> + Send>>;

/// What a call let through by the shared store carries on.
#[derive(Debug, Default)]
pub(crate) struct RemotePass {
    /// The places (leases) it holds in the shared store's concurrency budgets.
    pub(crate) permits: Vec<super::decide::Permit>,
    /// Set when the store failed and the rules failed open.
    pub(crate) note: Option<LimitNote>,
}

/// A call waiting for the shared store's decision.
pub(crate) struct Waiting<S, B> {
    decision: RemoteDecision,
    inner: Option<S>,
    request: Option<Request<B>>,
    admission: Option<Admission>,
}

pin_project! {
    /// The response future of [`Limit`](super::Limit): the inner service's future (its body
    /// wrapped in a [`LimitBody`]), a refusal ready at once, or first a shared-store decision.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B, S::Future>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B, F> {
        Deciding {
            // Boxed: only calls that wait for the shared store pay for the room.
            waiting: Box<Waiting<S, B>>,
        },
        Calling {
            #[pin]
            future: F,
            admission: Option<Admission>,
            note: Option<LimitNote>,
        },
        Rejected {
            rejection: Option<Rejection>,
        },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(super) fn calling(future: S::Future, admission: Admission) -> Self {
        ResponseFuture {
            state: State::Calling {
                future,
                admission: Some(admission),
                note: None,
            },
        }
    }

    pub(super) fn rejected(rejection: Rejection) -> Self {
        ResponseFuture {
            state: State::Rejected {
                rejection: Some(rejection),
            },
        }
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) fn deciding(
        decision: RemoteDecision,
        inner: S,
        request: Request<B>,
        admission: Admission,
    ) -> Self {
        ResponseFuture {
            state: State::Deciding {
                waiting: Box::new(Waiting {
                    decision,
                    inner: Some(inner),
                    request: Some(request),
                    admission: Some(admission),
                }),
            },
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Output = Result<Response<EdgeBody<LimitBody<ResBody>>>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut state = self.as_mut().project().state;
            let next = match state.as_mut().project() {
                StateProj::Deciding { waiting } => {
                    let verdict = ready!(waiting.decision.as_mut().poll(cx));
                    match verdict {
                        Ok(pass) => {
                            let mut inner = waiting.inner.take().expect("polled after completion");
                            let mut request =
                                waiting.request.take().expect("polled after completion");
                            if let Some(note) = pass.note {
                                request.extensions_mut().insert(note);
                            }
                            let mut admission = waiting.admission.take().unwrap_or_default();
                            admission.permits.extend(pass.permits);
                            State::Calling {
                                future: inner.call(request),
                                admission: Some(admission),
                                note: pass.note,
                            }
                        }
                        Err(rejection) => State::Rejected {
                            rejection: Some(rejection),
                        },
                    }
                }
                StateProj::Calling {
                    future,
                    admission,
                    note,
                } => {
                    let mut response = ready!(future.poll(cx))?;
                    if let Some(note) = note.take() {
                        response.extensions_mut().insert(note);
                    }
                    let admission = admission.take().unwrap_or_default();
                    // Only streams under a lifetime or idle rule are watched.
                    let timed = admission.lifetime.is_some() || admission.idle.is_some();
                    let sse = timed && body_kind(response.headers()) == BodyKind::Sse;
                    return Poll::Ready(Ok(response.map(|body| {
                        EdgeBody::new(if admission.is_empty() {
                            LimitBody::unlimited(body)
                        } else {
                            LimitBody::new(body, admission, sse)
                        })
                    })));
                }
                StateProj::Rejected { rejection } => {
                    let rejection = rejection.take().expect("polled after completion");
                    return Poll::Ready(Ok(rejection.into_response()));
                }
            };
            state.set(next);
        }
    }
}
