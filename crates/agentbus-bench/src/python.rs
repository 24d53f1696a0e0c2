//! Running the Python peers the benchmarks compare with.

use std::path::Path;
use std::process::Command;

/// `python` running `script` when given, else the copy of the peer script built into this
/// binary (`python -c`), so the benchmark runs from any directory.
pub fn peer_command(python: &Path, script: Option<&Path>, built_in: &str) -> Command {
    let mut command = Command::new(python);
    match script {
        Some(script) => command.arg(script),
        None => command.args(["-c", built_in]),
    };
    command
}
