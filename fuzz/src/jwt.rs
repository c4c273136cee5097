//! JWT header and claims parsing (`JwtVerifier`, HS256 shared secret).
//!
//! - Arbitrary strings never panic and never verify (no one without the secret signs).
//! - Tokens built from arbitrary (often near-valid) header and claims JSON: signed with
//!   another secret, or with the signature changed, they never verify; signed with the
//!   secret, they verify only when the header and claims say what must be said (HS256, the
//!   issuer, the audience, an `exp` not past, a string `sub`, no `crit`), and the principal
//!   carries the token's subject and issuer.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use mcp_edge::auth::{Issuer, JwtVerifier, TokenVerifier};
use serde_json::Value;
use sha2::Sha256;

/// The issuer the verifier trusts.
pub const ISS: &str = "https://as.example";
/// The audience it accepts.
pub const AUD: &str = "https://mcp.example/mcp";
/// The shared secret.
pub const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn verifier() -> JwtVerifier {
    JwtVerifier::new(AUD).issuer(Issuer::shared_secret(ISS, SECRET))
}

fn ready<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a verifier with a static key was not ready"),
    }
}

/// Seconds since the epoch, now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An arbitrary token never verifies.
pub fn check_token(token: &str) {
    if let Ok(principal) = ready(verifier().verify(token)) {
        panic!("{token:?} verified as {principal:?}");
    }
}

/// `header.claims.signature` with an HS256 signature by `secret`.
pub fn sign(header: &[u8], claims: &[u8], secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{input}.{signature}")
}

/// How the token is signed.
#[derive(Debug, Clone, Copy)]
pub enum Signing {
    /// With the verifier's secret.
    Right,
    /// With another secret.
    Wrong,
    /// With the secret, then this signature byte (modulo its length) flipped by this mask.
    Flipped(usize, u8),
}

/// Builds, verifies and checks a token of this header and these claims.
pub fn check_signed(header: &[u8], claims: &[u8], signing: Signing) {
    let token = match signing {
        Signing::Right => sign(header, claims, SECRET),
        Signing::Wrong => sign(header, claims, b"not the secret, not at all, no!!"),
        Signing::Flipped(at, mask) => {
            let token = sign(header, claims, SECRET);
            let dot = token.rfind('.').unwrap();
            let mut signature = URL_SAFE_NO_PAD.decode(&token[dot + 1..]).unwrap();
            let at = at % signature.len();
            signature[at] ^= mask.max(1);
            format!("{}.{}", &token[..dot], URL_SAFE_NO_PAD.encode(signature))
        }
    };
    let result = ready(verifier().verify(&token));
    let Ok(principal) = result else {
        return;
    };
    assert!(
        matches!(signing, Signing::Right),
        "a token not signed with the secret verified: {token}"
    );
    let header: Value = serde_json::from_slice(header).expect("a verified header is JSON");
    assert_eq!(header["alg"], "HS256", "{header}");
    assert!(header.get("crit").is_none(), "{header}");
    let claims: Value = serde_json::from_slice(claims).expect("verified claims are JSON");
    assert_eq!(claims["iss"], ISS, "{claims}");
    let aud_ok = match &claims["aud"] {
        Value::String(aud) => aud == AUD,
        Value::Array(auds) => auds.iter().any(|a| a == AUD),
        _ => false,
    };
    assert!(aud_ok, "audience of {claims}");
    let exp = claims["exp"].as_f64().expect("a numeric exp");
    assert!(exp + 120.0 >= now() as f64, "expired {claims}");
    assert_eq!(
        Some(principal.subject()),
        claims["sub"].as_str(),
        "{claims}"
    );
    assert_eq!(principal.issuer(), Some(ISS));
}
