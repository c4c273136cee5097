//! [`MemorySessionStore`]: bounded, in-process session records.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::time::Instant;

use super::{
    Capped, SessionCaps, SessionCount, SessionRecord, SessionStore, StoreError, StoreFuture,
};
use crate::context::{BindingKey, Principal, Replica};
use crate::protocol::SessionId;

const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
const LAST_SEEN_RESOLUTION: std::time::Duration = std::time::Duration::from_secs(1);

/// Session records in this process's memory: the default store, for one gateway instance.
///
/// Bounded: at most [`max_sessions`](Self::max_sessions) live records (100 000 by default);
/// expired records are dropped when met and swept when the store is full, and an insert into
/// a full store of live sessions fails with [`StoreErrorKind::Full`](super::StoreErrorKind)
/// rather than evicting a live session. Expiry runs on tokio's clock, so tests can pause it.
/// Every call completes without an await point. [`SessionStore::count`] sweeps at most once
/// a second, so its total may include sessions that expired during the last second. A
/// record's [`last_seen`](SessionRecord::last_seen) is refreshed at most once a second
/// (expiry itself is exact).
///
/// Cloning is cheap and shares the records.
#[derive(Clone, Debug)]
pub struct MemorySessionStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    max_sessions: usize,
    sessions: HashMap<SessionId, Entry>,
    by_principal: HashMap<Arc<str>, HashSet<SessionId>>,
    last_sweep: Option<Instant>,
}

#[derive(Debug)]
struct Entry {
    record: SessionRecord,
    created: Instant,
    last_seen: Instant,
}

impl Entry {
    /// Counts a request as activity.
    fn seen(&mut self, now: Instant) {
        // The record's wall-clock `last_seen` is informational: refresh it at most once a
        // second, so a busy session costs no clock read and no copy per request.
        if now.duration_since(self.last_seen) >= LAST_SEEN_RESOLUTION {
            self.record.set_last_seen(SystemTime::now());
        }
        self.last_seen = now;
    }

    fn deadline(&self) -> Instant {
        let idle = self.last_seen + self.record.idle_ttl();
        let absolute = self.created + self.record.max_lifetime();
        idle.min(absolute)
    }

    fn is_live(&self, now: Instant) -> bool {
        now < self.deadline()
    }
}

impl MemorySessionStore {
    /// The default bound on live sessions.
    pub const DEFAULT_MAX_SESSIONS: usize = 100_000;

    /// An empty store holding at most [`Self::DEFAULT_MAX_SESSIONS`] sessions.
    pub fn new() -> Self {
        Self::with_max_sessions(Self::DEFAULT_MAX_SESSIONS)
    }

    /// An empty store holding at most `max` sessions.
    pub fn with_max_sessions(max: usize) -> Self {
        MemorySessionStore {
            inner: Arc::new(Mutex::new(Inner {
                max_sessions: max,
                sessions: HashMap::new(),
                by_principal: HashMap::new(),
                last_sweep: None,
            })),
        }
    }

    /// The bound on live sessions.
    pub fn max_sessions(&self) -> usize {
        self.lock().max_sessions
    }

    /// Records currently held, live or not yet swept.
    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every expired record now.
    pub fn sweep(&self) {
        self.lock().sweep(Instant::now());
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps inconsistent in a way that
        // matters more than refusing every later call would, so recover the guard.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for MemorySessionStore {
    fn default() -> Self {
        Self::new()
    }
}

impl Inner {
    fn insert(&mut self, record: SessionRecord, now: Instant) -> Result<(), StoreError> {
        let inner = self;
        let id = record.id().clone();
        inner.remove(&id);
        if inner.sessions.len() >= inner.max_sessions {
            inner.sweep(now);
            if inner.sessions.len() >= inner.max_sessions {
                return Err(StoreError::full());
            }
        }
        if let Some(binding) = record.binding() {
            // Shares the record's key: no copy of the string.
            let key = Arc::clone(binding.as_arc());
            inner
                .by_principal
                .entry(key)
                .or_default()
                .insert(id.clone());
        }
        // The record's own times may come from another instance; measure from now, minus the
        // age the record already has.
        let age = SystemTime::now()
            .duration_since(record.created_at())
            .unwrap_or_default();
        let idle = SystemTime::now()
            .duration_since(record.last_seen())
            .unwrap_or_default();
        let entry = Entry {
            created: now.checked_sub(age).unwrap_or(now),
            last_seen: now.checked_sub(idle).unwrap_or(now),
            record,
        };
        inner.sessions.insert(id, entry);
        Ok(())
    }

    /// The live entry of `id`, dropping it if expired.
    fn live(&mut self, id: &SessionId, now: Instant) -> Option<&mut Entry> {
        let live = self.sessions.get(id)?.is_live(now);
        if !live {
            self.remove(id);
            return None;
        }
        self.sessions.get_mut(id)
    }

    fn remove(&mut self, id: &SessionId) -> Option<Entry> {
        let entry = self.sessions.remove(id)?;
        if let Some(key) = entry.record.principal()
            && let Some(set) = self.by_principal.get_mut(key)
        {
            set.remove(id);
            if set.is_empty() {
                self.by_principal.remove(key);
            }
        }
        Some(entry)
    }

    fn sweep(&mut self, now: Instant) {
        self.last_sweep = Some(now);
        let expired: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, e)| !e.is_live(now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.remove(&id);
        }
    }

    fn sweep_principal(&mut self, key: &str, now: Instant) -> u64 {
        let Some(ids) = self.by_principal.get(key) else {
            return 0;
        };
        let expired: Vec<SessionId> = ids
            .iter()
            .filter(|id| self.sessions.get(*id).is_none_or(|e| !e.is_live(now)))
            .cloned()
            .collect();
        for id in expired {
            self.remove(&id);
        }
        self.by_principal.get(key).map_or(0, |s| s.len() as u64)
    }
}

impl SessionStore for MemorySessionStore {
    fn get(&self, id: &SessionId) -> StoreFuture<Option<SessionRecord>> {
        let now = Instant::now();
        let mut inner = self.lock();
        StoreFuture::ready(Ok(inner.live(id, now).map(|e| e.record.clone())))
    }

    fn touch(&self, id: &SessionId) -> StoreFuture<Option<SessionRecord>> {
        let now = Instant::now();
        let mut inner = self.lock();
        StoreFuture::ready(Ok(inner.live(id, now).map(|e| {
            e.seen(now);
            e.record.clone()
        })))
    }

    fn touch_as(
        &self,
        id: &SessionId,
        principal: Option<&Principal>,
    ) -> StoreFuture<Option<SessionRecord>> {
        let now = Instant::now();
        let mut inner = self.lock();
        StoreFuture::ready(Ok(inner.live(id, now).map(|e| {
            // Judged under the lock: a foreign request leaves the owner's deadline alone.
            if BindingKey::admits(e.record.binding(), principal) {
                e.seen(now);
            }
            e.record.clone()
        })))
    }

    fn insert(&self, record: SessionRecord) -> StoreFuture<()> {
        let now = Instant::now();
        StoreFuture::ready(self.lock().insert(record, now))
    }

    fn insert_within(&self, record: SessionRecord, caps: SessionCaps) -> StoreFuture<Capped> {
        let now = Instant::now();
        let mut inner = self.lock();
        // Counted and inserted under one lock: concurrent inserts never overshoot a cap.
        if let (Some(max), Some(key)) = (caps.per_principal, record.binding())
            && inner.sweep_principal(key.as_str(), now) >= max
        {
            return StoreFuture::ready(Ok(Capped::PrincipalFull));
        }
        if let Some(max) = caps.total
            && inner.sessions.len() as u64 >= max
        {
            inner.sweep(now);
            if inner.sessions.len() as u64 >= max {
                return StoreFuture::ready(Ok(Capped::TotalFull));
            }
        }
        StoreFuture::ready(inner.insert(record, now).map(|()| Capped::Inserted))
    }

    fn remove(&self, id: &SessionId) -> StoreFuture<bool> {
        let now = Instant::now();
        let mut inner = self.lock();
        let was_live = inner.remove(id).is_some_and(|e| e.is_live(now));
        StoreFuture::ready(Ok(was_live))
    }

    fn set_replica(&self, id: &SessionId, replica: Option<Replica>) -> StoreFuture<bool> {
        let now = Instant::now();
        let mut inner = self.lock();
        StoreFuture::ready(Ok(inner
            .live(id, now)
            .map(|e| e.record.set_replica(replica))
            .is_some()))
    }

    fn replica(&self, id: &SessionId) -> StoreFuture<Option<Replica>> {
        let now = Instant::now();
        let mut inner = self.lock();
        StoreFuture::ready(Ok(inner
            .live(id, now)
            .and_then(|e| e.record.replica().cloned())))
    }

    fn count(&self, principal: Option<&str>) -> StoreFuture<SessionCount> {
        let now = Instant::now();
        let mut inner = self.lock();
        let principal = principal.map_or(0, |key| inner.sweep_principal(key, now));
        // A full sweep is O(n): do it at most once a second, so the total may still count
        // sessions that expired during the last second.
        if inner
            .last_sweep
            .is_none_or(|at| now.duration_since(at) >= SWEEP_INTERVAL)
        {
            inner.sweep(now);
        }
        StoreFuture::ready(Ok(SessionCount {
            total: inner.sessions.len() as u64,
            principal,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::context::Principal;
    use crate::store::StoreErrorKind;

    fn id(s: &str) -> SessionId {
        s.parse().unwrap()
    }

    #[test]
    fn concurrent_capped_inserts_create_exactly_the_cap() {
        let store = MemorySessionStore::new();
        let alice = Principal::new("alice").with_issuer("i");
        let caps = SessionCaps {
            total: Some(40),
            per_principal: Some(25),
        };
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                let alice = alice.clone();
                std::thread::spawn(move || {
                    (0..20)
                        .filter(|i| {
                            let mut record = SessionRecord::new(id(&format!("s{t}-{i}")));
                            if i % 2 == 0 {
                                record = record.with_principal(&alice);
                            }
                            let done = store.insert_within(record, caps).into_ready();
                            matches!(done, Ok(Ok(Capped::Inserted)))
                        })
                        .count()
                })
            })
            .collect();
        let inserted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(inserted, 40);
        assert_eq!(store.len(), 40);
        let count = store
            .count(Some(BindingKey::of(&alice).as_str()))
            .into_ready()
            .unwrap()
            .unwrap();
        assert!(count.principal <= 25, "{count:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn touch_as_moves_the_deadline_only_for_an_admitted_principal() {
        let store = MemorySessionStore::new();
        let alice = Principal::new("alice").with_issuer("i");
        let bob = Principal::new("bob").with_issuer("i");
        let record = SessionRecord::new(id("a"))
            .with_principal(&alice)
            .with_idle_ttl(Duration::from_secs(10));
        store.insert(record).await.unwrap();
        tokio::time::advance(Duration::from_secs(6)).await;
        // Bob and an anonymous request see the record but move nothing.
        assert!(
            store
                .touch_as(&id("a"), Some(&bob))
                .await
                .unwrap()
                .is_some()
        );
        assert!(store.touch_as(&id("a"), None).await.unwrap().is_some());
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(store.get(&id("a")).await.unwrap().is_none());
        // Alice's own request does move it.
        let record = SessionRecord::new(id("b"))
            .with_principal(&alice)
            .with_idle_ttl(Duration::from_secs(10));
        store.insert(record).await.unwrap();
        tokio::time::advance(Duration::from_secs(6)).await;
        store.touch_as(&id("b"), Some(&alice)).await.unwrap();
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(store.get(&id("b")).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn insert_get_touch_remove() {
        let store = MemorySessionStore::new();
        assert!(store.get(&id("a")).await.unwrap().is_none());
        store.insert(SessionRecord::new(id("a"))).await.unwrap();
        assert_eq!(store.get(&id("a")).await.unwrap().unwrap().id(), &id("a"));
        assert!(store.touch(&id("a")).await.unwrap().is_some());
        assert!(store.remove(&id("a")).await.unwrap());
        assert!(!store.remove(&id("a")).await.unwrap());
        assert!(store.touch(&id("a")).await.unwrap().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_ttl_expires_unless_touched() {
        let store = MemorySessionStore::new();
        let record = SessionRecord::new(id("a")).with_idle_ttl(Duration::from_secs(10));
        store.insert(record.clone()).await.unwrap();
        store
            .insert(SessionRecord::new(id("b")).with_idle_ttl(Duration::from_secs(10)))
            .await
            .unwrap();
        for _ in 0..5 {
            tokio::time::advance(Duration::from_secs(6)).await;
            assert!(store.touch(&id("a")).await.unwrap().is_some());
        }
        assert!(store.get(&id("b")).await.unwrap().is_none());
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(store.get(&id("a")).await.unwrap().is_none());
        assert!(store.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn absolute_lifetime_ends_a_busy_session() {
        let store = MemorySessionStore::new();
        store
            .insert(
                SessionRecord::new(id("a"))
                    .with_idle_ttl(Duration::from_secs(10))
                    .with_max_lifetime(Duration::from_secs(25)),
            )
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(8)).await;
        assert!(store.touch(&id("a")).await.unwrap().is_some());
        tokio::time::advance(Duration::from_secs(8)).await;
        assert!(store.touch(&id("a")).await.unwrap().is_some());
        tokio::time::advance(Duration::from_secs(8)).await;
        assert!(store.touch(&id("a")).await.unwrap().is_some());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(store.touch(&id("a")).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn full_store_refuses_instead_of_evicting_live_sessions() {
        let store = MemorySessionStore::with_max_sessions(2);
        store.insert(SessionRecord::new(id("a"))).await.unwrap();
        store.insert(SessionRecord::new(id("b"))).await.unwrap();
        let err = store.insert(SessionRecord::new(id("c"))).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Full);
        // Replacing an existing record is not growth.
        store.insert(SessionRecord::new(id("b"))).await.unwrap();
        assert!(store.get(&id("a")).await.unwrap().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn full_store_sweeps_expired_records_first() {
        let store = MemorySessionStore::with_max_sessions(1);
        store
            .insert(SessionRecord::new(id("a")).with_idle_ttl(Duration::from_secs(1)))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(2)).await;
        store.insert(SessionRecord::new(id("b"))).await.unwrap();
        assert_eq!(store.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn counts_live_sessions_per_principal() {
        let store = MemorySessionStore::new();
        let alice = Principal::new("alice");
        let bob = Principal::new("bob");
        let short = Duration::from_secs(5);
        store
            .insert(SessionRecord::new(id("a1")).with_principal(&alice))
            .await
            .unwrap();
        store
            .insert(
                SessionRecord::new(id("a2"))
                    .with_principal(&alice)
                    .with_idle_ttl(short),
            )
            .await
            .unwrap();
        store
            .insert(SessionRecord::new(id("b1")).with_principal(&bob))
            .await
            .unwrap();
        let key = alice.binding_key();
        let count = store.count(Some(&key)).await.unwrap();
        assert_eq!(
            count,
            SessionCount {
                total: 3,
                principal: 2
            }
        );
        tokio::time::advance(Duration::from_secs(6)).await;
        let count = store.count(Some(&key)).await.unwrap();
        assert_eq!(
            count,
            SessionCount {
                total: 2,
                principal: 1
            }
        );
        store.remove(&id("a1")).await.unwrap();
        assert_eq!(store.count(Some(&key)).await.unwrap().principal, 0);
    }

    #[tokio::test]
    async fn replica_is_set_only_on_live_records() {
        let store = MemorySessionStore::new();
        assert!(
            !store
                .set_replica(&id("a"), Some(Replica::new("r1")))
                .await
                .unwrap()
        );
        store.insert(SessionRecord::new(id("a"))).await.unwrap();
        assert!(
            store
                .set_replica(&id("a"), Some(Replica::new("r1")))
                .await
                .unwrap()
        );
        assert_eq!(
            store.replica(&id("a")).await.unwrap(),
            Some(Replica::new("r1"))
        );
        let shared: Arc<dyn SessionStore> = Arc::new(store);
        assert_eq!(
            shared.replica(&id("a")).await.unwrap(),
            Some(Replica::new("r1"))
        );
    }
}
