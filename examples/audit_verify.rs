//! Verifies the hash chain of a JSON-lines audit log written by `JsonLinesSink` with
//! `hash_chain(true)`.
//!
//! ```text
//! cargo run --example audit_verify -- audit.jsonl
//! ```
//!
//! Prints the number of lines and the last hash, and exits 0 when the chain holds; names the
//! first broken line and exits 1 when a line was edited, deleted, inserted or moved; exits 2
//! when the file cannot be read. Keep the last hash somewhere else: comparing it later also
//! shows lines cut off the end.

use std::fs::File;
use std::io::BufReader;
use std::process::ExitCode;

use mcp_edge::audit::chain::{ChainError, verify_chain};

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: audit_verify AUDIT_LOG.jsonl");
        return ExitCode::from(2);
    };
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("{}: {e}", path.to_string_lossy());
            return ExitCode::from(2);
        }
    };
    match verify_chain(BufReader::new(file)) {
        Ok(verified) => {
            println!(
                "ok: {} lines, last seq {}, last hash {}",
                verified.lines,
                verified.last.seq(),
                verified.last.last_hash()
            );
            ExitCode::SUCCESS
        }
        Err(e @ ChainError::Broken { .. }) => {
            eprintln!("TAMPERED: {}: {e}", path.to_string_lossy());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("{}: {e}", path.to_string_lossy());
            ExitCode::from(2)
        }
    }
}
