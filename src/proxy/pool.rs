//! Keep-alive HTTP/1.1 connections to one upstream address, reused last in, first out.
//!
//! Each connection is a hyper `SendRequest` (the handle requests go through) and a driver
//! task that owns the socket. A request takes an idle handle (or connects), sends, and once
//! the response head is in, hands the handle back: straight to the idle list when the
//! connection already waits for its next request (an empty body), else to the driver, which
//! puts it back once the body has been read to its end. No task is spawned and no future
//! boxed per request beyond the one [`ResponseFuture`](super::ResponseFuture) erases the body
//! type with; the idle list is one short-held mutex per upstream address.
//!
//! Timers are per connection, not per request: the driver's one timer enforces both the
//! response-head timeout of the request in flight (it closes the connection, and the request
//! answers 504) and the idle timeout; it is re-armed when it fires, and earlier only when a
//! request's deadline comes before it. Past `max_idle`, returned connections are closed at
//! once.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::Authority;
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::client::conn::http1::{Builder, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::connect::{Stream, Transport};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request got no response head.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No connection could be made (refused, unreachable, timed out): the replica is down.
    Connect(io::Error),
    /// The TLS handshake failed (a certificate not trusted or not for this name, no common
    /// protocol version).
    #[cfg(feature = "proxy-tls")]
    Tls(io::Error),
    /// The connection failed while the request was on it.
    Send(hyper::Error),
    /// No response head within the response-head timeout.
    Timeout,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(err) => write!(f, "connect: {err}"),
            #[cfg(feature = "proxy-tls")]
            Failure::Tls(err) => write!(f, "TLS handshake: {err}"),
            Failure::Send(err) => write!(f, "{err}"),
            Failure::Timeout => f.write_str("no response head in time"),
        }
    }
}

impl Failure {
    pub(crate) fn connect_timed_out() -> Self {
        Failure::Connect(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
    }
}

/// Pool settings, shared by every address of one builder's upstreams.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) head_timeout: Option<Duration>,
    pub(crate) max_idle: usize,
}

/// The connections to one upstream address (`host:port`).
pub(crate) struct Host<B> {
    authority: Authority,
    settings: Settings,
    /// TCP, or TLS for `https://`.
    transport: Transport,
    /// Handles of connections waiting for a request; the most recently used on top.
    idle: Mutex<Vec<Idle<B>>>,
    epoch: Instant,
}

struct Idle<B> {
    sender: SendRequest<B>,
    slot: Arc<Slot<B>>,
}

/// What a connection's driver shares with the requests that use it.
struct Slot<B> {
    /// A handle whose response body is still being read, waiting to go back to the idle list.
    parked: Mutex<Option<SendRequest<B>>>,
    has_parked: AtomicBool,
    /// Milliseconds since the host's epoch when the connection went idle; `BUSY` while in use.
    idle_since: AtomicU64,
    /// When the request in flight must have its response head (ms since the host's epoch);
    /// `NONE` when no request waits for one.
    head_deadline: AtomicU64,
    /// Set by the driver when it closed the connection for a late response head.
    timed_out: AtomicBool,
}

const BUSY: u64 = u64::MAX;
const NONE: u64 = u64::MAX;

/// A connection taken out of the pool for one request.
pub(crate) struct Checkout<B> {
    pub(crate) sender: SendRequest<B>,
    slot: Arc<Slot<B>>,
    /// Taken from the idle list (rather than just made): a request the connection refused
    /// before writing it may go to another one.
    pub(crate) reused: bool,
}

impl<B> Host<B>
where
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    pub(crate) fn new(authority: Authority, settings: Settings) -> Self {
        Host::with_transport(authority, settings, Transport::Plain)
    }

    /// Connections made with `transport` (TLS for an `https://` upstream).
    pub(crate) fn with_transport(
        authority: Authority,
        settings: Settings,
        transport: Transport,
    ) -> Self {
        Host {
            authority,
            settings,
            transport,
            idle: Mutex::new(Vec::new()),
            epoch: Instant::now(),
        }
    }

    pub(crate) fn authority(&self) -> &Authority {
        &self.authority
    }

    /// How many idle connections are still open.
    #[cfg(test)]
    pub(crate) fn idle_len_open(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.iter().filter(|idle| !idle.sender.is_closed()).count()
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(BUSY - 1)
    }

    /// An idle connection that is still open, most recently used first.
    pub(crate) fn checkout(&self) -> Option<Checkout<B>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(Idle { sender, slot }) = idle.pop() {
            if sender.is_closed() {
                continue;
            }
            slot.idle_since.store(BUSY, Ordering::Relaxed);
            return Some(Checkout {
                sender,
                slot,
                reused: true,
            });
        }
        None
    }

    /// Opens a new connection (TCP_NODELAY, and TLS for `https://`, bounded by the connect
    /// timeout) and starts its driver.
    pub(crate) async fn connect(self: Arc<Self>) -> Result<Checkout<B>, Failure> {
        let stream = self
            .transport
            .open(&self.authority, self.settings.connect_timeout)
            .await?;
        self.attach(stream).await
    }

    /// Makes `stream` an HTTP/1.1 connection of this pool and starts its driver.
    pub(crate) async fn attach(self: Arc<Self>, stream: Stream) -> Result<Checkout<B>, Failure> {
        let (sender, connection) = Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(Failure::Send)?;
        let slot = Arc::new(Slot {
            parked: Mutex::new(None),
            has_parked: AtomicBool::new(false),
            idle_since: AtomicU64::new(BUSY),
            head_deadline: AtomicU64::new(NONE),
            timed_out: AtomicBool::new(false),
        });
        let timers = self.settings.idle_timeout.is_some() || self.settings.head_timeout.is_some();
        let first = self.settings.idle_timeout.unwrap_or(UNTIMED_PERIOD);
        tokio::spawn(Driver {
            connection,
            slot: Arc::clone(&slot),
            host: Arc::downgrade(&self),
            idle_timeout: self.settings.idle_timeout,
            armed: self.now_ms().saturating_add(millis(first)),
            timer: timers.then(|| tokio::time::sleep(first)),
        });
        Ok(Checkout {
            sender,
            slot,
            reused: false,
        })
    }

    /// Puts a connection just made (and not used yet) on the idle list.
    #[cfg(feature = "proxy-tls")]
    pub(crate) fn put_fresh(&self, checkout: Checkout<B>) {
        self.put_idle(checkout.sender, checkout.slot);
    }

    /// Puts a handle whose connection waits for its next request on the idle list (or
    /// closes it when the list is full).
    fn put_idle(&self, sender: SendRequest<B>, slot: Arc<Slot<B>>) {
        if sender.is_closed() {
            return;
        }
        slot.idle_since.store(self.now_ms(), Ordering::Relaxed);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.settings.max_idle {
            idle.push(Idle { sender, slot });
        }
    }

    /// After the response head: the handle goes back to the pool now if its connection is
    /// ready for another request, else once the response body has been read (the driver
    /// sees to it). A body dropped before its end closes the connection, and the handle
    /// with it.
    pub(crate) fn check_in(&self, checkout: Checkout<B>) {
        let Checkout { sender, slot, .. } = checkout;
        if sender.is_ready() {
            self.put_idle(sender, slot);
            return;
        }
        *slot.parked.lock().unwrap_or_else(PoisonError::into_inner) = Some(sender);
        slot.has_parked.store(true, Ordering::SeqCst);
        // The connection may have become ready between the check above and the parking,
        // after its driver last looked: take it back here in that case.
        slot.return_if_ready(self);
    }
}

impl<B> Slot<B>
where
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fn return_if_ready(self: &Arc<Self>, host: &Host<B>) {
        if !self.has_parked.load(Ordering::SeqCst) {
            return;
        }
        let sender = {
            let mut parked = self.parked.lock().unwrap_or_else(PoisonError::into_inner);
            match parked.as_ref() {
                Some(sender) if sender.is_ready() => {
                    self.has_parked.store(false, Ordering::SeqCst);
                    parked.take()
                }
                _ => None,
            }
        };
        if let Some(sender) = sender {
            host.put_idle(sender, Arc::clone(self));
        }
    }
}

/// How often a driver with no idle timeout looks at its connection anyway.
const UNTIMED_PERIOD: Duration = Duration::from_secs(3600);

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(NONE - 1)
}

pin_project! {
    /// Drives one connection: the socket's reads and writes, the return of a parked handle
    /// once the response body is read, the response-head timeout and the idle timeout.
    struct Driver<B>
    where
        B: Body,
        B: 'static,
    {
        #[pin]
        connection: Connection<TokioIo<Stream>, B>,
        slot: Arc<Slot<B>>,
        host: Weak<Host<B>>,
        idle_timeout: Option<Duration>,
        // When the timer fires (ms since the host's epoch).
        armed: u64,
        #[pin]
        timer: Option<Sleep>,
    }
}

impl<B> Future for Driver<B>
where
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if let Poll::Ready(result) = this.connection.poll(cx) {
            if let Err(error) = result {
                tracing::debug!(%error, "upstream connection ended with an error");
            }
            return Poll::Ready(());
        }
        let Some(host) = this.host.upgrade() else {
            // Every upstream using this address is gone.
            return Poll::Ready(());
        };
        this.slot.return_if_ready(&host);
        let Some(mut timer) = this.timer.as_pin_mut() else {
            return Poll::Pending;
        };
        // A request sent since the timer was armed may need it sooner (the first request on
        // a connection, or one after an idle period); later deadlines wait for it to fire.
        let head = this.slot.head_deadline.load(Ordering::Relaxed);
        if head < *this.armed {
            timer
                .as_mut()
                .reset(host.epoch + Duration::from_millis(head));
            *this.armed = head;
        }
        while timer.as_mut().poll(cx).is_ready() {
            // A parked handle whose readiness went unseen is not lost: look again.
            this.slot.return_if_ready(&host);
            let now = host.now_ms();
            let head = this.slot.head_deadline.load(Ordering::Relaxed);
            if head <= now {
                // Dropping the connection fails the request on it, which answers 504.
                this.slot.timed_out.store(true, Ordering::SeqCst);
                return Poll::Ready(());
            }
            let since = this.slot.idle_since.load(Ordering::Relaxed);
            let idle_until = match *this.idle_timeout {
                Some(timeout) if since != BUSY => {
                    let until = since.saturating_add(millis(timeout));
                    if until <= now {
                        // Idle too long: dropping the connection closes it; its handle on
                        // the idle list now reports closed and is skipped.
                        return Poll::Ready(());
                    }
                    until
                }
                Some(timeout) => now.saturating_add(millis(timeout)),
                None => now.saturating_add(millis(UNTIMED_PERIOD)),
            };
            let next = idle_until.min(head).max(now + 1);
            timer
                .as_mut()
                .reset(host.epoch + Duration::from_millis(next));
            *this.armed = next;
        }
        Poll::Pending
    }
}

/// Sends `request` on a pooled connection (or a new one) and returns the response head.
///
/// A request the connection refused before writing any of it (the pooled connection had
/// just closed) goes to another connection; one that was written, even partly, is never
/// sent again: a POST is not idempotent.
pub(crate) async fn send<B>(
    host: Arc<Host<B>>,
    mut request: Request<B>,
) -> Result<Response<Incoming>, Failure>
where
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    loop {
        let mut checkout = match host.checkout() {
            Some(checkout) => checkout,
            None => Arc::clone(&host).connect().await?,
        };
        let slot = Arc::clone(&checkout.slot);
        if let Some(timeout) = host.settings.head_timeout {
            let deadline = host.now_ms().saturating_add(millis(timeout));
            slot.head_deadline.store(deadline, Ordering::Relaxed);
        }
        let sent = checkout.sender.try_send_request(request).await;
        slot.head_deadline.store(NONE, Ordering::Relaxed);
        match sent {
            Ok(response) => {
                host.check_in(checkout);
                return Ok(response);
            }
            Err(_) if slot.timed_out.load(Ordering::SeqCst) => return Err(Failure::Timeout),
            Err(mut error) => match error.take_message() {
                Some(unsent) if checkout.reused => request = unsent,
                _ => return Err(Failure::Send(error.into_error())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::AtomicUsize;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full, StreamBody};
    use hyper::body::Frame;
    use tower::ServiceExt;

    use crate::proxy::{HttpUpstream, HttpUpstreamBuilder};

    use super::*;

    /// An upstream on a free port: `/close` answers with `Connection: close`, `/endless`
    /// with a body that never ends, anything else with a two-chunk body. Returns its URL
    /// and the number of connections it accepted.
    async fn upstream() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(|request: Request<Incoming>| async move {
                            if request.uri().path() == "/slow" {
                                tokio::time::sleep(Duration::from_millis(500)).await;
                            }
                            type Chunks = StreamBody<
                                futures::stream::BoxStream<
                                    'static,
                                    Result<Frame<Bytes>, Infallible>,
                                >,
                            >;
                            let chunks: Chunks = match request.uri().path() {
                                "/endless" => StreamBody::new(Box::pin(futures::stream::unfold(
                                    (),
                                    |()| async {
                                        tokio::time::sleep(Duration::from_millis(10)).await;
                                        Some((
                                            Ok(Frame::data(Bytes::from_static(b"data: x\n\n"))),
                                            (),
                                        ))
                                    },
                                ))),
                                _ => StreamBody::new(Box::pin(futures::stream::iter([
                                    Ok(Frame::data(Bytes::from_static(b"data: 1\n\n"))),
                                    Ok(Frame::data(Bytes::from_static(b"data: 2\n\n"))),
                                ]))),
                            };
                            let mut response = Response::new(chunks);
                            if request.uri().path() == "/close" {
                                response
                                    .headers_mut()
                                    .insert(http::header::CONNECTION, "close".parse().unwrap());
                            }
                            Ok::<_, Infallible>(response)
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (url, accepted)
    }

    async fn get(upstream: &HttpUpstream<Full<Bytes>>, path: &str) -> Bytes {
        let request = Request::get(path).body(Full::default()).unwrap();
        let response = upstream.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn sequential_requests_reuse_one_connection() {
        let (url, accepted) = upstream().await;
        let upstream: HttpUpstream<Full<Bytes>> = HttpUpstream::new(&url).unwrap();
        for _ in 0..5 {
            assert_eq!(get(&upstream, "/").await, "data: 1\n\ndata: 2\n\n");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // Another URL on the same address shares the connection.
        let other = upstream.to(&format!("{url}/other")).unwrap();
        get(&other, "/").await;
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn concurrent_requests_get_a_connection_each_then_share_them() {
        let (url, accepted) = upstream().await;
        let upstream: HttpUpstream<Full<Bytes>> = HttpUpstream::new(&url).unwrap();
        let bodies = futures::future::join_all((0..4).map(|_| get(&upstream, "/"))).await;
        assert!(bodies.iter().all(|b| b == "data: 1\n\ndata: 2\n\n"));
        let after_burst = accepted.load(Ordering::SeqCst);
        assert!((1..=4).contains(&after_burst), "{after_burst}");
        for _ in 0..8 {
            get(&upstream, "/").await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), after_burst);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closes_is_not_reused() {
        let (url, accepted) = upstream().await;
        let upstream: HttpUpstream<Full<Bytes>> = HttpUpstream::new(&url).unwrap();
        get(&upstream, "/close").await;
        get(&upstream, "/").await;
        get(&upstream, "/").await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_gives_its_connection_up() {
        let (url, accepted) = upstream().await;
        let upstream: HttpUpstream<Full<Bytes>> = HttpUpstream::new(&url).unwrap();
        let request = Request::get("/endless").body(Full::default()).unwrap();
        let response = upstream.clone().oneshot(request).await.unwrap();
        let mut body = response.into_body();
        body.frame().await.unwrap().unwrap();
        drop(body);
        // The half-read connection never carries another request.
        get(&upstream, "/").await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        get(&upstream, "/").await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn idle_connections_close_after_the_idle_timeout_and_past_the_cap() {
        let (url, accepted) = upstream().await;
        let short: HttpUpstream<Full<Bytes>> = HttpUpstreamBuilder::new()
            .pool_idle_timeout(Duration::from_millis(100))
            .build(&url)
            .unwrap();
        get(&short, "/").await;
        assert_eq!(short.inner_host().idle_len_open(), 1);
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(short.inner_host().idle_len_open(), 0, "closed while idle");
        get(&short, "/").await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);

        let (url, accepted) = upstream().await;
        let uncached: HttpUpstream<Full<Bytes>> = HttpUpstreamBuilder::new()
            .pool_max_idle(0)
            .build(&url)
            .unwrap();
        get(&uncached, "/").await;
        get(&uncached, "/").await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_post_the_connection_dropped_after_writing_is_not_sent_again() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // Answers the first request on each connection, then reads the next one and closes
        // the connection without answering.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let unanswered = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&unanswered);
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut answered = false;
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) if !answered => {
                                answered = true;
                                let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                                stream.write_all(ok).await.unwrap();
                            }
                            Ok(_) => {
                                count.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                        }
                    }
                });
            }
        });
        let upstream: HttpUpstream<Full<Bytes>> = HttpUpstream::new(&url).unwrap();
        let post = || {
            Request::post("/mcp")
                .body(Full::new(Bytes::from_static(b"{}")))
                .unwrap()
        };
        let response = upstream.clone().oneshot(post()).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.into_body().collect().await.unwrap().to_bytes(),
            "ok"
        );
        let response = upstream.clone().oneshot(post()).await.unwrap();
        assert_eq!(response.status(), 502);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            unanswered.load(Ordering::SeqCst),
            1,
            "sent once, never resent"
        );
    }

    #[tokio::test]
    async fn a_late_head_is_a_timeout_and_the_next_request_gets_a_new_connection() {
        let (url, accepted) = upstream().await;
        let upstream: HttpUpstream<Full<Bytes>> = HttpUpstreamBuilder::new()
            .response_head_timeout(Duration::from_millis(100))
            .build(&url)
            .unwrap();
        // A reused connection (its timer armed for the idle timeout) gets the deadline too.
        get(&upstream, "/").await;
        let started = Instant::now();
        let request = Request::get("/slow").body(Full::default()).unwrap();
        let response = upstream.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 504);
        assert!(started.elapsed() < Duration::from_millis(400));
        assert_eq!(get(&upstream, "/").await, "data: 1\n\ndata: 2\n\n");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        // A fresh connection too.
        let fresh: HttpUpstream<Full<Bytes>> = HttpUpstreamBuilder::new()
            .response_head_timeout(Duration::from_millis(100))
            .build(&url)
            .unwrap();
        let request = Request::get("/slow").body(Full::default()).unwrap();
        let response = fresh.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 504);
    }

    #[tokio::test]
    async fn an_unreachable_address_is_a_connect_failure() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        drop(listener);
        let host: Arc<Host<Full<Bytes>>> = Arc::new(Host::new(
            authority,
            Settings {
                connect_timeout: Some(Duration::from_secs(1)),
                idle_timeout: None,
                head_timeout: None,
                max_idle: 1,
            },
        ));
        let request = Request::get("/").body(Full::default()).unwrap();
        assert!(matches!(
            send(host, request).await,
            Err(Failure::Connect(_))
        ));
    }
}
