//! RFC 9728 Protected Resource Metadata (R54–R56): where a client learns which authorization
//! servers issue tokens for this MCP server, and the URL that must equal the token audience.

use std::borrow::Cow;
use std::convert::Infallible;
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
/// Configure [`resource`](ProtectedResource::resource) with the MCP endpoint's full public
/// URL (`https://mcp.example.com/mcp`, not the origin): it is the `resource` of the metadata
/// at both well-known URIs and the audience your verifier must require (R55–R57). Without an
/// authorization server ([`new`](ProtectedResource::new) with an empty list, or
/// [`Default`]) nothing is advertised: no metadata document, no `resource_metadata` in
/// challenges (R55 asks for at least one server, and a client has nowhere to get a token).
///
/// The canonical URL comes from configuration ([`resource`](ProtectedResource::resource)),
/// or, per request, from the [`RequestOrigin`] the [`GuardLayer`](crate::guard::GuardLayer)
/// put in the extensions (its configured public URL, or the `Forwarded` / `X-Forwarded-*`
/// headers of a *trusted* proxy, so it reads `https://` behind TLS termination), or, without
/// a guard, from the request's own `Host` and scheme (no proxy header is believed). Stack the
/// guard outside both the auth layer and the metadata service.
#[derive(Clone, Debug, Default)]
pub struct ProtectedResource {
    inner: Arc<Inner>,
}

/// Every field is public metadata (the document this resource serves), so `Debug` shows all.
#[derive(Debug, Default)]
struct Inner {
    resource: Option<String>,
    mcp_path: Option<String>,
    authorization_servers: Vec<String>,
    scopes_supported: Vec<String>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
    extra: serde_json::Map<String, serde_json::Value>,
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

    /// The MCP endpoint path, when no [`resource`](ProtectedResource::resource) URL gives it
    /// (default: the path of the request; for the metadata service, `/mcp`). Set it when the
    /// auth layer runs inside a nested router that strips the prefix (axum's
    /// `nest_service("/mcp", …)` shows the inner service the path `/`), and for the metadata
    /// service at the root well-known path.
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

    /// Whether there is anything to advertise: at least one authorization server (R55).
    /// Without one, no metadata is served and challenges carry no `resource_metadata`.
    pub fn is_advertised(&self) -> bool {
        !self.inner.authorization_servers.is_empty()
    }

    /// The MCP endpoint path: the path of the configured resource URL, else
    /// [`mcp_path`](ProtectedResource::mcp_path), else `None`.
    fn endpoint_path(&self) -> Option<&str> {
        self.inner
            .resource
            .as_deref()
            .and_then(path_of)
            .or(self.inner.mcp_path.as_deref())
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

    /// The URL of the metadata document for the MCP endpoint, the `resource_metadata` of
    /// challenges: the path-inserted form of RFC 9728 §3.1
    /// (`https://h/.well-known/oauth-protected-resource/mcp`). `None` when nothing is
    /// [advertised](ProtectedResource::is_advertised).
    pub fn metadata_url(&self, request: &Parts) -> Option<String> {
        if !self.is_advertised() {
            return None;
        }
        let resource = self.resource_url(request);
        Some(metadata_url_for(&resource))
    }

    /// The metadata JSON for a request to one of the well-known URIs.
    ///
    /// `resource` is the MCP endpoint's URL at both: the configured one, or (without one) the
    /// request's public URL joined with the path-inserted suffix, or at the root with the
    /// endpoint path (default `/mcp`). A client checks that it equals the URL it connected to
    /// and asks for tokens with that audience, so it is never the bare origin, which no token
    /// is accepted for.
    pub fn document(&self, request: &Parts) -> serde_json::Value {
        let mut doc = serde_json::Map::new();
        let path = request.uri.path();
        let suffix = trim_path(path.strip_prefix(WELL_KNOWN_PATH).unwrap_or(path));
        let resource = match &self.inner.resource {
            Some(url) => url.clone(),
            None if suffix.is_empty() => {
                join(request, trim_path(self.endpoint_path().unwrap_or("/mcp")))
            }
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

/// The path of an absolute URL (`None` when it has none).
fn path_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let path = &rest[rest.find('/')?..];
    let path = path.split(['?', '#']).next().unwrap_or_default();
    (!trim_path(path).is_empty()).then_some(path)
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
/// `HEAD`), `405` for other methods, `404` when there is nothing to advertise (no
/// authorization server) or at the root well-known URI once [`at_root`] is off.
///
/// Mount it at both [`WELL_KNOWN_PATH`] and the path-inserted form for your MCP path (R54).
/// The `resource` is the MCP endpoint's URL at both, exactly: clients (the official
/// TypeScript SDK among them) try the path-inserted URI first, then the root, and ask for
/// tokens whose audience is that `resource`. The root URI speaks for the whole origin, so it
/// may name the MCP endpoint only when that is the origin's only protected resource: when the
/// origin has others, turn it off with [`at_root(false)`](ProtectedResourceMetadata::at_root)
/// and mount only [`inserted_path`](ProtectedResourceMetadata::inserted_path).
///
/// [`at_root`]: ProtectedResourceMetadata::at_root
///
/// With axum:
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
    at_root: bool,
}

impl ProtectedResourceMetadata {
    /// Serves the metadata of `resource`, at the root well-known URI too.
    pub fn new(resource: ProtectedResource) -> Self {
        ProtectedResourceMetadata {
            resource,
            at_root: true,
        }
    }

    /// Whether the root well-known URI answers for this resource (default `true`). Right
    /// only when the MCP endpoint is the origin's only protected resource; with `false` a
    /// request to the root gets `404`.
    pub fn at_root(mut self, at_root: bool) -> Self {
        self.at_root = at_root;
        self
    }

    /// Whether there is a document to serve: at least one authorization server
    /// ([`ProtectedResource::is_advertised`]). Mount nothing when there is not.
    pub fn is_advertised(&self) -> bool {
        self.resource.is_advertised()
    }

    /// The two paths to mount it at: the root well-known path and the path-inserted one for
    /// the MCP path (from the configured resource URL, else [`ProtectedResource::mcp_path`],
    /// default `/mcp`).
    pub fn paths(&self) -> (String, String) {
        (WELL_KNOWN_PATH.to_owned(), self.inserted_path())
    }

    /// The path-inserted well-known path for the MCP path (RFC 9728 §3.1), e.g.
    /// `/.well-known/oauth-protected-resource/mcp`.
    pub fn inserted_path(&self) -> String {
        let path = self.resource.endpoint_path().unwrap_or("/mcp");
        format!("{WELL_KNOWN_PATH}{}", trim_path(path))
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
        let path = parts.uri.path();
        let at_root = trim_path(path.strip_prefix(WELL_KNOWN_PATH).unwrap_or(path)).is_empty();
        let mut response = if !self.resource.is_advertised() || (at_root && !self.at_root) {
            let mut response = Response::new(EdgeBody::empty());
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        } else if parts.method == Method::GET || parts.method == Method::HEAD {
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
            derived
                .metadata_url(&parts("/mcp", "127.0.0.1:8080"))
                .unwrap(),
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
            // The MCP endpoint at both: never the bare origin, which no token is for.
            assert_eq!(
                json,
                serde_json::json!({
                    "resource": "http://127.0.0.1:9/mcp",
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

    async fn get_json(svc: &ProtectedResourceMetadata, path: &str) -> (u16, serde_json::Value) {
        let req = Request::get(path).header("host", "evil").body(()).unwrap();
        let res = svc.clone().oneshot(req).await.unwrap();
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }

    #[tokio::test]
    async fn configured_resource_is_the_resource_at_both_paths() {
        let resource = ProtectedResource::new(["https://as.example"])
            .resource("https://m.example/tenant/mcp/")
            .mcp_path("/mcp");
        let svc = ProtectedResourceMetadata::new(resource);
        let (root, inserted) = svc.paths();
        assert_eq!(inserted, "/.well-known/oauth-protected-resource/tenant/mcp");
        for path in [root.as_str(), inserted.as_str()] {
            let (status, json) = get_json(&svc, path).await;
            assert_eq!(status, 200, "{path}");
            assert_eq!(json["resource"], "https://m.example/tenant/mcp", "{path}");
        }
        // One of several protected resources on the origin: the root is not this one's.
        let svc = svc.at_root(false);
        assert_eq!(get_json(&svc, &root).await.0, 404);
        assert_eq!(get_json(&svc, &inserted).await.0, 200);
    }

    #[tokio::test]
    async fn nothing_is_advertised_without_an_authorization_server() {
        let none: [&str; 0] = [];
        let resource = ProtectedResource::new(none).resource("https://m.example/mcp");
        assert!(!resource.is_advertised());
        assert_eq!(resource.metadata_url(&parts("/mcp", "m.example")), None);
        assert_eq!(
            ProtectedResource::default().metadata_url(&parts("/mcp", "h")),
            None
        );
        let svc = ProtectedResourceMetadata::new(resource);
        assert!(!svc.is_advertised());
        for path in [WELL_KNOWN_PATH, "/.well-known/oauth-protected-resource/mcp"] {
            assert_eq!(get_json(&svc, path).await.0, 404, "{path}");
        }
    }
}
