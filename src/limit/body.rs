//! [`LimitBody`]: the response body that holds a call's concurrency places until it ends, and
//! ends an SSE stream at an event boundary once its lifetime or idle time is up.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::decide::Admission;
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
        if let Some(lifetime) = &mut self.lifetime {
            if lifetime.as_mut().poll(cx).is_ready() {
                self.lifetime = None;
                self.ending = true;
            }
        }
        if self.ending && self.scanner.at_event_boundary() {
            return true;
        }
        // Idle: nothing is coming, so there is no event to wait for (a client drops the
        // unfinished one, as the SSE standard says for a stream that ends mid-event).
        if let Some((_, idle)) = &mut self.idle {
            if idle.as_mut().poll(cx).is_ready() {
                return true;
            }
        }
        false
    }

    /// A data frame passed.
    fn saw(&mut self, chunk: &[u8]) {
        // A frame that starts a comment at an event boundary is a keep-alive (heartbeats are
        // written as frames of their own between events): it is not activity.
        let keep_alive = self.scanner.at_event_boundary() && chunk.first() == Some(&b':');
        self.scanner.feed(chunk);
        if !keep_alive {
            if let Some((idle, sleep)) = &mut self.idle {
                sleep.as_mut().reset(Instant::now() + *idle);
            }
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

impl<B> Body for LimitBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        if let Some(watch) = this.watch {
            if watch.must_end(cx) {
                *this.done = true;
                this.admission.take();
                return Poll::Ready(None);
            }
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
