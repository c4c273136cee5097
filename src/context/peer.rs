//! The connecting peer's address: [`PeerAddr`], the [`PeerAddrSource`] extension point, and
//! [`PeerAddrs`], the one setting the guard, audit and the gateway upstream all take.
//!
//! A tower service never sees the socket; the server that accepted the connection has to put
//! the peer address into the request extensions. Each server does it with its own type
//! (axum's `ConnectInfo<SocketAddr>` from `into_make_service_with_connect_info`, tonic's
//! `TcpConnectInfo`, your own in a hyper `service_fn`), and tower-http itself offers none. So
//! the layers read our own [`PeerAddr`] by default, and take a [`PeerAddrSource`] (any
//! `Fn(&Extensions) -> Option<SocketAddr>`) for any other type, without this crate depending
//! on axum. Build it once as [`PeerAddrs`] and give the same value to
//! `GuardLayer::peer_addrs`, `AuditLayer::peer_addrs` and `HttpUpstreamBuilder::peer_addrs`,
//! or use each layer's shorthand:
//!
//! ```
//! # #[derive(Clone)] struct ConnectInfo<T>(T); // stands in for axum::extract::ConnectInfo
//! use std::net::SocketAddr;
//! use mcp_edge::guard::{GuardLayer, TrustedProxies};
//!
//! let guard = GuardLayer::loopback()
//!     .trusted_proxies(TrustedProxies::new(["127.0.0.1/32"]))
//!     .peer_addr_with(|ext: &http::Extensions| {
//!         ext.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| *addr)
//!     });
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use http::Extensions;

/// The address of the connecting peer, for servers to put in the request extensions.
///
/// With hyper, insert it per connection (`request.extensions_mut().insert(PeerAddr(addr))`
/// inside the `service_fn`, or `tower_http::add_extension::AddExtensionLayer`). With axum,
/// either map its `ConnectInfo` with [`GuardLayer::peer_addr_with`](crate::guard::GuardLayer::peer_addr_with)
/// or insert a `PeerAddr` in a middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

/// Finds the connecting peer's address in the request extensions.
///
/// Implemented for every `Fn(&Extensions) -> Option<SocketAddr> + Send + Sync + 'static`.
pub trait PeerAddrSource: Send + Sync + 'static {
    /// The peer address of the request whose extensions these are, if known.
    fn peer_addr(&self, extensions: &Extensions) -> Option<SocketAddr>;
}

impl<F> PeerAddrSource for F
where
    F: Fn(&Extensions) -> Option<SocketAddr> + Send + Sync + 'static,
{
    fn peer_addr(&self, extensions: &Extensions) -> Option<SocketAddr> {
        self(extensions)
    }
}

/// Where the guard, the audit layer and the gateway upstream find the connecting peer's
/// address: one setting, built once and handed to each of them.
///
/// By default ([`PeerAddrs::extension`]) the [`PeerAddr`] request extension, else a plain
/// `SocketAddr` extension; [`PeerAddrs::with`] takes any other source (axum's
/// `ConnectInfo<SocketAddr>`, tonic's `TcpConnectInfo`, ...). IPv4-mapped IPv6 addresses
/// (`::ffff:a.b.c.d`, what a dual-stack listener reports for IPv4 peers) come out as IPv4.
/// Cheap to clone.
///
/// ```
/// # #[derive(Clone)] struct ConnectInfo<T>(T); // stands in for axum::extract::ConnectInfo
/// use std::net::SocketAddr;
/// use mcp_edge::audit::{AuditLayer, TracingSink};
/// use mcp_edge::context::PeerAddrs;
/// use mcp_edge::guard::{GuardLayer, TrustedProxies};
///
/// let peers = PeerAddrs::with(|ext: &http::Extensions| {
///     ext.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| *addr)
/// });
/// let guard = GuardLayer::loopback()
///     .trusted_proxies(TrustedProxies::loopback())
///     .peer_addrs(peers.clone());
/// let audit = AuditLayer::new(TracingSink::new()).peer_addrs(peers);
/// ```
#[derive(Clone, Default)]
pub struct PeerAddrs {
    source: Source,
}

#[derive(Clone, Default)]
enum Source {
    /// [`PeerAddr`], else a plain `SocketAddr`: no indirection.
    #[default]
    Extension,
    Custom(Arc<dyn PeerAddrSource>),
}

impl PeerAddrs {
    /// The [`PeerAddr`] request extension, else a plain `SocketAddr` one (the default).
    pub fn extension() -> Self {
        PeerAddrs::default()
    }

    /// A function of the request extensions, e.g. reading axum's `ConnectInfo<SocketAddr>`.
    pub fn with<F>(source: F) -> Self
    where
        F: Fn(&Extensions) -> Option<SocketAddr> + Send + Sync + 'static,
    {
        PeerAddrs::source(source)
    }

    /// Any [`PeerAddrSource`].
    pub fn source<P: PeerAddrSource>(source: P) -> Self {
        PeerAddrs {
            source: Source::Custom(Arc::new(source)),
        }
    }

    /// The peer address of the request whose extensions these are, if known; IPv4-mapped
    /// addresses as IPv4.
    pub fn peer_addr(&self, extensions: &Extensions) -> Option<SocketAddr> {
        let addr = match &self.source {
            Source::Extension => extensions
                .get::<PeerAddr>()
                .map(|p| p.0)
                .or_else(|| extensions.get::<SocketAddr>().copied()),
            Source::Custom(source) => source.peer_addr(extensions),
        }?;
        // A dual-stack listener reports IPv4 peers as `::ffff:a.b.c.d`.
        Some(SocketAddr::new(addr.ip().to_canonical(), addr.port()))
    }
}

impl fmt::Debug for PeerAddrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source {
            Source::Extension => f.write_str("PeerAddrs(PeerAddr)"),
            Source::Custom(_) => f.write_str("PeerAddrs(Custom(..))"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv4_peers_are_canonical() {
        let mut ext = Extensions::new();
        ext.insert(PeerAddr("[::ffff:10.1.2.3]:443".parse().unwrap()));
        let addr = PeerAddrs::extension().peer_addr(&ext).unwrap();
        assert_eq!(addr, "10.1.2.3:443".parse().unwrap());
    }

    #[test]
    fn the_default_reads_peer_addr_then_a_plain_socket_addr() {
        let mut ext = Extensions::new();
        assert_eq!(PeerAddrs::extension().peer_addr(&ext), None);
        ext.insert("[::ffff:10.0.0.9]:80".parse::<SocketAddr>().unwrap());
        let plain = PeerAddrs::extension().peer_addr(&ext);
        assert_eq!(plain, Some("10.0.0.9:80".parse().unwrap()));
        ext.insert(PeerAddr("10.0.0.1:1".parse().unwrap()));
        let ours = PeerAddrs::extension().peer_addr(&ext);
        assert_eq!(ours, Some("10.0.0.1:1".parse().unwrap()));
    }

    #[test]
    fn closures_are_sources() {
        #[derive(Clone)]
        struct Other(SocketAddr);
        let source = PeerAddrs::with(|ext: &Extensions| ext.get::<Other>().map(|o| o.0));
        let mut ext = Extensions::new();
        assert_eq!(source.peer_addr(&ext), None);
        ext.insert(Other("127.0.0.1:1".parse().unwrap()));
        assert_eq!(source.peer_addr(&ext), Some("127.0.0.1:1".parse().unwrap()));
    }
}
