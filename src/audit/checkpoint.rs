//! Signed checkpoints: an audit log that someone who did not write it can verify.
//!
//! The [hash chain](super::chain) shows an edited, removed or reordered line, but whoever can
//! write the file can also recompute every hash after an edit, and cut lines off its end
//! unseen. With checkpoints on ([`JsonLinesSinkBuilder::checkpoints`]), the sink's writer
//! thread signs the chain head every N events or T seconds (whichever comes first, only when
//! events were written since the last one) and once more at shutdown: a checkpoint line
//!
//! ```text
//! {"mcp_edge.checkpoint":{"alg":"ed25519","key_id":"…","seq":41,"head":"<hash of line 41>",
//!  "at_ms":…,"final":false,"sig":"…"},"mcp_edge.chain.seq":42,"mcp_edge.chain.prev":"…",…}
//! ```
//!
//! (one line in the file) that is itself part of the chain. A verifier with the public key
//! ([`verify_signed`]) checks every link and every signature, and reports the lines after the
//! last checkpoint, which no signature covers: a log whose last line is not the `final`
//! checkpoint written at shutdown was cut, or its writer is still running or crashed.
//!
//! Two algorithms: Ed25519 (the verifier holds only the public key, so it cannot forge a
//! checkpoint; the default choice) and HMAC-SHA256 (cheaper, but whoever verifies can also
//! sign). Signing happens on the writer thread, never on the request path: one Ed25519
//! signature (tens of microseconds) per checkpoint, not per event.
//!
//! Keys are text, from a file or an environment variable ([`CheckpointSigner::from_text`]):
//! an Ed25519 private key as PKCS#8 PEM (`openssl genpkey -algorithm ed25519`), or
//! `ed25519:` and its 32-byte seed in hex, or `hmac-sha256:` and at least 32 bytes of key in
//! hex. The verifier takes the public key as SPKI PEM (`openssl pkey -pubout`) or
//! `ed25519:` and 32 bytes in hex ([`CheckpointSigner::public_key_text`]).
//!
//! ```
//! use mcp_edge::audit::chain::ChainState;
//! use mcp_edge::audit::checkpoint::{CheckpointSigner, verify_signed};
//!
//! let signer = CheckpointSigner::ed25519_from_seed(&[7; 32]);
//! let mut chain = ChainState::new();
//! let mut log = Vec::new();
//! for n in 0..3 {
//!     let mut line = format!(r#"{{"n":{n}}}"#).into_bytes();
//!     chain.seal(&mut line);
//!     log.extend_from_slice(&line);
//! }
//! let mut line = Vec::new();
//! signer.checkpoint_line(&chain, 0, true, &mut line);
//! chain.seal(&mut line);
//! log.extend_from_slice(&line);
//!
//! let report = verify_signed(&log[..], &signer.verifier()).unwrap();
//! assert_eq!((report.checkpoints, report.unsigned_tail, report.complete), (1, 0, true));
//! ```
//!
//! [`JsonLinesSinkBuilder::checkpoints`]: super::JsonLinesSinkBuilder::checkpoints

use std::fmt;
use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::chain::{BrokenKind, ChainError, ChainState, Verified, walk};

/// The key of a checkpoint line's object (always its first key).
pub const CHECKPOINT_KEY: &str = "mcp_edge.checkpoint";

/// How a checkpoint line starts.
const PREFIX: &[u8] = br#"{"mcp_edge.checkpoint":"#;

/// Default: a checkpoint after this many events.
pub const DEFAULT_CHECKPOINT_EVENTS: u64 = 1000;

/// Default: a checkpoint this long after the last one, when events were written since.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

/// What is signed: the algorithm, the key id, the head's sequence number and hash, the time
/// and whether it is the final checkpoint, one per line after a fixed first line.
fn message(alg: &str, key_id: &str, seq: u64, head: &str, at_ms: u64, last: bool) -> String {
    format!("mcp-edge audit checkpoint v1\n{alg}\n{key_id}\n{seq}\n{head}\n{at_ms}\n{last}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// A key id: the first 8 bytes of a SHA-256, in hex (`label` keeps HMAC ids apart from the key).
fn key_id(label: &[u8], key: &[u8]) -> String {
    let mut digest = Sha256::new();
    digest.update(label);
    digest.update(key);
    hex(&digest.finalize()[..8])
}

const HMAC_ID_LABEL: &[u8] = b"mcp-edge audit hmac key id\n";
const HMAC_MIN_BYTES: usize = 32;

/// Why a key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointKeyError(String);

impl fmt::Display for CheckpointKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CheckpointKeyError {}

fn key_error(text: &str) -> CheckpointKeyError {
    CheckpointKeyError(text.to_owned())
}

/// The text of a key file; an error names the file.
fn read_key_file(path: &Path) -> Result<String, CheckpointKeyError> {
    std::fs::read_to_string(path)
        .map_err(|e| CheckpointKeyError(format!("{}: {e}", path.display())))
}

#[derive(Clone)]
enum SignerKey {
    Ed25519(Box<SigningKey>),
    Hmac(Box<[u8]>),
}

/// The key that signs checkpoints, with its algorithm: Ed25519 or HMAC-SHA256.
///
/// Its `Debug` shows the algorithm and key id, never the key.
#[derive(Clone)]
pub struct CheckpointSigner {
    key: SignerKey,
    key_id: String,
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("alg", &self.algorithm())
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// An Ed25519 signer from its 32-byte seed (the private key).
    pub fn ed25519_from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id(b"", key.verifying_key().as_bytes());
        CheckpointSigner {
            key: SignerKey::Ed25519(Box::new(key)),
            key_id,
        }
    }

    /// An HMAC-SHA256 signer; the key must have at least 32 bytes.
    pub fn hmac_sha256(key: &[u8]) -> Result<Self, CheckpointKeyError> {
        if key.len() < HMAC_MIN_BYTES {
            return Err(key_error("an HMAC key needs at least 32 bytes"));
        }
        Ok(CheckpointSigner {
            key_id: key_id(HMAC_ID_LABEL, key),
            key: SignerKey::Hmac(key.into()),
        })
    }

    /// A signer from text: an Ed25519 private key as PKCS#8 PEM, `ed25519:` and the 32-byte
    /// seed in hex, or `hmac-sha256:` and the key in hex (at least 32 bytes). Surrounding
    /// whitespace is ignored.
    pub fn from_text(text: &str) -> Result<Self, CheckpointKeyError> {
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            let key = SigningKey::from_pkcs8_pem(text)
                .map_err(|_| key_error("not an Ed25519 private key in PKCS#8 PEM"))?;
            return Ok(CheckpointSigner::ed25519_from_seed(&key.to_bytes()));
        }
        if let Some(seed) = text.strip_prefix("ed25519:") {
            let seed: [u8; 32] = unhex(seed)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| key_error("ed25519: needs 64 hex digits (the 32-byte seed)"))?;
            return Ok(CheckpointSigner::ed25519_from_seed(&seed));
        }
        if let Some(key) = text.strip_prefix("hmac-sha256:") {
            let key = unhex(key).ok_or_else(|| key_error("hmac-sha256: needs hex digits"))?;
            return CheckpointSigner::hmac_sha256(&key);
        }
        Err(key_error(
            "expected a PKCS#8 PEM Ed25519 key, ed25519:<hex seed> or hmac-sha256:<hex key>",
        ))
    }

    /// [`from_text`](Self::from_text) of a file's content.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, CheckpointKeyError> {
        CheckpointSigner::from_text(&read_key_file(path.as_ref())?)
    }

    /// [`from_text`](Self::from_text) of an environment variable's value.
    pub fn from_env(name: &str) -> Result<Self, CheckpointKeyError> {
        let text = std::env::var(name).map_err(|e| CheckpointKeyError(format!("{name}: {e}")))?;
        CheckpointSigner::from_text(&text)
    }

    /// `"ed25519"` or `"hmac-sha256"`.
    pub fn algorithm(&self) -> &'static str {
        match self.key {
            SignerKey::Ed25519(_) => "ed25519",
            SignerKey::Hmac(_) => "hmac-sha256",
        }
    }

    /// The key id written in each checkpoint (16 hex digits of a SHA-256 of the public key,
    /// or of the HMAC key).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// For Ed25519: the public key as `ed25519:<hex>`, which [`CheckpointVerifier::from_text`]
    /// reads. `None` for HMAC (whose verifier needs the secret key itself).
    pub fn public_key_text(&self) -> Option<String> {
        match &self.key {
            SignerKey::Ed25519(key) => {
                Some(format!("ed25519:{}", hex(key.verifying_key().as_bytes())))
            }
            SignerKey::Hmac(_) => None,
        }
    }

    /// The verifier for this signer's checkpoints.
    pub fn verifier(&self) -> CheckpointVerifier {
        let key = match &self.key {
            SignerKey::Ed25519(key) => VerifierKey::Ed25519(key.verifying_key()),
            SignerKey::Hmac(key) => VerifierKey::Hmac(key.clone()),
        };
        CheckpointVerifier {
            key,
            key_id: self.key_id.clone(),
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.key {
            SignerKey::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
            SignerKey::Hmac(key) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any length");
                mac.update(message);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    /// Writes the checkpoint object that signs `chain`'s head (its last sequence number and
    /// hash) into `out` (cleared first), without newline and without chain keys: seal it with
    /// that same chain next ([`ChainState::seal`]). `last` marks the final checkpoint of a
    /// writer (at shutdown); `at_ms` is the time, in milliseconds since the Unix epoch.
    pub fn checkpoint_line(&self, chain: &ChainState, at_ms: u64, last: bool, out: &mut Vec<u8>) {
        let (alg, seq, head) = (self.algorithm(), chain.seq(), chain.last_hash());
        let signed = message(alg, &self.key_id, seq, head, at_ms, last);
        let sig = STANDARD.encode(self.sign(signed.as_bytes()));
        out.clear();
        out.extend_from_slice(
            format!(
                r#"{{"{CHECKPOINT_KEY}":{{"alg":"{alg}","key_id":"{}","seq":{seq},"head":"{head}","at_ms":{at_ms},"final":{last},"sig":"{sig}"}}}}"#,
                self.key_id
            )
            .as_bytes(),
        );
    }
}

#[derive(Clone)]
enum VerifierKey {
    Ed25519(VerifyingKey),
    Hmac(Box<[u8]>),
}

/// The key that checks checkpoints: an Ed25519 public key, or the HMAC key.
#[derive(Clone)]
pub struct CheckpointVerifier {
    key: VerifierKey,
    key_id: String,
}

impl fmt::Debug for CheckpointVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alg = match self.key {
            VerifierKey::Ed25519(_) => "ed25519",
            VerifierKey::Hmac(_) => "hmac-sha256",
        };
        f.debug_struct("CheckpointVerifier")
            .field("alg", &alg)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl CheckpointVerifier {
    /// A verifier from an Ed25519 public key's 32 bytes.
    pub fn ed25519(public_key: &[u8; 32]) -> Result<Self, CheckpointKeyError> {
        let key = VerifyingKey::from_bytes(public_key)
            .map_err(|_| key_error("not an Ed25519 public key"))?;
        Ok(CheckpointVerifier {
            key_id: key_id(b"", key.as_bytes()),
            key: VerifierKey::Ed25519(key),
        })
    }

    /// A verifier from text: an Ed25519 public key as SPKI PEM (`openssl pkey -pubout`) or
    /// `ed25519:<64 hex digits>`; or `hmac-sha256:<hex key>` (the HMAC key itself).
    pub fn from_text(text: &str) -> Result<Self, CheckpointKeyError> {
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            let key = VerifyingKey::from_public_key_pem(text)
                .map_err(|_| key_error("not an Ed25519 public key in SPKI PEM"))?;
            return CheckpointVerifier::ed25519(key.as_bytes());
        }
        if let Some(key) = text.strip_prefix("ed25519:") {
            let key: [u8; 32] = unhex(key)
                .and_then(|k| k.try_into().ok())
                .ok_or_else(|| key_error("ed25519: needs 64 hex digits (the public key)"))?;
            return CheckpointVerifier::ed25519(&key);
        }
        if text.starts_with("hmac-sha256:") {
            return Ok(CheckpointSigner::from_text(text)?.verifier());
        }
        Err(key_error(
            "expected an SPKI PEM Ed25519 public key, ed25519:<hex> or hmac-sha256:<hex key>",
        ))
    }

    /// [`from_text`](Self::from_text) of a file's content.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, CheckpointKeyError> {
        CheckpointVerifier::from_text(&read_key_file(path.as_ref())?)
    }

    fn algorithm(&self) -> &'static str {
        match self.key {
            VerifierKey::Ed25519(_) => "ed25519",
            VerifierKey::Hmac(_) => "hmac-sha256",
        }
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.key {
            VerifierKey::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
            VerifierKey::Hmac(key) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any length");
                mac.update(message);
                // Constant-time comparison.
                mac.verify_slice(signature).is_ok()
            }
        }
    }

    /// Checks one checkpoint line (sealed as chain line `seq` after `prev`).
    fn check(&self, line: &[u8], seq: u64, prev: &str) -> Result<bool, BrokenKind> {
        #[derive(serde::Deserialize)]
        struct Fields {
            alg: String,
            key_id: String,
            seq: u64,
            head: String,
            at_ms: u64,
            #[serde(rename = "final")]
            last: bool,
            sig: String,
        }
        #[derive(serde::Deserialize)]
        struct Line {
            #[serde(rename = "mcp_edge.checkpoint")]
            checkpoint: Fields,
        }
        let Line { checkpoint: c } =
            serde_json::from_slice(line).map_err(|_| BrokenKind::Malformed)?;
        let signature = STANDARD
            .decode(&c.sig)
            .map_err(|_| BrokenKind::BadSignature)?;
        let signed = message(&c.alg, &c.key_id, c.seq, &c.head, c.at_ms, c.last);
        if c.alg != self.algorithm()
            || c.key_id != self.key_id
            || !self.verify(signed.as_bytes(), &signature)
        {
            return Err(BrokenKind::BadSignature);
        }
        if c.seq + 1 != seq || c.head != prev {
            return Err(BrokenKind::CheckpointMismatch);
        }
        Ok(c.last)
    }
}

/// What [`verify_signed`] found: the chain holds and every checkpoint's signature verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignedLog {
    /// The chain: lines checked, and its state after the last line.
    pub chain: Verified,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// The sequence number of the last line a checkpoint signs (`None`: no checkpoint).
    pub signed_through: Option<u64>,
    /// Lines after the last checkpoint: no signature covers them.
    pub unsigned_tail: u64,
    /// The log ends with a final checkpoint (written at shutdown). When it does not, lines may
    /// have been cut off the end, or the writer is still running (or crashed).
    pub complete: bool,
}

/// Verifies a JSON-lines audit log's hash chain and every checkpoint in it with `key`.
///
/// Fails at the first broken line: an edited, removed, inserted or moved line (as
/// [`verify_chain`](super::chain::verify_chain)), a checkpoint whose signature does not verify
/// with `key` ([`BrokenKind::BadSignature`]: forged, edited, or signed with another key), or
/// one that signs another head than the chain's ([`BrokenKind::CheckpointMismatch`]). A
/// rewritten file with recomputed hashes fails at its first checkpoint after the change. The
/// result reports what no signature covers ([`SignedLog::unsigned_tail`],
/// [`SignedLog::complete`]).
pub fn verify_signed<R: BufRead>(
    reader: R,
    key: &CheckpointVerifier,
) -> Result<SignedLog, ChainError> {
    let mut checkpoints = 0;
    let mut signed_through = None;
    let mut unsigned_tail = 0;
    let mut complete = false;
    let chain = walk(reader, |line, seq, prev| {
        if line.starts_with(PREFIX) {
            complete = key.check(line, seq, prev)?;
            checkpoints += 1;
            signed_through = Some(seq - 1);
            unsigned_tail = 0;
        } else {
            complete = false;
            unsigned_tail += 1;
        }
        Ok(())
    })?;
    Ok(SignedLog {
        chain,
        checkpoints,
        signed_through,
        unsigned_tail,
        complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(signer: &CheckpointSigner, events: usize, every: usize, last: bool) -> Vec<Vec<u8>> {
        let mut chain = ChainState::new();
        let mut lines = Vec::new();
        for i in 0..events {
            let mut line = format!(r#"{{"n":{i},"text":"event {i}"}}"#).into_bytes();
            chain.seal(&mut line);
            lines.push(line);
            if (i + 1) % every == 0 {
                let mut line = Vec::new();
                signer.checkpoint_line(&chain, 1_000 + i as u64, false, &mut line);
                chain.seal(&mut line);
                lines.push(line);
            }
        }
        if last {
            let mut line = Vec::new();
            signer.checkpoint_line(&chain, 9_000, true, &mut line);
            chain.seal(&mut line);
            lines.push(line);
        }
        lines
    }

    fn verify(lines: &[Vec<u8>], key: &CheckpointVerifier) -> Result<SignedLog, ChainError> {
        verify_signed(&lines.concat()[..], key)
    }

    fn broken(lines: &[Vec<u8>], key: &CheckpointVerifier) -> (u64, BrokenKind) {
        match verify(lines, key) {
            Err(ChainError::Broken { line, kind }) => (line, kind),
            other => panic!("expected a broken log, got {other:?}"),
        }
    }

    #[test]
    fn a_signed_log_verifies_with_both_algorithms() {
        for signer in [
            CheckpointSigner::ed25519_from_seed(&[1; 32]),
            CheckpointSigner::hmac_sha256(&[2; 32]).unwrap(),
        ] {
            let lines = log(&signer, 7, 3, true);
            let report = verify(&lines, &signer.verifier()).unwrap();
            assert_eq!(report.chain.lines, 10);
            assert_eq!(report.checkpoints, 3);
            assert_eq!(report.signed_through, Some(9));
            assert_eq!(report.unsigned_tail, 0);
            assert!(report.complete);
            // The plain chain verifier reads checkpoint lines as ordinary lines.
            assert!(super::super::chain::verify_chain(&lines.concat()[..]).is_ok());
        }
    }

    #[test]
    fn a_rewritten_log_with_recomputed_hashes_fails_at_the_next_checkpoint() {
        let signer = CheckpointSigner::ed25519_from_seed(&[1; 32]);
        let lines = log(&signer, 6, 3, true);
        // Rewrite event 1 and recompute the chain, copying checkpoint lines as they were.
        let mut chain = ChainState::new();
        let mut forged = Vec::new();
        for line in &lines {
            let text = String::from_utf8(line.clone()).unwrap();
            let object = &text[..text.find(r#","mcp_edge.chain.seq""#).unwrap()];
            let mut line = format!("{}}}", object.replace("event 1", "event X")).into_bytes();
            chain.seal(&mut line);
            forged.push(line);
        }
        let key = signer.verifier();
        assert!(super::super::chain::verify_chain(&forged.concat()[..]).is_ok());
        assert_eq!(broken(&forged, &key), (4, BrokenKind::CheckpointMismatch));
    }

    #[test]
    fn another_key_or_algorithm_is_a_bad_signature() {
        let signer = CheckpointSigner::ed25519_from_seed(&[1; 32]);
        let lines = log(&signer, 3, 3, false);
        let other = CheckpointSigner::ed25519_from_seed(&[9; 32]).verifier();
        assert_eq!(broken(&lines, &other), (4, BrokenKind::BadSignature));
        let hmac = CheckpointSigner::hmac_sha256(&[1; 32]).unwrap().verifier();
        assert_eq!(broken(&lines, &hmac), (4, BrokenKind::BadSignature));
    }

    #[test]
    fn keys_read_from_text() {
        let signer = CheckpointSigner::ed25519_from_seed(&[3; 32]);
        let seed = format!("ed25519:{}", hex(&[3; 32]));
        assert_eq!(
            CheckpointSigner::from_text(&format!("  {seed}\n"))
                .unwrap()
                .key_id(),
            signer.key_id()
        );
        let public = signer.public_key_text().unwrap();
        let verifier = CheckpointVerifier::from_text(&public).unwrap();
        assert_eq!(verifier.key_id, signer.key_id);
        // RFC 8410 §10.3's example key, as openssl writes it.
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
        let from_pem = CheckpointSigner::from_text(pem).unwrap();
        let spki = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        assert_eq!(
            CheckpointVerifier::from_text(spki).unwrap().key_id,
            from_pem.key_id
        );
        let hmac = format!("hmac-sha256:{}", hex(&[5; 32]));
        assert_eq!(
            CheckpointSigner::from_text(&hmac).unwrap().algorithm(),
            "hmac-sha256"
        );
        assert!(CheckpointSigner::from_text(&format!("hmac-sha256:{}", hex(&[5; 16]))).is_err());
        assert!(CheckpointSigner::from_text("ed25519:00").is_err());
        assert!(CheckpointSigner::from_text("nothing").is_err());
        assert!(!format!("{signer:?}").contains(&hex(&[3; 32])));
    }
}
