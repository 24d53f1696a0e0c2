//! The store's schema and its versioned migrations, one list for both databases.
//!
//! Version history:
//! 1. The `events` table (one row per event: store `seq`, bus seq, event id, session id,
//!    type, timestamp in microseconds, request id, agent call id, wire JSON) and indexes on
//!    (session_id, seq), type, timestamp and request_id.
//! 2. An index on agent_call_id (agent-loop queries by agent call).
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
];

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
