//! The SSE scanner and parser on an arbitrary stream cut at arbitrary offsets, with an
//! arbitrary cap (see `mcp_edge_fuzz::sse`).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    /// The cap, 16 + this (small caps reach the over-cap paths).
    cap: u8,
    cuts: Vec<u16>,
    stream: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let cuts: Vec<usize> = input.cuts.iter().map(|&c| usize::from(c)).collect();
    mcp_edge_fuzz::sse::check(&input.stream, &cuts, 16 + usize::from(input.cap));
});
