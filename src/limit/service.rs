use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::decide::{Facts, Verdict};
use super::future::ResponseFuture;
use super::layer::LimitLayer;

/// A call that waits for the shared store: its local places and the store's decision.
#[cfg(feature = "redis")]
type Pending = (super::decide::Admission, super::future::RemoteDecision);
#[cfg(not(feature = "redis"))]
type Pending = std::convert::Infallible;

/// The service of [`LimitLayer`]: decides each call against the rules before the inner
/// service sees it.
#[derive(Debug, Clone)]
pub struct Limit<S> {
    pub(super) inner: S,
    pub(super) config: LimitLayer,
}

impl<S> Limit<S> {
    /// Wraps `inner` with `layer`'s rules.
    pub fn new(inner: S, layer: LimitLayer) -> Self {
        Limit {
            inner,
            config: layer,
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Limit<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    ReqBody: Send + 'static,
    ResBody: http_body::Body,
{
    type Response = Response<crate::error::EdgeBody<super::LimitBody<ResBody>>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let limiter = &self.config.limiter;
        if limiter.rules.is_empty() {
            return ResponseFuture::calling(self.inner.call(request), Default::default());
        }
        let verdict: Result<Verdict, Pending> = {
            let facts = Facts::of(request.method(), request.headers(), request.extensions());
            match limiter.decide(&facts) {
                #[cfg(feature = "redis")]
                Verdict::Remote(admission, takes) => {
                    let id = facts.id();
                    match &self.config.remote {
                        Some(remote) => {
                            let decision = remote.decide(std::sync::Arc::clone(limiter), takes, id);
                            Err((admission, decision))
                        }
                        None => Ok(Verdict::Pass(admission)),
                    }
                }
                verdict => Ok(verdict),
            }
        };
        match verdict {
            Ok(Verdict::Pass(admission)) => {
                ResponseFuture::calling(self.inner.call(request), admission)
            }
            Ok(Verdict::Refuse(rejection)) => ResponseFuture::rejected(rejection),
            Ok(Verdict::Remote(admission, _)) => {
                // Without a shared store there is nothing to ask.
                ResponseFuture::calling(self.inner.call(request), admission)
            }
            #[cfg(feature = "redis")]
            Err((admission, decision)) => {
                // The call waits for the store: take the service that was driven to readiness
                // and leave a clone in its place (as tower-http does).
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::deciding(decision, inner, request, admission)
            }
            #[cfg(not(feature = "redis"))]
            Err(never) => match never {},
        }
    }
}
