//! JWT header and claims parsing: arbitrary tokens, and tokens signed over near-valid header
//! and claims JSON (see `mcp_edge_fuzz::jwt`).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mcp_edge_fuzz::jwt::{AUD, ISS, Signing, check_signed, check_token, now};
use serde_json::{Map, Value, json};

#[derive(Debug, Arbitrary)]
enum Field {
    Absent,
    Good,
    Text(String),
    Number(i64),
    Float(f64),
    Null,
    List(Vec<String>),
}

#[derive(Debug, Arbitrary)]
struct Claims {
    iss: Field,
    aud: Field,
    exp: Field,
    nbf: Field,
    sub: Field,
    scope: Field,
    extra: Option<(String, String)>,
}

#[derive(Debug, Arbitrary)]
struct Header {
    alg: Field,
    typ: Field,
    kid: Field,
    crit: bool,
}

#[derive(Debug, Arbitrary)]
enum Sign {
    Right,
    Wrong,
    Flipped(usize, u8),
}

#[derive(Debug, Arbitrary)]
enum Input {
    Token(String),
    Signed {
        header: Header,
        claims: Claims,
        sign: Sign,
        edits: Vec<(u16, u8)>,
    },
}

fn field(map: &mut Map<String, Value>, name: &str, field: &Field, good: Value) {
    let value = match field {
        Field::Absent => return,
        Field::Good => good,
        Field::Text(s) => json!(s),
        Field::Number(n) => json!(n),
        Field::Float(f) => json!(f),
        Field::Null => Value::Null,
        Field::List(l) => json!(l),
    };
    map.insert(name.to_owned(), value);
}

fuzz_target!(|input: Input| match input {
    Input::Token(token) => check_token(&token),
    Input::Signed {
        header,
        claims,
        sign,
        edits,
    } => {
        let mut h = Map::new();
        field(&mut h, "alg", &header.alg, json!("HS256"));
        field(&mut h, "typ", &header.typ, json!("at+jwt"));
        field(&mut h, "kid", &header.kid, json!("k1"));
        if header.crit {
            h.insert("crit".into(), json!(["exp"]));
        }
        let mut c = Map::new();
        field(&mut c, "iss", &claims.iss, json!(ISS));
        field(&mut c, "aud", &claims.aud, json!(AUD));
        field(&mut c, "exp", &claims.exp, json!(now() + 600));
        field(&mut c, "nbf", &claims.nbf, json!(now() - 600));
        field(&mut c, "sub", &claims.sub, json!("user"));
        field(&mut c, "scope", &claims.scope, json!("mcp:tools"));
        if let Some((k, v)) = claims.extra {
            c.insert(k, json!(v));
        }
        let header = serde_json::to_vec(&h).unwrap();
        let mut claims = serde_json::to_vec(&c).unwrap();
        for &(at, byte) in edits.iter().take(2) {
            let len = claims.len();
            claims[usize::from(at) % len] = byte;
        }
        let signing = match sign {
            Sign::Right => Signing::Right,
            Sign::Wrong => Signing::Wrong,
            Sign::Flipped(at, mask) => Signing::Flipped(at, mask),
        };
        check_signed(&header, &claims, signing);
    }
});
