//! [`LocalServer`]: a `nats-server -js` child process on a free port with its own store
//! directory, for tests, benchmarks and trying things out. It can be killed (SIGKILL) and
//! restarted on the same port and store, as a crash would.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::NatsError;

/// Where `nats-server` is looked for: `$NATS_SERVER`, then `PATH`, then `/usr/sbin`
/// (Debian's package installs it there).
pub fn server_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
}

/// A free TCP port on 127.0.0.1 (free when asked; another process could take it after).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A `nats-server` child process. Killed when dropped.
pub struct LocalServer {
    binary: PathBuf,
    port: u16,
    store_dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

impl std::fmt::Debug for LocalServer {
    /// The arguments are left out: they may hold a credential (`--auth TOKEN`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalServer")
            .field("binary", &self.binary)
            .field("port", &self.port)
            .field("store_dir", &self.store_dir)
            .finish_non_exhaustive()
    }
}

impl LocalServer {
    /// Starts `nats-server -js` on a free port with its store under `store_dir`, and waits
    /// until it accepts connections.
    pub fn start(store_dir: &Path) -> Result<Self, NatsError> {
        Self::start_with(store_dir, &["-js"])
    }

    /// Starts `nats-server` with `args` (e.g. without `-js`, or with `--auth TOKEN`).
    pub fn start_with(store_dir: &Path, args: &[&str]) -> Result<Self, NatsError> {
        let binary = server_binary().ok_or_else(|| {
            NatsError::Config(
                "nats-server not found (set NATS_SERVER, or `apt-get install nats-server`)".into(),
            )
        })?;
        let port = free_port().map_err(|e| NatsError::Config(format!("no free port: {e}")))?;
        let mut server = Self {
            binary,
            port,
            store_dir: store_dir.to_owned(),
            extra: args.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        server.restart()?;
        Ok(server)
    }

    /// The client URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server with SIGKILL (no clean shutdown) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again (same port, same store), waiting until it answers.
    pub fn restart(&mut self) -> Result<(), NatsError> {
        self.kill();
        let child = Command::new(&self.binary)
            .args(&self.extra)
            .arg("-a")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(&self.store_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| NatsError::Config(format!("starting {}: {e}", self.binary.display())))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(NatsError::Config(format!(
            "nats-server did not answer on port {} within 10 s",
            self.port
        )))
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.kill();
    }
}
