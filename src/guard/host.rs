//! `Host` values and the host allowlist: `host[:port]` parsing (RFC 3986 §3.2.2) without
//! allocating, and [`HostPattern`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

pub(crate) use crate::protocol::InvalidPattern;
pub(crate) use crate::protocol::authority::{Authority, is_reg_name_byte, parse_port, trim_dot};

/// One host an allowlist accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostName {
    /// An IP literal, compared as an address (`[::1]` equals `[0::1]`).
    Ip(IpAddr),
    /// A name, lowercase, no trailing dot.
    Name(Box<str>),
    /// `*.example.com`: any subdomain of the name (not the name itself).
    Subdomains(Box<str>),
}

impl HostName {
    pub(crate) fn parse(host: &str) -> Option<Self> {
        if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            return Ipv6Addr::from_str(inner)
                .ok()
                .map(|ip| HostName::Ip(IpAddr::V6(ip)));
        }
        if let Ok(ip) = IpAddr::from_str(host) {
            // Bare `::1` is accepted in configuration, as rmcp does.
            return Some(HostName::Ip(ip));
        }
        let (wildcard, name) = match host.strip_prefix("*.") {
            Some(name) => (true, name),
            None => (false, host),
        };
        let name = trim_dot(name);
        if name.is_empty() || !name.bytes().all(is_reg_name_byte) {
            return None;
        }
        let name = name.to_ascii_lowercase().into_boxed_str();
        Some(if wildcard {
            HostName::Subdomains(name)
        } else {
            HostName::Name(name)
        })
    }

    pub(crate) fn matches(&self, host: &Authority<'_>) -> bool {
        match self {
            HostName::Ip(ip) => host.ip.is_some_and(|h| h == *ip),
            HostName::Name(name) => host.ip.is_none() && host.name().eq_ignore_ascii_case(name),
            HostName::Subdomains(parent) => {
                let name = host.name();
                host.ip.is_none()
                    && name.len() > parent.len() + 1
                    && name.as_bytes()[name.len() - parent.len() - 1] == b'.'
                    && name[name.len() - parent.len()..].eq_ignore_ascii_case(parent)
            }
        }
    }

    fn fmt_host(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostName::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            HostName::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            HostName::Name(name) => f.write_str(name),
            HostName::Subdomains(name) => write!(f, "*.{name}"),
        }
    }
}

/// A port an allowlist entry accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortPattern {
    /// Any port (`:*`, or no port in a host entry).
    Any,
    /// Exactly this port.
    Exact(u16),
}

/// One entry of the `Host` allowlist: a host and which ports it may use.
///
/// Written as `localhost` (any port), `mcp.example.com:8443` (that port only),
/// `mcp.example.com:*` (any port), `*.example.com` (any subdomain, any port), `127.0.0.1`,
/// `[::1]` (bare `::1` is accepted too). Names compare case-insensitively and ignore a trailing
/// dot; IP literals compare as addresses.
///
/// ```
/// use mcp_edge::guard::HostPattern;
///
/// let pattern: HostPattern = "*.example.com:443".parse().unwrap();
/// assert!(pattern.matches("api.Example.com:443"));
/// assert!(!pattern.matches("example.com:443"));
/// assert!(!pattern.matches("api.example.com:8443"));
/// assert!("user@host".parse::<HostPattern>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    pub(crate) host: HostName,
    pub(crate) port: PortPattern,
}

impl HostPattern {
    /// `localhost`, `127.0.0.1` and `[::1]`, each on any port.
    pub fn loopback() -> [HostPattern; 3] {
        [
            HostPattern {
                host: HostName::Name("localhost".into()),
                port: PortPattern::Any,
            },
            HostPattern {
                host: HostName::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                port: PortPattern::Any,
            },
            HostPattern {
                host: HostName::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
                port: PortPattern::Any,
            },
        ]
    }

    /// Whether a `Host` value (`host[:port]`) is accepted by this entry. Malformed values
    /// never match.
    pub fn matches(&self, host: &str) -> bool {
        Authority::parse(host).is_some_and(|a| self.matches_authority(&a))
    }

    pub(crate) fn matches_authority(&self, host: &Authority<'_>) -> bool {
        self.host.matches(host)
            && match self.port {
                PortPattern::Any => true,
                PortPattern::Exact(port) => host.port == Some(port),
            }
    }
}

impl FromStr for HostPattern {
    type Err = InvalidPattern;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidPattern::new("host", value);
        let value = value.trim();
        // Split off a port, minding IPv6 brackets and bare IPv6 literals.
        let (host, port) = if value.starts_with('[') {
            match value.rfind("]:") {
                Some(i) => (&value[..=i], Some(&value[i + 2..])),
                None => (value, None),
            }
        } else if value.matches(':').count() == 1 {
            let (host, port) = value.split_once(':').ok_or_else(invalid)?;
            (host, Some(port))
        } else {
            (value, None)
        };
        let port = match port {
            None | Some("*") => PortPattern::Any,
            Some(digits) => PortPattern::Exact(parse_port(digits).ok_or_else(invalid)?),
        };
        let host = HostName::parse(host).ok_or_else(invalid)?;
        Ok(HostPattern { host, port })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.host.fmt_host(f)?;
        match self.port {
            PortPattern::Any => Ok(()),
            PortPattern::Exact(port) => write!(f, ":{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_parses_names_ipv4_ipv6_and_ports() {
        let a = Authority::parse("Example.com:8080").unwrap();
        assert_eq!((a.host, a.port, a.ip), ("Example.com", Some(8080), None));
        let a = Authority::parse("127.0.0.1").unwrap();
        assert_eq!(a.ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let a = Authority::parse("[::1]:3000").unwrap();
        assert_eq!((a.host, a.port), ("[::1]", Some(3000)));
        assert_eq!(a.ip, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        let a = Authority::parse("localhost:").unwrap();
        assert_eq!(a.port, None);
        assert_eq!(
            Authority::parse("example.com.").unwrap().name(),
            "example.com"
        );
    }

    #[test]
    fn authority_refuses_garbage_without_panicking() {
        for bad in [
            "",
            ":80",
            "::1",
            "[::1",
            "[::1]x",
            "[nope]",
            "host:99999",
            "host:-1",
            "host:8o",
            "user@host",
            "host/path",
            "a b",
            "host:1:2",
            "\u{e9}t\u{e9}.fr",
            "[::1]:80:80",
            "[]",
        ] {
            assert!(Authority::parse(bad).is_none(), "{bad:?} parsed");
        }
        let long = "a".repeat(10_000);
        assert!(Authority::parse(&long).is_none());
    }

    #[test]
    fn host_patterns_match_per_port_and_case() {
        let cases: [(&str, &[&str], &[&str]); 7] = [
            (
                "LocalHost",
                &["localhost:1234", "LOCALHOST", "localhost."],
                &["localhost.evil.example.com"],
            ),
            (
                "example.com:8443",
                &["example.com:8443"],
                &["example.com", "example.com:443"],
            ),
            ("example.com:*", &["example.com:1"], &[]),
            ("::1", &["[::1]:8080", "[0:0:0:0:0:0:0:1]"], &[]),
            ("[::1]:8080", &["[::1]:8080"], &["[::1]:8081"]),
            ("127.0.0.1", &["127.0.0.1:9"], &["127.0.0.2"]),
            (
                "*.example.com",
                &["a.b.example.com"],
                &["example.com", "badexample.com"],
            ),
        ];
        for (pattern, matching, other) in cases {
            let parsed: HostPattern = pattern.parse().unwrap();
            for host in matching {
                assert!(parsed.matches(host), "{pattern} should match {host}");
            }
            for host in other {
                assert!(!parsed.matches(host), "{pattern} should not match {host}");
            }
        }
    }

    #[test]
    fn host_pattern_display_round_trips() {
        for text in [
            "localhost",
            "example.com:8443",
            "[::1]",
            "*.example.com",
            "10.0.0.1:80",
        ] {
            let pattern: HostPattern = text.parse().unwrap();
            assert_eq!(pattern.to_string(), text);
        }
    }

    #[test]
    fn invalid_host_patterns_are_errors() {
        for bad in [
            "",
            "a b",
            "host:x",
            "http://host",
            "[::1",
            "*.",
            "host:99999",
        ] {
            assert!(bad.parse::<HostPattern>().is_err(), "{bad:?} parsed");
        }
    }
}
