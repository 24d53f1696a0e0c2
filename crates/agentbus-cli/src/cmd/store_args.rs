//! `--store URL` / `--no-store`: the flags every command that records or reads a session
//! shares (flatten [`StoreArgs`] into a command's arguments).

use std::time::Duration;

use agentbus::EventManager;
use agentbus_store::{
    DEFAULT_STORE_URL, EventStore, SinkOptions, StoreSink, WriterOptions, WriterReport, mask_url,
};
use anyhow::Context;

/// Where sessions are stored.
#[derive(Clone, Debug, clap::Args)]
pub struct StoreArgs {
    /// The event store: `sqlite://PATH` (embedded, WAL) or `postgres://…` (shared).
    #[arg(long, value_name = "URL", env = "AGENTBUS_STORE", default_value = DEFAULT_STORE_URL)]
    pub store: String,
    /// Do not store the session's events (wins over `--store`).
    #[arg(long)]
    pub no_store: bool,
}

impl StoreArgs {
    /// The store URL fit to show: passwords masked.
    pub fn shown(&self) -> String {
        mask_url(&self.store)
    }

    /// Opens the store read-only, for commands that only read (`sessions`, `stats`,
    /// `replay`; they ignore `--no-store`): nothing is created or migrated, a missing store
    /// is an error naming it, and a locked store is reported at once.
    pub fn open_read_only(&self) -> anyhow::Result<EventStore> {
        EventStore::open_read_only(&self.store)
            .with_context(|| format!("opening the store {} to read", self.shown()))
    }

    /// Opens the store for writing, creating or migrating it as needed.
    pub fn open(&self) -> anyhow::Result<EventStore> {
        EventStore::open(&self.store).with_context(|| format!("opening the store {}", self.shown()))
    }

    /// Attaches the store to `bus` (unless `--no-store`): every event the bus accepts from
    /// now on is written. Call within a tokio runtime; finish with [`Recorder::finish`].
    pub fn record(&self, bus: &EventManager) -> anyhow::Result<Option<Recorder>> {
        if self.no_store {
            return Ok(None);
        }
        let store = self.open()?;
        let writer = store
            .writer(WriterOptions::default())
            .with_context(|| format!("starting the store writer on {}", self.shown()))?;
        let sink = StoreSink::attach(bus, writer, SinkOptions::default())?;
        Ok(Some(Recorder {
            sink,
            location: store.location().to_string(),
        }))
    }
}

/// A store attached to a bus for the length of a command.
#[derive(Debug)]
pub struct Recorder {
    sink: StoreSink,
    location: String,
}

impl Recorder {
    /// Waits for the bus to deliver everything sent, writes everything queued and reports.
    pub async fn finish(self) -> anyhow::Result<WriterReport> {
        let location = self.location;
        self.sink
            .close(Duration::from_secs(30))
            .await
            .with_context(|| format!("writing the session to {location}"))
    }

    /// Where the events go.
    pub fn location(&self) -> &str {
        &self.location
    }
}
