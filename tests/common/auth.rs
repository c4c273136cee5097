//! Auth fixtures: test signing keys (committed PEMs under `tests/keys/`), a real JWKS served
//! over HTTP that counts its fetches, and token minting.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::server::{TestServer, serve};

/// The issuer the auth tests trust.
pub const ISSUER: &str = "https://as.test";
/// The canonical resource URI (token audience) of the auth tests.
pub const AUDIENCE: &str = "https://mcp.test/mcp";

/// One signing key: private part for minting, public JWK for the JWKS.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: &'static str,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Jwk,
}

fn load(kid: &'static str, alg: Algorithm, pem: &[u8]) -> SigningKey {
    #[cfg(feature = "aws-lc-rs")]
    let provider = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
    #[cfg(not(feature = "aws-lc-rs"))]
    let provider = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
    provider.install_default().ok();
    let encoding = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
        other => panic!("no test key for {other:?}"),
    }
    .expect("test key PEM");
    let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("public JWK");
    jwk.common.key_id = Some(kid.to_owned());
    SigningKey {
        kid,
        alg,
        encoding,
        jwk,
    }
}

/// RSA 2048 (RS256), kid `rsa1`.
pub fn rsa1() -> SigningKey {
    load("rsa1", Algorithm::RS256, include_bytes!("../keys/rsa1.pem"))
}
/// A second RSA key (RS256), kid `rsa2`, for rotation.
pub fn rsa2() -> SigningKey {
    load("rsa2", Algorithm::RS256, include_bytes!("../keys/rsa2.pem"))
}
/// P-256 (ES256), kid `ec1`.
pub fn ec1() -> SigningKey {
    load("ec1", Algorithm::ES256, include_bytes!("../keys/ec1.pem"))
}
/// Ed25519 (EdDSA), kid `ed1`.
pub fn ed1() -> SigningKey {
    load("ed1", Algorithm::EdDSA, include_bytes!("../keys/ed1.pem"))
}
/// The RSA public key PEM of `rsa1` (for the HS256-with-public-key attack).
pub const RSA1_PUBLIC_PEM: &[u8] = include_bytes!("../keys/rsa1.pub.pem");

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Valid access-token claims for `sub` with `scope`.
pub fn claims(sub: &str, scope: &str) -> serde_json::Value {
    serde_json::json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "client_id": "test-client",
        "scope": scope,
        "iat": now(),
        "exp": now() + 600,
    })
}

/// Signs `claims` with `key` (its kid in the header, `typ: at+jwt`).
pub fn mint(key: &SigningKey, claims: &serde_json::Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.to_owned());
    header.typ = Some("at+jwt".to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("sign")
}

/// Signs with `key` but names another kid in the header.
pub fn mint_with_kid(key: &SigningKey, kid: &str, claims: &serde_json::Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("sign")
}

/// A JWKS served over HTTP at `/jwks` on 127.0.0.1, counting fetches.
pub struct JwksServer {
    pub url: String,
    fetches: Arc<AtomicUsize>,
    keys: Arc<Mutex<Vec<Jwk>>>,
    server: Option<TestServer>,
}

impl JwksServer {
    /// Serves `keys` with `Cache-Control: max-age=300`.
    pub fn start(keys: Vec<Jwk>) -> JwksServer {
        let fetches = Arc::new(AtomicUsize::new(0));
        let keys = Arc::new(Mutex::new(keys));
        let (f, k) = (Arc::clone(&fetches), Arc::clone(&keys));
        let router = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (f, k) = (Arc::clone(&f), Arc::clone(&k));
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    let set = JwkSet {
                        keys: k.lock().unwrap().clone(),
                    };
                    (
                        [
                            ("content-type", "application/json"),
                            ("cache-control", "public, max-age=300"),
                        ],
                        serde_json::to_string(&set).unwrap(),
                    )
                }
            }),
        );
        let server = serve(router);
        JwksServer {
            url: server.url_for("/jwks"),
            fetches,
            keys,
            server: Some(server),
        }
    }

    /// How many times the set was fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Publishes another key (rotation).
    pub fn add(&self, jwk: Jwk) {
        self.keys.lock().unwrap().push(jwk);
    }

    /// Takes the server down (connections refused from now on).
    pub fn stop(&mut self) {
        self.server.take();
    }
}
