//! `agentbus events`: the catalogue as a table, as JSON, and as a JSON Schema.

use std::process::ExitCode;

/// Arguments of `agentbus events`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `agentbus events`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`agentbus events` is being written")
}
