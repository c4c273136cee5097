use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::Config;
use super::ResumeBody;
use super::body::{Replay, Tracked};
use super::cursor::{Cursor, Owner, StreamKind};
use super::track::Tracker;
use crate::error::{Reason, RejectedBy, Rejection};
use crate::protocol::SessionId;
use crate::protocol::{BodyKind, body_kind};
use crate::store::{EventTail, StoreFuture, StoredEvent};

/// How often a replay looks again for a cursor the store does not have yet (its event may
/// still be on the way to the store).
const SETTLE_STEP: Duration = Duration::from_millis(20);

pin_project! {
    /// The response future of [`Resume`](super::Resume).
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Passthrough { #[pin] future: F },
        Delete {
            #[pin]
            future: F,
            config: Arc<Config>,
            session: Option<SessionId>,
        },
        Track {
            #[pin]
            future: F,
            config: Arc<Config>,
            kind: StreamKind,
            owner: Option<Owner>,
            prime: bool,
        },
        Replay { replay: Box<Lookup<F, B>> },
        Rejected { rejection: Option<Rejection> },
    }
}

/// A replay being set up: the store lookup (retried while the cursor's event may still be on
/// its way to the store), and for a GET stream the fresh GET to the server.
struct Lookup<F, B> {
    config: Arc<Config>,
    cursor: Cursor,
    lookup: Option<StoreFuture<Option<EventTail>>>,
    settle_until: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    tail: Option<EventTail>,
    /// The tail was looked at once (its first event kept in `first`).
    peeked: bool,
    /// The tail ended at once: a finished stream with nothing after the cursor.
    ended: bool,
    first: Option<StoredEvent>,
    fresh: Option<(Pin<Box<F>>, Owner)>,
    prime: bool,
    then: Option<Tracked<B>>,
}

impl<F, B> ResponseFuture<F, B> {
    pub(super) fn passthrough(future: F) -> Self {
        ResponseFuture {
            state: State::Passthrough { future },
        }
    }

    pub(super) fn delete(future: F, config: Arc<Config>, session: SessionId) -> Self {
        ResponseFuture {
            state: State::Delete {
                future,
                config,
                session: Some(session),
            },
        }
    }

    pub(super) fn track(
        future: F,
        config: Arc<Config>,
        kind: StreamKind,
        owner: Owner,
        prime: bool,
    ) -> Self {
        ResponseFuture {
            state: State::Track {
                future,
                config,
                kind,
                owner: Some(owner),
                prime,
            },
        }
    }

    pub(super) fn rejected(rejection: Rejection) -> Self {
        ResponseFuture {
            state: State::Rejected {
                rejection: Some(rejection),
            },
        }
    }

    pub(super) fn replay(
        config: Arc<Config>,
        cursor: Cursor,
        fresh: Option<(F, Owner)>,
        prime: bool,
    ) -> Self {
        let lookup = config.store.tail(&cursor.key, cursor.seq);
        let settle_until = Instant::now() + config.settings.settle;
        ResponseFuture {
            state: State::Replay {
                replay: Box::new(Lookup {
                    config,
                    cursor,
                    lookup: Some(lookup),
                    settle_until,
                    sleep: None,
                    tail: None,
                    peeked: false,
                    ended: false,
                    first: None,
                    fresh: fresh.map(|(future, owner)| (Box::pin(future), owner)),
                    prime,
                    then: None,
                }),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes> + Send + 'static,
{
    type Output = Result<Response<ResumeBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Passthrough { future } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(response.map(ResumeBody::passthrough)))
            }
            StateProj::Delete {
                future,
                config,
                session,
            } => {
                let response = ready!(future.poll(cx))?;
                if response.status().is_success()
                    && let Some(session) = session.take()
                {
                    let removal = config.store.remove_session(&session);
                    if let Ok(handle) = tokio::runtime::Handle::try_current() {
                        handle.spawn(async move {
                            if let Err(err) = removal.await {
                                tracing::debug!(error = %err, "resume: removing a session's streams failed");
                            }
                        });
                    }
                }
                Poll::Ready(Ok(response.map(ResumeBody::passthrough)))
            }
            StateProj::Track {
                future,
                config,
                kind,
                owner,
                prime,
            } => {
                let response = ready!(future.poll(cx))?;
                let owner = owner.take().expect("polled after completion");
                Poll::Ready(Ok(track(response, config, *kind, owner, *prime)))
            }
            StateProj::Rejected { rejection } => {
                let rejection = rejection.take().expect("polled after completion");
                Poll::Ready(Ok(rejection.into_response().map(ResumeBody::plain)))
            }
            StateProj::Replay { replay } => replay.poll(cx),
        }
    }
}

/// Wraps the body of a legacy event stream so that it is recorded.
fn track<B>(
    response: Response<B>,
    config: &Arc<Config>,
    kind: StreamKind,
    owner: Owner,
    prime: bool,
) -> Response<ResumeBody<B>>
where
    B: Body<Data = Bytes> + Send + 'static,
{
    if !response.status().is_success() || body_kind(response.headers()) != BodyKind::Sse {
        return response.map(ResumeBody::passthrough);
    }
    response.map(|body| ResumeBody::tracked(tracked(body, config, kind, &owner, prime)))
}

fn tracked<B>(
    body: B,
    config: &Arc<Config>,
    kind: StreamKind,
    owner: &Owner,
    prime: bool,
) -> Tracked<B>
where
    B: Body<Data = Bytes> + Send + 'static,
{
    let sealed = config.sealer.open(kind, owner);
    let tracker = Tracker::start(Arc::clone(config), sealed);
    // A POST stream carries a request's answer: it goes on being recorded when the client
    // leaves. A GET stream is the server's open channel: it ends with the client.
    let detach = (kind == StreamKind::Post
        && config.settings.drain_bytes > 0
        && !config.settings.drain_time.is_zero())
    .then_some(detach::<B> as super::body::Detach<B>);
    let mut tracked = Tracked::new(body, tracker, detach);
    if prime {
        tracked.prime();
    }
    tracked
}

/// Keeps reading a POST stream whose client went away, into the store, within the drain
/// bounds. Needs a Tokio runtime (as the body's own polling does); without one, the inner
/// body is dropped.
fn detach<B>(inner: Pin<Box<B>>, tracker: Tracker)
where
    B: Body<Data = Bytes> + Send + 'static,
{
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        // Counted by the drain from now on: a shutdown waits for it (within the grace).
        let registration = tracker.config.settings.drain.as_ref().map(|d| d.register());
        handle.spawn(drain_detached(inner, tracker, registration));
    }
}

async fn drain_detached<B>(
    mut inner: Pin<Box<B>>,
    mut tracker: Tracker,
    mut registration: Option<super::super::drain::Registration>,
) where
    B: Body<Data = Bytes> + Send + 'static,
{
    let mut deadline = Instant::now() + tracker.config.settings.drain_time;
    let mut left = tracker.config.settings.drain_bytes;
    let grace = tracker.config.settings.drain_grace;
    let mut draining = false;
    loop {
        let mut watch = registration.as_mut().filter(|_| !draining);
        let next = std::future::poll_fn(|cx| {
            if let Some(registration) = watch.as_mut() {
                registration.watch(cx.waker());
                if registration.is_draining() {
                    return Poll::Ready(Detached::Draining);
                }
            }
            inner.as_mut().poll_frame(cx).map(Detached::Frame)
        });
        let data = match tokio::time::timeout_at(deadline, next).await {
            Ok(Detached::Draining) => {
                // Recorded for the grace at most from now on.
                draining = true;
                deadline = deadline.min(Instant::now() + grace);
                continue;
            }
            Ok(Detached::Frame(Some(Ok(frame)))) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
            Ok(Detached::Frame(None)) => {
                tracker.end();
                break;
            }
            // The server's stream failed, or the time is up: the rest is lost.
            Ok(Detached::Frame(Some(Err(_)))) | Err(_) => {
                tracing::debug!("resume: detached stream cut (server error, time bound or drain)");
                tracker.stop();
                break;
            }
        };
        if data.len() > left {
            tracing::debug!("resume: detached stream cut at its byte bound");
            tracker.stop();
            break;
        }
        left -= data.len();
        tracker.process(data, None);
    }
    // Dropping the tracker finishes the stream in the store (its writer task ends once the
    // events handed to it are written); dropping `inner` tells the server the stream is gone.
    let written = tracker.written();
    drop(tracker);
    drop(inner);
    if let Some(registration) = registration {
        // A shutdown waits until what was read is in the store (bounded: the store's calls
        // are, and so is this wait).
        let _ = tokio::time::timeout(grace, written).await;
        drop(registration);
    }
}

/// What a detached stream waits for: the server's next frame, or the drain.
enum Detached<F> {
    Frame(Option<F>),
    Draining,
}

impl<F, B, E> Lookup<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes> + Send + 'static,
{
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Response<ResumeBody<B>>, E>> {
        while self.tail.is_none() {
            if let Some(sleep) = self.sleep.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                self.sleep = None;
                self.lookup = Some(self.config.store.tail(&self.cursor.key, self.cursor.seq));
            }
            let lookup = self
                .lookup
                .as_mut()
                .expect("a lookup or a sleep is pending");
            match ready!(Pin::new(lookup).poll(cx)) {
                Ok(Some(tail)) => {
                    self.tail = Some(tail);
                    // Look at what follows for at most the settle time.
                    self.sleep = Some(Box::pin(tokio::time::sleep_until(
                        Instant::now().max(self.settle_until),
                    )));
                }
                Ok(None) if Instant::now() + SETTLE_STEP <= self.settle_until => {
                    self.lookup = None;
                    self.sleep = Some(Box::pin(tokio::time::sleep(SETTLE_STEP)));
                }
                Ok(None) => return Poll::Ready(Ok(refuse(expired()))),
                Err(err) => return Poll::Ready(Ok(refuse(err.to_rejection(RejectedBy::Sse)))),
            }
        }
        if !self.peeked {
            let tail = self.tail.as_mut().expect("set above");
            match Pin::new(tail).poll_next(cx) {
                Poll::Ready(Some(Ok(event))) if !event.data.is_empty() => self.first = Some(event),
                // The recording was cut right after the cursor, or the store lost events.
                Poll::Ready(Some(_)) => return Poll::Ready(Ok(refuse(expired()))),
                Poll::Ready(None) if self.cursor.kind == StreamKind::Post => {
                    // Nothing will ever follow: a 200 with an empty stream would only make the
                    // client come back.
                    return Poll::Ready(Ok(refuse(expired().with_message(
                        "Not Found: the stream has ended; nothing follows this Last-Event-ID",
                    ))));
                }
                Poll::Ready(None) => self.ended = true,
                Poll::Pending => {
                    // Live: nothing yet. Answer once the settle time is over.
                    if let Some(sleep) = self.sleep.as_mut() {
                        ready!(sleep.as_mut().poll(cx));
                    }
                }
            }
            self.peeked = true;
            self.sleep = None;
        }
        if let Some((future, owner)) = self.fresh.as_mut() {
            let response = ready!(future.as_mut().poll(cx))?;
            if response.status().is_success() && body_kind(response.headers()) == BodyKind::Sse {
                let body = response.into_body();
                let then = tracked(body, &self.config, StreamKind::Get, owner, self.prime);
                self.then = Some(then);
            }
            self.fresh = None;
        }
        let tail = self.tail.take().filter(|_| !self.ended);
        let replay = Replay::new(
            tail,
            self.first.take(),
            self.cursor.id_prefix.clone(),
            self.then.take(),
        );
        let mut response = Response::new(ResumeBody::replay(replay));
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-transform"),
        );
        headers.insert(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        );
        Poll::Ready(Ok(response))
    }
}

fn expired() -> Rejection {
    Rejection::of(RejectedBy::Sse, Reason::EventsExpired)
}

fn refuse<B>(rejection: Rejection) -> Response<ResumeBody<B>> {
    rejection.into_response().map(ResumeBody::plain)
}
