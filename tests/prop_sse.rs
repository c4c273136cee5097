//! The SSE scanner and parser under arbitrary chunkings, on stable: the same properties as the
//! `sse` fuzz target (`fuzz/src/sse.rs`, included here): items independent of the chunking,
//! frames forwarded byte for byte, each boundary found once, scanner and parser in agreement.

#[path = "../fuzz/src/sse.rs"]
mod sse;

use proptest::prelude::*;

/// Lines that matter to the scanner and the parser, long ones (past a 16-byte cap) included.
fn line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(vec![
            &b"data: x"[..],
            b"data:",
            b"data",
            b"id: 1",
            b"id:",
            b"id: ",
            b"id:  ",
            b"id",
            b"i",
            b"id: a\0b",
            b"event: message",
            b"retry: 3000",
            b"retry: x",
            b": keep-alive",
            b":",
            b"",
            b"\xEF\xBB\xBFdata: bom",
            b"\xEF\xBBid: 2",
        ])
        .prop_map(<[u8]>::to_vec),
        // An id or data line around the cap, a NUL somewhere in it or not.
        (
            prop::sample::select(vec![&b"id: "[..], b"id:", b"data: "]),
            8usize..40,
            prop::option::of(0usize..40)
        )
            .prop_map(|(name, len, nul)| {
                let mut line = name.to_vec();
                line.extend((0..len).map(|i| b'a' + (i % 26) as u8));
                if let Some(at) = nul {
                    let at = name.len() + at % len;
                    line[at] = 0;
                }
                line
            }),
        prop::collection::vec(any::<u8>(), 0..24),
    ]
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((line(), 0u8..3), 0..12).prop_map(|lines| {
        let mut out = Vec::new();
        for (line, eol) in lines {
            out.extend_from_slice(&line);
            out.extend_from_slice(match eol {
                0 => b"\n",
                1 => b"\r",
                _ => b"\r\n",
            });
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1024,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_chunking_of_an_event_stream_reads_and_forwards_the_same(
        input in stream(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        cap in 16usize..48,
    ) {
        sse::check(&input, &cuts, cap);
    }

    #[test]
    fn any_chunking_of_arbitrary_bytes_reads_and_forwards_the_same(
        input in prop::collection::vec(any::<u8>(), 0..128),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        cap in 16usize..48,
    ) {
        sse::check(&input, &cuts, cap);
    }
}

#[test]
fn an_over_cap_id_with_a_nul_past_the_cap_is_ignored_by_both() {
    // The scanner and the parser used to disagree here: the parser kept the id's first
    // 16 bytes as the last event id, the scanner (judging the whole line) ignored it.
    let input = b"id: 1\n\nid: 0123456789abcdef\0x\ndata: y\n\n";
    for cuts in [&[][..], &[26], &[14, 27], &[5, 6, 7]] {
        sse::check(input, cuts, 16);
    }
}
