//! The `read_file` and `list_dir` tools, confined to one directory (the current one, for
//! `agentbus run`): a path that leaves it — by `..`, an absolute path or a symbolic
//! link — is refused.

use std::path::{Path, PathBuf};
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

/// A directory the file tools may not leave.
#[derive(Clone, Debug)]
pub struct Sandbox {
    root: Arc<PathBuf>,
}

impl Sandbox {
    /// A sandbox rooted at `root` (resolved to its canonical path: symbolic links and
    /// `..` resolved).
    pub fn new(root: impl AsRef<Path>) -> std::io::Result<Self> {
        Ok(Self {
            root: Arc::new(std::fs::canonicalize(root)?),
        })
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The canonical path `path` names inside the sandbox, or why it is refused.
    ///
    /// Relative paths are taken from the root. The path is resolved by the file system
    /// (every symbolic link and `..` followed) and must still be inside the root.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, ToolError> {
        let requested = if path.trim().is_empty() { "." } else { path };
        let joined = self.root.join(requested);
        let resolved = std::fs::canonicalize(&joined).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                "not_found"
            } else {
                "io"
            };
            ToolError::failed(kind, format!("cannot open `{requested}`: {e}"))
        })?;
        if !resolved.starts_with(self.root.as_path()) {
            return Err(ToolError::failed(
                "permission_denied",
                format!(
                    "`{requested}` is outside the directory this tool may read ({}); use a path inside it",
                    self.root.display()
                ),
            ));
        }
        Ok(resolved)
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

/// The arguments of `read_file`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReadFileArgs {
    /// The file, relative to the working directory.
    pub path: String,
    /// The most bytes to return (default 65536, at most 1048576).
    #[serde(default)]
    pub max_bytes: Option<u64>,
}

/// The arguments of `list_dir`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListDirArgs {
    /// The directory, relative to the working directory (default: the working directory).
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
    use tokio::io::AsyncReadExt;
    let resolved = sandbox.resolve(&args.path)?;
    let metadata = tokio::fs::metadata(&resolved)
        .await
        .map_err(|e| io_error(&args.path, e))?;
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
    let file = tokio::fs::File::open(&resolved)
        .await
        .map_err(|e| io_error(&args.path, e))?;
    let mut bytes = Vec::with_capacity(limit.min(metadata.len()) as usize);
    file.take(limit)
        .read_to_end(&mut bytes)
        .await
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
    let path = args.path.unwrap_or_else(|| ".".into());
    let resolved = sandbox.resolve(&path)?;
    let mut reader = tokio::fs::read_dir(&resolved)
        .await
        .map_err(|e| io_error(&path, e))?;
    let mut entries = Vec::new();
    let mut total = 0usize;
    while let Some(entry) = reader.next_entry().await.map_err(|e| io_error(&path, e))? {
        total += 1;
        if entries.len() >= MAX_ENTRIES {
            continue;
        }
        let file_type = entry.file_type().await.map_err(|e| io_error(&path, e))?;
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
            entry.metadata().await.ok().map(|m| m.len())
        } else {
            None
        };
        entries.push(serde_json::json!({
            "name": entry.file_name().to_string_lossy(),
            "type": kind,
            "size": size,
        }));
    }
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
