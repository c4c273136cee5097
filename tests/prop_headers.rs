//! Header decoders on stable, with the properties of the `headers` fuzz target
//! (`fuzz/src/headers.rs`, included here): `Mcp-Name`/`Mcp-Method` values round-trip through
//! their encoding, and a refusal's `WWW-Authenticate` reads back exactly.

#[path = "../fuzz/src/headers.rs"]
mod headers;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_decoded_value_round_trips(raw in prop::collection::vec(any::<u8>(), 0..48)) {
        headers::check_decode(&raw);
    }

    #[test]
    fn any_base64_form_decodes_or_is_refused(text in "[A-Za-z0-9+/=?! \\t-]{0,24}") {
        headers::check_decode(format!("=?base64?{text}?=").as_bytes());
    }

    #[test]
    fn any_text_round_trips(text in any::<String>()) {
        headers::check_round_trip(&text);
    }

    #[test]
    fn any_challenge_reads_back(
        description in any::<String>(),
        host in prop::collection::vec(any::<u8>(), 0..24),
        path in "[ -~]{0,16}",
    ) {
        headers::check_challenge(&description, &host, &path);
    }
}

#[test]
fn challenges_with_quotes_backslashes_and_non_ascii_read_back() {
    headers::check_challenge("bad \"sig\" \\ here\n\u{e9}", b"mcp.example:8443", "/mcp");
    headers::check_challenge("", b"[::1]:9", "a/b");
    headers::check_challenge("\\\"", b"", "");
    assert_eq!(
        headers::parse_challenge(r#"Bearer a="x\"y", b=tok"#),
        Some((
            "Bearer",
            vec![("a".into(), "x\"y".into()), ("b".into(), "tok".into())]
        ))
    );
    assert_eq!(headers::parse_challenge(r#"Bearer a="x"#), None);
}
