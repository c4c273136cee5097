//! Event ids that name their stream and are sealed to their session and principal.
//!
//! An id is `<kind><stream>.<seal>.<seq>`: `kind` is `p` (a stream opened by a POST) or `g`
//! (a GET stream), `stream` the stream's name (16 bytes, base64url), `seal` the first 16 bytes
//! of HMAC-SHA256 under the layer's key of (kind, stream, session, principal), base64url, and
//! `seq` the event's number in its stream. Changing any part but `seq`, or presenting the id
//! with another session or principal, breaks the seal; changing `seq` moves the cursor within
//! the same stream only. The seal is computed once per stream, never per event.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::{BufMut, Bytes, BytesMut};
use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::context::{BindingKey, Principal};
use crate::protocol::SessionId;
use crate::store::StreamKey;

/// Bytes of the stream name and of the seal (before base64url).
const NAME_BYTES: usize = 16;
const SEAL_BYTES: usize = 16;
/// Base64url length of 16 bytes.
const B64_16: usize = 22;

/// How a tracked stream was opened: a replay of a POST stream ends with it, a replay of a GET
/// stream goes on with a fresh GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StreamKind {
    Post,
    Get,
}

impl StreamKind {
    fn tag(self) -> u8 {
        match self {
            StreamKind::Post => b'p',
            StreamKind::Get => b'g',
        }
    }
}

/// The layer's sealing key and stream-name source (one per layer, shared by its services).
pub(super) struct Sealer {
    key: [u8; 32],
    /// Drawn once: the high half of every stream name, so names from two gateway instances
    /// sharing a store never meet.
    instance: [u8; 8],
    counter: AtomicU64,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

/// Who a stream belongs to, as the request told.
#[derive(Debug, Clone)]
pub(super) struct Owner {
    pub(super) session: Option<SessionId>,
    pub(super) binding: Option<BindingKey>,
}

impl Owner {
    pub(super) fn new(session: Option<SessionId>, principal: Option<&Principal>) -> Self {
        Owner {
            session,
            binding: principal.map(BindingKey::of),
        }
    }
}

/// A tracked stream: its store key and the `id: <token>.` prefix its events get.
pub(super) struct Sealed {
    pub(super) key: StreamKey,
    /// `id: <kind><stream>.<seal>.`
    pub(super) id_prefix: Bytes,
}

/// A `Last-Event-ID` that passed the seal check.
#[derive(Debug)]
pub(super) struct Cursor {
    pub(super) key: StreamKey,
    pub(super) kind: StreamKind,
    pub(super) seq: u64,
    pub(super) id_prefix: Bytes,
}

impl Sealer {
    pub(super) fn new(key: [u8; 32]) -> Self {
        let mut instance = [0u8; 8];
        // A failed draw only weakens the uniqueness of names across instances (the counter
        // still separates this instance's streams), never the seal.
        let _ = getrandom::fill(&mut instance);
        Sealer {
            key,
            instance,
            counter: AtomicU64::new(0),
        }
    }

    /// A fresh random key (one per process unless configured).
    pub(super) fn random_key() -> [u8; 32] {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the OS random source is unavailable");
        key
    }

    /// Names and seals a new stream of `owner`.
    pub(super) fn open(&self, kind: StreamKind, owner: &Owner) -> Sealed {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut name = [0u8; NAME_BYTES];
        name[..8].copy_from_slice(&self.instance);
        name[8..].copy_from_slice(&n.to_be_bytes());
        let mut token = [0u8; 1 + B64_16];
        token[0] = kind.tag();
        URL_SAFE_NO_PAD
            .encode_slice(name, &mut token[1..])
            .expect("22 bytes hold 16 in base64url");
        let seal = self.seal(&token, owner);
        let stream_name = std::str::from_utf8(&token[1..]).expect("base64url is ASCII");
        Sealed {
            key: StreamKey::new(owner.session.clone(), Arc::<str>::from(stream_name)),
            id_prefix: id_prefix(&token, &seal),
        }
    }

    /// Checks `last_event_id` against `owner`: `None` unless it is an id this key sealed for
    /// the same session and principal.
    pub(super) fn check(&self, last_event_id: &[u8], owner: &Owner) -> Option<Cursor> {
        // <kind><22>.<22>.<digits>
        let head = 1 + B64_16 + 1 + B64_16 + 1;
        if last_event_id.len() <= head || last_event_id.len() > head + 20 {
            return None;
        }
        let (token, rest) = last_event_id.split_at(1 + B64_16);
        let kind = match token[0] {
            b'p' => StreamKind::Post,
            b'g' => StreamKind::Get,
            _ => return None,
        };
        if rest[0] != b'.' || rest[1 + B64_16] != b'.' {
            return None;
        }
        let seal = &rest[1..1 + B64_16];
        let digits = &rest[2 + B64_16..];
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let seq: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
        let expected = self.seal(token, owner);
        if !bool::from(expected.as_bytes().ct_eq(seal)) {
            return None;
        }
        let stream_name = std::str::from_utf8(&token[1..]).ok()?;
        Some(Cursor {
            key: StreamKey::new(owner.session.clone(), Arc::<str>::from(stream_name)),
            kind,
            seq,
            id_prefix: id_prefix(token, &expected),
        })
    }

    /// The seal of `token` for `owner`, base64url (22 bytes).
    fn seal(&self, token: &[u8], owner: &Owner) -> String {
        let mut message = Vec::with_capacity(96);
        let mut field = |bytes: Option<&[u8]>| match bytes {
            None => message.push(0),
            Some(bytes) => {
                message.push(1);
                message.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
                message.extend_from_slice(bytes);
            }
        };
        field(Some(b"mcp-edge resume v1"));
        field(Some(token));
        field(owner.session.as_ref().map(|s| s.as_str().as_bytes()));
        field(owner.binding.as_ref().map(|b| b.as_str().as_bytes()));
        // HKDF-Extract is HMAC-SHA256(salt = key, message) (RFC 5869 §2.2).
        let (prk, _) = Hkdf::<Sha256>::extract(Some(&self.key), &message);
        URL_SAFE_NO_PAD.encode(&prk[..SEAL_BYTES])
    }
}

fn id_prefix(token: &[u8], seal: &str) -> Bytes {
    let mut prefix = BytesMut::with_capacity(4 + token.len() + 1 + seal.len() + 1);
    prefix.put_slice(b"id: ");
    prefix.put_slice(token);
    prefix.put_u8(b'.');
    prefix.put_slice(seal.as_bytes());
    prefix.put_u8(b'.');
    prefix.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_of(sealed: &Sealed, seq: u64) -> Vec<u8> {
        let mut id = sealed.id_prefix[4..].to_vec();
        id.extend_from_slice(seq.to_string().as_bytes());
        id
    }

    #[test]
    fn an_id_opens_only_for_its_session_and_principal() {
        let sealer = Sealer::new([7; 32]);
        let s1: SessionId = "s1".parse().unwrap();
        let s2: SessionId = "s2".parse().unwrap();
        let alice = Principal::new("alice");
        let bob = Principal::new("bob");
        let owner = Owner::new(Some(s1.clone()), Some(&alice));
        let sealed = sealer.open(StreamKind::Post, &owner);
        let id = id_of(&sealed, 42);
        let cursor = sealer.check(&id, &owner).expect("the owner's own id");
        assert_eq!(
            (cursor.key, cursor.seq, cursor.kind),
            (sealed.key.clone(), 42, StreamKind::Post)
        );
        for other in [
            Owner::new(Some(s2), Some(&alice)),
            Owner::new(Some(s1.clone()), Some(&bob)),
            Owner::new(Some(s1), None),
            Owner::new(None, Some(&alice)),
        ] {
            assert!(sealer.check(&id, &other).is_none());
        }
        // Another key, another stream's seal, a flipped kind, junk.
        assert!(Sealer::new([8; 32]).check(&id, &owner).is_none());
        let other = sealer.open(StreamKind::Post, &owner);
        let mut spliced = id_of(&other, 1)[..23].to_vec();
        spliced.extend_from_slice(&id[23..]);
        assert!(sealer.check(&spliced, &owner).is_none());
        let mut flipped = id.clone();
        flipped[0] = b'g';
        assert!(sealer.check(&flipped, &owner).is_none());
        for junk in [
            &b""[..],
            b"0",
            b"7/3",
            &id[..id.len() - 3],
            b"p.........................................1",
        ] {
            assert!(sealer.check(junk, &owner).is_none());
        }
        let mut not_digits = id.clone();
        *not_digits.last_mut().unwrap() = b'x';
        assert!(sealer.check(&not_digits, &owner).is_none());
    }

    #[test]
    fn streams_get_distinct_names() {
        let sealer = Sealer::new([1; 32]);
        let owner = Owner::new(None, None);
        let a = sealer.open(StreamKind::Get, &owner);
        let b = sealer.open(StreamKind::Get, &owner);
        assert_ne!(a.key, b.key);
        assert!(a.id_prefix.starts_with(b"id: g"));
    }
}
