//! Verifies a JSON-lines audit log written by `JsonLinesSink` with `hash_chain(true)`, and
//! its signed checkpoints when given the key.
//!
//! ```text
//! cargo run --example audit_verify -- audit.jsonl
//! cargo run --example audit_verify -- --public-key audit.pub audit.jsonl
//! cargo run --example audit_verify -- --hmac-key audit.hmac audit.jsonl
//! ```
//!
//! `--public-key FILE`: the Ed25519 public key (SPKI PEM, as `openssl pkey -in audit.key
//! -pubout` writes it, or `ed25519:<hex>`); `--hmac-key FILE`: the HMAC key
//! (`hmac-sha256:<hex>`). With a key, every checkpoint's signature is checked as well as
//! every link, and the lines after the last checkpoint (which no signature covers) are
//! reported.
//!
//! Exit status: 0 when the chain holds (with a key: and every checkpoint verifies, and the
//! log ends with the final checkpoint written at shutdown); 1 when a line was edited, deleted,
//! inserted or moved, or a checkpoint is forged or signed with another key (the first broken
//! line is named); 3 with a key when the log does not end with a final checkpoint: lines may
//! have been cut off the end (or the server is still running, or crashed); 2 when the file or
//! key cannot be read. Without a key, keep the last hash somewhere else: comparing it later
//! also shows lines cut off the end.

use std::fs::File;
use std::io::BufReader;
use std::process::ExitCode;

use mcp_edge::audit::chain::{ChainError, verify_chain};
use mcp_edge::audit::checkpoint::{CheckpointVerifier, verify_signed};

const USAGE: &str = "usage: audit_verify [--public-key FILE | --hmac-key FILE] AUDIT_LOG.jsonl";

fn main() -> ExitCode {
    let mut key = None;
    let mut path = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some(flag @ ("--public-key" | "--hmac-key")) => {
                let Some(file) = args.next() else {
                    eprintln!("{flag} needs a file\n{USAGE}");
                    return ExitCode::from(2);
                };
                let verifier = match CheckpointVerifier::from_file(&file) {
                    Ok(verifier) => verifier,
                    Err(e) => {
                        eprintln!("{flag}: {e}");
                        return ExitCode::from(2);
                    }
                };
                key = Some(verifier);
            }
            Some("-h" | "--help") => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
            _ if path.is_none() => path = Some(arg),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(path) = path else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let name = path.to_string_lossy().into_owned();
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    let reader = BufReader::new(file);
    let result = match &key {
        None => verify_chain(reader).map(|verified| {
            println!(
                "ok: {} lines, last seq {}, last hash {}",
                verified.lines,
                verified.last.seq(),
                verified.last.last_hash()
            );
            ExitCode::SUCCESS
        }),
        Some(key) => verify_signed(reader, key).map(|log| {
            println!(
                "ok: {} lines, {} checkpoints, last seq {}, last hash {}",
                log.chain.lines,
                log.checkpoints,
                log.chain.last.seq(),
                log.chain.last.last_hash()
            );
            match log.signed_through {
                _ if log.complete => {
                    println!("signed: every line, up to the final checkpoint");
                    ExitCode::SUCCESS
                }
                None => {
                    eprintln!("UNSIGNED: {name}: no checkpoint at all");
                    ExitCode::from(3)
                }
                Some(seq) => {
                    eprintln!(
                        "TAIL: {name}: signed up to seq {seq}; {} line(s) after the last \
                         checkpoint are not signed and no final checkpoint ends the log: lines \
                         may have been cut off the end (or the writer is still running, or \
                         crashed)",
                        log.unsigned_tail
                    );
                    ExitCode::from(3)
                }
            }
        }),
    };
    match result {
        Ok(code) => code,
        Err(e @ ChainError::Broken { .. }) => {
            eprintln!("TAMPERED: {name}: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::from(2)
        }
    }
}
