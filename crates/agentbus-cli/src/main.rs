//! `agentbus`: run agents, inspect the event catalogue, replay sessions, benchmark.

mod bench;
mod cmd;

use clap::{Parser, Subcommand};

/// agentbus — the event system for real-time AI agents.
#[derive(Debug, Parser)]
#[command(name = "agentbus", version, about, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect the event catalogue and its wire format.
    Events(cmd::events::Args),
    /// Measure agentbus against same-run baselines.
    Bench(bench::Args),
}

fn main() -> std::process::ExitCode {
    cmd::init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Events(args) => cmd::events::run(args),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
