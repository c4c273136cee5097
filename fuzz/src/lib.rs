//! The invariants the fuzz targets check. The property tests in `tests/prop_*.rs` include the
//! same files (`#[path]`), so libFuzzer on nightly and proptest on stable check one definition
//! of each property. These files use only `mcp-edge`, `bytes`, `http`, `serde_json`, `base64`,
//! `hmac`, `sha2` and `tower`: never `arbitrary`, which only the targets use.

pub mod classify;
pub mod envelope;
pub mod forwarded;
pub mod headers;
pub mod jwt;
pub mod sse;
