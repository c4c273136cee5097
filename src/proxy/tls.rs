//! TLS toward `https://` upstreams (feature `proxy-tls`): which certificates to trust, an
//! optional client certificate, and whether to offer HTTP/2.
//!
//! rustls with the ring provider, as `redis-tls` uses it, named explicitly in every
//! configuration (so a build that also enables aws-lc-rs through another crate never needs a
//! process-wide default). The system's root certificates come from `rustls-native-certs`:
//! it reads the roots the OS keeps (the `ca-certificates` bundle on Linux, the keychain on
//! macOS, the Windows store), which is what operators update and what a container image ships;
//! it is maintained by the rustls project and is already in the dependency tree through
//! `redis` and `reqwest` (`rustls-platform-verifier` builds on it and adds OS verification
//! APIs a gateway does not need; `webpki-roots` would freeze Mozilla's list into the binary
//! and is not in the tree).

use std::error::Error as StdError;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// TLS settings for `https://` upstreams: the roots to trust, an optional client certificate
/// (mutual TLS) and whether HTTP/2 is offered. Give it to
/// [`HttpUpstreamBuilder::tls`](super::HttpUpstreamBuilder::tls); without it an `https://`
/// upstream trusts the system's roots and offers HTTP/2.
///
/// ```no_run
/// use mcp_edge::proxy::{HttpUpstreamBuilder, UpstreamTls};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // An upstream with a certificate from the company CA, and ours for mutual TLS.
/// let tls = UpstreamTls::ca_file("/etc/mcp/ca.pem")?
///     .client_cert_files("/etc/mcp/gateway.pem", "/etc/mcp/gateway.key")?;
/// let upstream: mcp_edge::proxy::HttpUpstream<http_body_util::Full<bytes::Bytes>> =
///     HttpUpstreamBuilder::new().tls(tls).build("https://tools.internal:8443/mcp")?;
/// # let _ = upstream; Ok(()) }
/// ```
#[derive(Clone)]
pub struct UpstreamTls {
    roots: RootCertStore,
    client_auth: Option<ClientAuth>,
    http2: bool,
}

#[derive(Clone)]
struct ClientAuth {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl UpstreamTls {
    /// Trust the system's root certificates, as the OS keeps them (`rustls-native-certs`: the
    /// `ca-certificates` bundle on Linux, or the files `SSL_CERT_FILE` / `SSL_CERT_DIR` name;
    /// the keychain on macOS; the Windows store). Fails when none could be read.
    pub fn system_roots() -> Result<Self, TlsConfigError> {
        UpstreamTls::without_roots().add_system_roots()
    }

    /// Trust only the CA certificates in `pem` (one or more `CERTIFICATE` blocks), not the
    /// system's: for upstreams on a private PKI.
    pub fn ca_pem(pem: impl AsRef<[u8]>) -> Result<Self, TlsConfigError> {
        UpstreamTls::without_roots().add_ca_pem(pem)
    }

    /// [`ca_pem`](UpstreamTls::ca_pem) read from a file.
    pub fn ca_file(path: impl AsRef<Path>) -> Result<Self, TlsConfigError> {
        UpstreamTls::without_roots().add_ca_file(path)
    }

    fn without_roots() -> Self {
        UpstreamTls {
            roots: RootCertStore::empty(),
            client_auth: None,
            http2: true,
        }
    }

    /// Also trust the system's root certificates.
    pub fn add_system_roots(mut self) -> Result<Self, TlsConfigError> {
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = self.roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let detail = found
                .errors
                .first()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            return Err(TlsConfigError::new(format!(
                "no system root certificates could be read{detail} (give a CA with UpstreamTls::ca_file)"
            )));
        }
        Ok(self)
    }

    /// Also trust the CA certificates in `pem`.
    pub fn add_ca_pem(mut self, pem: impl AsRef<[u8]>) -> Result<Self, TlsConfigError> {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_ref()) {
            let cert = cert.map_err(|e| TlsConfigError::with("CA certificate PEM", e))?;
            self.roots
                .add(cert)
                .map_err(|e| TlsConfigError::with("CA certificate", e))?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsConfigError::new("no CERTIFICATE block in the CA PEM"));
        }
        Ok(self)
    }

    /// Also trust the CA certificates in the PEM file at `path`.
    pub fn add_ca_file(self, path: impl AsRef<Path>) -> Result<Self, TlsConfigError> {
        let pem = read(path.as_ref())?;
        self.add_ca_pem(pem)
    }

    /// Present this client certificate (mutual TLS): `chain` is the certificate and any
    /// intermediates (PEM `CERTIFICATE` blocks), `key` its private key (PEM PKCS#8, PKCS#1 or
    /// SEC1). Fails when they do not parse or the key does not fit the certificate.
    pub fn client_cert_pem(
        mut self,
        chain: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
    ) -> Result<Self, TlsConfigError> {
        let chain = CertificateDer::pem_slice_iter(chain.as_ref())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsConfigError::with("client certificate PEM", e))?;
        if chain.is_empty() {
            return Err(TlsConfigError::new(
                "no CERTIFICATE block in the client certificate PEM",
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key.as_ref())
            .map_err(|e| TlsConfigError::with("client key PEM", e))?;
        self.client_auth = Some(ClientAuth {
            chain,
            key: Arc::new(key),
        });
        // A key that does not fit is found now, not at the first connection.
        self.client_config()?;
        Ok(self)
    }

    /// [`client_cert_pem`](UpstreamTls::client_cert_pem) read from files.
    pub fn client_cert_files(
        self,
        chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, TlsConfigError> {
        let chain = read(chain.as_ref())?;
        let key = read(key.as_ref())?;
        self.client_cert_pem(chain, key)
    }

    /// Whether HTTP/2 is offered (ALPN `h2`, then `http/1.1`); on by default. When the
    /// upstream picks it, every request goes over one multiplexed connection.
    pub fn http2(mut self, offer: bool) -> Self {
        self.http2 = offer;
        self
    }

    /// One rustls configuration (no ALPN yet).
    fn client_config(&self) -> Result<ClientConfig, TlsConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsConfigError::with("TLS versions", e))?
            .with_root_certificates(self.roots.clone());
        match &self.client_auth {
            Some(auth) => builder
                .with_client_auth_cert(auth.chain.clone(), auth.key.clone_key())
                .map_err(|e| TlsConfigError::with("client certificate", e)),
            None => Ok(builder.with_no_client_auth()),
        }
    }

    /// The configurations connections are made with.
    pub(crate) fn client(&self) -> Result<TlsClient, TlsConfigError> {
        let mut h1 = self.client_config()?;
        h1.alpn_protocols = vec![b"http/1.1".to_vec()];
        let offer_h2 = self.http2.then(|| {
            let mut both = h1.clone();
            both.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Arc::new(both)
        });
        Ok(TlsClient {
            h1: Arc::new(h1),
            offer_h2,
        })
    }
}

impl fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("roots", &self.roots.len())
            .field("client_cert", &self.client_auth.is_some())
            .field("http2", &self.http2)
            .finish()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|e| TlsConfigError::with(&format!("{}", path.display()), e))
}

/// The rustls configurations of one builder's `https://` upstreams.
#[derive(Debug)]
pub(crate) struct TlsClient {
    /// ALPN `http/1.1` only: connections of the HTTP/1.1 pool.
    pub(crate) h1: Arc<ClientConfig>,
    /// ALPN `h2`, `http/1.1`; `None` when HTTP/2 is not offered.
    pub(crate) offer_h2: Option<Arc<ClientConfig>>,
}

impl TlsClient {
    /// The system's roots with HTTP/2 offered: read once per process, on the first `https://`
    /// upstream built without [`UpstreamTls`].
    pub(crate) fn system() -> Result<Arc<TlsClient>, TlsConfigError> {
        static SYSTEM: OnceLock<Result<Arc<TlsClient>, TlsConfigError>> = OnceLock::new();
        SYSTEM
            .get_or_init(|| {
                UpstreamTls::system_roots()
                    .and_then(|tls| tls.client())
                    .map(Arc::new)
            })
            .clone()
    }
}

/// A TLS setting that could not be used: a file that cannot be read, a PEM block that does
/// not parse, a key that does not fit its certificate, or no system roots.
#[derive(Debug, Clone)]
pub struct TlsConfigError {
    message: String,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

impl TlsConfigError {
    fn new(message: impl Into<String>) -> Self {
        TlsConfigError {
            message: message.into(),
            source: None,
        }
    }

    fn with(what: &str, source: impl StdError + Send + Sync + 'static) -> Self {
        TlsConfigError {
            message: format!("{what}: {source}"),
            source: Some(Arc::new(source)),
        }
    }
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "upstream TLS: {}", self.message)
    }
}

impl StdError for TlsConfigError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_without_certificates_is_refused() {
        let error = UpstreamTls::ca_pem("not a pem").unwrap_err();
        assert!(
            error.to_string().contains("no CERTIFICATE block"),
            "{error}"
        );
        let error = UpstreamTls::ca_file("/nonexistent/ca.pem").unwrap_err();
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    }
}
