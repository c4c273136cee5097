//! `Forwarded` and `X-Forwarded-*` through the guard, on stable, with the properties of the
//! `forwarded` fuzz target (`fuzz/src/forwarded.rs`, included here).

#[path = "../fuzz/src/forwarded.rs"]
mod forwarded;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use forwarded::{Hop, check_chain, check_lines, mode};
use http::{HeaderName, HeaderValue};
use proptest::prelude::*;

/// Trusted and untrusted IPv4 and IPv6 addresses, IPv4-mapped ones included.
fn ip() -> impl Strategy<Value = IpAddr> {
    (0u8..6, any::<u16>()).prop_map(|(kind, low)| {
        let [a, b] = low.to_be_bytes();
        match kind {
            0 => IpAddr::V4(Ipv4Addr::new(10, 0, a, b)),
            1 => IpAddr::V4(Ipv4Addr::new(203, 0, a, b)),
            2 => IpAddr::V6(Ipv4Addr::new(10, 1, a, b).to_ipv6_mapped()),
            3 => IpAddr::V6(Ipv4Addr::new(198, 51, a, b).to_ipv6_mapped()),
            4 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, low)),
            _ => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, low)),
        }
    })
}

fn header_line() -> impl Strategy<Value = (HeaderName, HeaderValue)> {
    let names = vec![
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-proto",
    ];
    let value = prop_oneof![
        "[ -~]{0,40}",
        "(for|For|host|proto|by)=(\"?)[0-9a-f:.\\[\\]_]{0,24}(\"?)(;|,| , )?(proto=https)?",
        "([0-9]{1,3}\\.){3}[0-9]{1,3}(:[0-9]{1,5})?(, ?[0-9a-f:.\\[\\]]{1,20}){0,3}",
    ];
    (prop::sample::select(names), value).prop_filter_map("a header value", |(name, value)| {
        Some((
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).ok()?,
        ))
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_proxy_headers_resolve_safely(
        m in any::<u8>(),
        peer in ip(),
        lines in prop::collection::vec(header_line(), 0..5),
    ) {
        check_lines(mode(m), peer, &lines);
    }

    #[test]
    fn a_proxy_chain_resolves_to_the_first_untrusted_hop(
        forwarded in any::<bool>(),
        client in ip(),
        hops in prop::collection::vec((ip(), any::<u8>(), any::<bool>()), 0..6),
        peer in ip(),
    ) {
        let hops: Vec<Hop> = hops
            .into_iter()
            .map(|(ip, style, new_line)| Hop { ip, style, new_line })
            .collect();
        check_chain(forwarded, client, &hops, peer);
    }
}
