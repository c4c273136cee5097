//! A layer that is on or off at run time, with one service type either way.
//!
//! A program that reads its configuration at start-up (`--token` given or not, an audit log
//! or not) wants one router whatever it reads. `Option<L>` is not a [`Layer`], and tower's
//! `util::Either` needs both branches to answer the same response type, which a layer that
//! wraps the response body never does. [`OptionalLayer`] wraps `Option<L>`: when set, it
//! stacks `L`; when not, requests go straight to the inner service. Responses get one body
//! type, [`OptionalBody`], either way. Nothing is boxed: the service and its future are
//! two-variant enums.
//!
//! [`McpEdge`](crate::McpEdge)'s `*_opt` setters ([`auth_opt`](crate::McpEdge::auth_opt),
//! [`audit_opt`](crate::McpEdge::audit_opt), …) use it; you can also use it on its own or in
//! the user-layer slot ([`with_layer`](crate::McpEdge::with_layer)).
//!
//! ```
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use mcp_edge::optional::OptionalLayer;
//! use mcp_edge::SseLayer;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let heartbeats = std::env::var_os("NO_HEARTBEATS").is_none();
//! let service = ServiceBuilder::new()
//!     .layer(OptionalLayer::new(heartbeats.then(SseLayer::new)))
//!     .service_fn(|_request: Request<Full<bytes::Bytes>>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(Full::new(bytes::Bytes::from("ok"))))
//!     });
//! let response = service.oneshot(Request::new(Full::default())).await.unwrap();
//! assert_eq!(response.status(), 200);
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use http_body::{Body, SizeHint};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::Polled;

/// Stacks `L` when it is set, and nothing when it is not; see the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalLayer<L> {
    layer: Option<L>,
}

impl<L> OptionalLayer<L> {
    /// `Some(layer)` stacks `layer`; `None` passes requests straight through.
    pub fn new(layer: Option<L>) -> Self {
        OptionalLayer { layer }
    }

    /// Whether a layer is set.
    pub fn is_on(&self) -> bool {
        self.layer.is_some()
    }
}

impl<L> From<Option<L>> for OptionalLayer<L> {
    fn from(layer: Option<L>) -> Self {
        OptionalLayer::new(layer)
    }
}

impl<S, L: Layer<S>> Layer<S> for OptionalLayer<L> {
    type Service = Optional<L::Service, S>;

    fn layer(&self, inner: S) -> Self::Service {
        let kind = match &self.layer {
            Some(layer) => Either::On {
                inner: layer.layer(inner),
            },
            None => Either::Off { inner },
        };
        Optional { kind }
    }
}

pin_project! {
    /// What [`Optional`] holds, and what its future and body are: the layer's (`On`) or the
    /// inner service's alone (`Off`).
    #[project = EitherProj]
    #[derive(Debug, Clone)]
    enum Either<On, Off> {
        On { #[pin] inner: On },
        Off { #[pin] inner: Off },
    }
}

/// The service of [`OptionalLayer`]: `On` is the layer's service around the inner one, `Off`
/// the inner service alone.
#[derive(Debug, Clone)]
pub struct Optional<On, Off> {
    kind: Either<On, Off>,
}

impl<On, Off> Optional<On, Off> {
    /// Whether the layer is stacked.
    pub fn is_on(&self) -> bool {
        matches!(self.kind, Either::On { .. })
    }
}

impl<On, Off, ReqBody, OnBody, OffBody> Service<Request<ReqBody>> for Optional<On, Off>
where
    On: Service<Request<ReqBody>, Response = Response<OnBody>>,
    Off: Service<Request<ReqBody>, Response = Response<OffBody>, Error = On::Error>,
{
    type Response = Response<OptionalBody<OnBody, OffBody>>;
    type Error = On::Error;
    type Future = ResponseFuture<On::Future, Off::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match &mut self.kind {
            Either::On { inner } => inner.poll_ready(cx),
            Either::Off { inner } => inner.poll_ready(cx),
        }
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let kind = match &mut self.kind {
            Either::On { inner } => Either::On {
                inner: inner.call(request),
            },
            Either::Off { inner } => Either::Off {
                inner: inner.call(request),
            },
        };
        ResponseFuture { kind }
    }
}

pin_project! {
    /// The response future of [`Optional`].
    pub struct ResponseFuture<On, Off> {
        #[pin]
        kind: Either<On, Off>,
    }
}

impl<On, Off, OnBody, OffBody, E> Future for ResponseFuture<On, Off>
where
    On: Future<Output = Result<Response<OnBody>, E>>,
    Off: Future<Output = Result<Response<OffBody>, E>>,
{
    type Output = Result<Response<OptionalBody<OnBody, OffBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let response = match self.project().kind.project() {
            EitherProj::On { inner } => ready!(inner.poll(cx))?.map(OptionalBody::on),
            EitherProj::Off { inner } => ready!(inner.poll(cx))?.map(OptionalBody::off),
        };
        Poll::Ready(Ok(response))
    }
}

pin_project! {
    /// The response body of [`Optional`]: the layer's body when it is on, the inner
    /// service's body when it is off. Frames, end of stream and size hints are forwarded.
    pub struct OptionalBody<On, Off> {
        #[pin]
        kind: Either<On, Off>,
    }
}

impl<On, Off> OptionalBody<On, Off> {
    /// The body of a response that went through the layer.
    pub fn on(body: On) -> Self {
        OptionalBody {
            kind: Either::On { inner: body },
        }
    }

    /// The body of a response that did not.
    pub fn off(body: Off) -> Self {
        OptionalBody {
            kind: Either::Off { inner: body },
        }
    }
}

impl<On: std::fmt::Debug, Off: std::fmt::Debug> std::fmt::Debug for OptionalBody<On, Off> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Either::On { inner } => f.debug_tuple("OptionalBody::On").field(inner).finish(),
            Either::Off { inner } => f.debug_tuple("OptionalBody::Off").field(inner).finish(),
        }
    }
}

impl<On, Off> Body for OptionalBody<On, Off>
where
    On: Body,
    Off: Body<Data = On::Data, Error = On::Error>,
{
    type Data = On::Data;
    type Error = On::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled<Self> {
        match self.project().kind.project() {
            EitherProj::On { inner } => inner.poll_frame(cx),
            EitherProj::Off { inner } => inner.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Either::On { inner } => inner.is_end_stream(),
            Either::Off { inner } => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Either::On { inner } => inner.size_hint(),
            Either::Off { inner } => inner.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body::Frame;
    use http_body_util::{BodyExt, Full};
    use tower::{ServiceBuilder, ServiceExt};

    use super::*;

    /// Adds a header, and wraps the body in a type of its own (as every mcp-edge layer does).
    #[derive(Clone)]
    struct Tag;

    impl<S> Layer<S> for Tag {
        type Service = tower::util::MapResponse<S, fn(Response<Full<Bytes>>) -> Response<Tagged>>;
        fn layer(&self, inner: S) -> Self::Service {
            tower::util::MapResponse::new(inner, |response: Response<Full<Bytes>>| {
                let (mut parts, body) = response.into_parts();
                parts
                    .headers
                    .insert("x-tag", http::HeaderValue::from_static("1"));
                Response::from_parts(parts, Tagged { inner: body })
            })
        }
    }

    pin_project! {
        struct Tagged { #[pin] inner: Full<Bytes> }
    }
    impl Body for Tagged {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            self.project().inner.poll_frame(cx)
        }
        fn size_hint(&self) -> SizeHint {
            self.inner.size_hint()
        }
    }

    async fn answer(_: Request<()>) -> Result<Response<Full<Bytes>>, Infallible> {
        Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
    }

    #[tokio::test]
    async fn on_stacks_the_layer_and_off_passes_through_with_one_type() {
        let on = ServiceBuilder::new()
            .layer(OptionalLayer::new(Some(Tag)))
            .service_fn(answer);
        let off = ServiceBuilder::new()
            .layer(OptionalLayer::<Tag>::new(None))
            .service_fn(answer);
        assert!(on.is_on() && !off.is_on());
        // The same type either way: one router, whatever the configuration says.
        for (service, tagged) in [(on, true), (off, false)] {
            let response = service.oneshot(Request::new(())).await.unwrap();
            assert_eq!(response.headers().contains_key("x-tag"), tagged);
            assert_eq!(response.body().size_hint().exact(), Some(5));
            assert!(!response.body().is_end_stream());
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "hello");
        }
    }

    #[test]
    fn from_option() {
        let layer: OptionalLayer<Tag> = None.into();
        assert!(!layer.is_on());
        assert!(OptionalLayer::from(Some(Tag)).is_on());
    }
}
