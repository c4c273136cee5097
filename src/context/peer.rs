//! The connecting peer's address: [`PeerAddr`] and the [`PeerAddrSource`] extension point.
//!
//! A tower service never sees the socket; the server that accepted the connection has to put
//! the peer address into the request extensions. Each server does it with its own type
//! (axum's `ConnectInfo<SocketAddr>` from `into_make_service_with_connect_info`, tonic's
//! `TcpConnectInfo`, your own in a hyper `service_fn`), and tower-http itself offers none. So
//! the guard reads our own [`PeerAddr`] by default, and takes a [`PeerAddrSource`] (any
//! `Fn(&Extensions) -> Option<SocketAddr>`) for any other type, without this crate depending
//! on axum:
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

/// How the guard finds the peer address: our [`PeerAddr`] (no indirection), or a user source.
#[derive(Clone, Default)]
pub(crate) enum PeerSource {
    #[default]
    Extension,
    Custom(Arc<dyn PeerAddrSource>),
}

impl PeerSource {
    pub(crate) fn peer_addr(&self, extensions: &Extensions) -> Option<SocketAddr> {
        let addr = match self {
            PeerSource::Extension => extensions.get::<PeerAddr>().map(|p| p.0),
            PeerSource::Custom(source) => source.peer_addr(extensions),
        }?;
        // A dual-stack listener reports IPv4 peers as `::ffff:a.b.c.d`.
        Some(SocketAddr::new(addr.ip().to_canonical(), addr.port()))
    }
}

impl fmt::Debug for PeerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerSource::Extension => f.write_str("PeerAddr"),
            PeerSource::Custom(_) => f.write_str("Custom(..)"),
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
        let addr = PeerSource::Extension.peer_addr(&ext).unwrap();
        assert_eq!(addr, "10.1.2.3:443".parse().unwrap());
    }

    #[test]
    fn closures_are_sources() {
        #[derive(Clone)]
        struct Other(SocketAddr);
        let source =
            PeerSource::Custom(Arc::new(|ext: &Extensions| ext.get::<Other>().map(|o| o.0)));
        let mut ext = Extensions::new();
        assert_eq!(source.peer_addr(&ext), None);
        ext.insert(Other("127.0.0.1:1".parse().unwrap()));
        assert_eq!(source.peer_addr(&ext), Some("127.0.0.1:1".parse().unwrap()));
    }
}
