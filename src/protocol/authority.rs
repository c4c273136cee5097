//! `host[:port]` authorities (RFC 3986 §3.2.2) and scheme default ports (RFC 6454 §4), parsed
//! without allocating: the HTTP wire knowledge that the guard's allowlists and the public URL
//! both read.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A parsed `host[:port]`, borrowed from the header it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Authority<'a> {
    /// The host as written, brackets included for IPv6 literals.
    pub(crate) host: &'a str,
    /// The host as an address, when it is an IP literal.
    pub(crate) ip: Option<IpAddr>,
    pub(crate) port: Option<u16>,
}

impl<'a> Authority<'a> {
    /// Parses `host[:port]`: a registered name (letters, digits, `-`, `.`, `_`, `~`), a dotted
    /// IPv4 address or a bracketed IPv6 address, then an optional decimal port. Anything else
    /// (userinfo, paths, spaces, bare IPv6, out-of-range ports) is `None`.
    pub(crate) fn parse(value: &'a str) -> Option<Self> {
        if value.is_empty() || value.len() > 255 + 8 {
            return None;
        }
        let (host, rest, ip) = if let Some(inner) = value.strip_prefix('[') {
            let end = inner.find(']')?;
            let ip = Ipv6Addr::from_str(&inner[..end]).ok()?;
            let host = &value[..end + 2];
            (host, &value[end + 2..], Some(IpAddr::V6(ip)))
        } else {
            let end = value.find(':').unwrap_or(value.len());
            let host = &value[..end];
            if host.is_empty() || !host.bytes().all(is_reg_name_byte) {
                return None;
            }
            let ip = Ipv4Addr::from_str(host).ok().map(IpAddr::V4);
            (host, &value[end..], ip)
        };
        let port = match rest {
            "" => None,
            _ => {
                let digits = rest.strip_prefix(':')?;
                if digits.is_empty() {
                    // `host:` is allowed by RFC 3986 and means the default port.
                    None
                } else {
                    Some(parse_port(digits)?)
                }
            }
        };
        Some(Authority { host, ip, port })
    }

    /// The host without a trailing dot (`example.com.` names `example.com`).
    pub(crate) fn name(&self) -> &'a str {
        trim_dot(self.host)
    }
}

pub(crate) fn parse_port(digits: &str) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(crate) fn is_reg_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

pub(crate) fn trim_dot(host: &str) -> &str {
    host.strip_suffix('.').unwrap_or(host)
}

/// The port a scheme implies when an origin omits it (RFC 6454 §4).
pub(crate) fn default_port(scheme: &str) -> Option<u16> {
    if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss") {
        Some(443)
    } else if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("ws") {
        Some(80)
    } else {
        None
    }
}

/// A host, origin or proxy entry that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPattern {
    kind: &'static str,
    value: Box<str>,
}

impl InvalidPattern {
    pub(crate) fn new(kind: &'static str, value: &str) -> Self {
        InvalidPattern {
            kind,
            value: value.into(),
        }
    }
}

impl fmt::Display for InvalidPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} entry {:?}", self.kind, self.value)
    }
}

impl std::error::Error for InvalidPattern {}
