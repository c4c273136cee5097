//! [`EventStore`]: per-stream event logs for SSE resumption (`Last-Event-ID`, R17–R22).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use tokio::time::Instant;

use super::{StoreError, StoreErrorKind, StoreFuture};
use crate::protocol::SessionId;

/// Names one SSE stream: the session it belongs to (legacy era; `None` for modern streams)
/// and a stream name unique within it, chosen by the SSE layer.
///
/// Events are never replayed across sessions or streams (§L.4). A Redis backend keys a
/// stream by its session with a hash tag, so a session's streams stay on one cluster slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamKey {
    session: Option<SessionId>,
    stream: Arc<str>,
}

impl StreamKey {
    /// The stream `stream` of `session`.
    pub fn new(session: Option<SessionId>, stream: impl Into<Arc<str>>) -> Self {
        StreamKey {
            session,
            stream: stream.into(),
        }
    }
    /// The session the stream belongs to.
    pub fn session(&self) -> Option<&SessionId> {
        self.session.as_ref()
    }
    /// The stream's name within its session.
    pub fn stream(&self) -> &str {
        &self.stream
    }
}

/// One logged event: its sequence number within its stream and the bytes the SSE layer asked
/// to keep (typically the whole event frame).
///
/// Numbers go up by one per event. A stream does not start at 1 but above a base taken from
/// the wall clock when the stream was created ([`stream_base`]), so a cursor from an earlier
/// stream with the same key (evicted, expired, or from before a restart) always falls before
/// the new stream's window and is refused, never replayed against the wrong events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Position in the stream.
    pub seq: u64,
    /// The event's bytes.
    pub data: Bytes,
}

/// Append-only event logs, one per SSE stream, bounded by count and age, with a live tail so
/// a resumed stream keeps receiving new events.
///
/// # Failure and cancel safety
///
/// As for [`SessionStore`](super::SessionStore): errors are [`StoreError`]s, never panics or
/// hangs; dropping a future may or may not have applied the operation.
pub trait EventStore: Send + Sync + 'static {
    /// Appends `data` to `stream` (creating it, see [`stream_base`]) and returns its sequence
    /// number. Runs once per event: backends should answer it cheaply.
    fn append(&self, stream: &StreamKey, data: Bytes) -> StoreFuture<u64>;

    /// Appends events whose sequence numbers the writer chose, for a stream with one writer
    /// that numbers its own events (the resume layer does, so an event's id is known before
    /// the store has it). `events` must be in order, consecutive, and continue the stream
    /// (the first event of a new stream may take any number above 0; the stream then starts
    /// right before it). One call, one round trip, however many events.
    ///
    /// # Failure
    /// [`StoreErrorKind::Corrupt`] when the numbers do not continue the stream (nothing is
    /// appended), [`StoreErrorKind::Evicted`] when the stream is finished or removed, and the
    /// backend's own errors.
    fn append_batch(&self, stream: &StreamKey, events: Vec<StoredEvent>) -> StoreFuture<()>;

    /// Every event of `stream` after `after` (0 = from the stream's first event, which must
    /// still be held), then new events as they are
    /// appended, until the stream is [`finish`](Self::finish)ed or removed.
    ///
    /// `None` when the stream is unknown, or when events after `after` were already dropped
    /// (by count or age), so a replay would silently miss some: the caller should answer so
    /// that the client starts over rather than resume with a hole.
    fn tail(&self, stream: &StreamKey, after: u64) -> StoreFuture<Option<EventTail>>;

    /// Marks `stream` complete: tails end after its last event. Its events stay for replay
    /// until they age out.
    fn finish(&self, stream: &StreamKey) -> StoreFuture<()>;

    /// Drops every stream of `session` (when the session ends). Open tails end.
    fn remove_session(&self, session: &SessionId) -> StoreFuture<()>;
}

impl<T: EventStore + ?Sized> EventStore for Arc<T> {
    fn append(&self, stream: &StreamKey, data: Bytes) -> StoreFuture<u64> {
        (**self).append(stream, data)
    }
    fn append_batch(&self, stream: &StreamKey, events: Vec<StoredEvent>) -> StoreFuture<()> {
        (**self).append_batch(stream, events)
    }
    fn tail(&self, stream: &StreamKey, after: u64) -> StoreFuture<Option<EventTail>> {
        (**self).tail(stream, after)
    }
    fn finish(&self, stream: &StreamKey) -> StoreFuture<()> {
        (**self).finish(stream)
    }
    fn remove_session(&self, session: &SessionId) -> StoreFuture<()> {
        (**self).remove_session(session)
    }
}

/// The events of one stream, replayed then live (from [`EventStore::tail`]).
///
/// Ends after the last event of a finished stream. Yields an error of kind
/// [`StoreErrorKind::Evicted`] and ends if the reader fell so far behind that events it had
/// not read yet were dropped, or if the stream was removed.
pub struct EventTail {
    inner: Pin<Box<dyn Stream<Item = Result<StoredEvent, StoreError>> + Send + 'static>>,
}

impl EventTail {
    /// Wraps a backend's stream of events.
    pub fn new<S>(stream: S) -> Self
    where
        S: Stream<Item = Result<StoredEvent, StoreError>> + Send + 'static,
    {
        EventTail {
            inner: Box::pin(stream),
        }
    }
}

impl Stream for EventTail {
    type Item = Result<StoredEvent, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl fmt::Debug for EventTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventTail")
    }
}

/// The number a new stream's sequence starts above: milliseconds since the Unix epoch times
/// 1024. A stream that lived `t` ms would need over a million events a second to reach the
/// base of a stream created after it with the same key.
pub fn stream_base() -> u64 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    ms << 10
}

/// Bounds of an event store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLogLimits {
    /// Events kept per stream; older ones are dropped first. Default 1024.
    pub max_events_per_stream: usize,
    /// Events older than this are dropped. Default 5 minutes.
    pub max_age: Duration,
    /// Streams kept; past it the stream appended to least recently is dropped. Default 10 000.
    pub max_streams: usize,
}

impl Default for EventLogLimits {
    fn default() -> Self {
        EventLogLimits {
            max_events_per_stream: 1024,
            max_age: Duration::from_secs(300),
            max_streams: 10_000,
        }
    }
}

/// Event logs in this process's memory, bounded by [`EventLogLimits`]. `append` completes
/// without allocation beyond the log entry and without an await point.
#[derive(Clone, Debug)]
pub struct MemoryEventStore {
    limits: EventLogLimits,
    streams: Arc<Mutex<HashMap<StreamKey, Arc<Mutex<StreamLog>>>>>,
}

#[derive(Debug)]
struct StreamLog {
    events: VecDeque<(u64, Instant, Bytes)>,
    base: u64,
    last_seq: u64,
    last_append: Option<Instant>,
    finished: bool,
    removed: bool,
    wakers: Vec<Waker>,
}

impl StreamLog {
    fn new() -> Self {
        Self::starting_at(stream_base())
    }

    fn starting_at(base: u64) -> Self {
        StreamLog {
            events: VecDeque::new(),
            base,
            last_seq: base,
            last_append: None,
            finished: false,
            removed: false,
            wakers: Vec::new(),
        }
    }

    fn trim(&mut self, limits: &EventLogLimits, now: Instant) {
        while self.events.len() > limits.max_events_per_stream {
            self.events.pop_front();
        }
        while let Some((_, at, _)) = self.events.front() {
            if now.duration_since(*at) < limits.max_age {
                break;
            }
            self.events.pop_front();
        }
    }

    /// The first sequence number still held (`last_seq + 1` when none is).
    fn first_held(&self) -> u64 {
        self.events
            .front()
            .map_or(self.last_seq + 1, |(s, _, _)| *s)
    }

    fn wake_all(&mut self) {
        for waker in self.wakers.drain(..) {
            waker.wake();
        }
    }
}

impl MemoryEventStore {
    /// An empty store with default limits.
    pub fn new() -> Self {
        Self::with_limits(EventLogLimits::default())
    }

    /// An empty store with these limits.
    pub fn with_limits(limits: EventLogLimits) -> Self {
        MemoryEventStore {
            limits,
            streams: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The limits.
    pub fn limits(&self) -> EventLogLimits {
        self.limits
    }

    fn streams(&self) -> MutexGuard<'_, HashMap<StreamKey, Arc<Mutex<StreamLog>>>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for MemoryEventStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryEventStore {
    /// The log of `stream`, created with `new` when there is none (evicting one stream first
    /// when the store is full).
    fn log_for(
        &self,
        stream: &StreamKey,
        new: impl FnOnce() -> StreamLog,
    ) -> Arc<Mutex<StreamLog>> {
        let mut streams = self.streams();
        if !streams.contains_key(stream) && streams.len() >= self.limits.max_streams {
            evict_one(&mut streams);
        }
        Arc::clone(
            streams
                .entry(stream.clone())
                .or_insert_with(|| Arc::new(Mutex::new(new()))),
        )
    }
}

fn lock_log(log: &Mutex<StreamLog>) -> MutexGuard<'_, StreamLog> {
    log.lock().unwrap_or_else(|e| e.into_inner())
}

impl EventStore for MemoryEventStore {
    fn append(&self, stream: &StreamKey, data: Bytes) -> StoreFuture<u64> {
        let now = Instant::now();
        let log = self.log_for(stream, StreamLog::new);
        let mut log = lock_log(&log);
        if log.removed || log.finished {
            // A finished stream takes no more events; the SSE layer opens a new one.
            return StoreFuture::ready(Err(StoreError::new(StoreErrorKind::Evicted)));
        }
        log.last_seq += 1;
        let seq = log.last_seq;
        log.events.push_back((seq, now, data));
        log.last_append = Some(now);
        log.trim(&self.limits, now);
        log.wake_all();
        StoreFuture::ready(Ok(seq))
    }

    fn append_batch(&self, stream: &StreamKey, events: Vec<StoredEvent>) -> StoreFuture<()> {
        let Some(first) = events.first().map(|e| e.seq) else {
            return StoreFuture::ready(Ok(()));
        };
        if first == 0 {
            return StoreFuture::ready(Err(StoreError::new(StoreErrorKind::Corrupt)));
        }
        let now = Instant::now();
        let log = self.log_for(stream, || StreamLog::starting_at(first - 1));
        let mut log = lock_log(&log);
        if log.removed || log.finished {
            return StoreFuture::ready(Err(StoreError::new(StoreErrorKind::Evicted)));
        }
        if first != log.last_seq + 1 || events.windows(2).any(|pair| pair[1].seq != pair[0].seq + 1)
        {
            return StoreFuture::ready(Err(StoreError::new(StoreErrorKind::Corrupt)));
        }
        for event in events {
            log.last_seq = event.seq;
            log.events.push_back((event.seq, now, event.data));
        }
        log.last_append = Some(now);
        log.trim(&self.limits, now);
        log.wake_all();
        StoreFuture::ready(Ok(()))
    }

    fn tail(&self, stream: &StreamKey, after: u64) -> StoreFuture<Option<EventTail>> {
        let now = Instant::now();
        let Some(log) = self.streams().get(stream).cloned() else {
            return StoreFuture::ready(Ok(None));
        };
        let after = {
            let mut guard = lock_log(&log);
            guard.trim(&self.limits, now);
            let after = if after == 0 { guard.base } else { after };
            if after > guard.last_seq || after < guard.base || after + 1 < guard.first_held() {
                return StoreFuture::ready(Ok(None));
            }
            after
        };
        StoreFuture::ready(Ok(Some(EventTail::new(MemoryTail {
            log,
            cursor: after,
            done: false,
        }))))
    }

    fn finish(&self, stream: &StreamKey) -> StoreFuture<()> {
        if let Some(log) = self.streams().get(stream).cloned() {
            let mut log = lock_log(&log);
            log.finished = true;
            log.wake_all();
        }
        StoreFuture::ready(Ok(()))
    }

    fn remove_session(&self, session: &SessionId) -> StoreFuture<()> {
        let mut streams = self.streams();
        streams.retain(|key, log| {
            if key.session() != Some(session) {
                return true;
            }
            let mut log = lock_log(log);
            log.removed = true;
            log.wake_all();
            false
        });
        StoreFuture::ready(Ok(()))
    }
}

/// Drops the stream appended to least recently (finished streams first).
fn evict_one(streams: &mut HashMap<StreamKey, Arc<Mutex<StreamLog>>>) {
    let victim = streams
        .iter()
        .map(|(key, log)| {
            let log = lock_log(log);
            (key, !log.finished, log.last_append)
        })
        .min_by_key(|(_, open, at)| (*open, *at))
        .map(|(key, _, _)| key.clone());
    if let Some(log) = victim.and_then(|key| streams.remove(&key)) {
        let mut log = lock_log(&log);
        log.removed = true;
        log.wake_all();
    }
}

struct MemoryTail {
    log: Arc<Mutex<StreamLog>>,
    cursor: u64,
    done: bool,
}

impl Stream for MemoryTail {
    type Item = Result<StoredEvent, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        let mut log = lock_log(&this.log);
        if this.cursor < log.last_seq {
            let next = this.cursor + 1;
            let first = log.first_held();
            if next < first || log.removed {
                drop(log);
                this.done = true;
                return Poll::Ready(Some(Err(StoreError::new(StoreErrorKind::Evicted))));
            }
            let index = (next - first) as usize;
            let (seq, _, data) = &log.events[index];
            let event = StoredEvent {
                seq: *seq,
                data: data.clone(),
            };
            this.cursor = next;
            return Poll::Ready(Some(Ok(event)));
        }
        if log.finished || log.removed {
            drop(log);
            this.done = true;
            return Poll::Ready(None);
        }
        if !log.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            log.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(session: &str, stream: &str) -> StreamKey {
        StreamKey::new(Some(session.parse().unwrap()), stream)
    }

    /// A memory store with the default limits but what `edit` sets.
    fn limited(edit: impl FnOnce(&mut EventLogLimits)) -> MemoryEventStore {
        let mut limits = EventLogLimits::default();
        edit(&mut limits);
        MemoryEventStore::with_limits(limits)
    }

    async fn next(tail: &mut EventTail) -> Option<Result<StoredEvent, StoreError>> {
        std::future::poll_fn(|cx| Pin::new(&mut *tail).poll_next(cx)).await
    }

    #[tokio::test]
    async fn replays_after_cursor_then_follows_live_appends() {
        let store = MemoryEventStore::new();
        let k = key("s", "get");
        let mut seqs = Vec::new();
        for i in 1..=3u8 {
            seqs.push(store.append(&k, Bytes::from(vec![i])).await.unwrap());
        }
        assert_eq!(seqs[1], seqs[0] + 1);
        assert_eq!(seqs[2], seqs[0] + 2);
        let mut tail = store.tail(&k, seqs[0]).await.unwrap().unwrap();
        assert_eq!(next(&mut tail).await.unwrap().unwrap().seq, seqs[1]);
        assert_eq!(next(&mut tail).await.unwrap().unwrap().seq, seqs[2]);
        let store2 = store.clone();
        let k2 = k.clone();
        let writer = tokio::spawn(async move {
            tokio::task::yield_now().await;
            store2.append(&k2, Bytes::from_static(b"4")).await.unwrap();
            store2.finish(&k2).await.unwrap();
        });
        let live = next(&mut tail).await.unwrap().unwrap();
        assert_eq!(
            live,
            StoredEvent {
                seq: seqs[2] + 1,
                data: Bytes::from_static(b"4")
            }
        );
        assert!(next(&mut tail).await.is_none());
        writer.await.unwrap();
        // From the start: every event, while the first is still held.
        let mut all = store.tail(&k, 0).await.unwrap().unwrap();
        assert_eq!(next(&mut all).await.unwrap().unwrap().seq, seqs[0]);
    }

    #[tokio::test]
    async fn batches_keep_the_writers_numbers_and_refuse_a_gap() {
        let store = MemoryEventStore::new();
        let k = key("s", "post");
        let event = |seq: u64| StoredEvent {
            seq,
            data: Bytes::from(seq.to_string()),
        };
        store
            .append_batch(&k, vec![event(1), event(2)])
            .await
            .unwrap();
        store.append_batch(&k, vec![event(3)]).await.unwrap();
        let gap = store.append_batch(&k, vec![event(5)]).await.unwrap_err();
        assert_eq!(gap.kind(), StoreErrorKind::Corrupt);
        let mut tail = store.tail(&k, 1).await.unwrap().unwrap();
        store.finish(&k).await.unwrap();
        assert_eq!(next(&mut tail).await.unwrap().unwrap(), event(2));
        assert_eq!(next(&mut tail).await.unwrap().unwrap(), event(3));
        assert!(next(&mut tail).await.is_none());
        // From the first event, and nothing after the last one.
        let mut all = store.tail(&k, 0).await.unwrap().unwrap();
        assert_eq!(next(&mut all).await.unwrap().unwrap(), event(1));
        assert!(store.tail(&k, 4).await.unwrap().is_none());
        let after_finish = store.append_batch(&k, vec![event(4)]).await.unwrap_err();
        assert_eq!(after_finish.kind(), StoreErrorKind::Evicted);
    }

    #[tokio::test]
    async fn streams_and_sessions_never_mix() {
        let store = MemoryEventStore::new();
        store
            .append(&key("s1", "a"), Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert!(store.tail(&key("s2", "a"), 0).await.unwrap().is_none());
        assert!(store.tail(&key("s1", "b"), 0).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_cursor_before_the_kept_window_is_refused() {
        let store = limited(|limits| limits.max_events_per_stream = 2);
        let k = key("s", "a");
        let mut seqs = Vec::new();
        for _ in 0..5 {
            seqs.push(store.append(&k, Bytes::from_static(b"e")).await.unwrap());
        }
        assert!(store.tail(&k, 0).await.unwrap().is_none());
        assert!(store.tail(&k, seqs[0]).await.unwrap().is_none());
        assert!(store.tail(&k, seqs[2]).await.unwrap().is_some());
        assert!(store.tail(&k, seqs[4] + 4).await.unwrap().is_none());
        assert!(store.tail(&k, 3).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_cursor_from_an_earlier_stream_with_the_same_key_is_refused() {
        let store = MemoryEventStore::new();
        let k = key("s", "a");
        let old = store.append(&k, Bytes::from_static(b"old")).await.unwrap();
        store.remove_session(&"s".parse().unwrap()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
        let new = store.append(&k, Bytes::from_static(b"new")).await.unwrap();
        store
            .append(&k, Bytes::from_static(b"newer"))
            .await
            .unwrap();
        assert!(new > old + 1);
        assert!(store.tail(&k, old).await.unwrap().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn old_events_age_out() {
        let store = limited(|limits| limits.max_age = Duration::from_secs(10));
        let k = key("s", "a");
        let first = store.append(&k, Bytes::from_static(b"old")).await.unwrap();
        tokio::time::advance(Duration::from_secs(11)).await;
        store.append(&k, Bytes::from_static(b"new")).await.unwrap();
        assert!(store.tail(&k, 0).await.unwrap().is_none());
        let mut tail = store.tail(&k, first).await.unwrap().unwrap();
        store.finish(&k).await.unwrap();
        assert_eq!(next(&mut tail).await.unwrap().unwrap().data, "new");
        assert!(next(&mut tail).await.is_none());
    }

    #[tokio::test]
    async fn a_slow_reader_gets_evicted_instead_of_a_silent_hole() {
        let store = limited(|limits| limits.max_events_per_stream = 2);
        let k = key("s", "a");
        store.append(&k, Bytes::from_static(b"1")).await.unwrap();
        let mut tail = store.tail(&k, 0).await.unwrap().unwrap();
        for _ in 0..4 {
            store.append(&k, Bytes::from_static(b"n")).await.unwrap();
        }
        let err = next(&mut tail).await.unwrap().unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Evicted);
        assert!(next(&mut tail).await.is_none());
    }

    #[tokio::test]
    async fn removing_a_session_ends_its_tails_and_bounds_streams() {
        let store = limited(|limits| limits.max_streams = 2);
        let seq = store
            .append(&key("s", "a"), Bytes::from_static(b"1"))
            .await
            .unwrap();
        let mut tail = store.tail(&key("s", "a"), seq).await.unwrap().unwrap();
        store.remove_session(&"s".parse().unwrap()).await.unwrap();
        assert!(next(&mut tail).await.is_none());
        for s in ["t", "u", "v"] {
            store
                .append(&key(s, "a"), Bytes::from_static(b"1"))
                .await
                .unwrap();
        }
        assert!(store.tail(&key("t", "a"), 0).await.unwrap().is_none());
        assert!(store.tail(&key("v", "a"), 0).await.unwrap().is_some());
    }
}

#[cfg(feature = "rmcp")]
pub use rmcp_resume::{ForeignEventId, SessionBoundResume, SessionBoundResumeError};

/// rmcp's resumption with the check it lacks: an event id opens only streams of the session
/// that received it.
#[cfg(feature = "rmcp")]
mod rmcp_resume {
    use std::sync::Arc;

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use hkdf::Hkdf;
    use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
    use rmcp::transport::common::server_side_http::{ServerSseMessage, SessionId};
    use rmcp::transport::streamable_http_server::session::{
        EventStore as RmcpEventStore, RestoreOutcome, SessionManager,
    };
    use sha2::Sha256;
    use subtle::ConstantTimeEq;

    use super::*;

    /// Wraps an rmcp [`SessionManager`] (typically `LocalSessionManager` with our
    /// [`RedisEventStore`](crate::store::redis::RedisEventStore) as its event store, so that
    /// streams resume on any replica) so that every event id it hands out is sealed to its
    /// session: `<rmcp's id>~<seal>`, the seal an HMAC-SHA256 under the key of the session id
    /// and the id's stream part. rmcp's `resume` takes a `Last-Event-ID` without checking
    /// that its stream belongs to the session asking (any session could replay any other's
    /// events); here an id sealed for another session, or not sealed, is refused with
    /// [`ForeignEventId`] before rmcp sees it.
    ///
    /// Every replica must use the same key ([`SessionBoundResume::with_key`]).
    pub struct SessionBoundResume<M> {
        inner: M,
        key: Arc<[u8; 32]>,
    }

    impl<M: std::fmt::Debug> std::fmt::Debug for SessionBoundResume<M> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("SessionBoundResume")
                .field("inner", &self.inner)
                .finish_non_exhaustive()
        }
    }

    impl<M> SessionBoundResume<M> {
        /// Seals with a key drawn for this process (one replica).
        pub fn new(inner: M) -> Self {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).expect("the OS random source is unavailable");
            Self::with_key(inner, key)
        }

        /// Seals with `key`: the same on every replica sharing an event store.
        pub fn with_key(inner: M, key: [u8; 32]) -> Self {
            SessionBoundResume {
                inner,
                key: Arc::new(key),
            }
        }
    }

    /// A `Last-Event-ID` not sealed for the session that presented it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ForeignEventId;

    impl std::fmt::Display for ForeignEventId {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the Last-Event-ID does not belong to this session")
        }
    }

    impl std::error::Error for ForeignEventId {}

    /// The errors of [`SessionBoundResume`]: the inner manager's, or a foreign event id.
    #[derive(Debug)]
    pub enum SessionBoundResumeError<E> {
        /// The inner session manager failed.
        Inner(E),
        /// The `Last-Event-ID` belongs to another session, or was never handed out.
        Foreign(ForeignEventId),
    }

    impl<E: std::fmt::Display> std::fmt::Display for SessionBoundResumeError<E> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                SessionBoundResumeError::Inner(e) => e.fmt(f),
                SessionBoundResumeError::Foreign(e) => e.fmt(f),
            }
        }
    }

    impl<E: std::error::Error + 'static> std::error::Error for SessionBoundResumeError<E> {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            match self {
                SessionBoundResumeError::Inner(e) => Some(e),
                SessionBoundResumeError::Foreign(e) => Some(e),
            }
        }
    }

    /// The seal of stream `stream` for `session`.
    fn seal(key: &[u8; 32], session: &str, stream: &str) -> String {
        let mut message = Vec::with_capacity(session.len() + stream.len() + 40);
        message.extend_from_slice(b"mcp-edge rmcp resume v1\0");
        message.extend_from_slice(&(session.len() as u64).to_be_bytes());
        message.extend_from_slice(session.as_bytes());
        message.extend_from_slice(stream.as_bytes());
        // HKDF-Extract is HMAC-SHA256(salt = key, message) (RFC 5869 §2.2).
        let (prk, _) = Hkdf::<Sha256>::extract(Some(key), &message);
        URL_SAFE_NO_PAD.encode(&prk[..16])
    }

    /// The stream part of an rmcp event id (`<stream>/<index>`, or the whole id).
    fn stream_of(id: &str) -> &str {
        id.rsplit_once('/').map_or(id, |(stream, _)| stream)
    }

    /// Seals every event id of a stream of `session`.
    struct Sealing<S> {
        inner: S,
        key: Arc<[u8; 32]>,
        session: SessionId,
        /// The last stream part seen and its seal (one seal per stream, not per event).
        last: Option<(String, String)>,
    }

    impl<S> Stream for Sealing<S>
    where
        S: Stream<Item = ServerSseMessage> + Unpin,
    {
        type Item = ServerSseMessage;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            let this = &mut *self;
            let mut event = match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(event)) => event,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            if let Some(id) = event.event_id.take() {
                let stream = stream_of(&id);
                if this.last.as_ref().is_none_or(|(s, _)| s != stream) {
                    let sealed = seal(&this.key, &this.session, stream);
                    this.last = Some((stream.to_owned(), sealed));
                }
                let (_, sealed) = this.last.as_ref().expect("set above");
                event.event_id = Some(format!("{id}~{sealed}"));
            }
            Poll::Ready(Some(event))
        }
    }

    impl<M: SessionManager> SessionBoundResume<M> {
        /// The inner manager's stream, its event ids sealed to `session`; or its error.
        fn sealing<S>(
            &self,
            session: &SessionId,
            stream: Result<S, M::Error>,
        ) -> Result<Sealing<Pin<Box<S>>>, SessionBoundResumeError<M::Error>>
        where
            S: Stream<Item = ServerSseMessage> + Send + Sync + 'static,
        {
            Ok(Sealing {
                inner: Box::pin(inner(stream)?),
                key: Arc::clone(&self.key),
                session: session.clone(),
                last: None,
            })
        }
    }

    /// An answer of the inner manager, its error wrapped.
    fn inner<T, E>(answer: Result<T, E>) -> Result<T, SessionBoundResumeError<E>> {
        answer.map_err(SessionBoundResumeError::Inner)
    }

    impl<M: SessionManager> SessionManager for SessionBoundResume<M> {
        type Error = SessionBoundResumeError<M::Error>;
        type Transport = M::Transport;

        async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
            inner(self.inner.create_session().await)
        }

        async fn initialize_session(
            &self,
            id: &SessionId,
            message: ClientJsonRpcMessage,
        ) -> Result<ServerJsonRpcMessage, Self::Error> {
            inner(self.inner.initialize_session(id, message).await)
        }

        async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
            inner(self.inner.has_session(id).await)
        }

        async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
            inner(self.inner.close_session(id).await)
        }

        async fn create_stream(
            &self,
            id: &SessionId,
            message: ClientJsonRpcMessage,
        ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>
        {
            self.sealing(id, self.inner.create_stream(id, message).await)
        }

        async fn accept_message(
            &self,
            id: &SessionId,
            message: ClientJsonRpcMessage,
        ) -> Result<(), Self::Error> {
            inner(self.inner.accept_message(id, message).await)
        }

        async fn create_standalone_stream(
            &self,
            id: &SessionId,
        ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>
        {
            self.sealing(id, self.inner.create_standalone_stream(id).await)
        }

        async fn resume(
            &self,
            id: &SessionId,
            last_event_id: String,
        ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>
        {
            let foreign = SessionBoundResumeError::Foreign(ForeignEventId);
            let Some((inner_id, presented)) = last_event_id.rsplit_once('~') else {
                return Err(foreign);
            };
            let expected = seal(&self.key, id, stream_of(inner_id));
            if !bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) {
                return Err(foreign);
            }
            self.sealing(id, self.inner.resume(id, inner_id.to_owned()).await)
        }

        async fn restore_session(
            &self,
            id: SessionId,
        ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
            inner(self.inner.restore_session(id).await)
        }

        fn event_store(&self) -> Option<Arc<dyn RmcpEventStore>> {
            self.inner.event_store()
        }
    }
}
