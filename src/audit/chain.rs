//! Tamper evidence for JSON-lines audit logs: a SHA-256 hash chain, and its verifier.
//!
//! With [`JsonLinesSink`](super::JsonLinesSink)'s hash chain on, every line ends with three
//! more keys: `mcp_edge.chain.seq` (1, 2, 3, … across restarts), `mcp_edge.chain.prev` (the
//! previous line's hash; 64 zeros for the first line of a chain) and, always last,
//! `mcp_edge.chain.hash`: the hex SHA-256 of the line's bytes up to (not including) the
//! `,"mcp_edge.chain.hash"` that precedes it. Editing a line breaks its own hash; deleting,
//! inserting or reordering lines breaks the next line's `prev` and `seq`.
//!
//! What a plain hash chain cannot show: that lines were cut off at the end (keep the last
//! hash [`verify_chain`] returns somewhere else, and compare), or that someone rewrote the
//! whole file and recomputed every hash. Signed checkpoints show both
//! ([`checkpoint`](super::checkpoint)).
//!
//! ```
//! use mcp_edge::audit::chain::{ChainState, verify_chain};
//!
//! let mut chain = ChainState::new();
//! let mut log = Vec::new();
//! for n in 0..3 {
//!     let mut line = format!(r#"{{"n":{n}}}"#).into_bytes();
//!     chain.seal(&mut line);
//!     log.extend_from_slice(&line);
//! }
//! let verified = verify_chain(&log[..]).unwrap();
//! assert_eq!(verified.lines, 3);
//! ```

use std::fmt;
use std::io::{self, BufRead, Write as _};

use sha2::{Digest, Sha256};

const SEQ_KEY: &str = "mcp_edge.chain.seq";
const PREV_KEY: &str = "mcp_edge.chain.prev";
const HASH_MARK: &[u8] = br#","mcp_edge.chain.hash":""#;

/// The genesis `prev`: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where a chain stands: the last sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainState {
    seq: u64,
    prev: String,
}

impl Default for ChainState {
    fn default() -> Self {
        ChainState::new()
    }
}

impl ChainState {
    /// A new chain: the first line gets `seq` 1 and `prev` [`GENESIS`].
    pub fn new() -> Self {
        ChainState {
            seq: 0,
            prev: GENESIS.to_owned(),
        }
    }

    /// Continues a chain after the line with this sequence number and hash.
    pub fn resume(seq: u64, hash: impl Into<String>) -> Self {
        ChainState {
            seq,
            prev: hash.into(),
        }
    }

    /// Continues the chain whose last line is `line` (with or without its newline); `None`
    /// when that line carries no chain fields.
    pub fn after_line(line: &[u8]) -> Option<Self> {
        let parsed = parse_line(trim_newline(line)).ok()?;
        Some(ChainState::resume(parsed.seq, parsed.hash))
    }

    /// The last sequence number sealed (0 before the first).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The last hash sealed ([`GENESIS`] before the first).
    pub fn last_hash(&self) -> &str {
        &self.prev
    }

    /// Seals one JSON object (`{…}`, without newline) in place: appends the chain keys and a
    /// final newline.
    ///
    /// # Panics
    /// If `line` does not end with `}`.
    pub fn seal(&mut self, line: &mut Vec<u8>) {
        assert_eq!(line.pop(), Some(b'}'), "a JSON object");
        self.seq += 1;
        let empty = line.last() == Some(&b'{');
        if !empty {
            line.push(b',');
        }
        // Written piece by piece: no allocation beyond the line's own.
        line.push(b'"');
        line.extend_from_slice(SEQ_KEY.as_bytes());
        line.extend_from_slice(b"\":");
        let _ = write!(line, "{}", self.seq);
        line.extend_from_slice(b",\"");
        line.extend_from_slice(PREV_KEY.as_bytes());
        line.extend_from_slice(b"\":\"");
        line.extend_from_slice(self.prev.as_bytes());
        line.push(b'"');
        let mut hash = [0u8; 64];
        hex_into(&Sha256::digest(&line[..]), &mut hash);
        line.extend_from_slice(HASH_MARK);
        line.extend_from_slice(&hash);
        line.extend_from_slice(b"\"}\n");
        self.prev.clear();
        self.prev
            .push_str(std::str::from_utf8(&hash).expect("hex digits"));
    }
}

/// Writes `bytes` as lowercase hex into `out` (twice as long).
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0; bytes.len() * 2];
    hex_into(bytes, &mut out);
    String::from_utf8(out).expect("hex digits")
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A verified log: how many lines, and the last line's sequence number and hash (keep it
/// elsewhere to detect a cut-off tail later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Lines checked.
    pub lines: u64,
    /// The chain's state after the last line.
    pub last: ChainState,
}

/// Why a log does not verify.
#[derive(Debug)]
#[non_exhaustive]
pub enum ChainError {
    /// The log could not be read.
    Io(io::Error),
    /// Line `line` (1-based) breaks the chain.
    Broken {
        /// 1-based line number in the file.
        line: u64,
        /// What is wrong.
        kind: BrokenKind,
    },
}

/// How a line breaks the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokenKind {
    /// The line has no chain fields, or they are malformed.
    Malformed,
    /// The line's hash does not match its content: it was edited.
    HashMismatch,
    /// The line's `prev` is not the previous line's hash: a line before it was deleted,
    /// inserted or moved.
    PrevMismatch,
    /// The sequence number does not follow the previous one.
    SeqGap,
    /// A checkpoint's signature does not verify with the key given: it was forged, edited,
    /// or signed with another key.
    BadSignature,
    /// A checkpoint signs a chain head other than the line before it.
    CheckpointMismatch,
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainError::Io(e) => write!(f, "reading the audit log failed: {e}"),
            ChainError::Broken { line, kind } => {
                let what = match kind {
                    BrokenKind::Malformed => "has no valid chain fields",
                    BrokenKind::HashMismatch => "was edited (its hash does not match)",
                    BrokenKind::PrevMismatch => {
                        "does not follow the line before it (a line was deleted, inserted or moved)"
                    }
                    BrokenKind::SeqGap => "has a sequence number out of order",
                    BrokenKind::BadSignature => {
                        "is a checkpoint whose signature does not verify (forged, edited, or \
                         signed with another key)"
                    }
                    BrokenKind::CheckpointMismatch => {
                        "is a checkpoint that signs another chain head than the line before it"
                    }
                };
                write!(f, "line {line} {what}")
            }
        }
    }
}

impl std::error::Error for ChainError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ChainError::Io(e) => Some(e),
            ChainError::Broken { .. } => None,
        }
    }
}

struct ParsedLine {
    seq: u64,
    prev: String,
    hash: String,
    content_ok: bool,
}

fn parse_line(line: &[u8]) -> Result<ParsedLine, BrokenKind> {
    let mark = find_last(line, HASH_MARK).ok_or(BrokenKind::Malformed)?;
    let tail = &line[mark + HASH_MARK.len()..];
    let hash = tail.strip_suffix(b"\"}").ok_or(BrokenKind::Malformed)?;
    if hash.len() != 64 || !hash.iter().all(|b| b.is_ascii_hexdigit()) {
        return Err(BrokenKind::Malformed);
    }
    let hash = String::from_utf8(hash.to_vec()).map_err(|_| BrokenKind::Malformed)?;
    let content_ok = hex(&Sha256::digest(&line[..mark])) == hash;
    #[derive(serde::Deserialize)]
    struct Fields {
        #[serde(rename = "mcp_edge.chain.seq")]
        seq: u64,
        #[serde(rename = "mcp_edge.chain.prev")]
        prev: String,
    }
    let fields: Fields = serde_json::from_slice(line).map_err(|_| BrokenKind::Malformed)?;
    Ok(ParsedLine {
        seq: fields.seq,
        prev: fields.prev,
        hash,
        content_ok,
    })
}

fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// Verifies a whole JSON-lines audit log written with the hash chain on.
///
/// The first line may continue an earlier chain (a rotated file): its `prev` is taken as
/// given. Every later line must follow the one before it. Blank lines are skipped.
pub fn verify_chain<R: BufRead>(reader: R) -> Result<Verified, ChainError> {
    walk(reader, |_, _, _| Ok(()))
}

/// [`verify_chain`], showing each line to `visit` once its hash and links are checked: the
/// line (without newline), its sequence number and its `prev`.
pub(super) fn walk<R, F>(mut reader: R, mut visit: F) -> Result<Verified, ChainError>
where
    R: BufRead,
    F: FnMut(&[u8], u64, &str) -> Result<(), BrokenKind>,
{
    let mut state: Option<ChainState> = None;
    let mut number = 0u64;
    let mut lines = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(ChainError::Io)? == 0 {
            break;
        }
        number += 1;
        let line = trim_newline(&buf);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let broken = |kind| ChainError::Broken { line: number, kind };
        let parsed = parse_line(line).map_err(broken)?;
        if !parsed.content_ok {
            return Err(broken(BrokenKind::HashMismatch));
        }
        if let Some(prev) = &state {
            if parsed.prev != prev.prev {
                return Err(broken(BrokenKind::PrevMismatch));
            }
            if parsed.seq != prev.seq + 1 {
                return Err(broken(BrokenKind::SeqGap));
            }
        } else if parsed.seq == 1 && parsed.prev != GENESIS {
            return Err(broken(BrokenKind::PrevMismatch));
        }
        visit(line, parsed.seq, &parsed.prev).map_err(broken)?;
        state = Some(ChainState::resume(parsed.seq, parsed.hash));
        lines += 1;
    }
    Ok(Verified {
        lines,
        last: state.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: usize) -> Vec<Vec<u8>> {
        let mut chain = ChainState::new();
        (0..n)
            .map(|i| {
                let mut line = format!(r#"{{"n":{i},"text":"event {i}"}}"#).into_bytes();
                chain.seal(&mut line);
                line
            })
            .collect()
    }

    fn broken_at(lines: &[Vec<u8>]) -> (u64, BrokenKind) {
        match verify_chain(&lines.concat()[..]) {
            Err(ChainError::Broken { line, kind }) => (line, kind),
            other => panic!("expected a broken chain, got {other:?}"),
        }
    }

    #[test]
    fn sealed_lines_verify_and_resume() {
        let lines = log(4);
        let verified = verify_chain(&lines.concat()[..]).unwrap();
        assert_eq!(verified.lines, 4);
        assert_eq!(verified.last.seq(), 4);
        let resumed = ChainState::after_line(&lines[3]).unwrap();
        assert_eq!(resumed, verified.last);
        let line: serde_json::Value = serde_json::from_slice(&lines[0]).unwrap();
        assert_eq!(line["n"], 0);
        assert_eq!(line[PREV_KEY], GENESIS);
    }

    #[test]
    fn edited_deleted_and_swapped_lines_are_caught() {
        let lines = log(5);
        let mut edited = lines.clone();
        edited[2] = String::from_utf8(edited[2].clone())
            .unwrap()
            .replace("event 2", "event X")
            .into_bytes();
        assert_eq!(broken_at(&edited), (3, BrokenKind::HashMismatch));

        let mut deleted = lines.clone();
        deleted.remove(1);
        assert_eq!(broken_at(&deleted), (2, BrokenKind::PrevMismatch));

        let mut swapped = lines.clone();
        swapped.swap(1, 2);
        assert_eq!(broken_at(&swapped), (2, BrokenKind::PrevMismatch));

        let mut deleted_first = lines.clone();
        deleted_first.remove(0);
        // A chain may start mid-way (rotated file), but not claim seq 1 with a prev.
        assert!(verify_chain(&deleted_first.concat()[..]).is_ok());
        assert_eq!(
            broken_at(&[b"{\"n\":1}\n".to_vec()]),
            (1, BrokenKind::Malformed)
        );
    }
}
