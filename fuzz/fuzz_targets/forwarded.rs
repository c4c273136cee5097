//! `Forwarded` and `X-Forwarded-*` through the guard: arbitrary header lines, and proxy
//! chains written by a model (see `mcp_edge_fuzz::forwarded`).
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::Arbitrary;
use http::{HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use mcp_edge_fuzz::forwarded::{Hop, check_chain, check_lines, mode};

#[derive(Debug, Arbitrary)]
struct Ip {
    v6: bool,
    trusted: bool,
    mapped: bool,
    low: u16,
}

impl Ip {
    fn get(&self) -> IpAddr {
        let [a, b] = self.low.to_be_bytes();
        match (self.v6, self.trusted) {
            (false, true) => IpAddr::V4(Ipv4Addr::new(10, 0, a, b)),
            (false, false) if self.mapped => {
                IpAddr::V6(Ipv4Addr::new(203, 0, a, b).to_ipv6_mapped())
            }
            (false, false) => IpAddr::V4(Ipv4Addr::new(203, 0, a, b)),
            (true, true) if self.mapped => IpAddr::V6(Ipv4Addr::new(10, 1, a, b).to_ipv6_mapped()),
            (true, true) => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, self.low)),
            (true, false) => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, self.low)),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Input {
    Lines {
        mode: u8,
        peer: Ip,
        lines: Vec<(u8, Vec<u8>)>,
    },
    Chain {
        forwarded: bool,
        client: Ip,
        hops: Vec<(Ip, u8, bool)>,
        peer: Ip,
    },
}

const NAMES: [&str; 6] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-proto",
    "host",
];

fuzz_target!(|input: Input| match input {
    Input::Lines {
        mode: m,
        peer,
        lines,
    } => {
        let lines: Vec<(HeaderName, HeaderValue)> = lines
            .iter()
            .filter_map(|(name, value)| {
                let name = HeaderName::from_static(NAMES[usize::from(*name) % NAMES.len()]);
                Some((name, HeaderValue::from_bytes(value).ok()?))
            })
            .collect();
        check_lines(mode(m), peer.get(), &lines);
    }
    Input::Chain {
        forwarded,
        client,
        hops,
        peer,
    } => {
        let hops: Vec<Hop> = hops
            .iter()
            .take(16)
            .map(|(ip, style, new_line)| Hop {
                ip: ip.get(),
                style: *style,
                new_line: *new_line,
            })
            .collect();
        check_chain(forwarded, client.get(), &hops, peer.get());
    }
});
