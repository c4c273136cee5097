//! Every refusal the auth layer makes, in-process: status, exact `WWW-Authenticate`, JSON-RPC
//! body, and the `Rejection` in the response extensions for audit.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use mcp_edge::auth::{AuthLayer, ProtectedResource, ScopePolicy, StaticTokens};
use mcp_edge::inspect::InspectLayer;
use mcp_edge::{Principal, Reason, Rejection};
use serde_json::json;
use tower::{Service, ServiceBuilder, ServiceExt};

const METADATA: &str = "https://mcp.test/.well-known/oauth-protected-resource/mcp";

fn auth() -> AuthLayer<StaticTokens, ScopePolicy> {
    AuthLayer::new(StaticTokens::new().token("t", Principal::new("u").with_scopes(["a"])))
        .policy(
            ScopePolicy::new()
                .tool("admin", ["admin", "a"])
                .method("tasks/*", ["tasks"]),
        )
        .protected_resource(
            ProtectedResource::new(["https://as.test"]).resource("https://mcp.test/mcp"),
        )
}

fn ok_service() -> impl Service<
    Request<mcp_edge::EdgeBody<Full<Bytes>>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    tower::service_fn(|_req: Request<_>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
    })
}

async fn check(
    request: Request<Full<Bytes>>,
    status: StatusCode,
    challenge: &str,
    reason: Reason,
    body: serde_json::Value,
) {
    let service = ServiceBuilder::new()
        .layer(InspectLayer::new())
        .layer(auth())
        .service(ok_service());
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["www-authenticate"], challenge);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(
        response.extensions().get::<Rejection>().unwrap().reason(),
        reason
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let got: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(got, body);
}

fn post() -> http::request::Builder {
    Request::post("/mcp").header("content-type", "application/json")
}

fn json_body(v: serde_json::Value) -> Full<Bytes> {
    Full::new(Bytes::from(v.to_string()))
}

#[tokio::test]
async fn get_without_token_gets_401_without_error() {
    check(
        Request::get("/mcp").body(Full::default()).unwrap(),
        StatusCode::UNAUTHORIZED,
        &format!(r#"Bearer resource_metadata="{METADATA}""#),
        Reason::MissingToken,
        json!({"jsonrpc":"2.0","error":{"code":-32600,"message":"Unauthorized: a bearer token is required"}}),
    )
    .await;
}

#[tokio::test]
async fn two_authorization_headers_get_401_invalid_request() {
    let call = json!({"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"admin"}});
    check(
        post()
            .header("authorization", "Bearer t")
            .header("authorization", "Bearer u")
            .body(json_body(call))
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        &format!(
            r#"Bearer error="invalid_request", error_description="more than one Authorization header", resource_metadata="{METADATA}", scope="admin a""#
        ),
        Reason::InvalidToken,
        json!({"jsonrpc":"2.0","id":"x","error":{"code":-32600,"message":"Unauthorized: more than one Authorization header"}}),
    )
    .await;
}

#[tokio::test]
async fn method_rules_refuse_with_403_and_the_request_id() {
    let call = json!({"jsonrpc":"2.0","id":9,"method":"tasks/get","params":{"taskId":"t1"}});
    check(
        post()
            .header("authorization", "Bearer t")
            .body(json_body(call))
            .unwrap(),
        StatusCode::FORBIDDEN,
        &format!(r#"Bearer error="insufficient_scope", scope="tasks", resource_metadata="{METADATA}""#),
        Reason::InsufficientScope,
        json!({"jsonrpc":"2.0","id":9,"error":{"code":-32600,"message":"Forbidden: insufficient scope","data":{"requiredScopes":["tasks"]}}}),
    )
    .await;
}

#[tokio::test]
async fn initialize_is_refused_with_401_never_400_404_or_405() {
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}});
    check(
        post()
            .header("authorization", "Bearer wrong")
            .body(json_body(init))
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        &format!(
            r#"Bearer error="invalid_token", error_description="unknown token", resource_metadata="{METADATA}""#
        ),
        Reason::InvalidToken,
        json!({"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"Unauthorized: unknown token"}}),
    )
    .await;
}

#[tokio::test]
async fn a_post_without_inspect_layer_is_refused_fail_closed() {
    let service = ServiceBuilder::new()
        .layer(auth())
        .service(tower::service_fn(|_req: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
        }));
    let request = Request::post("/mcp")
        .header("authorization", "Bearer t")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()["www-authenticate"],
        format!(r#"Bearer error="insufficient_scope", resource_metadata="{METADATA}""#).as_str()
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let got: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(got["error"]["code"], -32603);
}

#[tokio::test]
async fn cors_preflight_passes_without_a_token_and_without_a_principal() {
    let service = ServiceBuilder::new()
        .layer(InspectLayer::new())
        .layer(auth())
        .service(tower::service_fn(
            |req: Request<mcp_edge::EdgeBody<Full<Bytes>>>| async move {
                assert!(req.extensions().get::<Principal>().is_none());
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b""))))
            },
        ));
    let request = Request::options("/mcp")
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .body(Full::default())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_principal_reaches_the_inner_service_and_the_response_but_the_token_does_not() {
    let service = ServiceBuilder::new()
        .layer(InspectLayer::new())
        .layer(auth())
        .service(tower::service_fn(
            |req: Request<mcp_edge::EdgeBody<Full<Bytes>>>| async move {
                let subject = req
                    .extensions()
                    .get::<Principal>()
                    .unwrap()
                    .subject()
                    .to_owned();
                assert!(
                    req.headers().get("authorization").is_none(),
                    "the token is not passed on"
                );
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(subject))))
            },
        ));
    let request = Request::get("/mcp")
        .header("authorization", "Bearer t")
        .body(Full::default())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.extensions().get::<Principal>().unwrap().subject(),
        "u"
    );
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "u"
    );
}
