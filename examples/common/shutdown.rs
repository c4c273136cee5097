//! Ctrl-C for `examples/server.rs` and `examples/gateway.rs`: drain SSE streams, then stop.

use std::time::Duration;

use mcp_edge::sse::Drain;
use tokio_util::sync::CancellationToken;

/// Resolves on Ctrl-C (give it to `axum::serve(..).with_graceful_shutdown`). Then ends SSE
/// streams at an event boundary (`drain`, waiting up to `grace` for them), cancels `shutdown`
/// (which stops rmcp's sessions and anything else listening on it), and exits on a second
/// Ctrl-C or after 10 s if connections still hang on.
pub async fn on_ctrl_c(drain: Drain, grace: Duration, shutdown: CancellationToken) {
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("shutting down (Ctrl-C again to force)");
    drain.start();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(grace, drain.wait_idle()).await;
        shutdown.cancel();
    });
    tokio::spawn(async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
        std::process::exit(130);
    });
}
