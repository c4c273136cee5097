//! [`TrustedProxies`]: which peers may tell us the client's address, the public host and the
//! scheme, through `Forwarded` (RFC 7239) or `X-Forwarded-For` / `-Host` / `-Proto` / `-Port`.
//!
//! Proxy headers are attacker-controlled unless the peer that sent them is a proxy we run, so
//! they are read only when the connecting peer is in the set. A chain of proxies is walked
//! from the nearest hop outwards, as long as each hop is trusted: the client is the first
//! untrusted address, and the host and scheme are those the outermost trusted hop reported.
//! Values a client wrote itself sit to the left of what our proxies appended and are never
//! reached.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use http::header::{FORWARDED, HeaderName};
use http::{HeaderMap, HeaderValue};
use ipnet::{IpNet, Ipv4Net};

use super::host::{Authority, InvalidPattern, parse_port};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");

/// An IP network: an address and a prefix length (`10.0.0.0/8`, `fd00::/8`, or a single
/// address such as `127.0.0.1`, meaning `/32`, or `::1`, meaning `/128`).
///
/// A thin wrapper around [`ipnet::IpNet`], which does the parsing and the containment test
/// (convert with `From` either way). What it adds: a bare address is a network of one,
/// `[v6]` brackets are accepted, host bits are cleared, and IPv4-mapped IPv6 addresses
/// (`::ffff:10.1.2.3`, what a dual-stack listener reports for IPv4 peers) are matched as the
/// IPv4 address they carry (a mapped network such as `::ffff:10.0.0.0/104` is `10.0.0.0/8`).
///
/// ```
/// use mcp_edge::guard::Cidr;
///
/// let net: Cidr = "10.0.0.0/8".parse().unwrap();
/// assert!(net.contains("10.200.0.1".parse().unwrap()));
/// assert!(net.contains("::ffff:10.0.0.1".parse().unwrap()));
/// assert!(!net.contains("11.0.0.1".parse().unwrap()));
/// assert!("10.0.0.0/33".parse::<Cidr>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr(IpNet);

impl Cidr {
    /// The network of `addr` with `prefix` bits (host bits are cleared); `None` when the
    /// prefix is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        IpNet::new(addr.to_canonical(), prefix)
            .ok()
            .map(|net| Cidr(net.trunc()))
    }

    /// Whether `ip` is inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }

    /// The network as an [`IpNet`].
    pub fn as_ipnet(&self) -> IpNet {
        self.0
    }
}

impl From<IpNet> for Cidr {
    /// Clears host bits, and makes an IPv4-mapped network of at least 96 bits an IPv4 one.
    fn from(net: IpNet) -> Self {
        let net = match net {
            IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
                Some(v4) => Ipv4Net::new(v4, v6.prefix_len() - 96)
                    .map(IpNet::V4)
                    .unwrap_or(net),
                None => net,
            },
            _ => net,
        };
        Cidr(net.trunc())
    }
}

impl From<Cidr> for IpNet {
    fn from(cidr: Cidr) -> Self {
        cidr.0
    }
}

impl FromStr for Cidr {
    type Err = InvalidPattern;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidPattern::new("trusted proxy", value);
        let value = value.trim();
        let (addr, prefix) = match value.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (value, None),
        };
        let unbracketed = addr.strip_prefix('[').and_then(|a| a.strip_suffix(']'));
        // std's address parser refuses what could be read two ways (`010.0.0.1`: octal?),
        // which ipnet's accepts: the address must pass both.
        let ip = IpAddr::from_str(unbracketed.unwrap_or(addr)).map_err(|_| invalid())?;
        let net = match (prefix, unbracketed) {
            (None, _) => IpNet::from(ip),
            (Some(_), None) => IpNet::from_str(value).map_err(|_| invalid())?,
            (Some(prefix), Some(addr)) => {
                IpNet::from_str(&format!("{addr}/{prefix}")).map_err(|_| invalid())?
            }
        };
        // A mapped address with a prefix that cuts into the mapping bits names no IPv4 network.
        if let IpNet::V6(v6) = net
            && v6.addr().to_ipv4_mapped().is_some()
            && v6.prefix_len() < 96
        {
            return Err(invalid());
        }
        Ok(Cidr::from(net))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Which proxy headers the trusted proxies set.
///
/// Read only the family your proxies actually write: a proxy that sets `X-Forwarded-*`
/// usually passes a client's own `Forwarded` header through untouched (and the other way
/// round), so honouring both would let clients choose what the server believes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProxyHeaders {
    /// `X-Forwarded-For`, `X-Forwarded-Host`, `X-Forwarded-Proto`, `X-Forwarded-Port`: what
    /// nginx, Caddy, Traefik, Envoy, HAProxy and most cloud load balancers set. The default.
    #[default]
    XForwarded,
    /// `Forwarded` (RFC 7239) only.
    Forwarded,
    /// `Forwarded` when the request has one, else `X-Forwarded-*`.
    PreferForwarded,
}

/// The peers allowed to speak for clients through proxy headers: addresses and networks.
///
/// Empty by default: no header is believed until you say which proxies you run. The peer
/// address comes from the request extensions (see [`PeerAddr`](crate::context::PeerAddr)); without it,
/// no peer is trusted.
///
/// ```
/// use mcp_edge::guard::{ProxyHeaders, TrustedProxies};
///
/// let proxies = TrustedProxies::new(["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"]);
/// assert!(proxies.contains("10.1.2.3".parse().unwrap()));
/// assert!(!proxies.contains("192.0.2.1".parse().unwrap()));
///
/// let rfc7239 = TrustedProxies::loopback().headers(ProxyHeaders::Forwarded);
/// assert!(TrustedProxies::try_new(["not-an-ip"]).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<Cidr>,
    headers: ProxyHeaders,
}

impl TrustedProxies {
    /// No trusted proxy: proxy headers are ignored (the default).
    pub fn none() -> Self {
        TrustedProxies::default()
    }

    /// Trusts these addresses and networks (`"10.0.0.0/8"`, `"127.0.0.1"`, `"::1"`,
    /// `"fd00::/8"`).
    ///
    /// # Panics
    /// When an entry is not an address or network; see [`TrustedProxies::try_new`].
    pub fn new<I>(entries: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        TrustedProxies::try_new(entries).unwrap_or_else(|err| panic!("{err}"))
    }

    /// Like [`TrustedProxies::new`], with an error for an invalid entry.
    pub fn try_new<I>(entries: I) -> Result<Self, InvalidPattern>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let networks = entries
            .into_iter()
            .map(|e| e.as_ref().parse())
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies {
            networks,
            headers: ProxyHeaders::default(),
        })
    }

    /// `127.0.0.0/8` and `::1`: a proxy on the same machine.
    pub fn loopback() -> Self {
        TrustedProxies::new(["127.0.0.0/8", "::1"])
    }

    /// Loopback and the private ranges (`10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`,
    /// `fc00::/7`): a proxy inside the same private network, as in most container platforms.
    pub fn private_networks() -> Self {
        TrustedProxies::new([
            "127.0.0.0/8",
            "::1",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "fc00::/7",
        ])
    }

    /// Adds a network.
    pub fn with(mut self, network: Cidr) -> Self {
        self.networks.push(network);
        self
    }

    /// Chooses the header family the proxies set (default [`ProxyHeaders::XForwarded`]).
    pub fn headers(mut self, headers: ProxyHeaders) -> Self {
        self.headers = headers;
        self
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|net| net.contains(ip))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// What the proxy chain says, when `peer` is trusted; `None` when it is not (or unknown).
    pub(crate) fn forwarding(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Option<Result<Forwarding, InvalidForwardedHost>> {
        let peer = peer.filter(|ip| self.contains(*ip))?;
        let use_forwarded = match self.headers {
            ProxyHeaders::Forwarded => true,
            ProxyHeaders::XForwarded => false,
            ProxyHeaders::PreferForwarded => headers.contains_key(FORWARDED),
        };
        Some(if use_forwarded {
            self.walk_forwarded(headers, peer)
        } else {
            self.walk_x_forwarded(headers, peer)
        })
    }

    fn walk_forwarded(
        &self,
        headers: &HeaderMap,
        peer: IpAddr,
    ) -> Result<Forwarding, InvalidForwardedHost> {
        let mut elements = Vec::new();
        for value in headers.get_all(FORWARDED) {
            match value.to_str() {
                Ok(value) => parse_forwarded(value, &mut elements),
                Err(_) => elements.push(Element::MALFORMED),
            }
        }
        let mut client = Some(peer);
        let mut host = None;
        let mut proto = None;
        // Each element was appended by a trusted hop: first the peer, then each `for` that is
        // itself trusted.
        for element in elements.iter().rev() {
            if element.malformed {
                client = None;
                break;
            }
            if element.host.is_some() {
                host = element.host.as_deref();
            }
            if element.proto.is_some() {
                proto = element.proto.as_deref();
            }
            match element.node {
                Some(Node::Ip(ip)) => {
                    client = Some(ip);
                    if !self.contains(ip) {
                        break;
                    }
                }
                Some(Node::Hidden) => {
                    client = None;
                    break;
                }
                None => break,
            }
        }
        Forwarding::new(client, host, None, proto)
    }

    fn walk_x_forwarded(
        &self,
        headers: &HeaderMap,
        peer: IpAddr,
    ) -> Result<Forwarding, InvalidForwardedHost> {
        let mut client = Some(peer);
        let mut hops = 1;
        for entry in list_values_rev(headers, &X_FORWARDED_FOR) {
            match entry.and_then(parse_node_ip) {
                Some(ip) => {
                    client = Some(ip);
                    if !self.contains(ip) {
                        break;
                    }
                    hops += 1;
                }
                None => {
                    client = None;
                    break;
                }
            }
        }
        let host = outermost(headers, &X_FORWARDED_HOST, hops);
        let port = outermost(headers, &X_FORWARDED_PORT, hops);
        let proto = outermost(headers, &X_FORWARDED_PROTO, hops);
        Forwarding::new(client, host, port, proto)
    }
}

/// What the trusted part of a proxy chain reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Forwarding {
    pub(crate) client_ip: Option<IpAddr>,
    /// A validated `host[:port]`.
    pub(crate) host: Option<HeaderValue>,
    pub(crate) https: Option<bool>,
}

/// A trusted proxy forwarded a host that is not a valid `host[:port]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidForwardedHost;

impl Forwarding {
    fn new(
        client_ip: Option<IpAddr>,
        host: Option<&str>,
        port: Option<&str>,
        proto: Option<&str>,
    ) -> Result<Self, InvalidForwardedHost> {
        let host = match host {
            None => None,
            Some(host) => {
                let authority = Authority::parse(host).ok_or(InvalidForwardedHost)?;
                let port = port
                    .and_then(parse_port)
                    .filter(|_| authority.port.is_none());
                let value = match port {
                    Some(port) => HeaderValue::try_from(format!("{}:{port}", authority.host)),
                    None => HeaderValue::from_str(host),
                };
                Some(value.map_err(|_| InvalidForwardedHost)?)
            }
        };
        let https = proto.and_then(|p| {
            if p.eq_ignore_ascii_case("https") || p.eq_ignore_ascii_case("wss") {
                Some(true)
            } else if p.eq_ignore_ascii_case("http") || p.eq_ignore_ascii_case("ws") {
                Some(false)
            } else {
                None
            }
        });
        Ok(Forwarding {
            client_ip,
            host,
            https,
        })
    }
}

/// The comma-separated entries of every line of a list header, last first; `None` for a line
/// that is not visible ASCII.
fn list_values_rev<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> impl Iterator<Item = Option<&'a str>> {
    headers
        .get_all(name)
        .iter()
        .rev()
        .flat_map(|value| match value.to_str() {
            Ok(value) => rev_split(value),
            Err(_) => RevSplit::Bad(Some(())),
        })
}

enum RevSplit<'a> {
    Good(std::iter::Rev<std::str::Split<'a, char>>),
    Bad(Option<()>),
}

fn rev_split(value: &str) -> RevSplit<'_> {
    RevSplit::Good(value.split(',').rev())
}

impl<'a> Iterator for RevSplit<'a> {
    type Item = Option<&'a str>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            RevSplit::Good(split) => loop {
                let entry = split.next()?.trim();
                if !entry.is_empty() {
                    return Some(Some(entry));
                }
            },
            RevSplit::Bad(once) => once.take().map(|()| None),
        }
    }
}

/// The value written by the outermost of `hops` trusted proxies, counting from the right:
/// each hop that appends adds one entry, a hop that overwrites leaves one.
fn outermost<'a>(headers: &'a HeaderMap, name: &HeaderName, hops: usize) -> Option<&'a str> {
    let mut chosen = None;
    for entry in list_values_rev(headers, name).take(hops) {
        chosen = Some(entry?);
    }
    chosen
}

/// `for=` of a `Forwarded` element, or an `X-Forwarded-For` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Ip(IpAddr),
    /// `unknown`, an obfuscated identifier (`_hidden`), or anything not an address.
    Hidden,
}

/// An address with an optional port: `192.0.2.1`, `192.0.2.1:443`, `[2001:db8::1]:443`,
/// `2001:db8::1`. Ports may be obfuscated (`_p1`).
fn parse_node_ip(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        return Ipv6Addr::from_str(ip)
            .ok()
            .map(|ip| IpAddr::V6(ip).to_canonical());
    }
    if let Ok(ip) = IpAddr::from_str(node) {
        return Some(ip.to_canonical());
    }
    let (ip, _port) = node.split_once(':')?;
    Ipv4Addr::from_str(ip).ok().map(IpAddr::V4)
}

#[derive(Debug, Default)]
struct Element<'a> {
    node: Option<Node>,
    host: Option<Cow<'a, str>>,
    proto: Option<Cow<'a, str>>,
    malformed: bool,
}

impl Element<'_> {
    const MALFORMED: Element<'static> = Element {
        node: None,
        host: None,
        proto: None,
        malformed: true,
    };
}

/// Splits `s` at `sep` outside quoted strings; `None` when a quote is left open.
fn split_unquoted(s: &str, sep: u8) -> impl Iterator<Item = Option<&str>> {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut in_quote = false;
        let mut i = start;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if in_quote => i += 1,
                b'"' => in_quote = !in_quote,
                b if b == sep && !in_quote => {
                    let part = &s[start..i];
                    start = i + 1;
                    return Some(Some(part));
                }
                _ => {}
            }
            i += 1;
        }
        done = true;
        Some((!in_quote).then(|| &s[start..]))
    })
}

/// Parses one `Forwarded` header line into its elements (RFC 7239 §4), appending to `out`.
/// A syntax error spoils only the element it is in, which becomes `malformed`.
fn parse_forwarded<'a>(value: &'a str, out: &mut Vec<Element<'a>>) {
    for element in split_unquoted(value, b',') {
        let Some(element) = element else {
            out.push(Element::MALFORMED);
            return;
        };
        if element.trim().is_empty() {
            continue;
        }
        out.push(parse_element(element).unwrap_or(Element::MALFORMED));
    }
}

fn parse_element(element: &str) -> Option<Element<'_>> {
    let mut parsed = Element::default();
    let mut seen_for = false;
    for pair in split_unquoted(element, b';') {
        let pair = pair?.trim_matches(|c| c == ' ' || c == '\t');
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=')?;
        if key.is_empty() || !key.bytes().all(is_tchar) {
            return None;
        }
        let value = parse_value(value)?;
        if key.eq_ignore_ascii_case("for") {
            if std::mem::replace(&mut seen_for, true) {
                return None;
            }
            parsed.node = Some(parse_node_ip(&value).map_or(Node::Hidden, Node::Ip));
        } else if key.eq_ignore_ascii_case("host") {
            if parsed.host.replace(value).is_some() {
                return None;
            }
        } else if key.eq_ignore_ascii_case("proto") && parsed.proto.replace(value).is_some() {
            return None;
        }
        // `by` and extensions are allowed and ignored.
    }
    Some(parsed)
}

/// A token, or a quoted string with `\` escapes.
fn parse_value(value: &str) -> Option<Cow<'_, str>> {
    let Some(inner) = value.strip_prefix('"') else {
        return (!value.is_empty() && value.bytes().all(is_tchar)).then_some(Cow::Borrowed(value));
    };
    let inner = inner.strip_suffix('"')?;
    if !inner.contains('\\') {
        return (!inner.contains('"')).then_some(Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(Cow::Owned(out))
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    type Headers<'a> = &'a [(&'static str, &'a str)];

    fn forwarded(proxies: &TrustedProxies, pairs: &[(&'static str, &str)]) -> Forwarding {
        proxies
            .forwarding(&headers(pairs), Some(ip("10.0.0.1")))
            .expect("peer is trusted")
            .expect("host is valid")
    }

    /// What a trusted proxy (10.0.0.1) tells in one RFC 7239 `Forwarded` header.
    fn rfc7239(value: &str) -> Forwarding {
        let proxies = TrustedProxies::new(["10.0.0.0/8"]).headers(ProxyHeaders::Forwarded);
        forwarded(&proxies, &[("forwarded", value)])
    }

    #[test]
    fn cidr_matching() {
        let net: Cidr = "192.168.1.77/24".parse().unwrap();
        assert_eq!(net.to_string(), "192.168.1.0/24");
        for (cidr, inside, outside) in [
            ("192.168.1.77/24", "192.168.1.1", Some("192.168.2.1")),
            ("0.0.0.0/0", "8.8.8.8", Some("::1")),
            ("127.0.0.1", "127.0.0.1", Some("127.0.0.2")),
            ("2001:db8::/32", "2001:db8:ffff::1", Some("2001:db9::1")),
            ("[::1]", "::1", None),
            ("::/0", "fe80::1", None),
            ("::ffff:10.0.0.0/104", "10.9.9.9", None),
        ] {
            let net: Cidr = cidr.parse().unwrap();
            assert!(net.contains(ip(inside)), "{cidr} holds {inside}");
            if let Some(outside) = outside {
                assert!(!net.contains(ip(outside)), "{cidr} holds {outside}");
            }
        }
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "x/8",
            "10.0.0.0/-1",
            "10.0.0/8",
            "010.0.0.0/8",
            "10.0.0.0/+8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn cidr_converts_to_and_from_ipnet_canonically() {
        let net: ipnet::IpNet = "::ffff:10.1.0.0/112".parse().unwrap();
        let cidr = Cidr::from(net);
        assert_eq!(cidr.to_string(), "10.1.0.0/16");
        assert!(cidr.contains(ip("10.1.2.3")));
        assert!(cidr.contains(ip("::ffff:10.1.2.3")));
        assert_eq!(ipnet::IpNet::from(cidr), "10.1.0.0/16".parse().unwrap());
        let host_bits: Cidr = ipnet::IpNet::from_str("fd00::1/8").unwrap().into();
        assert_eq!(host_bits.as_ipnet().to_string(), "fd00::/8");
        assert_eq!("[fd00::]/8".parse::<Cidr>().unwrap(), host_bits);
        assert_eq!(
            Cidr::new(ip("::ffff:192.0.2.9"), 24).unwrap().to_string(),
            "192.0.2.0/24"
        );
        assert!(Cidr::new(ip("192.0.2.9"), 33).is_none());
        assert!("::ffff:10.0.0.0/95".parse::<Cidr>().is_err());
    }

    #[test]
    fn untrusted_or_unknown_peer_gets_nothing() {
        let proxies = TrustedProxies::new(["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-host", "evil.example.com")]);
        assert!(proxies.forwarding(&h, Some(ip("192.0.2.1"))).is_none());
        assert!(proxies.forwarding(&h, None).is_none());
        assert!(
            TrustedProxies::none()
                .forwarding(&h, Some(ip("10.0.0.1")))
                .is_none()
        );
    }

    #[test]
    fn x_forwarded_takes_what_our_proxies_appended() {
        let proxies = TrustedProxies::new(["10.0.0.0/8"]);
        // (case, headers, the host they give)
        let cases: [(&str, Headers, &str); 3] = [
            (
                "a single proxy",
                &[
                    ("x-forwarded-for", "203.0.113.9"),
                    ("x-forwarded-host", "mcp.example.com"),
                    ("x-forwarded-proto", "https"),
                ],
                "mcp.example.com",
            ),
            (
                "what the client wrote before our proxy is ignored",
                &[
                    ("x-forwarded-for", "10.9.9.9, 6.6.6.6, 203.0.113.9"),
                    ("x-forwarded-host", "evil.example.com, mcp.example.com"),
                    ("x-forwarded-proto", "http, https"),
                ],
                "mcp.example.com",
            ),
            (
                // CDN (10.2.2.2) then nginx (the peer), each appending.
                "multiple trusted hops take the outermost values",
                &[
                    ("x-forwarded-for", "203.0.113.9"),
                    ("x-forwarded-for", "10.2.2.2"),
                    ("x-forwarded-host", "public.example.com, internal.lan"),
                    ("x-forwarded-proto", "https,http"),
                    ("x-forwarded-port", "443"),
                ],
                "public.example.com:443",
            ),
        ];
        for (case, pairs, host) in cases {
            let f = forwarded(&proxies, pairs);
            assert_eq!(f.client_ip, Some(ip("203.0.113.9")), "{case}");
            assert_eq!(f.host.unwrap(), host, "{case}");
            assert_eq!(f.https, Some(true), "{case}");
        }
    }

    #[test]
    fn x_forwarded_for_with_ports_ipv6_and_garbage() {
        let proxies = TrustedProxies::new(["10.0.0.0/8"]);
        let f = forwarded(&proxies, &[("x-forwarded-for", "[2001:db8::7]:5555")]);
        assert_eq!(f.client_ip, Some(ip("2001:db8::7")));
        let f = forwarded(&proxies, &[("x-forwarded-for", "2001:db8::7")]);
        assert_eq!(f.client_ip, Some(ip("2001:db8::7")));
        let f = forwarded(&proxies, &[("x-forwarded-for", "198.51.100.2:8080")]);
        assert_eq!(f.client_ip, Some(ip("198.51.100.2")));
        let f = forwarded(&proxies, &[("x-forwarded-for", "unknown")]);
        assert_eq!(f.client_ip, None);
        let f = forwarded(&proxies, &[("x-forwarded-for", ",,, ,")]);
        assert_eq!(f.client_ip, Some(ip("10.0.0.1")));
        let f = forwarded(&proxies, &[("x-forwarded-proto", "gopher")]);
        assert_eq!(f.https, None);
    }

    #[test]
    fn forwarded_port_joins_a_host_without_one() {
        let proxies = TrustedProxies::new(["10.0.0.0/8"]);
        for (host, port, expected) in [
            ("a.example", "8443", "a.example:8443"),
            ("a.example:", "8443", "a.example:8443"),
            ("a.example:9000", "8443", "a.example:9000"),
            ("[::1]", "8443", "[::1]:8443"),
            ("a.example", "junk", "a.example"),
        ] {
            let f = forwarded(
                &proxies,
                &[("x-forwarded-host", host), ("x-forwarded-port", port)],
            );
            assert_eq!(f.host.unwrap(), expected);
        }
    }

    #[test]
    fn invalid_forwarded_host_is_an_error() {
        let proxies = TrustedProxies::new(["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-host", "evil.example.com/path")]);
        assert_eq!(
            proxies.forwarding(&h, Some(ip("10.0.0.1"))),
            Some(Err(InvalidForwardedHost))
        );
    }

    #[test]
    fn non_ascii_header_lines_are_not_believed() {
        let proxies = TrustedProxies::new(["10.0.0.0/8"]);
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        let f = proxies
            .forwarding(&h, Some(ip("10.0.0.1")))
            .unwrap()
            .unwrap();
        assert_eq!(f.client_ip, None);
    }

    #[test]
    fn forwarded_quoted_values_ipv6_and_ports() {
        let f =
            rfc7239(r#"for="[2001:db8:cafe::17]:4711";proto=https;host="mcp.example.com:8443""#);
        assert_eq!(f.client_ip, Some(ip("2001:db8:cafe::17")));
        assert_eq!(f.host.unwrap(), "mcp.example.com:8443");
        assert_eq!(f.https, Some(true));
        let f = rfc7239(r#"For="192.0.2.43:47011" ; PROTO=http"#);
        assert_eq!(f.client_ip, Some(ip("192.0.2.43")));
        assert_eq!(f.https, Some(false));
        let f = rfc7239(r#"for="\"quoted\\\"";host="a\.b""#);
        assert_eq!(f.client_ip, None);
        assert_eq!(f.host.unwrap(), "a.b");
    }

    #[test]
    fn forwarded_multiple_hops_walk_from_the_right() {
        let proxies = TrustedProxies::new(["10.0.0.0/8"]).headers(ProxyHeaders::Forwarded);
        // The client's own element first, then the CDN's, then our nginx's.
        let f = forwarded(
            &proxies,
            &[
                ("forwarded", "for=10.7.7.7;host=evil.example.com;proto=http"),
                (
                    "forwarded",
                    "for=198.51.100.17;host=public.example.com;proto=https, for=10.2.2.2;host=internal",
                ),
            ],
        );
        assert_eq!(f.client_ip, Some(ip("198.51.100.17")));
        assert_eq!(f.host.unwrap(), "public.example.com");
        assert_eq!(f.https, Some(true));
    }

    #[test]
    fn forwarded_obfuscated_and_unknown_nodes_end_the_walk() {
        let f = rfc7239("for=192.0.2.1;host=a.example, for=_hidden;host=b.example");
        assert_eq!(f.client_ip, None);
        assert_eq!(f.host.unwrap(), "b.example");
        let f = rfc7239("for=unknown;proto=https");
        assert_eq!(f.client_ip, None);
        assert_eq!(f.https, Some(true));
        let f = rfc7239("for=\"_gazonk\"");
        assert_eq!(f.client_ip, None);
        // No `for` at all: the proxy did not say; the peer is the last address known.
        let f = rfc7239("proto=https");
        assert_eq!(f.client_ip, Some(ip("10.0.0.1")));
    }

    #[test]
    fn forwarded_garbage_never_panics_and_gives_nothing() {
        let proxies = TrustedProxies::new(["10.0.0.0/8"]).headers(ProxyHeaders::Forwarded);
        for garbage in [
            "",
            ";",
            ",,,",
            "=",
            "for",
            "for=",
            "for=\"",
            "for=\"unterminated, for=1.2.3.4",
            "host=a;host=b",
            "for=1.2.3.4;for=5.6.7.8",
            "for=[::1",
            "for=\"[::1]x\"",
            "for=a b",
            "\"for\"=1.2.3.4",
            "host=\"a\"b\"",
            "proto=\"\\",
            "for=\"\\\"",
            "for=1.2.3.4;host=\"bad host\"",
        ] {
            let h = headers(&[("forwarded", garbage)]);
            let result = proxies.forwarding(&h, Some(ip("10.0.0.1"))).unwrap();
            if let Ok(f) = result {
                assert!(
                    f.host.is_none() && f.https.is_none(),
                    "{garbage:?} gave {f:?}"
                );
            }
        }
        let long = "for=1.1.1.1;".repeat(5000);
        let _ = proxies.forwarding(&headers(&[("forwarded", &long)]), Some(ip("10.0.0.1")));
        let many = "for=10.0.0.2,".repeat(5000);
        let f = proxies
            .forwarding(&headers(&[("forwarded", &many)]), Some(ip("10.0.0.1")))
            .unwrap()
            .unwrap();
        assert_eq!(f.client_ip, Some(ip("10.0.0.2")));
    }

    #[test]
    fn prefer_forwarded_falls_back_to_x_forwarded() {
        let proxies = TrustedProxies::new(["10.0.0.0/8"]).headers(ProxyHeaders::PreferForwarded);
        let f = forwarded(&proxies, &[("x-forwarded-host", "x.example")]);
        assert_eq!(f.host.unwrap(), "x.example");
        let f = forwarded(
            &proxies,
            &[
                ("x-forwarded-host", "x.example"),
                ("forwarded", "host=f.example"),
            ],
        );
        assert_eq!(f.host.unwrap(), "f.example");
    }

    #[test]
    fn each_family_ignores_the_other() {
        let h = &[
            ("x-forwarded-host", "x.example"),
            ("forwarded", "host=f.example"),
        ];
        let x = TrustedProxies::new(["10.0.0.0/8"]);
        assert_eq!(forwarded(&x, h).host.unwrap(), "x.example");
        let f = x.clone().headers(ProxyHeaders::Forwarded);
        assert_eq!(forwarded(&f, h).host.unwrap(), "f.example");
    }

    mod hostile {
        use super::super::*;
        use crate::guard::{HostPattern, OriginPattern, PublicUrl};
        use crate::guard::{host::Authority, origin::OriginValue};
        use proptest::prelude::*;

        /// Header-ish text: visible ASCII heavy on the characters the parsers care about.
        fn headerish() -> impl Strategy<Value = String> {
            proptest::string::string_regex(r#"[ -~]{0,64}|([a-z0-9\[\]:;,="\\_.]{0,48})"#).unwrap()
        }

        proptest! {
            #[test]
            fn parsers_never_panic(text in headerish()) {
                let _ = Authority::parse(&text);
                let _ = OriginValue::parse(&text);
                let _ = text.parse::<HostPattern>();
                let _ = text.parse::<OriginPattern>();
                let _ = text.parse::<Cidr>();
                let _ = text.parse::<PublicUrl>();
                let _ = parse_node_ip(&text);
                let mut out = Vec::new();
                parse_forwarded(&text, &mut out);
            }

            #[test]
            fn forwarding_never_panics_and_only_gives_valid_hosts(
                forwarded in headerish(),
                xff in headerish(),
                xfh in prop_oneof![headerish(), "[a-z.]{1,8}:?[0-9]{0,6}"],
                proto in headerish(),
                port in prop_oneof![headerish(), "[0-9]{1,6}"],
            ) {
                let mut headers = HeaderMap::new();
                for (name, value) in [
                    ("forwarded", &forwarded),
                    ("x-forwarded-for", &xff),
                    ("x-forwarded-host", &xfh),
                    ("x-forwarded-proto", &proto),
                    ("x-forwarded-port", &port),
                ] {
                    if let Ok(value) = HeaderValue::from_str(value) {
                        headers.append(name, value);
                    }
                }
                for family in [ProxyHeaders::XForwarded, ProxyHeaders::Forwarded, ProxyHeaders::PreferForwarded] {
                    let proxies = TrustedProxies::new(["0.0.0.0/0", "::/0"]).headers(family);
                    let peer = Some("10.0.0.1".parse().unwrap());
                    if let Some(Ok(Forwarding { host: Some(host), .. })) =
                        proxies.forwarding(&headers, peer)
                    {
                        prop_assert!(Authority::parse(host.to_str().unwrap()).is_some());
                    }
                }
            }
        }
    }
}
