//! A real `redis-server` on a free 127.0.0.1 port, killed on drop.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use super::process::{TempDir, accepts, find_binary, free_port, tail, wait_until};

/// A `redis-server` process with no persistence, its files in a temp dir.
///
/// ```ignore
/// let Some(redis) = Redis::start() else { return }; // skipped: printed why
/// let url = redis.url(); // redis://127.0.0.1:PORT
/// redis.stop();    // the port stops answering (a Redis outage)
/// redis.restart(); // same port again, empty data set
/// ```
#[derive(Debug)]
pub struct Redis {
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
    dir: TempDir,
}

impl Redis {
    /// Starts `redis-server`; `None` (after printing why) when the binary is absent, a panic
    /// instead when `MCP_EDGE_REQUIRE_SERVERS=1`. Panics if it is present but fails to start.
    pub fn start() -> Option<Redis> {
        let binary = find_binary("redis-server")?;
        let mut last_error = String::new();
        for _ in 0..5 {
            let mut redis = Redis {
                binary: binary.clone(),
                port: free_port(),
                child: None,
                dir: TempDir::new("redis"),
            };
            match redis.spawn() {
                Ok(()) => return Some(redis),
                Err(e) => last_error = e,
            }
        }
        panic!("redis-server failed to start 5 times; last error: {last_error}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = self.dir.path().join("redis.log");
        let mut child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--protected-mode", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.binary.display()))?;
        let addr = self.addr();
        let ready = wait_until(Duration::from_secs(10), || {
            if let Ok(Some(_)) = child.try_wait() {
                return true; // exited: stop waiting
            }
            ping(addr)
        });
        if ready && matches!(child.try_wait(), Ok(None)) {
            self.child = Some(child);
            return Ok(());
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!(
            "redis-server on port {} did not answer PING: {}",
            self.port,
            tail(&log, 2000)
        ))
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Whether the process is running (not stopped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server (SIGKILL, like a crash) and waits until the port no longer answers.
    /// The `Redis` keeps its port for [`Redis::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let addr = self.addr();
        wait_until(Duration::from_secs(5), || !accepts(addr));
    }

    /// Stops the server if it runs, then starts a new one on the same port (no data survives).
    /// Panics if it cannot start again.
    pub fn restart(&mut self) {
        self.stop();
        let mut result = Err(String::new());
        // The port was ours a moment ago; retry briefly in case the kernel lingers.
        for _ in 0..20 {
            result = self.spawn();
            if result.is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis-server restart failed: {}", result.unwrap_err());
    }

    /// Sends one command in RESP (e.g. `["SET", "k", "v"]`) on a fresh connection and returns
    /// the raw reply (e.g. `"+OK\r\n"`). For tests that inspect what the library stored.
    pub fn command(&self, args: &[&str]) -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes())?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        // One read is enough for the small replies tests look at; keep reading while the
        // reply is visibly incomplete (no trailing CRLF).
        loop {
            let n = stream.read(&mut buf)?;
            reply.extend_from_slice(&buf[..n]);
            if n == 0 || reply.ends_with(b"\r\n") {
                break;
            }
        }
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

impl Redis {
    /// Freezes the server (SIGSTOP): connections stay open but nothing answers, the way a
    /// Redis stuck in a long fork or a paused VM looks to its clients. [`Redis::thaw`] resumes
    /// it with its data intact.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Resumes a frozen server (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("redis-server is running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} failed");
    }
}
