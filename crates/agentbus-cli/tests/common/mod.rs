//! Helpers shared by the CLI test files that run the binary in a scratch directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh directory under the system temp dir, named after the test file's `prefix`.
pub fn scratch(prefix: &str, name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "agentbus-{prefix}-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `agentbus` run in `dir` with `home` as `$AGENTBUS_HOME` and none of the caller's
/// agentbus or provider settings (errors-only log, no colour).
pub fn isolated(dir: &Path, home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agentbus"));
    for (variable, _) in std::env::vars_os() {
        let name = variable.to_string_lossy();
        if name.starts_with("AGENTBUS_") || name.ends_with("_API_KEY") {
            command.env_remove(&variable);
        }
    }
    command
        .current_dir(dir)
        .env("AGENTBUS_HOME", home)
        .env("RUST_LOG", "error")
        .env("NO_COLOR", "1");
    command
}
