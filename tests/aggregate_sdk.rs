//! The official SDK clients against the aggregator over two real rmcp upstreams (`alpha`: the
//! demo tools; `beta`: `echo` and `add`, so `echo` is in both): the Python SDK
//! (`tests/aggregate_py/client.py`, both eras) and the TypeScript SDK
//! (`.ci/ts-sdk-discovery/aggregate.mjs`, 2025-11-25 with sessions) list both namespaces, call
//! each tool, and get the progress of their own call.
//!
//! Skipped with a printed reason when `python3` with the `mcp` package, or `node` with the
//! SDK installed in `.ci/ts-sdk-discovery` (`.ci/run` installs both), is missing; a failure
//! under `MCP_EDGE_REQUIRE_SERVERS=1`.
#![cfg(feature = "aggregator")]

#[path = "common/aggregate.rs"]
mod aggregate;
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use aggregate::Aggregated;
use common::skip_or_fail;
use serde_json::{Value, json};

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `name` in a directory of `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// `python3`, if it can import the `mcp` package.
fn python_sdk() -> Option<PathBuf> {
    let Some(python) = on_path("python3") else {
        skip_or_fail("`python3` not found on PATH (the Python SDK client needs it)");
        return None;
    };
    let imports = std::process::Command::new(&python)
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !imports {
        skip_or_fail("python3 cannot `import mcp` (pip install mcp; .ci/run does)");
        return None;
    }
    Some(python)
}

/// `node`, if the TypeScript SDK is installed beside the script.
fn ts_sdk() -> Option<PathBuf> {
    let dir = manifest_dir().join(".ci/ts-sdk-discovery");
    let Some(node) = on_path("node") else {
        skip_or_fail("`node` not found on PATH (the TypeScript SDK client needs it)");
        return None;
    };
    if !dir
        .join("node_modules/@modelcontextprotocol/sdk/package.json")
        .is_file()
    {
        skip_or_fail(&format!(
            "the TypeScript SDK is not installed in {} (npm install there; .ci/run does)",
            dir.display()
        ));
        return None;
    }
    Some(node)
}

/// The aggregator over both upstreams, with the interpreter and the path of the client script
/// (`script`, from the crate's root) to run against it; `None` when the SDK is missing.
fn start(interpreter: Option<PathBuf>, script: &str) -> Option<(PathBuf, String, Aggregated)> {
    let script = manifest_dir().join(script).to_str()?.to_owned();
    Some((interpreter?, script, Aggregated::start()))
}

/// Runs an SDK client script and reads the JSON line it prints.
async fn run(program: &Path, args: &[&str]) -> Value {
    let run = tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the SDK client finished within 60 s")
        .expect("the SDK client starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{program:?} {args:?} failed: {stdout}\n{stderr}"
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"))
}

/// What every SDK client must have seen through the aggregator.
fn assert_both_namespaces(seen: &Value) {
    assert_eq!(
        seen["tools"],
        json!([
            "alpha__echo",
            "alpha__slow_count",
            "alpha__whoami",
            "beta__add",
            "beta__echo"
        ]),
        "{seen}"
    );
    assert_eq!(
        seen["calls"],
        json!({
            "alpha__echo": "hi",
            "beta__echo": "beta: hi",
            "beta__add": "5",
            "alpha__slow_count": "counted to 3",
        }),
        "{seen}"
    );
    let progress: Vec<f64> = seen["progress"]
        .as_array()
        .unwrap_or_else(|| panic!("no progress: {seen}"))
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert_eq!(progress, [1.0, 2.0, 3.0], "{seen}");
}

#[tokio::test]
async fn the_python_sdk_client_uses_both_namespaces_in_both_eras() {
    let Some((python, script, agg)) = start(python_sdk(), "tests/aggregate_py/client.py") else {
        return;
    };
    for (mode, version) in [("legacy", "2025-11-25"), ("2026-07-28", "2026-07-28")] {
        let seen = run(&python, &[&script, &agg.gateway.url, mode]).await;
        assert_eq!(seen["protocolVersion"], version, "{seen}");
        assert_both_namespaces(&seen);
    }
    // The modern client stayed stateless; the legacy one's session ended with it.
    assert_eq!(agg.aggregator.open_sessions(), 0);
}

#[tokio::test]
async fn the_typescript_sdk_client_uses_both_namespaces() {
    let Some((node, script, agg)) = start(ts_sdk(), ".ci/ts-sdk-discovery/aggregate.mjs") else {
        return;
    };
    let seen = run(&node, &[&script, &agg.gateway.url]).await;
    assert_eq!(seen["protocolVersion"], "2025-11-25", "{seen}");
    assert_eq!(seen["errors"], json!([]), "{seen}");
    assert_both_namespaces(&seen);
}
