//! `agentbus bench …`: runs the separate `agentbus-bench` binary with the same arguments.
//!
//! The benchmarks, their baselines and their peers live in the unpublished
//! `agentbus-bench` crate, so this binary carries none of their code. Like `git`'s
//! external commands, the binary is looked for beside this one first (where
//! `cargo build --workspace` and `cargo install` put it), then on `PATH`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::Context;

/// The benchmark binary's name.
const BENCH_BINARY: &str = "agentbus-bench";

/// Arguments of `agentbus bench`: everything after `bench`, passed on unchanged.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The benchmark and its options (see `agentbus bench --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

/// Where `agentbus-bench` is: beside this executable, else on `PATH`.
fn find_bench_binary() -> Option<PathBuf> {
    let name = format!("{BENCH_BINARY}{}", std::env::consts::EXE_SUFFIX);
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)));
    if let Some(path) = beside.filter(|p| p.is_file()) {
        return Some(path);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(&name))
        .find(|p| p.is_file())
}

/// Runs `agentbus-bench` with `args` and returns its exit status.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Some(binary) = find_bench_binary() else {
        anyhow::bail!(
            "the benchmarks are a separate binary, {BENCH_BINARY}, not found beside {} nor on \
             PATH: build it with `cargo build --release --workspace` (or `cargo install --path \
             crates/agentbus-bench`), or run `cargo run --release -p agentbus-bench -- …`",
            std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "agentbus".into())
        );
    };
    let status = Command::new(&binary)
        .args(&args.args)
        .status()
        .with_context(|| format!("running {}", binary.display()))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        // Ended by a signal.
        None => ExitCode::FAILURE,
    })
}
