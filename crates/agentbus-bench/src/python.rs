//! Running the Python peers the benchmarks compare with.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

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

/// Whether `python` imports `module`; the reason (the error's last line) when it does not.
pub fn can_import(python: &Path, module: &str) -> Result<(), String> {
    match Command::new(python)
        .args(["-c", &format!("import {module}")])
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            let reason = String::from_utf8_lossy(&out.stderr);
            Err(reason.lines().last().unwrap_or("import failed").to_owned())
        }
        Err(e) => Err(format!("{}: {e}", python.display())),
    }
}

/// Runs a peer script that prints one JSON object: that object with `"available": true`,
/// or `{"available": false, "reason": …}` when it fails or prints something else.
pub fn run_json(python: &Path, command: &mut Command) -> Value {
    match command.output() {
        Ok(out) if out.status.success() => match serde_json::from_slice::<Value>(&out.stdout) {
            Ok(mut v) => {
                v["available"] = json!(true);
                v
            }
            Err(e) => {
                json!({"available": false, "reason": format!("script output is not JSON: {e}")})
            }
        },
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            json!({"available": false, "reason": stderr.lines().last().unwrap_or("failed").trim()})
        }
        Err(e) => json!({"available": false, "reason": format!("{}: {e}", python.display())}),
    }
}
