//! [`Backend`]: the one trait both databases implement.

use std::ops::RangeInclusive;

use crate::error::Result;
use crate::query::EventQuery;
use crate::row::{EventRow, StoredEvent};
use crate::status::SessionStatus;

/// One session as the store indexes it: counts, span and status, without reading its events.
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
    /// The store `seq` of the session's last event.
    pub last_seq: u64,
    /// Whether its writer finished it (see [`SessionStatus`]).
    pub status: SessionStatus,
}

/// One session's stored call totals, as [`Backend::session_totals`] reads them: the session
/// id and the totals in the store's own JSON form (`None`: no call yet).
pub type StoredTotals = (String, Option<String>);

/// A database holding an event store. Implemented for SQLite and PostgreSQL.
///
/// Calls block the calling thread; from async code, call them through
/// `tokio::task::spawn_blocking` (the [`StoreWriter`](crate::StoreWriter) runs its backend
/// on a thread of its own). A backend opened read-only
/// ([`open_backend_read_only`](crate::open_backend_read_only)) refuses every write.
pub trait Backend: Send {
    /// Where the store is (for messages; passwords masked).
    fn location(&self) -> String;

    /// The schema version the store is at.
    fn schema_version(&mut self) -> Result<i64>;

    /// Appends `rows` in one transaction, in order, and returns the store `seq`s they got:
    /// the next numbers after the store's last, without gaps. Either every row is written
    /// or none is. An empty slice writes nothing and returns an empty range. The per-session
    /// index (`agentbus_sessions`) is updated in the same transaction, naming the writer
    /// registered with [`begin_writer`](Self::begin_writer), if any.
    fn append(&mut self, rows: &[EventRow]) -> Result<RangeInclusive<u64>>;

    /// Records a writer with id `writer_id` as started (state `writing`, this process and
    /// host); later appends on this connection name it as their sessions' writer.
    fn begin_writer(&mut self, writer_id: &str) -> Result<()>;

    /// Records how the writer registered on this connection ended (see [`crate::status`]).
    fn end_writer(&mut self, end: &crate::status::WriterEnd) -> Result<()>;

    /// Appends, in one transaction and in order, the rows whose `event_id` the store does
    /// not hold yet (nor an earlier row of `rows`), and returns how many it wrote: a
    /// redelivered event adds nothing. The check and the insert are one transaction, so
    /// several writers sharing a source cannot both write an event.
    fn append_new(&mut self, rows: &[EventRow]) -> Result<usize>;

    /// Calls `each` with every event `query` selects, in store order, stopping at the first
    /// error `each` returns.
    fn scan(
        &mut self,
        query: &EventQuery,
        each: &mut dyn FnMut(StoredEvent) -> Result<()>,
    ) -> Result<()>;

    /// Calls `each` with `(request_id, earliest ts_us)` for every request that has events of
    /// `types` (of `session_id` only, when given), computed by the database from the
    /// indexed columns: no event body is read.
    fn first_times(
        &mut self,
        types: &[&str],
        session_id: Option<&str>,
        each: &mut dyn FnMut(String, i64),
    ) -> Result<()>;

    /// Counts, span and status of every session (or of `session_id` only), in order of
    /// their first event; one row read per session.
    fn session_counts(&mut self, session_id: Option<&str>) -> Result<Vec<SessionCounts>>;

    /// Every session's stored call totals (or one session's): `(session_id, totals)` with
    /// the totals in the store's own JSON form (`None`: no call yet), in no particular
    /// order; `None` for a store older than the version that keeps them (opened
    /// read-only, not migrated). [`EventStore::sessions`](crate::EventStore::sessions)
    /// reads them; other callers have no use for them. The default keeps none, so a
    /// backend written before totals existed still works: sessions are then summed from
    /// their call events.
    fn session_totals(&mut self, session_id: Option<&str>) -> Result<Option<Vec<StoredTotals>>> {
        let _ = session_id;
        Ok(None)
    }

    /// The highest store `seq` (0 when the store is empty).
    fn last_seq(&mut self) -> Result<u64>;

    /// How many events the store holds.
    fn count(&mut self) -> Result<u64>;
}
