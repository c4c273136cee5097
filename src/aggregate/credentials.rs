//! Credentials per upstream: static headers (secrets from the environment among them), and
//! with the `aggregator-oauth` feature OAuth 2.0 access tokens the aggregator obtains for
//! itself, by client credentials (RFC 6749 §4.4) or token exchange (RFC 8693), cached until
//! shortly before they expire.
//!
//! What an upstream gets is its own: the client's token reaches an upstream only when that
//! upstream is configured for it ([`Upstream::forward_authorization`](super::Upstream::forward_authorization),
//! R59); with token exchange, the client's token goes to the authorization server as the
//! subject token, never to the upstream.

use std::fmt;
#[cfg(feature = "aggregator-oauth")]
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};

/// A secret from the environment, as a header value marked sensitive (left out of `Debug`
/// output and of HTTP/2 header compression tables).
///
/// ```
/// # unsafe { std::env::set_var("ALPHA_API_KEY", "s3cret") };
/// use mcp_edge::aggregate::env_secret;
///
/// let key = env_secret("ALPHA_API_KEY").unwrap();
/// assert!(key.is_sensitive());
/// assert!(env_secret("NO_SUCH_VARIABLE_AT_ALL").is_err());
/// ```
pub fn env_secret(variable: &str) -> Result<HeaderValue, MissingSecret> {
    let value = std::env::var(variable).map_err(|_| MissingSecret(variable.to_owned()))?;
    let mut value =
        HeaderValue::from_str(value.trim()).map_err(|_| MissingSecret(variable.to_owned()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// [`env_secret`] as `Bearer {secret}`.
pub fn env_bearer(variable: &str) -> Result<HeaderValue, MissingSecret> {
    let secret = env_secret(variable)?;
    let mut value = HeaderValue::from_bytes(&[b"Bearer ", secret.as_bytes()].concat())
        .map_err(|_| MissingSecret(variable.to_owned()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// An environment variable that is unset, or not a valid header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSecret(String);

impl fmt::Display for MissingSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "environment variable {} is unset or not a valid header value",
            self.0
        )
    }
}

impl std::error::Error for MissingSecret {}

/// What the aggregator adds to every request to one upstream.
#[derive(Clone, Default)]
pub(crate) struct Credentials {
    /// Static headers, set after the client's forwarded `Authorization` (so they win).
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// An OAuth token source; its token is the `Authorization` header, last.
    #[cfg(feature = "aggregator-oauth")]
    pub(crate) oauth: Option<Arc<oauth::OAuthClient>>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        let mut debug = f.debug_struct("Credentials");
        debug.field("headers", &names);
        #[cfg(feature = "aggregator-oauth")]
        debug.field("oauth", &self.oauth);
        debug.finish()
    }
}

impl Credentials {
    /// Adds the upstream's credentials to `headers`; `client` is the client's request headers
    /// (the subject token of a token exchange).
    pub(crate) async fn apply(
        &self,
        headers: &mut HeaderMap,
        client: &HeaderMap,
    ) -> Result<(), String> {
        for (name, value) in &self.headers {
            headers.insert(name, value.clone());
        }
        #[cfg(feature = "aggregator-oauth")]
        if let Some(oauth) = &self.oauth {
            let token = oauth.token(client).await.map_err(|e| e.to_string())?;
            headers.insert(http::header::AUTHORIZATION, token);
        }
        #[cfg(not(feature = "aggregator-oauth"))]
        let _ = client;
        Ok(())
    }
}

#[cfg(feature = "aggregator-oauth")]
pub use oauth::{OAuthClient, OAuthError};

#[cfg(feature = "aggregator-oauth")]
mod oauth {
    use std::collections::HashMap;
    use std::fmt;
    use std::time::Duration;

    use http::{HeaderMap, HeaderValue};
    use serde::Deserialize;
    use sha2::{Digest, Sha256};
    use tokio::time::Instant;

    /// The most subject tokens whose exchanged tokens are kept at once.
    const MAX_TOKENS: usize = 1024;

    /// An access token lives this long when the server does not say (`expires_in` absent).
    const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

    /// How the token is obtained.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Grant {
        ClientCredentials,
        TokenExchange,
    }

    /// An OAuth 2.0 client toward an upstream's authorization server: the aggregator's own
    /// token for that upstream, by client credentials or by exchanging the client's token
    /// (RFC 8693). Tokens are cached until a fifth of their lifetime (at most 60 s) is left,
    /// then fetched anew; concurrent requests wait for one fetch.
    ///
    /// ```
    /// use mcp_edge::aggregate::{OAuthClient, Upstream};
    ///
    /// let oauth = OAuthClient::client_credentials(
    ///     "https://as.example/token",
    ///     "aggregator",
    ///     "s3cret",
    /// )
    /// .scope("mcp:tools")
    /// .resource("https://beta.example/mcp");
    /// let upstream = Upstream::new("beta", ()).oauth(oauth);
    /// # let _ = upstream;
    /// ```
    ///
    /// # Failure and cancellation
    ///
    /// A token endpoint that fails (5 s timeout, an error answer, no `access_token`) fails
    /// the request to the upstream: the client gets a JSON-RPC error naming the upstream, and
    /// nothing is cached. A fetch dropped half-way (the client left) leaves nothing behind.
    pub struct OAuthClient {
        grant: Grant,
        endpoint: String,
        client_id: String,
        client_secret: String,
        scope: Option<String>,
        resource: Option<String>,
        audience: Option<String>,
        http: reqwest::Client,
        /// Tokens by the digest of the subject token (`None` for client credentials).
        tokens: tokio::sync::Mutex<HashMap<Option<[u8; 32]>, Token>>,
    }

    impl fmt::Debug for OAuthClient {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("OAuthClient")
                .field("grant", &self.grant)
                .field("endpoint", &self.endpoint)
                .field("client_id", &self.client_id)
                .finish_non_exhaustive()
        }
    }

    #[derive(Clone)]
    struct Token {
        value: HeaderValue,
        /// When to fetch a new one (before it expires).
        refresh_at: Instant,
    }

    #[derive(Deserialize)]
    struct TokenResponse {
        access_token: String,
        #[serde(default)]
        token_type: Option<String>,
        #[serde(default)]
        expires_in: Option<u64>,
    }

    /// Why no token could be had.
    #[derive(Debug)]
    pub struct OAuthError(String);

    impl fmt::Display for OAuthError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "no token from the authorization server ({})", self.0)
        }
    }

    impl std::error::Error for OAuthError {}

    impl OAuthClient {
        fn new(grant: Grant, endpoint: &str, client_id: &str, client_secret: &str) -> Self {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default();
            OAuthClient {
                grant,
                endpoint: endpoint.to_owned(),
                client_id: client_id.to_owned(),
                client_secret: client_secret.to_owned(),
                scope: None,
                resource: None,
                audience: None,
                http,
                tokens: tokio::sync::Mutex::new(HashMap::new()),
            }
        }

        /// The aggregator's own token (RFC 6749 §4.4), one for every client.
        pub fn client_credentials(endpoint: &str, client_id: &str, client_secret: &str) -> Self {
            Self::new(Grant::ClientCredentials, endpoint, client_id, client_secret)
        }

        /// A token per client, exchanged for the client's own (RFC 8693: the client's bearer
        /// token is the `subject_token`). The client's `Authorization` header must reach the
        /// aggregator: with an auth layer in front, turn on its
        /// [`forward_token`](crate::AuthLayer::forward_token). A request without a bearer
        /// token fails.
        pub fn token_exchange(endpoint: &str, client_id: &str, client_secret: &str) -> Self {
            Self::new(Grant::TokenExchange, endpoint, client_id, client_secret)
        }

        /// The `scope` to ask for.
        pub fn scope(mut self, scope: &str) -> Self {
            self.scope = Some(scope.to_owned());
            self
        }

        /// The `resource` (RFC 8707) to ask a token for: usually the upstream's URL.
        pub fn resource(mut self, resource: &str) -> Self {
            self.resource = Some(resource.to_owned());
            self
        }

        /// The `audience` (RFC 8693) to ask a token for.
        pub fn audience(mut self, audience: &str) -> Self {
            self.audience = Some(audience.to_owned());
            self
        }

        /// Uses your HTTP client (timeouts, proxies, TLS roots).
        pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
            self.http = http;
            self
        }

        /// The `Authorization` value for a request on behalf of a client with `client`
        /// headers: cached, or fetched now.
        pub(crate) async fn token(&self, client: &HeaderMap) -> Result<HeaderValue, OAuthError> {
            let subject = match self.grant {
                Grant::ClientCredentials => None,
                Grant::TokenExchange => Some(
                    client
                        .get(http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .ok_or_else(|| OAuthError("no client token to exchange".into()))?,
                ),
            };
            let key = subject.map(|s| Sha256::digest(s.as_bytes()).into());
            let mut tokens = self.tokens.lock().await;
            let now = Instant::now();
            if let Some(token) = tokens.get(&key)
                && token.refresh_at > now
            {
                return Ok(token.value.clone());
            }
            let token = self.fetch(subject).await?;
            if tokens.len() >= MAX_TOKENS {
                tokens.retain(|_, t| t.refresh_at > now);
                if tokens.len() >= MAX_TOKENS {
                    tokens.clear();
                }
            }
            tokens.insert(key, token.clone());
            Ok(token.value)
        }

        async fn fetch(&self, subject: Option<&str>) -> Result<Token, OAuthError> {
            let mut form: Vec<(&str, &str)> = Vec::with_capacity(8);
            match subject {
                None => form.push(("grant_type", "client_credentials")),
                Some(subject) => {
                    form.push((
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:token-exchange",
                    ));
                    form.push(("subject_token", subject));
                    form.push((
                        "subject_token_type",
                        "urn:ietf:params:oauth:token-type:access_token",
                    ));
                }
            }
            for (field, value) in [
                ("scope", &self.scope),
                ("resource", &self.resource),
                ("audience", &self.audience),
            ] {
                if let Some(value) = value {
                    form.push((field, value));
                }
            }
            let started = Instant::now();
            let failed = |e: &dyn fmt::Display| OAuthError(e.to_string());
            let response = self
                .http
                .post(&self.endpoint)
                .basic_auth(
                    form_encode(&self.client_id),
                    Some(form_encode(&self.client_secret)),
                )
                .header("accept", "application/json")
                .form(&form)
                .send()
                .await
                .map_err(|e| failed(&e))?;
            let status = response.status();
            if !status.is_success() {
                return Err(OAuthError(format!("HTTP {}", status.as_u16())));
            }
            let answer: TokenResponse = response.json().await.map_err(|e| failed(&e))?;
            if answer.token_type.as_deref().is_some_and(|t| {
                !t.eq_ignore_ascii_case("bearer") && !t.eq_ignore_ascii_case("N_A")
            }) {
                return Err(OAuthError("not a bearer token".into()));
            }
            let mut value = HeaderValue::from_str(&format!("Bearer {}", answer.access_token))
                .map_err(|_| OAuthError("the token is not a valid header value".into()))?;
            value.set_sensitive(true);
            let lifetime = answer
                .expires_in
                .map_or(DEFAULT_LIFETIME, Duration::from_secs);
            Ok(Token {
                value,
                refresh_at: started + lifetime - early(lifetime),
            })
        }
    }

    /// How long before expiry a token is replaced: a fifth of its lifetime, at most 60 s.
    fn early(lifetime: Duration) -> Duration {
        (lifetime / 5).min(Duration::from_secs(60))
    }

    /// Client id and secret are form-encoded before HTTP Basic (RFC 6749 §2.3.1).
    fn form_encode(value: &str) -> String {
        form_urlencoded::byte_serialize(value.as_bytes()).collect()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn tokens_are_replaced_a_fifth_early_at_most_a_minute() {
            assert_eq!(early(Duration::from_secs(30)), Duration::from_secs(6));
            assert_eq!(early(Duration::from_secs(3600)), Duration::from_secs(60));
            assert_eq!(form_encode("a b:c"), "a+b%3Ac");
        }
    }
}
