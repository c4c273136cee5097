//! [`RemoteKeys`]: an issuer's JWK set fetched over the network, with the cache rules of a
//! careful resource server.
//!
//! - Keys are kept for the `Cache-Control: max-age` of the answer (clamped to
//!   [`max_age_bounds`](RemoteKeys::max_age_bounds); [`default_max_age`](RemoteKeys::default_max_age)
//!   without one). Stale keys keep being used while a refresh runs in the background.
//! - A token with an unknown `kid` triggers one refetch, **single-flight** (concurrent requests
//!   wait for the same fetch) and **rate-limited**: at most one fetch per
//!   [`min_refetch_interval`](RemoteKeys::min_refetch_interval). Within the interval, unknown
//!   kids are refused at once (a negative cache of every kid the last fetch did not have), so a
//!   flood of forged kids costs one fetch, not one per token.
//! - A failed fetch keeps the keys already known; with no keys at all the token gets a 401
//!   (`VerifyErrorKind::Unavailable`), never a 5xx. A fetch is bounded by
//!   [`fetch_timeout`](RemoteKeys::fetch_timeout), so no request hangs on a dead key server.
//!
//! # Cancel safety
//!
//! A fetch runs as its own task: a request that gives up while waiting does not cancel it,
//! and its result still updates the cache for the requests after it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use tokio::time::Instant;

use super::VerifyError;
use super::jwt::KeySet;
use crate::observe::ReadyFlag;

/// A JWK set as fetched, with how long it may be cached.
#[derive(Debug, Clone)]
pub struct FetchedKeys {
    /// The keys.
    pub set: JwkSet,
    /// `Cache-Control: max-age`, if the answer had one (`no-cache`/`no-store` → zero).
    pub max_age: Option<Duration>,
}

/// Why a fetch failed (the text is logged, never sent to clients).
#[derive(Debug, Clone)]
pub struct FetchError(pub String);

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "key fetch failed: {}", self.0)
    }
}

impl std::error::Error for FetchError {}

/// The future of a fetch.
pub type FetchFuture = Pin<Box<dyn Future<Output = Result<FetchedKeys, FetchError>> + Send>>;

/// Fetches an issuer's JWK set. A closure `Fn() -> impl Future<Output = Result<FetchedKeys,
/// FetchError>>` is one; [`HttpJwks`] fetches a URL (feature `jwks-fetch`).
pub trait FetchKeys: Send + Sync + 'static {
    /// Starts one fetch.
    fn fetch(&self) -> FetchFuture;
}

impl<F, Fut> FetchKeys for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<FetchedKeys, FetchError>> + Send + 'static,
{
    fn fetch(&self) -> FetchFuture {
        Box::pin(self())
    }
}

/// An issuer's keys, fetched and cached; see the [module docs](self).
#[derive(Clone)]
pub struct RemoteKeys {
    inner: Arc<Inner>,
}

struct Inner {
    fetcher: Box<dyn FetchKeys>,
    state: Mutex<State>,
    single_flight: tokio::sync::Mutex<()>,
    min_refetch_interval: Duration,
    default_max_age: Duration,
    max_age_bounds: (Duration, Duration),
    fetch_timeout: Duration,
    /// Set after the first successful fetch (readiness).
    fetched: Option<ReadyFlag>,
}

#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    stale_at: Option<Instant>,
    last_attempt: Option<Instant>,
    refreshing: bool,
    fetches: u64,
}

impl std::fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("RemoteKeys")
            .field("keys", &state.keys.as_ref().map(|k| k.len()))
            .field("fetches", &state.fetches)
            .finish_non_exhaustive()
    }
}

impl RemoteKeys {
    /// Keys from `fetcher`, with the defaults: refetch on unknown `kid` at most every 30 s,
    /// keep keys 5 min without `Cache-Control`, `max-age` clamped to 30 s – 24 h, fetches time
    /// out after 5 s.
    pub fn new(fetcher: impl FetchKeys) -> Self {
        super::jwt::install_crypto_provider();
        RemoteKeys {
            inner: Arc::new(Inner {
                fetcher: Box::new(fetcher),
                state: Mutex::new(State::default()),
                single_flight: tokio::sync::Mutex::new(()),
                min_refetch_interval: Duration::from_secs(30),
                default_max_age: Duration::from_secs(300),
                max_age_bounds: (Duration::from_secs(30), Duration::from_secs(24 * 3600)),
                fetch_timeout: Duration::from_secs(5),
                fetched: None,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        // Only called while building, before any clone is shared.
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            f(inner);
        }
        self
    }

    /// The least time between two fetches triggered by unknown kids or staleness.
    pub fn min_refetch_interval(self, interval: Duration) -> Self {
        self.edit(|i| i.min_refetch_interval = interval)
    }

    /// How long keys are kept when the answer has no `Cache-Control: max-age`.
    pub fn default_max_age(self, age: Duration) -> Self {
        self.edit(|i| i.default_max_age = age)
    }

    /// The bounds a `max-age` is clamped to.
    pub fn max_age_bounds(self, min: Duration, max: Duration) -> Self {
        self.edit(|i| i.max_age_bounds = (min, max.max(min)))
    }

    /// The longest one fetch may take.
    pub fn fetch_timeout(self, timeout: Duration) -> Self {
        self.edit(|i| i.fetch_timeout = timeout)
    }

    /// Sets `flag` once a fetch has succeeded, for a readiness probe that waits for the
    /// keys ([`Health::wait_for`](crate::observe::Health::wait_for)). Nothing fetches by
    /// itself before the first token arrives: call [`prefetch`](RemoteKeys::prefetch) at
    /// start (and again while it fails) for the flag to be set without traffic.
    pub fn ready_flag(self, flag: ReadyFlag) -> Self {
        self.edit(|i| i.fetched = Some(flag))
    }

    /// How many fetches have been started.
    pub fn fetches(&self) -> u64 {
        self.inner.lock().fetches
    }

    /// Fetches now (e.g. at start-up, so the first request does not wait). The result is
    /// cached as any other; errors are returned and the old keys kept.
    pub async fn prefetch(&self) -> Result<usize, FetchError> {
        let _flight = self.inner.single_flight.lock().await;
        self.inner.lock().last_attempt = Some(Instant::now());
        Inner::run_fetch(Arc::clone(&self.inner)).await?;
        Ok(self.inner.lock().keys.as_ref().map_or(0, |k| k.len()))
    }

    /// The keys, if they hold `kid` (stale keys count; a background refresh is started).
    pub(crate) fn current(&self, kid: Option<&str>) -> Option<Arc<KeySet>> {
        let mut state = self.inner.lock();
        let keys = state.keys.clone().filter(|k| k.has(kid))?;
        let now = Instant::now();
        let stale = state.stale_at.is_none_or(|at| now >= at);
        if stale
            && !state.refreshing
            && self.inner.may_fetch(&state, now)
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            state.refreshing = true;
            state.last_attempt = Some(now);
            drop(state);
            let inner = Arc::clone(&self.inner);
            handle.spawn(async move {
                let _ = Inner::run_fetch(Arc::clone(&inner)).await;
                inner.lock().refreshing = false;
            });
        }
        Some(keys)
    }

    /// The keys after at most one (shared, rate-limited) refetch for `kid`.
    pub(crate) async fn refetch_for(&self, kid: Option<&str>) -> Result<Arc<KeySet>, VerifyError> {
        let _flight = self.inner.single_flight.lock().await;
        let now = Instant::now();
        {
            let mut state = self.inner.lock();
            if let Some(keys) = state.keys.clone().filter(|k| k.has(kid)) {
                return Ok(keys);
            }
            if !self.inner.may_fetch(&state, now) {
                return Err(self.inner.no_key(&state));
            }
            state.last_attempt = Some(now);
        }
        let fetch = spawn(Inner::run_fetch(Arc::clone(&self.inner)));
        let _ = fetch.await;
        let state = self.inner.lock();
        match state.keys.clone().filter(|k| k.has(kid)) {
            Some(keys) => Ok(keys),
            None => Err(self.inner.no_key(&state)),
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn may_fetch(&self, state: &State, now: Instant) -> bool {
        state
            .last_attempt
            .is_none_or(|last| now.duration_since(last) >= self.min_refetch_interval)
    }

    fn no_key(&self, state: &State) -> VerifyError {
        match &state.keys {
            Some(keys) if !keys.is_empty() => {
                VerifyError::invalid("no key matches the token's kid")
            }
            _ => VerifyError::unavailable("no verification keys are available"),
        }
    }

    async fn run_fetch(inner: Arc<Inner>) -> Result<(), FetchError> {
        inner.lock().fetches += 1;
        let fetched = tokio::time::timeout(inner.fetch_timeout, inner.fetcher.fetch())
            .await
            .unwrap_or_else(|_| Err(FetchError("timed out".into())));
        crate::observe::metrics::jwks_fetch(fetched.is_ok());
        match fetched {
            Ok(fetched) => {
                let keys = KeySet::from_jwks(&fetched.set);
                let (lo, hi) = inner.max_age_bounds;
                let age = fetched
                    .max_age
                    .unwrap_or(inner.default_max_age)
                    .clamp(lo, hi);
                let mut state = inner.lock();
                state.keys = Some(Arc::new(keys));
                state.stale_at = Some(Instant::now() + age);
                if let Some(flag) = &inner.fetched {
                    flag.set();
                }
                Ok(())
            }
            Err(err) => {
                tracing::warn!(error = %err, "JWKS fetch failed; keeping the keys already known");
                Err(err)
            }
        }
    }
}

/// Runs `future` as a task when a tokio runtime is there; inline (awaited by the caller)
/// otherwise.
fn spawn<F>(future: F) -> Pin<Box<dyn Future<Output = ()> + Send>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            let task = handle.spawn(future);
            Box::pin(async move {
                let _ = task.await;
            })
        }
        Err(_) => Box::pin(async move {
            future.await;
        }),
    }
}

/// Parses `Cache-Control` for `max-age` (`no-cache` / `no-store` → zero).
pub fn cache_control_max_age(value: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in value.split(',') {
        let directive = directive.trim();
        let (name, arg) = directive.split_once('=').unwrap_or((directive, ""));
        let name = name.trim();
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") {
            max_age = arg
                .trim()
                .trim_matches('"')
                .parse()
                .ok()
                .map(Duration::from_secs);
        }
    }
    max_age
}

#[cfg(feature = "jwks-fetch")]
pub use http_jwks::HttpJwks;

#[cfg(feature = "jwks-fetch")]
mod http_jwks {
    use super::*;

    /// Fetches a JWK set from a URL with `reqwest` (feature `jwks-fetch`), honouring
    /// `Cache-Control`. Answers larger than 1 MiB are refused.
    #[derive(Debug, Clone)]
    pub struct HttpJwks {
        url: String,
        client: reqwest::Client,
    }

    const MAX_JWKS_BYTES: usize = 1024 * 1024;

    impl HttpJwks {
        /// Fetches `url` with a client that times out after 5 s.
        pub fn new(url: impl Into<String>) -> Self {
            HttpJwks::with_client(url, crate::auth::default_http_client())
        }

        /// Fetches `url` with your client (proxies, TLS roots, …).
        pub fn with_client(url: impl Into<String>, client: reqwest::Client) -> Self {
            HttpJwks {
                url: url.into(),
                client,
            }
        }
    }

    impl FetchKeys for HttpJwks {
        fn fetch(&self) -> FetchFuture {
            let request = self
                .client
                .get(&self.url)
                .header("accept", "application/json");
            Box::pin(async move {
                let mut response = request
                    .send()
                    .await
                    .map_err(|e| FetchError(e.to_string()))?;
                if !response.status().is_success() {
                    return Err(FetchError(format!("status {}", response.status())));
                }
                let max_age = response
                    .headers()
                    .get(http::header::CACHE_CONTROL)
                    .and_then(|v| v.to_str().ok())
                    .and_then(cache_control_max_age);
                let mut body = Vec::new();
                while let Some(chunk) = response
                    .chunk()
                    .await
                    .map_err(|e| FetchError(e.to_string()))?
                {
                    if body.len() + chunk.len() > MAX_JWKS_BYTES {
                        return Err(FetchError("JWK set larger than 1 MiB".into()));
                    }
                    body.extend_from_slice(&chunk);
                }
                let set: JwkSet =
                    serde_json::from_slice(&body).map_err(|e| FetchError(e.to_string()))?;
                Ok(FetchedKeys { set, max_age })
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn set(kids: &[&str]) -> JwkSet {
        // Ed25519 public keys (any 32 bytes decode as a key for lookup purposes).
        let keys: Vec<serde_json::Value> = kids
            .iter()
            .map(|kid| {
                serde_json::json!({"kty":"OKP","crv":"Ed25519","kid":kid,"alg":"EdDSA",
                    "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
            })
            .collect();
        serde_json::from_value(serde_json::json!({ "keys": keys })).unwrap()
    }

    struct Fake {
        kids: Arc<Mutex<Option<Vec<&'static str>>>>,
        calls: Arc<AtomicUsize>,
    }

    fn fake(kids: Option<Vec<&'static str>>, max_age: Option<u64>) -> (Fake, RemoteKeys) {
        let f = Fake {
            kids: Arc::new(Mutex::new(kids)),
            calls: Arc::new(AtomicUsize::new(0)),
        };
        let (kids, calls) = (Arc::clone(&f.kids), Arc::clone(&f.calls));
        let remote = RemoteKeys::new(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            let kids = kids.lock().unwrap().clone();
            async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                match kids {
                    Some(kids) => Ok(FetchedKeys {
                        set: set(&kids),
                        max_age: max_age.map(Duration::from_secs),
                    }),
                    None => Err(FetchError("down".into())),
                }
            }
        });
        (f, remote)
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_kid_flood_causes_one_fetch_per_interval() {
        let (f, remote) = fake(Some(vec!["a"]), None);
        let mut tasks = Vec::new();
        for i in 0..50 {
            let remote = remote.clone();
            tasks.push(tokio::spawn(async move {
                let kid = format!("forged-{i}");
                remote.refetch_for(Some(&kid)).await
            }));
        }
        for t in tasks {
            let err = t.await.unwrap().unwrap_err();
            assert_eq!(err.kind(), crate::auth::VerifyErrorKind::Invalid);
        }
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
        // The known kid is served from the cache.
        assert!(remote.current(Some("a")).is_some());
        // After the interval, one more fetch is allowed.
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(remote.refetch_for(Some("forged-x")).await.is_err());
        assert!(remote.refetch_for(Some("forged-y")).await.is_err());
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn rotation_is_picked_up_and_stale_keys_refresh_in_background() {
        let (f, remote) = fake(Some(vec!["a"]), Some(60));
        assert!(remote.refetch_for(Some("a")).await.is_ok());
        *f.kids.lock().unwrap() = Some(vec!["a", "b"]);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(remote.refetch_for(Some("b")).await.is_ok());
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
        // Stale after max-age: still served, refreshed behind the scenes.
        *f.kids.lock().unwrap() = Some(vec!["b"]);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(remote.current(Some("a")).is_some());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(f.calls.load(Ordering::SeqCst), 3);
        assert!(remote.current(Some("a")).is_none());
        assert!(remote.current(Some("b")).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn server_down_keeps_old_keys_and_no_keys_is_unavailable() {
        let (f, remote) = fake(None, None);
        let err = remote.refetch_for(Some("a")).await.unwrap_err();
        assert_eq!(err.kind(), crate::auth::VerifyErrorKind::Unavailable);
        *f.kids.lock().unwrap() = Some(vec!["a"]);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(remote.refetch_for(Some("a")).await.is_ok());
        *f.kids.lock().unwrap() = None;
        tokio::time::advance(Duration::from_secs(400)).await;
        // Stale and the server is down: the old keys keep working.
        assert!(remote.current(Some("a")).is_some());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(remote.current(Some("a")).is_some());
        assert_eq!(f.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_key_server_times_out() {
        let remote = RemoteKeys::new(|| async {
            std::future::pending::<()>().await;
            Err(FetchError("never".into()))
        })
        .fetch_timeout(Duration::from_secs(2));
        let start = Instant::now();
        let err = remote.refetch_for(None).await.unwrap_err();
        assert_eq!(err.kind(), crate::auth::VerifyErrorKind::Unavailable);
        assert!(start.elapsed() <= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn the_ready_flag_is_set_by_the_first_successful_fetch_only() {
        let (fake, keys) = fake(None, None);
        let flag = ReadyFlag::new();
        let keys = keys.ready_flag(flag.clone());
        assert!(keys.prefetch().await.is_err());
        assert!(!flag.is_set());
        *fake.kids.lock().unwrap() = Some(vec!["a"]);
        keys.prefetch().await.unwrap();
        assert!(flag.is_set());
    }

    #[test]
    fn cache_control_parsing() {
        assert_eq!(
            cache_control_max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(cache_control_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(cache_control_max_age("public"), None);
    }
}
