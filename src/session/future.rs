use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::layer::{Config, SessionMode};
use crate::context::Principal;
use crate::context::Replica;
use crate::error::EdgeBody;
use crate::error::{Reason, RejectedBy, Rejection};
use crate::protocol::header::MCP_SESSION_ID;
use crate::protocol::jsonrpc::code;
use crate::protocol::{ClientInfo, ProtocolVersion, RequestId, SessionId};
use crate::store::{SessionCount, SessionRecord, StoreError, StoreFuture};

/// What the store answered before the request goes in.
pub(super) enum Check {
    Count(SessionCount),
    Record(Option<SessionRecord>),
}

/// What the session layer does around one legacy request.
pub(super) enum Plan {
    /// An `initialize` POST: learn the id from the response.
    Initialize {
        principal: Option<Principal>,
        version: ProtocolVersion,
        client_info: Option<ClientInfo>,
    },
    /// A request bearing a session id.
    Existing {
        id: SessionId,
        principal: Option<Principal>,
        delete: bool,
        header_version: Option<ProtocolVersion>,
        record: Option<SessionRecord>,
    },
}

/// The per-request state the response side needs.
pub(super) struct Ctx {
    pub(super) config: Arc<Config>,
    pub(super) rpc_id: Option<RequestId>,
    pub(super) plan: Plan,
}

impl Ctx {
    fn enforce(&self) -> bool {
        self.config.mode == SessionMode::Enforce
    }

    /// Decides, from the store's answer, whether the request goes in: `Some` is the refusal.
    pub(super) fn decide(&mut self, answer: Result<Check, StoreError>) -> Option<Rejection> {
        let answer = match answer {
            Ok(answer) => answer,
            Err(err) if self.enforce() => {
                tracing::warn!(error = %err, "session store failed; refusing");
                return Some(
                    err.to_rejection(RejectedBy::Session)
                        .with_id(self.rpc_id.clone()),
                );
            }
            Err(err) => {
                tracing::warn!(error = %err, "session store failed; observing only");
                return None;
            }
        };
        match (answer, &mut self.plan) {
            (Check::Count(count), Plan::Initialize { .. }) => {
                if let Some(max) = self.config.max_per_principal
                    && count.principal >= max
                {
                    return Some(
                        session_limit(
                            StatusCode::TOO_MANY_REQUESTS,
                            "Too Many Requests: this principal has too many open sessions",
                        )
                        .with_id(self.rpc_id.clone()),
                    );
                }
                if let Some(max) = self.config.max_total
                    && count.total >= max
                {
                    return Some(
                        session_limit(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "Service Unavailable: too many open sessions",
                        )
                        .with_id(self.rpc_id.clone()),
                    );
                }
                None
            }
            (
                Check::Record(found),
                Plan::Existing {
                    id,
                    principal,
                    record,
                    ..
                },
            ) => {
                let enforce = self.config.mode == SessionMode::Enforce;
                match &found {
                    None if enforce => {
                        return Some(
                            not_found(Reason::SessionNotFound).with_id(self.rpc_id.clone()),
                        );
                    }
                    None => {
                        tracing::debug!(session = %id, "request for a session the edge does not know")
                    }
                    Some(r) if !r.is_bound_to(principal.as_ref()) => {
                        if enforce {
                            tracing::warn!(session = %id, "session presented by another principal; refusing");
                            return Some(
                                not_found(Reason::SessionPrincipalMismatch)
                                    .with_id(self.rpc_id.clone()),
                            );
                        }
                        tracing::warn!(session = %id, "session presented by another principal");
                    }
                    Some(_) => {}
                }
                *record = found;
                None
            }
            _ => None,
        }
    }

    /// Looks at the response head: annotates it and returns the store write to make, if any.
    pub(super) fn finish<B>(&mut self, response: &mut Response<B>) -> Option<StoreFuture<()>> {
        let store = &self.config.store;
        let status = response.status();
        match &mut self.plan {
            Plan::Initialize {
                principal,
                version,
                client_info,
            } => {
                if !status.is_success() {
                    return None;
                }
                let value = response.headers().get(MCP_SESSION_ID)?;
                let id = match SessionId::from_header(value) {
                    Ok(id) => id,
                    Err(err) => {
                        tracing::warn!(error = %err, "server issued an invalid session id; not tracked");
                        return None;
                    }
                };
                response.extensions_mut().insert(id.clone());
                let record = SessionRecord::new(id)
                    .with_principal_key(principal.as_ref().map(|p| p.binding_key().into()))
                    .with_protocol_version(*version)
                    .with_client_info(client_info.take())
                    .with_replica(response.extensions().get::<Replica>().cloned())
                    .with_idle_ttl(self.config.idle_ttl)
                    .with_max_lifetime(self.config.max_lifetime);
                Some(store.insert(record))
            }
            Plan::Existing {
                id,
                principal,
                delete,
                header_version,
                record,
            } => {
                response.extensions_mut().insert(id.clone());
                if status == StatusCode::NOT_FOUND {
                    // The server no longer knows the session: neither should we.
                    return Some(store.remove(id).map(drop));
                }
                if !status.is_success() {
                    return None;
                }
                if *delete {
                    return Some(store.remove(id).map(drop));
                }
                match record.take() {
                    // The client now speaks the negotiated version: keep it.
                    Some(r) => match header_version {
                        Some(v) if *v != r.protocol_version() => {
                            Some(store.insert(r.with_protocol_version(*v)))
                        }
                        _ => None,
                    },
                    // Observe mode: a session the server knows and we did not (a restart,
                    // another instance's memory store): adopt it.
                    None if self.config.mode == SessionMode::Observe => {
                        let mut adopted = SessionRecord::new(id.clone())
                            .with_principal_key(principal.as_ref().map(|p| p.binding_key().into()))
                            .with_replica(response.extensions().get::<Replica>().cloned())
                            .with_idle_ttl(self.config.idle_ttl)
                            .with_max_lifetime(self.config.max_lifetime);
                        if let Some(v) = header_version {
                            adopted = adopted.with_protocol_version(*v);
                        }
                        Some(store.insert(adopted))
                    }
                    None => None,
                }
            }
        }
    }

    /// Whether a failed store write must turn the response into a 503: only a new session
    /// in enforce mode, which the edge could not recognise afterwards.
    fn write_failure_is_fatal(&self) -> bool {
        self.enforce() && matches!(self.plan, Plan::Initialize { .. })
    }
}

fn session_limit(status: StatusCode, message: &'static str) -> Rejection {
    Rejection::new(
        RejectedBy::Session,
        Reason::SessionLimit,
        status,
        code::LEGACY_BAD_REQUEST,
        message,
    )
    .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("1"))
}

pub(super) fn not_found(reason: Reason) -> Rejection {
    Rejection::new(
        RejectedBy::Session,
        reason,
        StatusCode::NOT_FOUND,
        code::LEGACY_SESSION_NOT_FOUND,
        "Session not found",
    )
}

pin_project! {
    /// The response future of [`Session`](super::Session).
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B, S::Future, S::Response>,
        ctx: Option<Ctx>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B, F, R> {
        Checking {
            check: StoreFuture<Check>,
            pending: Option<(S, Request<B>)>,
        },
        Calling {
            #[pin]
            future: F,
        },
        Finishing {
            write: StoreFuture<()>,
            response: Option<R>,
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
    pub(super) fn calling(future: S::Future, ctx: Option<Ctx>) -> Self {
        ResponseFuture {
            state: State::Calling { future },
            ctx,
        }
    }

    pub(super) fn checking(
        check: StoreFuture<Check>,
        inner: S,
        request: Request<B>,
        ctx: Ctx,
    ) -> Self {
        ResponseFuture {
            state: State::Checking {
                check,
                pending: Some((inner, request)),
            },
            ctx: Some(ctx),
        }
    }

    pub(super) fn rejected(rejection: Rejection) -> Self {
        ResponseFuture {
            state: State::Rejected {
                rejection: Some(rejection),
            },
            ctx: None,
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Output = Result<Response<EdgeBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Checking { check, pending } => {
                    let answer = ready!(Pin::new(check).poll(cx));
                    let ctx = this.ctx.as_mut().expect("checking always has a context");
                    if let Some(rejection) = ctx.decide(answer) {
                        return Poll::Ready(Ok(rejection.into_response()));
                    }
                    let (mut inner, request) = pending.take().expect("polled after completion");
                    let future = inner.call(request);
                    this.state.set(State::Calling { future });
                }
                StateProj::Calling { future } => {
                    let mut response = ready!(future.poll(cx))?;
                    let Some(ctx) = this.ctx.as_mut() else {
                        return Poll::Ready(Ok(response.map(EdgeBody::new)));
                    };
                    let Some(write) = ctx.finish(&mut response) else {
                        return Poll::Ready(Ok(response.map(EdgeBody::new)));
                    };
                    this.state.set(State::Finishing {
                        write,
                        response: Some(response),
                    });
                }
                StateProj::Finishing { write, response } => {
                    let written = ready!(Pin::new(write).poll(cx));
                    let response = response.take().expect("polled after completion");
                    if let Err(err) = written {
                        let ctx = this.ctx.as_ref().expect("finishing always has a context");
                        tracing::warn!(error = %err, "session store write failed");
                        if ctx.write_failure_is_fatal() {
                            return Poll::Ready(Ok(err
                                .to_rejection(RejectedBy::Session)
                                .with_id(ctx.rpc_id.clone())
                                .into_response()));
                        }
                    }
                    return Poll::Ready(Ok(response.map(EdgeBody::new)));
                }
                StateProj::Rejected { rejection } => {
                    let rejection = rejection.take().expect("polled after completion");
                    return Poll::Ready(Ok(rejection.into_response()));
                }
            }
        }
    }
}
