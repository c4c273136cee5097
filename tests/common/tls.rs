//! A TLS upstream for the `proxy-tls` tests: a CA made in the test (rcgen, no openssl binary),
//! certificates it signs for 127.0.0.1 / localhost, and any tower HTTP service served over
//! TLS on a free 127.0.0.1 port by hyper-util's auto server (HTTP/2 and HTTP/1.1, or
//! HTTP/1.1 only), recording the HTTP version of every request and counting connections.
//!
//! Include with `#[path = "common/tls.rs"] mod tls;` after `mod common;`.
#![allow(dead_code)]

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http::{Request, Response, Version};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::task::AbortHandle;
use tower::{Service, ServiceExt};

/// A certificate authority made for one test.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub pem: String,
}

/// A certificate and its private key, PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    /// A new CA (ECDSA P-256) named `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `127.0.0.1` and `localhost`.
    pub fn server_cert(&self) -> Issued {
        self.issue(
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate (mutual TLS).
    pub fn client_cert(&self) -> Issued {
        self.issue(
            vec!["gateway.test".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }

    fn issue(&self, names: Vec<String>, usage: ExtendedKeyUsagePurpose) -> Issued {
        let mut params = CertificateParams::new(names).unwrap();
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The CA as a rustls root store.
    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        roots
    }
}

/// Which protocols the TLS upstream offers (ALPN).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Offer {
    /// `h2` and `http/1.1`; hyper-util's auto server serves both.
    H2AndHttp1,
    /// `http/1.1` only, served by an HTTP/1.1-only server.
    Http1Only,
}

/// How the TLS upstream treats client certificates.
pub enum ClientAuth {
    /// None asked for.
    None,
    /// Required, signed by this CA.
    Required(rustls::RootCertStore),
}

/// A service served over TLS on 127.0.0.1. Dropping it stops accepting and closes every
/// connection.
pub struct TlsServer {
    pub addr: SocketAddr,
    /// `https://127.0.0.1:PORT/mcp`.
    pub url: String,
    /// The version of every request that reached the service, in order.
    pub versions: Arc<Mutex<Vec<Version>>>,
    /// TCP connections accepted (handshakes tried).
    pub accepted: Arc<AtomicUsize>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsServer {
    /// Serves `svc` with a certificate from `ca`, offering `offer`.
    pub fn start<S, B>(svc: S, ca: &TestCa, offer: Offer, client_auth: ClientAuth) -> TlsServer
    where
        S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn StdError + Send + Sync>>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let issued = ca.server_cert();
        let chain = CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Required(roots) => builder.with_client_cert_verifier(
                rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap(),
            ),
        };
        let mut config = builder.with_single_cert(chain, key).unwrap();
        config.alpn_protocols = match offer {
            Offer::H2AndHttp1 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            Offer::Http1Only => vec![b"http/1.1".to_vec()],
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let listener = TcpListener::from_std(std_listener).unwrap();
        let versions = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let versions = Arc::clone(&versions);
            let accepted = Arc::clone(&accepted);
            let connections = Arc::clone(&connections);
            async move {
                let mut tasks = tokio::task::JoinSet::new();
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    while tasks.try_join_next().is_some() {}
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let _ = tcp.set_nodelay(true);
                    let acceptor = acceptor.clone();
                    let svc = svc.clone();
                    let versions = Arc::clone(&versions);
                    let handle = tasks.spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let hyper_svc =
                            hyper::service::service_fn(move |request: Request<Incoming>| {
                                versions.lock().unwrap().push(request.version());
                                svc.clone().oneshot(request)
                            });
                        let mut server = auto::Builder::new(TokioExecutor::new());
                        if offer == Offer::Http1Only {
                            server = server.http1_only();
                        }
                        let _ = server.serve_connection(TokioIo::new(tls), hyper_svc).await;
                    });
                    connections.lock().unwrap().push(handle);
                }
            }
        });
        TlsServer {
            addr,
            url: format!("https://{addr}/mcp"),
            versions,
            accepted,
            connections,
            task,
        }
    }

    /// Closes every open connection now (the listener stays).
    pub fn drop_connections(&self) {
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    /// The versions seen so far.
    pub fn seen(&self) -> Vec<Version> {
        self.versions.lock().unwrap().clone()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
        self.drop_connections();
    }
}
