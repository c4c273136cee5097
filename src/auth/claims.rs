//! [`ScopeClaims`]: the scopes of a token, read from where an identity provider puts them.
//!
//! OAuth puts granted scopes in `scope` (space-separated), but identity providers carry
//! permissions elsewhere: Keycloak in `realm_access.roles` and `resource_access.<client>.roles`,
//! Entra ID in `roles` (application permissions) and `scp` as a space-separated string
//! (delegated ones), Auth0 in `permissions`. A [`MapScopes`] turns a verified token's claims
//! into the [`Principal`](crate::Principal)'s scopes, which the scope policy
//! ([`ScopePolicy`](super::ScopePolicy)) then checks like any other; set it per issuer with
//! [`Issuer::scopes_from`](super::Issuer::scopes_from).
//!
//! ```
//! use mcp_edge::auth::{MapScopes, ScopeClaims};
//!
//! let keycloak = ScopeClaims::keycloak("mcp-server").map("mcp-admin", ["mcp:tools", "mcp:deploy"]);
//! let claims = serde_json::json!({
//!     "scope": "profile email",
//!     "realm_access": {"roles": ["default-roles-acme", "mcp-admin"]},
//!     "resource_access": {"mcp-server": {"roles": ["mcp:read"]}, "account": {"roles": ["manage-account"]}},
//! });
//! let scopes = keycloak.scopes(claims.as_object().unwrap());
//! assert_eq!(
//!     scopes,
//!     ["default-roles-acme", "email", "mcp:deploy", "mcp:read", "mcp:tools", "profile"]
//! );
//! ```

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};

/// Turns a verified token's claims into the scopes of its [`Principal`](crate::Principal).
///
/// [`ScopeClaims`] covers the usual identity providers; a closure
/// `Fn(&Map<String, Value>) -> Vec<String>` is one too, for anything else.
pub trait MapScopes: Send + Sync + 'static {
    /// The scopes a token with these claims grants. Called once per verified token (results
    /// are cached with the token by [`CachedVerifier`](super::CachedVerifier)).
    fn scopes(&self, claims: &Map<String, Value>) -> Vec<String>;
}

impl<F> MapScopes for F
where
    F: Fn(&Map<String, Value>) -> Vec<String> + Send + Sync + 'static,
{
    fn scopes(&self, claims: &Map<String, Value>) -> Vec<String> {
        self(claims)
    }
}

impl<M: MapScopes + ?Sized> MapScopes for Arc<M> {
    fn scopes(&self, claims: &Map<String, Value>) -> Vec<String> {
        (**self).scopes(claims)
    }
}

/// Reads scopes from a list of claims, with optional renaming: a [`MapScopes`] with presets
/// for the identity providers MCP servers meet most.
///
/// Each source is a path of object keys into the claims (`["realm_access", "roles"]`). The
/// value found there gives scopes whether it is a space-separated string (`"a b"`) or an array
/// of strings (`["a", "b"]`); anything else gives none, and a missing claim is not an error.
/// Each value is then looked up in the [`map`](ScopeClaims::map) table: a mapped value grants
/// the scopes it maps to (and not itself); an unmapped one grants itself, unless
/// [`only_mapped`](ScopeClaims::only_mapped) is set. The result is sorted and deduplicated.
///
/// | preset | reads |
/// |---|---|
/// | [`standard`](ScopeClaims::standard) | `scope`, `scp` |
/// | [`keycloak`](ScopeClaims::keycloak)`(client)` | `scope`, `scp`, `realm_access.roles`, `resource_access.<client>.roles` |
/// | [`entra`](ScopeClaims::entra) | `scope`, `scp` (Entra sends a string), `roles` |
/// | [`auth0`](ScopeClaims::auth0) | `scope`, `scp`, `permissions` |
///
/// Role names become scope names as they are, so a policy can ask for a Keycloak role or an
/// Entra app role directly (`ScopePolicy::new().tool("deploy_*", ["Deploy.All"])`), or
/// [`map`](ScopeClaims::map) them to the scope names the server publishes.
#[derive(Debug, Clone, Default)]
pub struct ScopeClaims {
    sources: Vec<Vec<String>>,
    mapping: HashMap<String, Vec<String>>,
    only_mapped: bool,
}

impl ScopeClaims {
    /// Reads nothing: add sources with [`claim`](ScopeClaims::claim) and
    /// [`path`](ScopeClaims::path).
    pub fn new() -> Self {
        ScopeClaims::default()
    }

    /// The OAuth claims: `scope` (RFC 8693 §4.2, RFC 9068 §2.2.3) and `scp`, each a
    /// space-separated string or an array.
    pub fn standard() -> Self {
        ScopeClaims::new().claim("scope").claim("scp")
    }

    /// Keycloak: [`standard`](ScopeClaims::standard), the realm roles
    /// (`realm_access.roles`) and the roles of `client` (`resource_access.<client>.roles`,
    /// the client id of this MCP server in the realm; other clients' roles are not read).
    pub fn keycloak(client: impl Into<String>) -> Self {
        ScopeClaims::standard()
            .path(["realm_access", "roles"])
            .path([
                "resource_access".to_owned(),
                client.into(),
                "roles".to_owned(),
            ])
    }

    /// Microsoft Entra ID: [`standard`](ScopeClaims::standard) (Entra's `scp` is a
    /// space-separated string of delegated permissions) and `roles` (app roles, the only
    /// permissions of a client-credentials token).
    pub fn entra() -> Self {
        ScopeClaims::standard().claim("roles")
    }

    /// Auth0: [`standard`](ScopeClaims::standard) and `permissions` (an API with RBAC and
    /// "Add Permissions in the Access Token" on).
    pub fn auth0() -> Self {
        ScopeClaims::standard().claim("permissions")
    }

    /// Also reads the top-level claim `name`.
    pub fn claim(self, name: impl Into<String>) -> Self {
        self.path([name.into()])
    }

    /// Also reads the claim at `path`, a list of object keys (keys may contain dots: a client
    /// id that is a URL is one key).
    pub fn path<I, T>(mut self, path: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let path: Vec<String> = path.into_iter().map(Into::into).collect();
        if !path.is_empty() && !self.sources.contains(&path) {
            self.sources.push(path);
        }
        self
    }

    /// A value (role, permission, scope) that grants `scopes` instead of itself. Repeatable;
    /// mapping a value twice adds to its scopes.
    pub fn map<I, T>(mut self, value: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.mapping
            .entry(value.into())
            .or_default()
            .extend(scopes.into_iter().map(Into::into));
        self
    }

    /// Drops every value that has no [`map`](ScopeClaims::map) entry (so a realm's unrelated
    /// roles never become scopes).
    pub fn only_mapped(mut self) -> Self {
        self.only_mapped = true;
        self
    }

    fn grant<'a>(&'a self, value: &'a str, out: &mut BTreeSet<&'a str>) {
        if value.is_empty() {
            return;
        }
        match self.mapping.get(value) {
            Some(scopes) => out.extend(scopes.iter().map(String::as_str)),
            None if !self.only_mapped => {
                out.insert(value);
            }
            None => {}
        }
    }
}

impl MapScopes for ScopeClaims {
    fn scopes(&self, claims: &Map<String, Value>) -> Vec<String> {
        let mut out = BTreeSet::new();
        for path in &self.sources {
            let Some((first, rest)) = path.split_first() else {
                continue;
            };
            let found = rest
                .iter()
                .try_fold(claims.get(first.as_str()), |value, key| {
                    Some(value?.as_object()?.get(key.as_str()))
                })
                .flatten();
            match found {
                Some(Value::String(text)) => {
                    for value in text.split(' ') {
                        self.grant(value, &mut out);
                    }
                }
                Some(Value::Array(values)) => {
                    for value in values.iter().filter_map(Value::as_str) {
                        self.grant(value, &mut out);
                    }
                }
                _ => {}
            }
        }
        out.into_iter().map(str::to_owned).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scopes(mapper: &impl MapScopes, claims: Value) -> Vec<String> {
        mapper.scopes(claims.as_object().unwrap())
    }

    /// An access token of Keycloak 26 for a service account (client credentials) of the client
    /// `mcp-server`, with a realm role and a client role, as its token endpoint issues it.
    fn keycloak_token() -> Value {
        json!({
            "exp": 1764770000, "iat": 1764769700, "jti": "trrtcc:5f0c6c1e-7c39-4c9b-9d0e-4b9d8c1c2a11",
            "iss": "https://sso.example.com/realms/acme",
            "aud": ["mcp-server", "account"],
            "sub": "8f6e2b1a-3c4d-4e5f-9a0b-1c2d3e4f5a6b",
            "typ": "Bearer", "azp": "mcp-server", "acr": "1",
            "allowed-origins": ["/*"],
            "realm_access": {"roles": ["offline_access", "default-roles-acme", "uma_authorization", "mcp-operator"]},
            "resource_access": {
                "mcp-server": {"roles": ["tools:deploy", "uma_protection"]},
                "account": {"roles": ["manage-account", "manage-account-links", "view-profile"]}
            },
            "scope": "profile email",
            "email_verified": false, "clientHost": "10.0.0.7",
            "preferred_username": "service-account-mcp-server", "clientAddress": "10.0.0.7",
            "client_id": "mcp-server"
        })
    }

    /// An Entra ID v2.0 app-only token (client credentials) with two app roles.
    fn entra_app_token() -> Value {
        json!({
            "aud": "api://7d3f1c2b-5e6a-4b7c-8d9e-0f1a2b3c4d5e",
            "iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
            "iat": 1764769700, "nbf": 1764769700, "exp": 1764773600,
            "aio": "k2BgYDj3+fbI0u/4f7fXvWQnAA==",
            "azp": "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d", "azpacr": "1",
            "oid": "3c4d5e6f-7a8b-9c0d-1e2f-3a4b5c6d7e8f",
            "rh": "0.AXEAv4j5cvGGr0GRqy180BHbR...",
            "roles": ["Tools.Call", "Tools.Deploy"],
            "sub": "3c4d5e6f-7a8b-9c0d-1e2f-3a4b5c6d7e8f",
            "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "uti": "x1yZ2aB3cD4eF5gH6iJ7kA", "ver": "2.0"
        })
    }

    /// An Entra ID v2.0 delegated token (a user through a client), `scp` a string.
    fn entra_user_token() -> Value {
        json!({
            "aud": "7d3f1c2b-5e6a-4b7c-8d9e-0f1a2b3c4d5e",
            "iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
            "iat": 1764769700, "nbf": 1764769700, "exp": 1764773600,
            "azp": "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d", "azpacr": "0",
            "name": "Ada Lovelace", "oid": "9a8b7c6d-5e4f-3a2b-1c0d-9e8f7a6b5c4d",
            "preferred_username": "ada@contoso.com",
            "scp": "Tools.Read Tools.Call",
            "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
            "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "ver": "2.0"
        })
    }

    /// An Auth0 access token for an API with RBAC and permissions in the token.
    fn auth0_token() -> Value {
        json!({
            "iss": "https://acme.eu.auth0.com/",
            "sub": "rP4kQ7sX2m@clients",
            "aud": "https://mcp.acme.com/mcp",
            "iat": 1764769700, "exp": 1764856100,
            "scope": "read:tools call:tools",
            "gty": "client-credentials",
            "azp": "rP4kQ7sX2m",
            "permissions": ["read:tools", "call:tools", "deploy:prod"]
        })
    }

    #[test]
    fn keycloak_reads_realm_roles_and_this_clients_roles_only() {
        let got = scopes(&ScopeClaims::keycloak("mcp-server"), keycloak_token());
        assert_eq!(
            got,
            [
                "default-roles-acme",
                "email",
                "mcp-operator",
                "offline_access",
                "profile",
                "tools:deploy",
                "uma_authorization",
                "uma_protection"
            ]
        );
        assert!(
            !got.iter().any(|s| s == "manage-account"),
            "another client's roles"
        );
    }

    #[test]
    fn keycloak_with_a_mapping_and_only_mapped_roles() {
        let mapper = ScopeClaims::keycloak("mcp-server")
            .map("mcp-operator", ["mcp:tools"])
            .map("tools:deploy", ["mcp:deploy"])
            .only_mapped();
        assert_eq!(
            scopes(&mapper, keycloak_token()),
            ["mcp:deploy", "mcp:tools"]
        );
    }

    #[test]
    fn entra_reads_app_roles_and_the_space_separated_scp() {
        assert_eq!(
            scopes(&ScopeClaims::entra(), entra_app_token()),
            ["Tools.Call", "Tools.Deploy"]
        );
        assert_eq!(
            scopes(&ScopeClaims::entra(), entra_user_token()),
            ["Tools.Call", "Tools.Read"]
        );
    }

    #[test]
    fn auth0_reads_permissions_and_scope() {
        assert_eq!(
            scopes(&ScopeClaims::auth0(), auth0_token()),
            ["call:tools", "deploy:prod", "read:tools"]
        );
    }

    #[test]
    fn standard_reads_scope_and_scp_in_either_shape() {
        let s = ScopeClaims::standard();
        assert_eq!(scopes(&s, json!({"scope": "a  b"})), ["a", "b"]);
        assert_eq!(scopes(&s, json!({"scp": ["c", "d"]})), ["c", "d"]);
        assert_eq!(
            scopes(&s, json!({"scp": "e f", "scope": ["g"]})),
            ["e", "f", "g"]
        );
        // Roles elsewhere are not scopes unless a preset reads them.
        assert!(
            scopes(&s, keycloak_token())
                .iter()
                .all(|x| x == "profile" || x == "email")
        );
        assert!(scopes(&s, entra_app_token()).is_empty());
    }

    #[test]
    fn odd_shapes_grant_nothing() {
        let s = ScopeClaims::keycloak("c").claim("permissions");
        assert!(
            scopes(
                &s,
                json!({"scope": 7, "realm_access": ["x"], "resource_access": {"c": {"roles": [1, null]}},
                "permissions": {"a": true}})
            )
            .is_empty()
        );
        // A client id with dots is one key.
        let url = ScopeClaims::new().path(["resource_access", "https://mcp.example.com", "roles"]);
        assert_eq!(
            scopes(
                &url,
                json!({"resource_access": {"https://mcp.example.com": {"roles": ["r"]}}})
            ),
            ["r"]
        );
    }

    #[test]
    fn a_closure_is_a_mapper() {
        let tenant_admin = |claims: &Map<String, Value>| {
            if claims.get("tid").and_then(Value::as_str) == Some("t1") {
                vec!["admin".to_owned()]
            } else {
                Vec::new()
            }
        };
        assert_eq!(scopes(&tenant_admin, json!({"tid": "t1"})), ["admin"]);
        assert!(scopes(&tenant_admin, json!({"tid": "t2"})).is_empty());
    }
}
