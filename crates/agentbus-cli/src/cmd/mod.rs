//! One module per subcommand.

pub mod chat;
pub mod events;
pub mod model;
pub mod provider;
pub mod replay;
pub mod run;
pub mod sessions;
pub mod stats;
pub mod store_args;
pub mod telemetry_args;

/// Logs go to stderr through `tracing`, filtered by `RUST_LOG` (default: warnings).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal, and never with NO_COLOR.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .try_init();
}
