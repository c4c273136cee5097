//! The SSE scanner and parser, fed an arbitrary stream in arbitrary chunks.
//!
//! - The events and comments do not depend on the chunking (compared with one whole chunk).
//! - A filter that forwards `chunk.slice(..end)` at each block end forwards the input byte
//!   for byte, and finds every block boundary exactly once, at the same offsets as for one
//!   whole chunk (a CRLF split between chunks ends the block at its CR: the LF that follows
//!   belongs to it).
//! - The blocks' events are the events, in order.
//! - A bare [`SseScanner`] fed the same chunks agrees with the parser after every chunk: event
//!   boundary, "has a last event id", "saw an id", and the parser's `last_event_id` is
//!   non-empty exactly when the scanner says the client has one.

use bytes::Bytes;
use mcp_edge::protocol::sse::{SseEvent, SseItem, SseParser, SseScanner, UTF8_BOM};

/// Splits `input` at `cuts` (taken modulo `input.len() + 1`, sorted, duplicates dropped).
pub fn chunks(input: &[u8], cuts: &[usize]) -> Vec<Bytes> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    at.push(0);
    at.push(input.len());
    at.sort_unstable();
    at.dedup();
    let whole = Bytes::copy_from_slice(input);
    at.windows(2).map(|w| whole.slice(w[0]..w[1])).collect()
}

/// Where a boundary found at `offset` ends once the LF of a split CRLF is counted in.
fn settle(input: &[u8], offset: usize) -> usize {
    if offset > 0 && input[offset - 1] == b'\r' && input.get(offset) == Some(&b'\n') {
        offset + 1
    } else {
        offset
    }
}

/// What one parser run reports.
#[derive(Debug, PartialEq)]
struct Run {
    items: Vec<SseItem>,
    last: Option<SseEvent>,
    last_event_id: Bytes,
}

fn run_items(chunks: &[Bytes], max: usize) -> Run {
    let mut parser = SseParser::with_max_event_bytes(max);
    let mut items = Vec::new();
    for chunk in chunks {
        items.extend(parser.feed(chunk));
    }
    let last_event_id = parser.last_event_id().clone();
    Run {
        items,
        last: parser.finish(),
        last_event_id,
    }
}

/// Checks every property above for `input` cut at `cuts`, with the parser's cap `max`.
/// Panics (with the input in the message) on the first one that fails.
pub fn check(input: &[u8], cuts: &[usize], max: usize) {
    let chunked = chunks(input, cuts);
    let whole = [Bytes::copy_from_slice(input)];

    // Items do not depend on the chunking.
    let reference = run_items(&whole, max);
    let run = run_items(&chunked, max);
    assert_eq!(run, reference, "chunking changed the items of {input:?}");
    let events: Vec<&SseEvent> = reference
        .items
        .iter()
        .filter_map(|item| match item {
            SseItem::Event(event) => Some(event),
            _ => None,
        })
        .collect();

    // Forwarding at block ends: byte-identical, boundaries once each, the same events.
    let whole_ends = block_ends(&whole, max).0;
    let (ends, forwarded, block_events) = block_ends(&chunked, max);
    assert_eq!(forwarded, input, "forwarded bytes differ");
    let settled: Vec<usize> = ends.iter().map(|&e| settle(input, e)).collect();
    assert!(
        settled.windows(2).all(|w| w[0] < w[1]),
        "a boundary found twice or out of order: {settled:?} in {input:?}"
    );
    assert_eq!(settled, whole_ends, "boundaries differ for {input:?}");
    assert_eq!(
        block_events.iter().collect::<Vec<_>>(),
        events,
        "blocks and events disagree for {input:?}"
    );

    // The scanner agrees with the parser after every chunk.
    let mut scanner = SseScanner::new();
    let mut parser = SseParser::with_max_event_bytes(max);
    let mut fed = 0;
    for chunk in &chunked {
        scanner.feed(chunk);
        parser.feed(chunk).for_each(drop);
        fed += chunk.len();
        let boundary = fed == 0
            || (fed == UTF8_BOM.len() && input.starts_with(UTF8_BOM))
            || whole_ends.contains(&settle(input, fed));
        assert_eq!(
            scanner.at_event_boundary(),
            boundary,
            "scanner boundary at {fed} of {input:?}"
        );
        assert_eq!(
            parser.at_event_boundary(),
            boundary,
            "parser boundary at {fed}"
        );
        let inner = parser.scanner();
        assert_eq!(
            inner.has_last_event_id(),
            scanner.has_last_event_id(),
            "{input:?}"
        );
        assert_eq!(inner.saw_id(), scanner.saw_id(), "{input:?}");
        assert_eq!(
            !parser.last_event_id().is_empty(),
            scanner.has_last_event_id(),
            "parser's last event id {:?} vs scanner at {fed} of {input:?}",
            parser.last_event_id()
        );
    }
}

/// Forwards the stream as a filter does (up to each block end, then the rest at the end) and
/// returns the block ends (absolute offsets), the forwarded bytes and the blocks' events.
fn block_ends(chunks: &[Bytes], max: usize) -> (Vec<usize>, Vec<u8>, Vec<SseEvent>) {
    let mut parser = SseParser::with_max_event_bytes(max);
    let mut ends = Vec::new();
    let mut out = Vec::new();
    let mut events = Vec::new();
    let mut base = 0;
    for chunk in chunks {
        let mut from = 0;
        for block in parser.feed_blocks(chunk) {
            assert!(
                from <= block.end && block.end <= chunk.len(),
                "block end {} outside {from}..={}",
                block.end,
                chunk.len()
            );
            out.extend_from_slice(&chunk.slice(from..block.end));
            from = block.end;
            ends.push(base + block.end);
            events.extend(block.event);
        }
        out.extend_from_slice(&chunk[from..]);
        base += chunk.len();
    }
    (ends, out, events)
}
