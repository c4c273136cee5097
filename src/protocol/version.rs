//! Protocol versions and eras (SPEC R33–R37, §L.1, §L.6).

use std::fmt;
use std::str::FromStr;

/// A protocol version mcp-edge knows.
///
/// Ordered by date, so `v >= ProtocolVersion::V2026_07_28` asks "is this modern?".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ProtocolVersion {
    /// `2024-11-05`, the HTTP+SSE transport era (accepted for compatibility).
    V2024_11_05,
    /// `2025-03-26`: Streamable HTTP, sessions, batching.
    V2025_03_26,
    /// `2025-06-18`: batching removed, `MCP-Protocol-Version` header.
    V2025_06_18,
    /// `2025-11-25`: priming events, SSE polling.
    V2025_11_25,
    /// `2026-07-28`: stateless, per-request `_meta`, `Mcp-Method` / `Mcp-Name` headers.
    V2026_07_28,
}

impl ProtocolVersion {
    /// Every known version, oldest first.
    pub const ALL: [ProtocolVersion; 5] = [
        ProtocolVersion::V2024_11_05,
        ProtocolVersion::V2025_03_26,
        ProtocolVersion::V2025_06_18,
        ProtocolVersion::V2025_11_25,
        ProtocolVersion::V2026_07_28,
    ];

    /// The version assumed when a legacy request carries no `MCP-Protocol-Version` (R34).
    pub const DEFAULT_LEGACY: ProtocolVersion = ProtocolVersion::V2025_03_26;

    /// The newest version.
    pub const LATEST: ProtocolVersion = ProtocolVersion::V2026_07_28;

    /// The version's wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProtocolVersion::V2024_11_05 => "2024-11-05",
            ProtocolVersion::V2025_03_26 => "2025-03-26",
            ProtocolVersion::V2025_06_18 => "2025-06-18",
            ProtocolVersion::V2025_11_25 => "2025-11-25",
            ProtocolVersion::V2026_07_28 => "2026-07-28",
        }
    }

    /// The era this version belongs to.
    pub const fn era(self) -> Era {
        match self {
            ProtocolVersion::V2026_07_28 => Era::Modern,
            _ => Era::Legacy,
        }
    }

    /// Whether a 2025-03-26 style JSON array batch is allowed (R5).
    pub const fn allows_batch(self) -> bool {
        matches!(
            self,
            ProtocolVersion::V2024_11_05 | ProtocolVersion::V2025_03_26
        )
    }

    /// Parses an `MCP-Protocol-Version` header value.
    ///
    /// Some clients send a comma list (`2025-11-25, 2025-06-18`, R33): the first known entry
    /// wins. Surrounding whitespace is ignored.
    pub fn from_header(value: &[u8]) -> Result<ProtocolVersion, UnknownVersion> {
        // The usual value, one version as is: no UTF-8 check, no split.
        if let Some(version) = ProtocolVersion::ALL
            .into_iter()
            .find(|v| v.as_str().as_bytes() == value)
        {
            return Ok(version);
        }
        let text = std::str::from_utf8(value).map_err(|_| UnknownVersion::new("<non-UTF-8>"))?;
        text.split(',')
            .map(str::trim)
            .find_map(|part| part.parse().ok())
            .ok_or_else(|| UnknownVersion::new(text.trim()))
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProtocolVersion {
    type Err = UnknownVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProtocolVersion::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownVersion::new(s))
    }
}

/// A protocol version string mcp-edge does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVersion {
    requested: Box<str>,
}

impl UnknownVersion {
    fn new(requested: &str) -> Self {
        // Bound what we keep from a hostile header.
        let end = requested
            .char_indices()
            .nth(64)
            .map_or(requested.len(), |(i, _)| i);
        UnknownVersion {
            requested: requested[..end].into(),
        }
    }

    /// The value that was asked for (at most 64 characters of it).
    pub fn requested(&self) -> &str {
        &self.requested
    }
}

impl fmt::Display for UnknownVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unsupported protocol version {:?}", self.requested)
    }
}

impl std::error::Error for UnknownVersion {}

/// The two protocol eras that share one endpoint (SPEC §L.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Era {
    /// 2024-11-05 to 2025-11-25: `initialize`, `Mcp-Session-Id`, GET streams, resumption.
    Legacy,
    /// 2026-07-28 and later: stateless, per-request `_meta`, POST only.
    Modern,
}

impl Era {
    /// `"legacy"` or `"modern"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Era::Legacy => "legacy",
            Era::Modern => "modern",
        }
    }

    /// Whether the era defines `method`, going by the methods one era added or removed (R68):
    /// 2026-07-28 removed `initialize` (and `notifications/initialized`), `ping`,
    /// `logging/setLevel`, `resources/subscribe`, `resources/unsubscribe` and
    /// `notifications/roots/list_changed`, and added `server/discover` and
    /// `subscriptions/listen`. Any other method counts as defined.
    ///
    /// The edge does not judge the params of a method the request's era does not define: the
    /// server answers it itself (2026-07-28: `404` with `-32601`, R43).
    pub fn defines(self, method: &str) -> bool {
        match self {
            Era::Legacy => !matches!(method, "server/discover" | "subscriptions/listen"),
            Era::Modern => !matches!(
                method,
                "initialize"
                    | "notifications/initialized"
                    | "ping"
                    | "logging/setLevel"
                    | "resources/subscribe"
                    | "resources/unsubscribe"
                    | "notifications/roots/list_changed"
            ),
        }
    }
}

impl fmt::Display for Era {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_known_version_and_orders_them() {
        for v in ProtocolVersion::ALL {
            assert_eq!(v.as_str().parse::<ProtocolVersion>().unwrap(), v);
        }
        assert!(ProtocolVersion::V2025_11_25 < ProtocolVersion::V2026_07_28);
        assert_eq!(ProtocolVersion::V2026_07_28.era(), Era::Modern);
        assert_eq!(ProtocolVersion::V2025_06_18.era(), Era::Legacy);
    }

    #[test]
    fn methods_removed_or_added_by_2026_07_28() {
        for method in [
            "resources/subscribe",
            "resources/unsubscribe",
            "ping",
            "initialize",
        ] {
            assert!(Era::Legacy.defines(method), "{method}");
            assert!(!Era::Modern.defines(method), "{method}");
        }
        assert!(Era::Modern.defines("subscriptions/listen"));
        assert!(!Era::Legacy.defines("subscriptions/listen"));
        for method in ["tools/call", "resources/read", "x/unknown"] {
            assert!(Era::Legacy.defines(method) && Era::Modern.defines(method));
        }
    }

    #[test]
    fn header_comma_list_takes_first_known() {
        assert_eq!(
            ProtocolVersion::from_header(b"2025-11-25, 2025-06-18").unwrap(),
            ProtocolVersion::V2025_11_25
        );
        assert_eq!(
            ProtocolVersion::from_header(b"1999-01-01, 2025-06-18").unwrap(),
            ProtocolVersion::V2025_06_18
        );
        assert_eq!(
            ProtocolVersion::from_header(b" 2026-07-28 ").unwrap(),
            ProtocolVersion::V2026_07_28
        );
    }

    #[test]
    fn unknown_and_hostile_headers_are_typed_errors() {
        let err = ProtocolVersion::from_header(b"2030-01-01").unwrap_err();
        assert_eq!(err.requested(), "2030-01-01");
        assert!(ProtocolVersion::from_header(b"\xff\xfe").is_err());
        assert!(ProtocolVersion::from_header(b"").is_err());
        let long = "x".repeat(10_000);
        assert_eq!(
            ProtocolVersion::from_header(long.as_bytes())
                .unwrap_err()
                .requested()
                .len(),
            64
        );
    }
}
