//! The audit flag of `examples/server.rs` and `examples/gateway.rs`: `--audit-log PATH` writes
//! one hash-chained JSON line per MCP message to PATH (batched by the sink's writer thread);
//! without it, events go to tracing (target `mcp_edge::audit`): refusals and failures at WARN,
//! successes at DEBUG, so a server logging at INFO does not pay one log write per call
//! (`RUST_LOG=mcp_edge::audit=debug` shows them all).

use std::path::Path;

use mcp_edge::PeerAddr;
use mcp_edge::audit::{AuditEvent, AuditLayer, AuditSink, JsonLinesSink, TracingSink};

pub const AUDIT_USAGE: &str =
    "  --audit-log PATH    append audit events to PATH (hash-chained JSON lines; check it with
                      `cargo run --example audit_verify -- PATH`); default: audit events
                      to tracing (refusals and failures at WARN, successes at DEBUG)";

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
    pub async fn open(path: Option<&Path>) -> std::io::Result<AuditSetup> {
        let (sink, file, description) = match path {
            Some(path) => {
                let file = JsonLinesSink::builder().hash_chain(true).open(path).await?;
                (
                    ExampleSink::File(file.clone()),
                    Some(file),
                    format!("hash-chained JSON lines appended to {}", path.display()),
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
