//! [`Issuer::discover`]: an issuer configured by its URL alone, its keys found from its
//! OpenID Connect Discovery or RFC 8414 metadata.
//!
//! Identity providers publish where their signing keys are (`jwks_uri`) in a metadata
//! document, and move them (Keycloak per realm, Entra per tenant, key-set URLs that change
//! with a migration). Configuring the issuer URL only, as a client does, keeps the resource
//! server right when they do:
//!
//! - The metadata is looked for, in order, at `{issuer}/.well-known/openid-configuration`
//!   (OpenID Connect Discovery 1.0 §4), at `/.well-known/oauth-authorization-server{path}`
//!   (RFC 8414 §3.1, the well-known segment inserted before the issuer's path) and at
//!   `/.well-known/openid-configuration{path}` (RFC 8414 §5); an issuer without a path has two
//!   candidates. A terminating `/` of the issuer is dropped before building them. The first
//!   document that is valid is used: [`metadata_urls`] lists the candidates.
//! - The document's `issuer` must be **identical** to the configured issuer (RFC 8414 §3.3,
//!   OpenID Connect Discovery §4.3): no case folding, no trailing-slash fixing. Otherwise the
//!   document is not used, since a token's `iss` must equal it as well.
//! - `jwks_uri` is required: an absolute `http`/`https` URL, and `https` when the issuer is.
//! - The keys are then a [`RemoteKeys`] with its cache rules (max-age, background refresh,
//!   one rate-limited single-flight refetch for an unknown `kid`, old keys kept on failure).
//!   The metadata is refreshed on the same rules: a key fetch made after the metadata's own
//!   `Cache-Control: max-age` (clamped like the keys', 5 min without one) re-reads the document
//!   first and follows a new `jwks_uri`; if the document cannot be read or fails the checks,
//!   the last good `jwks_uri` is kept.
//!
//! Answers larger than 256 KiB are refused; each fetch is bounded by the HTTP client's timeout
//! (5 s by default) and the whole key fetch by [`RemoteKeys::fetch_timeout`].
//!
//! ```no_run
//! use mcp_edge::auth::{Issuer, JwtVerifier, ScopeClaims};
//!
//! # async fn run() -> Result<(), mcp_edge::auth::DiscoveryError> {
//! let keycloak = Issuer::discover("https://sso.example.com/realms/acme")
//!     .await?
//!     .audience("mcp-server")
//!     .scopes_from(ScopeClaims::keycloak("mcp-server"));
//! let verifier = JwtVerifier::new("https://mcp.example.com/mcp").issuer(keycloak);
//! # let _ = verifier;
//! # Ok(())
//! # }
//! ```
//!
//! # Cancel safety
//!
//! [`Issuer::discover`] and [`Discovery::metadata`] hold nothing between their awaits:
//! dropping them abandons the requests and leaves nothing behind. Later refreshes run inside
//! the key fetches of [`RemoteKeys`], whose cancel safety they share.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::jwks::{FetchFuture, FetchKeys, HttpJwks, RemoteKeys, cache_control_max_age};
use super::jwt::Issuer;

const MAX_METADATA_BYTES: usize = 256 * 1024;
const DEFAULT_METADATA_AGE: Duration = Duration::from_secs(300);
const METADATA_AGE_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(30), Duration::from_secs(24 * 3600));

/// An authorization server's metadata (RFC 8414 §2, OpenID Connect Discovery §3): the
/// fields a resource server and its operators use; the rest is kept in
/// [`other`](AuthorizationServerMetadata::other).
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct AuthorizationServerMetadata {
    /// The issuer identifier, identical to the configured one.
    pub issuer: String,
    /// Where the signing keys are.
    pub jwks_uri: String,
    /// The token endpoint, if any.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// The scopes the server announces.
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
    /// The grant types it supports.
    #[serde(default)]
    pub grant_types_supported: Option<Vec<String>>,
    /// The introspection endpoint (RFC 7662), if any.
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    /// Every other field of the document.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Why discovery failed (the text names each URL tried and what was wrong with it; it is for
/// logs and start-up errors, never sent to clients).
#[derive(Debug, Clone)]
pub struct DiscoveryError(String);

impl DiscoveryError {
    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "issuer discovery failed: {}", self.0)
    }
}

impl std::error::Error for DiscoveryError {}

/// The metadata URLs tried for `issuer`, in order (see the [module docs](self)). An error
/// when `issuer` is not an absolute `http`/`https` URL without query or fragment (OpenID
/// Connect Discovery §2, RFC 8414 §2).
pub fn metadata_urls(issuer: &str) -> Result<Vec<String>, DiscoveryError> {
    let (scheme, rest) = issuer
        .split_once("://")
        .ok_or_else(|| DiscoveryError(format!("issuer `{issuer}` is not an absolute URL")))?;
    if !(scheme == "https" || scheme == "http") {
        return Err(DiscoveryError(format!(
            "issuer `{issuer}` is not an http(s) URL"
        )));
    }
    if issuer.contains(['?', '#']) {
        return Err(DiscoveryError(format!(
            "issuer `{issuer}` has a query or fragment"
        )));
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.is_empty() {
        return Err(DiscoveryError(format!("issuer `{issuer}` has no host")));
    }
    let path = path.trim_end_matches('/');
    let origin = format!("{scheme}://{authority}");
    let mut urls = vec![
        format!("{origin}{path}/.well-known/openid-configuration"),
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
    ];
    if !path.is_empty() {
        urls.push(format!("{origin}/.well-known/openid-configuration{path}"));
    }
    Ok(urls)
}

/// Discovery with options: the HTTP client and the key cache's rules.
/// [`Issuer::discover`] is `Discovery::new(url).issuer()`.
pub struct Discovery {
    issuer: String,
    client: Option<reqwest::Client>,
    keys: Option<Box<dyn FnOnce(RemoteKeys) -> RemoteKeys + Send>>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Discovery {
    /// Discovery of the issuer identified by `issuer` (its exact `iss` value).
    pub fn new(issuer: impl Into<String>) -> Self {
        Discovery {
            issuer: issuer.into(),
            client: None,
            keys: None,
        }
    }

    /// Fetches with your client (proxies, TLS roots, …) instead of one that times out after
    /// 5 s.
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Tunes the key cache (`|keys| keys.min_refetch_interval(...)`).
    pub fn keys(
        mut self,
        configure: impl FnOnce(RemoteKeys) -> RemoteKeys + Send + 'static,
    ) -> Self {
        self.keys = Some(Box::new(configure));
        self
    }

    fn http(&self) -> reqwest::Client {
        self.client
            .clone()
            .unwrap_or_else(super::default_http_client)
    }

    /// Reads and checks the issuer's metadata, without fetching keys.
    pub async fn metadata(&self) -> Result<AuthorizationServerMetadata, DiscoveryError> {
        discover(&self.http(), &self.issuer)
            .await
            .map(|found| found.metadata)
    }

    /// Reads the metadata, then fetches the keys once (so a misconfigured issuer fails at
    /// start-up, not at the first request), and returns the issuer.
    pub async fn issuer(self) -> Result<Issuer, DiscoveryError> {
        let client = self.http();
        let found = discover(&client, &self.issuer).await?;
        let fetcher = DiscoveredJwks {
            shared: Arc::new(Shared {
                issuer: self.issuer.clone(),
                client,
                state: Mutex::new(MetadataState {
                    url: found.url,
                    jwks_uri: found.metadata.jwks_uri,
                    stale_at: Instant::now() + found.max_age,
                }),
            }),
        };
        let mut keys = RemoteKeys::new(fetcher);
        if let Some(configure) = self.keys {
            keys = configure(keys);
        }
        keys.prefetch()
            .await
            .map_err(|e| DiscoveryError(format!("{}: {e}", self.issuer)))?;
        Ok(Issuer::remote(self.issuer, keys))
    }
}

impl Issuer {
    /// The issuer identified by `issuer`, its keys found from its OpenID Connect or RFC 8414
    /// metadata and kept fresh on the key cache's rules (see the
    /// [discovery module](super::discovery)). Fails when no metadata document is valid for
    /// this exact issuer or its keys cannot be fetched once.
    pub async fn discover(issuer: impl Into<String>) -> Result<Issuer, DiscoveryError> {
        Discovery::new(issuer).issuer().await
    }
}

/// A metadata document found, where, and for how long.
struct Found {
    url: String,
    metadata: AuthorizationServerMetadata,
    max_age: Duration,
}

async fn discover(client: &reqwest::Client, issuer: &str) -> Result<Found, DiscoveryError> {
    let mut failures = Vec::new();
    for url in metadata_urls(issuer)? {
        match fetch_metadata(client, issuer, &url).await {
            Ok(found) => return Ok(found),
            Err(why) => failures.push(format!("{url}: {why}")),
        }
    }
    Err(DiscoveryError(failures.join("; ")))
}

async fn fetch_metadata(
    client: &reqwest::Client,
    issuer: &str,
    url: &str,
) -> Result<Found, String> {
    let mut response = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let max_age = response
        .headers()
        .get(http::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(cache_control_max_age)
        .unwrap_or(DEFAULT_METADATA_AGE)
        .clamp(METADATA_AGE_BOUNDS.0, METADATA_AGE_BOUNDS.1);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_METADATA_BYTES {
            return Err("metadata larger than 256 KiB".into());
        }
        body.extend_from_slice(&chunk);
    }
    let metadata: AuthorizationServerMetadata =
        serde_json::from_slice(&body).map_err(|e| format!("not valid metadata: {e}"))?;
    check(issuer, &metadata)?;
    Ok(Found {
        url: url.to_owned(),
        metadata,
        max_age,
    })
}

/// The checks of RFC 8414 §3.3 and OpenID Connect Discovery §4.3, and a usable `jwks_uri`.
fn check(issuer: &str, metadata: &AuthorizationServerMetadata) -> Result<(), String> {
    if metadata.issuer != issuer {
        return Err(format!(
            "its issuer `{}` is not `{issuer}`",
            metadata.issuer
        ));
    }
    let jwks = &metadata.jwks_uri;
    let https = jwks.starts_with("https://");
    if !(https || jwks.starts_with("http://")) || jwks.contains('#') {
        return Err(format!("jwks_uri `{jwks}` is not an absolute http(s) URL"));
    }
    if issuer.starts_with("https://") && !https {
        return Err(format!("jwks_uri `{jwks}` is not https, but the issuer is"));
    }
    Ok(())
}

/// The key fetcher of a discovered issuer: the JWKS at the current `jwks_uri`, the metadata
/// re-read first once stale.
struct DiscoveredJwks {
    shared: Arc<Shared>,
}

struct Shared {
    issuer: String,
    client: reqwest::Client,
    state: Mutex<MetadataState>,
}

struct MetadataState {
    url: String,
    jwks_uri: String,
    stale_at: Instant,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, MetadataState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn jwks_uri(&self) -> String {
        let (url, stale) = {
            let state = self.lock();
            (state.url.clone(), Instant::now() >= state.stale_at)
        };
        if stale {
            match fetch_metadata(&self.client, &self.issuer, &url).await {
                Ok(found) => {
                    let mut state = self.lock();
                    state.jwks_uri = found.metadata.jwks_uri;
                    state.stale_at = Instant::now() + found.max_age;
                }
                Err(why) => {
                    tracing::warn!(issuer = %self.issuer, %url, %why,
                        "issuer metadata refresh failed; keeping the last jwks_uri");
                    // Retried with the next key fetch (rate-limited by the key cache).
                }
            }
        }
        self.lock().jwks_uri.clone()
    }
}

impl FetchKeys for DiscoveredJwks {
    fn fetch(&self) -> FetchFuture {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let uri = shared.jwks_uri().await;
            HttpJwks::with_client(uri, shared.client.clone())
                .fetch()
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_oidc_then_rfc8414_path_rules() {
        assert_eq!(
            metadata_urls("https://sso.example.com/realms/acme").unwrap(),
            [
                "https://sso.example.com/realms/acme/.well-known/openid-configuration",
                "https://sso.example.com/.well-known/oauth-authorization-server/realms/acme",
                "https://sso.example.com/.well-known/openid-configuration/realms/acme",
            ]
        );
        // Auth0's issuer ends with a slash: dropped before appending or inserting.
        assert_eq!(
            metadata_urls("https://acme.eu.auth0.com/").unwrap(),
            [
                "https://acme.eu.auth0.com/.well-known/openid-configuration",
                "https://acme.eu.auth0.com/.well-known/oauth-authorization-server",
            ]
        );
        assert_eq!(
            metadata_urls("http://127.0.0.1:8080").unwrap(),
            [
                "http://127.0.0.1:8080/.well-known/openid-configuration",
                "http://127.0.0.1:8080/.well-known/oauth-authorization-server",
            ]
        );
        for bad in [
            "sso.example.com",
            "ftp://x",
            "https://x/?a=b",
            "https://x#f",
            "https:///p",
        ] {
            assert!(metadata_urls(bad).is_err(), "{bad}");
        }
    }

    /// A metadata document served at `/.well-known/openid-configuration`, whose `issuer` and
    /// `jwks_uri` the test changes; the keys at `/jwks-a` and `/jwks-b`.
    async fn metadata_server(
        doc: Arc<Mutex<serde_json::Value>>,
    ) -> (String, tokio::task::JoinHandle<()>) {
        use axum::routing::get;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let doc = doc.lock().unwrap().clone();
                    async move { axum::Json(doc) }
                }),
            )
            .route(
                "/jwks-a",
                get(|| async { axum::Json(serde_json::json!({"keys": []})) }),
            )
            .route(
                "/jwks-b",
                get(|| async { axum::Json(serde_json::json!({"keys": []})) }),
            );
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (origin, task)
    }

    #[tokio::test]
    async fn stale_metadata_is_reread_and_a_bad_document_keeps_the_last_jwks_uri() {
        let doc = Arc::new(Mutex::new(serde_json::Value::Null));
        let (origin, task) = metadata_server(Arc::clone(&doc)).await;
        *doc.lock().unwrap() =
            serde_json::json!({"issuer": origin, "jwks_uri": format!("{origin}/jwks-a")});
        let found = discover(&reqwest::Client::new(), &origin).await.unwrap();
        assert_eq!(
            found.url,
            format!("{origin}/.well-known/openid-configuration")
        );
        assert_eq!(found.max_age, DEFAULT_METADATA_AGE);
        let shared = Shared {
            issuer: origin.clone(),
            client: reqwest::Client::new(),
            state: Mutex::new(MetadataState {
                url: found.url,
                jwks_uri: found.metadata.jwks_uri,
                stale_at: Instant::now() + Duration::from_secs(60),
            }),
        };
        // Fresh: not re-read, even though the document changed.
        *doc.lock().unwrap() =
            serde_json::json!({"issuer": origin, "jwks_uri": format!("{origin}/jwks-b")});
        assert_eq!(shared.jwks_uri().await, format!("{origin}/jwks-a"));
        // Stale: re-read, the new jwks_uri followed.
        shared.lock().stale_at = Instant::now();
        assert_eq!(shared.jwks_uri().await, format!("{origin}/jwks-b"));
        // A document for another issuer is not used: the last good jwks_uri stays.
        *doc.lock().unwrap() = serde_json::json!({"issuer": "http://evil.example",
            "jwks_uri": "http://evil.example/jwks"});
        shared.lock().stale_at = Instant::now();
        assert_eq!(shared.jwks_uri().await, format!("{origin}/jwks-b"));
        // The keys are fetched from there.
        let fetcher = DiscoveredJwks {
            shared: Arc::new(shared),
        };
        assert!(fetcher.fetch().await.unwrap().set.keys.is_empty());
        task.abort();
    }

    fn metadata(issuer: &str, jwks: &str) -> AuthorizationServerMetadata {
        serde_json::from_value(serde_json::json!({"issuer": issuer, "jwks_uri": jwks,
            "token_endpoint": format!("{issuer}/token"), "response_types_supported": ["code"]}))
        .unwrap()
    }

    #[test]
    fn the_issuer_must_match_exactly_and_jwks_uri_must_not_downgrade() {
        let iss = "https://acme.eu.auth0.com/";
        assert!(
            check(
                iss,
                &metadata(iss, "https://acme.eu.auth0.com/.well-known/jwks.json")
            )
            .is_ok()
        );
        let m = metadata(
            "https://acme.eu.auth0.com",
            "https://acme.eu.auth0.com/jwks",
        );
        assert!(check(iss, &m).unwrap_err().contains("is not"));
        let m = metadata("https://SSO.example.com", "https://sso.example.com/jwks");
        assert!(check("https://sso.example.com", &m).is_err());
        let m = metadata(iss, "http://acme.eu.auth0.com/jwks");
        assert!(check(iss, &m).unwrap_err().contains("not https"));
        let m = metadata(iss, "/jwks");
        assert!(check(iss, &m).is_err());
        let http = "http://127.0.0.1:9";
        assert!(check(http, &metadata(http, "http://127.0.0.1:9/jwks")).is_ok());
        assert_eq!(
            metadata(iss, "https://x/jwks").other["response_types_supported"],
            serde_json::json!(["code"])
        );
    }
}
