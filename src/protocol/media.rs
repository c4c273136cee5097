//! The media types of MCP bodies (SPEC R3, R4, R7): a JSON message or an event stream.
//!
//! One reading of `Content-Type` for every layer: the essence before any `;` parameters,
//! surrounding whitespace ignored, compared case-insensitively.
//!
//! ```
//! use http::HeaderMap;
//! use mcp_edge::protocol::{BodyKind, body_kind};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("content-type", "Text/Event-Stream; charset=utf-8".parse().unwrap());
//! assert_eq!(body_kind(&headers), BodyKind::Sse);
//! ```

use http::HeaderMap;
use http::header::CONTENT_TYPE;

/// `application/json`: one JSON-RPC message (or a 2025-03-26 batch).
pub const APPLICATION_JSON: &str = "application/json";

/// `text/event-stream`: Server-Sent Events (see [`sse`](super::sse)).
pub const TEXT_EVENT_STREAM: &str = "text/event-stream";

/// What a body is, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/json`.
    Json,
    /// `text/event-stream`.
    Sse,
    /// Anything else, or no (or an unreadable) `Content-Type`.
    Other,
}

impl BodyKind {
    /// Reads one `Content-Type` value: its essence before any `;`, surrounding whitespace
    /// ignored, case-insensitively.
    pub fn parse(value: &[u8]) -> BodyKind {
        let essence = value
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        if essence.eq_ignore_ascii_case(APPLICATION_JSON.as_bytes()) {
            BodyKind::Json
        } else if essence.eq_ignore_ascii_case(TEXT_EVENT_STREAM.as_bytes()) {
            BodyKind::Sse
        } else {
            BodyKind::Other
        }
    }
}

/// The kind of the body a request or response carries, from its (first) `Content-Type`.
#[inline]
pub fn body_kind(headers: &HeaderMap) -> BodyKind {
    headers
        .get(CONTENT_TYPE)
        .map_or(BodyKind::Other, |v| BodyKind::parse(v.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn is_event_stream(headers: &HeaderMap) -> bool {
        body_kind(headers) == BodyKind::Sse
    }

    fn is_json_media_type(value: &str) -> bool {
        BodyKind::parse(value.as_bytes()) == BodyKind::Json
    }

    // Moved from src/sse/future.rs.
    #[test]
    fn event_stream_is_recognised_with_parameters_and_any_case() {
        let mut headers = HeaderMap::new();
        for (value, expected) in [
            ("text/event-stream", true),
            ("Text/Event-Stream; charset=utf-8", true),
            (" text/event-stream ;x=y", true),
            ("application/json", false),
            ("text/event-streams", false),
        ] {
            headers.insert(CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
            assert_eq!(is_event_stream(&headers), expected, "{value}");
        }
        headers.remove(CONTENT_TYPE);
        assert!(!is_event_stream(&headers));
    }

    // Moved from src/inspect/service.rs.
    #[test]
    fn json_media_types() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("Application/JSON; charset=utf-8"));
        assert!(!is_json_media_type("text/plain"));
        assert!(!is_json_media_type("application/json-seq"));
        assert!(!is_json_media_type(""));
    }

    #[test]
    fn every_kind_with_whitespace_parameters_and_case() {
        for (value, kind) in [
            ("application/json", BodyKind::Json),
            ("\tAPPLICATION/JSON\t", BodyKind::Json),
            ("application/json;charset=utf-8;x=\"a;b\"", BodyKind::Json),
            ("text/event-stream;", BodyKind::Sse),
            ("text/event-stream ; charset=utf-8", BodyKind::Sse),
            ("text/html", BodyKind::Other),
            ("application/jsonx", BodyKind::Other),
            ("application/ json", BodyKind::Other),
            ("; text/event-stream", BodyKind::Other),
            ("", BodyKind::Other),
        ] {
            assert_eq!(BodyKind::parse(value.as_bytes()), kind, "{value:?}");
        }
        assert_eq!(body_kind(&HeaderMap::new()), BodyKind::Other);
    }
}
