use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use quick_cache::sync::Cache;
use tokio::time::Instant;

use super::Replica;
use crate::context::{BindingKey, Principal};
use crate::protocol::SessionId;
use crate::store::{SessionRecord, SessionResolver, SessionStore, StoreFuture};

/// The table strategy: session → replica pins in a [`SessionStore`], shared by every gateway
/// instance that uses the same store (Redis), with a local cache in front so that a session
/// already seen costs no store round trip.
///
/// The router writes the pin when a replica issues a session id (the `initialize` answer is
/// held until the store has it, so the next request may reach any gateway), follows it on
/// every request, removes it on a successful `DELETE`, when the replica answers 404, and when
/// the replica is gone (R28).
///
/// Cached sessions are touched in the store in the background at most every
/// [`refresh_after`](Table::refresh_after), so their records do not idle out while the
/// session is busy on this gateway.
///
/// ```
/// use std::sync::Arc;
/// use mcp_edge::affinity::Table;
/// use mcp_edge::store::MemorySessionStore;
///
/// let table = Table::new(Arc::new(MemorySessionStore::new())).cache_capacity(100_000);
/// ```
#[derive(Clone)]
pub struct Table {
    resolver: SessionResolver,
    cache: Arc<PinCache>,
    refresh_after: Duration,
    idle_ttl: Option<Duration>,
    max_lifetime: Option<Duration>,
}

impl Table {
    /// The default number of pins cached locally.
    pub const DEFAULT_CACHE_CAPACITY: usize = 65_536;

    /// Pins kept in `store`, cached locally.
    pub fn new(store: Arc<dyn SessionStore>) -> Self {
        Table {
            resolver: SessionResolver::new(store),
            cache: Arc::new(PinCache::new(Self::DEFAULT_CACHE_CAPACITY)),
            refresh_after: Duration::from_secs(60),
            idle_ttl: None,
            max_lifetime: None,
        }
    }

    /// How many pins the local cache holds at most (default 65 536; 0 caches nothing); past
    /// that, the least recently useful pins are evicted and looked up again in the store when
    /// needed.
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = Arc::new(PinCache::new(capacity));
        self
    }

    /// How often a session served from the cache is touched in the store (default 60 s).
    pub fn refresh_after(mut self, every: Duration) -> Self {
        self.refresh_after = every;
        self
    }

    /// The idle TTL of the records the router writes (default: the store's record default).
    pub fn idle_ttl(mut self, ttl: Duration) -> Self {
        self.idle_ttl = Some(ttl);
        self
    }

    /// The absolute lifetime of the records the router writes (default: the record default).
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = Some(lifetime);
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        self.resolver.store()
    }

    /// Finds and ends the sessions the table pins.
    pub(crate) fn resolver(&self) -> &SessionResolver {
        &self.resolver
    }

    /// How many pins are cached now.
    pub fn cached_len(&self) -> usize {
        self.cache.len()
    }

    /// The replica the local cache pins `session` to, without asking the store.
    pub fn cached_replica(&self, session: &SessionId) -> Option<Replica> {
        self.cache.get(session).map(|pin| pin.replica)
    }

    pub(crate) fn cached(&self, session: &SessionId) -> Option<CachedPin> {
        self.cache.get(session)
    }

    pub(crate) fn remember(&self, session: SessionId, pin: CachedPin) {
        self.cache.insert(session, pin);
    }

    pub(crate) fn forget(&self, session: &SessionId) {
        self.cache.remove(session);
    }

    /// Drops the pin here and ends the record in the store (the session is gone).
    pub(crate) fn unpin(&self, session: &SessionId) -> StoreFuture<bool> {
        self.forget(session);
        self.resolver.end(session)
    }

    pub(crate) fn repin(&self, session: &SessionId, replica: &Replica) {
        self.cache
            .update(session, |pin| pin.replica = replica.clone());
    }

    /// Touches the record in the background when the cached pin has not been refreshed for
    /// a while.
    pub(crate) fn refresh(&self, session: &SessionId, pin: &CachedPin) {
        if pin.touched.elapsed() < self.refresh_after {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.cache
            .update(session, |pin| pin.touched = Instant::now());
        let touch = self.resolver.touch(session);
        let cache = Arc::clone(&self.cache);
        let session = session.clone();
        runtime.spawn(async move {
            match touch.await {
                Ok(Some(_)) => {}
                // Ended or expired elsewhere: stop routing it from the cache.
                Ok(None) => cache.remove(&session),
                Err(err) => tracing::debug!(%err, "refreshing a session pin failed"),
            }
        });
    }

    /// The record the router writes for a new session.
    pub(crate) fn record(
        &self,
        session: SessionId,
        pin: &CachedPin,
        principal: Option<&Principal>,
    ) -> StoreFuture<()> {
        let mut record = SessionRecord::new(session)
            .with_replica(Some(pin.replica.clone()))
            .with_binding(principal.map(BindingKey::of));
        if let Some(ttl) = self.idle_ttl {
            record = record.with_idle_ttl(ttl);
        }
        if let Some(lifetime) = self.max_lifetime {
            record = record.with_max_lifetime(lifetime);
        }
        self.resolver.store().insert(record)
    }
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("cached", &self.cache.len())
            .field("refresh_after", &self.refresh_after)
            .finish_non_exhaustive()
    }
}

/// A cached session pin: the replica and the principal binding.
#[derive(Debug, Clone)]
pub(crate) struct CachedPin {
    replica: Replica,
    /// The principal the session is bound to, as the store records it.
    binding: Option<BindingKey>,
    touched: Instant,
}

impl CachedPin {
    pub(crate) fn new(replica: Replica, principal: Option<&Principal>) -> Self {
        CachedPin {
            replica,
            binding: principal.map(BindingKey::of),
            touched: Instant::now(),
        }
    }

    pub(crate) fn from_record(record: &SessionRecord, replica: Replica) -> Self {
        CachedPin {
            replica,
            binding: record.binding().cloned(),
            touched: Instant::now(),
        }
    }

    pub(crate) fn replica(&self) -> &str {
        self.replica.id()
    }

    /// The store's rule ([`BindingKey::admits`]): an unbound session takes anyone, a bound
    /// one only the same issuer and subject (R32).
    pub(crate) fn is_bound_to(&self, principal: Option<&Principal>) -> bool {
        BindingKey::admits(self.binding.as_ref(), principal)
    }
}

/// A bounded map of session pins: a [`quick_cache`] (CLOCK-Pro eviction, O(1), sharded
/// locks), or nothing at all with a capacity of 0.
struct PinCache {
    cache: Option<Cache<SessionId, CachedPin>>,
}

impl PinCache {
    fn new(capacity: usize) -> Self {
        PinCache {
            cache: (capacity > 0).then(|| Cache::new(capacity)),
        }
    }

    fn get(&self, session: &SessionId) -> Option<CachedPin> {
        self.cache.as_ref()?.get(session)
    }

    fn insert(&self, session: SessionId, pin: CachedPin) {
        if let Some(cache) = &self.cache {
            cache.insert(session, pin);
        }
    }

    /// Changes a cached pin in place; a pin evicted or removed meanwhile stays gone.
    fn update(&self, session: &SessionId, f: impl FnOnce(&mut CachedPin)) {
        let Some(cache) = &self.cache else {
            return;
        };
        if let Some(mut pin) = cache.get(session) {
            f(&mut pin);
            // Soft: replaces only a pin still there.
            let _ = cache.replace(session.clone(), pin, true);
        }
    }

    fn remove(&self, session: &SessionId) {
        if let Some(cache) = &self.cache {
            cache.remove(session);
        }
    }

    fn len(&self) -> usize {
        self.cache.as_ref().map_or(0, Cache::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> SessionId {
        format!("session-{n}").parse().unwrap()
    }

    #[test]
    fn cache_is_bounded() {
        let cache = PinCache::new(64);
        for n in 0..1000 {
            cache.insert(id(n), CachedPin::new(Replica::new("a"), None));
        }
        assert!(cache.len() <= 64, "{}", cache.len());
        cache.insert(id(5000), CachedPin::new(Replica::new("b"), None));
        assert_eq!(cache.get(&id(5000)).unwrap().replica(), "b");
        cache.remove(&id(5000));
        assert!(cache.get(&id(5000)).is_none());
    }

    #[test]
    fn cached_binding_follows_the_store_rule() {
        let alice = Principal::new("alice").with_issuer("https://as");
        let bob = Principal::new("bob").with_issuer("https://as");
        let bound = CachedPin::new(Replica::new("a"), Some(&alice));
        assert!(bound.is_bound_to(Some(&alice)));
        assert!(!bound.is_bound_to(Some(&bob)));
        assert!(!bound.is_bound_to(None));
        let unbound = CachedPin::new(Replica::new("a"), None);
        assert!(unbound.is_bound_to(Some(&bob)));
        assert!(unbound.is_bound_to(None));
    }
}
