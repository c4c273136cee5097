//! `Forwarded` and `X-Forwarded-*` through the guard (`GuardLayer::check`), behind trusted
//! proxies.
//!
//! - Arbitrary header lines never panic; a peer that is not trusted has its proxy headers
//!   ignored (the client is the peer); the public URL's authority is a valid authority.
//! - A proxy chain written by a model (each hop appends the address of whoever connected to
//!   it, in any of the spellings RFC 7239 and the de facto `X-Forwarded-For` allow) resolves
//!   to the client the model says: walking back from the peer, the first address that is not
//!   a trusted proxy, or the first address written when all are trusted.

use std::net::{IpAddr, SocketAddr};

use http::{HeaderName, HeaderValue, Request};
use mcp_edge::guard::{Cidr, GuardLayer, PeerAddr, ProxyHeaders, TrustedProxies};

/// The trusted networks: 10.0.0.0/8 and 2001:db8:1::/48.
pub fn trusted(ip: IpAddr) -> bool {
    proxies(ProxyHeaders::PreferForwarded).contains(ip)
}

fn proxies(headers: ProxyHeaders) -> TrustedProxies {
    TrustedProxies::none()
        .with("10.0.0.0/8".parse::<Cidr>().unwrap())
        .with("2001:db8:1::/48".parse::<Cidr>().unwrap())
        .headers(headers)
}

fn guard(headers: ProxyHeaders) -> GuardLayer {
    GuardLayer::new()
        .allow_any_host()
        .allow_any_origin()
        .trusted_proxies(proxies(headers))
}

/// Which headers the guard reads, by index.
pub fn mode(i: u8) -> ProxyHeaders {
    match i % 3 {
        0 => ProxyHeaders::Forwarded,
        1 => ProxyHeaders::XForwarded,
        _ => ProxyHeaders::PreferForwarded,
    }
}

fn request(peer: IpAddr, lines: &[(HeaderName, HeaderValue)]) -> Request<()> {
    let mut request = Request::get("/mcp").body(()).unwrap();
    request
        .headers_mut()
        .insert("host", HeaderValue::from_static("mcp.example"));
    for (name, value) in lines {
        request.headers_mut().append(name.clone(), value.clone());
    }
    request
        .extensions_mut()
        .insert(PeerAddr(SocketAddr::new(peer, 40000)));
    request
}

/// Arbitrary header lines from `peer`.
pub fn check_lines(mode: ProxyHeaders, peer: IpAddr, lines: &[(HeaderName, HeaderValue)]) {
    let request = request(peer, lines);
    let Ok(origin) = guard(mode).check(&request) else {
        return;
    };
    if !trusted(peer) {
        assert_eq!(
            origin.client_ip(),
            Some(peer.to_canonical()),
            "untrusted peer"
        );
        assert_eq!(origin.public_url().authority(), "mcp.example");
    }
    let authority = origin.public_url().authority();
    assert!(
        authority.parse::<http::uri::Authority>().is_ok(),
        "public authority {authority:?}"
    );
    if let Some(ip) = origin.client_ip() {
        assert!(
            ip == peer.to_canonical() || written(lines, ip),
            "client {ip} was neither the peer nor in the headers"
        );
    }
}

/// Whether some header line may spell `ip`: an IPv4 address in its only text form (or as an
/// IPv4-mapped IPv6 address); IPv6 has too many spellings to look for, so any counts.
fn written(lines: &[(HeaderName, HeaderValue)], ip: IpAddr) -> bool {
    let text = ip.to_string();
    ip.is_ipv6()
        || lines.iter().any(|(_, value)| {
            let line = String::from_utf8_lossy(value.as_bytes()).to_ascii_lowercase();
            line.contains(&text) || line.contains("ffff")
        })
}

/// One proxy hop as a model: the address it saw, and how it spells it.
#[derive(Debug, Clone)]
pub struct Hop {
    /// The address of whoever connected to this proxy.
    pub ip: IpAddr,
    /// The spelling, by index: bare, with a port, IPv6 bracketed, quoted, upper-case `For`.
    pub style: u8,
    /// Whether this hop starts a new header line (else it appends to the last one).
    pub new_line: bool,
}

/// `for=` (or `X-Forwarded-For`) text for `ip`.
fn node(ip: IpAddr, style: u8, forwarded: bool) -> String {
    let (bare, with_port) = match ip {
        IpAddr::V4(v4) => (v4.to_string(), format!("{v4}:{}", 1000 + u16::from(style))),
        IpAddr::V6(v6) => {
            let bare = if forwarded {
                format!("[{v6}]")
            } else {
                v6.to_string()
            };
            (bare, format!("[{v6}]:{}", 1000 + u16::from(style)))
        }
    };
    let text = if style & 1 == 0 { bare } else { with_port };
    if !forwarded {
        return text;
    }
    let quote = ip.is_ipv6() || style & 1 == 1 || style & 2 == 2;
    let name = if style & 4 == 4 { "For" } else { "for" };
    let extra = if style & 8 == 8 { ";proto=https" } else { "" };
    if quote {
        format!("{name}=\"{text}\"{extra}")
    } else {
        format!("{name}={text}{extra}")
    }
}

/// The chain `client → hops[0] → … → peer`: each hop appended the address before it. Checks
/// the client the guard resolves.
pub fn check_chain(forwarded: bool, client: IpAddr, hops: &[Hop], peer: IpAddr) {
    // hops[i].ip is the address of proxy i; the list the peer forwards is client, hops...
    let mut entries = vec![(client, 0u8, true)];
    entries.extend(hops.iter().map(|h| (h.ip, h.style, h.new_line)));
    let name = if forwarded {
        "forwarded"
    } else {
        "x-forwarded-for"
    };
    let mut lines: Vec<String> = Vec::new();
    for (ip, style, new_line) in &entries {
        let text = node(*ip, *style, forwarded);
        match lines.last_mut() {
            Some(line) if !new_line => {
                line.push_str(if style & 16 == 16 { " ,\t" } else { ", " });
                line.push_str(&text);
            }
            _ => lines.push(text),
        }
    }
    let lines: Vec<(HeaderName, HeaderValue)> = lines
        .into_iter()
        .map(|l| {
            (
                HeaderName::from_static(name),
                HeaderValue::from_str(&l).unwrap(),
            )
        })
        .collect();
    let mode = if forwarded {
        ProxyHeaders::Forwarded
    } else {
        ProxyHeaders::XForwarded
    };
    let origin = guard(mode)
        .check(&request(peer, &lines))
        .unwrap_or_else(|e| panic!("refused {lines:?}: {e:?}"));

    // The model: walk back from the peer.
    let expected = if !trusted(peer) {
        peer
    } else {
        let mut found = entries[0].0;
        for (ip, _, _) in entries.iter().rev() {
            if !trusted(*ip) {
                found = *ip;
                break;
            }
        }
        found
    };
    assert_eq!(
        origin.client_ip(),
        Some(expected.to_canonical()),
        "chain {lines:?} from {peer}"
    );
    assert_eq!(origin.is_forwarded(), trusted(peer));
}
