//! The claims-to-scopes presets feeding the scope policy: one verifier trusting a Keycloak
//! realm, an Entra ID tenant and an Auth0 tenant at once, each issuer with its own audience
//! names and its own preset, tokens shaped as each provider issues them. A tool call is
//! allowed or refused by the same `ScopePolicy` whatever claim the permission came from.
#![cfg(feature = "jwt")]

mod common;

use bytes::Bytes;
use common::auth::{SigningKey, ec1, mint, now, rsa1, rsa2};
use http::{Request, Response};
use http_body_util::Full;
use jsonwebtoken::jwk::JwkSet;
use mcp_edge::auth::{AuthLayer, Issuer, JwtVerifier, ScopeClaims, ScopePolicy};
use mcp_edge::inspect::InspectLayer;
use serde_json::json;
use tower::{ServiceBuilder, ServiceExt};

const RESOURCE: &str = "https://mcp.acme.com/mcp";
const KEYCLOAK: &str = "https://sso.acme.com/realms/acme";
const ENTRA: &str = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0";
const AUTH0: &str = "https://acme.eu.auth0.com/";
const ENTRA_APP: &str = "api://7d3f1c2b-5e6a-4b7c-8d9e-0f1a2b3c4d5e";

fn issuer(iss: &str, key: &SigningKey) -> Issuer {
    Issuer::jwk_set(
        iss,
        &JwkSet {
            keys: vec![key.jwk.clone()],
        },
    )
}

/// Calls tool `tool` with `token` through inspect → auth; the status.
async fn call(token: &str, tool: &str) -> u16 {
    let verifier = JwtVerifier::new(RESOURCE)
        .issuer(
            issuer(KEYCLOAK, &rsa1())
                .audience("mcp-server")
                .scopes_from(ScopeClaims::keycloak("mcp-server")),
        )
        .issuer(
            issuer(ENTRA, &rsa2())
                .audience(ENTRA_APP)
                .scopes_from(ScopeClaims::entra().map("Tools.Deploy", ["mcp:deploy"])),
        )
        .issuer(issuer(AUTH0, &ec1()).scopes_from(ScopeClaims::auth0()));
    let policy = ScopePolicy::new()
        .tool("search", ["mcp:tools"])
        .tool("deploy", ["mcp:deploy"]);
    let service = ServiceBuilder::new()
        .layer(InspectLayer::new())
        .layer(AuthLayer::new(verifier).policy(policy))
        .service_fn(|_req: Request<_>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
        });
    let request = Request::post("/mcp")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::from(format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}"}}}}"#
        ))))
        .unwrap();
    service.oneshot(request).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn keycloak_realm_and_client_roles_become_scopes() {
    let token = |roles: serde_json::Value, aud: serde_json::Value| {
        mint(
            &rsa1(),
            &json!({
                "exp": now() + 300, "iat": now(), "jti": "trrtcc:5f0c6c1e",
                "iss": KEYCLOAK, "aud": aud, "sub": "8f6e2b1a-3c4d-4e5f-9a0b-1c2d3e4f5a6b",
                "typ": "Bearer", "azp": "mcp-server", "acr": "1",
                "realm_access": {"roles": ["offline_access", "default-roles-acme", "mcp:tools"]},
                "resource_access": {"mcp-server": {"roles": roles},
                    "account": {"roles": ["manage-account", "mcp:deploy"]}},
                "scope": "profile email", "client_id": "mcp-server",
                "preferred_username": "service-account-mcp-server"
            }),
        )
    };
    let operator = token(json!(["mcp:deploy"]), json!(["mcp-server", "account"]));
    assert_eq!(call(&operator, "search").await, 200);
    assert_eq!(call(&operator, "deploy").await, 200);
    // The `account` client's role of the same name is not this server's.
    let reader = token(json!([]), json!(["mcp-server", "account"]));
    assert_eq!(call(&reader, "search").await, 200);
    assert_eq!(call(&reader, "deploy").await, 403);
    // Not for this server (Keycloak's default audience only).
    assert_eq!(
        call(&token(json!(["mcp:deploy"]), json!("account")), "search").await,
        401
    );
}

#[tokio::test]
async fn entra_app_roles_and_delegated_scp_become_scopes() {
    let app = mint(
        &rsa2(),
        &json!({
            "aud": ENTRA_APP, "iss": ENTRA, "iat": now(), "nbf": now(), "exp": now() + 3600,
            "azp": "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d", "azpacr": "1",
            "oid": "3c4d5e6f-7a8b-9c0d-1e2f-3a4b5c6d7e8f",
            "roles": ["mcp:tools", "Tools.Deploy"],
            "sub": "3c4d5e6f-7a8b-9c0d-1e2f-3a4b5c6d7e8f",
            "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "ver": "2.0"
        }),
    );
    assert_eq!(call(&app, "search").await, 200);
    assert_eq!(call(&app, "deploy").await, 200);
    let user = mint(
        &rsa2(),
        &json!({
            "aud": ENTRA_APP, "iss": ENTRA, "iat": now(), "nbf": now(), "exp": now() + 3600,
            "azp": "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d", "azpacr": "0",
            "name": "Ada Lovelace", "preferred_username": "ada@contoso.com",
            "scp": "User.Read mcp:tools", "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
            "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "ver": "2.0"
        }),
    );
    assert_eq!(call(&user, "search").await, 200);
    assert_eq!(call(&user, "deploy").await, 403);
}

#[tokio::test]
async fn auth0_permissions_become_scopes_and_audiences_stay_per_issuer() {
    let token = |permissions: serde_json::Value, aud: &str| {
        mint(
            &ec1(),
            &json!({
                "iss": AUTH0, "sub": "rP4kQ7sX2m@clients", "aud": aud,
                "iat": now(), "exp": now() + 86400, "scope": "",
                "gty": "client-credentials", "azp": "rP4kQ7sX2m", "permissions": permissions
            }),
        )
    };
    assert_eq!(
        call(&token(json!(["mcp:tools"]), RESOURCE), "search").await,
        200
    );
    assert_eq!(
        call(&token(json!(["mcp:tools"]), RESOURCE), "deploy").await,
        403
    );
    assert_eq!(
        call(&token(json!(["mcp:deploy"]), RESOURCE), "deploy").await,
        200
    );
    // Entra's audience name is Entra's only.
    assert_eq!(
        call(&token(json!(["mcp:tools"]), ENTRA_APP), "search").await,
        401
    );
}
