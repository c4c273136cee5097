//! The envelope strategy's sealed session ids.
//!
//! The session id a client sees is `base64url(key id ‖ nonce ‖ AES-256-GCM(payload))`,
//! where the payload carries the replica's tag, the server's own session id, a digest of the
//! principal the session is bound to, and the time it was sealed. Nothing is stored anywhere:
//! any gateway holding the key can route the session, and a client cannot forge, alter or
//! move an id without the open failing.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes128;
use aes_gcm::aes::cipher::{BlockEncrypt, generic_array::GenericArray};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};

use super::Replica;
use crate::context::{BindingKey, Principal};
use crate::protocol::SessionId;

/// Salt for key derivation; changing it invalidates every sealed id.
const HKDF_SALT: &[u8] = b"mcp-edge/affinity/envelope/v1";
/// Additional data bound into every seal (with the key id).
const AAD_PREFIX: &[u8] = b"mcp-edge envelope v1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const PRINCIPAL_LEN: usize = 16;
/// flags (1) + issued-at seconds (4) + replica tag (8).
const FIXED_LEN: usize = 1 + 4 + 8;
const FLAG_PRINCIPAL: u8 = 0b0000_0001;
/// The longest token in bytes once decoded: what fits in [`SessionId::MAX_LEN`] characters.
const MAX_TOKEN_BYTES: usize = SessionId::MAX_LEN / 4 * 3;
/// key id + nonce + fixed payload + tag.
const MIN_TOKEN_BYTES: usize = 1 + NONCE_LEN + FIXED_LEN + 1 + TAG_LEN;

/// The longest server session id that can be sealed: the token must stay a valid
/// [`SessionId`] (at most 1024 visible ASCII characters).
pub const MAX_SEALED_SESSION_LEN: usize =
    MAX_TOKEN_BYTES - (1 + NONCE_LEN + FIXED_LEN + PRINCIPAL_LEN + TAG_LEN);

/// Secret key material for sealed session ids, 16 to 64 bytes (32 recommended).
///
/// The AEAD key is derived from it with HKDF-SHA256 once, when [`EnvelopeKeys`] is built.
/// Its `Debug` output never shows the bytes.
///
/// ```
/// use mcp_edge::affinity::SessionKey;
///
/// let key = SessionKey::generate().unwrap();
/// let hex = key.to_hex();
/// assert_eq!(hex.len(), 64);
/// assert_eq!(SessionKey::from_hex(&hex).unwrap().to_hex(), hex);
/// assert!(SessionKey::from_hex("abcd").is_err());
/// ```
#[derive(Clone)]
pub struct SessionKey {
    bytes: Box<[u8]>,
}

impl SessionKey {
    /// The shortest key accepted, in bytes.
    pub const MIN_LEN: usize = 16;
    /// The longest key accepted, in bytes.
    pub const MAX_LEN: usize = 64;

    /// 32 fresh random bytes from the operating system.
    pub fn generate() -> Result<SessionKey, KeyError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| KeyError::NoRandomness)?;
        Ok(SessionKey {
            bytes: Box::new(bytes),
        })
    }

    /// A key from raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<SessionKey, KeyError> {
        if bytes.len() < Self::MIN_LEN {
            return Err(KeyError::TooShort);
        }
        if bytes.len() > Self::MAX_LEN {
            return Err(KeyError::TooLong);
        }
        Ok(SessionKey {
            bytes: bytes.into(),
        })
    }

    /// A key from hexadecimal text (as `--session-key` and `MCP_EDGE_SESSION_KEY` take it);
    /// surrounding whitespace is ignored.
    pub fn from_hex(text: &str) -> Result<SessionKey, KeyError> {
        let text = text.trim().as_bytes();
        if !text.len().is_multiple_of(2) {
            return Err(KeyError::NotHex);
        }
        if text.len() / 2 > Self::MAX_LEN {
            return Err(KeyError::TooLong);
        }
        let mut bytes = Vec::with_capacity(text.len() / 2);
        for pair in text.chunks_exact(2) {
            let high = hex_digit(pair[0]).ok_or(KeyError::NotHex)?;
            let low = hex_digit(pair[1]).ok_or(KeyError::NotHex)?;
            bytes.push(high << 4 | low);
        }
        Self::from_bytes(&bytes)
    }

    /// The key as lowercase hexadecimal.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(self.bytes.len() * 2);
        for byte in self.bytes.iter() {
            text.push(DIGITS[usize::from(byte >> 4)] as char);
            text.push(DIGITS[usize::from(byte & 0x0f)] as char);
        }
        text
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl std::str::FromStr for SessionKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionKey::from_hex(s)
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// Why a [`SessionKey`] could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// Fewer than [`SessionKey::MIN_LEN`] bytes.
    TooShort,
    /// More than [`SessionKey::MAX_LEN`] bytes.
    TooLong,
    /// Not an even number of hexadecimal digits.
    NotHex,
    /// The operating system gave no random bytes.
    NoRandomness,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyError::TooShort => "session key is shorter than 16 bytes",
            KeyError::TooLong => "session key is longer than 64 bytes",
            KeyError::NotHex => "session key is not hexadecimal",
            KeyError::NoRandomness => "no random bytes available for a session key",
        })
    }
}

impl std::error::Error for KeyError {}

/// One derived AEAD key and its one-byte id (sent in the clear to pick the key).
struct DerivedKey {
    id: u8,
    cipher: Aes256Gcm,
}

impl DerivedKey {
    fn derive(key: &SessionKey) -> DerivedKey {
        let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), &key.bytes);
        let mut aead_key = [0u8; 32];
        let mut id = [0u8; 1];
        // Both lengths are far below HKDF-SHA256's 8160-byte limit: expand cannot fail.
        let _ = hkdf.expand(b"aead key", &mut aead_key);
        let _ = hkdf.expand(b"key id", &mut id);
        DerivedKey {
            id: id[0],
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&aead_key)),
        }
    }
}

/// The keys that seal and open session ids: seal with the newest, open with any (rotation).
///
/// Keys are derived once, here; sealing and opening never allocate beyond the returned id.
/// Each seal's 96-bit nonce is a counter run through AES under a random per-process key:
/// distinct within a process and indistinguishable from random across gateway instances
/// sharing the key, and it reveals nothing (such as how many sessions were sealed). As with
/// any random 96-bit nonce, keep to well under 2³² seals per key: rotate keys.
///
/// AES-256-GCM uses the CPU's AES instructions where present (x86 AES-NI, ARMv8 crypto);
/// seal and open take a few hundred nanoseconds each.
///
/// To rotate: start every gateway with `new(next).with_previous(current)`, then, once every
/// session sealed with `current` has ended or expired, drop `current`.
///
/// ```
/// use std::time::SystemTime;
/// use mcp_edge::affinity::{EnvelopeKeys, SessionEnvelope, SessionKey};
/// use mcp_edge::{Replica, SessionId};
///
/// let old = SessionKey::generate().unwrap();
/// let new = SessionKey::generate().unwrap();
/// let server_id: SessionId = "6f1c0d0e-3a4b-4c5d-8e9f-0a1b2c3d4e5f".parse().unwrap();
/// let envelope = SessionEnvelope::new(&Replica::new("a"), server_id.clone(), None, SystemTime::now());
///
/// let sealed_before = EnvelopeKeys::new(&old).seal(&envelope).unwrap();
/// let keys = EnvelopeKeys::new(&new).with_previous(&old);
/// assert_eq!(keys.open(sealed_before.as_str().as_bytes()).unwrap().session(), &server_id);
/// let sealed = keys.seal(&envelope).unwrap();
/// assert!(sealed.as_str().len() < 160);
/// assert!(EnvelopeKeys::new(&old).open(sealed.as_str().as_bytes()).is_err());
/// ```
pub struct EnvelopeKeys {
    /// Newest first.
    keys: Vec<DerivedKey>,
    nonces: NonceSource,
}

/// Unique, unpredictable nonces: AES-128 under a random key over (random salt ‖ counter).
struct NonceSource {
    cipher: Aes128,
    salt: [u8; 8],
    counter: AtomicU64,
}

impl NonceSource {
    fn new() -> Self {
        let mut seed = [0u8; 24];
        if getrandom::fill(&mut seed).is_err() {
            // Uniqueness is what counts; a digest of the time and the process id gives it.
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            let mut hasher = Sha256::new();
            hasher.update(now.to_be_bytes());
            hasher.update(std::process::id().to_be_bytes());
            seed.copy_from_slice(&hasher.finalize()[..24]);
        }
        let mut salt = [0u8; 8];
        salt.copy_from_slice(&seed[16..]);
        NonceSource {
            cipher: Aes128::new(GenericArray::from_slice(&seed[..16])),
            salt,
            counter: AtomicU64::new(0),
        }
    }

    fn next(&self) -> [u8; NONCE_LEN] {
        let counter = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut block = GenericArray::from([0u8; 16]);
        block[..8].copy_from_slice(&self.salt);
        block[8..].copy_from_slice(&counter.to_be_bytes());
        self.cipher.encrypt_block(&mut block);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&block[..NONCE_LEN]);
        nonce
    }
}

impl EnvelopeKeys {
    /// Keys that seal with `current` (and open with it).
    pub fn new(current: &SessionKey) -> Self {
        EnvelopeKeys {
            keys: vec![DerivedKey::derive(current)],
            nonces: NonceSource::new(),
        }
    }

    /// Also opens ids sealed with `previous` (never seals with it). Call in order, newest
    /// first.
    pub fn with_previous(mut self, previous: &SessionKey) -> Self {
        self.keys.push(DerivedKey::derive(previous));
        self
    }

    /// How many keys open ids (1 + the previous keys).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Seals an envelope with the newest key into a client-visible session id: visible
    /// ASCII only (`A–Z a–z 0–9 - _`), 126 characters for a 36-character server id bound to
    /// a principal.
    pub fn seal(&self, envelope: &SessionEnvelope) -> Result<SessionId, SealError> {
        let session = envelope.session.as_str().as_bytes();
        if session.len() > MAX_SEALED_SESSION_LEN {
            return Err(SealError::SessionIdTooLong);
        }
        let key = &self.keys[0];
        let mut token = [0u8; MAX_TOKEN_BYTES];
        token[0] = key.id;
        token[1..1 + NONCE_LEN].copy_from_slice(&self.nonces.next());

        let start = 1 + NONCE_LEN;
        let mut at = start;
        let flags = if envelope.principal.is_some() {
            FLAG_PRINCIPAL
        } else {
            0
        };
        token[at] = flags;
        at += 1;
        token[at..at + 4].copy_from_slice(&envelope.issued_at.to_be_bytes());
        at += 4;
        token[at..at + 8].copy_from_slice(&envelope.replica.to_be_bytes());
        at += 8;
        if let Some(principal) = &envelope.principal {
            token[at..at + PRINCIPAL_LEN].copy_from_slice(principal);
            at += PRINCIPAL_LEN;
        }
        token[at..at + session.len()].copy_from_slice(session);
        at += session.len();

        let nonce = *Nonce::from_slice(&token[1..start]);
        let aad = aad(key.id);
        let tag = key
            .cipher
            .encrypt_in_place_detached(&nonce, &aad, &mut token[start..at])
            .map_err(|_| SealError::SessionIdTooLong)?;
        token[at..at + TAG_LEN].copy_from_slice(&tag);
        at += TAG_LEN;

        let mut text = [0u8; SessionId::MAX_LEN];
        let written = URL_SAFE_NO_PAD
            .encode_slice(&token[..at], &mut text)
            .map_err(|_| SealError::SessionIdTooLong)?;
        SessionId::from_bytes(&text[..written]).map_err(|_| SealError::SessionIdTooLong)
    }

    /// Opens a client-visible session id with whichever listed key sealed it.
    ///
    /// Anything not sealed by one of these keys, or altered, truncated or extended in any
    /// way, fails with [`OpenError`]; the caller answers 404 (R27, R28).
    pub fn open(&self, token: &[u8]) -> Result<SessionEnvelope, OpenError> {
        if token.len() > SessionId::MAX_LEN {
            return Err(OpenError::Malformed);
        }
        let mut raw = [0u8; MAX_TOKEN_BYTES + 3];
        let len = URL_SAFE_NO_PAD
            .decode_slice(token, &mut raw)
            .map_err(|_| OpenError::Malformed)?;
        if !(MIN_TOKEN_BYTES..=MAX_TOKEN_BYTES).contains(&len) {
            return Err(OpenError::Malformed);
        }
        let raw = &raw[..len];
        let id = raw[0];
        let nonce = Nonce::from_slice(&raw[1..1 + NONCE_LEN]);
        let sealed = &raw[1 + NONCE_LEN..len - TAG_LEN];
        let tag = Tag::from_slice(&raw[len - TAG_LEN..]);
        let aad = aad(id);
        let mut plain = [0u8; MAX_TOKEN_BYTES];
        let plain = &mut plain[..sealed.len()];
        let mut opened = false;
        for key in self.keys.iter().filter(|key| key.id == id) {
            plain.copy_from_slice(sealed);
            if key
                .cipher
                .decrypt_in_place_detached(nonce, &aad, plain, tag)
                .is_ok()
            {
                opened = true;
                break;
            }
        }
        if !opened {
            return Err(OpenError::Unauthentic);
        }
        parse_payload(plain)
    }
}

fn aad(key_id: u8) -> [u8; AAD_PREFIX.len() + 1] {
    let mut aad = [0u8; AAD_PREFIX.len() + 1];
    aad[..AAD_PREFIX.len()].copy_from_slice(AAD_PREFIX);
    aad[AAD_PREFIX.len()] = key_id;
    aad
}

fn parse_payload(plain: &[u8]) -> Result<SessionEnvelope, OpenError> {
    let flags = plain[0];
    if flags & !FLAG_PRINCIPAL != 0 {
        return Err(OpenError::Malformed);
    }
    let issued_at = u32::from_be_bytes([plain[1], plain[2], plain[3], plain[4]]);
    let mut replica = [0u8; 8];
    replica.copy_from_slice(&plain[5..13]);
    let mut rest = &plain[FIXED_LEN..];
    let principal = if flags & FLAG_PRINCIPAL != 0 {
        if rest.len() <= PRINCIPAL_LEN {
            return Err(OpenError::Malformed);
        }
        let mut tag = [0u8; PRINCIPAL_LEN];
        tag.copy_from_slice(&rest[..PRINCIPAL_LEN]);
        rest = &rest[PRINCIPAL_LEN..];
        Some(tag)
    } else {
        None
    };
    let session = SessionId::from_bytes(rest).map_err(|_| OpenError::Malformed)?;
    Ok(SessionEnvelope {
        replica: u64::from_be_bytes(replica),
        session,
        principal,
        issued_at,
    })
}

impl fmt::Debug for EnvelopeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvelopeKeys")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// What a sealed session id carries: the replica, the server's own session id, the principal
/// the session is bound to (as a digest), and when it was sealed (second precision).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionEnvelope {
    replica: u64,
    session: SessionId,
    principal: Option<[u8; PRINCIPAL_LEN]>,
    issued_at: u32,
}

impl SessionEnvelope {
    /// An envelope for `session` on `replica`, bound to `principal` (or to "no principal").
    pub fn new(
        replica: &Replica,
        session: SessionId,
        principal: Option<&Principal>,
        issued_at: SystemTime,
    ) -> Self {
        SessionEnvelope {
            replica: replica.tag(),
            session,
            principal: principal.map(principal_tag),
            issued_at: unix_seconds(issued_at),
        }
    }

    pub(crate) fn from_parts(
        replica: u64,
        session: SessionId,
        principal: Option<[u8; PRINCIPAL_LEN]>,
        issued_at: SystemTime,
    ) -> Self {
        SessionEnvelope {
            replica,
            session,
            principal,
            issued_at: unix_seconds(issued_at),
        }
    }

    /// The server's own session id.
    pub fn session(&self) -> &SessionId {
        &self.session
    }

    /// Whether the session lives on `replica`.
    pub fn is_on(&self, replica: &Replica) -> bool {
        self.replica == replica.tag()
    }

    pub(crate) fn replica_tag(&self) -> u64 {
        self.replica
    }

    /// Whether the session is bound to `principal` (issuer and subject), or to no principal
    /// when `None` (R32).
    ///
    /// Stricter than [`BindingKey::admits`], the rule of stored sessions: a session sealed
    /// without a principal takes only requests without one, where an unbound record takes
    /// anyone. A bound envelope compares the digest of the same bytes a record keeps.
    pub fn is_bound_to(&self, principal: Option<&Principal>) -> bool {
        match (&self.principal, principal) {
            (Some(bound), Some(principal)) => *bound == principal_tag(principal),
            (None, None) => true,
            // An unbound envelope presented by a principal is refused here, and admitted by
            // `BindingKey::admits`: the one difference between the two rules.
            (None, Some(_)) | (Some(_), None) => false,
        }
    }

    pub(crate) fn principal_tag(&self) -> Option<[u8; PRINCIPAL_LEN]> {
        self.principal
    }

    /// When the id was sealed (whole seconds).
    pub fn issued_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(u64::from(self.issued_at))
    }

    /// The same envelope with another seal time.
    pub fn with_issued_at(mut self, at: SystemTime) -> Self {
        self.issued_at = unix_seconds(at);
        self
    }

    /// Whether the envelope is older than `max_age` at `now`.
    pub fn is_expired(&self, max_age: Duration, now: SystemTime) -> bool {
        let age = u64::from(unix_seconds(now)).saturating_sub(u64::from(self.issued_at));
        age > max_age.as_secs()
    }
}

impl fmt::Debug for SessionEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionEnvelope")
            .field("replica", &format_args!("{:016x}", self.replica))
            .field("session", &self.session)
            .field("bound", &self.principal.is_some())
            .field("issued_at", &self.issued_at)
            .finish()
    }
}

/// A 128-bit digest of the principal's [`BindingKey`] (issuer and subject, R32).
pub(crate) fn principal_tag(principal: &Principal) -> [u8; PRINCIPAL_LEN] {
    let mut hasher = Sha256::new();
    BindingKey::digest_parts(principal, |part| hasher.update(part));
    let mut tag = [0u8; PRINCIPAL_LEN];
    tag.copy_from_slice(&hasher.finalize()[..PRINCIPAL_LEN]);
    tag
}

fn unix_seconds(at: SystemTime) -> u32 {
    let secs = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// Why an envelope could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealError {
    /// The server's session id is longer than [`MAX_SEALED_SESSION_LEN`].
    SessionIdTooLong,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the server's session id is too long to seal")
    }
}

impl std::error::Error for SealError {}

/// Why a session id could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenError {
    /// Not a sealed id: wrong characters, wrong length, or an unknown layout.
    Malformed,
    /// No listed key opens it: forged, altered, truncated, or sealed with another key.
    Unauthentic,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpenError::Malformed => "not a sealed session id",
            OpenError::Unauthentic => "session id not sealed by a listed key",
        })
    }
}

impl std::error::Error for OpenError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SessionKey {
        SessionKey::from_bytes(&[byte; 32]).unwrap()
    }

    fn envelope(principal: Option<&Principal>) -> SessionEnvelope {
        SessionEnvelope::new(
            &Replica::new("replica-a"),
            "0f3c2b9e-1d4a-4f7e-9a7b-2c1d3e4f5a6b".parse().unwrap(),
            principal,
            SystemTime::now(),
        )
    }

    #[test]
    fn seal_then_open_round_trips_and_stays_short_visible_ascii() {
        let keys = EnvelopeKeys::new(&key(1));
        let alice = Principal::new("alice").with_issuer("https://as.example");
        for principal in [None, Some(&alice)] {
            let envelope = envelope(principal);
            let sealed = keys.seal(&envelope).unwrap();
            assert!(sealed.as_str().len() < 160, "{}", sealed.as_str().len());
            assert!(sealed.as_str().bytes().all(|b| (0x21..=0x7e).contains(&b)));
            let opened = keys.open(sealed.as_str().as_bytes()).unwrap();
            assert_eq!(
                opened,
                envelope.clone().with_issued_at(envelope.issued_at())
            );
            assert!(opened.is_on(&Replica::new("replica-a")));
            assert!(!opened.is_on(&Replica::new("replica-b")));
            assert!(opened.is_bound_to(principal));
        }
        let bound = keys.seal(&envelope(Some(&alice))).unwrap();
        assert_eq!(bound.as_str().len(), 126);
    }

    #[test]
    fn two_seals_of_the_same_envelope_differ() {
        let keys = EnvelopeKeys::new(&key(1));
        let e = envelope(None);
        assert_ne!(keys.seal(&e).unwrap(), keys.seal(&e).unwrap());
    }

    #[test]
    fn tampered_truncated_extended_and_foreign_tokens_fail() {
        let keys = EnvelopeKeys::new(&key(1));
        let sealed = keys.seal(&envelope(None)).unwrap();
        let text = sealed.as_str().as_bytes();
        for i in 0..text.len() {
            let mut altered = text.to_vec();
            altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
            assert!(keys.open(&altered).is_err(), "byte {i} altered");
        }
        for len in 0..text.len() {
            assert!(keys.open(&text[..len]).is_err(), "truncated to {len}");
        }
        let mut longer = text.to_vec();
        longer.extend_from_slice(b"AA");
        assert!(keys.open(&longer).is_err());
        assert_eq!(
            EnvelopeKeys::new(&key(2)).open(text),
            Err(OpenError::Unauthentic)
        );
        assert_eq!(
            keys.open(b"0f3c2b9e-1d4a-4f7e-9a7b-2c1d3e4f5a6b"),
            Err(OpenError::Malformed)
        );
        assert_eq!(keys.open(&[b'A'; 2000]), Err(OpenError::Malformed));
        assert_eq!(keys.open(b"not base64 !"), Err(OpenError::Malformed));
    }

    #[test]
    fn previous_keys_open_but_never_seal() {
        let old = EnvelopeKeys::new(&key(1));
        let rotated = EnvelopeKeys::new(&key(2)).with_previous(&key(1));
        let before = old.seal(&envelope(None)).unwrap();
        assert!(rotated.open(before.as_str().as_bytes()).is_ok());
        let after = rotated.seal(&envelope(None)).unwrap();
        assert!(old.open(after.as_str().as_bytes()).is_err());
        assert_eq!(rotated.key_count(), 2);
    }

    #[test]
    fn principal_binding_and_expiry() {
        let alice = Principal::new("alice").with_issuer("https://as.example");
        let mallory = Principal::new("alice").with_issuer("https://evil.example");
        let e = envelope(Some(&alice));
        assert!(e.is_bound_to(Some(&alice)));
        assert!(!e.is_bound_to(Some(&mallory)));
        assert!(!e.is_bound_to(None));
        assert!(!envelope(None).is_bound_to(Some(&alice)));

        let now = SystemTime::now();
        let e = e.with_issued_at(now - Duration::from_secs(120));
        assert!(e.is_expired(Duration::from_secs(60), now));
        assert!(!e.is_expired(Duration::from_secs(600), now));
    }

    #[test]
    fn long_server_ids_are_sealed_up_to_the_limit() {
        let keys = EnvelopeKeys::new(&key(1));
        let alice = Principal::new("alice");
        let longest = "a".repeat(MAX_SEALED_SESSION_LEN);
        let e = SessionEnvelope::new(
            &Replica::new("r"),
            longest.parse().unwrap(),
            Some(&alice),
            SystemTime::now(),
        );
        let sealed = keys.seal(&e).unwrap();
        assert!(sealed.as_str().len() <= SessionId::MAX_LEN);
        assert_eq!(keys.open(sealed.as_str().as_bytes()).unwrap(), e);
        let too_long = SessionEnvelope::new(
            &Replica::new("r"),
            "a".repeat(MAX_SEALED_SESSION_LEN + 1).parse().unwrap(),
            Some(&alice),
            SystemTime::now(),
        );
        assert_eq!(keys.seal(&too_long), Err(SealError::SessionIdTooLong));
    }

    #[test]
    fn hex_keys() {
        assert_eq!(
            SessionKey::from_hex(&"ab".repeat(16)).unwrap().to_hex(),
            "ab".repeat(16)
        );
        assert_eq!(
            SessionKey::from_hex(&"AB".repeat(16)).unwrap().to_hex(),
            "ab".repeat(16)
        );
        let err = |text: &str| SessionKey::from_hex(text).map(|_| ());
        assert_eq!(err("zz"), Err(KeyError::NotHex));
        assert_eq!(err("abc"), Err(KeyError::NotHex));
        assert_eq!(err(&"ab".repeat(16)), Ok(()));
        assert_eq!(err(&"ab".repeat(15)), Err(KeyError::TooShort));
        assert_eq!(err(&"ab".repeat(65)), Err(KeyError::TooLong));
        assert_eq!(format!("{:?}", key(7)), "SessionKey(..)");
    }
}
