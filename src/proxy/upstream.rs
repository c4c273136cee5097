use std::fmt;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Extensions, Request, Response, Uri, Version};
use http_body::Body;
use hyper::body::Incoming;
use tower_service::Service;

#[cfg(feature = "proxy-tls")]
use super::connect::Transport;
use super::future::ResponseFuture;
#[cfg(feature = "proxy-tls")]
use super::h2::{self, TlsHost};
use super::pool::{self, Host, Settings};
#[cfg(feature = "proxy-tls")]
use super::tls::{TlsClient, UpstreamTls};
use crate::context::PeerAddrs;
use crate::error::EdgeBody;
use crate::protocol::McpRequest;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Forwards requests to one upstream URL; see the [module docs](super).
///
/// `B` is the request body type (whatever the layers in front hand down, e.g.
/// `EdgeBody<hyper::body::Incoming>`). Cloning is cheap and shares the connection pool;
/// [`HttpUpstream::to`] makes an upstream for another URL on the same pool.
///
/// The upstream URL's path, when not `/`, is the endpoint every request goes to (an MCP
/// server has one endpoint); with a bare origin the request's own path is kept. The query
/// string is always the request's.
pub struct HttpUpstream<B> {
    inner: Arc<Inner<B>>,
}

struct Inner<B> {
    target: Target,
    /// The connections to the target's address.
    host: Route<B>,
    /// Every address's connections, for [`HttpUpstream::to`].
    pool: Arc<Pool<B>>,
    config: Arc<Config>,
}

/// The connections to an upstream's address, by kind.
enum Route<B> {
    /// `http://`: the HTTP/1.1 pool.
    Plain(Arc<Host<B>>),
    /// `https://`: HTTP/2 or HTTP/1.1 over TLS.
    #[cfg(feature = "proxy-tls")]
    Tls(Arc<TlsHost<B>>),
}

/// The connection pools of one builder's upstreams, one per address.
struct Pool<B> {
    settings: Settings,
    hosts: Mutex<Vec<Weak<Host<B>>>>,
    #[cfg(feature = "proxy-tls")]
    tls_hosts: Mutex<Vec<Weak<TlsHost<B>>>>,
    /// The builder's TLS settings; `None`: the system's roots, read when first needed.
    #[cfg(feature = "proxy-tls")]
    tls: Option<Arc<TlsClient>>,
}

struct Target {
    url: Box<str>,
    /// `https://`.
    tls: bool,
    authority: Authority,
    /// `Host` for the upstream: its authority (the port left out when it is the scheme's
    /// default).
    host_header: HeaderValue,
    /// The endpoint path, when the URL names one.
    path: Option<PathAndQuery>,
}

struct Config {
    trust_forwarded: bool,
    peer_addr: PeerAddrs,
    headers: HeaderMap,
}

/// Settings for [`HttpUpstream`]s.
#[derive(Clone)]
pub struct HttpUpstreamBuilder {
    connect_timeout: Option<Duration>,
    response_head_timeout: Option<Duration>,
    pool_idle_timeout: Option<Duration>,
    pool_max_idle: usize,
    trust_forwarded: bool,
    peer_addr: PeerAddrs,
    headers: HeaderMap,
    #[cfg(feature = "proxy-tls")]
    tls: Option<UpstreamTls>,
}

impl HttpUpstreamBuilder {
    /// Defaults: connect timeout 2 s, response-head timeout 60 s, idle pooled connections
    /// closed after 90 s and at most 64 of them kept per upstream address, incoming
    /// `Forwarded` / `X-Forwarded-*` not trusted.
    pub fn new() -> Self {
        HttpUpstreamBuilder {
            connect_timeout: Some(Duration::from_secs(2)),
            response_head_timeout: Some(Duration::from_secs(60)),
            pool_idle_timeout: Some(Duration::from_secs(90)),
            pool_max_idle: 64,
            trust_forwarded: false,
            peer_addr: PeerAddrs::default(),
            headers: HeaderMap::new(),
            #[cfg(feature = "proxy-tls")]
            tls: None,
        }
    }

    /// How long establishing a connection may take (TCP, and for `https://` the TLS
    /// handshake too); past it the answer is `502` (and the affinity router ejects the
    /// replica).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long the upstream may take to send the response head; past it the answer is
    /// `504`. The body is never timed: SSE streams stay open as long as both ends want.
    ///
    /// A server that answers a long tool call with one JSON body (rather than an SSE stream)
    /// sends its head only when the tool is done: allow for that here.
    pub fn response_head_timeout(mut self, timeout: Duration) -> Self {
        self.response_head_timeout = Some(timeout);
        self
    }

    /// No response-head timeout.
    pub fn no_response_head_timeout(mut self) -> Self {
        self.response_head_timeout = None;
        self
    }

    /// How long an idle pooled connection is kept.
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = Some(timeout);
        self
    }

    /// How many idle connections to one upstream address are kept for reuse (default 64);
    /// a connection that finishes a request while that many wait is closed. Connections in
    /// use are not limited: there is one per request in flight (and per open SSE stream).
    pub fn pool_max_idle(mut self, max: usize) -> Self {
        self.pool_max_idle = max;
        self
    }

    /// Whether incoming `Forwarded` / `X-Forwarded-*` headers are kept and appended to
    /// (`true`: the gateway sits behind a proxy you trust) or replaced by what the gateway
    /// saw (`false`, the default: clients cannot smuggle a forged origin through).
    pub fn trust_forwarded(mut self, trust: bool) -> Self {
        self.trust_forwarded = trust;
        self
    }

    /// Where to find the client's address for `Forwarded: for=` and `X-Forwarded-For`, e.g.
    /// axum's `ConnectInfo<SocketAddr>`. Shorthand for
    /// [`peer_addrs`](HttpUpstreamBuilder::peer_addrs)`(`[`PeerAddrs::with`]`(source))`.
    pub fn peer_addr_with<F>(self, source: F) -> Self
    where
        F: Fn(&Extensions) -> Option<SocketAddr> + Send + Sync + 'static,
    {
        self.peer_addrs(PeerAddrs::with(source))
    }

    /// Where to find the connecting peer's address: the same [`PeerAddrs`] value the guard
    /// and the audit layer take. By default ([`PeerAddrs::extension`]) the
    /// [`PeerAddr`](crate::context::PeerAddr) request extension, as the guard reads it; when
    /// there is none, `for=` and `X-Forwarded-For` are left out.
    pub fn peer_addrs(mut self, peers: PeerAddrs) -> Self {
        self.peer_addr = peers;
        self
    }

    /// Sets `name: value` on every forwarded request, replacing whatever the client sent
    /// under that name (e.g. the per-run secret of
    /// [`GuardLayer::require_header`](crate::guard::GuardLayer::require_header) that lets
    /// only this gateway reach its replicas; a client can neither supply nor learn it).
    /// The value is marked sensitive.
    pub fn header(mut self, name: HeaderName, mut value: HeaderValue) -> Self {
        value.set_sensitive(true);
        self.headers.insert(name, value);
        self
    }

    /// TLS settings for `https://` upstreams (feature `proxy-tls`): the roots to trust (a
    /// given CA instead of or besides the system's), a client certificate, HTTP/2 offered or
    /// not. Without it they trust the system's roots and offer HTTP/2.
    #[cfg(feature = "proxy-tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "proxy-tls")))]
    pub fn tls(mut self, tls: UpstreamTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// An upstream forwarding to `url` (`http://host:port[/path]`, or `https://` with the
    /// `proxy-tls` feature), with its own pool.
    pub fn build<B>(&self, url: &str) -> Result<HttpUpstream<B>, InvalidUpstreamUrl>
    where
        B: Body + Send + 'static + Unpin,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let target = Target::parse(url)?;
        #[cfg(feature = "proxy-tls")]
        let tls = self
            .tls
            .as_ref()
            .map(|tls| tls.client().map(Arc::new))
            .transpose()
            .map_err(|e| InvalidUpstreamUrl::because(url, e.to_string()))?;
        let pool = Arc::new(Pool {
            settings: Settings {
                connect_timeout: self.connect_timeout,
                idle_timeout: self.pool_idle_timeout,
                head_timeout: self.response_head_timeout,
                max_idle: self.pool_max_idle,
            },
            hosts: Mutex::new(Vec::new()),
            #[cfg(feature = "proxy-tls")]
            tls_hosts: Mutex::new(Vec::new()),
            #[cfg(feature = "proxy-tls")]
            tls,
        });
        let config = Arc::new(Config {
            trust_forwarded: self.trust_forwarded,
            peer_addr: self.peer_addr.clone(),
            headers: self.headers.clone(),
        });
        HttpUpstream::with(target, pool, config)
    }
}

impl Default for HttpUpstreamBuilder {
    fn default() -> Self {
        HttpUpstreamBuilder::new()
    }
}

impl fmt::Debug for HttpUpstreamBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("HttpUpstreamBuilder");
        f.field("connect_timeout", &self.connect_timeout)
            .field("response_head_timeout", &self.response_head_timeout)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("pool_max_idle", &self.pool_max_idle)
            .field("trust_forwarded", &self.trust_forwarded)
            .field("peer_addr", &self.peer_addr)
            .field("headers", &self.headers.keys().collect::<Vec<_>>());
        #[cfg(feature = "proxy-tls")]
        f.field("tls", &self.tls);
        f.finish()
    }
}

impl<B> HttpUpstream<B>
where
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    /// An upstream forwarding to `url` with the default settings (for `https://`, feature
    /// `proxy-tls`: the system's roots, HTTP/2 when the upstream offers it).
    pub fn new(url: &str) -> Result<Self, InvalidUpstreamUrl> {
        HttpUpstreamBuilder::new().build(url)
    }

    /// An upstream for another URL sharing this one's connection pool and settings
    /// (connections to the same address are shared).
    pub fn to(&self, url: &str) -> Result<Self, InvalidUpstreamUrl> {
        let target = Target::parse(url)?;
        HttpUpstream::with(
            target,
            Arc::clone(&self.inner.pool),
            Arc::clone(&self.inner.config),
        )
    }

    fn with(
        target: Target,
        pool: Arc<Pool<B>>,
        config: Arc<Config>,
    ) -> Result<Self, InvalidUpstreamUrl> {
        let host = if target.tls {
            #[cfg(feature = "proxy-tls")]
            {
                Route::Tls(pool.tls_host(&target)?)
            }
            #[cfg(not(feature = "proxy-tls"))]
            return Err(InvalidUpstreamUrl::new(&target.url));
        } else {
            Route::Plain(pool.host(&target.authority))
        };
        Ok(HttpUpstream {
            inner: Arc::new(Inner {
                target,
                host,
                pool,
                config,
            }),
        })
    }
}

impl<B> HttpUpstream<B> {
    /// The upstream URL.
    pub fn url(&self) -> &str {
        &self.inner.target.url
    }

    #[cfg(test)]
    pub(crate) fn inner_host(&self) -> &Host<B> {
        match &self.inner.host {
            Route::Plain(host) => host,
            #[cfg(feature = "proxy-tls")]
            Route::Tls(_) => panic!("an https upstream"),
        }
    }
}

impl<B> Pool<B>
where
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    /// The connections to `authority`, shared with every upstream of this pool that uses it.
    fn host(&self, authority: &Authority) -> Arc<Host<B>> {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        hosts.retain(|host| host.strong_count() > 0);
        if let Some(host) = hosts
            .iter()
            .filter_map(Weak::upgrade)
            .find(|host| host.authority() == authority)
        {
            return host;
        }
        let host = Arc::new(Host::new(authority.clone(), self.settings));
        hosts.push(Arc::downgrade(&host));
        host
    }

    /// The connections to an `https://` target's address, shared like [`Pool::host`]'s.
    #[cfg(feature = "proxy-tls")]
    fn tls_host(&self, target: &Target) -> Result<Arc<TlsHost<B>>, InvalidUpstreamUrl> {
        let mut hosts = self
            .tls_hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        hosts.retain(|host| host.strong_count() > 0);
        if let Some(host) = hosts
            .iter()
            .filter_map(Weak::upgrade)
            .find(|host| host.authority() == &target.authority)
        {
            return Ok(host);
        }
        let client = match &self.tls {
            Some(client) => Arc::clone(client),
            None => TlsClient::system()
                .map_err(|e| InvalidUpstreamUrl::because(&target.url, e.to_string()))?,
        };
        let name = target.authority.host();
        let name = name
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(name);
        let name = rustls::pki_types::ServerName::try_from(name.to_owned())
            .map_err(|_| InvalidUpstreamUrl::because(&target.url, "not a valid TLS server name"))?;
        let transport = |config: &Arc<rustls::ClientConfig>| Transport::Tls {
            config: Arc::clone(config),
            name: name.clone(),
        };
        let host = Arc::new(TlsHost::new(
            target.authority.clone(),
            self.settings,
            transport(&client.h1),
            client.offer_h2.as_ref().map(transport),
        ));
        hosts.push(Arc::downgrade(&host));
        Ok(host)
    }
}

impl<B> Clone for HttpUpstream<B> {
    fn clone(&self) -> Self {
        HttpUpstream {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<B> fmt::Debug for HttpUpstream<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpUpstream")
            .field("url", &self.inner.target.url)
            .finish_non_exhaustive()
    }
}

impl<B> Service<Request<B>> for HttpUpstream<B>
where
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<EdgeBody<Incoming>>;
    type Error = std::convert::Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The pool is always ready; connections are made per request when none is idle.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let inner = &*self.inner;
        let (mut parts, body) = request.into_parts();
        let id = parts
            .extensions
            .get::<Arc<McpRequest>>()
            .and_then(|mcp| mcp.id().cloned());
        let peer = inner.config.peer_addr.peer_addr(&parts.extensions);
        let proto = if parts.uri.scheme() == Some(&Scheme::HTTPS) {
            "https"
        } else {
            "http"
        };
        // The client's Host goes to X-Forwarded-Host; the upstream gets its own.
        let host = parts.headers.remove(header::HOST).or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });

        parts.uri = inner.target.uri_for(&parts.uri);
        parts.version = Version::HTTP_11;
        remove_hop_by_hop(&mut parts.headers);
        add_forwarded(
            &mut parts.headers,
            peer,
            host.as_ref(),
            proto,
            inner.config.trust_forwarded,
        );
        for (name, value) in &inner.config.headers {
            // `insert` drops every copy the client sent.
            parts.headers.insert(name, value.clone());
        }
        parts
            .headers
            .insert(header::HOST, inner.target.host_header.clone());

        let request = Request::from_parts(parts, body);
        match &inner.host {
            Route::Plain(host) => {
                ResponseFuture::new(Box::pin(pool::send(Arc::clone(host), request)), id)
            }
            #[cfg(feature = "proxy-tls")]
            Route::Tls(host) => {
                ResponseFuture::new(Box::pin(h2::send(Arc::clone(host), request)), id)
            }
        }
    }
}

impl Target {
    fn parse(url: &str) -> Result<Target, InvalidUpstreamUrl> {
        let uri: Uri = url.parse().map_err(|_| InvalidUpstreamUrl::new(url))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or_else(|| InvalidUpstreamUrl::new(url))?;
        let tls = if scheme == Scheme::HTTP {
            false
        } else if scheme == Scheme::HTTPS {
            if cfg!(not(feature = "proxy-tls")) {
                return Err(InvalidUpstreamUrl::because(
                    url,
                    "https:// upstreams need the `proxy-tls` feature",
                ));
            }
            true
        } else {
            return Err(InvalidUpstreamUrl::new(url));
        };
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| InvalidUpstreamUrl::new(url))?;
        let default_port = if tls { 443 } else { 80 };
        let host = match authority.port_u16() {
            Some(port) if port == default_port => authority.host(),
            _ => authority.as_str(),
        };
        let host_header = HeaderValue::from_maybe_shared(Bytes::copy_from_slice(host.as_bytes()))
            .map_err(|_| InvalidUpstreamUrl::new(url))?;
        let path = uri
            .path_and_query()
            .filter(|p| p.path() != "/" && !p.path().is_empty())
            .map(|p| PathAndQuery::from_maybe_shared(Bytes::copy_from_slice(p.path().as_bytes())))
            .transpose()
            .map_err(|_| InvalidUpstreamUrl::new(url))?;
        Ok(Target {
            url: url.into(),
            tls,
            authority,
            host_header,
            path,
        })
    }

    /// The request target sent upstream, in origin form (`/path?query`): the connection
    /// already names the upstream.
    fn uri_for(&self, incoming: &Uri) -> Uri {
        let path_and_query = match (&self.path, incoming.query()) {
            (Some(path), None) => path.clone(),
            (Some(path), Some(query)) => format!("{}?{query}", path.path())
                .parse()
                .unwrap_or_else(|_| path.clone()),
            (None, _) => incoming
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        };
        Uri::from(path_and_query)
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Drops hop-by-hop headers, including those the `Connection` header names.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Usually there are none: one pass over the names (no hashing) instead of a removal
    // per hop-by-hop name.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    // One string match (a switch on the length, then one comparison) rather than nine
    // `HeaderName` comparisons per header: this runs for every header of every request.
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

fn add_forwarded(
    headers: &mut HeaderMap,
    peer: Option<SocketAddr>,
    host: Option<&HeaderValue>,
    proto: &str,
    trust: bool,
) {
    if !trust {
        headers.remove(header::FORWARDED);
        headers.remove(X_FORWARDED_FOR);
        headers.remove(X_FORWARDED_HOST);
        headers.remove(X_FORWARDED_PROTO);
    }
    let host = host.filter(|h| h.as_bytes().iter().all(u8::is_ascii_graphic));
    // Each value is written once into its own buffer and handed to `HeaderValue` without a
    // copy (`Bytes::from(String)`): no `format!` temporaries on this per-request path.
    let mut element = String::with_capacity(64);
    if let Some(peer) = peer {
        let ip = peer.ip().to_canonical();
        let v6 = ip.is_ipv6();
        element.push_str(if v6 { "for=\"[" } else { "for=\"" });
        let at = element.len();
        push_ip(&mut element, ip);
        let ip_text = at..element.len();
        element.push_str(if v6 { "]:" } else { ":" });
        push_decimal(&mut element, peer.port());
        element.push('"');
        let mut value = String::with_capacity(48);
        if let Some(existing) = headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
            value.push_str(existing);
            value.push_str(", ");
        }
        value.push_str(&element[ip_text]);
        if let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(value)) {
            headers.insert(X_FORWARDED_FOR, value);
        }
    }
    if let Some(host) = host {
        // Visible ASCII, checked above: `to_str` cannot fail.
        let text = host.to_str().unwrap_or_default();
        if !element.is_empty() {
            element.push(';');
        }
        element.push_str("host=\"");
        element.push_str(text);
        element.push('"');
        if !(trust && headers.contains_key(&X_FORWARDED_HOST)) {
            headers.insert(X_FORWARDED_HOST, host.clone());
        }
    }
    if !element.is_empty() {
        element.push(';');
    }
    element.push_str("proto=");
    element.push_str(proto);
    if !(trust && headers.contains_key(&X_FORWARDED_PROTO)) {
        headers.insert(
            X_FORWARDED_PROTO,
            HeaderValue::from_static(proto_static(proto)),
        );
    }
    if let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(element)) {
        headers.append(header::FORWARDED, value);
    }
}

/// Appends `ip` as text: an IPv4 address digit by digit (`Display` goes through the
/// formatter's padding machinery, several times the cost on this per-request path), an IPv6
/// one through `Display`.
fn push_ip(out: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_decimal(out, u16::from(octet));
            }
        }
        std::net::IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, n: u16) {
    let mut started = false;
    for divisor in [10_000, 1_000, 100, 10, 1] {
        let digit = (n / divisor % 10) as u8;
        started |= digit != 0 || divisor == 1;
        if started {
            out.push(char::from(b'0' + digit));
        }
    }
}

fn proto_static(proto: &str) -> &'static str {
    if proto == "https" { "https" } else { "http" }
}

/// The upstream URL is not an absolute `http://` (or, with feature `proxy-tls`, `https://`)
/// URL, or its TLS settings cannot be used.
#[derive(Debug, Clone)]
pub struct InvalidUpstreamUrl {
    url: Box<str>,
    reason: Option<Box<str>>,
}

impl InvalidUpstreamUrl {
    fn new(url: &str) -> Self {
        InvalidUpstreamUrl {
            url: url.into(),
            reason: None,
        }
    }

    fn because(url: &str, reason: impl Into<Box<str>>) -> Self {
        InvalidUpstreamUrl {
            url: url.into(),
            reason: Some(reason.into()),
        }
    }
}

impl fmt::Display for InvalidUpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            Some(reason) => write!(f, "invalid upstream URL {:?}: {reason}", self.url),
            None if cfg!(feature = "proxy-tls") => write!(
                f,
                "invalid upstream URL {:?}: expected http(s)://host:port[/path]",
                self.url
            ),
            None => write!(
                f,
                "invalid upstream URL {:?}: expected http://host:port[/path]",
                self.url
            ),
        }
    }
}

impl std::error::Error for InvalidUpstreamUrl {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_path_replaces_the_request_path_and_keeps_the_query() {
        let target = Target::parse("http://127.0.0.1:3001/mcp").unwrap();
        assert_eq!(
            target.uri_for(&"/anything?x=1".parse().unwrap()),
            "/mcp?x=1"
        );
        assert_eq!(target.host_header, "127.0.0.1:3001");
        let origin = Target::parse("http://127.0.0.1:3001").unwrap();
        assert_eq!(origin.uri_for(&"/mcp".parse().unwrap()), "/mcp");
        let default_port = Target::parse("http://replica.internal:80/mcp").unwrap();
        assert_eq!(default_port.host_header, "replica.internal");
        #[cfg(not(feature = "proxy-tls"))]
        assert!(Target::parse("https://example.com/mcp").is_err());
        #[cfg(feature = "proxy-tls")]
        {
            let https = Target::parse("https://example.com:443/mcp").unwrap();
            assert!(https.tls);
            assert_eq!(https.host_header, "example.com");
        }
        assert!(Target::parse("/mcp").is_err());
        assert!(Target::parse("not a url").is_err());
    }

    #[test]
    fn hop_by_hop_headers_go_and_named_ones_too() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, "keep-alive, x-private".parse().unwrap());
        headers.insert("x-private", "1".parse().unwrap());
        headers.insert("keep-alive", "timeout=5".parse().unwrap());
        headers.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        headers.insert(header::TE, "trailers".parse().unwrap());
        headers.insert(header::UPGRADE, "websocket".parse().unwrap());
        headers.insert("mcp-session-id", "abc".parse().unwrap());
        headers.insert(header::ACCEPT, "text/event-stream".parse().unwrap());
        remove_hop_by_hop(&mut headers);
        let mut left: Vec<_> = headers.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "mcp-session-id"]);
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.20.3",
            "::1",
            "2001:db8::1",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut text = String::new();
            push_ip(&mut text, ip);
            assert_eq!(text, ip.to_string());
        }
        for port in [0, 7, 80, 65535] {
            let mut text = String::new();
            push_decimal(&mut text, port);
            assert_eq!(text, port.to_string());
        }
        for name in HOP_BY_HOP.iter().chain([&header::UPGRADE]) {
            assert!(is_hop_by_hop(name), "{name}");
        }
        assert!(!is_hop_by_hop(&header::CONTENT_TYPE));
    }

    #[test]
    fn forwarded_headers_replace_untrusted_and_append_trusted() {
        let peer: SocketAddr = "10.1.2.3:5555".parse().unwrap();
        let host = HeaderValue::from_static("gw.example:8080");
        let mut headers = HeaderMap::new();
        headers.insert(X_FORWARDED_FOR, "6.6.6.6".parse().unwrap());
        headers.insert(header::FORWARDED, "for=6.6.6.6".parse().unwrap());
        add_forwarded(&mut headers, Some(peer), Some(&host), "http", false);
        assert_eq!(headers[&X_FORWARDED_FOR], "10.1.2.3");
        assert_eq!(headers[&X_FORWARDED_HOST], "gw.example:8080");
        assert_eq!(headers[&X_FORWARDED_PROTO], "http");
        assert_eq!(
            headers[header::FORWARDED],
            "for=\"10.1.2.3:5555\";host=\"gw.example:8080\";proto=http"
        );

        let mut headers = HeaderMap::new();
        headers.insert(X_FORWARDED_FOR, "1.1.1.1".parse().unwrap());
        headers.insert(X_FORWARDED_PROTO, "https".parse().unwrap());
        let v6: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        add_forwarded(&mut headers, Some(v6), None, "http", true);
        assert_eq!(headers[&X_FORWARDED_FOR], "1.1.1.1, 2001:db8::1");
        assert_eq!(headers[&X_FORWARDED_PROTO], "https");
        assert_eq!(
            headers[header::FORWARDED],
            "for=\"[2001:db8::1]:443\";proto=http"
        );
    }
}
