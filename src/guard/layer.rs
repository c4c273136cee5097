use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::header::{HOST, HeaderName, ORIGIN};
use http::{HeaderValue, Request};
use tower_layer::Layer;

use super::Guard;
use super::forwarded::TrustedProxies;
use super::host::{Authority, HostName, HostPattern, InvalidPattern, PortPattern};
use super::origin::{OriginPattern, OriginValue, same_origin};
use crate::context::{PeerAddrSource, PeerAddrs};
use crate::context::{PublicUrl, RequestOrigin};
use crate::error::{Reason, RejectedBy, Rejection};

/// Checks `Host` and `Origin` before anything else runs; see the [module docs](super).
///
/// Cheap to clone (the configuration is shared).
#[derive(Debug, Clone)]
pub struct GuardLayer {
    config: Arc<Config>,
}

#[derive(Debug, Clone)]
struct Config {
    hosts: Vec<HostPattern>,
    any_host: bool,
    origins: Vec<OriginPattern>,
    any_origin: bool,
    require_origin: bool,
    proxies: TrustedProxies,
    public_url: Option<PublicUrl>,
    peer: PeerAddrs,
    /// A header every request must carry with exactly this value (a gateway's secret).
    required_header: Option<(HeaderName, HeaderValue)>,
}

impl GuardLayer {
    /// A guard that accepts no `Host` until you allow some with [`GuardLayer::allow_hosts`]
    /// (or [`GuardLayer::allow_any_host`]), accepts an `Origin` only when it is this server's
    /// own public origin (or one you allow with [`GuardLayer::allow_origins`]), lets requests
    /// without `Origin` through, and trusts no proxy.
    ///
    /// For a server on a public name:
    /// `GuardLayer::new().allow_hosts(["mcp.example.com"])`.
    pub fn new() -> Self {
        GuardLayer {
            config: Arc::new(Config {
                hosts: Vec::new(),
                any_host: false,
                origins: Vec::new(),
                any_origin: false,
                require_origin: false,
                proxies: TrustedProxies::none(),
                public_url: None,
                peer: PeerAddrs::default(),
                required_header: None,
            }),
        }
    }

    /// The default, for a server on this machine (R47, R48): `Host` must be `localhost`,
    /// `127.0.0.1` or `[::1]` (any port), and a browser `Origin` must be `http(s)://` on one
    /// of those hosts (any port) or this server's own origin. Requests without `Origin`
    /// (non-browser clients) pass. This is what DNS rebinding protection needs: a page on
    /// `evil.example.com` rebound to 127.0.0.1 still sends `Host: evil.example.com`.
    pub fn loopback() -> Self {
        let mut layer = GuardLayer::new();
        let config = Arc::make_mut(&mut layer.config);
        config.hosts.extend(HostPattern::loopback());
        config.origins.extend(OriginPattern::loopback());
        layer
    }

    /// Adds hosts to the `Host` allowlist; see [`HostPattern`] for the syntax
    /// (`mcp.example.com`, `mcp.example.com:8443`, `*.example.com`, `[::1]`).
    ///
    /// # Panics
    /// When an entry does not parse; see [`GuardLayer::try_allow_hosts`].
    pub fn allow_hosts<I>(self, hosts: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.try_allow_hosts(hosts)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Like [`GuardLayer::allow_hosts`], with an error for an invalid entry.
    pub fn try_allow_hosts<I>(mut self, hosts: I) -> Result<Self, InvalidPattern>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        for host in hosts {
            let pattern = host.as_ref().parse()?;
            self.config_mut().hosts.push(pattern);
        }
        Ok(self)
    }

    /// Accepts any `Host` (it must still be a valid `host[:port]`). Only for servers behind a
    /// proxy that checks `Host` itself: on a server a browser can reach directly, this
    /// disables DNS rebinding protection.
    pub fn allow_any_host(mut self) -> Self {
        self.config_mut().any_host = true;
        self
    }

    /// Adds origins to the `Origin` allowlist; see [`OriginPattern`] for the syntax
    /// (`https://app.example.com`, `http://localhost:*`, `https://*.example.com`, `null`).
    /// The server's own public origin is always allowed.
    ///
    /// # Panics
    /// When an entry does not parse; see [`GuardLayer::try_allow_origins`].
    pub fn allow_origins<I>(self, origins: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.try_allow_origins(origins)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Like [`GuardLayer::allow_origins`], with an error for an invalid entry.
    pub fn try_allow_origins<I>(mut self, origins: I) -> Result<Self, InvalidPattern>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        for origin in origins {
            let pattern = origin.as_ref().parse()?;
            self.config_mut().origins.push(pattern);
        }
        Ok(self)
    }

    /// Accepts any `Origin`. The spec requires servers to validate `Origin` (R46): use this
    /// only when every route is protected otherwise (e.g. bearer tokens a browser never sends
    /// on its own).
    pub fn allow_any_origin(mut self) -> Self {
        self.config_mut().any_origin = true;
        self
    }

    /// Whether a request without `Origin` is refused (`403`, [`Reason::OriginRequired`]).
    /// Off by default: non-browser MCP clients send no `Origin` (SPEC §L.7).
    pub fn require_origin(mut self, require: bool) -> Self {
        self.config_mut().require_origin = require;
        self
    }

    /// The proxies whose `Forwarded` / `X-Forwarded-*` headers are believed.
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.config_mut().proxies = proxies;
        self
    }

    /// The public URL of this server, when you know it: it wins over any header for
    /// [`RequestOrigin::public_url`], its origin is allowed as `Origin` and its host as `Host`.
    pub fn public_url(mut self, url: PublicUrl) -> Self {
        let config = self.config_mut();
        if let Some(host) = HostName::parse(url.host()) {
            config.hosts.push(HostPattern {
                host,
                port: PortPattern::Any,
            });
        }
        config.public_url = Some(url);
        self
    }

    /// Refuses (`403`, JSON-RPC error body) every request that does not carry `name` exactly
    /// once with exactly `secret`, compared in constant time. For a server only its gateway
    /// may call: the gateway adds the header to what it forwards (and replaces any copy a
    /// client sent), so a process on the same host, or a page rebinding its name to a
    /// loopback replica, is refused even when the port is reachable. Use a long random
    /// secret, new each run; the value is kept as a sensitive header, out of `Debug` output.
    ///
    /// ```
    /// use mcp_edge::guard::GuardLayer;
    ///
    /// let secret = "3f1c…a long random value";
    /// let replica_guard = GuardLayer::loopback().require_header("x-mcp-edge-replica-secret", secret);
    /// # let _ = replica_guard;
    /// ```
    ///
    /// # Panics
    /// When `name` is not a valid header name or `secret` is not a valid header value.
    pub fn require_header(mut self, name: &str, secret: &str) -> Self {
        let name = HeaderName::try_from(name).expect("require_header: invalid header name");
        let mut value =
            HeaderValue::try_from(secret).expect("require_header: invalid header value");
        value.set_sensitive(true);
        self.config_mut().required_header = Some((name, value));
        self
    }

    /// Where to find the connecting peer's address in the request extensions, when it is not
    /// a [`PeerAddr`](super::PeerAddr); see [`PeerAddrSource`]. Shorthand for
    /// [`peer_addrs`](GuardLayer::peer_addrs)`(`[`PeerAddrs::source`]`(source))`. With axum's
    /// `into_make_service_with_connect_info::<SocketAddr>()`:
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use axum::extract::ConnectInfo;
    /// use mcp_edge::guard::{GuardLayer, TrustedProxies};
    ///
    /// let guard = GuardLayer::loopback()
    ///     .trusted_proxies(TrustedProxies::loopback())
    ///     .peer_addr_with(|ext: &http::Extensions| {
    ///         ext.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| *addr)
    ///     });
    /// let app: axum::Router = axum::Router::new().layer(guard);
    /// // axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
    /// # let _ = app;
    /// ```
    pub fn peer_addr_with<P: PeerAddrSource>(self, source: P) -> Self {
        self.peer_addrs(PeerAddrs::source(source))
    }

    /// Where to find the connecting peer's address: the same [`PeerAddrs`] value the audit
    /// layer and the gateway upstream take (default [`PeerAddrs::extension`]).
    pub fn peer_addrs(mut self, peers: PeerAddrs) -> Self {
        self.config_mut().peer = peers;
        self
    }

    /// Checks a request as the guard does, without calling anything: what the guard would put
    /// in the extensions, or the rejection it would answer with.
    #[allow(clippy::result_large_err)] // the cold path; `Guard` itself keeps refusals small
    pub fn check<B>(&self, request: &Request<B>) -> Result<RequestOrigin, Rejection> {
        self.config.check(request).map_err(Refusal::into_rejection)
    }

    pub(super) fn check_small<B>(&self, request: &Request<B>) -> Result<RequestOrigin, Refusal> {
        self.config.check(request)
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }
}

impl Default for GuardLayer {
    /// [`GuardLayer::loopback`].
    fn default() -> Self {
        GuardLayer::loopback()
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard {
            inner,
            layer: self.clone(),
        }
    }
}

static WARNED_NO_PEER: AtomicBool = AtomicBool::new(false);

impl Config {
    fn check<B>(&self, request: &Request<B>) -> Result<RequestOrigin, Refusal> {
        if let Some((name, secret)) = &self.required_header {
            check_secret(request, name, secret)?;
        }
        let peer_addr = self.peer.peer_addr(request.extensions());
        let peer_ip = peer_addr.map(|p| p.ip());
        if peer_ip.is_none()
            && !self.proxies.is_empty()
            && !WARNED_NO_PEER.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "mcp-edge guard: trusted proxies are configured but requests carry no peer \
                 address; proxy headers are ignored (insert PeerAddr or use peer_addr_with)"
            );
        }
        let forwarding = match self.proxies.forwarding(request.headers(), peer_ip) {
            None => None,
            Some(Ok(forwarding)) => Some(forwarding),
            Some(Err(_)) => return Err(host_rejection("Forbidden: invalid forwarded host")),
        };

        // Host: the forwarded one when a trusted proxy gave it, else the request's own.
        let forwarded_host = forwarding.as_ref().and_then(|f| f.host.clone());
        let authority = match forwarded_host {
            Some(host) => {
                self.check_host(host.to_str().unwrap_or_default())?;
                host
            }
            None => self.own_authority(request)?,
        };

        let https = forwarding
            .as_ref()
            .and_then(|f| f.https)
            .unwrap_or_else(|| request.uri().scheme_str() == Some("https"));
        let public_url = match &self.public_url {
            Some(url) => url.clone(),
            None => PublicUrl::from_authority(https, authority),
        };

        self.check_origin(request, &public_url)?;

        let client_ip: Option<IpAddr> = match &forwarding {
            Some(f) => f.client_ip,
            None => peer_ip,
        };
        Ok(RequestOrigin {
            public_url,
            client_ip,
            peer_addr,
            forwarded: forwarding.is_some(),
        })
    }

    /// Checks the URI authority and the `Host` header (each one present must be valid and
    /// allowed; at least one must be present) and returns the one to build the URL from.
    fn own_authority<B>(&self, request: &Request<B>) -> Result<HeaderValue, Refusal> {
        let mut hosts = request.headers().get_all(HOST).iter();
        let host = hosts.next();
        if hosts.next().is_some() {
            return Err(host_rejection("Forbidden: more than one Host header"));
        }
        if let Some(authority) = request.uri().authority() {
            self.check_host(authority.as_str())?;
        }
        match host {
            Some(host) => {
                self.check_host(host.to_str().unwrap_or_default())?;
                Ok(host.clone())
            }
            None => match request.uri().authority() {
                Some(authority) => HeaderValue::from_str(authority.as_str())
                    .map_err(|_| host_rejection("Forbidden: invalid Host")),
                None => Err(host_rejection("Forbidden: missing Host header")),
            },
        }
    }

    fn check_host(&self, host: &str) -> Result<(), Refusal> {
        let Some(authority) = Authority::parse(host) else {
            tracing::debug!(host, "guard refused a malformed Host");
            return Err(host_rejection("Forbidden: invalid Host header"));
        };
        if self.any_host || self.hosts.iter().any(|p| p.matches_authority(&authority)) {
            return Ok(());
        }
        tracing::debug!(
            host,
            "guard refused a Host not in the allowlist (DNS rebinding?)"
        );
        Err(Refusal::of(Reason::HostNotAllowed))
    }

    fn check_origin<B>(&self, request: &Request<B>, public_url: &PublicUrl) -> Result<(), Refusal> {
        let mut origins = request.headers().get_all(ORIGIN).iter();
        let Some(origin) = origins.next() else {
            if self.require_origin {
                return Err(Refusal::of(Reason::OriginRequired));
            }
            return Ok(());
        };
        if self.any_origin {
            return Ok(());
        }
        let parsed = match (origins.next(), origin.to_str()) {
            (None, Ok(value)) => OriginValue::parse(value),
            _ => None,
        };
        let allowed = parsed.is_some_and(|origin| {
            self.origins.iter().any(|p| p.matches_value(&origin))
                || same_origin(&origin, public_url)
        });
        if allowed {
            return Ok(());
        }
        tracing::debug!(origin = ?origin, "guard refused an Origin not in the allowlist");
        Err(Refusal::of(Reason::OriginNotAllowed))
    }
}

/// The [`GuardLayer::require_header`] check: exactly one copy of the header, equal to the
/// secret in constant time (for a given length).
fn check_secret<B>(
    request: &Request<B>,
    name: &HeaderName,
    secret: &HeaderValue,
) -> Result<(), Refusal> {
    let mut values = request.headers().get_all(name).iter();
    let matches = match (values.next(), values.next()) {
        (Some(value), None) => constant_time_eq(value.as_bytes(), secret.as_bytes()),
        _ => false,
    };
    if matches {
        return Ok(());
    }
    tracing::debug!(header = %name, "guard refused a request without the required secret");
    Err(host_rejection(
        "Forbidden: this server accepts requests only from its gateway",
    ))
}

/// Constant time in the contents (the length of a secret is not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

fn host_rejection(message: &'static str) -> Refusal {
    Refusal {
        reason: Reason::HostNotAllowed,
        message,
    }
}

/// A refusal before it becomes a [`Rejection`]: two words, so the checks stay cheap.
#[derive(Debug, Clone, Copy)]
pub(super) struct Refusal {
    reason: Reason,
    message: &'static str,
}

impl Refusal {
    /// A refusal with the reason's own message.
    const fn of(reason: Reason) -> Self {
        Refusal {
            reason,
            message: reason.message(),
        }
    }

    pub(super) fn into_rejection(self) -> Rejection {
        Rejection::of(RejectedBy::Guard, self.reason).with_message(self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Reason;

    fn request(host: &str, secrets: &[&str]) -> Request<()> {
        let mut builder = Request::post("/mcp").header("host", host);
        for secret in secrets {
            builder = builder.header("x-replica-secret", *secret);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn required_header_must_be_present_once_and_exact() {
        let guard = GuardLayer::loopback().require_header("x-replica-secret", "s3cret-value");
        assert!(
            guard
                .check(&request("127.0.0.1:9", &["s3cret-value"]))
                .is_ok()
        );
        for secrets in [
            &[][..],
            &["s3cret-valuE"],
            &["s3cret-valu"],
            &["s3cret-value", "s3cret-value"],
        ] {
            let refused = guard
                .check(&request("127.0.0.1:9", secrets))
                .expect_err("refused");
            assert_eq!(refused.reason(), Reason::HostNotAllowed, "{secrets:?}");
            assert_eq!(refused.status(), 403);
        }
        // The secret does not replace the Host check.
        assert!(
            guard
                .check(&request("evil.example.com", &["s3cret-value"]))
                .is_err()
        );
        // Nor does it leak through Debug.
        assert!(!format!("{guard:?}").contains("s3cret-value"));
    }
}
