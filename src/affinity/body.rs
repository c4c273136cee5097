use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, SizeHint};
use pin_project_lite::pin_project;

use super::set::InFlight;
use crate::error::Polled;

pin_project! {
    /// A replica's response body, counted against the replica's load until it ends or is
    /// dropped: a long SSE stream keeps counting for as long as it is open, so the least
    /// loaded choice sees it.
    ///
    /// Frames pass through as they come; nothing is buffered.
    #[derive(Debug)]
    pub struct ReplicaBody<B> {
        #[pin]
        inner: B,
        in_flight: Option<InFlight>,
    }
}

impl<B: Body> ReplicaBody<B> {
    pub(crate) fn new(inner: B, in_flight: InFlight) -> Self {
        // A body that is already over (202, 204, an empty JSON answer) stops counting now.
        let in_flight = (!inner.is_end_stream()).then_some(in_flight);
        ReplicaBody { inner, in_flight }
    }
}

impl<B: Body> Body for ReplicaBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled<Self> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        match &frame {
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                this.in_flight.take();
            }
            Poll::Ready(Some(Ok(_))) | Poll::Pending => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use http_body::Frame;
    use http_body_util::{BodyExt, Empty, Full, StreamBody};

    use super::*;
    use crate::affinity::set::Load;

    #[tokio::test]
    async fn counts_until_the_body_ends() {
        let load = Arc::new(Load::default());
        let body = ReplicaBody::new(Full::new(Bytes::from_static(b"{}")), load.start());
        assert_eq!(load.in_flight(), 1);
        assert_eq!(body.collect().await.unwrap().to_bytes(), "{}");
        assert_eq!(load.in_flight(), 0);
    }

    #[tokio::test]
    async fn an_empty_body_does_not_count() {
        let load = Arc::new(Load::default());
        let _body = ReplicaBody::new(Empty::<Bytes>::new(), load.start());
        assert_eq!(load.in_flight(), 0);
    }

    #[tokio::test]
    async fn an_open_stream_counts_until_dropped() {
        let load = Arc::new(Load::default());
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        let stream = tokio_stream_from(rx);
        let mut body = ReplicaBody::new(StreamBody::new(stream), load.start());
        tx.send(Ok(Frame::data(Bytes::from_static(b"data: 1\n\n"))))
            .await
            .unwrap();
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "data: 1\n\n");
        assert_eq!(load.in_flight(), 1, "the stream is still open");
        drop(body);
        assert_eq!(load.in_flight(), 0);
    }

    fn tokio_stream_from<T>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures_core::Stream<Item = T> {
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
