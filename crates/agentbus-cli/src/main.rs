//! `agentbus`: run agents, inspect the event catalogue, replay sessions, benchmark.

mod bench;
mod broken_pipe;
mod cmd;
mod config;
mod terminal;
mod trust;
mod userinfo;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// mimalloc rather than glibc malloc: every event is allocated on the sending thread and
/// freed on a consumer thread, which glibc handles poorly (measured with `bench bus`:
/// +40% calls/s at one subscriber).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// agentbus — the event system for real-time AI agents.
#[derive(Debug, Parser)]
#[command(
    name = "agentbus",
    version,
    about,
    arg_required_else_help = true,
    after_help = config::TRUST_HELP
)]
struct Cli {
    /// A config file to use instead of ./agentbus.toml; trusted, since you named it.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "AGENTBUS_CONFIG",
        hide_env_values = true
    )]
    config: Option<PathBuf>,
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
    /// Evaluate the agent on ~20 built-in tasks (tool use, answers, TTFT) on any provider.
    Eval(cmd::eval::Args),
    /// Measure agentbus against same-run baselines (runs `agentbus-bench`, installed beside
    /// this binary; `agentbus bench --help` lists the benchmarks).
    #[command(disable_help_flag = true)]
    Bench(bench::Args),
    /// Fetch and list the embedded local model.
    #[cfg(feature = "local")]
    Model(cmd::model::Args),
    /// List the sessions in the event store.
    Sessions(cmd::sessions::Args),
    /// Publish a stored session into a bus again, with its original timing.
    Replay(cmd::replay::Args),
    /// Per-model and per-tool statistics of a session or of the whole store.
    Stats(cmd::stats::Args),
    /// Trust or untrust a config file; show the settings in effect and their sources.
    Config(cmd::config::Args),
    /// Write every event from NATS JetStream to the store (a durable consumer).
    StoreWriter(cmd::store_writer::Args),
    /// Show live events from every process publishing to NATS.
    Tail(cmd::tail::Args),
    /// One spoken exchange, offline: a WAV question in, a spoken answer out.
    #[cfg(feature = "voice")]
    Voice(cmd::voice::Args),
    /// Motion detection on frames or a video, and a question to a vision model about them.
    #[cfg(feature = "voice")]
    Vision(cmd::vision::Args),
}

/// Prints an error for a person: URL passwords masked, terminal control removed (server
/// messages end up in errors).
fn print_error(error: &anyhow::Error) {
    let text = format!("{error:#}");
    eprintln!(
        "error: {}",
        terminal::sanitize(&userinfo::mask_userinfo(&text))
    );
}

fn main() -> std::process::ExitCode {
    // Flags > AGENTBUS_* variables > config files: a file only fills unset variables,
    // and an untrusted one only the harmless keys (see `config`).
    let loaded = match config::load(config::config_flag(std::env::args_os())) {
        Ok(loaded) => loaded,
        Err(error) => {
            print_error(&error);
            return std::process::ExitCode::FAILURE;
        }
    };
    // SAFETY: nothing has spawned a thread yet.
    unsafe { loaded.apply() };
    #[cfg(feature = "local")]
    // SAFETY: nothing has spawned a thread yet.
    unsafe {
        agentbus_local::engine::set_default_spin_limit()
    };
    cmd::init_tracing();
    broken_pipe::exit_quietly_on_stdout_panics();
    let cli = Cli::parse();
    tracing::debug!(
        flag = ?cli.config,
        files = ?loaded.files.iter().map(|file| &file.path).collect::<Vec<_>>(),
        "config files read"
    );
    if !matches!(cli.command, Command::Config(_))
        && let Some(warning) = loaded.warning()
    {
        eprintln!("{}", terminal::sanitize(&warning));
    }
    let result = match cli.command {
        Command::Run(args) => cmd::run::run(args),
        Command::Events(args) => cmd::events::run(args),
        Command::Chat(args) => cmd::chat::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Bench(args) => bench::run(args),
        #[cfg(feature = "local")]
        Command::Model(args) => cmd::model::run(args),
        Command::Sessions(args) => cmd::sessions::run(args),
        Command::Replay(args) => cmd::replay::run(args),
        Command::Stats(args) => cmd::stats::run(args),
        Command::Config(args) => cmd::config::run(args, &loaded),
        Command::StoreWriter(args) => cmd::store_writer::run(args),
        Command::Tail(args) => cmd::tail::run(args),
        #[cfg(feature = "voice")]
        Command::Voice(args) => cmd::voice::run(args),
        #[cfg(feature = "voice")]
        Command::Vision(args) => cmd::vision::run(args),
    };
    match result {
        Ok(code) => code,
        // The reader went away (`| head`): nothing more to say to it.
        Err(error) if broken_pipe::is_broken_pipe(&error) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            print_error(&error);
            std::process::ExitCode::FAILURE
        }
    }
}
