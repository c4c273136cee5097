use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::layer::{Config, SessionMode};
use crate::context::{BindingKey, Principal, Replica};
use crate::error::EdgeBody;
use crate::error::{Reason, RejectedBy, Rejection};
use crate::observe::metrics;
use crate::protocol::header::MCP_SESSION_ID;
use crate::protocol::{ClientInfo, ProtocolVersion, RequestId, SessionId};
use crate::store::{
    Capped, Resolution, SessionCaps, SessionCount, SessionRecord, SessionResolver, StoreError,
    StoreFuture,
};

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
        let enforce = self.enforce();
        match &mut self.plan {
            Plan::Initialize { .. } => {
                let count = match answer {
                    Ok(Check::Count(count)) => count,
                    Ok(Check::Record(_)) => return None,
                    Err(err) => return self.store_failed(&err),
                };
                self.over_cap(count)
            }
            Plan::Existing {
                id,
                principal,
                record,
                delete,
                ..
            } => {
                let answer = match answer {
                    Ok(Check::Record(found)) => Ok(found),
                    Ok(Check::Count(_)) => return None,
                    Err(err) => Err(err),
                };
                let resolution = Resolution::judge(answer, principal.as_ref());
                // Observe mode defers to the server only what the edge cannot know: a foreign
                // session is refused in every mode (R32), and so is a DELETE of a session the
                // store never recorded or has ended (R27: the store is authoritative for it).
                let refuse = match &resolution {
                    Resolution::Admitted(_) => false,
                    Resolution::Unknown => {
                        tracing::debug!(session = %id, "request for a session the edge does not know");
                        enforce || *delete
                    }
                    Resolution::Foreign(_) => {
                        tracing::warn!(session = %id, "session presented by another principal; refusing");
                        true
                    }
                    Resolution::Unavailable(err) if enforce => {
                        tracing::warn!(error = %err, "session store failed; refusing");
                        true
                    }
                    Resolution::Unavailable(err) => {
                        tracing::warn!(error = %err, "session store failed; observing only");
                        return None;
                    }
                };
                if refuse
                    && let Some(rejection) =
                        resolution.refusal(RejectedBy::Session, self.rpc_id.clone())
                {
                    return Some(rejection);
                }
                *record = resolution.into_record();
                None
            }
        }
    }

    /// A failed store call before the request goes in: a refusal in enforce mode.
    fn store_failed(&self, err: &StoreError) -> Option<Rejection> {
        if self.enforce() {
            tracing::warn!(error = %err, "session store failed; refusing");
            return Some(
                err.to_rejection(RejectedBy::Session)
                    .with_id(self.rpc_id.clone()),
            );
        }
        tracing::warn!(error = %err, "session store failed; observing only");
        None
    }

    /// The refusal of an `initialize` past a session cap (R45: never 400, 404 or 405), from
    /// the count taken before the request goes in (the atomic check is the insert's,
    /// [`SessionStore::insert_within`](crate::store::SessionStore::insert_within)).
    fn over_cap(&self, count: SessionCount) -> Option<Rejection> {
        if let Some(max) = self.config.max_per_principal
            && count.principal >= max
        {
            return cap_refusal(Capped::PrincipalFull, self.rpc_id.clone());
        }
        if let Some(max) = self.config.max_total
            && count.total >= max
        {
            return cap_refusal(Capped::TotalFull, self.rpc_id.clone());
        }
        None
    }

    /// The caps the insert of a new session must stay within (in every mode).
    fn caps(&self) -> SessionCaps {
        SessionCaps {
            total: self.config.max_total,
            per_principal: self.config.max_per_principal,
        }
    }

    /// Looks at the response head: annotates it and returns the store write to make, if any;
    /// the write resolves to the refusal that replaces the response (a new session past a
    /// cap), if any.
    pub(super) fn finish<B>(
        &mut self,
        response: &mut Response<B>,
    ) -> Option<StoreFuture<Option<Rejection>>> {
        let caps = self.caps();
        let rpc_id = self.rpc_id.clone();
        let resolver = &self.config.resolver;
        let store = resolver.store();
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
                    .with_binding(principal.as_ref().map(BindingKey::of))
                    .with_protocol_version(*version)
                    .with_client_info(client_info.take())
                    .with_replica(response.extensions().get::<Replica>().cloned())
                    .with_idle_ttl(self.config.idle_ttl)
                    .with_max_lifetime(self.config.max_lifetime);
                if caps.is_none() {
                    return Some(store.insert(record).map(|()| None));
                }
                // Counted and inserted in one step: concurrent initializes never overshoot.
                Some(
                    store
                        .insert_within(record, caps)
                        .map(move |capped| cap_refusal(capped, rpc_id)),
                )
            }
            Plan::Existing {
                id,
                principal,
                delete,
                header_version,
                record,
            } => {
                response.extensions_mut().insert(id.clone());
                // The server no longer knows the session, or ended it: neither should we.
                if SessionResolver::ends(*delete, status) {
                    metrics::session_ended(*delete, record.as_ref().map(|r| r.created_at()));
                    return Some(resolver.end(id).map(|_| None));
                }
                if !status.is_success() {
                    return None;
                }
                match record.take() {
                    // The client now speaks the negotiated version: keep it.
                    Some(r) => match header_version {
                        Some(v) if *v != r.protocol_version() => {
                            Some(store.insert(r.with_protocol_version(*v)).map(|()| None))
                        }
                        _ => None,
                    },
                    // Observe mode: a session the server knows and we did not (a restart,
                    // another instance's memory store): adopt it.
                    None if self.config.mode == SessionMode::Observe => {
                        let mut adopted = SessionRecord::new(id.clone())
                            .with_binding(principal.as_ref().map(BindingKey::of))
                            .with_replica(response.extensions().get::<Replica>().cloned())
                            .with_idle_ttl(self.config.idle_ttl)
                            .with_max_lifetime(self.config.max_lifetime);
                        if let Some(v) = header_version {
                            adopted = adopted.with_protocol_version(*v);
                        }
                        Some(store.insert(adopted).map(|()| None))
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

/// The refusal of a session past a cap: `429` for the principal's, `503` for the total.
fn cap_refusal(capped: Capped, id: Option<RequestId>) -> Option<Rejection> {
    match capped {
        Capped::Inserted => None,
        Capped::PrincipalFull => Some(session_limit(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests: this principal has too many open sessions",
            id,
        )),
        Capped::TotalFull => Some(session_limit(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: too many open sessions",
            id,
        )),
    }
}

fn session_limit(status: StatusCode, message: &'static str, id: Option<RequestId>) -> Rejection {
    Rejection::of(RejectedBy::Session, Reason::SessionLimit)
        .with_status(status)
        .with_message(message)
        .with_id(id)
        .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("1"))
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
            write: StoreFuture<Option<Rejection>>,
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
                    if let Ok(Some(rejection)) = written {
                        return Poll::Ready(Ok(rejection.into_response()));
                    }
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
