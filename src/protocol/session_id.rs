//! The `Mcp-Session-Id` value (SPEC R23–R25).

use std::fmt;
use std::sync::Arc;

use http::HeaderValue;

/// A validated MCP session id: 1 to [`SessionId::MAX_LEN`] visible ASCII characters
/// (`0x21`–`0x7E`, R24).
///
/// Cheap to clone. Put in the request and response extensions by the session layer.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Arc<str>);

impl SessionId {
    /// The longest id accepted. Generous for JWT-style ids, small enough to bound memory.
    pub const MAX_LEN: usize = 1024;

    /// Validates `bytes` as a session id.
    pub fn from_bytes(bytes: &[u8]) -> Result<SessionId, InvalidSessionId> {
        if bytes.is_empty() {
            return Err(InvalidSessionId::Empty);
        }
        if bytes.len() > Self::MAX_LEN {
            return Err(InvalidSessionId::TooLong);
        }
        if !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
            return Err(InvalidSessionId::InvalidCharacter);
        }
        // All bytes are ASCII, so this cannot fail.
        let text = std::str::from_utf8(bytes).map_err(|_| InvalidSessionId::InvalidCharacter)?;
        Ok(SessionId(Arc::from(text)))
    }

    /// Validates a header value as a session id.
    pub fn from_header(value: &HeaderValue) -> Result<SessionId, InvalidSessionId> {
        Self::from_bytes(value.as_bytes())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a header value.
    pub fn to_header_value(&self) -> HeaderValue {
        // Validated as visible ASCII, which is always a valid header value.
        HeaderValue::from_str(&self.0).expect("visible ASCII is a valid header value")
    }
}

impl std::str::FromStr for SessionId {
    type Err = InvalidSessionId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_bytes(s.as_bytes())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SessionId").field(&&*self.0).finish()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SessionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Why a value is not a valid session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidSessionId {
    /// The value is empty.
    Empty,
    /// The value is longer than [`SessionId::MAX_LEN`].
    TooLong,
    /// The value has a character outside `0x21`–`0x7E`.
    InvalidCharacter,
}

impl fmt::Display for InvalidSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidSessionId::Empty => "session id is empty",
            InvalidSessionId::TooLong => "session id is too long",
            InvalidSessionId::InvalidCharacter => {
                "session id has a character outside visible ASCII (0x21-0x7E)"
            }
        })
    }
}

impl std::error::Error for InvalidSessionId {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_visible_ascii_and_rejects_the_rest() {
        assert_eq!(
            SessionId::from_bytes(b"abc-123_XYZ.~!").unwrap().as_str(),
            "abc-123_XYZ.~!"
        );
        assert_eq!(SessionId::from_bytes(b""), Err(InvalidSessionId::Empty));
        assert_eq!(
            SessionId::from_bytes(b"a b"),
            Err(InvalidSessionId::InvalidCharacter)
        );
        assert_eq!(
            SessionId::from_bytes(b"a\x7f"),
            Err(InvalidSessionId::InvalidCharacter)
        );
        assert_eq!(
            SessionId::from_bytes("é".as_bytes()),
            Err(InvalidSessionId::InvalidCharacter)
        );
        assert_eq!(
            SessionId::from_bytes(&[b'a'; SessionId::MAX_LEN + 1]),
            Err(InvalidSessionId::TooLong)
        );
        assert!(SessionId::from_bytes(&[b'a'; SessionId::MAX_LEN]).is_ok());
    }

    #[test]
    fn round_trips_through_a_header_value() {
        let id: SessionId = "0f3c2b9e-1d4a-4f7e-9a7b-2c1d3e4f5a6b".parse().unwrap();
        assert_eq!(SessionId::from_header(&id.to_header_value()).unwrap(), id);
    }
}
