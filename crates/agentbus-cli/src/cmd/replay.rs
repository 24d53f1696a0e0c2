//! `agentbus replay SESSION`: publish a stored session into a bus again, with its
//! original timing (`--speed 1`, the default; `--speed 2` twice as fast) or as fast as
//! possible (`--speed max`). Replayed events keep their ids and fields.

use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentbus::EventManager;
use agentbus_events::DynEvent;
use agentbus_store::{Recording, ReplaySpeed};
use anyhow::Context;

use super::store_args::StoreArgs;
use super::telemetry_args::TelemetryArgs;

/// What `replay` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EventsFormat {
    /// Every event as wire-format JSON, one per line, and nothing else on stdout.
    Jsonl,
}

/// Arguments of `agentbus replay`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  agentbus replay 3f2c...                    with the original timing
  agentbus replay 3f2c... --speed max --events jsonl
  agentbus replay 3f2c... --speed 10 --no-store
  agentbus replay --nats nats://127.0.0.1:4222 3f2c...   from the JetStream stream")]
pub struct Args {
    /// The session to replay (see `agentbus sessions`).
    pub session: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Replay speed: a factor of the original timing (1 = real time) or `max`.
    #[arg(long, default_value = "1")]
    pub speed: ReplaySpeed,
    /// Print every replayed event in this format instead of a one-line summary per event.
    #[arg(long, value_enum)]
    pub events: Option<EventsFormat>,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// Read the session from this NATS server's stream instead of the store (the
    /// credential flags of `tail` apply).
    #[command(flatten)]
    pub nats: super::nats_args::NatsArgs,
}

/// Where the replayed session comes from.
enum Source {
    /// A session of the store, read a page at a time as it plays.
    Store(Recording),
    /// A session read whole from the NATS stream: each event with its timestamp (µs).
    Nats(Vec<(i64, Box<dyn DynEvent>)>),
}

impl Source {
    /// How many events the session has.
    fn len(&self) -> u64 {
        match self {
            Source::Store(recording) => recording.session().events,
            Source::Nats(events) => events.len() as u64,
        }
    }

    /// The store's warning that the session was cut short (a stream has no such record).
    fn gap_warning(&self, session_id: &str) -> Option<String> {
        match self {
            Source::Store(recording) => {
                let session = recording.session();
                session.status.gap_warning(session_id, session.last_seq)
            }
            Source::Nats(_) => None,
        }
    }

    /// Sends every event into `bus` at its scheduled time (see [`ReplaySpeed::offset`]),
    /// waiting for room when a subscriber's queue is full; returns how many were sent.
    async fn play_into(self, bus: &EventManager, speed: ReplaySpeed) -> anyhow::Result<u64> {
        match self {
            Source::Store(recording) => Ok(recording.play_into(bus, speed).await?),
            Source::Nats(events) => {
                let start = tokio::time::Instant::now();
                let first_us = events.first().map_or(0, |(ts, _)| *ts);
                let mut sent = 0;
                for (ts, event) in events {
                    if speed != ReplaySpeed::Max {
                        tokio::time::sleep_until(start + speed.offset(ts - first_us)).await;
                    }
                    bus.send(event).await?;
                    sent += 1;
                }
                Ok(sent)
            }
        }
    }
}

/// Runs `agentbus replay`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let bus_registry = agentbus_events::Registry::catalogue();
    let source = match args.nats.nats {
        Some(_) => Source::Nats(super::nats_args::load_session(
            &args.nats,
            &args.session,
            &bus_registry,
        )?),
        None => {
            let store = args.store.open_read_only()?;
            Source::Store(Recording::open(&store, &args.session, &bus_registry)?)
        }
    };
    let total = source.len();
    let gap_warning = source.gap_warning(&args.session);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let jsonl = args.events == Some(EventsFormat::Jsonl);
    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    let sent = runtime.block_on(async {
        let bus = EventManager::new();
        let telemetry = args.telemetry.start().await?;
        telemetry.attach(&bus)?;
        let failed = Arc::clone(&failure);
        bus.subscribe("replay-output", move |event: Arc<dyn DynEvent>| {
            let failed = Arc::clone(&failed);
            async move {
                let line = if jsonl {
                    event.to_wire_string().map_err(|e| e.to_string())
                } else {
                    Ok(format!(
                        "#{:<6} {} {}",
                        event.meta().seq.map_or(0, |seq| seq.get()),
                        event.meta().timestamp.format("%H:%M:%S%.3f"),
                        event.event_type()
                    ))
                };
                let mut stdout = std::io::stdout().lock();
                let written = line.and_then(|l| writeln!(stdout, "{l}").map_err(|e| e.to_string()));
                if let Err(error) = written {
                    failed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(error);
                }
            }
        })?;
        let sent = source.play_into(&bus, args.speed).await?;
        bus.wait(Duration::from_secs(30)).await?;
        let _report = bus.shutdown(Duration::from_secs(5)).await;
        args.telemetry.finish_if_requested(telemetry).await?;
        anyhow::Ok(sent)
    })?;
    if let Some(error) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
        anyhow::bail!("writing the replayed events: {error}");
    }
    if !jsonl {
        eprintln!(
            "replayed {sent} of {total} events of session {}",
            args.session
        );
    }
    // A session cut short is said to be, whatever the output format (stderr).
    if let Some(warning) = gap_warning {
        eprintln!("warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}
