//! The W3C trace context (`traceparent`, `tracestate`) a caller sends, read once.

use http::{HeaderMap, HeaderName};

/// `traceparent` (W3C Trace Context).
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `tracestate` (W3C Trace Context).
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// A caller's W3C trace context: the `traceparent` of the span that sent the message, and
/// its `tracestate`.
///
/// Read from the request's `traceparent` / `tracestate` headers, or from the message's
/// `params._meta` where MCP clients put them. Only version `00` layouts are read; a value
/// that does not parse is ignored (the span starts a trace of its own), never refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
    state: Option<Box<str>>,
}

/// `tracestate` values longer than this are dropped (W3C allows 512 bytes of members; a
/// little slack for whitespace).
const MAX_TRACESTATE: usize = 1024;

impl TraceContext {
    /// Parses a `traceparent` value (`00-<32 hex>-<16 hex>-<2 hex>`) and an optional
    /// `tracestate`; `None` when the `traceparent` is malformed or names the invalid (all
    /// zero) trace or span.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let bytes = traceparent.trim().as_bytes();
        // version "00" is exactly 55 bytes; later versions may append fields after a '-'.
        if bytes.len() < 55 || (bytes.len() > 55 && bytes[55] != b'-') {
            return None;
        }
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        let version = hex::<1>(&bytes[0..2])?[0];
        if version == 0xff || (version == 0 && bytes.len() != 55) {
            return None;
        }
        let trace_id = hex::<16>(&bytes[3..35])?;
        let span_id = hex::<8>(&bytes[36..52])?;
        let flags = hex::<1>(&bytes[53..55])?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        let state = tracestate
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE && s.is_ascii())
            .map(Box::from);
        Some(TraceContext {
            trace_id,
            span_id,
            flags,
            state,
        })
    }

    /// From the `traceparent` and `tracestate` headers, when `traceparent` is present and
    /// valid.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        // Looked up by `HeaderName`: a `&str` key would be parsed as a header name first.
        let parent = headers.get(TRACEPARENT)?.to_str().ok()?;
        let state = headers.get(TRACESTATE).and_then(|v| v.to_str().ok());
        TraceContext::parse(parent, state)
    }

    /// The 16-byte trace id.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The caller's 8-byte span id: the parent of ours.
    pub fn span_id(&self) -> [u8; 8] {
        self.span_id
    }

    /// The trace flags (bit 0: sampled).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the caller sampled this trace.
    pub fn is_sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The `tracestate`, when one came with it.
    pub fn trace_state(&self) -> Option<&str> {
        self.state.as_deref()
    }

    /// Makes this context the parent of `span` (which must not have been entered yet); does
    /// nothing when no `tracing-opentelemetry` layer is installed.
    #[cfg(feature = "otel")]
    pub(crate) fn set_parent_of(&self, span: &tracing::Span) {
        use opentelemetry::trace::{
            SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
        };
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let state = self
            .state
            .as_deref()
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default();
        let remote = SpanContext::new(
            TraceId::from_bytes(self.trace_id),
            SpanId::from_bytes(self.span_id),
            TraceFlags::new(self.flags),
            true,
            state,
        );
        let parent = opentelemetry::Context::new().with_remote_span_context(remote);
        // Fails only when no OpenTelemetry layer is installed or the span already started:
        // the span then keeps the parent it has.
        let _ = span.set_parent(parent);
    }
}

/// `N` bytes from `2 * N` lowercase hex digits (W3C: uppercase is invalid).
fn hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    /// A digit's value, or `INVALID`.
    const INVALID: u8 = 0xff;
    const NIBBLES: [u8; 256] = {
        let mut table = [INVALID; 256];
        let mut d = 0;
        while d < 10 {
            table[b'0' as usize + d] = d as u8;
            d += 1;
        }
        let mut d = 0;
        while d < 6 {
            table[b'a' as usize + d] = 10 + d as u8;
            d += 1;
        }
        table
    };
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    // Any invalid digit sets the high bits of `bad`: one test at the end instead of one per
    // digit.
    let mut bad = 0u8;
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = (NIBBLES[usize::from(pair[0])], NIBBLES[usize::from(pair[1])]);
        bad |= high | low;
        *byte = high << 4 | low;
    }
    (bad & 0xf0 == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_a_version_00_traceparent_and_its_state() {
        let tc = TraceContext::parse(VALID, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(tc.trace_id()[0], 0x4b);
        assert_eq!(tc.span_id()[7], 0xb7);
        assert!(tc.is_sampled());
        assert_eq!(tc.trace_state(), Some("congo=t61rcWkgMzE"));
    }

    #[test]
    fn refuses_malformed_and_all_zero_ids() {
        for bad in [
            "",
            "00-abc-def-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad, None), None, "{bad}");
        }
    }

    #[test]
    fn a_later_version_may_append_fields() {
        let later = format!("01{}-more", &VALID[2..]);
        assert!(TraceContext::parse(&later, None).is_some());
    }

    #[test]
    fn reads_the_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", VALID.parse().unwrap());
        headers.insert("tracestate", "a=1".parse().unwrap());
        let tc = TraceContext::from_headers(&headers).unwrap();
        assert_eq!(tc.trace_state(), Some("a=1"));
        assert_eq!(TraceContext::from_headers(&HeaderMap::new()), None);
    }
}
