//! Plumbing shared by the process launchers: finding binaries, the skip-or-fail policy, temp
//! directories, free ports, waiting for a port to answer.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// The env var that turns a missing server binary from a skip into a failure (CI sets it).
pub const REQUIRE_SERVERS_ENV: &str = "MCP_EDGE_REQUIRE_SERVERS";

/// Finds `name` on `PATH`, or in `/usr/sbin` / `/usr/bin` (Debian puts nginx in /usr/sbin,
/// which is not on a normal user's PATH). Applies the skip policy when it is absent: prints why
/// and returns `None`, or panics when `MCP_EDGE_REQUIRE_SERVERS=1`.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        skip_or_fail(&format!(
            "`{name}` not found on PATH or in /usr/sbin, /usr/bin (Debian package: {})",
            match name {
                "nginx" | "prometheus" => name,
                _ => "redis-server",
            }
        ));
    }
    found
}

/// Prints a skip reason, or panics with it when `MCP_EDGE_REQUIRE_SERVERS=1`.
pub fn skip_or_fail(reason: &str) {
    if std::env::var(REQUIRE_SERVERS_ENV).is_ok_and(|v| v == "1") {
        panic!("{reason}, and {REQUIRE_SERVERS_ENV}=1 requires it");
    }
    eprintln!("SKIPPED: {reason}; set {REQUIRE_SERVERS_ENV}=1 to make this a failure");
}

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/mcp-edge-{label}-{pid}-{n}-{nanos}`.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "mcp-edge-{label}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A 127.0.0.1 port that was free a moment ago (bind to port 0, read it, release it). Another
/// process can grab it in between: launchers retry with a new port when startup fails.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Polls `check` every 20 ms until it returns true or `timeout` passes.
pub(crate) fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether something accepts TCP connections on `addr`.
pub(crate) fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// The last `max` bytes of a log file, for failure messages.
pub(crate) fn tail(path: &Path, max: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

/// A child process killed (and reaped) on drop.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `target/<profile>/examples/<name>`, next to the running test's `deps/` directory (`cargo
/// test` builds the examples its features allow).
pub fn example_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("examples").join(name);
    path.is_file().then_some(path)
}
