//! `agentbus-bench`: each benchmark measures agentbus and its baseline in the same run.
//! `agentbus bench …` runs this binary when it is installed beside `agentbus`.
//!
//! A crate of its own (not published) so that the product's crates carry no benchmark
//! code, baselines or peers. One module per benchmark; add a variant to [`Bench`] and an
//! arm to [`main`].

use std::process::ExitCode;

use clap::Parser;

mod agent;
mod alloc;
mod baseline;
mod bus;
mod local;
mod nats;
mod python;
mod sse;
mod stats;
mod store;
mod telemetry;
mod voice;

/// mimalloc, as in the product binary, with a switchable byte counter for `bench bus`.
#[global_allocator]
static ALLOCATOR: alloc::CountingAllocator = alloc::CountingAllocator;

/// agentbus-bench — agentbus against same-run baselines.
#[derive(Debug, Parser)]
#[command(
    name = "agentbus-bench",
    version,
    arg_required_else_help = true,
    after_help = "Examples:
  agentbus-bench bus
  agentbus-bench local
  agentbus-bench sse --json
  agentbus-bench agent --no-python
  agentbus bench store        (the same, through the agentbus binary)"
)]
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
    /// The NATS bridge (export rate, cross-process latency, store writer) against raw
    /// async-nats and the direct store append on the same server.
    Nats(nats::Args),
    /// The sending process of `bench nats` (and a load generator for the NATS tests).
    #[command(hide = true)]
    NatsProducer(nats::ProducerArgs),
    /// The provider stream decoder (SSE + protocol + events) on long recorded OpenAI and
    /// Anthropic streams, against serde_json parsing the same payloads.
    Sse(sse::Args),
    /// The event store: batched appends and replay reads per second (SQLite, PostgreSQL)
    /// against plain multi-row inserts of the same rows.
    Store(store::Args),
    /// Bus throughput with the metrics collector attached beside without it.
    Telemetry(telemetry::Args),
    /// The offline voice stages (VAD, STT, TTS), voice-to-voice latency, and the frame
    /// pipeline against Pipecat, if installed.
    Voice(voice::Args),
}

fn main() -> ExitCode {
    // SAFETY: nothing has spawned a thread yet.
    unsafe { agentbus_local::engine::set_default_spin_limit() };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let args = Args::parse();
    let result = match args.bench {
        Bench::Agent(args) => agent::run(args),
        Bench::Bus(args) => bus::run(args),
        Bench::Local(args) => local::run(args),
        Bench::Nats(args) => nats::run(args),
        Bench::NatsProducer(args) => nats::run_producer(args),
        Bench::Sse(args) => sse::run(args),
        Bench::Store(args) => store::run(args),
        Bench::Telemetry(args) => telemetry::run(args),
        Bench::Voice(args) => voice::run(args),
    };
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}
