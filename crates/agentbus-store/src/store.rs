//! [`EventStore`]: open a store, query it, summarise it, start writers.

use std::collections::HashMap;
use std::sync::Mutex;

use agentbus_events::Registry;

use crate::backend::{Backend, SessionCounts};
use crate::error::{Result, StoreError};
use crate::location::StoreLocation;
use crate::open::{open_backend, open_backend_read_only};
use crate::query::EventQuery;
use crate::row::StoredEvent;
use crate::summary::{self, CALL_TYPES, OUTPUT_TYPES, SessionCalls, SessionSummary, Stats};
use crate::totals::{Gather, SessionTotals, TOTALS_TYPES};
use crate::writer::{StoreWriter, WriterOptions};

/// An opened event store (SQLite or PostgreSQL), for reading and for starting writers.
///
/// [`open`](Self::open) creates the store if it does not exist and migrates it to the
/// latest schema; [`open_read_only`](Self::open_read_only) only reads an existing one. A
/// file that is not a database, a store with a newer schema and an unreachable server are
/// errors, and nothing is written to them.
///
/// Every method blocks the calling thread on the database; from async code use
/// `tokio::task::spawn_blocking`.
///
/// ```
/// use agentbus_store::{EventStore, StoreError};
/// let dir = std::env::temp_dir().join(format!("agentbus-doc-{}", std::process::id()));
/// let url = format!("sqlite://{}", dir.join("events.db").display());
/// // Reading never creates: a missing store is an error naming it.
/// assert!(matches!(EventStore::open_read_only(&url), Err(StoreError::NotFound { .. })));
/// let store = EventStore::open(&url)?;              // created and migrated
/// assert!(store.sessions()?.is_empty());
/// drop(store);
/// assert!(EventStore::open_read_only(&url)?.sessions()?.is_empty());
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), StoreError>(())
/// ```
pub struct EventStore {
    location: StoreLocation,
    read_only: bool,
    backend: Mutex<Box<dyn Backend>>,
}

impl std::fmt::Debug for EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore")
            .field("location", &self.location.to_string())
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl EventStore {
    /// Opens the store at `url` (`sqlite://PATH`, a path, or `postgres://…`) for reading
    /// and writing, creating or migrating it.
    pub fn open(url: &str) -> Result<Self> {
        Self::open_location(StoreLocation::parse(url)?)
    }

    /// Opens the store at `location` for reading and writing.
    pub fn open_location(location: StoreLocation) -> Result<Self> {
        let backend = open_backend(&location)?;
        Ok(Self {
            location,
            read_only: false,
            backend: Mutex::new(backend),
        })
    }

    /// Opens the existing store at `url` for reading only (see
    /// [`open_backend_read_only`](crate::open_backend_read_only)): nothing is created or
    /// migrated, a missing store is [`StoreError::NotFound`], a locked one
    /// [`StoreError::Locked`] after a short wait.
    pub fn open_read_only(url: &str) -> Result<Self> {
        Self::open_location_read_only(StoreLocation::parse(url)?)
    }

    /// Opens the existing store at `location` for reading only.
    pub fn open_location_read_only(location: StoreLocation) -> Result<Self> {
        let backend = open_backend_read_only(&location)?;
        Ok(Self {
            location,
            read_only: true,
            backend: Mutex::new(backend),
        })
    }

    /// Where the store is.
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// Whether the store was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn with_backend<T>(&self, f: impl FnOnce(&mut dyn Backend) -> Result<T>) -> Result<T> {
        // A panic while holding the lock leaves the connection usable: each call is
        // self-contained (transactions roll back when dropped).
        let mut guard = self.backend.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut **guard)
    }

    /// Starts a batching writer on a connection of its own.
    pub fn writer(&self, options: WriterOptions) -> Result<StoreWriter> {
        if self.read_only {
            return Err(StoreError::ReadOnly {
                location: self.location.to_string(),
            });
        }
        StoreWriter::start(open_backend(&self.location)?, options)
    }

    /// The schema version of the store.
    pub fn schema_version(&self) -> Result<i64> {
        self.with_backend(|b| b.schema_version())
    }

    /// The highest store `seq` (0 when empty).
    pub fn last_seq(&self) -> Result<u64> {
        self.with_backend(|b| b.last_seq())
    }

    /// How many events the store holds.
    pub fn count(&self) -> Result<u64> {
        self.with_backend(|b| b.count())
    }

    /// Appends `rows` directly in one transaction (no queue); returns their store seqs.
    pub fn append_rows(
        &self,
        rows: &[crate::row::EventRow],
    ) -> Result<std::ops::RangeInclusive<u64>> {
        self.with_backend(|b| b.append(rows))
    }

    /// Appends, in one transaction, the rows whose event id the store does not hold yet;
    /// returns how many it wrote (see [`Backend::append_new`]). For writers fed by an
    /// at-least-once source (a JetStream durable consumer): a redelivery adds nothing.
    pub fn append_rows_new(&self, rows: &[crate::row::EventRow]) -> Result<usize> {
        self.with_backend(|b| b.append_new(rows))
    }

    /// The events `query` selects, in store order, collected in memory (use
    /// [`scan`](Self::scan) for large selections).
    pub fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>> {
        let mut out = Vec::new();
        self.scan(query, |e| {
            out.push(e);
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `each` with the events `query` selects, in store order, without holding them
    /// all in memory.
    pub fn scan(
        &self,
        query: &EventQuery,
        mut each: impl FnMut(StoredEvent) -> Result<()>,
    ) -> Result<()> {
        self.with_backend(|b| b.scan(query, &mut each))
    }

    /// Counts, span and status of every session, or of `session_id` only (an unknown
    /// session is [`StoreError::UnknownSession`]), without reading their events.
    pub fn session_counts(&self, session_id: Option<&str>) -> Result<Vec<SessionCounts>> {
        let counts = self.with_backend(|b| b.session_counts(session_id))?;
        match session_id {
            Some(id) if counts.is_empty() => Err(StoreError::UnknownSession(id.to_owned())),
            _ => Ok(counts),
        }
    }

    /// The LLM and tool calls of every session (or of one), streamed from the call events.
    fn session_calls(
        &self,
        session_id: Option<&str>,
        first_output: &dyn Fn(&str) -> Option<i64>,
    ) -> Result<HashMap<String, SessionCalls>> {
        let registry = Registry::catalogue();
        let query = EventQuery {
            session_id: session_id.map(str::to_owned),
            ..EventQuery::default()
        }
        .with_types(CALL_TYPES.iter().copied());
        let mut sessions: HashMap<String, SessionCalls> = HashMap::new();
        let mut skipped = 0u64;
        self.scan(&query, |event| {
            let id = event.row.session_id.as_deref().unwrap_or_default();
            let calls = match sessions.get_mut(id) {
                Some(calls) => calls,
                None => sessions.entry(id.to_owned()).or_default(),
            };
            if let Err(error) = calls.push(&event, &registry, first_output) {
                // One bad row must not hide every other session's figures; say so.
                if skipped == 0 {
                    tracing::warn!(%error, "a stored event does not decode; left out of the figures");
                }
                skipped += 1;
            }
            Ok(())
        })?;
        if skipped > 1 {
            tracing::warn!(
                skipped,
                "stored events left out of the figures (do not decode)"
            );
        }
        Ok(sessions)
    }

    /// Every session, in order of its first event.
    ///
    /// Reads one row per session: the counts and call totals the store keeps up to date on
    /// every append, never the sessions' events (a store opened read-only at a schema
    /// version older than those totals is summed from its call events instead).
    pub fn sessions(&self) -> Result<Vec<SessionSummary>> {
        let counts = self.session_counts(None)?;
        let totals = self.totals(None)?;
        Ok(counts
            .iter()
            .map(|c| summary::summarize(c, totals.get(&c.session_id)))
            .collect())
    }

    /// Every session as [`sessions`](Self::sessions) lists it, with the call totals summed
    /// from the stored call events instead of read from the session index. Slower (it
    /// reads every call event); it gives the same summaries, which makes it the check
    /// and the baseline of the stored totals.
    pub fn sessions_from_events(&self) -> Result<Vec<SessionSummary>> {
        let counts = self.session_counts(None)?;
        let totals = self.totals_from_events(None)?;
        Ok(counts
            .iter()
            .map(|c| summary::summarize(c, totals.get(&c.session_id)))
            .collect())
    }

    /// One session's summary.
    pub fn session(&self, session_id: &str) -> Result<SessionSummary> {
        let counts = self.session_counts(Some(session_id))?;
        let totals = self.totals(Some(session_id))?;
        Ok(summary::summarize(&counts[0], totals.get(session_id)))
    }

    /// The call totals of every session (or of one): stored ones where the store keeps
    /// them, rebuilt from the events where a stored one does not decode or the store is
    /// older than the stored totals.
    fn totals(&self, session_id: Option<&str>) -> Result<HashMap<String, SessionTotals>> {
        let Some(stored) = self.with_backend(|b| b.session_totals(session_id))? else {
            return self.totals_from_events(session_id);
        };
        let mut totals = HashMap::with_capacity(stored.len());
        for (id, json) in stored {
            let Some(json) = json else { continue };
            let session = match SessionTotals::from_json(&id, &json) {
                Some(session) => session,
                None => self
                    .totals_from_events(Some(&id))?
                    .remove(&id)
                    .unwrap_or_default(),
            };
            totals.insert(id, session);
        }
        Ok(totals)
    }

    /// The call totals of every session (or of one), summed from its call events.
    fn totals_from_events(
        &self,
        session_id: Option<&str>,
    ) -> Result<HashMap<String, SessionTotals>> {
        let query = EventQuery {
            session_id: session_id.map(str::to_owned),
            ..EventQuery::default()
        }
        .with_types(TOTALS_TYPES.iter().copied());
        let mut gather = Gather::default();
        self.scan(&query, |event| {
            if let Some(id) = event.row.session_id.as_deref() {
                gather.push(id, &event.row.body);
            }
            Ok(())
        })?;
        Ok(gather.finish())
    }

    /// Per-model and per-tool statistics of one session, or of the whole store, with a
    /// warning for each session covered that may be missing events.
    pub fn stats(&self, session_id: Option<&str>) -> Result<Stats> {
        // Distinguishes "no such session" from "a session without LLM calls".
        let counts = self.session_counts(session_id)?;
        let gaps = counts
            .iter()
            .filter_map(|c| c.status.gap_warning(&c.session_id, c.last_seq))
            .collect();
        let mut first_outputs: HashMap<String, i64> = HashMap::new();
        self.with_backend(|b| {
            b.first_times(OUTPUT_TYPES, session_id, &mut |request, ts| {
                first_outputs.insert(request, ts);
            })
        })?;
        let lookup = |request: &str| first_outputs.get(request).copied();
        let calls = self.session_calls(session_id, &lookup)?;
        let mut builder = summary::StatsBuilder::default();
        // Sessions in a fixed order, so equal inputs give equal figures.
        let mut ids: Vec<&String> = calls.keys().collect();
        ids.sort();
        for id in ids {
            builder.add(&calls[id]);
        }
        Ok(builder.finish(session_id.map(str::to_owned), gaps))
    }
}
