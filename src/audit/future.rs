use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::Response;
use http_body::Body;
use pin_project_lite::pin_project;

use super::body::AuditBody;
use super::record::{BeforeHead, End, Record};
use super::sink::AuditSink;

pin_project! {
    /// The response future of [`Audit`](super::Audit).
    ///
    /// If it is dropped before the response head (the client went away while the service
    /// was still working), the event is emitted then, with outcome
    /// [`ClientGone`](super::Outcome::ClientGone).
    pub struct ResponseFuture<F, K: AuditSink> {
        #[pin]
        future: F,
        // Both taken at the head, or when no head comes.
        record: Option<(Box<Record<K>>, BeforeHead)>,
    }

    impl<F, K: AuditSink> PinnedDrop for ResponseFuture<F, K> {
        fn drop(this: Pin<&mut Self>) {
            if let Some((record, before)) = this.project().record.take() {
                record.finish_without_head(before, End::Dropped);
            }
        }
    }
}

impl<F, K: AuditSink> ResponseFuture<F, K> {
    pub(crate) fn new(future: F, record: Box<Record<K>>, before: BeforeHead) -> Self {
        ResponseFuture {
            future,
            record: Some((record, before)),
        }
    }
}

impl<F, K, B, E> Future for ResponseFuture<F, K>
where
    F: Future<Output = Result<Response<B>, E>>,
    K: AuditSink,
    B: Body<Data = Bytes>,
{
    type Output = Result<Response<AuditBody<B, K>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.future.poll(cx));
        let Some((mut record, before)) = this.record.take() else {
            panic!("ResponseFuture polled after completion");
        };
        match result {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                let watch = record.on_head(&mut parts, before);
                Poll::Ready(Ok(Response::from_parts(
                    parts,
                    AuditBody::new(body, record, watch),
                )))
            }
            Err(error) => {
                record.finish_without_head(before, End::ServiceError);
                Poll::Ready(Err(error))
            }
        }
    }
}
