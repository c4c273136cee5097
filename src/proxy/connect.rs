//! Opening a connection to an upstream address: TCP with `TCP_NODELAY`, then (feature
//! `proxy-tls`, `https://`) the TLS handshake, both within the connect timeout.
//!
//! [`Stream`] is an enum rather than a boxed trait object, so a plain connection's reads and
//! writes cost one branch and no indirection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::Authority;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::pool::Failure;

/// How connections to one address are made.
#[derive(Clone)]
pub(crate) enum Transport {
    /// Plain TCP (`http://`).
    Plain,
    /// TLS over TCP (`https://`), with this configuration (its ALPN offer included) and the
    /// name the certificate must carry.
    #[cfg(feature = "proxy-tls")]
    Tls {
        config: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    },
}

impl Transport {
    /// Connects to `authority` (port 80 or 443 when it names none) and, for TLS, completes
    /// the handshake; both within `timeout`.
    pub(crate) async fn open(
        &self,
        authority: &Authority,
        timeout: Option<Duration>,
    ) -> Result<Stream, Failure> {
        let open = async {
            let host = authority.host();
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            let port = authority.port_u16().unwrap_or(self.default_port());
            let tcp = TcpStream::connect((host, port))
                .await
                .map_err(Failure::Connect)?;
            tcp.set_nodelay(true).map_err(Failure::Connect)?;
            match self {
                Transport::Plain => Ok(Stream::Plain(tcp)),
                #[cfg(feature = "proxy-tls")]
                Transport::Tls { config, name } => {
                    tokio_rustls::TlsConnector::from(std::sync::Arc::clone(config))
                        .connect(name.clone(), tcp)
                        .await
                        .map(|tls| Stream::Tls(Box::new(tls)))
                        .map_err(Failure::Tls)
                }
            }
        };
        match timeout {
            Some(timeout) => tokio::time::timeout(timeout, open)
                .await
                .unwrap_or_else(|_| Err(Failure::connect_timed_out())),
            None => open.await,
        }
    }

    fn default_port(&self) -> u16 {
        match self {
            Transport::Plain => 80,
            #[cfg(feature = "proxy-tls")]
            Transport::Tls { .. } => 443,
        }
    }
}

/// An open connection: plain TCP or TLS over it.
pub(crate) enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS; boxed because rustls' connection state is large (once per connection).
    #[cfg(feature = "proxy-tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// Whether the upstream picked HTTP/2 in the TLS handshake (ALPN `h2`).
    #[cfg(feature = "proxy-tls")]
    pub(crate) fn is_h2(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(tls) => tls.get_ref().1.alpn_protocol() == Some(b"h2"),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            #[cfg(feature = "proxy-tls")]
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            #[cfg(feature = "proxy-tls")]
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            #[cfg(feature = "proxy-tls")]
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(tcp) => tcp.is_write_vectored(),
            #[cfg(feature = "proxy-tls")]
            Stream::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            #[cfg(feature = "proxy-tls")]
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            #[cfg(feature = "proxy-tls")]
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}
