//! The affinity envelope: arbitrary ids never open; sealed ids open only unchanged and only
//! with the key (see `mcp_edge_fuzz::envelope`).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mcp_edge_fuzz::envelope::{Edit, check_open, check_sealed};

#[derive(Debug, Arbitrary)]
enum Change {
    Replace(usize, u8),
    Remove(usize),
    Insert(usize, u8),
    Cut(usize),
}

#[derive(Debug, Arbitrary)]
enum Input {
    Open(Vec<u8>),
    Sealed {
        session: Vec<u8>,
        replica: String,
        principal: Option<String>,
        at: u32,
        changes: Vec<Change>,
    },
}

fuzz_target!(|input: Input| match input {
    Input::Open(token) => check_open(&token),
    Input::Sealed {
        session,
        replica,
        principal,
        at,
        changes,
    } => {
        let edits: Vec<Edit> = changes
            .iter()
            .map(|c| match *c {
                Change::Replace(i, b) => Edit::Replace(i, b),
                Change::Remove(i) => Edit::Remove(i),
                Change::Insert(i, b) => Edit::Insert(i, b),
                Change::Cut(n) => Edit::Cut(n),
            })
            .collect();
        check_sealed(&session, &replica, principal.as_deref(), at, &edits);
    }
});
