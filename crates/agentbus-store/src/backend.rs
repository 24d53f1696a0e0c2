//! [`Backend`]: the one trait both databases implement, and [`open_backend`].

use std::ops::RangeInclusive;

use crate::error::Result;
use crate::location::StoreLocation;
use crate::migrations::LATEST_VERSION;
use crate::query::EventQuery;
use crate::row::{EventRow, StoredEvent};

/// Per-session counts computed by the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionCounts {
    /// The session id (events without a session are not counted here).
    pub session_id: String,
    /// Timestamp of the earliest event, in microseconds since the epoch.
    pub first_us: i64,
    /// Timestamp of the latest event, in microseconds since the epoch.
    pub last_us: i64,
    /// How many events the session has.
    pub events: u64,
    /// The store `seq` of the session's first event (sessions list in this order).
    pub first_seq: u64,
}

/// A database holding an event store. Implemented for SQLite and PostgreSQL.
///
/// Calls block the calling thread; from async code, call them through
/// `tokio::task::spawn_blocking` (the [`StoreWriter`](crate::StoreWriter) runs its backend
/// on a thread of its own).
pub trait Backend: Send {
    /// Where the store is (for messages; passwords masked).
    fn location(&self) -> String;

    /// The schema version the store is at.
    fn schema_version(&mut self) -> Result<i64>;

    /// Appends `rows` in one transaction, in order, and returns the store `seq`s they got:
    /// the next numbers after the store's last, without gaps. Either every row is written
    /// or none is. An empty slice writes nothing and returns an empty range.
    fn append(&mut self, rows: &[EventRow]) -> Result<RangeInclusive<u64>>;

    /// Calls `each` with every event `query` selects, in store order, stopping at the first
    /// error `each` returns.
    fn scan(
        &mut self,
        query: &EventQuery,
        each: &mut dyn FnMut(StoredEvent) -> Result<()>,
    ) -> Result<()>;

    /// Counts and time span of every session, in order of their first event.
    fn session_counts(&mut self) -> Result<Vec<SessionCounts>>;

    /// The highest store `seq` (0 when the store is empty).
    fn last_seq(&mut self) -> Result<u64>;

    /// How many events the store holds.
    fn count(&mut self) -> Result<u64>;
}

/// Opens the store at `location`, creating it or migrating it to the latest schema.
pub fn open_backend(location: &StoreLocation) -> Result<Box<dyn Backend>> {
    open_backend_at_version(location, LATEST_VERSION)
}

/// Opens the store at `location`, migrating it no further than `version` (for tests of
/// migrations; use [`open_backend`] otherwise).
pub fn open_backend_at_version(location: &StoreLocation, version: i64) -> Result<Box<dyn Backend>> {
    match location {
        StoreLocation::Sqlite { path } => {
            Ok(Box::new(crate::sqlite::SqliteBackend::open(path, version)?))
        }
        StoreLocation::Postgres { url, schema } => Ok(Box::new(
            crate::postgres::PostgresBackend::open(url, schema.as_deref(), version)?,
        )),
    }
}
