//! # agentbus-store
//!
//! The event store: every event of every session, durable, queryable and replayable.
//!
//! - [`EventStore`] opens a store by URL: `sqlite://agentbus.db` (the embedded default,
//!   WAL mode) or `postgres://…` (shared), both behind the one [`Backend`] trait, with one
//!   schema and versioned [`migrations`].
//! - [`StoreWriter`] appends in batches from a bounded queue (backpressure, never a silent
//!   drop); flush and close write everything accepted; a process killed mid-run leaves a
//!   store that opens and holds a gap-free prefix of the events.
//! - Rows keep the wire-format JSON beside indexed columns (session, type, time, request id,
//!   agent call id); PCM audio samples are left out by default ([`AudioPolicy`]).
//! - Queries ([`EventQuery`]), session summaries and statistics ([`SessionSummary`],
//!   [`Stats`]) and [`replay`] of a session with its original timing, all streamed: reading
//!   costs bounded memory whatever the store's size. Reading commands open the store
//!   read-only ([`EventStore::open_read_only`]): nothing created, migrated or locked.
//! - A writer that cannot write retries, then gives up and is recorded as failed; the
//!   sessions it wrote read back as incomplete ([`SessionStatus`]), never as silently
//!   whole.
//!
//! ## Features
//!
//! `sqlite` and `postgres` (both on by default) compile the two backends. Opening a store
//! whose backend this build lacks is [`StoreError::BackendNotBuilt`]; code the backends
//! share may then go unused, hence no dead-code lint in such builds.
#![warn(missing_docs)]
#![cfg_attr(not(all(feature = "sqlite", feature = "postgres")), allow(dead_code))]

mod backend;
mod error;
mod location;
pub mod migrations;
mod open;
#[cfg(feature = "postgres")]
mod postgres;
mod query;
pub mod replay;
mod row;
mod sink;
#[cfg(feature = "sqlite")]
mod sqlite;
pub mod status;
mod store;
mod summary;
mod totals;
mod writer;

pub use backend::{Backend, SessionCounts, StoredTotals};
pub use error::{Result, StoreError};
pub use location::{DEFAULT_STORE_URL, StoreLocation, mask_url};
pub use open::{open_backend, open_backend_at_version, open_backend_read_only};
#[cfg(feature = "postgres")]
pub use postgres::PostgresBackend;
pub use query::EventQuery;
pub use replay::{Recording, ReplaySpeed};
pub use row::{
    AudioPolicy, EventRow, RowEncoder, StoredEvent, datetime_to_micros, micros_to_datetime,
};
pub use sink::{SINK_SUBSCRIBER, SinkOptions, StoreSink};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteBackend;
pub use status::SessionStatus;
pub use store::EventStore;
pub use summary::{ModelStats, SessionSummary, Stats, ToolStats, percentile};
pub use writer::{Appender, StoreWriter, WriterOptions, WriterReport};
