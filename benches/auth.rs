//! AuthLayer costs: the added cost per request with a cached token (against the bare service
//! in the same run), first verification of RS256 and ES256 JWTs, and a policy decision with
//! 100 rules.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures::FutureExt;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::Full;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_edge::McpRequest;
use mcp_edge::auth::{
    AuthLayer, Authorize, CachedVerifier, Call, Issuer, JwtVerifier, Principal, ScopePolicy,
    TokenVerifier,
};
use tower::{Layer, Service};

const AUD: &str = "https://mcp.bench/mcp";
const ISS: &str = "https://as.bench";

fn key(alg: Algorithm, kid: &str, pem: &[u8]) -> (EncodingKey, Jwk) {
    // The provider the library installs: aws-lc-rs with that feature, else RustCrypto.
    #[cfg(feature = "aws-lc-rs")]
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    #[cfg(not(feature = "aws-lc-rs"))]
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    let enc = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
        _ => EncodingKey::from_ec_pem(pem),
    }
    .unwrap();
    let mut jwk = Jwk::from_encoding_key(&enc, alg).unwrap();
    jwk.common.key_id = Some(kid.into());
    (enc, jwk)
}

fn token(alg: Algorithm, kid: &str, enc: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({
        "iss": ISS, "aud": AUD, "sub": "bench-user", "client_id": "bench",
        "scope": "mcp:tools mcp:read", "iat": now, "exp": now + 3600,
    });
    jsonwebtoken::encode(&header, &claims, enc).unwrap()
}

fn verifier(jwks: Vec<Jwk>) -> JwtVerifier {
    JwtVerifier::new(AUD).issuer(Issuer::jwk_set(ISS, &JwkSet { keys: jwks }))
}

fn mcp_request() -> Arc<McpRequest> {
    let body = Bytes::from_static(
        br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"tool_42","arguments":{"text":"hi"}}}"#,
    );
    Arc::new(McpRequest::classify(&Method::POST, &HeaderMap::new(), Some(&body)).unwrap())
}

fn bench_layer(c: &mut Criterion) {
    let (rsa, rsa_jwk) = key(
        Algorithm::RS256,
        "r1",
        include_bytes!("../tests/keys/rsa1.pem"),
    );
    let jwt = token(Algorithm::RS256, "r1", &rsa);
    let bearer = format!("Bearer {jwt}");
    let mcp = mcp_request();
    let request = || {
        let mut req = Request::post("/mcp")
            .header("content-type", "application/json")
            .header("authorization", &bearer)
            .body(Full::<Bytes>::default())
            .unwrap();
        req.extensions_mut().insert(Arc::clone(&mcp));
        req
    };
    let mut bare = tower::service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
    });
    let policy = ScopePolicy::new()
        .method("tools/call", ["mcp:tools"])
        .tool("deploy_*", ["mcp:deploy"]);
    let mut with_auth = AuthLayer::new(CachedVerifier::new(verifier(vec![rsa_jwk])))
        .policy(policy)
        .layer(bare);

    let mut group = c.benchmark_group("auth_layer");
    group.bench_function("bare_service", |b| {
        b.iter(|| {
            let response = bare.call(request()).now_or_never().unwrap().unwrap();
            black_box(response)
        })
    });
    // Warm the cache once: the loop measures the cached path.
    let _ = with_auth.call(request()).now_or_never().unwrap().unwrap();
    group.bench_function("cached_jwt_rs256", |b| {
        b.iter(|| {
            let response = with_auth.call(request()).now_or_never().unwrap().unwrap();
            assert_eq!(response.status(), 200);
            black_box(response)
        })
    });

    // The same with a 43-character API key (StaticTokens behind the cache): the fixed cost of
    // the layer, without hashing a long JWT.
    let key_bearer = "Bearer k3y-0123456789abcdefghijklmnopqrstuv";
    let key_request = || {
        let mut req = Request::post("/mcp")
            .header("content-type", "application/json")
            .header("authorization", key_bearer)
            .body(Full::<Bytes>::default())
            .unwrap();
        req.extensions_mut().insert(Arc::clone(&mcp));
        req
    };
    let tokens = mcp_edge::auth::StaticTokens::new().token(
        "k3y-0123456789abcdefghijklmnopqrstuv",
        Principal::new("svc").with_scopes(["mcp:tools"]),
    );
    let mut with_key = AuthLayer::new(CachedVerifier::new(tokens))
        .policy(
            ScopePolicy::new()
                .method("tools/call", ["mcp:tools"])
                .tool("deploy_*", ["mcp:deploy"]),
        )
        .layer(bare);
    let _ = with_key
        .call(key_request())
        .now_or_never()
        .unwrap()
        .unwrap();
    group.bench_function("bare_service_short_header", |b| {
        b.iter(|| black_box(bare.call(key_request()).now_or_never().unwrap().unwrap()))
    });
    group.bench_function("cached_api_key", |b| {
        b.iter(|| {
            let response = with_key
                .call(key_request())
                .now_or_never()
                .unwrap()
                .unwrap();
            assert_eq!(response.status(), 200);
            black_box(response)
        })
    });
    group.finish();
}

fn bench_first_verification(c: &mut Criterion) {
    let (rsa, rsa_jwk) = key(
        Algorithm::RS256,
        "r1",
        include_bytes!("../tests/keys/rsa1.pem"),
    );
    let (ec, ec_jwk) = key(
        Algorithm::ES256,
        "e1",
        include_bytes!("../tests/keys/ec1.pem"),
    );
    let verifier = verifier(vec![rsa_jwk, ec_jwk]);
    let rs_token = token(Algorithm::RS256, "r1", &rsa);
    let es_token = token(Algorithm::ES256, "e1", &ec);
    let mut group = c.benchmark_group("jwt_first_verification");
    group.bench_function("rs256", |b| {
        b.iter(|| {
            let p = verifier
                .verify(black_box(&rs_token))
                .now_or_never()
                .unwrap();
            black_box(p.unwrap())
        })
    });
    group.bench_function("es256", |b| {
        b.iter(|| {
            let p = verifier
                .verify(black_box(&es_token))
                .now_or_never()
                .unwrap();
            black_box(p.unwrap())
        })
    });
    group.finish();
}

fn bench_policy(c: &mut Criterion) {
    let mut policy = ScopePolicy::new().method("tools/call", ["mcp:tools"]);
    for i in 0..90 {
        policy = policy.tool(&format!("tool_{i}"), [format!("scope:{}", i % 7)]);
    }
    for i in 0..10 {
        policy = policy.tool(&format!("family{i}_*"), [format!("family:{i}")]);
    }
    let policy = policy
        .default_scopes(["mcp:basic"])
        .implies("mcp:admin", ["scope:0", "scope:1"]);
    let principal = Principal::new("u").with_scopes([
        "mcp:tools",
        "mcp:basic",
        "scope:0",
        "scope:3",
        "family:9",
    ]);
    let mut group = c.benchmark_group("policy_100_rules");
    for (label, name) in [
        ("exact_rule", "tool_42"),
        ("last_glob_rule", "family9_deploy"),
        ("unlisted_default", "something_else"),
        ("denied_exact", "tool_43"),
    ] {
        group.bench_function(label, |b| {
            b.iter(|| {
                black_box(policy.authorize(
                    black_box(&principal),
                    Call::new("tools/call", Some(black_box(name))),
                ))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_layer, bench_first_verification, bench_policy);
criterion_main!(benches);
