//! RFC 9728 Protected Resource Metadata (R54–R56): where a client learns which authorization
//! servers issue tokens for this MCP server, and the URL that must equal the token audience.

use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use tower_service::Service;

use crate::context::{PublicUrl, RequestOrigin};
use crate::error::EdgeBody;

/// The well-known path prefix of RFC 9728 §3.
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-protected-resource";

/// What this MCP server is as an OAuth protected resource: its canonical URL, the
/// authorization servers that issue tokens for it, the scopes it knows.
///
/// The canonical URL comes from configuration ([`resource`](ProtectedResource::resource)),
/// or, per request, from the [`RequestOrigin`] the [`GuardLayer`](crate::guard::GuardLayer)
/// put in the extensions (its configured public URL, or the `Forwarded` / `X-Forwarded-*`
/// headers of a *trusted* proxy, so it reads `https://` behind TLS termination), or, without
/// a guard, from the request's own `Host` and scheme (no proxy header is believed). Stack the
/// guard outside both the auth layer and the metadata service.
#[derive(Clone, Default)]
pub struct ProtectedResource {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    resource: Option<String>,
    mcp_path: Option<String>,
    authorization_servers: Vec<String>,
    scopes_supported: Vec<String>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
    extra: serde_json::Map<String, serde_json::Value>,
}

impl fmt::Debug for ProtectedResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectedResource")
            .field("resource", &self.inner.resource)
            .field("mcp_path", &self.inner.mcp_path)
            .field("authorization_servers", &self.inner.authorization_servers)
            .field("scopes_supported", &self.inner.scopes_supported)
            .finish_non_exhaustive()
    }
}

impl ProtectedResource {
    /// A resource whose tokens come from these authorization servers (issuer URLs).
    pub fn new<I, T>(authorization_servers: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let mut this = ProtectedResource::default();
        this.edit().authorization_servers =
            authorization_servers.into_iter().map(Into::into).collect();
        this
    }

    fn edit(&mut self) -> &mut Inner {
        if Arc::get_mut(&mut self.inner).is_none() {
            let old = &self.inner;
            self.inner = Arc::new(Inner {
                resource: old.resource.clone(),
                mcp_path: old.mcp_path.clone(),
                authorization_servers: old.authorization_servers.clone(),
                scopes_supported: old.scopes_supported.clone(),
                resource_name: old.resource_name.clone(),
                resource_documentation: old.resource_documentation.clone(),
                extra: old.extra.clone(),
            });
        }
        Arc::get_mut(&mut self.inner).expect("just made unique")
    }

    /// The canonical URL of the MCP endpoint, e.g. `https://mcp.example.com/mcp` (R56): the
    /// `resource` of the metadata, and the audience tokens must carry. A trailing slash is
    /// removed.
    pub fn resource(mut self, url: impl Into<String>) -> Self {
        let mut url = url.into();
        while url.ends_with('/') && url.matches('/').count() > 3 {
            url.pop();
        }
        self.edit().resource = Some(url);
        self
    }

    /// The MCP endpoint path (default: the path of the request, or of the configured
    /// resource). Set it when the auth layer runs inside a nested router that strips the
    /// prefix (axum's `nest_service("/mcp", …)` shows the inner service the path `/`), and
    /// for the metadata service at the root well-known path.
    pub fn mcp_path(mut self, path: impl Into<String>) -> Self {
        self.edit().mcp_path = Some(path.into());
        self
    }

    /// `scopes_supported`: keep it to the minimal baseline (R55, R66).
    pub fn scopes_supported<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.edit().scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// `resource_name`.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.edit().resource_name = Some(name.into());
        self
    }

    /// `resource_documentation`.
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.edit().resource_documentation = Some(url.into());
        self
    }

    /// Any other metadata field (e.g. `jwks_uri`).
    pub fn field(mut self, name: impl Into<String>, value: serde_json::Value) -> Self {
        self.edit().extra.insert(name.into(), value);
        self
    }

    /// The authorization servers.
    pub fn authorization_servers(&self) -> &[String] {
        &self.inner.authorization_servers
    }

    /// The configured canonical URL, if any.
    pub fn configured_resource(&self) -> Option<&str> {
        self.inner.resource.as_deref()
    }

    /// The canonical resource URL for a request to the MCP endpoint.
    pub fn resource_url(&self, request: &Parts) -> Cow<'_, str> {
        if let Some(url) = &self.inner.resource {
            return Cow::Borrowed(url);
        }
        let path = self
            .inner
            .mcp_path
            .as_deref()
            .unwrap_or_else(|| request.uri.path());
        Cow::Owned(join(request, trim_path(path)))
    }

    /// The URL of the metadata document for the MCP endpoint: the path-inserted form of RFC
    /// 9728 §3.1 (`https://h/.well-known/oauth-protected-resource/mcp`).
    pub fn metadata_url(&self, request: &Parts) -> String {
        let resource = self.resource_url(request);
        metadata_url_for(&resource)
    }

    /// The metadata JSON for a request.
    pub fn document(&self, request: &Parts) -> serde_json::Value {
        let mut doc = serde_json::Map::new();
        // RFC 9728 §3.3: `resource` is the identifier the well-known URL was formed from: the
        // MCP URL at the path-inserted location, the bare origin at the root one.
        let path = request.uri.path();
        let suffix = trim_path(path.strip_prefix(WELL_KNOWN_PATH).unwrap_or(path));
        let resource = match &self.inner.resource {
            Some(url) if suffix.is_empty() => origin_of(url).to_owned(),
            Some(url) => url.clone(),
            None => join(request, suffix),
        };
        doc.insert("resource".into(), resource.into());
        doc.insert(
            "authorization_servers".into(),
            self.inner.authorization_servers.clone().into(),
        );
        if !self.inner.scopes_supported.is_empty() {
            doc.insert(
                "scopes_supported".into(),
                self.inner.scopes_supported.clone().into(),
            );
        }
        doc.insert("bearer_methods_supported".into(), vec!["header"].into());
        if let Some(name) = &self.inner.resource_name {
            doc.insert("resource_name".into(), name.clone().into());
        }
        if let Some(url) = &self.inner.resource_documentation {
            doc.insert("resource_documentation".into(), url.clone().into());
        }
        for (k, v) in &self.inner.extra {
            doc.insert(k.clone(), v.clone());
        }
        serde_json::Value::Object(doc)
    }
}

/// The public URL of the request (from the guard's [`RequestOrigin`], else its own `Host`)
/// joined with `path`.
fn join(request: &Parts, path: &str) -> String {
    let url = match request.extensions.get::<RequestOrigin>() {
        Some(origin) => Some(origin.public_url().clone()),
        None => PublicUrl::from_host(&request.uri, &request.headers),
    };
    match url {
        Some(url) => url.join(path),
        None => format!("http://localhost{path}"),
    }
}

fn trim_path(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() { "" } else { trimmed }
}

/// `scheme://authority` of an absolute URL.
fn origin_of(url: &str) -> &str {
    let after = url.find("://").map_or(0, |at| at + 3);
    let end = url[after..].find('/').map_or(url.len(), |at| after + at);
    &url[..end]
}

/// The RFC 9728 path-inserted metadata URL for a resource URL.
pub fn metadata_url_for(resource: &str) -> String {
    let (scheme, rest) = resource.split_once("://").unwrap_or(("http", resource));
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    format!("{scheme}://{authority}{WELL_KNOWN_PATH}{}", trim_path(path))
}

/// Serves the RFC 9728 document, unauthenticated: `200 application/json` for `GET` (and
/// `HEAD`), `405` for other methods.
///
/// Mount it at both [`WELL_KNOWN_PATH`] and the path-inserted form for your MCP path (R54),
/// e.g. with axum:
///
/// ```
/// use axum::Router;
/// use mcp_edge::auth::{ProtectedResource, ProtectedResourceMetadata};
///
/// let resource = ProtectedResource::new(["https://auth.example.com"])
///     .resource("https://mcp.example.com/mcp")
///     .scopes_supported(["mcp:tools"]);
/// let metadata = ProtectedResourceMetadata::new(resource);
/// let (root, inserted) = metadata.paths();
/// assert_eq!(inserted, "/.well-known/oauth-protected-resource/mcp");
/// let app: Router = Router::new()
///     .route_service(&root, metadata.clone())
///     .route_service(&inserted, metadata);
/// ```
#[derive(Debug, Clone)]
pub struct ProtectedResourceMetadata {
    resource: ProtectedResource,
}

impl ProtectedResourceMetadata {
    /// Serves the metadata of `resource`.
    pub fn new(resource: ProtectedResource) -> Self {
        ProtectedResourceMetadata { resource }
    }

    /// The two paths to mount it at: the root well-known path and the path-inserted one for
    /// the MCP path (from the configured resource URL or [`ProtectedResource::mcp_path`],
    /// default `/mcp`).
    pub fn paths(&self) -> (String, String) {
        let path = self
            .resource
            .inner
            .mcp_path
            .clone()
            .or_else(|| {
                let url = self.resource.inner.resource.as_deref()?;
                let rest = url.split_once("://")?.1;
                rest.find('/').map(|at| rest[at..].to_owned())
            })
            .unwrap_or_else(|| "/mcp".to_owned());
        (
            WELL_KNOWN_PATH.to_owned(),
            format!("{WELL_KNOWN_PATH}{}", trim_path(&path)),
        )
    }
}

impl<B> Service<Request<B>> for ProtectedResourceMetadata {
    type Response = Response<EdgeBody<http_body_util::Empty<Bytes>>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (parts, _body) = request.into_parts();
        let mut response = if parts.method == Method::GET || parts.method == Method::HEAD {
            let body = serde_json::to_vec(&self.resource.document(&parts)).unwrap_or_default();
            let mut response = Response::new(if parts.method == Method::HEAD {
                EdgeBody::empty()
            } else {
                EdgeBody::full(Bytes::from(body))
            });
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
            response
        } else {
            let mut response = Response::new(EdgeBody::empty());
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        };
        response.headers_mut().insert(
            http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn parts(uri: &str, host: &str) -> Parts {
        Request::get(uri)
            .header("host", host)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn metadata_url_inserts_the_path() {
        assert_eq!(
            metadata_url_for("https://h.example/public/mcp"),
            "https://h.example/.well-known/oauth-protected-resource/public/mcp"
        );
        assert_eq!(
            metadata_url_for("https://h.example"),
            "https://h.example/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            metadata_url_for("https://h.example/"),
            "https://h.example/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn resource_url_from_config_guard_or_host() {
        let configured = ProtectedResource::new(["https://as"]).resource("https://m.example/mcp/");
        assert_eq!(
            configured.resource_url(&parts("/mcp", "evil")),
            "https://m.example/mcp"
        );
        let derived = ProtectedResource::new(["https://as"]);
        assert_eq!(
            derived.metadata_url(&parts("/mcp", "127.0.0.1:8080")),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"
        );
        // A hostile Host header never reaches the challenge as is.
        assert_eq!(
            derived.resource_url(&parts("/mcp", "a\"b")),
            "http://localhost/mcp"
        );
    }

    #[tokio::test]
    async fn serves_json_at_both_paths_and_405_otherwise() {
        let svc = ProtectedResourceMetadata::new(
            ProtectedResource::new(["https://as.example"]).scopes_supported(["mcp:tools"]),
        );
        for path in [
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-protected-resource",
        ] {
            let req = Request::get(path)
                .header("host", "127.0.0.1:9")
                .body(())
                .unwrap();
            let res = svc.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), 200);
            assert_eq!(res.headers()["content-type"], "application/json");
            let body = res.into_body().collect().await.unwrap().to_bytes();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let resource = if path.ends_with("/mcp") {
                "http://127.0.0.1:9/mcp"
            } else {
                "http://127.0.0.1:9"
            };
            assert_eq!(
                json,
                serde_json::json!({
                    "resource": resource,
                    "authorization_servers": ["https://as.example"],
                    "scopes_supported": ["mcp:tools"],
                    "bearer_methods_supported": ["header"],
                })
            );
        }
        let res = svc
            .oneshot(Request::post(WELL_KNOWN_PATH).body(()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), 405);
        assert_eq!(res.headers()["allow"], "GET, HEAD");
    }
}
