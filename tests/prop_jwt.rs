//! JWT header and claims parsing on stable, with the properties of the `jwt` fuzz target
//! (`fuzz/src/jwt.rs`, included here): nothing verifies that was not signed with the key,
//! and what verifies says what it must.
#![cfg(feature = "jwt")]

#[path = "../fuzz/src/jwt.rs"]
mod jwt;

use jwt::{AUD, ISS, SECRET, Signing, check_signed, check_token, now};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// A claim or header field: absent, the value that passes, or a wrong one.
fn field(good: Value) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => Just(Some(good)),
        1 => Just(None),
        1 => prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            "[ -~]{0,12}".prop_map(|s| json!(s)),
            Just(json!(["x", AUD])),
            Just(json!(now() - 3600)),
            Just(json!("HS512")),
            Just(json!("none")),
        ]
        .prop_map(Some),
    ]
}

fn object(fields: Vec<(&'static str, Option<Value>)>) -> Vec<u8> {
    let map: Map<String, Value> = fields
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), v?)))
        .collect();
    serde_json::to_vec(&map).unwrap()
}

fn signing() -> impl Strategy<Value = Signing> {
    prop_oneof![
        3 => Just(Signing::Right),
        1 => Just(Signing::Wrong),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, mask)| Signing::Flipped(at, mask)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_tokens_never_verify(token in "[A-Za-z0-9_.=-]{0,200}") {
        check_token(&token);
    }

    #[test]
    fn near_valid_tokens_verify_only_when_they_should(
        alg in field(json!("HS256")),
        typ in field(json!("at+jwt")),
        iss in field(json!(ISS)),
        aud in field(json!(AUD)),
        exp in field(json!(now() + 600)),
        sub in field(json!("user")),
        scope in field(json!("mcp:tools")),
        signing in signing(),
    ) {
        let header = object(vec![("alg", alg), ("typ", typ)]);
        let claims = object(vec![
            ("iss", iss),
            ("aud", aud),
            ("exp", exp),
            ("sub", sub),
            ("scope", scope),
        ]);
        check_signed(&header, &claims, signing);
    }
}

#[test]
fn a_valid_token_verifies_and_a_forged_one_does_not() {
    use mcp_edge::auth::{Issuer, JwtVerifier, TokenVerifier};
    let header = br#"{"alg":"HS256","typ":"at+jwt"}"#;
    let claims = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{},"sub":"u"}}"#,
        now() + 600
    );
    let token = jwt::sign(header, claims.as_bytes(), SECRET);
    let verifier = JwtVerifier::new(AUD).issuer(Issuer::shared_secret(ISS, SECRET));
    let principal = futures::executor::block_on(verifier.verify(&token)).unwrap();
    assert_eq!(principal.subject(), "u");
    check_signed(header, claims.as_bytes(), Signing::Right);
    let forged = jwt::sign(
        header,
        claims.as_bytes(),
        b"another secret of the same size!",
    );
    assert!(futures::executor::block_on(verifier.verify(&forged)).is_err());
}
