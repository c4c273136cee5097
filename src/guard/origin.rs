//! `Origin` values (RFC 6454) and the origin allowlist.

use std::fmt;
use std::str::FromStr;

use super::host::{Authority, HostName, InvalidPattern, parse_port};
use crate::context::PublicUrl;
pub(crate) use crate::protocol::authority::default_port;

/// A parsed `Origin` header value, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OriginValue<'a> {
    /// `Origin: null` (sandboxed frames, `file:` pages, some redirects).
    Null,
    Tuple {
        /// As written; compare case-insensitively.
        scheme: &'a str,
        authority: Authority<'a>,
    },
}

impl<'a> OriginValue<'a> {
    /// Parses `null` or `scheme://host[:port]` (no path, no userinfo; a single trailing `/`
    /// is tolerated).
    pub(crate) fn parse(value: &'a str) -> Option<Self> {
        if value == "null" {
            return Some(OriginValue::Null);
        }
        let (scheme, rest) = value.split_once("://")?;
        if !is_scheme(scheme) {
            return None;
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let authority = Authority::parse(rest)?;
        Some(OriginValue::Tuple { scheme, authority })
    }
}

fn is_scheme(scheme: &str) -> bool {
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// One entry of the `Origin` allowlist.
///
/// Written as an origin (`https://app.example.com`, `http://localhost:6274`), with `:*` for any
/// port (`http://localhost:*`), `*.` for any subdomain (`https://*.example.com`), or `null` for
/// the opaque origin browsers send from sandboxed frames and `file:` pages. Matching follows
/// RFC 6454: scheme, host and port must all be equal, a missing port means the scheme's default
/// (so `https://app.example.com` matches `https://app.example.com:443` and nothing else).
///
/// ```
/// use mcp_edge::guard::OriginPattern;
///
/// let app: OriginPattern = "https://app.example.com".parse().unwrap();
/// assert!(app.matches("https://app.example.com"));
/// assert!(app.matches("HTTPS://APP.example.com:443"));
/// assert!(!app.matches("http://app.example.com"));
/// assert!(!app.matches("https://app.example.com:8443"));
///
/// let local: OriginPattern = "http://localhost:*".parse().unwrap();
/// assert!(local.matches("http://localhost:6274"));
/// assert!(!local.matches("null"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    kind: PatternKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PatternKind {
    Null,
    Tuple {
        /// Lowercase.
        scheme: Box<str>,
        host: HostName,
        /// `None`: any port. `Some(p)`: exactly the effective port `p` (a scheme without a
        /// default port and no port written gives `Some(None)`).
        port: Option<Option<u16>>,
    },
}

impl OriginPattern {
    /// `http://` and `https://` origins on `localhost`, `127.0.0.1` and `[::1]`, any port.
    pub fn loopback() -> Vec<OriginPattern> {
        let mut patterns = Vec::with_capacity(6);
        for scheme in ["http", "https"] {
            for host in ["localhost", "127.0.0.1", "[::1]"] {
                patterns.push(OriginPattern {
                    kind: PatternKind::Tuple {
                        scheme: scheme.into(),
                        host: HostName::parse(host).expect("loopback host parses"),
                        port: None,
                    },
                });
            }
        }
        patterns
    }

    /// Whether an `Origin` header value is accepted by this entry. Malformed values never
    /// match.
    pub fn matches(&self, origin: &str) -> bool {
        OriginValue::parse(origin).is_some_and(|o| self.matches_value(&o))
    }

    pub(crate) fn matches_value(&self, origin: &OriginValue<'_>) -> bool {
        match (&self.kind, origin) {
            (PatternKind::Null, OriginValue::Null) => true,
            (
                PatternKind::Tuple { scheme, host, port },
                OriginValue::Tuple {
                    scheme: o_scheme,
                    authority,
                },
            ) => {
                o_scheme.eq_ignore_ascii_case(scheme)
                    && host.matches(authority)
                    && port.is_none_or(|p| p == authority.port.or_else(|| default_port(o_scheme)))
            }
            _ => false,
        }
    }
}

/// Whether an origin is the same origin (scheme, host, port) as this server's public URL.
pub(crate) fn same_origin(origin: &OriginValue<'_>, url: &PublicUrl) -> bool {
    let OriginValue::Tuple { scheme, authority } = origin else {
        return false;
    };
    let Some(own) = Authority::parse(url.authority()) else {
        return false;
    };
    scheme.eq_ignore_ascii_case(url.scheme())
        && match (authority.ip, own.ip) {
            (Some(a), Some(b)) => a == b,
            (None, None) => authority.name().eq_ignore_ascii_case(own.name()),
            _ => false,
        }
        && authority.port.or_else(|| default_port(scheme))
            == own.port.or_else(|| default_port(url.scheme()))
}

impl FromStr for OriginPattern {
    type Err = InvalidPattern;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidPattern::new("origin", value);
        let value = value.trim();
        if value.eq_ignore_ascii_case("null") {
            return Ok(OriginPattern {
                kind: PatternKind::Null,
            });
        }
        let (scheme, rest) = value.split_once("://").ok_or_else(invalid)?;
        if !is_scheme(scheme) {
            return Err(invalid());
        }
        let scheme = scheme.to_ascii_lowercase();
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = if rest.starts_with('[') {
            match rest.rfind("]:") {
                Some(i) => (&rest[..=i], Some(&rest[i + 2..])),
                None => (rest, None),
            }
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        let port = match port {
            Some("*") => None,
            Some(digits) => Some(Some(parse_port(digits).ok_or_else(invalid)?)),
            None => Some(default_port(&scheme)),
        };
        let host = HostName::parse(host).ok_or_else(invalid)?;
        if host.is_bare_ipv6_input(rest) {
            return Err(invalid());
        }
        Ok(OriginPattern {
            kind: PatternKind::Tuple {
                scheme: scheme.into_boxed_str(),
                host,
                port,
            },
        })
    }
}

impl HostName {
    /// In an origin, an IPv6 host must be bracketed.
    fn is_bare_ipv6_input(&self, written: &str) -> bool {
        matches!(self, HostName::Ip(std::net::IpAddr::V6(_))) && !written.starts_with('[')
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            PatternKind::Null => f.write_str("null"),
            PatternKind::Tuple { scheme, host, port } => {
                write!(f, "{scheme}://")?;
                match host {
                    HostName::Ip(std::net::IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
                    HostName::Ip(ip) => write!(f, "{ip}")?,
                    HostName::Name(name) => f.write_str(name)?,
                    HostName::Subdomains(name) => write!(f, "*.{name}")?,
                }
                match port {
                    None => f.write_str(":*"),
                    Some(p) if *p == default_port(scheme) => Ok(()),
                    Some(Some(p)) => write!(f, ":{p}"),
                    Some(None) => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_values_parse() {
        assert_eq!(OriginValue::parse("null"), Some(OriginValue::Null));
        let Some(OriginValue::Tuple { scheme, authority }) =
            OriginValue::parse("https://[::1]:8443")
        else {
            panic!("did not parse");
        };
        assert_eq!(scheme, "https");
        assert_eq!(authority.port, Some(8443));
        for bad in [
            "",
            "evil.example.com",
            "https://",
            "https://a b",
            "https://user@host",
            "https://host/path",
            "1http://host",
            "https://host:99999",
            "NULL ",
            "https://host:8080:1",
        ] {
            assert!(OriginValue::parse(bad).is_none(), "{bad:?} parsed");
        }
    }

    #[test]
    fn origin_patterns_match() {
        let cases: [(&str, &[&str], &[&str]); 7] = [
            // Default ports are implied both ways.
            (
                "https://app.example.com:443",
                &["https://app.example.com"],
                &[],
            ),
            (
                "http://app.example.com",
                &["http://app.example.com:80"],
                &["http://app.example.com:8080"],
            ),
            // `null` matches only `null`.
            ("null", &["null"], &["http://localhost"]),
            ("http://localhost:*", &[], &["null"]),
            // Subdomains and IPv6.
            (
                "https://*.example.com",
                &["https://a.example.com"],
                &["https://example.com", "https://a.example.com.evil.net"],
            ),
            ("http://[::1]:*", &["http://[::1]:3000"], &[]),
            // Custom schemes have no default port.
            (
                "chrome-extension://abcdef",
                &["chrome-extension://abcdef"],
                &["chrome-extension://abcdef:80"],
            ),
        ];
        for (pattern, matching, other) in cases {
            let parsed: OriginPattern = pattern.parse().unwrap();
            for origin in matching {
                assert!(parsed.matches(origin), "{pattern} should match {origin}");
            }
            for origin in other {
                assert!(
                    !parsed.matches(origin),
                    "{pattern} should not match {origin}"
                );
            }
        }
        assert!("http://::1".parse::<OriginPattern>().is_err());
    }

    #[test]
    fn invalid_origin_patterns_are_errors() {
        for bad in [
            "",
            "example.com",
            "https://",
            "https://h:x",
            "https://h:1:*",
            "null:*",
        ] {
            assert!(bad.parse::<OriginPattern>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "null",
            "https://app.example.com",
            "http://localhost:*",
            "http://[::1]:8080",
            "https://*.example.com",
        ] {
            assert_eq!(text.parse::<OriginPattern>().unwrap().to_string(), text);
        }
    }
}
