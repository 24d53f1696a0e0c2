//! `agentbus tail --nats URL`: live events from every process and machine publishing to
//! the NATS stream, decoded and printed as they arrive (one line each, or wire JSON with
//! `--events jsonl`). An ordered ephemeral consumer: nothing is acknowledged or kept.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentbus::EventManager;
use agentbus_events::DynEvent;
use agentbus_nats::StartAt;
use anyhow::Context;

use super::nats_args::NatsArgs;

/// What `tail` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EventsFormat {
    /// Every event as wire-format JSON, one per line.
    Jsonl,
}

/// Arguments of `agentbus tail`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  agentbus tail --nats nats://127.0.0.1:4222
  agentbus tail --nats nats://127.0.0.1:4222 --session 3f2c... --type 'react.>'
  agentbus tail --nats nats://127.0.0.1:4222 --type 'plugin.*' --events jsonl | jq -c .type
  agentbus tail --nats nats://127.0.0.1:4222 --all --limit 100      from the stream's start")]
pub struct Args {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Only this session.
    #[arg(long)]
    pub session: Option<String>,
    /// Only types matching this pattern (`plugin.*`: one part; `react.>`: the rest).
    #[arg(long = "type", value_name = "PATTERN")]
    pub type_pattern: Option<String>,
    /// Print wire JSON instead of one summary line per event.
    #[arg(long, value_enum)]
    pub events: Option<EventsFormat>,
    /// Start at the beginning of the stream instead of with new events.
    #[arg(long)]
    pub all: bool,
    /// Exit after this many events.
    #[arg(long)]
    pub limit: Option<u64>,
}

/// Runs `agentbus tail`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.nats.nats.is_none() {
        anyhow::bail!("tail needs --nats URL (or AGENTBUS_NATS)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(tail(args))
}

async fn tail(args: Args) -> anyhow::Result<ExitCode> {
    let bridge = args.nats.connect().await?.context("--nats is required")?;
    let bus = EventManager::new();
    let jsonl = args.events == Some(EventsFormat::Jsonl);
    let printed = Arc::new(AtomicU64::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    let limit = args.limit;
    {
        let (printed, done, failure) = (printed.clone(), done.clone(), failure.clone());
        bus.subscribe("tail-output", move |event: Arc<dyn DynEvent>| {
            let (printed, done, failure) = (printed.clone(), done.clone(), failure.clone());
            async move {
                if limit.is_some_and(|l| printed.load(Ordering::Relaxed) >= l) {
                    return;
                }
                let line = if jsonl {
                    event.to_wire_string().map_err(|e| e.to_string())
                } else {
                    let meta = event.meta();
                    // The session id comes from another process: no terminal control.
                    let session = meta.session_id.as_deref().unwrap_or("-");
                    Ok(format!(
                        "{} {:<36} {}",
                        meta.timestamp.format("%H:%M:%S%.3f"),
                        crate::terminal::sanitize(session),
                        event.event_type()
                    ))
                };
                let mut out = std::io::stdout().lock();
                let written = line.and_then(|l| {
                    writeln!(out, "{l}")
                        .and_then(|()| out.flush())
                        .map_err(|e| e.to_string())
                });
                if let Err(error) = written {
                    failure
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(error);
                    done.notify_one();
                    return;
                }
                let n = printed.fetch_add(1, Ordering::Relaxed) + 1;
                if limit.is_some_and(|l| n >= l) {
                    done.notify_one();
                }
            }
        })?;
    }
    let start = if args.all { StartAt::All } else { StartAt::New };
    let import = bridge
        .import_live(
            &bus,
            args.session.as_deref(),
            args.type_pattern.as_deref(),
            start,
        )
        .await?;
    if !jsonl {
        eprintln!("tail: waiting for events (Ctrl-C to stop)");
    }
    tokio::select! {
        _ = done.notified() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    drop(import);
    let _ = bus.wait(Duration::from_secs(2)).await;
    if let Some(error) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
        anyhow::bail!("writing events: {error}");
    }
    Ok(ExitCode::SUCCESS)
}
