//! [`LimitBody`]: the response body that holds a call's concurrency places until it ends, and
//! ends an SSE stream at an event boundary once its lifetime or idle time is up.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::decide::Admission;
use crate::error::Polled;
use crate::protocol::sse::SseScanner;

pin_project! {
    /// A response body that gives its call's concurrency places back when it ends, fails or
    /// is dropped (the client left), not when the response head is sent: an SSE stream holds
    /// its place for as long as it is open.
    ///
    /// For an SSE stream under a rule with a [`lifetime`](super::Rule::lifetime) or an
    /// [`idle`](super::Rule::idle) time, it also watches the frames with the crate's SSE
    /// scanner and ends the stream cleanly at an event boundary: once the lifetime is up
    /// (after the event in progress, if any), or after the idle time without an event
    /// (comment frames such as heartbeats do not count). A legacy client then reconnects with
    /// `Last-Event-ID`, a modern one re-sends its request.
    ///
    /// Frames pass through as they come; nothing is buffered or copied.
    #[derive(Debug)]
    pub struct LimitBody<B> {
        #[pin]
        inner: B,
        admission: Option<Admission>,
        watch: Option<Box<Watch>>,
        done: bool,
    }
}

/// The timers and boundary state of one watched stream.
#[derive(Debug)]
struct Watch {
    scanner: SseScanner,
    lifetime: Option<Pin<Box<Sleep>>>,
    idle: Option<(Duration, Pin<Box<Sleep>>)>,
    /// The lifetime is up: end at the next event boundary.
    ending: bool,
}

impl Watch {
    fn new(lifetime: Option<Duration>, idle: Option<Duration>) -> Self {
        let now = Instant::now();
        Watch {
            scanner: SseScanner::new(),
            lifetime: lifetime.map(|d| Box::pin(tokio::time::sleep_until(now + d))),
            idle: idle.map(|d| (d, Box::pin(tokio::time::sleep_until(now + d)))),
            ending: false,
        }
    }

    /// Whether the stream must end now (registers the timers' wakers otherwise).
    fn must_end(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(lifetime) = &mut self.lifetime
            && lifetime.as_mut().poll(cx).is_ready()
        {
            self.lifetime = None;
            self.ending = true;
        }
        if self.ending && self.scanner.at_event_boundary() {
            return true;
        }
        // Idle: nothing is coming, so there is no event to wait for (a client drops the
        // unfinished one, as the SSE standard says for a stream that ends mid-event).
        if let Some((_, idle)) = &mut self.idle
            && idle.as_mut().poll(cx).is_ready()
        {
            return true;
        }
        false
    }

    /// A data frame passed.
    fn saw(&mut self, chunk: &[u8]) {
        // A frame that starts a comment at an event boundary is a keep-alive (heartbeats are
        // written as frames of their own between events): it is not activity.
        let keep_alive = self.scanner.at_event_boundary() && chunk.first() == Some(&b':');
        self.scanner.feed(chunk);
        if !keep_alive && let Some((idle, sleep)) = &mut self.idle {
            sleep.as_mut().reset(Instant::now() + *idle);
        }
    }
}

impl<B: Body> LimitBody<B> {
    /// Wraps `inner`; `sse` says whether it is an event stream (only those are watched).
    pub(crate) fn new(inner: B, admission: Admission, sse: bool) -> Self {
        let watch = (sse && (admission.lifetime.is_some() || admission.idle.is_some()))
            .then(|| Box::new(Watch::new(admission.lifetime, admission.idle)));
        // A body that is already over (202, an empty answer) gives its places back now.
        let admission = (!inner.is_end_stream() && !admission.is_empty()).then_some(admission);
        LimitBody {
            inner,
            admission,
            watch,
            done: false,
        }
    }

    /// A body without limits (a call no rule met).
    pub(crate) fn unlimited(inner: B) -> Self {
        LimitBody {
            inner,
            admission: None,
            watch: None,
            done: false,
        }
    }
}

impl<B: Body<Data = Bytes>> Body for LimitBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled<Self> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        if let Some(watch) = this.watch
            && watch.must_end(cx)
        {
            *this.done = true;
            this.admission.take();
            return Poll::Ready(None);
        }
        let frame = this.inner.poll_frame(cx);
        match &frame {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(watch), Some(data)) = (this.watch.as_mut(), frame.data_ref()) {
                    watch.saw(data);
                    if watch.ending && watch.scanner.at_event_boundary() {
                        // This frame finished the event in progress: the next poll ends.
                        cx.waker().wake_by_ref();
                    }
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                this.admission.take();
            }
            Poll::Pending => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.done {
            return SizeHint::with_exact(0);
        }
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;

    use futures::channel::mpsc;
    use futures::poll;
    use http_body::Frame;
    use http_body_util::{BodyExt, StreamBody};

    use super::*;
    use crate::limit::decide::Permit;
    use crate::limit::local::LocalStore;

    type Chunks = mpsc::UnboundedSender<Result<Frame<Bytes>, Infallible>>;
    type Stream = StreamBody<mpsc::UnboundedReceiver<Result<Frame<Bytes>, Infallible>>>;

    fn stream() -> (Chunks, Stream) {
        let (tx, rx) = mpsc::unbounded();
        (tx, StreamBody::new(rx))
    }

    fn send(tx: &Chunks, chunk: &'static str) {
        tx.unbounded_send(Ok(Frame::data(Bytes::from_static(chunk.as_bytes()))))
            .unwrap();
    }

    fn admission(
        store: &Arc<LocalStore>,
        lifetime: Option<Duration>,
        idle: Option<Duration>,
    ) -> Admission {
        Admission {
            permits: vec![Permit::acquire(store, 7, 1).unwrap()],
            lifetime,
            idle,
        }
    }

    /// A body of `store`'s place 7 over a stream fed through the sender; `sse` when the
    /// stream is an event stream.
    fn limited(
        store: &Arc<LocalStore>,
        lifetime: Option<Duration>,
        idle: Option<Duration>,
        sse: bool,
    ) -> (Chunks, Pin<Box<LimitBody<Stream>>>) {
        let (tx, inner) = stream();
        let body = LimitBody::new(inner, admission(store, lifetime, idle), sse);
        (tx, Box::pin(body))
    }

    async fn next(body: &mut Pin<Box<LimitBody<Stream>>>) -> Option<Bytes> {
        body.frame()
            .await
            .map(|frame| frame.unwrap().into_data().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn lifetime_ends_the_stream_after_the_event_in_progress() {
        let store = LocalStore::new();
        let lifetime = Duration::from_secs(10);
        let (tx, mut body) = limited(&store, Some(lifetime), None, true);
        send(&tx, "data: a\n\n");
        assert_eq!(next(&mut body).await.unwrap(), "data: a\n\n");
        send(&tx, "data: b");
        assert_eq!(next(&mut body).await.unwrap(), "data: b");
        tokio::time::advance(lifetime + Duration::from_secs(1)).await;
        // Mid-event: the stream waits for the end of the event.
        assert!(poll!(body.frame()).is_pending());
        assert_eq!(store.held(7), 1);
        send(&tx, "\n\n");
        assert_eq!(next(&mut body).await.unwrap(), "\n\n");
        assert!(next(&mut body).await.is_none());
        assert!(body.is_end_stream());
        assert_eq!(
            store.held(7),
            0,
            "the place is given back when the stream ends"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn lifetime_at_a_boundary_ends_the_stream_at_once() {
        let store = LocalStore::new();
        let (tx, mut body) = limited(&store, Some(Duration::from_secs(5)), None, true);
        let start = tokio::time::Instant::now();
        send(&tx, "id: 1\ndata: a\n\n");
        assert!(next(&mut body).await.is_some());
        // Nothing more comes; the lifetime timer alone ends the stream.
        assert!(next(&mut body).await.is_none());
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        assert_eq!(store.held(7), 0);
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_counts_events_not_heartbeats() {
        let store = LocalStore::new();
        let idle = Duration::from_secs(30);
        let (tx, mut body) = limited(&store, None, Some(idle), true);
        let start = tokio::time::Instant::now();
        tokio::time::advance(Duration::from_secs(20)).await;
        send(&tx, "data: x\n\n");
        assert!(next(&mut body).await.is_some());
        tokio::time::advance(Duration::from_secs(20)).await;
        // A heartbeat comment 20 s after the event does not count as activity.
        send(&tx, ":\n\n");
        assert!(next(&mut body).await.is_some());
        assert!(next(&mut body).await.is_none());
        assert_eq!(start.elapsed(), Duration::from_secs(50));
        assert_eq!(store.held(7), 0);
    }

    #[tokio::test]
    async fn the_place_is_held_until_the_body_ends_or_is_dropped() {
        let store = LocalStore::new();
        let (tx, mut body) = limited(&store, None, None, true);
        send(&tx, "data: a\n\n");
        assert!(next(&mut body).await.is_some());
        assert_eq!(store.held(7), 1);
        drop(tx);
        assert!(next(&mut body).await.is_none());
        assert_eq!(store.held(7), 0);

        // The client leaves: hyper drops the body.
        let (_tx, inner) = stream();
        let body = LimitBody::new(inner, admission(&store, None, None), true);
        assert_eq!(store.held(7), 1);
        drop(body);
        assert_eq!(store.held(7), 0);

        // A body that is already over gives its place back at once.
        let body = LimitBody::new(
            http_body_util::Empty::<Bytes>::new(),
            admission(&store, None, None),
            false,
        );
        assert_eq!(store.held(7), 0);
        drop(body);
    }

    #[tokio::test(start_paused = true)]
    async fn json_answers_are_not_watched() {
        let store = LocalStore::new();
        let (tx, mut body) = limited(
            &store,
            Some(Duration::from_secs(1)),
            Some(Duration::from_secs(1)),
            false,
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        send(&tx, "{}");
        assert_eq!(next(&mut body).await.unwrap(), "{}");
        drop(tx);
        assert!(next(&mut body).await.is_none());
    }
}
