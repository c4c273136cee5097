//! An MCP server for your identity provider, behind nginx: one file to copy.
//!
//! - Tokens come from an OpenID provider known by its issuer URL only: its keys are found from
//!   its metadata (`Issuer::discover`) and follow its key rotation.
//! - Its roles become scopes (`ScopeClaims` presets for Keycloak, Entra ID and Auth0), and the
//!   scope policy decides per tool: `whoami` needs `mcp:tools`, `deploy` needs `mcp:deploy`.
//! - Legacy sessions are recorded in Redis and bound to the caller, so several instances
//!   behind one nginx share them, and a session id is useless with someone else's token.
//! - nginx terminates TLS in front (`examples/oidc/nginx.conf`); its `X-Forwarded-*` headers
//!   are believed from its address only (trusted proxies), so the client address is the real
//!   one and a client cannot forge it by going around nginx.
//!
//! ```text
//! MCP_ISSUER=https://sso.example.com/realms/acme \
//! MCP_PRESET=keycloak:mcp-server MCP_AUDIENCE=mcp-server \
//! MCP_ROLE_SCOPES=mcp-operator=mcp:deploy,mcp-user=mcp:tools \
//! MCP_PUBLIC_URL=https://mcp.example.com MCP_REDIS=redis://127.0.0.1:6379 \
//!   cargo run --features jwks-fetch,redis --example oidc
//! ```
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `MCP_ISSUER` | the provider's issuer URL, exactly as in its tokens' `iss` | required |
//! | `MCP_PUBLIC_URL` | the public origin clients use; the MCP endpoint is `{it}/mcp`, the tokens' audience and the RFC 9728 `resource` | required |
//! | `MCP_PRESET` | where the provider puts permissions: `standard` (`scope`/`scp`), `keycloak:<client-id>`, `entra`, `auth0` | `standard` |
//! | `MCP_ROLE_SCOPES` | `role=scope,…`: a role that grants a scope (roles are scopes as they are otherwise) | none |
//! | `MCP_AUDIENCE` | another audience the provider uses for this server (Keycloak: the client id; Entra: `api://<app id>`) | none |
//! | `MCP_REDIS` | Redis for the session records | `redis://127.0.0.1:6379` |
//! | `MCP_TRUSTED_PROXIES` | the addresses nginx connects from, comma-separated | `127.0.0.1` |
//! | `MCP_BIND` | where to listen (nginx's upstream) | `127.0.0.1:8080` |
//!
//! A client needs nothing else: the 401 points at the RFC 9728 metadata, which names the
//! issuer, whose metadata names its token endpoint (the official SDKs follow that chain).

use std::net::SocketAddr;

use axum::Router;
use mcp_edge::auth::{
    CachedVerifier, Issuer, JwtVerifier, ProtectedResource, ProtectedResourceMetadata, ScopeClaims,
    ScopePolicy,
};
use mcp_edge::guard::{PublicUrl, RequestOrigin};
use mcp_edge::store::redis::RedisSessionStore;
use mcp_edge::{
    AuthLayer, GuardLayer, InspectLayer, McpEdge, Principal, SessionLayer, SseLayer, TrustedProxies,
};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{RoleServer, ServerHandler, tool, tool_handler, tool_router};
use tower::Layer;

/// The configuration, from the environment (see the table above).
#[derive(Debug, Clone)]
pub struct Config {
    pub issuer: String,
    pub public_url: String,
    pub preset: String,
    pub role_scopes: Vec<(String, String)>,
    pub audience: Option<String>,
    pub redis: String,
    pub trusted_proxies: Vec<String>,
    pub bind: SocketAddr,
}

impl Config {
    pub fn from_env() -> Result<Config, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let required = |name: &str| var(name).ok_or(format!("{name} is required"));
        let list = |value: Option<String>| -> Vec<String> {
            value
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let role_scopes = list(var("MCP_ROLE_SCOPES"))
            .into_iter()
            .map(|pair| match pair.split_once('=') {
                Some((role, scope)) => Ok((role.to_owned(), scope.to_owned())),
                None => Err(format!("MCP_ROLE_SCOPES: `{pair}` is not role=scope")),
            })
            .collect::<Result<_, _>>()?;
        let bind = var("MCP_BIND").unwrap_or_else(|| "127.0.0.1:8080".into());
        Ok(Config {
            issuer: required("MCP_ISSUER")?,
            public_url: required("MCP_PUBLIC_URL")?,
            preset: var("MCP_PRESET").unwrap_or_else(|| "standard".into()),
            role_scopes,
            audience: var("MCP_AUDIENCE"),
            redis: var("MCP_REDIS").unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            trusted_proxies: match var("MCP_TRUSTED_PROXIES") {
                Some(value) => list(Some(value)),
                None => vec!["127.0.0.1".into()],
            },
            bind: bind
                .parse()
                .map_err(|e| format!("MCP_BIND `{bind}`: {e}"))?,
        })
    }

    /// Where the provider puts permissions, with the role mappings.
    fn scope_claims(&self) -> Result<ScopeClaims, String> {
        let mut claims = match self.preset.split_once(':') {
            Some(("keycloak", client)) => ScopeClaims::keycloak(client),
            None if self.preset == "entra" => ScopeClaims::entra(),
            None if self.preset == "auth0" => ScopeClaims::auth0(),
            None if self.preset == "standard" => ScopeClaims::standard(),
            _ => return Err(format!("MCP_PRESET: unknown preset `{}`", self.preset)),
        };
        for (role, scope) in &self.role_scopes {
            claims = claims.map(role, [scope]);
        }
        Ok(claims)
    }
}

/// The whole application: the MCP endpoint at `/mcp` behind the edge stack, and its RFC 9728
/// metadata beside it. Fails when the provider cannot be discovered or Redis is unusable.
pub async fn app(config: &Config) -> Result<Router, String> {
    let public: PublicUrl = config
        .public_url
        .parse()
        .map_err(|e| format!("MCP_PUBLIC_URL: {e}"))?;
    let resource = public.join("/mcp");

    // The provider, by its issuer URL: keys from its metadata, roles as scopes.
    let mut issuer = Issuer::discover(&config.issuer)
        .await
        .map_err(|e| e.to_string())?
        .scopes_from(config.scope_claims()?);
    if let Some(audience) = &config.audience {
        issuer = issuer.audience(audience);
    }
    let verifier = JwtVerifier::new(&resource).issuer(issuer);
    let policy = ScopePolicy::new()
        .tool("whoami", ["mcp:tools"])
        .tool("deploy", ["mcp:deploy"])
        .default_scopes(["mcp:tools"]);
    let metadata = ProtectedResource::new([&config.issuer])
        .resource(&resource)
        .scopes_supported(["mcp:tools"]);
    let auth = AuthLayer::new(CachedVerifier::new(verifier))
        .policy(policy)
        .protected_resource(metadata.clone());

    // Host checked against the public URL; nginx's forwarded headers believed from its
    // address only.
    let proxies = TrustedProxies::try_new(&config.trusted_proxies)
        .map_err(|e| format!("MCP_TRUSTED_PROXIES: {e}"))?;
    let guard = GuardLayer::new()
        .public_url(public)
        .trusted_proxies(proxies);

    // Session records in Redis, bound to the caller; the edge is the authority on them.
    let store = RedisSessionStore::open(config.redis.as_str()).map_err(|e| e.to_string())?;
    let session = SessionLayer::new().store(store).enforce();

    let edge = McpEdge::builder()
        .guard(guard.clone())
        .inspect(InspectLayer::new())
        .auth(auth)
        .session(session)
        .sse(SseLayer::new());
    // rmcp's own Host check and body limit stay off: the guard and inspect own them.
    let rmcp = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_max_request_body_bytes(usize::MAX);
    let mcp = StreamableHttpService::new(
        || Ok(Tools::new()),
        LocalSessionManager::default().into(),
        rmcp,
    );
    let metadata = ProtectedResourceMetadata::new(metadata);
    let (root, inserted) = metadata.paths();
    Ok(Router::new()
        .nest_service("/mcp", mcp)
        .layer(edge)
        // Unauthenticated (clients read it before they have a token), behind the guard.
        .route_service(&root, guard.layer(metadata.clone()))
        .route_service(&inserted, guard.layer(metadata)))
}

/// The tools: yours go here.
#[derive(Debug, Clone)]
struct Tools {
    tool_router: ToolRouter<Self>,
}

impl Tools {
    fn new() -> Self {
        Tools {
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_router]
impl Tools {
    /// The caller as the edge established it: subject, scopes, client address, session.
    #[tool(description = "Returns who you are: subject, scopes, client address, session id.")]
    async fn whoami(&self, ctx: RequestContext<RoleServer>) -> String {
        let parts = ctx.extensions.get::<http::request::Parts>();
        let principal = parts.and_then(|p| p.extensions.get::<Principal>());
        let origin = parts.and_then(|p| p.extensions.get::<RequestOrigin>());
        serde_json::json!({
            "subject": principal.map(Principal::subject),
            "scopes": principal.map(|p| p.scopes().collect::<Vec<_>>()),
            "client_ip": origin.and_then(RequestOrigin::client_ip),
            "session_id": parts.and_then(|p| p.extensions.get::<mcp_edge::SessionId>()).map(|s| s.as_str()),
        })
        .to_string()
    }

    /// Only for callers with `mcp:deploy` (the policy refuses others with 403).
    #[tool(description = "Pretends to deploy. Needs mcp:deploy.")]
    async fn deploy(&self) -> String {
        "deployed".to_owned()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("mcp-edge-oidc", "0.1.0"))
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let run = async {
        let config = Config::from_env()?;
        let app = app(&config).await?;
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .map_err(|e| format!("bind {}: {e}", config.bind))?;
        println!(
            "MCP endpoint {}/mcp (listening on {}, issuer {})",
            config.public_url, config.bind, config.issuer
        );
        // Timeouts for every phase hyper owns, a connection cap, and the peer address in each
        // request (which the guard checks against the trusted proxies).
        mcp_edge::serve::Server::new()
            .serve_with_shutdown(listener, app, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| e.to_string())
    };
    if let Err(error) = run.await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
