use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;

use super::RequestOrigin;
use crate::error::EdgeBody;
use crate::error::Rejection;

pin_project! {
    /// The response future of [`Guard`](super::Guard): the inner service's future (whose
    /// response gets the [`RequestOrigin`] in its extensions, for outer layers such as audit),
    /// or a refusal ready at once.
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Future { #[pin] future: F, origin: Option<RequestOrigin> },
        Rejected { rejection: Option<Rejection> },
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn future(future: F, origin: RequestOrigin) -> Self {
        ResponseFuture {
            kind: Kind::Future {
                future,
                origin: Some(origin),
            },
        }
    }

    pub(super) fn rejected(rejection: Rejection) -> Self {
        ResponseFuture {
            kind: Kind::Rejected {
                rejection: Some(rejection),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<EdgeBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Future { future, origin } => {
                let mut response = ready!(future.poll(cx))?;
                if let Some(origin) = origin.take() {
                    response.extensions_mut().insert(origin);
                }
                Poll::Ready(Ok(response.map(EdgeBody::new)))
            }
            KindProj::Rejected { rejection } => {
                let rejection = rejection.take().expect("polled after completion");
                Poll::Ready(Ok(rejection.into_response()))
            }
        }
    }
}
