//! [`JwtVerifier`]: JWT access tokens (RFC 9068) on `jsonwebtoken`, with its pure-Rust
//! (RustCrypto) provider, or aws-lc-rs with the `aws-lc-rs` feature.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Once};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde_json::{Map, Value};

use super::claims::MapScopes;
use super::jwks::RemoteKeys;
use super::{Principal, TokenVerifier, VerifyError};

/// Installs jsonwebtoken's crypto provider for the process, once: aws-lc-rs with the
/// `aws-lc-rs` feature, else the pure-Rust RustCrypto one. If another provider was installed
/// first, that one stays (and works); what can never happen is a first verification that
/// panics because none was chosen (jsonwebtoken panics when both of its providers are
/// compiled in and none is installed).
pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(feature = "aws-lc-rs")]
        let provider = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
        #[cfg(not(feature = "aws-lc-rs"))]
        let provider = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
        let _ = provider.install_default();
    });
}

/// The asymmetric algorithms accepted by default.
pub const DEFAULT_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// One verification key.
#[derive(Clone)]
pub(crate) struct Key {
    kid: Option<String>,
    key: DecodingKey,
    /// The algorithm the key is pinned to (the JWK `alg`), if any.
    alg: Option<Algorithm>,
}

/// The keys of one issuer at one moment.
#[derive(Clone, Default)]
pub(crate) struct KeySet {
    keys: Vec<Key>,
    by_kid: HashMap<String, usize>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| &k.kid))
            .finish()
    }
}

impl KeySet {
    /// The signing keys of a JWK set; encryption keys and unsupported key types are skipped.
    pub(crate) fn from_jwks(set: &JwkSet) -> KeySet {
        let mut keys = KeySet::default();
        for jwk in &set.keys {
            if let Some(key) = key_from_jwk(jwk) {
                keys.push(key);
            }
        }
        keys
    }

    fn push(&mut self, key: Key) {
        if let Some(kid) = &key.kid {
            self.by_kid.insert(kid.clone(), self.keys.len());
        }
        self.keys.push(key);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key for a token: by `kid`, or the only key when the token names none.
    fn find(&self, kid: Option<&str>) -> Option<&Key> {
        match kid {
            Some(kid) => self.by_kid.get(kid).map(|&i| &self.keys[i]),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
    }

    pub(crate) fn has(&self, kid: Option<&str>) -> bool {
        self.find(kid).is_some()
    }
}

fn key_from_jwk(jwk: &Jwk) -> Option<Key> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    if !jwk.is_supported() {
        return None;
    }
    let alg = match &jwk.common.key_algorithm {
        Some(ka) => Some(Algorithm::from_str(&ka.to_string()).ok()?),
        None => None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id.clone(),
        key,
        alg,
    })
}

/// Where an issuer's keys come from.
#[derive(Clone)]
enum Keys {
    Static(Arc<KeySet>),
    Remote(Arc<RemoteKeys>),
}

/// One authorization server: its `iss` value and its keys (R61), the audiences it uses for
/// this server besides the verifier's, and where its tokens carry scopes.
///
/// [`Issuer::discover`] (feature `jwks-fetch`) finds the keys of an OpenID provider from
/// its metadata.
#[derive(Clone)]
pub struct Issuer {
    iss: String,
    keys: Keys,
    hmac: bool,
    audiences: Vec<String>,
    scopes: Option<Arc<dyn MapScopes>>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("iss", &self.iss)
            .field(
                "keys",
                &match &self.keys {
                    Keys::Static(k) => format!("{} static", k.len()),
                    Keys::Remote(_) => "remote".to_owned(),
                },
            )
            .field("audiences", &self.audiences)
            .field("maps_scopes", &self.scopes.is_some())
            .finish()
    }
}

/// Why a key could not be loaded.
#[derive(Debug, Clone)]
pub struct KeyError(String);

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid key: {}", self.0)
    }
}

impl std::error::Error for KeyError {}

impl Issuer {
    fn with(iss: impl Into<String>, keys: Keys, hmac: bool) -> Self {
        Issuer {
            iss: iss.into(),
            keys,
            hmac,
            audiences: Vec::new(),
            scopes: None,
        }
    }

    /// An issuer whose keys are a fixed JWK set (encryption keys are ignored).
    pub fn jwk_set(iss: impl Into<String>, set: &JwkSet) -> Self {
        Issuer::with(iss, Keys::Static(Arc::new(KeySet::from_jwks(set))), false)
    }

    /// An issuer with one public key in PEM (RSA, EC or Ed25519; `SubjectPublicKeyInfo` or
    /// PKCS#1), used for tokens with any `kid` or none.
    pub fn pem(iss: impl Into<String>, pem: &[u8]) -> Result<Self, KeyError> {
        install_crypto_provider();
        let text = std::str::from_utf8(pem).map_err(|e| KeyError(e.to_string()))?;
        let key = DecodingKey::from_rsa_pem(pem)
            .or_else(|_| DecodingKey::from_ec_pem(pem))
            .or_else(|_| DecodingKey::from_ed_pem(pem))
            .map_err(|e| KeyError(e.to_string()))?;
        if !text.contains("PUBLIC KEY") {
            return Err(KeyError("expected a public key PEM".into()));
        }
        let mut set = KeySet::default();
        set.push(Key {
            kid: None,
            key,
            alg: None,
        });
        Ok(Issuer::with(iss, Keys::Static(Arc::new(set)), false))
    }

    /// An issuer that signs with a shared secret (HS256/384/512). Only for issuers you run
    /// yourself: anyone holding the secret can mint tokens.
    ///
    /// # Panics
    ///
    /// If `secret` is empty (jsonwebtoken refuses an empty HMAC key: anyone could sign).
    pub fn shared_secret(iss: impl Into<String>, secret: &[u8]) -> Self {
        let mut set = KeySet::default();
        set.push(Key {
            kid: None,
            key: DecodingKey::from_secret(secret).expect("an HMAC secret must not be empty"),
            alg: None,
        });
        Issuer::with(iss, Keys::Static(Arc::new(set)), true)
    }

    /// An issuer whose keys are fetched and cached by `keys` (see [`RemoteKeys`]).
    pub fn remote(iss: impl Into<String>, keys: RemoteKeys) -> Self {
        Issuer::with(iss, Keys::Remote(Arc::new(keys)), false)
    }

    /// An issuer whose keys are at a JWKS URL, fetched with the default cache rules.
    #[cfg(feature = "jwks-fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-fetch")))]
    pub fn jwks_url(iss: impl Into<String>, url: impl Into<String>) -> Self {
        Issuer::remote(iss, RemoteKeys::new(super::jwks::HttpJwks::new(url)))
    }

    /// Also accepts, from this issuer only, tokens whose `aud` holds `audience`; repeatable.
    /// Identity providers name a resource their own way (Keycloak a client id, Entra
    /// `api://<app id>`, Auth0 the API identifier), and with several issuers each keeps its
    /// own names: another issuer's token for this audience is refused. The verifier's
    /// audiences ([`JwtVerifier::new`], [`JwtVerifier::also_audience`]) stay accepted.
    /// MCP asks for this server's canonical URL in `aud` (R57): add another name only for a
    /// provider that cannot put the URL there, and one that names this server alone.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Takes the principal's scopes from where this issuer puts them (roles, permissions),
    /// instead of `scope`/`scp` only; see [`ScopeClaims`](super::ScopeClaims) for the presets.
    pub fn scopes_from(mut self, mapper: impl MapScopes) -> Self {
        self.scopes = Some(Arc::new(mapper));
        self
    }

    /// The `iss` value.
    pub fn iss(&self) -> &str {
        &self.iss
    }
}

/// Verifies JWT access tokens: signature, `iss`, `aud`, `exp`/`nbf` with leeway, algorithm
/// allowlist, optional `typ: at+jwt` (RFC 9068) and required claims (R57, R61).
///
/// - The token's `iss` picks the [`Issuer`]; the token is checked against that issuer's keys
///   only. Several issuers may be configured.
/// - `aud` must contain the configured audience: the canonical resource URI of this server
///   (RFC 8707). Tokens for other resources are refused.
/// - `alg: none` is never accepted; the default allowlist is asymmetric
///   ([`DEFAULT_ALGORITHMS`]); HMAC is accepted only from an issuer configured with a shared
///   secret, so an HS256 token "signed" with an RSA public key is refused.
/// - The key is chosen by `kid`; a token without `kid` is accepted when the issuer has exactly
///   one key. A JWK's own `alg` pins its algorithm.
///
/// The constructor installs jsonwebtoken's crypto provider (RustCrypto, or aws-lc-rs with the
/// `aws-lc-rs` feature; see DESIGN.md), so the first verification cannot panic.
///
/// ```
/// use mcp_edge::auth::{Issuer, JwtVerifier};
///
/// let verifier = JwtVerifier::new("https://mcp.example.com/mcp")
///     .issuer(Issuer::shared_secret("https://issuer.internal", b"dev secret"))
///     .leeway(std::time::Duration::from_secs(30))
///     .require_typ(true);
/// # let _ = verifier;
/// ```
#[derive(Clone, Debug)]
pub struct JwtVerifier {
    inner: Arc<Config>,
}

#[derive(Clone, Debug)]
struct Config {
    issuers: Vec<Issuer>,
    audience: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway: u64,
    require_typ: bool,
    required_claims: Vec<String>,
}

impl JwtVerifier {
    /// A verifier for tokens whose `aud` includes `audience` (this server's canonical URI).
    /// Add at least one [`issuer`](JwtVerifier::issuer).
    pub fn new(audience: impl Into<String>) -> Self {
        install_crypto_provider();
        JwtVerifier {
            inner: Arc::new(Config {
                issuers: Vec::new(),
                audience: vec![audience.into()],
                algorithms: DEFAULT_ALGORITHMS.to_vec(),
                leeway: 60,
                require_typ: false,
                required_claims: Vec::new(),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.inner));
        self
    }

    /// Accepts tokens from this authorization server.
    pub fn issuer(self, issuer: Issuer) -> Self {
        self.edit(|c| c.issuers.push(issuer))
    }

    /// Also accepts this audience (e.g. the URL with and without a trailing path).
    pub fn also_audience(self, audience: impl Into<String>) -> Self {
        self.edit(|c| c.audience.push(audience.into()))
    }

    /// The asymmetric algorithms accepted (HMAC ones are ignored here; they follow from
    /// [`Issuer::shared_secret`]). `none` does not exist in the list of choices.
    pub fn algorithms(self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.edit(|c| {
            c.algorithms = algorithms
                .into_iter()
                .filter(|a| !matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
                .collect()
        })
    }

    /// Clock-skew allowance for `exp` and `nbf` (default 60 s).
    pub fn leeway(self, leeway: Duration) -> Self {
        self.edit(|c| c.leeway = leeway.as_secs())
    }

    /// Requires the `typ` header `at+jwt` (RFC 9068 §2.1).
    pub fn require_typ(self, require: bool) -> Self {
        self.edit(|c| c.require_typ = require)
    }

    /// Requires these claims to be present (besides `iss`, `aud`, `exp` and `sub`, always
    /// required).
    pub fn required_claims<I, T>(self, claims: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.edit(|c| c.required_claims = claims.into_iter().map(Into::into).collect())
    }

    /// Checks the parts that need no key; returns the header, the issuer and the `kid`.
    fn prepare<'a>(&'a self, token: &str) -> Result<(Header, &'a Issuer), VerifyError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| VerifyError::invalid("the token is malformed"))?;
        // Keys come from configuration only (never `jku`, `jwk`, `x5u` of the token), and no
        // critical extension is understood (RFC 7515 §4.1.11).
        if header.crit.is_some() {
            return Err(VerifyError::invalid(
                "the token has critical header parameters",
            ));
        }
        if self.inner.require_typ {
            let typ = header.typ.as_deref().unwrap_or_default();
            if !(typ.eq_ignore_ascii_case("at+jwt")
                || typ.eq_ignore_ascii_case("application/at+jwt"))
            {
                return Err(VerifyError::invalid(
                    "the token is not an access token (typ)",
                ));
            }
        }
        let iss = unverified_issuer(token)
            .ok_or_else(|| VerifyError::invalid("the token has no issuer"))?;
        let issuer = self
            .inner
            .issuers
            .iter()
            .find(|i| i.iss == iss)
            .ok_or_else(|| VerifyError::invalid("the token's issuer is not trusted"))?;
        let hmac = matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        );
        if hmac != issuer.hmac || (!hmac && !self.inner.algorithms.contains(&header.alg)) {
            return Err(VerifyError::invalid(
                "the token's algorithm is not accepted",
            ));
        }
        Ok((header, issuer))
    }

    /// Verifies with a key set known now.
    fn verify_with(
        &self,
        token: &str,
        header: &Header,
        issuer: &Issuer,
        keys: &KeySet,
    ) -> Result<Principal, VerifyError> {
        let key = keys
            .find(header.kid.as_deref())
            .ok_or_else(|| VerifyError::invalid("no key matches the token's kid"))?;
        if key.alg.is_some_and(|alg| alg != header.alg) {
            return Err(VerifyError::invalid(
                "the token's algorithm does not match its key",
            ));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.inner.leeway;
        validation.validate_nbf = true;
        validation.aud = Some(
            self.inner
                .audience
                .iter()
                .chain(&issuer.audiences)
                .cloned()
                .collect(),
        );
        validation.set_issuer(&[&issuer.iss]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => VerifyError::expired(),
                ErrorKind::ImmatureSignature => VerifyError::invalid("the token is not valid yet"),
                ErrorKind::InvalidAudience => {
                    VerifyError::invalid("the token is not for this resource")
                }
                ErrorKind::InvalidIssuer => {
                    VerifyError::invalid("the token's issuer is not trusted")
                }
                ErrorKind::InvalidSignature => {
                    VerifyError::invalid("the token's signature is invalid")
                }
                ErrorKind::MissingRequiredClaim(_) => {
                    VerifyError::invalid("the token lacks a required claim")
                }
                _ => VerifyError::invalid("the token is invalid"),
            })?;
        let claims = data.claims;
        for name in &self.inner.required_claims {
            if !claims.contains_key(name) {
                return Err(VerifyError::invalid("the token lacks a required claim"));
            }
        }
        let scopes = issuer.scopes.as_ref().map(|mapper| mapper.scopes(&claims));
        let principal = Principal::from_claims(claims)
            .ok_or_else(|| VerifyError::invalid("the token has no subject"))?;
        Ok(match scopes {
            Some(scopes) => principal.with_scopes(scopes),
            None => principal,
        })
    }
}

/// The `iss` claim, read before the signature is checked, only to pick the issuer's keys.
fn unverified_issuer(token: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: Option<String>,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Iss>(&bytes).ok()?.iss
}

impl TokenVerifier for JwtVerifier {
    type Future = JwtFuture;

    fn verify(&self, token: &str) -> JwtFuture {
        let (header, issuer) = match self.prepare(token) {
            Ok(found) => found,
            Err(err) => return JwtFuture::ready(Err(err)),
        };
        match &issuer.keys {
            Keys::Static(keys) => JwtFuture::ready(self.verify_with(token, &header, issuer, keys)),
            Keys::Remote(remote) => {
                let kid = header.kid.clone();
                if let Some(keys) = remote.current(kid.as_deref()) {
                    return JwtFuture::ready(self.verify_with(token, &header, issuer, &keys));
                }
                // Unknown kid (or no keys yet): one rate-limited, single-flight refetch.
                let this = self.clone();
                let remote = Arc::clone(remote);
                let issuer = issuer.clone();
                let token = token.to_owned();
                JwtFuture {
                    state: JwtState::Fetching(Box::pin(async move {
                        let keys = remote.refetch_for(kid.as_deref()).await?;
                        this.verify_with(&token, &header, &issuer, &keys)
                    })),
                }
            }
        }
    }
}

type BoxedVerify = Pin<Box<dyn Future<Output = Result<Principal, VerifyError>> + Send>>;

/// The future of [`JwtVerifier`]: ready at once when the keys are known; a refetch otherwise.
pub struct JwtFuture {
    state: JwtState,
}

enum JwtState {
    Ready(Option<Result<Principal, VerifyError>>),
    Fetching(BoxedVerify),
}

impl JwtFuture {
    fn ready(result: Result<Principal, VerifyError>) -> Self {
        JwtFuture {
            state: JwtState::Ready(Some(result)),
        }
    }
}

impl std::fmt::Debug for JwtFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtFuture")
    }
}

impl Future for JwtFuture {
    type Output = Result<Principal, VerifyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            JwtState::Ready(result) => Poll::Ready(result.take().expect("polled after completion")),
            JwtState::Fetching(future) => future.as_mut().poll(cx),
        }
    }
}

/// Seconds since the epoch, for tests and minting.
#[allow(dead_code)]
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use jsonwebtoken::{EncodingKey, encode};

    fn rsa(pem: &[u8], kid: Option<&str>) -> (EncodingKey, Jwk) {
        install_crypto_provider();
        let enc = EncodingKey::from_rsa_pem(pem).unwrap();
        let mut jwk = Jwk::from_encoding_key(&enc, Algorithm::RS256).unwrap();
        jwk.common.key_id = kid.map(str::to_owned);
        (enc, jwk)
    }

    fn token(enc: &EncodingKey, kid: Option<&str>, iss: &str, typ: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = kid.map(str::to_owned);
        header.typ = typ.map(str::to_owned);
        let now = jsonwebtoken::get_current_timestamp();
        let claims = serde_json::json!({"iss": iss, "aud": "https://rs", "sub": "s",
            "scp": ["a", "b"], "azp": "cli", "exp": now + 60});
        encode(&header, &claims, enc).unwrap()
    }

    fn verify(v: &JwtVerifier, token: &str) -> Result<Principal, VerifyError> {
        v.verify(token)
            .now_or_never()
            .expect("static keys answer at once")
    }

    const RSA1: &[u8] = include_bytes!("../../tests/keys/rsa1.pem");
    const RSA2: &[u8] = include_bytes!("../../tests/keys/rsa2.pem");

    #[test]
    fn a_token_without_kid_is_accepted_only_when_the_set_has_one_key() {
        let (k1, j1) = rsa(RSA1, Some("k1"));
        let (_, j2) = rsa(RSA2, Some("k2"));
        let one = JwtVerifier::new("https://rs").issuer(Issuer::jwk_set(
            "https://as",
            &JwkSet {
                keys: vec![j1.clone()],
            },
        ));
        let p = verify(&one, &token(&k1, None, "https://as", None)).unwrap();
        assert_eq!(p.client_id(), Some("cli"));
        assert!(p.has_scope("a") && p.has_scope("b"));
        let two = JwtVerifier::new("https://rs").issuer(Issuer::jwk_set(
            "https://as",
            &JwkSet { keys: vec![j1, j2] },
        ));
        assert!(verify(&two, &token(&k1, None, "https://as", None)).is_err());
        assert!(verify(&two, &token(&k1, Some("k1"), "https://as", None)).is_ok());
    }

    #[test]
    fn each_issuer_is_checked_against_its_own_keys() {
        let (k1, j1) = rsa(RSA1, Some("k1"));
        let (k2, j2) = rsa(RSA2, Some("k2"));
        let v = JwtVerifier::new("https://rs")
            .issuer(Issuer::jwk_set("https://a", &JwkSet { keys: vec![j1] }))
            .issuer(Issuer::jwk_set("https://b", &JwkSet { keys: vec![j2] }));
        assert!(verify(&v, &token(&k1, Some("k1"), "https://a", None)).is_ok());
        assert!(verify(&v, &token(&k2, Some("k2"), "https://b", None)).is_ok());
        // Issuer b's name on a token signed with issuer a's key.
        assert!(verify(&v, &token(&k1, Some("k1"), "https://b", None)).is_err());
        assert!(verify(&v, &token(&k1, Some("k1"), "https://c", None)).is_err());
    }

    #[test]
    fn typ_pem_keys_and_shared_secrets() {
        let (k1, _) = rsa(RSA1, None);
        let pem = Issuer::pem(
            "https://as",
            include_bytes!("../../tests/keys/rsa1.pub.pem"),
        )
        .unwrap();
        assert!(
            Issuer::pem("https://as", RSA1).is_err(),
            "private keys are refused"
        );
        let v = JwtVerifier::new("https://rs").issuer(pem).require_typ(true);
        assert!(verify(&v, &token(&k1, None, "https://as", Some("at+jwt"))).is_ok());
        let err = verify(&v, &token(&k1, None, "https://as", Some("JWT"))).unwrap_err();
        assert_eq!(err.description(), "the token is not an access token (typ)");

        let secret = JwtVerifier::new("https://rs").issuer(Issuer::shared_secret(
            "https://hs",
            b"0123456789abcdef0123456789abcdef",
        ));
        let now = jsonwebtoken::get_current_timestamp();
        let claims = serde_json::json!({"iss": "https://hs", "aud": "https://rs", "sub": "s", "exp": now + 60});
        let hs = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef").unwrap(),
        )
        .unwrap();
        assert!(verify(&secret, &hs).is_ok());
        // An RS256 token naming the HMAC issuer is refused (no algorithm switching).
        assert!(verify(&secret, &token(&k1, None, "https://hs", None)).is_err());
    }

    #[test]
    fn an_issuers_own_audiences_and_scope_mapper_apply_to_its_tokens_only() {
        let (k1, j1) = rsa(RSA1, Some("k1"));
        let (k2, j2) = rsa(RSA2, Some("k2"));
        let v = JwtVerifier::new("https://rs")
            .issuer(
                Issuer::jwk_set("https://kc", &JwkSet { keys: vec![j1] })
                    .audience("mcp-server")
                    .scopes_from(super::super::ScopeClaims::keycloak("mcp-server")),
            )
            .issuer(Issuer::jwk_set("https://other", &JwkSet { keys: vec![j2] }));
        let mint = |enc: &EncodingKey, kid: &str, iss: &str, aud: &str| {
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some(kid.into());
            let now = jsonwebtoken::get_current_timestamp();
            let claims = serde_json::json!({"iss": iss, "aud": ["account", aud], "sub": "s",
                "scope": "profile", "realm_access": {"roles": ["mcp:tools"]}, "exp": now + 60});
            encode(&header, &claims, enc).unwrap()
        };
        let p = verify(&v, &mint(&k1, "k1", "https://kc", "mcp-server")).unwrap();
        assert_eq!(p.scopes().collect::<Vec<_>>(), ["mcp:tools", "profile"]);
        assert!(verify(&v, &mint(&k1, "k1", "https://kc", "https://rs")).is_ok());
        let err = verify(&v, &mint(&k1, "k1", "https://kc", "other-client")).unwrap_err();
        assert_eq!(err.description(), "the token is not for this resource");
        // Another issuer's token for the first issuer's audience is refused, and its
        // scopes come from `scope` only.
        assert!(verify(&v, &mint(&k2, "k2", "https://other", "mcp-server")).is_err());
        let p = verify(&v, &mint(&k2, "k2", "https://other", "https://rs")).unwrap();
        assert_eq!(p.scopes().collect::<Vec<_>>(), ["profile"]);
    }

    #[test]
    fn required_claims_are_enforced() {
        let (k1, j1) = rsa(RSA1, Some("k1"));
        let v = JwtVerifier::new("https://rs")
            .issuer(Issuer::jwk_set("https://as", &JwkSet { keys: vec![j1] }))
            .required_claims(["tenant"]);
        let err = verify(&v, &token(&k1, Some("k1"), "https://as", None)).unwrap_err();
        assert_eq!(err.description(), "the token lacks a required claim");
    }
}
