//! [`CachedVerifier`]: a verified-token cache in front of any verifier.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime};

use pin_project_lite::pin_project;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::{Principal, TokenVerifier, VerifyError};

/// Remembers verified tokens so a client sending the same token on every request pays for one
/// signature check (or one introspection call).
///
/// Entries are keyed by the SHA-256 of the token (the token itself is not kept), live until
/// the earlier of the token's expiry ([`Principal::expires_at`]) and a maximum age (default
/// 5 minutes, so revocation at an introspection endpoint is seen within it), and are bounded
/// in number (default 10 000; when full, expired entries go first, then the oldest).
/// Failures are not cached.
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
    inner: V,
    cache: Arc<Cache>,
}

struct Cache {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    max_entries: usize,
    max_age: Duration,
}

struct Entry {
    principal: Principal,
    stale_at: Instant,
    expires_at: Option<SystemTime>,
}

impl<V> std::fmt::Debug for CachedVerifier<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedVerifier")
            .field("entries", &self.cache.lock().len())
            .field("max_entries", &self.cache.max_entries)
            .field("max_age", &self.cache.max_age)
            .finish_non_exhaustive()
    }
}

impl<V: TokenVerifier> CachedVerifier<V> {
    /// Caches what `inner` verifies.
    pub fn new(inner: V) -> Self {
        CachedVerifier {
            inner,
            cache: Arc::new(Cache {
                entries: Mutex::new(HashMap::new()),
                max_entries: 10_000,
                max_age: Duration::from_secs(300),
            }),
        }
    }

    /// The most tokens remembered at once.
    pub fn max_entries(mut self, max: usize) -> Self {
        self.edit(|c| c.max_entries = max.max(1));
        self
    }

    /// The longest a verification is trusted, whatever the token's expiry.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.edit(|c| c.max_age = age);
        self
    }

    fn edit(&mut self, f: impl FnOnce(&mut Cache)) {
        let mut cache = Cache {
            entries: Mutex::new(HashMap::new()),
            max_entries: self.cache.max_entries,
            max_age: self.cache.max_age,
        };
        f(&mut cache);
        self.cache = Arc::new(cache);
    }

    /// How many tokens are remembered.
    pub fn len(&self) -> usize {
        self.cache.lock().len()
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
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, key: &[u8; 32]) -> Option<Principal> {
        let mut entries = self.lock();
        let entry = entries.get(key)?;
        let fresh = entry.stale_at > Instant::now()
            && entry.expires_at.is_none_or(|at| at > SystemTime::now());
        if fresh {
            return Some(entry.principal.clone());
        }
        entries.remove(key);
        None
    }

    fn insert(&self, key: [u8; 32], principal: &Principal) {
        let now = Instant::now();
        let mut stale_at = now + self.max_age;
        if let Some(exp) = principal.expires_at() {
            match exp.duration_since(SystemTime::now()) {
                Ok(left) => stale_at = stale_at.min(now + left),
                Err(_) => return,
            }
        }
        let mut entries = self.lock();
        if entries.len() >= self.max_entries && !entries.contains_key(&key) {
            entries.retain(|_, e| e.stale_at > now);
            if entries.len() >= self.max_entries
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.stale_at)
                    .map(|(k, _)| *k)
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            key,
            Entry {
                principal: principal.clone(),
                stale_at,
                expires_at: principal.expires_at(),
            },
        );
    }
}

pin_project! {
    /// The future of [`CachedVerifier`]: an answer from the cache, or the inner verification.
    pub struct CachedFuture<F> {
        #[pin]
        state: CachedState<F>,
    }
}

pin_project! {
    #[project = CachedProj]
    enum CachedState<F> {
        Hit { principal: Option<Principal> },
        Miss { #[pin] future: F, cache: Arc<Cache>, key: [u8; 32] },
    }
}

impl<F> Future for CachedFuture<F>
where
    F: Future<Output = Result<Principal, VerifyError>>,
{
    type Output = Result<Principal, VerifyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            CachedProj::Hit { principal } => {
                Poll::Ready(Ok(principal.take().expect("polled after completion")))
            }
            CachedProj::Miss { future, cache, key } => {
                let result = ready!(future.poll(cx));
                if let Ok(principal) = &result {
                    cache.insert(*key, principal);
                }
                Poll::Ready(result)
            }
        }
    }
}

impl<V: TokenVerifier> TokenVerifier for CachedVerifier<V> {
    type Future = CachedFuture<V::Future>;

    fn verify(&self, token: &str) -> Self::Future {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let state = match self.cache.get(&key) {
            Some(principal) => CachedState::Hit {
                principal: Some(principal),
            },
            None => CachedState::Miss {
                future: self.inner.verify(token),
                cache: Arc::clone(&self.cache),
                key,
            },
        };
        CachedFuture { state }
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
