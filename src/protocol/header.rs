//! MCP's HTTP header names and the 2026-07-28 value encoding (SPEC R38–R41).

use std::borrow::Cow;

use base64::Engine as _;
use http::HeaderName;
use http::header::HeaderMap;

/// `Mcp-Session-Id` (legacy era; matched case-insensitively, R23).
pub const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// `MCP-Protocol-Version` (R33–R36).
pub const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
/// `Mcp-Method` (2026-07-28, R38).
pub const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
/// `Mcp-Name` (2026-07-28, R38).
pub const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");
/// `Last-Event-ID` (legacy resumption, R18).
pub const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
/// The prefix of `Mcp-Param-{Name}` headers (R40), lowercase.
pub const MCP_PARAM_PREFIX: &str = "mcp-param-";

const B64_PREFIX: &str = "=?base64?";
const B64_SUFFIX: &str = "?=";

/// Decodes a 2026-07-28 header value: trims surrounding whitespace (OWS) and unwraps the
/// `=?base64?…?=` form (R39). The markers are case-sensitive.
///
/// Returns `None` when the value is not valid UTF-8, or is a malformed base64 form.
pub fn decode_value(raw: &[u8]) -> Option<Cow<'_, str>> {
    let text = std::str::from_utf8(raw).ok()?.trim_matches([' ', '\t']);
    match text
        .strip_prefix(B64_PREFIX)
        .and_then(|rest| rest.strip_suffix(B64_SUFFIX))
    {
        Some(encoded) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            String::from_utf8(bytes).ok().map(Cow::Owned)
        }
        None => Some(Cow::Borrowed(text)),
    }
}

/// Encodes a value for a 2026-07-28 header: plain when it is a safe header value, else the
/// `=?base64?…?=` form (R39).
pub fn encode_value(value: &str) -> Cow<'_, str> {
    let sentinel = value.starts_with(B64_PREFIX) && value.ends_with(B64_SUFFIX);
    let plain = !value.is_empty()
        && value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !value.starts_with([' ', '\t'])
        && !value.ends_with([' ', '\t'])
        && !sentinel;
    if plain {
        Cow::Borrowed(value)
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        Cow::Owned(format!("{B64_PREFIX}{encoded}{B64_SUFFIX}"))
    }
}

/// The single value of a header that must appear at most once.
pub(crate) fn single<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'a http::HeaderValue>, Duplicate> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(Duplicate);
    }
    Ok(first)
}

/// A singleton header appeared more than once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Duplicate;

/// Whether `name` is one of MCP's own headers.
fn is_mcp_header(name: &HeaderName) -> bool {
    name == MCP_PROTOCOL_VERSION
        || name == MCP_SESSION_ID
        || name == MCP_METHOD
        || name == MCP_NAME
        || name == LAST_EVENT_ID
        || name.as_str().starts_with(MCP_PARAM_PREFIX)
}

/// The first MCP header sent more than once with different values (surrounding whitespace
/// aside), leaving `except` out: an intermediary that reads the first copy and a server that
/// reads the last would act on different requests. The same value twice is fine.
pub(crate) fn conflicting<'a>(
    headers: &'a HeaderMap,
    except: Option<&HeaderName>,
) -> Option<&'a HeaderName> {
    if headers.keys_len() == headers.len() {
        return None; // No name repeats at all: the usual case, decided without a lookup.
    }
    let trimmed = |value: &'a http::HeaderValue| value.as_bytes().trim_ascii();
    headers.keys().find(|&name| {
        if !is_mcp_header(name) || except == Some(name) {
            return false;
        }
        let mut values = headers.get_all(name).iter().map(trimmed);
        let first = values.next();
        values.any(|value| Some(value) != first)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plain_trimmed_and_base64_values() {
        assert_eq!(decode_value(b"tools/call").unwrap(), "tools/call");
        assert_eq!(decode_value(b"  echo\t").unwrap(), "echo");
        assert_eq!(decode_value(b"=?base64?aMOpbGxv?=").unwrap(), "héllo");
        // Markers are case-sensitive: this is a plain value.
        assert_eq!(decode_value(b"=?BASE64?aGk=?=").unwrap(), "=?BASE64?aGk=?=");
        assert!(decode_value(b"=?base64?!!!?=").is_none());
        assert!(
            decode_value(b"=?base64?/w==?=").is_none(),
            "not UTF-8 inside"
        );
        assert!(decode_value(b"\xff").is_none());
    }

    #[test]
    fn conflicting_copies_of_mcp_headers_only() {
        let map = |pairs: &[(&str, &str)]| {
            let mut map = HeaderMap::new();
            for (k, v) in pairs {
                map.append(
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    http::HeaderValue::from_str(v).unwrap(),
                );
            }
            map
        };
        let two = map(&[
            ("accept", "a"),
            ("accept", "b"),
            ("mcp-session-id", "s"),
            ("MCP-Session-Id", "t"),
        ]);
        assert_eq!(conflicting(&two, None), Some(&MCP_SESSION_ID));
        assert_eq!(conflicting(&two, Some(&MCP_SESSION_ID)), None);
        let same = map(&[("mcp-name", "x"), ("mcp-name", "x\t"), ("accept", "a")]);
        assert_eq!(conflicting(&same, None), None);
        let param = map(&[("mcp-param-a", "1"), ("mcp-param-a", "2")]);
        assert_eq!(conflicting(&param, None).unwrap().as_str(), "mcp-param-a");
        assert_eq!(
            conflicting(&map(&[("accept", "a"), ("accept", "b")]), None),
            None
        );
    }

    #[test]
    fn encode_then_decode_round_trips() {
        for value in [
            "echo",
            " padded ",
            "héllo",
            "=?base64?x?=",
            "line\nbreak",
            "",
        ] {
            let encoded = encode_value(value);
            assert_eq!(
                decode_value(encoded.as_bytes()).unwrap(),
                value,
                "{value:?}"
            );
        }
        assert_eq!(encode_value("echo"), "echo");
    }
}
