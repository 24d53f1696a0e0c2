//! The SQLite backend: one database file in WAL mode.
//!
//! WAL with `synchronous=NORMAL`: a committed batch survives the process being killed
//! (SIGKILL) at any moment; a power loss may lose the last batches but never tears a row.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior, params};

use crate::backend::{Backend, SessionCounts, StoredTotals};
use crate::error::{Result, StoreError};
use crate::migrations::{self, JOURNAL_VERSION, SCHEMA_TABLE_DDL};
use crate::query::{Dialect, EventQuery, SqlParam};
use crate::row::{
    COLUMN_COUNT, COLUMNS, EventRow, StoredEvent, session_deltas, to_i64, to_stored, unstored_rows,
};
use crate::status::{self, SessionStatus, WriterEnd, WriterRow};
use crate::totals::{self, Gather, SessionTotals, TOTALS_VERSION};

/// Rows per multi-row INSERT statement (9 parameters each: 9,000, well under SQLite's
/// 32,766). 64 made the writer 0.72-0.84x of a plain 1,000-row insert; 1,000 makes it
/// 0.85-0.89x (`bench store`, same run).
const ROWS_PER_STATEMENT: usize = 1000;

/// How long a writer waits for another writer's transaction before failing.
const WRITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a read waits for a lock before reporting the store locked. Readers of a WAL
/// store are never blocked by writers; only an exclusive lock (a connection in exclusive
/// locking mode, a store in rollback-journal mode being written) stops them.
const READ_BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// An event store in a SQLite file.
pub struct SqliteBackend {
    conn: Connection,
    path: PathBuf,
    /// The schema version (fixed once opened).
    version: i64,
    /// The writer registered on this connection, named in `agentbus_sessions`.
    writer_id: Option<String>,
    /// Whether `events_event_id` is known to exist (see `migrations::EVENT_ID_INDEX`).
    event_id_indexed: bool,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("path", &self.path)
            .finish()
    }
}

fn location_of(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// The names of the tables in the database: the first read, where a file that is not a
/// database or a lock shows.
fn table_names(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
}

fn is_locked(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// The error for a first read that failed.
fn open_error(path: &Path, e: rusqlite::Error, waited: Duration) -> StoreError {
    if is_locked(&e) {
        let holders = status::holders_of(path);
        return StoreError::Locked {
            location: location_of(path),
            holders: if holders.is_empty() {
                String::new()
            } else {
                format!(" (held open by {})", holders.join(", "))
            },
            waited_ms: waited.as_millis() as u64,
        };
    }
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => StoreError::NotADatabase {
            path: path.display().to_string(),
            message: e.to_string(),
        },
        _ => StoreError::Sqlite {
            context: "reading the schema",
            source: e,
        },
    }
}

/// `path` as an SQLite URI opening the file immutable (no locks, no `-shm`): for a store
/// in a directory this process cannot write.
fn immutable_uri(path: &Path) -> Result<String> {
    let absolute = std::path::absolute(path).map_err(|source| StoreError::Io {
        context: "resolving the store's path",
        source,
    })?;
    let mut uri = String::from("file:");
    for byte in absolute.as_os_str().as_encoded_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                uri.push(*byte as char)
            }
            other => uri.push_str(&format!("%{other:02X}")),
        }
    }
    uri.push_str("?immutable=1");
    Ok(uri)
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
        conn.busy_timeout(WRITE_BUSY_TIMEOUT)
            .map_err(StoreError::sqlite("setting the busy timeout"))?;
        let location = location_of(path);

        // Read before writing anything: this is where a non-database file shows.
        let tables = table_names(&conn).map_err(|e| open_error(path, e, WRITE_BUSY_TIMEOUT))?;
        let has_schema_table = tables.iter().any(|t| t == "agentbus_schema");
        if !tables.is_empty() && !has_schema_table {
            return Err(StoreError::ForeignDatabase { location });
        }
        let mut backend = Self {
            conn,
            path: path.to_owned(),
            version: 0,
            writer_id: None,
            event_id_indexed: false,
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
        backend.version = backend.schema_version()?;
        Ok(backend)
    }

    /// Opens the existing store in `path` for reading only (see
    /// [`open_backend_read_only`](crate::open_backend_read_only)).
    pub fn open_read_only(path: &Path) -> Result<Self> {
        let location = location_of(path);
        if !path.is_file() {
            return Err(StoreError::NotFound { location });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let open = |target: &str| -> Result<(Connection, rusqlite::Result<Vec<String>>)> {
            let conn = Connection::open_with_flags(target, flags)
                .map_err(StoreError::sqlite("opening the database"))?;
            conn.busy_timeout(READ_BUSY_TIMEOUT)
                .map_err(StoreError::sqlite("setting the busy timeout"))?;
            let tables = table_names(&conn);
            Ok((conn, tables))
        };
        let target = path.to_string_lossy();
        let (mut conn, mut tables) = open(&target)?;
        if let Err(e) = &tables
            && matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly)
            )
        {
            // A WAL store in a directory we cannot write, whose `-shm` file does not exist
            // (its writer closed): read it as an immutable file instead.
            tracing::debug!(error = %e, %location, "reading the store as an immutable file");
            (conn, tables) = open(&immutable_uri(path)?)?;
        }
        let tables = tables.map_err(|e| open_error(path, e, READ_BUSY_TIMEOUT))?;
        if !tables.iter().any(|t| t == "agentbus_schema") {
            return Err(if tables.is_empty() {
                StoreError::NoStore { location }
            } else {
                StoreError::ForeignDatabase { location }
            });
        }
        let mut backend = Self {
            conn,
            path: path.to_owned(),
            version: 0,
            writer_id: None,
            event_id_indexed: false,
        };
        let found = backend.schema_version()?;
        migrations::check_supported(&location, found)?;
        backend.version = found;
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
            if m.version == TOTALS_VERSION {
                for (session_id, totals) in gather_totals(&tx, None)? {
                    write_totals(&tx, &session_id, &totals)?;
                }
            }
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

/// The call totals of every session (or of one), folded from its stored call events.
fn gather_totals(
    conn: &Connection,
    session_id: Option<&str>,
) -> Result<std::collections::HashMap<String, SessionTotals>> {
    let sql = totals::call_events_sql("?1", session_id.is_some());
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(StoreError::sqlite("preparing the call-event query"))?;
    let mut rows = match session_id {
        Some(id) => stmt.query([id]),
        None => stmt.query([]),
    }
    .map_err(StoreError::sqlite("reading call events"))?;
    let mut gather = Gather::default();
    while let Some(row) = rows
        .next()
        .map_err(StoreError::sqlite("reading call events"))?
    {
        let session_id: String = row
            .get(0)
            .map_err(StoreError::sqlite("reading a call event"))?;
        let body: String = row
            .get(1)
            .map_err(StoreError::sqlite("reading a call event"))?;
        gather.push(&session_id, &body);
    }
    Ok(gather.finish())
}

fn write_totals(conn: &Connection, session_id: &str, totals: &SessionTotals) -> Result<()> {
    conn.prepare_cached("UPDATE agentbus_sessions SET calls = ?2 WHERE session_id = ?1")
        .and_then(|mut stmt| stmt.execute(params![session_id, totals.to_json()]))
        .map_err(StoreError::sqlite("writing a session's call totals"))?;
    Ok(())
}

/// Folds the call events of an appended batch (already inserted) into their sessions'
/// stored totals.
fn update_totals(conn: &Connection, rows: &[EventRow]) -> Result<()> {
    for (session_id, events) in totals::batch_events(rows) {
        let current: Option<String> = conn
            .prepare_cached("SELECT calls FROM agentbus_sessions WHERE session_id = ?1")
            .and_then(|mut stmt| stmt.query_row([session_id], |row| row.get(0)))
            .map_err(StoreError::sqlite("reading a session's call totals"))?;
        let totals = match totals::updated(session_id, current.as_deref(), &events) {
            Some(totals) => totals,
            None => gather_totals(conn, Some(session_id))?
                .remove(session_id)
                .unwrap_or_default(),
        };
        write_totals(conn, session_id, &totals)?;
    }
    Ok(())
}

/// Which of `rows`' event ids the store holds: one `IN` query per
/// [`ROWS_PER_STATEMENT`] ids instead of a lookup per row.
fn stored_ids(
    tx: &rusqlite::Transaction<'_>,
    rows: &[EventRow],
) -> Result<std::collections::HashSet<String>> {
    let mut stored = std::collections::HashSet::new();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let placeholders = vec!["?"; chunk.len()].join(",");
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT event_id FROM events WHERE event_id IN ({placeholders})"
            ))
            .map_err(StoreError::sqlite("preparing the event id check"))?;
        let ids = stmt
            .query_map(
                rusqlite::params_from_iter(chunk.iter().map(|row| row.event_id.as_str())),
                |row| row.get::<_, String>(0),
            )
            .map_err(StoreError::sqlite("checking event ids"))?;
        for id in ids {
            stored.insert(id.map_err(StoreError::sqlite("checking event ids"))?);
        }
    }
    Ok(stored)
}

fn insert_sql(rows: usize) -> String {
    let mut sql = format!("INSERT INTO events ({COLUMNS}) VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..COLUMN_COUNT {
            if c > 0 {
                sql.push(',');
            }
            sql.push('?');
        }
        sql.push(')');
    }
    sql
}

const UPSERT_SESSION: &str = "INSERT INTO agentbus_sessions \
     (session_id, first_seq, last_seq, first_us, last_us, events, writer_id) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
     ON CONFLICT (session_id) DO UPDATE SET \
     last_seq = excluded.last_seq, \
     first_us = MIN(agentbus_sessions.first_us, excluded.first_us), \
     last_us = MAX(agentbus_sessions.last_us, excluded.last_us), \
     events = agentbus_sessions.events + excluded.events, \
     writer_id = COALESCE(excluded.writer_id, agentbus_sessions.writer_id)";

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Option<i64>, EventRow)> {
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

fn count(value: i64) -> u64 {
    value.max(0) as u64
}

impl SqliteBackend {
    /// The body of [`Backend::append`] and [`Backend::append_new`]: with `skip_known`,
    /// rows whose event id is stored (or repeated in `rows`) are left out, checked inside
    /// the same immediate transaction.
    fn append_rows(&mut self, rows: &[EventRow], skip_known: bool) -> Result<RangeInclusive<u64>> {
        if rows.is_empty() {
            #[allow(clippy::reversed_empty_ranges)]
            return Ok(1..=0);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("starting an append"))?;
        let kept;
        let rows = if skip_known {
            if !self.event_id_indexed {
                tx.execute_batch(crate::migrations::EVENT_ID_INDEX)
                    .map_err(StoreError::sqlite("creating the event id index"))?;
            }
            let stored = stored_ids(&tx, rows)?;
            kept = unstored_rows(rows, &stored);
            if kept.is_empty() {
                #[allow(clippy::reversed_empty_ranges)]
                return Ok(1..=0);
            }
            &kept[..]
        } else {
            rows
        };
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
                index += COLUMN_COUNT;
                seq += 1;
            }
            stmt.raw_execute()
                .map_err(StoreError::sqlite("inserting rows"))?;
        }
        if self.version >= JOURNAL_VERSION {
            let mut stmt = tx
                .prepare_cached(UPSERT_SESSION)
                .map_err(StoreError::sqlite("preparing the session update"))?;
            for d in session_deltas(rows, first) {
                stmt.execute(params![
                    d.session_id,
                    d.first_seq,
                    d.last_seq,
                    d.first_us,
                    d.last_us,
                    d.events,
                    self.writer_id
                ])
                .map_err(StoreError::sqlite("updating the session index"))?;
            }
        }
        if self.version >= TOTALS_VERSION {
            update_totals(&tx, rows)?;
        }
        tx.commit()
            .map_err(StoreError::sqlite("committing an append"))?;
        if skip_known {
            self.event_id_indexed = true;
        }
        // Seqs start at 1 and only grow, so both are positive.
        Ok(first as u64..=(seq - 1) as u64)
    }
}

impl Backend for SqliteBackend {
    fn location(&self) -> String {
        location_of(&self.path)
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
        self.append_rows(rows, false)
    }

    fn append_new(&mut self, rows: &[EventRow]) -> Result<usize> {
        let range = self.append_rows(rows, true)?;
        Ok(range.count())
    }

    fn begin_writer(&mut self, writer_id: &str) -> Result<()> {
        if self.version >= JOURNAL_VERSION {
            self.conn
                .execute(
                    "INSERT INTO agentbus_writers (writer_id, pid, host, started_us, state) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        writer_id,
                        std::process::id(),
                        status::this_host(),
                        chrono::Utc::now().timestamp_micros(),
                        status::STATE_WRITING
                    ],
                )
                .map_err(StoreError::sqlite("recording the writer"))?;
        }
        self.writer_id = Some(writer_id.to_owned());
        Ok(())
    }

    fn end_writer(&mut self, end: &WriterEnd) -> Result<()> {
        let Some(writer_id) = self.writer_id.clone() else {
            return Ok(());
        };
        if self.version < JOURNAL_VERSION {
            return Ok(());
        }
        let (lost, error) = match end {
            WriterEnd::Closed => (0, None),
            WriterEnd::Failed { lost, error } => (to_i64(*lost), Some(error.as_str())),
        };
        let ended_us = chrono::Utc::now().timestamp_micros();
        let update = |conn: &Connection| {
            conn.execute(
                "UPDATE agentbus_writers SET state = ?1, lost = ?2, error = ?3, ended_us = ?4 \
                 WHERE writer_id = ?5",
                params![end.state(), lost, error, ended_us, writer_id],
            )
        };
        if let Err(first) = update(&self.conn) {
            // On a full disk the write-ahead log cannot grow; after a checkpoint it is
            // written from its start again, in space it already has.
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()));
            update(&self.conn).map_err(|_| StoreError::Sqlite {
                context: "recording the writer's end",
                source: first,
            })?;
        }
        Ok(())
    }

    fn scan(
        &mut self,
        query: &EventQuery,
        each: &mut dyn FnMut(StoredEvent) -> Result<()>,
    ) -> Result<()> {
        let (clause, params) = query.to_sql(Dialect::Sqlite);
        let sql = format!("SELECT {COLUMNS} FROM events{clause}");
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

    fn first_times(
        &mut self,
        types: &[&str],
        session_id: Option<&str>,
        each: &mut dyn FnMut(String, i64),
    ) -> Result<()> {
        let mut params: Vec<&str> = types.to_vec();
        let placeholders: Vec<String> = (1..=types.len()).map(|i| format!("?{i}")).collect();
        let mut sql = format!(
            "SELECT request_id, MIN(ts_us) FROM events WHERE request_id IS NOT NULL AND type IN ({})",
            placeholders.join(", ")
        );
        if let Some(id) = session_id {
            params.push(id);
            sql.push_str(&format!(" AND session_id = ?{}", params.len()));
        }
        sql.push_str(" GROUP BY request_id");
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .map_err(StoreError::sqlite("preparing the first-output query"))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .map_err(StoreError::sqlite("reading first outputs"))?;
        while let Some(row) = rows
            .next()
            .map_err(StoreError::sqlite("reading first outputs"))?
        {
            let request: String = row
                .get(0)
                .map_err(StoreError::sqlite("reading first outputs"))?;
            let ts: i64 = row
                .get(1)
                .map_err(StoreError::sqlite("reading first outputs"))?;
            each(request, ts);
        }
        Ok(())
    }

    fn session_counts(&mut self, session_id: Option<&str>) -> Result<Vec<SessionCounts>> {
        if self.version < JOURNAL_VERSION {
            // A store not migrated yet (opened read-only): count from the events.
            let filter = if session_id.is_some() {
                "session_id = ?1"
            } else {
                "session_id IS NOT NULL"
            };
            let mut stmt = self
                .conn
                .prepare_cached(&format!(
                    "SELECT session_id, MIN(ts_us), MAX(ts_us), COUNT(*), MIN(seq), MAX(seq) \
                     FROM events WHERE {filter} GROUP BY session_id ORDER BY MIN(seq)"
                ))
                .map_err(StoreError::sqlite("preparing the session query"))?;
            let map = |row: &rusqlite::Row<'_>| {
                Ok(SessionCounts {
                    session_id: row.get(0)?,
                    first_us: row.get(1)?,
                    last_us: row.get(2)?,
                    events: count(row.get(3)?),
                    first_seq: count(row.get(4)?),
                    last_seq: count(row.get(5)?),
                    status: SessionStatus::Unknown,
                })
            };
            let rows = match session_id {
                Some(id) => stmt.query_map([id], map),
                None => stmt.query_map([], map),
            }
            .map_err(StoreError::sqlite("listing sessions"))?;
            return rows
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(StoreError::sqlite("listing sessions"));
        }
        let filter = if session_id.is_some() {
            " WHERE s.session_id = ?1"
        } else {
            ""
        };
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT s.session_id, s.first_us, s.last_us, s.events, s.first_seq, s.last_seq, \
                 w.pid, w.host, w.state, w.lost, w.error \
                 FROM agentbus_sessions s LEFT JOIN agentbus_writers w ON w.writer_id = s.writer_id\
                 {filter} ORDER BY s.first_seq"
            ))
            .map_err(StoreError::sqlite("preparing the session query"))?;
        let map = |row: &rusqlite::Row<'_>| {
            let writer = match row.get::<_, Option<i64>>(6)? {
                Some(pid) => Some(WriterRow {
                    pid,
                    host: row.get(7)?,
                    state: row.get(8)?,
                    lost: row.get(9)?,
                    error: row.get(10)?,
                }),
                None => None,
            };
            Ok(SessionCounts {
                session_id: row.get(0)?,
                first_us: row.get(1)?,
                last_us: row.get(2)?,
                events: count(row.get(3)?),
                first_seq: count(row.get(4)?),
                last_seq: count(row.get(5)?),
                status: writer.map(|w| w.status()).unwrap_or(SessionStatus::Unknown),
            })
        };
        let rows = match session_id {
            Some(id) => stmt.query_map([id], map),
            None => stmt.query_map([], map),
        }
        .map_err(StoreError::sqlite("listing sessions"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(StoreError::sqlite("listing sessions"))
    }

    fn session_totals(&mut self, session_id: Option<&str>) -> Result<Option<Vec<StoredTotals>>> {
        if self.version < TOTALS_VERSION {
            return Ok(None);
        }
        let filter = if session_id.is_some() {
            " WHERE session_id = ?1"
        } else {
            ""
        };
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT session_id, calls FROM agentbus_sessions{filter}"
            ))
            .map_err(StoreError::sqlite("preparing the call-totals query"))?;
        let map = |row: &rusqlite::Row<'_>| Ok((row.get(0)?, row.get(1)?));
        let rows = match session_id {
            Some(id) => stmt.query_map([id], map),
            None => stmt.query_map([], map),
        }
        .map_err(StoreError::sqlite("reading call totals"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map(Some)
            .map_err(StoreError::sqlite("reading call totals"))
    }

    fn last_seq(&mut self) -> Result<u64> {
        let last: i64 = self
            .conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |row| {
                row.get(0)
            })
            .map_err(StoreError::sqlite("reading the last seq"))?;
        Ok(count(last))
    }

    fn count(&mut self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))
            .map_err(StoreError::sqlite("counting events"))?;
        Ok(count(n))
    }
}
