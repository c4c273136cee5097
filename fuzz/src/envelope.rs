//! The affinity envelope (`EnvelopeKeys::open`): a client-visible session id sealed with
//! AES-256-GCM.
//!
//! - Arbitrary bytes never panic and never open.
//! - A sealed id opens to what was sealed, with the key or with a rotation that lists it as
//!   the previous key, and not with another key.
//! - Any change to a sealed id (a byte replaced, removed or added, a cut) fails to open.

use std::time::{Duration, UNIX_EPOCH};

use mcp_edge::affinity::{EnvelopeKeys, SessionEnvelope, SessionKey};
use mcp_edge::{Principal, Replica, SessionId};

fn keys(seed: u8) -> EnvelopeKeys {
    EnvelopeKeys::new(&SessionKey::from_bytes(&[seed; 32]).unwrap())
}

/// Arbitrary bytes: never an envelope.
pub fn check_open(token: &[u8]) {
    assert!(keys(1).open(token).is_err(), "opened {token:?}");
}

/// One edit of a sealed id.
#[derive(Debug, Clone, Copy)]
pub enum Edit {
    /// Replace the byte at this index (modulo the length) with this one.
    Replace(usize, u8),
    /// Remove the byte at this index.
    Remove(usize),
    /// Insert this byte at this index.
    Insert(usize, u8),
    /// Keep only this many bytes.
    Cut(usize),
}

/// Seals an envelope of these values, checks it opens (and only with the right keys), then
/// applies `edits` and checks the result does not open unless it is unchanged.
pub fn check_sealed(
    session: &[u8],
    replica: &str,
    principal: Option<&str>,
    at: u32,
    edits: &[Edit],
) {
    let Ok(session) = SessionId::from_bytes(session) else {
        return;
    };
    let principal = principal.map(Principal::new);
    let envelope = SessionEnvelope::new(
        &Replica::new(replica),
        session,
        principal.as_ref(),
        UNIX_EPOCH + Duration::from_secs(u64::from(at)),
    );
    let Ok(sealed) = keys(1).seal(&envelope) else {
        return;
    };
    let token = sealed.as_str().as_bytes();
    assert!(keys(1).open(token).unwrap() == envelope, "round trip");
    let rotated = keys(2).with_previous(&SessionKey::from_bytes(&[1; 32]).unwrap());
    assert!(rotated.open(token).unwrap() == envelope, "previous key");
    assert!(keys(2).open(token).is_err(), "opened with another key");
    assert!(envelope.is_bound_to(principal.as_ref()));

    let mut edited = token.to_vec();
    for edit in edits {
        let len = edited.len().max(1);
        match *edit {
            Edit::Replace(i, b) => {
                if let Some(at) = edited.get_mut(i % len) {
                    *at = b;
                }
            }
            Edit::Remove(i) => {
                if !edited.is_empty() {
                    edited.remove(i % len);
                }
            }
            Edit::Insert(i, b) => edited.insert(i % (edited.len() + 1), b),
            Edit::Cut(n) => edited.truncate(n % len),
        }
    }
    if edited != token {
        assert!(
            keys(1).open(&edited).is_err(),
            "an edited id opened: {:?}",
            String::from_utf8_lossy(&edited)
        );
    }
}
