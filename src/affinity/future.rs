use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::body::ReplicaBody;
use super::router::{AffinityRouter, Call, Learned, Strategy, finish};
use super::set::InFlight;
use super::table::CachedPin;
use crate::context::Principal;
use crate::error::EdgeBody;
use crate::error::{RejectedBy, Rejection};
use crate::protocol::{RequestId, SessionId};
use crate::store::{Resolution, SessionRecord, StoreFuture};

pin_project! {
    /// The response future of [`AffinityRouter`]: looks up a table pin when the local cache
    /// misses, waits for the replica to be ready and to answer, and for the table strategy
    /// writes what it learned before handing the response out.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B, S::Future, S::Response>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B, F, R> {
        Lookup {
            future: StoreFuture<Option<SessionRecord>>,
            router: Option<AffinityRouter<S>>,
            request: Option<Request<B>>,
            session: Option<SessionId>,
            id: Option<RequestId>,
        },
        Ready {
            service: S,
            request: Option<Request<B>>,
            call: Option<(Call<S>, InFlight)>,
        },
        Calling {
            #[pin]
            future: F,
            call: Option<(Call<S>, InFlight)>,
        },
        Writing {
            write: PendingWrite,
            response: Option<R>,
            in_flight: Option<InFlight>,
        },
        Removing {
            future: StoreFuture<bool>,
            rejection: Option<Rejection>,
        },
        Rejected {
            rejection: Option<Rejection>,
        },
    }
}

/// A store write the response waits for.
pub(crate) struct PendingWrite {
    future: StoreFuture<()>,
    /// A failed write replaces the response with a 503 (the pin of a new session must be
    /// shared before the client can use it from another gateway).
    fail_closed: bool,
}

impl PendingWrite {
    pub(crate) fn fail_closed(future: StoreFuture<()>) -> Self {
        PendingWrite {
            future,
            fail_closed: true,
        }
    }

    pub(crate) fn best_effort(future: StoreFuture<()>) -> Self {
        PendingWrite {
            future,
            fail_closed: false,
        }
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn rejected(rejection: Rejection) -> Self {
        ResponseFuture {
            state: State::Rejected {
                rejection: Some(rejection),
            },
        }
    }

    pub(crate) fn calling(
        service: S,
        request: Request<B>,
        call: Call<S>,
        in_flight: InFlight,
    ) -> Self {
        ResponseFuture {
            state: State::Ready {
                service,
                request: Some(request),
                call: Some((call, in_flight)),
            },
        }
    }

    pub(crate) fn lookup(
        router: AffinityRouter<S>,
        future: StoreFuture<Option<SessionRecord>>,
        request: Request<B>,
        session: SessionId,
        id: Option<RequestId>,
    ) -> Self {
        ResponseFuture {
            state: State::Lookup {
                future,
                router: Some(router),
                request: Some(request),
                session: Some(session),
                id,
            },
        }
    }

    pub(crate) fn removing(future: StoreFuture<bool>, rejection: Rejection) -> Self {
        ResponseFuture {
            state: State::Removing {
                future,
                rejection: Some(rejection),
            },
        }
    }
}

impl<S, B, RB> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone,
    RB: Body,
{
    type Output = Result<Response<EdgeBody<ReplicaBody<RB>>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Lookup {
                    future,
                    router,
                    request,
                    session,
                    id,
                } => {
                    let result = ready!(Pin::new(future).poll(cx));
                    let (Some(router), Some(request), Some(session)) =
                        (router.take(), request.take(), session.take())
                    else {
                        panic!("ResponseFuture polled after completion");
                    };
                    if let Err(err) = &result {
                        tracing::warn!(%err, "session store lookup failed");
                    }
                    let principal = request.extensions().get::<Principal>();
                    let next = match Resolution::judge(result, principal)
                        .into_admitted(RejectedBy::Affinity, id.clone())
                    {
                        Ok(record) => {
                            let pinned = record.replica().map(|r| r.id());
                            let resolved = router.follow_pin(&session, pinned, id.take());
                            if let (Strategy::Table(table), Some(replica)) =
                                (&router.config.strategy, record.replica())
                                && router.replicas.by_id(replica.id()).is_some()
                            {
                                table.remember(
                                    session.clone(),
                                    CachedPin::from_record(&record, replica.clone()),
                                );
                            }
                            router.dispatch_resolved(resolved, request, session)
                        }
                        Err(rejection) => ResponseFuture::rejected(rejection),
                    };
                    this.state.set(next.state);
                }
                StateProj::Ready {
                    service,
                    request,
                    call,
                } => {
                    if let Err(err) = ready!(service.poll_ready(cx)) {
                        if let Some((call, _)) = call.take() {
                            call.router
                                .replicas
                                .eject(&call.entry.load, call.router.config.backoff);
                        }
                        return Poll::Ready(Err(err));
                    }
                    let request = request.take().expect("polled after completion");
                    let future = service.call(request);
                    let call = call.take();
                    this.state.set(State::Calling { future, call });
                }
                StateProj::Calling { future, call } => {
                    let result = ready!(future.poll(cx));
                    let (call, in_flight) = call.take().expect("polled after completion");
                    let mut response = match result {
                        Ok(response) => response,
                        Err(err) => {
                            call.router
                                .replicas
                                .eject(&call.entry.load, call.router.config.backoff);
                            return Poll::Ready(Err(err));
                        }
                    };
                    match call.router.learn(&call, &mut response) {
                        Learned::Done => return Poll::Ready(Ok(finish(response, in_flight))),
                        Learned::Write(write) => {
                            this.state.set(State::Writing {
                                write,
                                response: Some(response),
                                in_flight: Some(in_flight),
                            });
                        }
                        Learned::Reject(rejection) => {
                            return Poll::Ready(Ok(rejection.into_response()));
                        }
                        Learned::Remove(future, rejection) => {
                            this.state
                                .set(ResponseFuture::removing(future, rejection).state);
                        }
                    }
                }
                StateProj::Writing {
                    write,
                    response,
                    in_flight,
                } => {
                    let result = ready!(Pin::new(&mut write.future).poll(cx));
                    let (Some(response), Some(in_flight)) = (response.take(), in_flight.take())
                    else {
                        panic!("ResponseFuture polled after completion");
                    };
                    if let Err(err) = result {
                        tracing::warn!(%err, "writing a session pin failed");
                        if write.fail_closed {
                            return Poll::Ready(Ok(err
                                .to_rejection(RejectedBy::Affinity)
                                .into_response()));
                        }
                    }
                    return Poll::Ready(Ok(finish(response, in_flight)));
                }
                StateProj::Removing { future, rejection } => {
                    if let Err(err) = ready!(Pin::new(future).poll(cx)) {
                        tracing::warn!(%err, "removing a session record failed");
                    }
                    let rejection = rejection.take().expect("polled after completion");
                    return Poll::Ready(Ok(rejection.into_response()));
                }
                StateProj::Rejected { rejection } => {
                    let rejection = rejection.take().expect("polled after completion");
                    return Poll::Ready(Ok(rejection.into_response()));
                }
            }
        }
    }
}
