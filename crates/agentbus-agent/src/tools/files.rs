//! The `read_file` and `list_dir` tools, confined to one directory (the current one, for
//! `agentbus run`).
//!
//! What they refuse:
//! - anything outside the directory: `..`, an absolute path, or a symbolic link that
//!   leads out (links that stay inside are followed);
//! - a directory of `/` (the whole file system, `/proc` included) or one inside
//!   `/proc`, `/sys` or `/dev`: [`Sandbox::new`] fails;
//! - secrets that commonly sit in a project directory ([`is_sensitive`]): `.env` and
//!   `.env.*`; `.git/config` and `.git-credentials`; `.netrc`/`_netrc`, `.npmrc`,
//!   `.pypirc`, `.pgpass`; the directories `.ssh`, `.gnupg`, `.aws`, `.azure`, `.kube`,
//!   `.docker`; private keys and certificates (`*.pem`, `*.key`, `*.p12`, `*.pfx`,
//!   `*.jks`, `*.keystore`, `id_rsa*`, `id_dsa*`, `id_ecdsa*`, `id_ed25519*`); agentbus's
//!   own `agentbus.toml`, `trusted-configs.json` and default store `agentbus.db` (with
//!   its `-wal`, `-shm` and `-journal` files) — the store holds earlier sessions;
//! - the files named with [`Sandbox::deny_file`] (`agentbus run` adds its `--store`).
//!
//! A name is refused both as asked for and as the file it really is (a link named
//! `notes.txt` that points at `.env` is refused). `list_dir` still lists such names; it
//! refuses to list the inside of a refused directory.
//!
//! **No check-then-use race.** The path is checked, then opened (non-blocking, so a FIFO
//! cannot hang the tool), and the opened handle's own path (`/proc/self/fd`) is checked
//! again before a byte is read: what is read is exactly the file that passed, even if the
//! directory changes in between. Without `/proc` the tools refuse to read at all.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::tool::{FunctionTool, ToolError};

/// The most a `read_file` call returns, in bytes.
pub const MAX_READ_BYTES: u64 = 1 << 20;
/// What `read_file` returns when the call names no limit, in bytes.
pub const DEFAULT_READ_BYTES: u64 = 64 * 1024;
/// The most entries a `list_dir` call returns.
pub const MAX_ENTRIES: usize = 1_000;

/// File and directory names that are refused wherever they are.
const SENSITIVE_NAMES: &[&str] = &[
    ".env",
    ".netrc",
    "_netrc",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".pgpass",
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".kube",
    ".docker",
    "agentbus.toml",
    "trusted-configs.json",
    "agentbus.db",
    "agentbus.db-wal",
    "agentbus.db-shm",
    "agentbus.db-journal",
];
/// Name prefixes that are refused (private SSH keys and their `.pub` siblings, `.env.*`).
const SENSITIVE_PREFIXES: &[&str] = &["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".env."];
/// Extensions that are refused (keys and certificate stores).
const SENSITIVE_EXTENSIONS: &[&str] = &["pem", "key", "p12", "pfx", "jks", "keystore"];
/// Directories a sandbox may not be rooted in (kernel and device interfaces).
const FORBIDDEN_ROOTS: &[&str] = &["/proc", "/sys", "/dev"];

/// Whether the path `relative` (inside a sandbox) names a known-sensitive file or
/// directory (see the module documentation).
pub fn is_sensitive(relative: &Path) -> bool {
    let names: Vec<&OsStr> = relative
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    names.iter().enumerate().any(|(index, name)| {
        let name = name.to_string_lossy();
        let lower = name.to_ascii_lowercase();
        let git_config =
            lower == "config" && index > 0 && names[index - 1].eq_ignore_ascii_case(".git");
        git_config
            || SENSITIVE_NAMES.contains(&lower.as_str())
            || SENSITIVE_PREFIXES
                .iter()
                .any(|prefix| lower.starts_with(prefix))
            || Path::new(&lower)
                .extension()
                .and_then(OsStr::to_str)
                .is_some_and(|extension| SENSITIVE_EXTENSIONS.contains(&extension))
    })
}

/// A directory the file tools may not leave.
#[derive(Clone, Debug)]
pub struct Sandbox {
    root: Arc<PathBuf>,
    /// Extra files the tools may not read (canonical directory + file name).
    denied: Arc<Vec<PathBuf>>,
}

impl Sandbox {
    /// A sandbox rooted at `root` (resolved to its canonical path: symbolic links and
    /// `..` resolved). Refused: `/`, and anything inside `/proc`, `/sys` or `/dev`.
    pub fn new(root: impl AsRef<Path>) -> std::io::Result<Self> {
        let root = std::fs::canonicalize(root)?;
        let forbidden = root.parent().is_none()
            || FORBIDDEN_ROOTS
                .iter()
                .any(|forbidden| root.starts_with(forbidden));
        if forbidden {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "the file tools will not serve {} (the whole file system or a kernel \
                     interface); run from a project directory",
                    root.display()
                ),
            ));
        }
        Ok(Self {
            root: Arc::new(root),
            denied: Arc::default(),
        })
    }

    /// Refuses the file `path` too (relative paths are taken from the root); it need not
    /// exist yet. For a store file, deny its `-wal`, `-shm` and `-journal` files as well.
    pub fn deny_file(mut self, path: impl AsRef<Path>) -> Self {
        let path = self.root.join(path.as_ref());
        // Canonical directory + name, comparable with the real paths of opened files.
        let canonical = match (path.parent(), path.file_name()) {
            (Some(dir), Some(name)) => std::fs::canonicalize(dir)
                .map(|dir| dir.join(name))
                .unwrap_or(path.clone()),
            _ => path,
        };
        Arc::make_mut(&mut self.denied).push(canonical);
        self
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Why `resolved` (a canonical path) may not be opened, if it may not.
    fn refusal(&self, requested: &str, resolved: &Path) -> Option<ToolError> {
        let Ok(relative) = resolved.strip_prefix(self.root.as_path()) else {
            return Some(ToolError::failed(
                "permission_denied",
                format!(
                    "`{requested}` is outside the directory this tool may read ({}); use a path inside it",
                    self.root.display()
                ),
            ));
        };
        if is_sensitive(relative) || self.denied.iter().any(|denied| denied == resolved) {
            return Some(sensitive(requested));
        }
        None
    }

    /// The canonical path `path` names inside the sandbox, or why it is refused.
    ///
    /// Relative paths are taken from the root. The path is resolved by the file system
    /// (every symbolic link and `..` followed) and must still be inside the root and not
    /// a sensitive file. Use [`Sandbox::open`] to read: it checks the opened handle too.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, ToolError> {
        let requested = if path.trim().is_empty() { "." } else { path };
        if is_sensitive(Path::new(requested)) {
            return Err(sensitive(requested));
        }
        let joined = self.root.join(requested);
        if self.denied.contains(&lexically_normal(&joined)) {
            return Err(sensitive(requested));
        }
        let resolved = std::fs::canonicalize(&joined).map_err(|e| open_error(requested, e))?;
        match self.refusal(requested, &resolved) {
            Some(refusal) => Err(refusal),
            None => Ok(resolved),
        }
    }

    /// Opens `path` inside the sandbox (a directory when `directory`), returning the
    /// handle and its canonical path. The handle's own path is checked after opening, so
    /// a path swapped for a link between the check and the open is refused.
    pub fn open(&self, path: &str, directory: bool) -> Result<(File, PathBuf), ToolError> {
        let requested = if path.trim().is_empty() { "." } else { path };
        let resolved = self.resolve(requested)?;
        let file = open_nonblocking(&resolved, directory).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOTDIR) {
                ToolError::failed("not_a_dir", format!("`{requested}` is not a directory"))
            } else {
                open_error(requested, e)
            }
        })?;
        let opened = handle_path(&file).map_err(|e| {
            ToolError::failed(
                "io",
                format!("`{requested}`: cannot verify the opened file ({e})"),
            )
        })?;
        if let Some(refusal) = self.refusal(requested, &opened) {
            return Err(refusal);
        }
        Ok((file, opened))
    }

    /// The path of `resolved` relative to the root, for display.
    fn relative(&self, resolved: &Path) -> String {
        match resolved.strip_prefix(self.root.as_path()) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
            Ok(rel) => rel.display().to_string(),
            Err(_) => resolved.display().to_string(),
        }
    }
}

/// `path` with `.` and `..` removed by their meaning in text (no file system access).
fn lexically_normal(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

fn sensitive(requested: &str) -> ToolError {
    ToolError::failed(
        "permission_denied",
        format!(
            "`{requested}` may hold secrets (credentials, keys, agentbus's config or event \
             store), so this tool does not read it"
        ),
    )
}

fn open_error(requested: &str, e: std::io::Error) -> ToolError {
    let kind = if e.kind() == std::io::ErrorKind::NotFound {
        "not_found"
    } else {
        "io"
    };
    ToolError::failed(kind, format!("cannot open `{requested}`: {e}"))
}

/// Opens for reading without blocking on a FIFO and without taking a controlling
/// terminal; with `O_DIRECTORY` for a directory.
fn open_nonblocking(path: &Path, directory: bool) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    if directory {
        flags |= libc::O_DIRECTORY;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
}

/// The path of the file `file` is open on, as the kernel knows it.
fn handle_path(file: &File) -> std::io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// The arguments of `read_file`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReadFileArgs {
    /// The file, relative to the working directory.
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9._-][A-Za-z0-9._/ -]*$"),
        length(max = 1000)
    )]
    pub path: String,
    /// The most bytes to return (default 65536, at most 1048576).
    #[serde(default)]
    pub max_bytes: Option<u64>,
}

/// The arguments of `list_dir`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListDirArgs {
    /// The directory, relative to the working directory (default: the working directory).
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9._-][A-Za-z0-9._/ -]*$"),
        length(max = 1000)
    )]
    #[serde(default)]
    pub path: Option<String>,
}

fn io_error(path: &str, e: std::io::Error) -> ToolError {
    ToolError::failed("io", format!("`{path}`: {e}"))
}

/// Reads (the start of) a file inside the sandbox.
pub async fn read_file_in(
    sandbox: &Sandbox,
    args: ReadFileArgs,
) -> Result<serde_json::Value, ToolError> {
    let sandbox = sandbox.clone();
    tokio::task::spawn_blocking(move || read_file_blocking(&sandbox, &args))
        .await
        .map_err(|e| ToolError::failed("io", format!("the read was interrupted: {e}")))?
}

fn read_file_blocking(
    sandbox: &Sandbox,
    args: &ReadFileArgs,
) -> Result<serde_json::Value, ToolError> {
    use std::io::Read;
    let (file, resolved) = sandbox.open(&args.path, false)?;
    let metadata = file.metadata().map_err(|e| io_error(&args.path, e))?;
    if !metadata.is_file() {
        return Err(ToolError::failed(
            "not_a_file",
            format!("`{}` is not a file", args.path),
        ));
    }
    let limit = args
        .max_bytes
        .unwrap_or(DEFAULT_READ_BYTES)
        .clamp(1, MAX_READ_BYTES);
    let mut bytes = Vec::with_capacity(limit.min(metadata.len()) as usize);
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(&args.path, e))?;
    let truncated = metadata.len() > bytes.len() as u64;
    let binary = bytes.contains(&0);
    Ok(serde_json::json!({
        "path": sandbox.relative(&resolved),
        "size": metadata.len(),
        "truncated": truncated,
        "binary": binary,
        "content": String::from_utf8_lossy(&bytes),
    }))
}

/// Lists a directory inside the sandbox, sorted by name.
pub async fn list_dir_in(
    sandbox: &Sandbox,
    args: ListDirArgs,
) -> Result<serde_json::Value, ToolError> {
    let sandbox = sandbox.clone();
    tokio::task::spawn_blocking(move || list_dir_blocking(&sandbox, args))
        .await
        .map_err(|e| ToolError::failed("io", format!("the listing was interrupted: {e}")))?
}

fn list_dir_blocking(sandbox: &Sandbox, args: ListDirArgs) -> Result<serde_json::Value, ToolError> {
    use std::os::fd::AsRawFd;
    let path = args.path.unwrap_or_else(|| ".".into());
    let (directory, resolved) = sandbox.open(&path, true)?;
    // Read the directory the handle is open on, not whatever the path names now.
    let reader = std::fs::read_dir(format!("/proc/self/fd/{}", directory.as_raw_fd()))
        .map_err(|e| io_error(&path, e))?;
    let mut entries = Vec::new();
    let mut total = 0usize;
    for entry in reader {
        let entry = entry.map_err(|e| io_error(&path, e))?;
        total += 1;
        if entries.len() >= MAX_ENTRIES {
            continue;
        }
        let file_type = entry.file_type().map_err(|e| io_error(&path, e))?;
        let kind = if file_type.is_symlink() {
            "symlink"
        } else if file_type.is_dir() {
            "dir"
        } else if file_type.is_file() {
            "file"
        } else {
            "other"
        };
        let size = if file_type.is_file() {
            entry.metadata().ok().map(|m| m.len())
        } else {
            None
        };
        entries.push(serde_json::json!({
            "name": entry.file_name().to_string_lossy(),
            "type": kind,
            "size": size,
        }));
    }
    drop(directory);
    entries.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(serde_json::json!({
        "path": sandbox.relative(&resolved),
        "entries": entries,
        "total": total,
        "truncated": total > entries.len(),
    }))
}

/// The `read_file` tool, confined to `sandbox`.
pub fn read_file(sandbox: Sandbox) -> FunctionTool {
    FunctionTool::new(
        "read_file",
        "Reads a text file inside the working directory (paths outside it are refused).",
        move |args: ReadFileArgs| {
            let sandbox = sandbox.clone();
            async move { read_file_in(&sandbox, args).await }
        },
    )
}

/// The `list_dir` tool, confined to `sandbox`.
pub fn list_dir(sandbox: Sandbox) -> FunctionTool {
    FunctionTool::new(
        "list_dir",
        "Lists the entries of a directory inside the working directory (paths outside it are refused).",
        move |args: ListDirArgs| {
            let sandbox = sandbox.clone();
            async move { list_dir_in(&sandbox, args).await }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Sandbox) {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("hello.txt"), "hello world").unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub").join("inner.txt"), "inner").unwrap();
        std::fs::write(outer.path().join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(outer.path().join("secret.txt"), root.join("escape")).unwrap();
        std::os::unix::fs::symlink(root.join("hello.txt"), root.join("alias")).unwrap();
        let sandbox = Sandbox::new(&root).unwrap();
        (outer, sandbox)
    }

    fn read(path: &str) -> ReadFileArgs {
        ReadFileArgs {
            path: path.into(),
            max_bytes: None,
        }
    }

    #[tokio::test]
    async fn reads_inside_and_refuses_escapes() {
        let (outer, sandbox) = setup();
        let ok = read_file_in(&sandbox, read("hello.txt")).await.unwrap();
        assert_eq!(ok["content"], "hello world");
        let inner = read_file_in(&sandbox, read("sub/../sub/inner.txt"))
            .await
            .unwrap();
        assert_eq!(inner["content"], "inner");
        let alias = read_file_in(&sandbox, read("alias")).await.unwrap();
        assert_eq!(alias["content"], "hello world");
        for escaping in [
            "../secret.txt".to_owned(),
            "sub/../../secret.txt".to_owned(),
            "escape".to_owned(),
            outer.path().join("secret.txt").display().to_string(),
            "/etc/passwd".to_owned(),
        ] {
            let error = read_file_in(&sandbox, read(&escaping)).await.unwrap_err();
            assert_eq!(error.kind(), "permission_denied", "{escaping}: {error}");
        }
        let missing = read_file_in(&sandbox, read("nope.txt")).await.unwrap_err();
        assert_eq!(missing.kind(), "not_found");
    }

    #[test]
    fn the_sensitive_names() {
        for path in [
            ".env",
            ".env.production",
            "app/.ENV",
            ".git/config",
            "sub/.git/config",
            ".git-credentials",
            ".netrc",
            ".ssh/known_hosts",
            "deploy/server.pem",
            "tls/site.key",
            "id_rsa",
            "keys/id_ed25519.pub",
            ".aws/credentials",
            ".docker/config.json",
            "agentbus.db",
            "agentbus.db-wal",
            "agentbus.db-shm",
            "agentbus.toml",
            "home/trusted-configs.json",
        ] {
            assert!(is_sensitive(Path::new(path)), "{path}");
        }
        for path in [
            "README.md",
            "src/config.rs",
            ".gitignore",
            ".git/HEAD",
            "config",
            "environment.txt",
            "keyboard.txt",
            "docs/pem-format.md",
        ] {
            assert!(!is_sensitive(Path::new(path)), "{path}");
        }
    }

    #[tokio::test]
    async fn refuses_secrets_denied_files_and_links_to_them() {
        let (_outer, sandbox) = setup();
        let root = sandbox.root().to_owned();
        std::fs::write(root.join(".env"), "KEY=secret").unwrap();
        std::fs::write(root.join("events.db"), "store").unwrap();
        std::os::unix::fs::symlink(".env", root.join("notes.txt")).unwrap();
        std::os::unix::fs::symlink("events.db", root.join("log.txt")).unwrap();
        let sandbox = sandbox.deny_file("events.db").deny_file("events.db-wal");
        for path in [
            ".env",
            "notes.txt",
            "events.db",
            "sub/../events.db",
            "log.txt",
            "events.db-wal",
        ] {
            let error = read_file_in(&sandbox, read(path)).await.unwrap_err();
            assert_eq!(error.kind(), "permission_denied", "{path}: {error}");
            assert!(
                error.to_string().contains("may hold secrets"),
                "{path}: {error}"
            );
        }
        std::fs::create_dir(root.join(".ssh")).unwrap();
        let error = list_dir_in(
            &sandbox,
            ListDirArgs {
                path: Some(".ssh".into()),
            },
        )
        .await
        .unwrap_err();
        assert_eq!(error.kind(), "permission_denied");
        // Still readable: everything else.
        let ok = read_file_in(&sandbox, read("hello.txt")).await.unwrap();
        assert_eq!(ok["content"], "hello world");
    }

    #[test]
    fn refuses_the_whole_file_system_and_kernel_interfaces() {
        for root in ["/", "/proc", "/proc/self", "/sys", "/dev"] {
            let error = Sandbox::new(root).unwrap_err();
            assert_eq!(error.kind(), std::io::ErrorKind::PermissionDenied, "{root}");
        }
        assert!(Sandbox::new(std::env::temp_dir()).is_ok());
    }

    #[tokio::test]
    async fn a_fifo_is_refused_without_hanging() {
        let (_outer, sandbox) = setup();
        let fifo = sandbox.root().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|status| status.success()) {
            return; // no mkfifo here
        }
        let error = read_file_in(&sandbox, read("pipe")).await.unwrap_err();
        assert_eq!(error.kind(), "not_a_file");
    }

    /// A directory swapped for a link to the outside while the tool reads through it: the
    /// content outside is never returned (the opened handle is checked, not the path).
    #[test]
    fn a_directory_swapped_for_a_link_mid_read_never_leaks() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let (outer, sandbox) = setup();
        let root = sandbox.root().to_owned();
        let secret_dir = outer.path().join("secret_dir");
        std::fs::create_dir(&secret_dir).unwrap();
        std::fs::write(secret_dir.join("a.txt"), "TOP SECRET").unwrap();
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::write(root.join("d").join("a.txt"), "public").unwrap();
        std::os::unix::fs::symlink(&secret_dir, root.join("link")).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (root, stop) = (root.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // d (a directory) ↔ link (to the outside), by rename.
                    let _ = std::fs::rename(root.join("d"), root.join("parked"));
                    let _ = std::fs::rename(root.join("link"), root.join("d"));
                    let _ = std::fs::rename(root.join("d"), root.join("link"));
                    let _ = std::fs::rename(root.join("parked"), root.join("d"));
                }
            })
        };
        let (mut public, mut refused) = (0, 0);
        for _ in 0..3_000 {
            match read_file_blocking(&sandbox, &read("d/a.txt")) {
                Ok(value) => {
                    assert_eq!(value["content"], "public", "read outside the sandbox");
                    public += 1;
                }
                Err(_) => refused += 1,
            }
        }
        stop.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        assert!(public > 0, "{public} read, {refused} refused");
    }

    #[tokio::test]
    async fn truncates_at_the_limit() {
        let (_outer, sandbox) = setup();
        let args = ReadFileArgs {
            path: "hello.txt".into(),
            max_bytes: Some(5),
        };
        let out = read_file_in(&sandbox, args).await.unwrap();
        assert_eq!(out["content"], "hello");
        assert_eq!(out["truncated"], true);
    }

    #[tokio::test]
    async fn lists_sorted_and_refuses_escapes() {
        let (_outer, sandbox) = setup();
        let out = list_dir_in(&sandbox, ListDirArgs { path: None })
            .await
            .unwrap();
        let names: Vec<&str> = out["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["alias", "escape", "hello.txt", "sub"]);
        let error = list_dir_in(
            &sandbox,
            ListDirArgs {
                path: Some("..".into()),
            },
        )
        .await
        .unwrap_err();
        assert_eq!(error.kind(), "permission_denied");
    }
}
