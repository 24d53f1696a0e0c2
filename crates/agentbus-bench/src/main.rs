//! `agentbus bench`: each benchmark measures agentbus and its baseline in the same run.
//!
//! One module per benchmark; add a variant to [`Bench`] and an arm to [`run`].

use std::process::ExitCode;

pub mod agent;
pub mod bus;
pub mod local;
pub mod sse;
pub mod store;
pub mod telemetry;

/// Arguments of `agentbus bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  agentbus bench bus
  agentbus bench local
  agentbus bench sse --json
  agentbus bench agent --no-python")]
pub struct Args {
    /// Which benchmark to run.
    #[command(subcommand)]
    pub bench: Bench,
}

/// The benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum Bench {
    /// One ReAct agent turn with a scripted model: time per turn, events/s, peak RSS
    /// (and SimpleLLMFunc's, if installed).
    Agent(agent::Args),
    /// The event bus against a tokio mpsc baseline (and Vision Agents, if installed).
    Bus(bus::Args),
    /// The embedded local model (candle) against llama.cpp, if installed: TTFT, prompt
    /// and generation tokens/s, peak RSS.
    Local(local::Args),
    /// The provider stream decoder (SSE + protocol + events) on long recorded OpenAI and
    /// Anthropic streams, against serde_json parsing the same payloads.
    Sse(sse::Args),
    /// The event store: batched appends and replay reads per second (SQLite, PostgreSQL)
    /// against plain multi-row inserts of the same rows.
    Store(store::Args),
    /// Bus throughput with the metrics collector attached beside without it.
    Telemetry(telemetry::Args),
}

/// Runs `agentbus bench`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.bench {
        Bench::Agent(args) => agent::run(args),
        Bench::Bus(args) => bus::run(args),
        Bench::Local(args) => local::run(args),
        Bench::Sse(args) => sse::run(args),
        Bench::Store(args) => store::run(args),
        Bench::Telemetry(args) => telemetry::run(args),
    }
}
