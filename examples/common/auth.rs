//! The auth flags of `examples/server.rs` and `examples/gateway.rs`: a static token, or JWTs
//! from an identity provider's JWKS, per-tool scopes, and the MCP endpoint's public URL for the
//! RFC 9728 metadata. Without a token flag the endpoint is open: the layer is `None`, and
//! `McpEdge::auth_opt` keeps one router either way. The metadata is served (and challenges
//! point at it) only with `--jwks-url`: a static token has no authorization server to name.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use axum::Router;
use mcp_edge::auth::{
    CachedVerifier, ProtectedResource, ProtectedResourceMetadata, ScopePolicy, StaticTokens,
    TokenVerifier, VerifyError,
};
use mcp_edge::observe::ReadyFlag;
use mcp_edge::{AuthLayer, GuardLayer, Principal, PublicUrl};
use tower::Layer;

pub const AUTH_USAGE: &str =
    "  --token TOKEN       require `Authorization: Bearer TOKEN` (a static key, quick start;
                      it is granted every scope named by --require-scope)
  --jwks-url URL      accept JWT access tokens signed by the keys at URL (needs
                      `--features jwks-fetch`), with --issuer ISS (the authorization
                      server the metadata names) and --audience AUD (default: PUBLIC_URL)
  --require-scope TOOL=SCOPE
                      calling tool TOOL needs SCOPE (repeatable; globs: deploy_*=ops)
  --public-url URL    the MCP endpoint's full URL as clients use it (e.g.
                      https://mcp.example.com/mcp): the `resource` of the RFC 9728
                      metadata and the token audience, whatever the proxy headers say";

/// The auth-related command line flags.
#[derive(Default)]
pub struct AuthOptions {
    token: Option<String>,
    jwks_url: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
    require: BTreeMap<String, Vec<String>>,
    /// The public base URL for the guard: `--public-url` without the `/mcp` the example
    /// serves at (`https://h/tenant/mcp` → `https://h/tenant`).
    pub public_url: Option<PublicUrl>,
    /// `--public-url` itself: the MCP endpoint's canonical URL (R56), the RFC 9728
    /// `resource` and the default token audience.
    resource_url: Option<String>,
}

/// What the examples stack and mount.
pub struct AuthSetup {
    /// For `McpEdge::auth_opt`: `None` when no token flag was given (an open endpoint).
    pub layer: Option<AuthLayer<ExampleVerifier, ScopePolicy>>,
    /// The RFC 9728 metadata, when auth is on (served only with an authorization server).
    metadata: Option<ProtectedResourceMetadata>,
    /// For the start-up banner.
    pub description: String,
    /// With `--jwks-url`: the issuer's keys, fetched at start by [`AuthSetup::fetch_keys`].
    keys: Option<Keys>,
}

/// The keys of `--jwks-url` and the flag set once they are fetched.
#[cfg(feature = "jwks-fetch")]
type Keys = (mcp_edge::auth::RemoteKeys, ReadyFlag);
#[cfg(not(feature = "jwks-fetch"))]
type Keys = std::convert::Infallible;

impl AuthSetup {
    /// Adds the protected resource metadata at both of its paths when auth is on (it answers
    /// `404` unless an authorization server issues the tokens, `--jwks-url --issuer`; R55): behind
    /// `guard` (for the public URL) but not behind auth, since clients read it before they
    /// have a token. Call it after the MCP endpoint's `.layer(..)`, so the edge stack does not
    /// wrap these routes.
    pub fn route_metadata(&self, app: Router, guard: &GuardLayer) -> Router {
        // Mounted even with --token: there it answers 404, rather than the auth layer's 401.
        let Some(metadata) = &self.metadata else {
            return app;
        };
        let (root, inserted) = metadata.paths();
        app.route_service(&root, guard.layer(metadata.clone()))
            .route_service(&inserted, guard.layer(metadata.clone()))
    }

    /// With `--jwks-url`: fetches the key set now, in the background, retrying (1 s, doubling
    /// up to 30 s) until the endpoint answers, so the first request does not wait for it and
    /// a readiness probe can wait for the keys: the returned flag is set once they are in
    /// (give it to `Health::wait_for`). `None` without `--jwks-url`.
    #[allow(dead_code)] // examples/aggregate.rs and gateway.rs have no use for it
    pub fn fetch_keys(&self) -> Option<ReadyFlag> {
        #[cfg(feature = "jwks-fetch")]
        {
            let (keys, ready) = self.keys.clone()?;
            tokio::spawn(async move {
                let mut pause = std::time::Duration::from_secs(1);
                while let Err(error) = keys.prefetch().await {
                    eprintln!("JWKS fetch failed ({error}); retrying in {pause:?}");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(30));
                }
            });
            Some(ready)
        }
        #[cfg(not(feature = "jwks-fetch"))]
        self.keys.map(|never| match never {})
    }
}

type BoxedVerify = Pin<Box<dyn Future<Output = Result<Principal, VerifyError>> + Send>>;
/// Either verifier behind one type (a boxed closure is a `TokenVerifier`).
pub type ExampleVerifier = Box<dyn Fn(&str) -> BoxedVerify + Send + Sync>;

fn boxed<V: TokenVerifier>(verifier: V) -> ExampleVerifier {
    Box::new(move |token: &str| Box::pin(verifier.verify(token)) as BoxedVerify)
}

impl AuthOptions {
    /// Takes `flag` if it is one of ours.
    pub fn parse_flag(
        &mut self,
        flag: &str,
        mut value: impl FnMut() -> Option<String>,
    ) -> Result<bool, String> {
        let mut need = |what: &str| value().ok_or(format!("{flag} needs {what}"));
        match flag {
            "--token" => self.token = Some(need("a token")?),
            "--jwks-url" => self.jwks_url = Some(need("a URL")?),
            "--issuer" => self.issuer = Some(need("an issuer URL")?),
            "--audience" => self.audience = Some(need("an audience")?),
            "--require-scope" => {
                let rule = need("TOOL=SCOPE")?;
                let (tool, scope) = rule
                    .split_once('=')
                    .filter(|(t, s)| !t.is_empty() && !s.is_empty())
                    .ok_or(format!("--require-scope `{rule}`: expected TOOL=SCOPE"))?;
                self.require
                    .entry(tool.to_owned())
                    .or_default()
                    .push(scope.to_owned());
            }
            "--public-url" => {
                let url = need("a URL")?;
                let full: PublicUrl = url
                    .parse()
                    .map_err(|e| format!("--public-url `{url}`: {e}"))?;
                if full.path().is_empty() {
                    return Err(format!(
                        "--public-url `{url}`: give the MCP endpoint's full URL, e.g. {}/mcp",
                        full.origin()
                    ));
                }
                let base = full.path().strip_suffix("/mcp").unwrap_or_default();
                let base: PublicUrl = format!("{}{base}", full.origin())
                    .parse()
                    .map_err(|e| format!("--public-url `{url}`: {e}"))?;
                self.resource_url = Some(full.to_string());
                self.public_url = Some(base);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The auth layer and metadata service, or neither to run open.
    pub fn build(&self) -> Result<AuthSetup, String> {
        let scopes: Vec<String> = {
            let mut all: Vec<String> = self.require.values().flatten().cloned().collect();
            all.sort();
            all.dedup();
            all
        };
        let mut policy = ScopePolicy::new();
        for (tool, needed) in &self.require {
            policy = policy.tool(tool, needed.iter().map(String::as_str));
        }
        let resource_url = self.resource_url.clone();
        let (verifier, issuers, description, keys) = match (&self.token, &self.jwks_url) {
            (Some(_), Some(_)) => return Err("use --token or --jwks-url, not both".into()),
            (None, None) => {
                if !self.require.is_empty() || self.issuer.is_some() || self.audience.is_some() {
                    return Err(
                        "--require-scope, --issuer and --audience need --token or --jwks-url"
                            .into(),
                    );
                }
                return Ok(AuthSetup {
                    layer: None,
                    metadata: None,
                    description: "none: this endpoint is OPEN, anyone who can reach it may \
                                  call every tool (use --token or --jwks-url)"
                        .to_owned(),
                    keys: None,
                });
            }
            (Some(token), None) => {
                let principal = Principal::new("token-user").with_scopes(scopes.clone());
                let tokens = StaticTokens::new().token(token, principal);
                (
                    boxed(tokens),
                    vec![],
                    "a static bearer token (--token)".to_owned(),
                    None,
                )
            }
            (None, Some(url)) => jwt(url, self, resource_url.as_deref())?,
        };
        let mut resource = ProtectedResource::new(issuers)
            .mcp_path("/mcp")
            .scopes_supported(scopes.clone());
        if let Some(url) = &resource_url {
            resource = resource.resource(url.clone());
        }
        let layer = AuthLayer::new(verifier)
            .policy(policy)
            .protected_resource(resource.clone())
            .challenge_scopes(scopes);
        Ok(AuthSetup {
            layer: Some(layer),
            metadata: Some(ProtectedResourceMetadata::new(resource)),
            description: format!("bearer tokens required: {description}"),
            keys,
        })
    }
}

/// The verifier, its issuers, a description, and the keys to fetch at start.
type JwtSetup = (ExampleVerifier, Vec<String>, String, Option<Keys>);

#[cfg(feature = "jwks-fetch")]
fn jwt(url: &str, options: &AuthOptions, resource_url: Option<&str>) -> Result<JwtSetup, String> {
    use mcp_edge::auth::{HttpJwks, Issuer, JwtVerifier, RemoteKeys};
    let issuer = options.issuer.clone().ok_or("--jwks-url needs --issuer")?;
    let audience = options
        .audience
        .clone()
        .or(resource_url.map(str::to_owned))
        .ok_or("--jwks-url needs --audience (or --public-url)")?;
    // The keys are fetched at start (`AuthSetup::fetch_keys`), which sets `ready`.
    let ready = ReadyFlag::new();
    let keys = RemoteKeys::new(HttpJwks::new(url)).ready_flag(ready.clone());
    let verifier =
        JwtVerifier::new(audience.clone()).issuer(Issuer::remote(issuer.clone(), keys.clone()));
    let description = format!("JWTs from {issuer} (keys {url}, audience {audience})");
    Ok((
        boxed(CachedVerifier::new(verifier)),
        vec![issuer],
        description,
        Some((keys, ready)),
    ))
}

#[cfg(not(feature = "jwks-fetch"))]
fn jwt(_: &str, _: &AuthOptions, _: Option<&str>) -> Result<JwtSetup, String> {
    let _ = CachedVerifier::<StaticTokens>::new;
    Err("--jwks-url needs the jwks-fetch feature: cargo run --example server --features jwks-fetch -- …".into())
}
