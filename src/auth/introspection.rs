//! [`IntrospectionVerifier`]: opaque tokens checked at the authorization server (RFC 7662).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::{Principal, TokenVerifier, VerifyError};

/// Asks an RFC 7662 introspection endpoint about each token, with client authentication
/// (HTTP Basic), and caches the answer by token hash until the earlier of the token's `exp`
/// and a TTL (default 60 s, the longest a revoked token may still pass).
///
/// `active: false` → 401 `invalid_token`. An `aud` that does not include the configured
/// audience, or an `iss` other than the configured issuer → 401. The endpoint down or slow
/// (timeout, default 5 s) → 401 with [`Unavailable`](super::VerifyErrorKind::Unavailable),
/// never a 5xx or a hang. Inactive answers are not cached.
///
/// ```no_run
/// use mcp_edge::auth::{AuthLayer, IntrospectionVerifier};
///
/// let verifier = IntrospectionVerifier::new("https://as.example.com/oauth2/introspect")
///     .client_credentials("mcp-server", "s3cret")
///     .audience("https://mcp.example.com/mcp");
/// let layer = AuthLayer::new(verifier);
/// ```
///
/// # Cancel safety
///
/// A request that goes away drops its introspection call; nothing is cached for it.
#[derive(Clone)]
pub struct IntrospectionVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: String,
    client: reqwest::Client,
    credentials: Option<(String, String)>,
    audience: Option<String>,
    issuer: Option<String>,
    ttl: Duration,
    max_entries: usize,
    cache: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
}

impl std::fmt::Debug for IntrospectionVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionVerifier")
            .field("endpoint", &self.inner.endpoint)
            .field("audience", &self.inner.audience)
            .field("issuer", &self.inner.issuer)
            .field("ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

impl IntrospectionVerifier {
    /// Introspects at `endpoint`, with a client that times out after 5 s.
    pub fn new(endpoint: impl Into<String>) -> Self {
        let client = super::default_http_client();
        IntrospectionVerifier {
            inner: Arc::new(Inner {
                endpoint: endpoint.into(),
                client,
                credentials: None,
                audience: None,
                issuer: None,
                ttl: Duration::from_secs(60),
                max_entries: 10_000,
                cache: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            f(inner);
        }
        self
    }

    /// Authenticates to the endpoint with HTTP Basic (`client_secret_basic`).
    pub fn client_credentials(self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        let (id, secret) = (id.into(), secret.into());
        self.edit(|i| i.credentials = Some((id, secret)))
    }

    /// Requires `aud` to include this (the canonical resource URI, R57).
    pub fn audience(self, audience: impl Into<String>) -> Self {
        let audience = audience.into();
        self.edit(|i| i.audience = Some(audience))
    }

    /// Requires `iss` to be this, when the answer has one.
    pub fn issuer(self, issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        self.edit(|i| i.issuer = Some(issuer))
    }

    /// The longest an answer is cached.
    pub fn ttl(self, ttl: Duration) -> Self {
        self.edit(|i| i.ttl = ttl)
    }

    /// Uses your HTTP client (timeouts, proxies, TLS roots).
    pub fn with_client(self, client: reqwest::Client) -> Self {
        self.edit(|i| i.client = client)
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Principal> {
        let mut cache = self.inner.cache.lock().unwrap_or_else(|p| p.into_inner());
        match cache.get(key) {
            Some((principal, until)) if *until > Instant::now() => Some(principal.clone()),
            Some(_) => {
                cache.remove(key);
                None
            }
            None => None,
        }
    }
}

impl Inner {
    fn remember(&self, key: [u8; 32], principal: &Principal) {
        let now = Instant::now();
        let mut until = now + self.ttl;
        if let Some(exp) = principal.expires_at() {
            match exp.duration_since(SystemTime::now()) {
                Ok(left) => until = until.min(now + left),
                Err(_) => return,
            }
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= self.max_entries {
            cache.retain(|_, (_, u)| *u > now);
            if cache.len() >= self.max_entries {
                cache.clear();
            }
        }
        cache.insert(key, (principal.clone(), until));
    }

    async fn introspect(
        self: Arc<Self>,
        token: String,
        key: [u8; 32],
    ) -> Result<Principal, VerifyError> {
        let body = format!("token={}&token_type_hint=access_token", form_encode(&token));
        let mut request = self
            .client
            .post(&self.endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body);
        if let Some((id, secret)) = &self.credentials {
            request = request.basic_auth(form_encode(id), Some(form_encode(secret)));
        }
        let unavailable = |e: &dyn std::fmt::Display| {
            tracing::warn!(error = %e, "token introspection failed");
            VerifyError::unavailable("the token could not be checked")
        };
        let response = request.send().await.map_err(|e| unavailable(&e))?;
        if !response.status().is_success() {
            return Err(unavailable(&response.status()));
        }
        let answer: Map<String, Value> = response.json().await.map_err(|e| unavailable(&e))?;
        let principal = self.check(answer)?;
        self.remember(key, &principal);
        Ok(principal)
    }

    fn check(&self, answer: Map<String, Value>) -> Result<Principal, VerifyError> {
        if answer.get("active").and_then(Value::as_bool) != Some(true) {
            return Err(VerifyError::invalid("the token is not active"));
        }
        if let Some(exp) = answer.get("exp").and_then(Value::as_u64)
            && UNIX_EPOCH + Duration::from_secs(exp) <= SystemTime::now()
        {
            return Err(VerifyError::expired());
        }
        if let Some(expected) = &self.audience {
            let ok = match answer.get("aud") {
                Some(Value::String(aud)) => aud == expected,
                Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(expected)),
                _ => false,
            };
            if !ok {
                return Err(VerifyError::invalid("the token is not for this resource"));
            }
        }
        if let (Some(expected), Some(iss)) =
            (&self.issuer, answer.get("iss").and_then(Value::as_str))
            && iss != expected
        {
            return Err(VerifyError::invalid("the token's issuer is not trusted"));
        }
        let mut answer = answer;
        if !answer.contains_key("sub") {
            // RFC 7662 makes `sub` optional: fall back to the user name, then the client.
            let fallback = answer
                .get("username")
                .or_else(|| answer.get("client_id"))
                .cloned()
                .ok_or_else(|| VerifyError::invalid("the token has no subject"))?;
            answer.insert("sub".into(), fallback);
        }
        Principal::from_claims(answer)
            .ok_or_else(|| VerifyError::invalid("the token has no subject"))
    }
}

/// `application/x-www-form-urlencoded` for one value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

type Boxed = Pin<Box<dyn Future<Output = Result<Principal, VerifyError>> + Send>>;

/// The future of [`IntrospectionVerifier`]: a cached answer, or a call to the endpoint.
pub struct IntrospectionFuture {
    state: Result<Option<Principal>, Boxed>,
}

impl std::fmt::Debug for IntrospectionFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntrospectionFuture")
    }
}

impl Future for IntrospectionFuture {
    type Output = Result<Principal, VerifyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            Ok(principal) => Poll::Ready(Ok(principal.take().expect("polled after completion"))),
            Err(future) => future.as_mut().poll(cx),
        }
    }
}

impl TokenVerifier for IntrospectionVerifier {
    type Future = IntrospectionFuture;

    fn verify(&self, token: &str) -> IntrospectionFuture {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(principal) = self.cached(&key) {
            return IntrospectionFuture {
                state: Ok(Some(principal)),
            };
        }
        let inner = Arc::clone(&self.inner);
        IntrospectionFuture {
            state: Err(Box::pin(inner.introspect(token.to_owned(), key))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked() {
        let v = IntrospectionVerifier::new("http://127.0.0.1:9/introspect")
            .audience("https://mcp.example/mcp")
            .issuer("https://as.example");
        let ok: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "active": true, "sub": "alice", "scope": "a b", "aud": ["https://mcp.example/mcp"],
            "iss": "https://as.example", "client_id": "c"
        }))
        .unwrap();
        let p = v.inner.check(ok.clone()).unwrap();
        assert_eq!(p.subject(), "alice");
        assert!(p.has_scope("b"));
        let mut inactive = ok.clone();
        inactive.insert("active".into(), false.into());
        assert!(v.inner.check(inactive).is_err());
        let mut foreign = ok.clone();
        foreign.insert("aud".into(), "https://other".into());
        assert!(v.inner.check(foreign).is_err());
        let mut no_sub = ok;
        no_sub.remove("sub");
        assert_eq!(v.inner.check(no_sub).unwrap().subject(), "c");
        assert_eq!(form_encode("a+b/c=="), "a%2Bb%2Fc%3D%3D");
    }
}
