//! `McpRequest::classify` on arbitrary bytes: a selector byte picks the HTTP method and a
//! few MCP headers, the rest is the body (see `mcp_edge_fuzz::classify`).
#![no_main]

use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&select, body)) = data.split_first() else {
        return;
    };
    let method = if select & 0x80 == 0 {
        Method::POST
    } else {
        Method::GET
    };
    let mut headers = HeaderMap::new();
    let versions = ["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"];
    if select & 0x04 != 0 {
        let version = versions[usize::from(select & 0x03)];
        headers.insert("mcp-protocol-version", HeaderValue::from_static(version));
    }
    if select & 0x08 != 0 {
        headers.insert("mcp-method", HeaderValue::from_static("tools/call"));
    }
    if select & 0x10 != 0 {
        headers.insert("mcp-name", HeaderValue::from_static("echo"));
    }
    mcp_edge_fuzz::classify::check(&method, &headers, body);
});
