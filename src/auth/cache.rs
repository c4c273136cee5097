//! [`CachedVerifier`]: a verified-token cache in front of any verifier.
//!
//! The cache is a [`quick_cache`] sharded concurrent cache: a hit takes a shard's read lock,
//! never a global mutex, and concurrent misses for one token wait on a single verification
//! (its placeholder guard) instead of each calling the verifier.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use quick_cache::sync::{Cache as QuickCache, DefaultLifecycle};
use quick_cache::{DefaultHashBuilder, OptionsBuilder, Weighter};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::{Principal, TokenVerifier, VerifyError};

/// Remembers verified tokens so a client sending the same token on every request pays for one
/// signature check (or one introspection call).
///
/// Entries are keyed by the SHA-256 of the token (the token itself is not kept), live until
/// the earlier of the token's expiry ([`Principal::expires_at`]) and a maximum age (default
/// 5 minutes, so revocation at an introspection endpoint is seen within it), and are bounded
/// in number (default about 10 000; when full, the entries least used recently go first, and
/// an entry past its age is dropped at its next lookup). Failures are not cached.
///
/// Concurrent requests with the same uncached token are coalesced: one of them calls the
/// inner verifier, the others wait for its answer (a failure included) rather than each
/// verifying. If that one is cancelled, a waiting request takes over.
///
/// ```
/// use mcp_edge::auth::{CachedVerifier, Principal, StaticTokens, TokenVerifier};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let verifier = CachedVerifier::new(StaticTokens::new().token("k", Principal::new("svc")))
///     .max_entries(1_000)
///     .max_age(Duration::from_secs(60));
/// assert_eq!(verifier.verify("k").await.unwrap().subject(), "svc");
/// assert_eq!(verifier.len(), 1);
/// # }
/// ```
pub struct CachedVerifier<V> {
    inner: Arc<V>,
    cache: Arc<Cache>,
}

/// The SHA-256 of a token.
type Key = [u8; 32];

struct Cache {
    map:
        QuickCache<Key, Verdict, VerdictWeight, DefaultHashBuilder, DefaultLifecycle<Key, Verdict>>,
    max_entries: usize,
    max_age: Duration,
}

/// What the cache holds for a token.
#[derive(Clone)]
enum Verdict {
    /// A verification still fresh enough to answer from.
    Verified(Entry),
    /// The answer of a verification that is not kept (a failure, or an already expired
    /// token), handed to the requests that waited for it and removed at once. Weighs
    /// nothing, so it never evicts a verified token.
    Passing(Result<Principal, VerifyError>),
}

#[derive(Clone)]
struct Entry {
    principal: Principal,
    stale_at: Instant,
    expires_at: Option<SystemTime>,
}

impl Entry {
    fn is_fresh(&self) -> bool {
        self.stale_at > Instant::now() && self.expires_at.is_none_or(|at| at > SystemTime::now())
    }
}

/// Verified tokens count one each against the capacity; passing answers nothing.
#[derive(Clone)]
struct VerdictWeight;

impl Weighter<Key, Verdict> for VerdictWeight {
    fn weight(&self, _key: &Key, verdict: &Verdict) -> u64 {
        match verdict {
            Verdict::Verified(_) => 1,
            Verdict::Passing(_) => 0,
        }
    }
}

impl<V> std::fmt::Debug for CachedVerifier<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedVerifier")
            .field("entries", &self.cache.len())
            .field("max_entries", &self.cache.max_entries)
            .field("max_age", &self.cache.max_age)
            .finish_non_exhaustive()
    }
}

impl<V: TokenVerifier> CachedVerifier<V> {
    /// Caches what `inner` verifies.
    pub fn new(inner: V) -> Self {
        CachedVerifier {
            inner: Arc::new(inner),
            cache: Arc::new(Cache::new(10_000, Duration::from_secs(300))),
        }
    }

    /// The most tokens remembered at once (approximately: the cache is split in shards that
    /// are bounded each).
    pub fn max_entries(mut self, max: usize) -> Self {
        self.cache = Arc::new(Cache::new(max, self.cache.max_age));
        self
    }

    /// The longest a verification is trusted, whatever the token's expiry.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.cache = Arc::new(Cache::new(self.cache.max_entries, age));
        self
    }

    /// How many tokens are remembered.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether no token is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The verifier behind the cache.
    pub fn inner(&self) -> &V {
        &self.inner
    }
}

impl Cache {
    fn new(max_entries: usize, max_age: Duration) -> Self {
        let max_entries = max_entries.max(1);
        let options = OptionsBuilder::new()
            .estimated_items_capacity(max_entries)
            .weight_capacity(max_entries as u64)
            .build()
            .expect("capacity options are valid");
        Cache {
            map: QuickCache::with_options(
                options,
                VerdictWeight,
                DefaultHashBuilder::default(),
                DefaultLifecycle::default(),
            ),
            max_entries,
            max_age,
        }
    }

    /// Verified tokens held (passing answers weigh nothing and are not counted).
    fn len(&self) -> usize {
        usize::try_from(self.map.weight()).unwrap_or(usize::MAX)
    }

    /// The fresh verification of `key`, if any: the hot path, one shard read lock.
    fn get(&self, key: &Key) -> Option<Principal> {
        let found = match self.map.get(key) {
            Some(Verdict::Verified(entry)) if entry.is_fresh() => Some(entry.principal),
            _ => None,
        };
        crate::observe::metrics::token_cache(found.is_some());
        found
    }

    /// What to keep for `principal`; `None` when it has already expired.
    fn entry(&self, principal: &Principal) -> Option<Entry> {
        let now = Instant::now();
        let mut stale_at = now + self.max_age;
        if let Some(exp) = principal.expires_at() {
            let left = exp.duration_since(SystemTime::now()).ok()?;
            stale_at = stale_at.min(now + left);
        }
        Some(Entry {
            principal: principal.clone(),
            stale_at,
            expires_at: principal.expires_at(),
        })
    }

    /// The miss path: joins a verification of `key` under way, or runs one and shares it.
    async fn verify<V: TokenVerifier>(
        &self,
        key: Key,
        inner: &V,
        token: &str,
    ) -> Result<Principal, VerifyError> {
        loop {
            let guard = match self.map.get_value_or_guard_async(&key).await {
                Ok(Verdict::Verified(entry)) if entry.is_fresh() => return Ok(entry.principal),
                Ok(Verdict::Passing(result)) => return result,
                Ok(Verdict::Verified(_)) => {
                    // Stale: drop it (unless someone already replaced it) and verify anew.
                    self.map.remove_if(
                        &key,
                        |v| matches!(v, Verdict::Verified(entry) if !entry.is_fresh()),
                    );
                    continue;
                }
                Err(guard) => guard,
            };
            // Cancel safety: dropping this future drops the guard, and a waiter takes over.
            let result = inner.verify(token).await;
            let entry = result.as_ref().ok().and_then(|p| self.entry(p));
            match entry {
                Some(entry) => {
                    let _ = guard.insert(Verdict::Verified(entry));
                }
                None => {
                    // Hand the answer to the waiters, keep nothing.
                    if guard.insert(Verdict::Passing(result.clone())).is_ok() {
                        self.map
                            .remove_if(&key, |v| matches!(v, Verdict::Passing(_)));
                    }
                }
            }
            return result;
        }
    }
}

/// The slow path's future: it borrows the cache, so it lives in a box. Only a miss (a
/// signature check or a network call) pays for it.
type MissFuture = Pin<Box<dyn Future<Output = Result<Principal, VerifyError>> + Send>>;

/// The future of [`CachedVerifier`]: an answer from the cache, or the (coalesced) inner
/// verification, whose future type is `F`.
pub struct CachedFuture<F> {
    state: CachedState,
    _inner: PhantomData<fn() -> F>,
}

impl<F> std::fmt::Debug for CachedFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            CachedState::Hit(_) => "Hit",
            CachedState::Miss(_) => "Miss",
        };
        f.debug_struct("CachedFuture")
            .field("state", &state)
            .finish()
    }
}

enum CachedState {
    Hit(Option<Principal>),
    Miss(MissFuture),
}

impl<F> Future for CachedFuture<F> {
    type Output = Result<Principal, VerifyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            CachedState::Hit(principal) => {
                Poll::Ready(Ok(principal.take().expect("polled after completion")))
            }
            CachedState::Miss(future) => future.as_mut().poll(cx),
        }
    }
}

impl<V: TokenVerifier> TokenVerifier for CachedVerifier<V> {
    type Future = CachedFuture<V::Future>;

    fn verify(&self, token: &str) -> Self::Future {
        let key: Key = Sha256::digest(token.as_bytes()).into();
        let state = match self.cache.get(&key) {
            Some(principal) => CachedState::Hit(Some(principal)),
            None => {
                let cache = Arc::clone(&self.cache);
                let inner = Arc::clone(&self.inner);
                let token = token.to_owned();
                CachedState::Miss(Box::pin(
                    async move { cache.verify(key, &*inner, &token).await },
                ))
            }
        };
        CachedFuture {
            state,
            _inner: PhantomData,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counting() -> (Arc<AtomicUsize>, impl TokenVerifier) {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let verifier = move |token: &str| {
            c.fetch_add(1, Ordering::SeqCst);
            let result = if token.starts_with("good") {
                Ok(Principal::new(token.to_owned()))
            } else {
                Err(VerifyError::invalid("no"))
            };
            std::future::ready(result)
        };
        (calls, verifier)
    }

    #[tokio::test(start_paused = true)]
    async fn same_token_is_verified_once_until_max_age() {
        let (calls, v) = counting();
        let cached = CachedVerifier::new(v).max_age(Duration::from_secs(10));
        for _ in 0..5 {
            assert_eq!(cached.verify("good-1").await.unwrap().subject(), "good-1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(11)).await;
        cached.verify("good-1").await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn failures_are_not_cached_and_expired_tokens_never_are() {
        let (calls, v) = counting();
        let cached = CachedVerifier::new(v);
        assert!(cached.verify("bad").await.is_err());
        assert!(cached.verify("bad").await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let expired = CachedVerifier::new(|_: &str| {
            std::future::ready(Ok(
                Principal::new("x").with_expires_at(SystemTime::now() - Duration::from_secs(1))
            ))
        });
        expired.verify("t").await.unwrap();
        assert!(expired.is_empty());
    }

    /// A verifier that counts its calls and takes a while to answer.
    fn slow_counting() -> (Arc<AtomicUsize>, impl TokenVerifier) {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let verifier = move |token: &str| {
            c.fetch_add(1, Ordering::SeqCst);
            let good = token.starts_with("good");
            let subject = token.to_owned();
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if good {
                    Ok(Principal::new(subject))
                } else {
                    Err(VerifyError::invalid("no"))
                }
            }
        };
        (calls, verifier)
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_misses_for_one_token_verify_once() {
        let (calls, v) = slow_counting();
        let cached = Arc::new(CachedVerifier::new(v));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let cached = Arc::clone(&cached);
                tokio::spawn(async move { cached.verify("good-1").await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().subject(), "good-1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cached.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_failures_share_one_verification_and_are_not_cached() {
        let (calls, v) = slow_counting();
        let cached = CachedVerifier::new(v);
        let results = futures::future::join_all((0..50).map(|_| cached.verify("bad"))).await;
        assert!(results.iter().all(|r| r.is_err()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(cached.is_empty());
        assert!(cached.verify("bad").await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_verification_hands_over_to_a_waiter() {
        let (calls, v) = slow_counting();
        let cached = CachedVerifier::new(v);
        let mut first = cached.verify("good-2");
        assert!(futures::poll!(&mut first).is_pending());
        let second = cached.verify("good-2");
        drop(first);
        assert_eq!(second.await.unwrap().subject(), "good-2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(cached.len(), 1);
    }

    #[tokio::test]
    async fn cache_is_bounded() {
        let (_, v) = counting();
        let cached = CachedVerifier::new(v).max_entries(3);
        for i in 0..10 {
            cached.verify(&format!("good-{i}")).await.unwrap();
        }
        assert_eq!(cached.len(), 3);
    }
}
