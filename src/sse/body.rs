use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::drain::Registration;
use super::layer::Config;
use super::{FIRST_BYTE_COMMENT, HEARTBEAT_COMMENT};
use crate::error::Polled;
use crate::observe::metrics::{self, GaugeUnit};
use crate::protocol::sse::{SseScanner, UTF8_BOM};

pin_project! {
    /// The response body of [`Sse`](super::Sse).
    ///
    /// For an event stream: the inner body's frames, forwarded one by one as they come
    /// (the same `Bytes`, never split, merged, reordered or held), with the layer's own
    /// comment lines and `retry:` line written between events only. For any other response:
    /// the inner body untouched.
    ///
    /// Dropping it drops the inner body at once (R12).
    pub struct SseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Passthrough {
            #[pin]
            inner: B,
        },
        Stream {
            #[pin]
            inner: B,
            // Created at the first idle moment, reset only when it fires. Boxed once per
            // stream so that the body stays `Unpin` when the inner body is.
            timer: Option<Pin<Box<Sleep>>>,
            state: Stream,
        },
    }
}

/// The per-stream state (everything but the inner body and the timer).
struct Stream {
    config: Arc<Config>,
    scanner: SseScanner,
    phase: Phase,
    /// When the stream last went quiet after writing (server frames or our own comments):
    /// taken when the inner body returns `Pending` after a burst of frames, microseconds after
    /// the last write, so a burst of ready frames costs one clock read, not one per frame.
    last_write: Instant,
    /// Server frames went through since `last_write` was taken.
    wrote: bool,
    /// When the stream must start draining because of its age.
    age_deadline: Option<Instant>,
    /// The timer is set to the next deadline; false when it must be recomputed.
    armed: bool,
    first_byte_pending: bool,
    /// The layer wrote bytes before the server's first byte (a leading BOM must then go).
    wrote_first: bool,
    /// The client negotiated a version that knows `retry:` polling (R20).
    may_retry: bool,
    drain: Option<Registration>,
    /// One unit of the open-streams gauge while the stream lives.
    _open: GaugeUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// Ending: at the next boundary (resumable) or when the inner body ends, by `deadline`.
    Draining {
        deadline: Instant,
    },
    /// `retry:` has been written; the next poll ends the body.
    Closing,
    Done,
}

impl<B> SseBody<B> {
    pub(super) fn passthrough(inner: B) -> Self {
        SseBody {
            kind: Kind::Passthrough { inner },
        }
    }

    pub(super) fn stream(inner: B, config: Arc<Config>, may_retry: bool) -> Self {
        let now = Instant::now();
        let drain = config.drain.as_ref().map(|d| d.register());
        let phase = match &drain {
            Some(d) if d.is_draining() => Phase::Draining {
                deadline: now + config.grace,
            },
            _ => Phase::Open,
        };
        SseBody {
            kind: Kind::Stream {
                inner,
                timer: None,
                state: Stream {
                    age_deadline: config.max_age.map(|age| now + age),
                    first_byte_pending: config.first_byte,
                    config,
                    scanner: SseScanner::new(),
                    phase,
                    last_write: now,
                    wrote: false,
                    armed: false,
                    wrote_first: false,
                    may_retry,
                    drain,
                    _open: GaugeUnit::sse_stream(),
                },
            },
        }
    }

    /// True when this body is an event stream the layer looks after.
    pub fn is_event_stream(&self) -> bool {
        matches!(self.kind, Kind::Stream { .. })
    }
}

impl Stream {
    fn start_draining(&mut self, now: Instant) {
        if self.phase == Phase::Open {
            metrics::drained();
            self.phase = Phase::Draining {
                deadline: now + self.config.grace,
            };
            self.armed = false;
        }
    }

    /// The next instant at which the timer has something to check, if any.
    fn next_deadline(&self) -> Option<Instant> {
        let heartbeat = self
            .config
            .heartbeat
            .map(|idle| self.last_write + idle)
            // Past due means the stream is stalled inside an event: nothing to do until
            // the server writes again.
            .filter(|due| self.scanner.at_event_boundary() || *due > Instant::now());
        let other = match self.phase {
            Phase::Open => self.age_deadline,
            Phase::Draining { deadline } => Some(deadline),
            Phase::Closing | Phase::Done => None,
        };
        match (heartbeat, other) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Looks at a non-empty data frame from the server on its way through. The instant of
    /// the write is taken once the inner body goes idle (see `poll_frame`), not here.
    #[inline]
    fn on_data(&mut self, data: &mut Bytes) {
        if self.wrote_first && self.scanner.at_stream_start() && data.starts_with(UTF8_BOM) {
            // Our comment went first: a BOM now would corrupt the server's first line.
            *data = data.slice(UTF8_BOM.len()..);
        }
        self.scanner.feed(data);
        self.wrote = true;
        // Deadlines must hold for streams whose frames are always ready too (they would never
        // reach the idle path). Only streams with a maximum age, or draining, read the clock
        // per frame.
        if self.age_deadline.is_some() || matches!(self.phase, Phase::Draining { .. }) {
            let now = Instant::now();
            match self.phase {
                Phase::Open if self.age_deadline.is_some_and(|d| now >= d) => {
                    self.start_draining(now);
                }
                // Past the grace period: this frame is the last.
                Phase::Draining { deadline } if now >= deadline => self.phase = Phase::Closing,
                _ => {}
            }
        }
    }

    fn write(&mut self, bytes: Bytes, now: Instant) -> Frame<Bytes> {
        if self.scanner.at_stream_start() {
            self.wrote_first = true;
        }
        self.last_write = now;
        self.armed = false;
        Frame::data(bytes)
    }
}

impl<B: Body<Data = Bytes>> Body for SseBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled<Self> {
        let (mut inner, timer, st) = match self.project().kind.project() {
            KindProj::Passthrough { inner } => return inner.poll_frame(cx),
            KindProj::Stream {
                inner,
                timer,
                state,
            } => (inner, timer, state),
        };
        loop {
            match st.phase {
                Phase::Open => {
                    if st.drain.as_ref().is_some_and(Registration::is_draining) {
                        st.start_draining(Instant::now());
                        continue;
                    }
                }
                Phase::Draining { .. } => {
                    if st.may_retry
                        && st.scanner.has_last_event_id()
                        && st.scanner.at_event_boundary()
                    {
                        // R20: tell the client when to come back, then close.
                        st.phase = Phase::Closing;
                        let frame = st.config.retry_frame.clone();
                        return Poll::Ready(Some(Ok(st.write(frame, Instant::now()))));
                    }
                }
                Phase::Closing | Phase::Done => {
                    st.phase = Phase::Done;
                    return Poll::Ready(None);
                }
            }
            if st.first_byte_pending {
                st.first_byte_pending = false;
                let frame = Bytes::from_static(FIRST_BYTE_COMMENT);
                return Poll::Ready(Some(Ok(st.write(frame, Instant::now()))));
            }

            match inner.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(mut frame))) => {
                    if let Some(data) = frame.data_mut()
                        && !data.is_empty()
                    {
                        st.on_data(data);
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Poll::Ready(None) => {
                    st.phase = Phase::Done;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err))),
                Poll::Pending => {}
            }

            // The inner body is idle: this is the only place the clock and timers are touched.
            if std::mem::take(&mut st.wrote) {
                let now = Instant::now();
                st.last_write = now;
                match st.phase {
                    Phase::Open if st.age_deadline.is_some_and(|d| now >= d) => {
                        st.start_draining(now);
                        continue;
                    }
                    Phase::Draining { deadline } if now >= deadline => {
                        st.phase = Phase::Done;
                        return Poll::Ready(None);
                    }
                    _ => {}
                }
            }
            if st.phase == Phase::Open
                && let Some(drain) = st.drain.as_mut()
            {
                drain.watch(cx.waker());
                if drain.is_draining() {
                    continue;
                }
            }
            if !st.armed {
                let Some(deadline) = st.next_deadline() else {
                    return Poll::Pending;
                };
                match timer.as_mut() {
                    Some(sleep) => sleep.as_mut().reset(deadline),
                    None => *timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
                }
                st.armed = true;
            }
            let Some(sleep) = timer.as_mut() else {
                return Poll::Pending;
            };
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }

            // The timer fired: work out why.
            st.armed = false;
            let now = Instant::now();
            match st.phase {
                Phase::Draining { deadline } if now >= deadline => {
                    st.phase = Phase::Done;
                    return Poll::Ready(None);
                }
                Phase::Open if st.age_deadline.is_some_and(|d| now >= d) => {
                    st.start_draining(now);
                    continue;
                }
                _ => {}
            }
            if let Some(idle) = st.config.heartbeat
                && now >= st.last_write + idle
                && st.scanner.at_event_boundary()
            {
                let frame = Bytes::from_static(HEARTBEAT_COMMENT);
                metrics::heartbeat();
                return Poll::Ready(Some(Ok(st.write(frame, now))));
            }
            // Frames came since the timer was set (or the stream is inside an event): the
            // loop re-arms it for the new deadline.
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Passthrough { inner } => inner.is_end_stream(),
            Kind::Stream { inner, state, .. } => match state.phase {
                Phase::Done => true,
                Phase::Closing => false,
                _ => !state.first_byte_pending && inner.is_end_stream(),
            },
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Passthrough { inner } => inner.size_hint(),
            // The layer may add bytes: never claim an exact length.
            Kind::Stream { inner, .. } => {
                let mut hint = SizeHint::new();
                hint.set_lower(inner.size_hint().lower());
                hint
            }
        }
    }
}

impl<B: fmt::Debug> fmt::Debug for SseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Passthrough { inner } => f
                .debug_struct("SseBody")
                .field("inner", inner)
                .finish_non_exhaustive(),
            Kind::Stream { inner, state, .. } => f
                .debug_struct("SseBody")
                .field("inner", inner)
                .field("phase", &state.phase)
                .field("at_event_boundary", &state.scanner.at_event_boundary())
                .finish_non_exhaustive(),
        }
    }
}
