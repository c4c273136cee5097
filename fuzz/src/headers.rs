//! Header decoders: the 2026-07-28 value encoding (`Mcp-Name`, `Mcp-Method`, with its
//! `=?base64?…?=` form) and the `WWW-Authenticate` challenge, read back by an RFC 9110 parser.
//!
//! - `decode_value` never panics; whatever it decodes, `encode_value` writes as a valid
//!   header value that decodes back to the same text.
//! - A refusal's challenge, whatever the verifier's description and the request's `Host` and
//!   path, parses as one `Bearer` challenge whose parameters read back exactly: the
//!   description and the metadata URL with only the characters a header cannot carry replaced.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use http::{HeaderValue, Request, Response};
use mcp_edge::auth::{AuthLayer, ProtectedResource, VerifyError};
use mcp_edge::protocol::header::{decode_value, encode_value};
use tower::{Layer, Service};

/// Decodes `raw`; whatever it yields must survive an encode/decode round trip.
pub fn check_decode(raw: &[u8]) {
    if let Some(text) = decode_value(raw) {
        check_round_trip(&text);
    }
}

/// `text` encoded is a valid header value of visible ASCII, and decodes back to `text`.
pub fn check_round_trip(text: &str) {
    let encoded = encode_value(text);
    let value = HeaderValue::from_str(&encoded).expect("an encoded value is a header value");
    assert!(
        value.as_bytes().iter().all(|b| (0x20..0x7f).contains(b)),
        "{encoded:?}"
    );
    let decoded = decode_value(value.as_bytes()).expect("an encoded value decodes");
    assert_eq!(decoded, text, "round trip of {text:?} through {encoded:?}");
}

/// What a quoted-string value of the challenge must read back as: each character a header
/// value cannot carry (anything but visible ASCII and space) becomes `?`.
pub fn sanitized(text: &str) -> String {
    text.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

/// Polls a future that must be ready at once (no timer, no I/O in these services).
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the future was not ready"),
    }
}

/// Refuses a token with `description` on a request with this `Host` and path, and reads the
/// challenge back.
pub fn check_challenge(description: &str, host: &[u8], path: &str) {
    let mut builder = Request::get("/mcp");
    if let Ok(uri) = format!("/{}", path.trim_start_matches('/')).parse::<http::Uri>() {
        builder = Request::get(uri);
    }
    let mut request = builder.body(()).unwrap();
    request
        .headers_mut()
        .insert("authorization", HeaderValue::from_static("Bearer t"));
    if let Ok(host) = HeaderValue::from_bytes(host) {
        request.headers_mut().insert("host", host);
    }
    let resource = ProtectedResource::new(["https://as.example"]);
    let (parts, ()) = request.into_parts();
    let expected_metadata = resource.metadata_url(&parts);
    let request = Request::from_parts(parts, ());

    let owned = description.to_owned();
    let layer = AuthLayer::new(move |_token: &str| {
        std::future::ready(Err(VerifyError::invalid(owned.clone())))
    })
    .protected_resource(resource);
    let mut service = layer.layer(tower::service_fn(|_request: Request<()>| {
        std::future::ready(Ok::<_, std::convert::Infallible>(Response::new(())))
    }));
    let response = ready(service.call(request)).unwrap();
    assert_eq!(response.status(), 401);
    let header = response.headers()["www-authenticate"].to_str().unwrap();
    let Some(("Bearer", params)) = parse_challenge(header) else {
        panic!("not one Bearer challenge: {header:?}");
    };
    let mut expected = vec![
        ("error".to_owned(), "invalid_token".to_owned()),
        ("error_description".to_owned(), sanitized(description)),
    ];
    if let Some(url) = expected_metadata {
        expected.push(("resource_metadata".to_owned(), sanitized(&url)));
    }
    assert_eq!(params, expected, "challenge {header:?}");
}

/// Parses one challenge (RFC 9110 §11.6.1): `scheme [ 1*SP auth-param *( OWS "," OWS
/// auth-param ) ]`, each `token BWS "=" BWS ( token / quoted-string )`, quoted-pairs
/// unescaped. `None` for anything else (a token68, a second challenge, a stray byte).
pub fn parse_challenge(value: &str) -> Option<(&str, Vec<(String, String)>)> {
    let bytes = value.as_bytes();
    let token_end = |from: usize| {
        let mut at = from;
        while at < bytes.len() && is_tchar(bytes[at]) {
            at += 1;
        }
        at
    };
    let ows = |mut at: usize| {
        while at < bytes.len() && (bytes[at] == b' ' || bytes[at] == b'\t') {
            at += 1;
        }
        at
    };
    let end = token_end(0);
    if end == 0 {
        return None;
    }
    let scheme = &value[..end];
    let mut params = Vec::new();
    if end == bytes.len() {
        return Some((scheme, params));
    }
    if bytes[end] != b' ' {
        return None;
    }
    let mut at = ows(end);
    loop {
        let name_end = token_end(at);
        if name_end == at {
            return None;
        }
        let name = value[at..name_end].to_ascii_lowercase();
        at = ows(name_end);
        if bytes.get(at) != Some(&b'=') {
            return None;
        }
        at = ows(at + 1);
        let mut text = String::new();
        if bytes.get(at) == Some(&b'"') {
            at += 1;
            loop {
                match bytes.get(at)? {
                    b'"' => break,
                    b'\\' => {
                        let c = *bytes.get(at + 1)?;
                        if !(c == b'\t' || (0x20..0x7f).contains(&c)) {
                            return None;
                        }
                        text.push(c as char);
                        at += 2;
                    }
                    &c if c == b'\t' || (0x20..0x7f).contains(&c) => {
                        text.push(c as char);
                        at += 1;
                    }
                    _ => return None,
                }
            }
            at += 1;
        } else {
            let value_end = token_end(at);
            if value_end == at {
                return None;
            }
            text.push_str(&value[at..value_end]);
            at = value_end;
        }
        params.push((name, text));
        at = ows(at);
        if at == bytes.len() {
            return Some((scheme, params));
        }
        if bytes[at] != b',' {
            return None;
        }
        at = ows(at + 1);
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
