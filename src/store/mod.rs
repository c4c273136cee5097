//! Shared state: the [`SessionStore`], [`EventStore`] and [`PinStore`] traits and their
//! backends.
//!
//! A legacy MCP session lives in one replica's memory; the edge keeps a small record of it
//! (who owns it, which protocol version it speaks, which replica serves it, when it was last
//! seen) so that every gateway instance can check, route and expire it. Resumable SSE streams
//! need a log of the events a client may ask to replay after a reconnect.
//!
//! An aggregator pins the hash of each upstream tool definition ([`PinStore`]).
//!
//! Each comes as a trait with two backends:
//! - [`MemorySessionStore`], [`MemoryEventStore`] and [`MemoryPinStore`] (default): in-process,
//!   nothing to run.
//! - `RedisSessionStore`, `RedisEventStore` and `RedisPinStore` (cargo feature `redis`): many
//!   gateway instances share one Redis.
//!
//! # Why `dyn` and [`StoreFuture`]
//!
//! Layers hold stores as `Arc<dyn SessionStore>` so one store can be shared by the session
//! layer, the affinity router and several gateway stacks without making every layer generic
//! over it. To stay object-safe, methods return a [`StoreFuture`], which is either an
//! already-computed value (the memory stores: no allocation, no await point) or a boxed future
//! (network backends, where one allocation per call is noise next to a round trip). Store
//! calls happen at most a few times per HTTP request, never per SSE frame for sessions; the
//! event store's `append` runs per frame and the memory backend answers it without boxing.
//!
//! Futures are `'static` (they own what they need), so a layer can keep one in its response
//! future without borrowing the store.
//!
//! ```
//! use std::time::Duration;
//! use mcp_edge::store::{MemorySessionStore, SessionRecord, SessionStore};
//! use mcp_edge::SessionId;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let store = MemorySessionStore::new();
//! let id: SessionId = "3f1c9e2a".parse().unwrap();
//! store
//!     .insert(SessionRecord::new(id.clone()).with_idle_ttl(Duration::from_secs(60)))
//!     .await
//!     .unwrap();
//! let record = store.touch(&id).await.unwrap().expect("just inserted");
//! assert_eq!(record.id(), &id);
//! assert!(store.remove(&id).await.unwrap());
//! assert!(store.get(&id).await.unwrap().is_none());
//! # }
//! ```

mod event;
mod memory;
mod pin;
mod record;
mod resolve;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::context::{Principal, Replica};
use crate::error::{RejectedBy, Rejection};
use crate::protocol::SessionId;

pub use event::{
    EventLogLimits, EventStore, EventTail, MemoryEventStore, StoredEvent, StreamKey, stream_base,
};
#[cfg(feature = "rmcp")]
pub use event::{ForeignEventId, SessionBoundResume, SessionBoundResumeError};
pub use memory::MemorySessionStore;
pub use pin::{ChangedTool, MemoryPinStore, PinCheck, PinStore};
pub use record::{Capped, SessionCaps, SessionCount, SessionRecord};
pub use resolve::{Presented, Resolution, SessionResolver};

/// Records of legacy MCP sessions, shared by the session layer and the affinity router.
///
/// The store is the authority on expiry: a record whose idle TTL or absolute lifetime (both
/// carried by the record, see [`SessionRecord::with_idle_ttl`] and
/// [`SessionRecord::with_max_lifetime`]) has passed is gone, whether or not a backend has
/// physically deleted it yet.
///
/// # Cancel safety
///
/// Dropping a returned future before it completes may or may not have applied the operation
/// (a network backend may already have sent the command); it never leaves a record half
/// written.
///
/// # Failure
///
/// Every method fails with a [`StoreError`] rather than panicking or hanging: network
/// backends bound each call with a timeout. Layers turn the error into a
/// `503 Service Unavailable` with a JSON-RPC body ([`StoreError::to_rejection`]).
pub trait SessionStore: Send + Sync + 'static {
    /// The live record of `id`, or `None` if unknown, expired or ended. Does not count as
    /// activity.
    fn get(&self, id: &SessionId) -> StoreFuture<Option<SessionRecord>>;

    /// Records activity on `id` (moves its idle deadline, never past its absolute lifetime)
    /// and returns the live record, or `None` if unknown, expired or ended. One round trip.
    fn touch(&self, id: &SessionId) -> StoreFuture<Option<SessionRecord>>;

    /// As [`SessionStore::touch`] for a request made by `principal` (or by no one), but
    /// activity is recorded only when the record admits it ([`BindingKey::admits`]), in the
    /// same atomic step: a foreign request never moves the owner's idle deadline (R32). The
    /// live record is returned either way, for [`Resolution::judge`].
    ///
    /// [`BindingKey::admits`]: crate::context::BindingKey::admits
    fn touch_as(
        &self,
        id: &SessionId,
        principal: Option<&Principal>,
    ) -> StoreFuture<Option<SessionRecord>>;

    /// Inserts `record`, replacing any record with the same id. Fails with
    /// [`StoreErrorKind::Full`] when a bounded backend cannot take another session.
    fn insert(&self, record: SessionRecord) -> StoreFuture<()>;

    /// Inserts `record` unless that would take the live sessions past `caps`, counting and
    /// inserting in one atomic step (concurrent inserts never overshoot a cap). With no cap
    /// set, as [`SessionStore::insert`].
    fn insert_within(&self, record: SessionRecord, caps: SessionCaps) -> StoreFuture<Capped>;

    /// Ends `id`. Returns whether a live record was there.
    fn remove(&self, id: &SessionId) -> StoreFuture<bool>;

    /// Sets (or clears) the replica serving `id`, for the affinity router's table strategy.
    /// Returns `false`, changing nothing, when there is no live record of `id`.
    fn set_replica(&self, id: &SessionId, replica: Option<Replica>) -> StoreFuture<bool>;

    /// The replica serving `id`, if the session is live and has one.
    fn replica(&self, id: &SessionId) -> StoreFuture<Option<Replica>> {
        self.get(id)
            .map(|record| record.and_then(|r| r.replica().cloned()))
    }

    /// Live sessions in total and, when `principal` (a [`Principal::binding_key`]) is given,
    /// bound to that principal. Used to enforce session caps.
    ///
    /// [`Principal::binding_key`]: crate::Principal::binding_key
    fn count(&self, principal: Option<&str>) -> StoreFuture<SessionCount>;
}

impl<T: SessionStore + ?Sized> SessionStore for std::sync::Arc<T> {
    fn get(&self, id: &SessionId) -> StoreFuture<Option<SessionRecord>> {
        (**self).get(id)
    }
    fn touch(&self, id: &SessionId) -> StoreFuture<Option<SessionRecord>> {
        (**self).touch(id)
    }
    fn touch_as(
        &self,
        id: &SessionId,
        principal: Option<&Principal>,
    ) -> StoreFuture<Option<SessionRecord>> {
        (**self).touch_as(id, principal)
    }
    fn insert_within(&self, record: SessionRecord, caps: SessionCaps) -> StoreFuture<Capped> {
        (**self).insert_within(record, caps)
    }
    fn insert(&self, record: SessionRecord) -> StoreFuture<()> {
        (**self).insert(record)
    }
    fn remove(&self, id: &SessionId) -> StoreFuture<bool> {
        (**self).remove(id)
    }
    fn set_replica(&self, id: &SessionId, replica: Option<Replica>) -> StoreFuture<bool> {
        (**self).set_replica(id, replica)
    }
    fn replica(&self, id: &SessionId) -> StoreFuture<Option<Replica>> {
        (**self).replica(id)
    }
    fn count(&self, principal: Option<&str>) -> StoreFuture<SessionCount> {
        (**self).count(principal)
    }
}

/// The future every store method returns: a value computed on the spot, or a boxed future
/// for backends that go over the network. `'static`, `Send` and `Unpin`.
#[must_use = "futures do nothing unless polled"]
pub struct StoreFuture<T> {
    kind: FutureKind<T>,
}

type BoxedStoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

enum FutureKind<T> {
    Ready(Option<Result<T, StoreError>>),
    Boxed(BoxedStoreFuture<T>),
}

// No field is ever pinned in place: the boxed future is pinned by its box.
impl<T> Unpin for StoreFuture<T> {}

impl<T> StoreFuture<T> {
    /// A future that is already complete.
    pub fn ready(result: Result<T, StoreError>) -> Self {
        StoreFuture {
            kind: FutureKind::Ready(Some(result)),
        }
    }

    /// Boxes `future` (for network backends).
    pub fn boxed<F>(future: F) -> Self
    where
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        StoreFuture {
            kind: FutureKind::Boxed(Box::pin(future)),
        }
    }

    /// Maps the successful value; stays allocation-free when the value is ready.
    pub fn map<U, F>(self, f: F) -> StoreFuture<U>
    where
        T: Send + 'static,
        F: FnOnce(T) -> U + Send + 'static,
    {
        match self.kind {
            FutureKind::Ready(result) => StoreFuture {
                kind: FutureKind::Ready(result.map(|r| r.map(f))),
            },
            FutureKind::Boxed(future) => StoreFuture::boxed(async move { future.await.map(f) }),
        }
    }

    /// Whether the value is already there (no await point will be hit).
    pub fn is_ready(&self) -> bool {
        matches!(self.kind, FutureKind::Ready(Some(_)))
    }

    /// The value if it is already there, else the future back. Lets a caller skip a state
    /// (and the clone of a service) when a memory backend answered on the spot.
    pub fn into_ready(self) -> Result<Result<T, StoreError>, Self> {
        match self.kind {
            FutureKind::Ready(Some(result)) => Ok(result),
            kind => Err(StoreFuture { kind }),
        }
    }
}

impl<T> Future for StoreFuture<T> {
    type Output = Result<T, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().kind {
            FutureKind::Ready(result) => {
                Poll::Ready(result.take().expect("StoreFuture polled after completion"))
            }
            FutureKind::Boxed(future) => future.as_mut().poll(cx),
        }
    }
}

impl<T> fmt::Debug for StoreFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            FutureKind::Ready(_) => "StoreFuture::Ready",
            FutureKind::Boxed(_) => "StoreFuture::Boxed",
        })
    }
}

/// Why a store call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The backend could not be reached or answered with an error.
    Unavailable,
    /// The backend did not answer in time.
    Timeout,
    /// A bounded backend is full.
    Full,
    /// The backend returned data that could not be read.
    Corrupt,
    /// Events a reader had not read yet were dropped (by count or age), or their stream was
    /// removed.
    Evicted,
}

impl StoreErrorKind {
    /// `"unavailable"`, `"timeout"`, `"full"`, `"corrupt"`, `"evicted"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            StoreErrorKind::Unavailable => "unavailable",
            StoreErrorKind::Timeout => "timeout",
            StoreErrorKind::Full => "full",
            StoreErrorKind::Corrupt => "corrupt",
            StoreErrorKind::Evicted => "evicted",
        }
    }
}

/// A store call that failed. Layers map it to `503` ([`StoreError::to_rejection`]).
#[derive(Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StoreError {
    /// An error of `kind` without a cause.
    pub fn new(kind: StoreErrorKind) -> Self {
        crate::observe::metrics::store_error(kind.as_str());
        StoreError { kind, source: None }
    }

    /// An error of `kind` caused by `source`.
    pub fn with_source(
        kind: StoreErrorKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        crate::observe::metrics::store_error(kind.as_str());
        StoreError {
            kind,
            source: Some(source.into()),
        }
    }

    /// The backend could not be reached.
    pub fn unavailable(
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        StoreError::with_source(StoreErrorKind::Unavailable, source)
    }

    /// The backend did not answer in time.
    pub fn timeout() -> Self {
        StoreError::new(StoreErrorKind::Timeout)
    }

    /// The bounded backend is full.
    pub fn full() -> Self {
        StoreError::new(StoreErrorKind::Full)
    }

    /// What went wrong.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The refusal a layer answers with: `503 Service Unavailable`, `Retry-After: 1`, a
    /// JSON-RPC `-32603` error body, reason
    /// [`Reason::StoreUnavailable`](crate::error::Reason::StoreUnavailable).
    pub fn to_rejection(&self, by: RejectedBy) -> Rejection {
        let rejection = Rejection::store_unavailable(by, None);
        match self.kind {
            StoreErrorKind::Full => {
                rejection.with_message("Service Unavailable: the session store is full")
            }
            StoreErrorKind::Timeout => {
                rejection.with_message("Service Unavailable: the session store timed out")
            }
            _ => rejection,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session store {}", self.kind.as_str())?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[tokio::test]
    async fn ready_future_maps_without_boxing() {
        let future = StoreFuture::ready(Ok(2)).map(|n| n * 21);
        assert!(future.is_ready());
        assert_eq!(future.await.unwrap(), 42);
    }

    #[tokio::test]
    async fn boxed_future_maps() {
        let future = StoreFuture::boxed(async { Ok(2) }).map(|n| n + 1);
        assert!(!future.is_ready());
        assert_eq!(future.await.unwrap(), 3);
    }

    #[tokio::test]
    async fn store_error_becomes_503_with_jsonrpc_body() {
        use http_body_util::BodyExt;
        let rejection = StoreError::timeout().to_rejection(RejectedBy::Session);
        let response = rejection.into_response::<http_body_util::Empty<bytes::Bytes>>();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "1");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"]["code"], -32603);
    }
}
