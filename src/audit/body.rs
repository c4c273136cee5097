use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::record::{End, Record, Watch};
use super::sink::AuditSink;

pin_project! {
    /// The request body as the layers inside [`Audit`](super::Audit) see it: the client's
    /// body, untouched, with its bytes counted for the audit event.
    #[derive(Debug)]
    pub struct CountingBody<B> {
        #[pin]
        inner: B,
        count: Arc<AtomicU64>,
    }
}

impl<B> CountingBody<B> {
    pub(crate) fn new(inner: B, count: Arc<AtomicU64>) -> Self {
        CountingBody { inner, count }
    }
}

impl<B: Body<Data = Bytes>> Body for CountingBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.count.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project! {
    /// The response body of [`Audit`](super::Audit): the inner body, every frame forwarded
    /// the moment it arrives, watched on the way for the outcome (a bounded copy of a JSON
    /// body; the SSE events of a stream). The event is emitted when the body ends, fails, or
    /// is dropped before its end (the client went away).
    pub struct AuditBody<B: Body, K: AuditSink> {
        #[pin]
        inner: B,
        record: Option<Box<Record<K>>>,
        watch: Watch,
        sent: u64,
    }

    impl<B: Body, K: AuditSink> PinnedDrop for AuditBody<B, K> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(record) = this.record.take() {
                let watch = std::mem::replace(this.watch, Watch::Nothing);
                // hyper stops polling once `is_end_stream` says so; that is not a client
                // leaving early.
                let end = if this.inner.is_end_stream() { End::Complete } else { End::Dropped };
                record.finish(end, watch, *this.sent);
            }
        }
    }
}

impl<B: Body, K: AuditSink> AuditBody<B, K> {
    pub(crate) fn new(inner: B, record: Box<Record<K>>, watch: Watch) -> Self {
        AuditBody {
            inner,
            record: Some(record),
            watch,
            sent: 0,
        }
    }
}

impl<B, K> std::fmt::Debug for AuditBody<B, K>
where
    B: Body + std::fmt::Debug,
    K: AuditSink,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditBody")
            .field("inner", &self.inner)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl<B, K> Body for AuditBody<B, K>
where
    B: Body<Data = Bytes>,
    K: AuditSink,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Pending => return polled,
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.sent += data.len() as u64;
                    if let Some(record) = this.record.as_ref() {
                        this.watch.observe(data, record);
                    }
                }
                if !this.inner.is_end_stream() {
                    return polled;
                }
                finish(this.record, this.watch, End::Complete, *this.sent);
            }
            Poll::Ready(Some(Err(_))) => {
                finish(this.record, this.watch, End::BodyError, *this.sent);
            }
            Poll::Ready(None) => {
                finish(this.record, this.watch, End::Complete, *this.sent);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn finish<K: AuditSink>(
    record: &mut Option<Box<Record<K>>>,
    watch: &mut Watch,
    end: End,
    sent: u64,
) {
    if let Some(record) = record.take() {
        let watch = std::mem::replace(watch, Watch::Nothing);
        record.finish(end, watch, sent);
    }
}
