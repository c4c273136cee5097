//! The crate's example binaries as real OS processes (`target/<profile>/examples/<name>`,
//! built by `cargo test`), on a port of their own, killed with SIGKILL on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::process::{accepts, free_port, skip_or_fail, wait_until};

/// `target/<profile>/examples/<name>`, next to the running test's `deps/` directory; `None`
/// (with the skip policy applied) when it is not built.
pub fn example_binary(name: &str) -> Option<PathBuf> {
    let found = std::env::current_exe().ok().and_then(|exe| {
        let path = exe.parent()?.parent()?.join("examples").join(name);
        path.is_file().then_some(path)
    });
    if found.is_none() {
        skip_or_fail(&format!(
            "target/*/examples/{name} not built (`cargo test` builds it; for a filtered run \
             `cargo build --all-features --example {name}` first)"
        ));
    }
    found
}

/// An example binary serving on `addr` (passed as `--bind ADDR` after `args`).
pub struct ExampleProcess {
    binary: PathBuf,
    args: Vec<String>,
    /// Where it listens.
    pub addr: SocketAddr,
    child: Option<Child>,
}

impl ExampleProcess {
    /// Starts `binary args... --bind 127.0.0.1:<free port>` and waits (up to 30 s) until it
    /// accepts connections.
    pub fn start(binary: &Path, args: &[&str]) -> ExampleProcess {
        let addr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut process = ExampleProcess {
            binary: binary.to_path_buf(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            addr,
            child: None,
        };
        process.restart();
        process
    }

    /// Its MCP endpoint, `http://ADDR/mcp`.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, and waits until the process is gone (its port then refuses connections).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same address and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new(&self.binary)
            .args(&self.args)
            .args(["--bind", &self.addr.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the example binary");
        self.child = Some(child);
        assert!(
            wait_until(Duration::from_secs(30), || accepts(self.addr)),
            "{} did not listen on {}",
            self.binary.display(),
            self.addr
        );
    }
}

impl Drop for ExampleProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
