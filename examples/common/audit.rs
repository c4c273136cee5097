//! The audit flags of `examples/server.rs` and `examples/gateway.rs`: `--audit-log PATH` writes
//! one hash-chained JSON line per MCP message to PATH (batched by the sink's writer thread);
//! `--audit-key KEYFILE` (or the key itself in `MCP_EDGE_AUDIT_KEY`) adds signed checkpoints
//! (every 1000 events or 60 s, and at shutdown) that `audit_verify --public-key` checks;
//! without `--audit-log`, events go to tracing (target `mcp_edge::audit`): refusals and failures
//! at WARN, successes at DEBUG, so a server logging at INFO does not pay one log write per call
//! (`RUST_LOG=mcp_edge::audit=debug` shows them all).

use std::path::Path;

use mcp_edge::PeerAddr;
use mcp_edge::audit::checkpoint::CheckpointSigner;
use mcp_edge::audit::{AuditEvent, AuditLayer, AuditSink, JsonLinesSink, TracingSink};

pub const AUDIT_USAGE: &str =
    "  --audit-log PATH    append audit events to PATH (hash-chained JSON lines; check it with
                      `cargo run --example audit_verify -- PATH`); default: audit events
                      to tracing (refusals and failures at WARN, successes at DEBUG)
  --audit-key KEYFILE sign the --audit-log chain in checkpoints (every 1000 events or 60 s,
                      and at shutdown) with this key: an Ed25519 PKCS#8 PEM
                      (`openssl genpkey -algorithm ed25519 -out audit.key`), or
                      `ed25519:<hex seed>`, or `hmac-sha256:<hex key>`; env
                      MCP_EDGE_AUDIT_KEY holds the key itself. Verify with
                      `cargo run --example audit_verify -- --public-key audit.pub PATH`";

/// The environment variable that may hold the checkpoint key itself (not a path).
pub const AUDIT_KEY_ENV: &str = "MCP_EDGE_AUDIT_KEY";

/// The examples' audit sink: a JSON-lines file, or tracing.
#[derive(Clone)]
pub enum ExampleSink {
    File(JsonLinesSink),
    Tracing(TracingSink),
}

impl AuditSink for ExampleSink {
    fn emit(&self, event: AuditEvent) {
        match self {
            ExampleSink::File(file) => file.emit(event),
            ExampleSink::Tracing(tracing) => tracing.emit(event),
        }
    }
}

/// What the examples stack outermost, and the file to flush on the way out.
pub struct AuditSetup {
    /// Outermost: one event per MCP message, refusals included.
    pub layer: AuditLayer<ExampleSink>,
    file: Option<JsonLinesSink>,
    /// For the start-up banner.
    pub description: String,
}

impl AuditSetup {
    /// Opens `path` (appending) for hash-chained JSON lines, or audits to tracing when `None`.
    /// The peer address comes from the `PeerAddr` that `mcp_edge::serve::Server` inserts.
    /// Checkpoints are signed with the key in `key` (a file), else in `MCP_EDGE_AUDIT_KEY`.
    pub async fn open(path: Option<&Path>, key: Option<&Path>) -> std::io::Result<AuditSetup> {
        let invalid = |e: mcp_edge::audit::checkpoint::CheckpointKeyError| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("audit key: {e}"))
        };
        let signer = match (key, std::env::var(AUDIT_KEY_ENV)) {
            (Some(key), _) => Some(CheckpointSigner::from_file(key).map_err(invalid)?),
            (None, Ok(text)) => Some(CheckpointSigner::from_text(&text).map_err(invalid)?),
            (None, Err(_)) => None,
        };
        if signer.is_some() && path.is_none() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "an audit key signs the --audit-log file: give --audit-log PATH too",
            ));
        }
        let (sink, file, description) = match path {
            Some(path) => {
                let signed = match &signer {
                    Some(signer) => format!(
                        ", checkpoints signed with {} key {}",
                        signer.algorithm(),
                        signer.key_id()
                    ),
                    None => String::new(),
                };
                let file = JsonLinesSink::builder()
                    .hash_chain(true)
                    .checkpoints_opt(signer)
                    .open(path)
                    .await?;
                (
                    ExampleSink::File(file.clone()),
                    Some(file),
                    format!(
                        "hash-chained JSON lines appended to {}{signed}",
                        path.display()
                    ),
                )
            }
            None => (
                ExampleSink::Tracing(TracingSink::new().success_level(tracing::Level::DEBUG)),
                None,
                "to tracing (target mcp_edge::audit: refusals and failures at WARN, successes at \
                 DEBUG; --audit-log PATH for a full record in a file)"
                    .to_owned(),
            ),
        };
        let layer = AuditLayer::new(sink)
            .peer_addr(|ext: &http::Extensions| ext.get::<PeerAddr>().map(|PeerAddr(addr)| *addr));
        Ok(AuditSetup {
            layer,
            file,
            description,
        })
    }

    /// Writes and flushes the events still queued (call after the server has stopped).
    pub async fn shutdown(&self) {
        if let Some(file) = &self.file {
            file.shutdown().await;
        }
    }
}
