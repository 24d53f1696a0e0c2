//! `agentbus`: run agents, inspect the event catalogue, replay sessions, benchmark.

mod bench;
mod cmd;
mod config;

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
    /// Run the ReAct agent with the built-in tools on one prompt.
    Run(cmd::run::Args),
    /// Inspect the event catalogue and its wire format.
    Events(cmd::events::Args),
    /// Stream one answer from an LLM provider.
    Chat(cmd::chat::Args),
    /// Measure agentbus against same-run baselines.
    Bench(bench::Args),
    /// Fetch and list the embedded local model.
    Model(cmd::model::Args),
    /// List the sessions in the event store.
    Sessions(cmd::sessions::Args),
    /// Publish a stored session into a bus again, with its original timing.
    Replay(cmd::replay::Args),
    /// Per-model and per-tool statistics of a session or of the whole store.
    Stats(cmd::stats::Args),
}

fn main() -> std::process::ExitCode {
    // Flags > AGENTBUS_* variables > agentbus.toml: the file only fills unset variables.
    // SAFETY: nothing has spawned a thread yet.
    if let Err(error) = unsafe { config::load_file_into_env() } {
        eprintln!("error: {error:#}");
        return std::process::ExitCode::FAILURE;
    }
    cmd::init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => cmd::run::run(args),
        Command::Events(args) => cmd::events::run(args),
        Command::Chat(args) => cmd::chat::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Model(args) => cmd::model::run(args),
        Command::Sessions(args) => cmd::sessions::run(args),
        Command::Replay(args) => cmd::replay::run(args),
        Command::Stats(args) => cmd::stats::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
