//! [`EventStore`]: open a store, query it, summarise it, start writers.

use std::sync::Mutex;

use crate::backend::{Backend, open_backend};
use crate::error::{Result, StoreError};
use crate::location::StoreLocation;
use crate::query::EventQuery;
use crate::row::StoredEvent;
use crate::summary::{self, SessionEvents, SessionSummary, Stats};
use crate::writer::{StoreWriter, WriterOptions};

/// An opened event store (SQLite or PostgreSQL), for reading and for starting writers.
///
/// Opening creates the store if it does not exist and migrates it to the latest schema;
/// a file that is not a database, a store with a newer schema and an unreachable server
/// are errors, and nothing is written to them.
///
/// Every method blocks the calling thread on the database; from async code use
/// `tokio::task::spawn_blocking`.
pub struct EventStore {
    location: StoreLocation,
    backend: Mutex<Box<dyn Backend>>,
}

impl std::fmt::Debug for EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore")
            .field("location", &self.location.to_string())
            .finish()
    }
}

impl EventStore {
    /// Opens the store at `url` (`sqlite://PATH`, a path, or `postgres://…`).
    pub fn open(url: &str) -> Result<Self> {
        Self::open_location(StoreLocation::parse(url)?)
    }

    /// Opens the store at `location`.
    pub fn open_location(location: StoreLocation) -> Result<Self> {
        let backend = open_backend(&location)?;
        Ok(Self {
            location,
            backend: Mutex::new(backend),
        })
    }

    /// Where the store is.
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    fn with_backend<T>(&self, f: impl FnOnce(&mut dyn Backend) -> Result<T>) -> Result<T> {
        // A panic while holding the lock leaves the connection usable: each call is
        // self-contained (transactions roll back when dropped).
        let mut guard = self.backend.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut **guard)
    }

    /// Starts a batching writer on a connection of its own.
    pub fn writer(&self, options: WriterOptions) -> Result<StoreWriter> {
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

    /// The events `query` selects, in store order.
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

    fn source_events(&self, session_id: Option<&str>) -> Result<Vec<(String, SessionEvents)>> {
        let query = EventQuery {
            session_id: session_id.map(str::to_owned),
            ..EventQuery::default()
        }
        .with_types(summary::SOURCE_TYPES.iter().copied());
        let mut sessions: Vec<(String, SessionEvents)> = Vec::new();
        let mut index = std::collections::HashMap::new();
        self.scan(&query, |event| {
            let id = event.row.session_id.clone().unwrap_or_default();
            let i = *index.entry(id.clone()).or_insert_with(|| {
                sessions.push((id, SessionEvents::default()));
                sessions.len() - 1
            });
            sessions[i].1.push(&event);
            Ok(())
        })?;
        Ok(sessions)
    }

    /// Every session, in order of its first event.
    pub fn sessions(&self) -> Result<Vec<SessionSummary>> {
        let counts = self.with_backend(|b| b.session_counts())?;
        let sources: std::collections::HashMap<String, SessionEvents> =
            self.source_events(None)?.into_iter().collect();
        Ok(counts
            .iter()
            .map(|c| summary::summarize(c, sources.get(&c.session_id)))
            .collect())
    }

    /// One session's summary.
    pub fn session(&self, session_id: &str) -> Result<SessionSummary> {
        let counts = self.with_backend(|b| b.session_counts())?;
        let counts = counts
            .iter()
            .find(|c| c.session_id == session_id)
            .ok_or_else(|| StoreError::UnknownSession(session_id.to_owned()))?;
        let sources = self.source_events(Some(session_id))?;
        Ok(summary::summarize(counts, sources.first().map(|(_, e)| e)))
    }

    /// Per-model and per-tool statistics of one session, or of the whole store.
    pub fn stats(&self, session_id: Option<&str>) -> Result<Stats> {
        if let Some(id) = session_id {
            // Distinguish "no such session" from "a session without LLM calls".
            self.session(id)?;
        }
        let sources = self.source_events(session_id)?;
        Ok(summary::stats(
            session_id.map(str::to_owned),
            sources.iter().map(|(_, e)| e),
        ))
    }
}
