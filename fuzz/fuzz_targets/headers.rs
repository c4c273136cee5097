//! Header decoders: `Mcp-Name`/`Mcp-Method` values (plain and `=?base64?…?=`), and the
//! `WWW-Authenticate` challenge round trip (see `mcp_edge_fuzz::headers`).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Input {
    /// A raw header value.
    Raw(Vec<u8>),
    /// `=?base64?` + arbitrary text + `?=`.
    Wrapped(String),
    /// Any text, encoded then decoded.
    Text(String),
    /// A refusal's challenge: the verifier's description, the `Host`, the path.
    Challenge(String, Vec<u8>, String),
}

fuzz_target!(|input: Input| {
    use mcp_edge_fuzz::headers::*;
    match input {
        Input::Raw(raw) => check_decode(&raw),
        Input::Wrapped(text) => check_decode(format!("=?base64?{text}?=").as_bytes()),
        Input::Text(text) => check_round_trip(&text),
        Input::Challenge(description, host, path) => check_challenge(&description, &host, &path),
    }
});
