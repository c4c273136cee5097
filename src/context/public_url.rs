//! [`PublicUrl`] and [`RequestOrigin`]: where this server is, as its clients see it.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, Uri, header::HOST};

use crate::protocol::InvalidPattern;
use crate::protocol::authority::{Authority, default_port};

/// The public base URL of this server: scheme and authority (and, when configured, a path
/// prefix), as clients outside any proxy see it.
///
/// Built by the guard for every request it lets through (see [`RequestOrigin`]), from, in
/// order: the URL configured with [`GuardLayer::public_url`](crate::guard::GuardLayer::public_url);
/// the `Forwarded` / `X-Forwarded-Host` / `X-Forwarded-Proto` headers of a trusted proxy;
/// the request's own authority (`Host`, or `:authority` in HTTP/2) and scheme. Default ports
/// are left out, so behind a TLS-terminating proxy the URL reads `https://mcp.example.com`,
/// never `http://mcp.example.com:443`.
///
/// ```
/// use mcp_edge::guard::PublicUrl;
///
/// let url: PublicUrl = "https://mcp.example.com:443/tenant".parse().unwrap();
/// assert_eq!(url.to_string(), "https://mcp.example.com/tenant");
/// assert_eq!(url.join("/mcp"), "https://mcp.example.com/tenant/mcp");
/// assert_eq!(url.origin(), "https://mcp.example.com");
/// assert_eq!(url.host(), "mcp.example.com");
/// assert_eq!(url.port(), None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl {
    https: bool,
    /// A validated `host[:port]`; kept as a header value so that a `Host` header is shared,
    /// not copied.
    authority: HeaderValue,
    /// Path prefix without a trailing slash, from configuration only.
    path: Option<Arc<str>>,
}

impl PublicUrl {
    /// `https` or `http`, validated `authority`.
    pub(crate) fn from_authority(https: bool, authority: HeaderValue) -> Self {
        PublicUrl {
            https,
            authority,
            path: None,
        }
    }

    /// The URL from the request's own authority and scheme, ignoring any proxy headers:
    /// the URI's authority (HTTP/2 `:authority`, or an absolute-form HTTP/1 target) or else
    /// the `Host` header; `https` when the URI says so, else `http`. `None` when there is no
    /// valid authority.
    pub fn from_host(uri: &Uri, headers: &HeaderMap) -> Option<Self> {
        let https = uri.scheme_str() == Some("https");
        let authority = match uri.authority() {
            Some(authority) => HeaderValue::from_str(authority.as_str()).ok()?,
            None => {
                let mut hosts = headers.get_all(HOST).iter();
                let host = hosts.next()?;
                if hosts.next().is_some() {
                    return None;
                }
                host.clone()
            }
        };
        Authority::parse(authority.to_str().ok()?)?;
        Some(PublicUrl::from_authority(https, authority))
    }

    /// `"https"` or `"http"`.
    pub fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    /// Whether the scheme is `https`.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// `host[:port]` as received or configured (a default port may still be written here;
    /// [`Display`](fmt::Display) leaves it out).
    pub fn authority(&self) -> &str {
        // Only validated ASCII is ever stored.
        self.authority.to_str().unwrap_or_default()
    }

    /// The host: a name, an IPv4 address, or a bracketed IPv6 address.
    pub fn host(&self) -> &str {
        Authority::parse(self.authority()).map_or("", |a| a.host)
    }

    /// The port, when it is not the scheme's default.
    pub fn port(&self) -> Option<u16> {
        Authority::parse(self.authority())
            .and_then(|a| a.port)
            .filter(|p| Some(*p) != default_port(self.scheme()))
    }

    /// The configured path prefix (`""` when none), without a trailing slash.
    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or_default()
    }

    /// The origin, `scheme://host[:port]` (RFC 6454 serialization; no path).
    pub fn origin(&self) -> String {
        let mut out = String::with_capacity(8 + self.authority.len());
        out.push_str(self.scheme());
        out.push_str("://");
        out.push_str(self.host());
        if let Some(port) = self.port() {
            out.push(':');
            out.push_str(&port.to_string());
        }
        out
    }

    /// This URL followed by `path` (e.g. the request path `/mcp`), with exactly one `/`
    /// between them. The RFC 9728 `resource` of an MCP endpoint is
    /// `public_url.join(request.uri().path())`.
    pub fn join(&self, path: &str) -> String {
        let mut out = self.origin();
        out.push_str(self.path());
        if !path.is_empty() && !path.starts_with('/') {
            out.push('/');
        }
        out.push_str(path);
        out
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme())?;
        f.write_str("://")?;
        f.write_str(self.host())?;
        if let Some(port) = self.port() {
            write!(f, ":{port}")?;
        }
        f.write_str(self.path())
    }
}

impl FromStr for PublicUrl {
    type Err = InvalidPattern;

    /// Parses `http(s)://host[:port][/path]`; no query, fragment or userinfo.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidPattern::new("public URL", value);
        let (scheme, rest) = value.trim().split_once("://").ok_or_else(invalid)?;
        let https = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return Err(invalid());
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        Authority::parse(authority).ok_or_else(invalid)?;
        let path = path.trim_end_matches('/');
        let path_ok = path
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'?' | b'#'));
        if !path_ok {
            return Err(invalid());
        }
        Ok(PublicUrl {
            https,
            authority: HeaderValue::from_str(authority).map_err(|_| invalid())?,
            path: (!path.is_empty()).then(|| Arc::from(path)),
        })
    }
}

/// Where a request came from and where it was sent to, as the guard resolved it; in the
/// request extensions of every request [`Guard`](crate::guard::Guard) lets through, and in the
/// extensions of its response.
///
/// Proxy headers count only when the connecting peer is one of the
/// [`TrustedProxies`](crate::guard::TrustedProxies); otherwise the public URL comes from the request's
/// own `Host` and the client is the peer itself.
#[derive(Clone, Debug)]
pub struct RequestOrigin {
    pub(crate) public_url: PublicUrl,
    pub(crate) client_ip: Option<IpAddr>,
    pub(crate) peer_addr: Option<SocketAddr>,
    pub(crate) forwarded: bool,
}

impl RequestOrigin {
    /// The public base URL of this server for this request.
    pub fn public_url(&self) -> &PublicUrl {
        &self.public_url
    }

    /// The client's IP address: the first untrusted address walking the proxy chain back from
    /// the peer; the peer's own address when it is not a trusted proxy; `None` when unknown (no
    /// peer address available, or a proxy reported `unknown` or an obfuscated node).
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }

    /// The address of the connecting peer (the nearest proxy, when there is one), if known.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// Whether the peer is a trusted proxy whose headers were honoured.
    pub fn is_forwarded(&self) -> bool {
        self.forwarded
    }
}

/// The public base URL of this server for `request`.
///
/// When a [`Guard`](crate::guard::Guard) ran outside, this is its [`RequestOrigin::public_url`]
/// (configured URL, else trusted proxy headers, else `Host` and scheme). Without a guard, no
/// proxy is trusted and it is [`PublicUrl::from_host`]. `None` when the request has no valid
/// authority (the guard refuses those).
///
/// ```
/// use http::Request;
/// use mcp_edge::guard::public_url;
///
/// let request = Request::get("/mcp").header("host", "localhost:8080").body(()).unwrap();
/// let url = public_url(&request).unwrap();
/// assert_eq!(url.join(request.uri().path()), "http://localhost:8080/mcp");
/// ```
pub fn public_url<B>(request: &Request<B>) -> Option<PublicUrl> {
    match request.extensions().get::<RequestOrigin>() {
        Some(origin) => Some(origin.public_url.clone()),
        None => PublicUrl::from_host(request.uri(), request.headers()),
    }
}

impl PublicUrl {
    /// [`public_url`] for a request already split into parts (what a layer holding
    /// `http::request::Parts` has).
    pub fn from_request_parts(parts: &Parts) -> Option<PublicUrl> {
        match parts.extensions.get::<RequestOrigin>() {
            Some(origin) => Some(origin.public_url.clone()),
            None => PublicUrl::from_host(&parts.uri, &parts.headers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_urls_parse_and_print_without_default_ports() {
        let url: PublicUrl = "HTTPS://Mcp.Example.com:443/".parse().unwrap();
        assert_eq!(url.to_string(), "https://Mcp.Example.com");
        assert_eq!(url.join("mcp"), "https://Mcp.Example.com/mcp");
        let url: PublicUrl = "http://[::1]:8080/a/b".parse().unwrap();
        assert_eq!(url.to_string(), "http://[::1]:8080/a/b");
        assert_eq!(url.port(), Some(8080));
        assert_eq!(url.host(), "[::1]");
        for bad in [
            "mcp.example.com",
            "ftp://x",
            "https://",
            "https://a b",
            "https://x/?q",
            "https://u@x",
        ] {
            assert!(bad.parse::<PublicUrl>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn from_host_prefers_uri_authority_and_refuses_garbage() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("internal:8080"));
        let uri: Uri = "https://public.example.com/mcp".parse().unwrap();
        let url = PublicUrl::from_host(&uri, &headers).unwrap();
        assert_eq!(url.to_string(), "https://public.example.com");
        let url = PublicUrl::from_host(&Uri::from_static("/mcp"), &headers).unwrap();
        assert_eq!(url.to_string(), "http://internal:8080");
        headers.insert(HOST, HeaderValue::from_static("bad host"));
        assert!(PublicUrl::from_host(&Uri::from_static("/mcp"), &headers).is_none());
        headers.clear();
        assert!(PublicUrl::from_host(&Uri::from_static("/mcp"), &headers).is_none());
    }

    #[test]
    fn public_url_reads_the_guard_extension_first() {
        let mut request = Request::get("/mcp")
            .header("host", "127.0.0.1:9")
            .body(())
            .unwrap();
        request.extensions_mut().insert(RequestOrigin {
            public_url: "https://mcp.example.com".parse().unwrap(),
            client_ip: None,
            peer_addr: None,
            forwarded: true,
        });
        assert_eq!(
            public_url(&request).unwrap().join("/mcp"),
            "https://mcp.example.com/mcp"
        );
        let (parts, ()) = request.into_parts();
        assert_eq!(
            PublicUrl::from_request_parts(&parts).unwrap().to_string(),
            "https://mcp.example.com"
        );
    }
}
