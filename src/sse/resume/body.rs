use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::track::{Tracker, id_line, replayed};
use crate::error::{EdgeBody, Polled};
use crate::store::{EventTail, StoredEvent};

pin_project! {
    /// The response body of [`Resume`](super::Resume).
    ///
    /// For a recorded stream: the server's bytes, forwarded as the same `Bytes` (sliced at
    /// event ends), with an `id:` line written at the end of each event. For a replay: the
    /// recorded events after the cursor, then the live tail, then (for a GET stream) a fresh
    /// stream from the server. Anything else: the inner body untouched.
    ///
    /// Dropping a recorded POST stream before it ends (the client went away) hands the inner
    /// body to a task that keeps recording it, within the layer's drain bounds (R12: in the
    /// 2025 era a disconnect is not a cancel).
    pub struct ResumeBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        // The server's body untouched, or a refusal.
        Plain { #[pin] inner: EdgeBody<B> },
        Tracked { tracked: Tracked<B> },
        Replay { replay: Replay<B> },
    }
}

/// Hands a recorded stream's inner body over to a task when the client is gone.
pub(super) type Detach<B> = fn(Pin<Box<B>>, Tracker);

/// A stream being recorded. The inner body is boxed (once per stream) so that it can be
/// moved to the drain task when the client goes away.
pub(super) struct Tracked<B> {
    state: Option<(Pin<Box<B>>, Tracker)>,
    out: VecDeque<Bytes>,
    detach: Option<Detach<B>>,
}

impl<B> Tracked<B> {
    pub(super) fn new(inner: B, tracker: Tracker, detach: Option<Detach<B>>) -> Self {
        Tracked {
            state: Some((Box::pin(inner), tracker)),
            out: VecDeque::new(),
            detach,
        }
    }
}

impl<B> Tracked<B> {
    /// Starts the stream with a priming event.
    pub(super) fn prime(&mut self) {
        if let Some((_, tracker)) = self.state.as_mut() {
            tracker.prime(&mut self.out);
        }
    }
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        if let (Some((inner, tracker)), Some(detach)) = (self.state.take(), self.detach) {
            detach(inner, tracker);
        }
    }
}

impl<B: Body<Data = Bytes>> Tracked<B> {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        loop {
            if let Some(piece) = self.out.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(piece))));
            }
            let Some((inner, tracker)) = self.state.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if data.is_empty() => {}
                    Ok(data) => tracker.process(data, Some(&mut self.out)),
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Some(Err(err)) => {
                    // The server's stream broke: what followed is lost (the mark says so),
                    // and dropping the tracker finishes the stream in the store.
                    tracker.stop();
                    self.state = None;
                    return Poll::Ready(Some(Err(err)));
                }
                None => {
                    tracker.end();
                    self.state = None;
                    return Poll::Ready(None);
                }
            }
        }
    }
}

/// A replay: recorded events after the cursor, then the live tail, then `then`.
pub(super) struct Replay<B> {
    first: Option<StoredEvent>,
    tail: Option<EventTail>,
    id_prefix: Bytes,
    arena: BytesMut,
    /// The id line of the event just sent.
    id_line: Option<Bytes>,
    then: Option<Tracked<B>>,
}

impl<B> Replay<B> {
    pub(super) fn new(
        tail: Option<EventTail>,
        first: Option<StoredEvent>,
        id_prefix: Bytes,
        then: Option<Tracked<B>>,
    ) -> Self {
        Replay {
            first,
            tail,
            id_prefix,
            arena: BytesMut::new(),
            id_line: None,
            then,
        }
    }
}

impl<B: Body<Data = Bytes>> Replay<B> {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        if let Some(line) = self.id_line.take() {
            return Poll::Ready(Some(Ok(Frame::data(line))));
        }
        if let Some(event) = self.first.take() {
            let line = id_line(&mut self.arena, &self.id_prefix, event.seq);
            self.id_line = Some(line);
            return Poll::Ready(Some(Ok(Frame::data(replayed(event.data)))));
        }
        if let Some(tail) = self.tail.as_mut() {
            match ready!(Pin::new(tail).poll_next(cx)) {
                Some(Ok(event)) if !event.data.is_empty() => {
                    let line = id_line(&mut self.arena, &self.id_prefix, event.seq);
                    self.id_line = Some(line);
                    return Poll::Ready(Some(Ok(Frame::data(replayed(event.data)))));
                }
                // An empty record marks where the recording was cut: events were lost.
                Some(Ok(_)) => {
                    tracing::debug!("resume: replay reached a cut in the recording");
                    self.tail = None;
                    self.then = None;
                    return Poll::Ready(None);
                }
                Some(Err(err)) => {
                    // Events the client has not seen were lost (evicted, or the store
                    // failed): end here rather than go on past a hole; the client resumes
                    // from its last id and gets the documented answer.
                    tracing::debug!(error = %err, "resume: replay ended early");
                    self.tail = None;
                    self.then = None;
                    return Poll::Ready(None);
                }
                None => self.tail = None,
            }
        }
        match self.then.as_mut() {
            Some(then) => then.poll_frame(cx),
            None => Poll::Ready(None),
        }
    }
}

impl<B> ResumeBody<B> {
    /// The server's body, untouched.
    pub(super) fn passthrough(inner: B) -> Self {
        ResumeBody::plain(EdgeBody::new(inner))
    }

    /// A body forwarded as it is: the server's, or a refusal's.
    pub(super) fn plain(inner: EdgeBody<B>) -> Self {
        ResumeBody {
            kind: Kind::Plain { inner },
        }
    }

    pub(super) fn tracked(tracked: Tracked<B>) -> Self {
        ResumeBody {
            kind: Kind::Tracked { tracked },
        }
    }

    pub(super) fn replay(replay: Replay<B>) -> Self {
        ResumeBody {
            kind: Kind::Replay { replay },
        }
    }

    /// True when the body is a stream the layer records (ids written, events stored).
    pub fn is_recorded(&self) -> bool {
        matches!(self.kind, Kind::Tracked { .. })
    }

    /// True when the body replays a stream from the event store.
    pub fn is_replay(&self) -> bool {
        matches!(self.kind, Kind::Replay { .. })
    }
}

impl<B: Body<Data = Bytes>> Body for ResumeBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled<Self> {
        match self.project().kind.project() {
            KindProj::Plain { inner } => inner.poll_frame(cx),
            KindProj::Tracked { tracked } => tracked.poll_frame(cx),
            KindProj::Replay { replay } => replay.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Plain { inner } => inner.is_end_stream(),
            Kind::Tracked { tracked } => tracked.state.is_none() && tracked.out.is_empty(),
            Kind::Replay { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Plain { inner } => inner.size_hint(),
            // Id lines are added: never an exact length.
            Kind::Tracked { .. } | Kind::Replay { .. } => SizeHint::new(),
        }
    }
}

impl<B> fmt::Debug for ResumeBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Plain { .. } => "plain",
            Kind::Tracked { .. } => "recorded",
            Kind::Replay { .. } => "replay",
        };
        f.debug_struct("ResumeBody")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}
