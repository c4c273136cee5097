use std::task::{Context, Poll};

use http::Request;
use tower_service::Service;

use crate::context::PeerAddr;

/// Puts the connection's [`PeerAddr`] in every request's extensions, then calls `inner`.
#[derive(Debug, Clone)]
pub(crate) struct WithPeerAddr<S> {
    pub(crate) inner: S,
    pub(crate) peer: PeerAddr,
}

impl<S, B> Service<Request<B>> for WithPeerAddr<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        request.extensions_mut().insert(self.peer);
        self.inner.call(request)
    }
}
