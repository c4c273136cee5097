use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::GuardLayer;

/// The service built by [`GuardLayer`].
#[derive(Debug, Clone)]
pub struct Guard<S> {
    pub(super) inner: S,
    pub(super) layer: GuardLayer,
}

impl<S> Guard<S> {
    /// Wraps `inner` with the default ([`GuardLayer::loopback`]) configuration.
    pub fn new(inner: S) -> Self {
        Guard {
            inner,
            layer: GuardLayer::loopback(),
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Guard<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<crate::body::EdgeBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        match self.layer.check_small(&request) {
            Ok(origin) => {
                request.extensions_mut().insert(origin);
                ResponseFuture::future(self.inner.call(request))
            }
            Err(refusal) => ResponseFuture::rejected(refusal.into_rejection()),
        }
    }
}
