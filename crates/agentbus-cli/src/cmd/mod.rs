//! One module per subcommand.

pub mod agent_setup;
pub mod chat;
pub mod config;
pub mod eval;
pub mod events;
#[cfg(feature = "local")]
pub mod model;
pub mod nats_args;
pub mod provider;
pub mod replay;
pub mod run;
pub mod sessions;
pub mod stats;
pub mod store_args;
pub mod store_writer;
pub mod tail;
pub mod telemetry_args;
#[cfg(feature = "voice")]
pub mod vision;
#[cfg(feature = "voice")]
pub mod voice;

/// Logs go to stderr through `tracing`, filtered by `RUST_LOG` (default: warnings), with
/// the password of every URL in them masked.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| MaskedStderr)
        // Colours only on a terminal, and never with NO_COLOR.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .try_init();
}

/// Stderr for log lines: the `fmt` layer writes each formatted event in one call, and any
/// `scheme://user:password@` in it is masked on the way ([`crate::userinfo`]).
struct MaskedStderr;

impl std::io::Write for MaskedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let masked = crate::userinfo::mask_userinfo(&text);
        std::io::stderr().lock().write_all(masked.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
