//! `agentbus bench`: each benchmark measures agentbus and its baseline in the same run.

use std::process::ExitCode;

/// Arguments of `agentbus bench`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `agentbus bench`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`agentbus bench` is being written")
}
