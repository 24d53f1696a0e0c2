//! The SQLite backend: one database file in WAL mode.
//!
//! WAL with `synchronous=NORMAL`: a committed batch survives the process being killed
//! (SIGKILL) at any moment; a power loss may lose the last batches but never tears a row.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior, params};

use crate::backend::{Backend, SessionCounts};
use crate::error::{Result, StoreError};
use crate::migrations::{self, SCHEMA_TABLE_DDL};
use crate::query::{Dialect, EventQuery, SqlParam};
use crate::row::{EventRow, StoredEvent};

/// Rows per multi-row INSERT statement (9 parameters each, well under SQLite's limit).
const ROWS_PER_STATEMENT: usize = 64;

/// An event store in a SQLite file.
pub struct SqliteBackend {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteBackend {
    /// Opens (creating if missing) the store in `path` and migrates it up to `target`.
    ///
    /// A file that is not a SQLite database, a database of something else, or a store with
    /// a newer schema than this build knows is refused without writing anything to it.
    pub fn open(path: &Path, target: i64) -> Result<Self> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                context: "creating the store's directory",
                source,
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(StoreError::sqlite("opening the database"))?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(StoreError::sqlite("setting the busy timeout"))?;
        let location = format!("sqlite://{}", path.display());

        // Read before writing anything: this is where a non-database file shows.
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .and_then(|mut stmt| {
                stmt.query_map([], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| match e.sqlite_error_code() {
                Some(ErrorCode::NotADatabase) => StoreError::NotADatabase {
                    path: path.display().to_string(),
                    message: e.to_string(),
                },
                _ => StoreError::Sqlite {
                    context: "reading the schema",
                    source: e,
                },
            })?;
        let has_schema_table = tables.iter().any(|t| t == "agentbus_schema");
        if !tables.is_empty() && !has_schema_table {
            return Err(StoreError::ForeignDatabase { location });
        }
        let mut backend = Self {
            conn,
            path: path.to_owned(),
        };
        if has_schema_table {
            let found = backend.schema_version()?;
            migrations::check_supported(&location, found)?;
        }
        backend
            .conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(StoreError::sqlite("switching to WAL"))?;
        backend
            .conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(StoreError::sqlite("setting synchronous"))?;
        backend.migrate(target, &location)?;
        Ok(backend)
    }

    fn migrate(&mut self, target: i64, location: &str) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("starting the migration"))?;
        let exists: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'agentbus_schema')",
                [],
                |row| row.get(0),
            )
            .map_err(StoreError::sqlite("reading the schema"))?;
        if !exists {
            tx.execute_batch(SCHEMA_TABLE_DDL)
                .map_err(StoreError::sqlite("creating the schema table"))?;
        }
        let current: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM agentbus_schema",
                [],
                |row| row.get(0),
            )
            .map_err(StoreError::sqlite("reading the schema version"))?;
        // Another process may have upgraded the store between the check on opening and
        // this transaction.
        migrations::check_supported(location, current)?;
        for m in migrations::pending(current, target) {
            tracing::info!(
                version = m.version,
                description = m.description,
                "migrating store"
            );
            tx.execute_batch(m.sqlite)
                .map_err(StoreError::sqlite("applying a migration"))?;
            tx.execute(
                "INSERT INTO agentbus_schema (version, description, applied_at_us) VALUES (?1, ?2, ?3)",
                params![m.version, m.description, chrono::Utc::now().timestamp_micros()],
            )
            .map_err(StoreError::sqlite("recording a migration"))?;
        }
        tx.commit()
            .map_err(StoreError::sqlite("committing the migration"))
    }
}

fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO events (seq, bus_seq, event_id, session_id, type, ts_us, request_id, agent_call_id, body) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?,?,?,?)");
    }
    sql
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Option<i64>, EventRow)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        EventRow {
            bus_seq: None,
            event_id: row.get(2)?,
            session_id: row.get(3)?,
            event_type: row.get(4)?,
            timestamp_us: row.get(5)?,
            request_id: row.get(6)?,
            agent_call_id: row.get(7)?,
            body: row.get(8)?,
        },
    ))
}

pub(crate) fn to_stored(seq: i64, bus_seq: Option<i64>, mut row: EventRow) -> Result<StoredEvent> {
    let seq = u64::try_from(seq).map_err(|_| StoreError::MalformedRow {
        seq: 0,
        reason: format!("negative seq {seq}"),
    })?;
    row.bus_seq = match bus_seq {
        None => None,
        Some(b) => Some(u64::try_from(b).map_err(|_| StoreError::MalformedRow {
            seq,
            reason: format!("negative bus_seq {b}"),
        })?),
    };
    Ok(StoredEvent { seq, row })
}

impl Backend for SqliteBackend {
    fn location(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    fn schema_version(&mut self) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM agentbus_schema",
                [],
                |row| row.get(0),
            )
            .map_err(StoreError::sqlite("reading the schema version"))
    }

    fn append(&mut self, rows: &[EventRow]) -> Result<RangeInclusive<u64>> {
        if rows.is_empty() {
            #[allow(clippy::reversed_empty_ranges)]
            return Ok(1..=0);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("starting an append"))?;
        let last: i64 = tx
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |row| {
                row.get(0)
            })
            .map_err(StoreError::sqlite("reading the last seq"))?;
        let first = last + 1;
        let mut seq = first;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut stmt = tx
                .prepare_cached(&insert_sql(chunk.len()))
                .map_err(StoreError::sqlite("preparing the insert"))?;
            let mut index = 1;
            for row in chunk {
                let bind =
                    |stmt: &mut rusqlite::CachedStatement<'_>,
                     i: usize,
                     v: &dyn rusqlite::ToSql| { stmt.raw_bind_parameter(i, v) };
                bind(&mut stmt, index, &seq)
                    .and_then(|_| bind(&mut stmt, index + 1, &row.bus_seq.map(to_i64)))
                    .and_then(|_| bind(&mut stmt, index + 2, &row.event_id))
                    .and_then(|_| bind(&mut stmt, index + 3, &row.session_id))
                    .and_then(|_| bind(&mut stmt, index + 4, &row.event_type))
                    .and_then(|_| bind(&mut stmt, index + 5, &row.timestamp_us))
                    .and_then(|_| bind(&mut stmt, index + 6, &row.request_id))
                    .and_then(|_| bind(&mut stmt, index + 7, &row.agent_call_id))
                    .and_then(|_| bind(&mut stmt, index + 8, &row.body))
                    .map_err(StoreError::sqlite("binding a row"))?;
                index += 9;
                seq += 1;
            }
            stmt.raw_execute()
                .map_err(StoreError::sqlite("inserting rows"))?;
        }
        tx.commit()
            .map_err(StoreError::sqlite("committing an append"))?;
        // Seqs start at 1 and only grow, so both are positive.
        Ok(first as u64..=(seq - 1) as u64)
    }

    fn scan(
        &mut self,
        query: &EventQuery,
        each: &mut dyn FnMut(StoredEvent) -> Result<()>,
    ) -> Result<()> {
        let (clause, params) = query.to_sql(Dialect::Sqlite);
        let sql = format!(
            "SELECT seq, bus_seq, event_id, session_id, type, ts_us, request_id, agent_call_id, body FROM events{clause}"
        );
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .map_err(StoreError::sqlite("preparing a query"))?;
        for (i, p) in params.iter().enumerate() {
            match p {
                SqlParam::Text(s) => stmt.raw_bind_parameter(i + 1, s),
                SqlParam::Int(n) => stmt.raw_bind_parameter(i + 1, n),
            }
            .map_err(StoreError::sqlite("binding a query parameter"))?;
        }
        let mut rows = stmt.raw_query();
        while let Some(row) = rows.next().map_err(StoreError::sqlite("reading events"))? {
            let (seq, bus_seq, row) =
                read_row(row).map_err(StoreError::sqlite("reading an event"))?;
            each(to_stored(seq, bus_seq, row)?)?;
        }
        Ok(())
    }

    fn session_counts(&mut self) -> Result<Vec<SessionCounts>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT session_id, MIN(ts_us), MAX(ts_us), COUNT(*), MIN(seq) FROM events \
                 WHERE session_id IS NOT NULL GROUP BY session_id ORDER BY MIN(seq)",
            )
            .map_err(StoreError::sqlite("preparing the session query"))?;
        let rows = stmt
            .query_map([], |row| {
                Ok(SessionCounts {
                    session_id: row.get(0)?,
                    first_us: row.get(1)?,
                    last_us: row.get(2)?,
                    events: row.get::<_, i64>(3)?.max(0) as u64,
                    first_seq: row.get::<_, i64>(4)?.max(0) as u64,
                })
            })
            .map_err(StoreError::sqlite("listing sessions"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(StoreError::sqlite("listing sessions"))
    }

    fn last_seq(&mut self) -> Result<u64> {
        let last: i64 = self
            .conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |row| {
                row.get(0)
            })
            .map_err(StoreError::sqlite("reading the last seq"))?;
        Ok(last.max(0) as u64)
    }

    fn count(&mut self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))
            .map_err(StoreError::sqlite("counting events"))?;
        Ok(n.max(0) as u64)
    }
}
