//! The store's schema and its versioned migrations, one list for both databases.
//!
//! Version history:
//! 1. The `events` table (one row per event: store `seq`, bus seq, event id, session id,
//!    type, timestamp in microseconds, request id, agent call id, wire JSON) and indexes on
//!    (session_id, seq), type, timestamp and request_id.
//! 2. An index on agent_call_id (agent-loop queries by agent call).
//! 3. `agentbus_writers` (one row per writer: its process, and whether it closed cleanly,
//!    failed and gave up, or is still open) and `agentbus_sessions` (one row per session,
//!    kept up to date by every append in the same transaction: first/last seq and time,
//!    event count, the writer that last wrote to it), so listing sessions costs one row per
//!    session and a session cut short by a failing writer is known as such. Existing
//!    sessions are filled in from `events`.
//! 4. `agentbus_sessions.calls`: each session's call totals (LLM calls, tokens, cost,
//!    models per layer; see `totals.rs`), updated by every append in the same transaction,
//!    so listing sessions never reads their events. Existing sessions are filled in from
//!    their call events when the store is migrated.
//!
//! The applied version is recorded in `agentbus_schema` (one row per applied migration).
//! A store whose version is newer than [`LATEST_VERSION`] is refused untouched.

/// One migration: its version and the SQL for each database.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// The version this migration brings the store to.
    pub version: i64,
    /// What it does, in words.
    pub description: &'static str,
    /// The statements for SQLite.
    pub sqlite: &'static str,
    /// The statements for PostgreSQL.
    pub postgres: &'static str,
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "events table with session, type, time and request indexes",
        sqlite: "
            CREATE TABLE events (
                seq INTEGER PRIMARY KEY,
                bus_seq INTEGER,
                event_id TEXT NOT NULL,
                session_id TEXT,
                type TEXT NOT NULL,
                ts_us INTEGER NOT NULL,
                request_id TEXT,
                agent_call_id TEXT,
                body TEXT NOT NULL
            );
            CREATE INDEX events_session_seq ON events (session_id, seq);
            CREATE INDEX events_type ON events (type);
            CREATE INDEX events_ts ON events (ts_us);
            CREATE INDEX events_request ON events (request_id) WHERE request_id IS NOT NULL;
        ",
        postgres: "
            CREATE TABLE events (
                seq BIGINT PRIMARY KEY,
                bus_seq BIGINT,
                event_id TEXT NOT NULL,
                session_id TEXT,
                type TEXT NOT NULL,
                ts_us BIGINT NOT NULL,
                request_id TEXT,
                agent_call_id TEXT,
                body TEXT NOT NULL
            );
            CREATE INDEX events_session_seq ON events (session_id, seq);
            CREATE INDEX events_type ON events (type);
            CREATE INDEX events_ts ON events (ts_us);
            CREATE INDEX events_request ON events (request_id) WHERE request_id IS NOT NULL;
        ",
    },
    Migration {
        version: 2,
        description: "index on agent_call_id",
        sqlite: "CREATE INDEX events_agent_call ON events (agent_call_id) WHERE agent_call_id IS NOT NULL;",
        postgres: "CREATE INDEX events_agent_call ON events (agent_call_id) WHERE agent_call_id IS NOT NULL;",
    },
    Migration {
        version: 3,
        description: "writers and a per-session summary maintained on append",
        sqlite: "
            CREATE TABLE agentbus_writers (
                writer_id TEXT PRIMARY KEY,
                pid INTEGER NOT NULL,
                host TEXT NOT NULL,
                started_us INTEGER NOT NULL,
                state TEXT NOT NULL,
                lost INTEGER NOT NULL DEFAULT 0,
                error TEXT,
                ended_us INTEGER
            );
            CREATE TABLE agentbus_sessions (
                session_id TEXT PRIMARY KEY,
                first_seq INTEGER NOT NULL,
                last_seq INTEGER NOT NULL,
                first_us INTEGER NOT NULL,
                last_us INTEGER NOT NULL,
                events INTEGER NOT NULL,
                writer_id TEXT
            );
            CREATE INDEX agentbus_sessions_first_seq ON agentbus_sessions (first_seq);
            INSERT INTO agentbus_sessions (session_id, first_seq, last_seq, first_us, last_us, events)
                SELECT session_id, MIN(seq), MAX(seq), MIN(ts_us), MAX(ts_us), COUNT(*)
                FROM events WHERE session_id IS NOT NULL GROUP BY session_id;
        ",
        postgres: "
            CREATE TABLE agentbus_writers (
                writer_id TEXT PRIMARY KEY,
                pid BIGINT NOT NULL,
                host TEXT NOT NULL,
                started_us BIGINT NOT NULL,
                state TEXT NOT NULL,
                lost BIGINT NOT NULL DEFAULT 0,
                error TEXT,
                ended_us BIGINT
            );
            CREATE TABLE agentbus_sessions (
                session_id TEXT PRIMARY KEY,
                first_seq BIGINT NOT NULL,
                last_seq BIGINT NOT NULL,
                first_us BIGINT NOT NULL,
                last_us BIGINT NOT NULL,
                events BIGINT NOT NULL,
                writer_id TEXT
            );
            CREATE INDEX agentbus_sessions_first_seq ON agentbus_sessions (first_seq);
            INSERT INTO agentbus_sessions (session_id, first_seq, last_seq, first_us, last_us, events)
                SELECT session_id, MIN(seq), MAX(seq), MIN(ts_us), MAX(ts_us), COUNT(*)
                FROM events WHERE session_id IS NOT NULL GROUP BY session_id;
        ",
    },
    Migration {
        version: 4,
        description: "per-session call totals maintained on append",
        // The totals of sessions already stored are folded from their events by the
        // backend right after this statement, in the same transaction.
        sqlite: "ALTER TABLE agentbus_sessions ADD COLUMN calls TEXT;",
        postgres: "ALTER TABLE agentbus_sessions ADD COLUMN calls TEXT;",
    },
];

/// The first version with `agentbus_writers` and `agentbus_sessions`; older stores opened
/// read-only are listed from `events` directly and their sessions' status is unknown.
pub(crate) const JOURNAL_VERSION: i64 = 3;

/// The index behind [`Backend::append_new`](crate::Backend::append_new), created by the first
/// such append on a store rather than by a migration: every append pays for an index on
/// random UUIDs (about half the SQLite append rate), and only stores fed by an
/// at-least-once source (the NATS store writer) need it.
pub(crate) const EVENT_ID_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS events_event_id ON events (event_id)";

/// The newest schema version this build knows.
pub const LATEST_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// The table recording applied migrations (same DDL on both databases).
pub(crate) const SCHEMA_TABLE_DDL: &str = "CREATE TABLE agentbus_schema (version BIGINT PRIMARY KEY, description TEXT NOT NULL, applied_at_us BIGINT NOT NULL)";

/// Refuses a store whose schema `found` is newer than this build knows: opening it could
/// misread or overwrite what a newer agentbus wrote.
pub(crate) fn check_supported(location: &str, found: i64) -> Result<(), crate::StoreError> {
    if found > LATEST_VERSION {
        return Err(crate::StoreError::SchemaTooNew {
            location: location.to_owned(),
            found,
            supported: LATEST_VERSION,
        });
    }
    Ok(())
}

/// The migrations to apply to bring a store at `current` to `target`.
pub(crate) fn pending(current: i64, target: i64) -> impl Iterator<Item = &'static Migration> {
    MIGRATIONS
        .iter()
        .filter(move |m| m.version > current && m.version <= target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_by_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
        }
        assert_eq!(pending(1, LATEST_VERSION).count(), MIGRATIONS.len() - 1);
    }
}
