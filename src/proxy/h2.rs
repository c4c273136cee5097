//! An `https://` upstream address (feature `proxy-tls`): one multiplexed HTTP/2 connection
//! when the upstream picks `h2` in the TLS handshake, else the HTTP/1.1 pool over TLS.
//!
//! The first connection offers `h2` and `http/1.1` (ALPN). When the upstream picks `h2`, that
//! connection carries every request from then on, each as its own stream, until it dies (the
//! upstream closes it, a keep-alive ping goes unanswered); the next request makes a new one.
//! Only one connection is made at a time while HTTP/2 is possible, so a burst of requests
//! shares the first connection rather than racing to open one each; the wait counts against
//! the connect timeout. When the upstream picks `http/1.1` (or says nothing), the address is
//! served by the HTTP/1.1 pool from then on ([`Host`], whose connections offer only
//! `http/1.1`), exactly as a plain one.
//!
//! The response-head timeout is a timer per request here (the HTTP/1.1 pool keeps it in the
//! connection's driver, which a multiplexed connection cannot do); dropping a request's
//! future resets its stream only, never the connection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version};
use http_body::Body;
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use super::connect::Transport;
use super::pool::{self, Failure, Host, Settings};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How often a multiplexed connection is pinged, idle or not, and how long an answer may
/// take before the connection counts as dead (a half-open connection would otherwise hold
/// every stream on it).
const PING_INTERVAL: Duration = Duration::from_secs(30);
const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// The connections to one `https://` address.
pub(crate) struct TlsHost<B> {
    authority: Authority,
    settings: Settings,
    /// HTTP/1.1 over TLS, offering only `http/1.1`.
    h1: Arc<Host<B>>,
    /// Connections offering `h2` and `http/1.1`; `None` when HTTP/2 is not offered.
    offer_h2: Option<Transport>,
    /// The live HTTP/2 connection's handle.
    h2: Mutex<Option<http2::SendRequest<B>>>,
    /// The upstream picked `http/1.1`: every request goes to the HTTP/1.1 pool.
    h1_only: AtomicBool,
    /// Held while a connection that may become HTTP/2 is being made.
    connecting: tokio::sync::Mutex<()>,
}

/// What a new connection turned out to be.
enum Connected<B> {
    H2(http2::SendRequest<B>),
    /// An HTTP/1.1 connection, now on the pool's idle list.
    H1,
}

impl<B> TlsHost<B>
where
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    pub(crate) fn new(
        authority: Authority,
        settings: Settings,
        h1: Transport,
        offer_h2: Option<Transport>,
    ) -> Self {
        TlsHost {
            h1: Arc::new(Host::with_transport(authority.clone(), settings, h1)),
            authority,
            settings,
            h1_only: AtomicBool::new(offer_h2.is_none()),
            offer_h2,
            h2: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The live HTTP/2 connection's handle, if any.
    fn current(&self) -> Option<http2::SendRequest<B>> {
        let mut h2 = self.h2.lock().unwrap_or_else(PoisonError::into_inner);
        match h2.as_ref() {
            Some(sender) if !sender.is_closed() => Some(sender.clone()),
            Some(_) => {
                *h2 = None;
                None
            }
            None => None,
        }
    }

    /// Drops the HTTP/2 connection's handle: the next request makes a new connection.
    fn forget(&self) {
        *self.h2.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Makes a connection offering `h2` (one at a time), unless another request made one
    /// meanwhile; all within the connect timeout.
    async fn connect(&self, offer: &Transport) -> Result<Connected<B>, Failure> {
        let connect = async {
            let _one_at_a_time = self.connecting.lock().await;
            if let Some(sender) = self.current() {
                return Ok(Connected::H2(sender));
            }
            if self.h1_only.load(Ordering::Relaxed) {
                return Ok(Connected::H1);
            }
            let stream = offer.open(&self.authority, None).await?;
            if !stream.is_h2() {
                self.h1_only.store(true, Ordering::Relaxed);
                let checkout = Arc::clone(&self.h1).attach(stream).await?;
                self.h1.put_fresh(checkout);
                return Ok(Connected::H1);
            }
            let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .keep_alive_interval(PING_INTERVAL)
                .keep_alive_timeout(PING_TIMEOUT)
                .keep_alive_while_idle(true)
                .handshake(TokioIo::new(stream))
                .await
                .map_err(Failure::Send)?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "upstream HTTP/2 connection ended with an error");
                }
            });
            *self.h2.lock().unwrap_or_else(PoisonError::into_inner) = Some(sender.clone());
            Ok(Connected::H2(sender))
        };
        match self.settings.connect_timeout {
            Some(timeout) => tokio::time::timeout(timeout, connect)
                .await
                .unwrap_or_else(|_| Err(Failure::connect_timed_out())),
            None => connect.await,
        }
    }
}

/// Sends `request` (origin-form URI, `Host` set) to an `https://` upstream and returns the
/// response head: on the HTTP/2 connection when the upstream speaks it, else through the
/// HTTP/1.1 pool.
///
/// A request the HTTP/2 connection refused before sending any of it (the connection had just
/// died) is sent once more on a new connection; one already sent is never sent again.
pub(crate) async fn send<B>(
    host: Arc<TlsHost<B>>,
    mut request: Request<B>,
) -> Result<Response<Incoming>, Failure>
where
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let offer = match &host.offer_h2 {
        Some(offer) if !host.h1_only.load(Ordering::Relaxed) => offer,
        _ => return pool::send(Arc::clone(&host.h1), request).await,
    };
    let origin_form = request.uri().clone();
    // HTTP/2 carries the scheme and authority as pseudo-headers: an absolute URI.
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(Scheme::HTTPS);
    parts.authority = Some(host.authority.clone());
    parts.path_and_query = Some(
        origin_form
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
    );
    // Scheme, authority and path all present: `from_parts` accepts them.
    if let Ok(absolute) = Uri::from_parts(parts) {
        *request.uri_mut() = absolute;
    }
    *request.version_mut() = Version::HTTP_2;
    let mut retried = false;
    loop {
        let mut sender = match host.current() {
            Some(sender) => sender,
            None => match host.connect(offer).await? {
                Connected::H2(sender) => sender,
                Connected::H1 => {
                    *request.uri_mut() = origin_form;
                    *request.version_mut() = Version::HTTP_11;
                    return pool::send(Arc::clone(&host.h1), request).await;
                }
            },
        };
        let sent = sender.try_send_request(request);
        let sent = match host.settings.head_timeout {
            Some(timeout) => match tokio::time::timeout(timeout, sent).await {
                Ok(sent) => sent,
                // Dropping the request's future resets its stream; the connection stays.
                Err(_) => return Err(Failure::Timeout),
            },
            None => sent.await,
        };
        match sent {
            Ok(response) => return Ok(response),
            Err(mut error) => match error.take_message() {
                Some(unsent) if !retried => {
                    retried = true;
                    request = unsent;
                    // The connection refused it: make a new one (it may not know it is
                    // closed yet).
                    host.forget();
                }
                _ => return Err(Failure::Send(error.into_error())),
            },
        }
    }
}
