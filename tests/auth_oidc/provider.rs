//! A real OpenID provider for the tests: `.ci/oidc-provider/provider.mjs` (npm's
//! `oidc-provider`, installed by `.ci/run`) on a free 127.0.0.1 port, stopped on drop, and
//! the official TypeScript SDK client beside it (`ts-client.mjs`).

#![allow(dead_code)] // each test file uses part of it

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::common::skip_or_fail;

/// `.ci/oidc-provider`.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/oidc-provider")
}

/// `node`, when it and the packages of `.ci/oidc-provider` are installed; otherwise the skip
/// policy (a printed reason, or a panic under `MCP_EDGE_REQUIRE_SERVERS=1`) and `None`.
pub fn node() -> Option<PathBuf> {
    let node = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join("node"))
        .find(|p| p.is_file());
    let Some(node) = node else {
        skip_or_fail("`node` not found on PATH (Debian package: nodejs)");
        return None;
    };
    for package in ["oidc-provider", "@modelcontextprotocol/sdk"] {
        if !dir()
            .join("node_modules")
            .join(package)
            .join("package.json")
            .is_file()
        {
            skip_or_fail(&format!(
                "npm package `{package}` not installed in .ci/oidc-provider \
                 (run `npm install` there, as .ci/run does)"
            ));
            return None;
        }
    }
    Some(node)
}

/// A running provider.
pub struct OidcProvider {
    /// Its issuer identifier, `http://127.0.0.1:PORT/oidc` by default.
    pub issuer: String,
    child: Child,
}

impl OidcProvider {
    /// Starts `provider.mjs` with `config` (see the script for its fields). `None` when node
    /// or the package is missing (after the skip policy).
    pub async fn start(config: serde_json::Value) -> Option<OidcProvider> {
        let node = node()?;
        let mut child = Command::new(node)
            .arg(dir().join("provider.mjs"))
            .arg(config.to_string())
            .current_dir(dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node provider.mjs");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("oidc-provider did not start within 30 s")
            .expect("read provider stdout")
            .expect("oidc-provider exited before serving");
        let ready: serde_json::Value = serde_json::from_str(&line).expect("ready line");
        let issuer = ready["issuer"].as_str().expect("issuer").to_owned();
        Some(OidcProvider { issuer, child })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        let after = self.issuer.find("://").unwrap() + 3;
        let end = self.issuer[after..]
            .find('/')
            .map_or(self.issuer.len(), |i| after + i);
        self.issuer[..end].to_owned()
    }

    /// An access token by client credentials (`client_secret_basic`) for `resource`, or the
    /// provider's error answer.
    pub async fn token(
        &self,
        client: (&str, &str),
        resource: &str,
        scope: &str,
    ) -> Result<String, String> {
        let response = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(client.0, Some(client.1))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&resource={}&scope={}",
                form_encode(resource),
                form_encode(scope)
            ))
            .send()
            .await
            .expect("token request");
        let status = response.status();
        let body: serde_json::Value = response.json().await.expect("token json");
        match body["access_token"].as_str() {
            Some(token) if status.is_success() => Ok(token.to_owned()),
            _ => Err(format!("{status}: {body}")),
        }
    }
}

/// `application/x-www-form-urlencoded` for one value.
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        // Our own child, by its handle (never by name).
        let _ = self.child.start_kill();
    }
}
