//! [`Health`]: liveness and readiness for probes, on a listener of their own.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use tower_service::Service;

/// The longest one readiness check may take before it counts as failed.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

type CheckFuture = Pin<Box<dyn Future<Output = bool> + Send>>;
type Check = Box<dyn Fn() -> CheckFuture + Send + Sync>;

/// Liveness and readiness: live while the process answers; ready while every check passes.
///
/// A check is a name and a function answering "ready?", sync ([`check`](Health::check)) or
/// async ([`check_async`](Health::check_async)); the usual ones are a draining server
/// (`!drain.is_draining()`), an unreachable session store (`store.count(None)` fails), no
/// JWK set fetched yet ([`wait_for`](Health::wait_for) a [`ReadyFlag`]), and no healthy
/// replica. Checks run on each `/readyz` probe, at the
/// same time, each bounded by [`timeout`](Health::timeout) (a check that takes longer has
/// failed). [`Health::service`] answers `GET /healthz` and `GET /readyz`; mount it on its own
/// listener or before the guard, so a probe from a pod address is not refused.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use mcp_edge::observe::Health;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let draining = Arc::new(AtomicBool::new(false));
/// let flag = draining.clone();
/// let health = Health::new().check("draining", move || !flag.load(Ordering::Relaxed));
/// assert!(health.ready().await.is_ready());
/// draining.store(true, Ordering::Relaxed);
/// let readiness = health.ready().await;
/// assert_eq!(readiness.failing(), ["draining"]);
/// # }
/// ```
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    checks: Vec<(&'static str, Check)>,
    timeout: Duration,
}

impl Default for Health {
    fn default() -> Self {
        Health::new()
    }
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field(
                "checks",
                &self.inner.checks.iter().map(|c| c.0).collect::<Vec<_>>(),
            )
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

impl Health {
    /// No checks: always ready.
    pub fn new() -> Self {
        Health {
            inner: Arc::new(Inner {
                checks: Vec::new(),
                timeout: DEFAULT_CHECK_TIMEOUT,
            }),
        }
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::get_mut(&mut self.inner).expect("Health is configured before it is cloned")
    }

    /// Adds a check answered at once (a flag, a counter).
    ///
    /// # Panics
    /// When called on a clone of a `Health` still shared (configure it before cloning).
    pub fn check<F>(self, name: &'static str, ready: F) -> Self
    where
        F: Fn() -> bool + Send + Sync + 'static,
    {
        self.check_async(name, move || std::future::ready(ready()))
    }

    /// Adds a check that waits (a store round trip). It runs on each probe, bounded by
    /// [`timeout`](Health::timeout); a check still running then counts as failed and is
    /// dropped (cancelled).
    ///
    /// # Panics
    /// When called on a clone of a `Health` still shared (configure it before cloning).
    pub fn check_async<F, Fut>(mut self, name: &'static str, ready: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.inner_mut()
            .checks
            .push((name, Box::new(move || Box::pin(ready()))));
        self
    }

    /// Adds a check that fails until `flag` is set: for what must happen once before the
    /// server can serve, such as the first JWK set fetch
    /// (`RemoteKeys::ready_flag` in `auth`).
    ///
    /// # Panics
    /// When called on a clone of a `Health` still shared (configure it before cloning).
    pub fn wait_for(self, name: &'static str, flag: &ReadyFlag) -> Self {
        let flag = flag.clone();
        self.check(name, move || flag.is_set())
    }

    /// The longest one check may take (default [`DEFAULT_CHECK_TIMEOUT`]).
    ///
    /// # Panics
    /// When called on a clone of a `Health` still shared (configure it before cloning).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.inner_mut().timeout = timeout;
        self
    }

    /// Runs every check (at the same time) and says which failed.
    pub async fn ready(&self) -> Readiness {
        let timeout = self.inner.timeout;
        let runs = self.inner.checks.iter().map(|(name, check)| {
            let run = check();
            async move {
                let ok = tokio::time::timeout(timeout, run).await.unwrap_or(false);
                (!ok).then_some(*name)
            }
        });
        let failing = join_all(runs).await.into_iter().flatten().collect();
        Readiness { failing }
    }

    /// A service answering `GET /healthz` (200 `ok` while the process runs), `GET /readyz`
    /// (200 `ready`, or 503 with the failing checks, one a line) and 404 for anything else.
    pub fn service(&self) -> HealthService {
        HealthService {
            health: self.clone(),
        }
    }
}

/// Polls the futures together (few, short: a probe's checks).
async fn join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (future, slot) in pending.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(out) => *slot = Some(out),
                    Poll::Pending => all = false,
                }
            }
        }
        if all { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    done.into_iter()
        .map(|d| d.expect("polled to the end"))
        .collect()
}

/// A one-way switch a component turns on once it can serve (the first JWK set fetched, a cache
/// warmed), read by a [`Health`] check ([`Health::wait_for`]). Clones share the switch.
///
/// ```
/// use mcp_edge::observe::{Health, ReadyFlag};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let keys_fetched = ReadyFlag::new();
/// let health = Health::new().wait_for("jwks", &keys_fetched);
/// assert_eq!(health.ready().await.failing(), ["jwks"]);
/// keys_fetched.set(); // e.g. by `RemoteKeys::ready_flag` after its first fetch
/// assert!(health.ready().await.is_ready());
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ReadyFlag(Arc<AtomicBool>);

impl ReadyFlag {
    /// A flag not set yet.
    pub fn new() -> Self {
        ReadyFlag::default()
    }

    /// Turns the flag on (for good: there is no way back).
    pub fn set(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether the flag was set.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The answer of [`Health::ready`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    failing: Vec<&'static str>,
}

impl Readiness {
    /// Whether every check passed.
    pub fn is_ready(&self) -> bool {
        self.failing.is_empty()
    }

    /// The names of the checks that failed, in the order they were added.
    pub fn failing(&self) -> &[&'static str] {
        &self.failing
    }
}

/// The service of [`Health::service`].
#[derive(Debug, Clone)]
pub struct HealthService {
    health: Health,
}

/// Response future of [`HealthService`].
pub type HealthFuture =
    Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>;

impl<B> Service<Request<B>> for HealthService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = HealthFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let get = matches!(*request.method(), Method::GET | Method::HEAD);
        let path = request.uri().path().to_owned();
        let health = self.health.clone();
        Box::pin(async move {
            Ok(match (get, path.as_str()) {
                (true, "/healthz") => text(StatusCode::OK, "ok\n".into()),
                (true, "/readyz") => {
                    let readiness = health.ready().await;
                    if readiness.is_ready() {
                        text(StatusCode::OK, "ready\n".into())
                    } else {
                        let mut body = String::from("not ready\n");
                        for name in readiness.failing() {
                            let _ = writeln!(body, "{name}");
                        }
                        text(StatusCode::SERVICE_UNAVAILABLE, body)
                    }
                }
                _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
            })
        })
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tower::ServiceExt;

    async fn get(health: &Health, path: &str) -> (StatusCode, String) {
        let response = health
            .service()
            .oneshot(Request::get(path).body(()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readyz_flips_with_its_checks_and_healthz_stays_live() {
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        let health = Health::new()
            .check("store", move || flag.load(Ordering::Relaxed))
            .check("always", || true);
        assert_eq!(
            get(&health, "/readyz").await,
            (StatusCode::OK, "ready\n".into())
        );
        up.store(false, Ordering::Relaxed);
        assert_eq!(
            get(&health, "/readyz").await,
            (StatusCode::SERVICE_UNAVAILABLE, "not ready\nstore\n".into())
        );
        assert_eq!(get(&health, "/healthz").await.0, StatusCode::OK);
        assert_eq!(get(&health, "/other").await.0, StatusCode::NOT_FOUND);
        up.store(true, Ordering::Relaxed);
        assert!(health.ready().await.is_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_past_the_timeout_fails() {
        let health = Health::new()
            .timeout(Duration::from_millis(50))
            .check_async("slow", || async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                true
            });
        assert_eq!(health.ready().await.failing(), ["slow"]);
    }
}
