//! `agentbus store-writer --nats URL --store URL`: the store behind the bus. A durable
//! JetStream consumer writes every event of every process to SQLite or PostgreSQL and
//! acknowledges a batch only after its transaction committed. The store skips an event id
//! it already holds, so a redelivery (after a crash between commit and ack) adds nothing.
//! Several writers may share one durable consumer (`--consumer`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use agentbus_events::Registry;
use agentbus_nats::DurableOptions;
use agentbus_nats::store::{WriteOptions, write_all};
use agentbus_store::EventStore;
use anyhow::Context;

use super::nats_args::NatsArgs;

/// Arguments of `agentbus store-writer`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  agentbus store-writer --nats nats://127.0.0.1:4222 --store sqlite://agentbus.db
  agentbus store-writer --nats nats://10.0.0.5:4222 --store postgres://agentbus@db/agentbus

Runs until Ctrl-C or SIGTERM (it finishes the batch in hand first).")]
pub struct Args {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// The event store: `sqlite://PATH` or `postgres://…`.
    #[arg(long, value_name = "URL", env = "AGENTBUS_STORE", hide_env_values = true, default_value = agentbus_store::DEFAULT_STORE_URL)]
    pub store: String,
    /// The durable consumer's name; writers with the same name share the work.
    #[arg(long, default_value = "agentbus-store")]
    pub consumer: String,
    /// Events per transaction at most.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// How long a delivered batch may stay unacknowledged before JetStream delivers it
    /// again (to this or another writer).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = super::provider::parse_duration)]
    pub ack_wait: Duration,
    /// Events delivered and not yet acknowledged, over all writers (default: four
    /// batches, so the next batches are on their way while one is written). One writer
    /// keeps each session in stream order in the store, through crashes too; writers
    /// sharing a consumer may commit the batches they hold in either order.
    #[arg(long)]
    pub max_ack_pending: Option<i64>,
    /// Exit after this long without an event (`30s`, `2m`; default: run until stopped).
    #[arg(long, value_name = "DURATION", value_parser = super::provider::parse_duration)]
    pub exit_when_idle: Option<Duration>,
}

/// Runs `agentbus store-writer`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.nats.nats.is_none() {
        anyhow::bail!("store-writer needs --nats URL (or AGENTBUS_NATS)");
    }
    if args.batch == 0 {
        anyhow::bail!("--batch must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(write(args))
}

async fn write(args: Args) -> anyhow::Result<ExitCode> {
    let store_url = args.store.clone();
    let store = tokio::task::spawn_blocking(move || EventStore::open(&store_url))
        .await?
        .with_context(|| {
            format!(
                "opening the store {}",
                agentbus_store::mask_url(&args.store)
            )
        })?;
    let store = Arc::new(store);
    let location = store.location().to_string();
    let bridge = args.nats.connect().await?.context("--nats is required")?;
    let mut options = DurableOptions::new(&args.consumer);
    options.ack_wait = args.ack_wait;
    options.max_ack_pending = args
        .max_ack_pending
        .unwrap_or_else(|| agentbus_nats::store::max_ack_pending_for(args.batch));
    let consumer = bridge.durable(Registry::catalogue(), options).await?;
    eprintln!("store-writer: consumer `{}` → {location}", args.consumer);

    let consumer = Arc::new(consumer);
    let mut options = WriteOptions::default();
    options.batch = args.batch;
    options.exit_when_idle = args.exit_when_idle;
    let totals = write_all(consumer.clone(), store, options, stop_signal()).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), bridge.client().flush()).await;
    let stats = consumer.stats();
    eprintln!(
        "store-writer: {} events written to {location}, {} already stored (redelivered), {} not encodable, {} skipped (unknown type {}, newer schema {}, malformed {})",
        totals.written,
        totals.already_stored,
        totals.unencodable,
        totals.skipped,
        stats.unknown_type,
        stats.newer_schema,
        stats.malformed
    );
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
