//! The PostgreSQL backend: a store shared by several processes or machines.
//!
//! Appends take an exclusive lock on the `events` table for the length of one batch
//! transaction (readers are not blocked), read the last `seq` and write the batch with a
//! binary `COPY`, so concurrent writers still produce one gap-free sequence. Connections
//! are made without TLS (`sslmode=require` is refused with a clear error).

use std::ops::RangeInclusive;
use std::time::Duration;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use postgres::{Client, Config, GenericClient, NoTls};

use crate::backend::{Backend, SessionCounts, StoredTotals};
use crate::error::{Result, StoreError};
use crate::location::mask_url;
use crate::migrations::{self, JOURNAL_VERSION, SCHEMA_TABLE_DDL};
use crate::query::{Dialect, EventQuery, SqlParam};
use crate::row::{
    COLUMNS, EventRow, StoredEvent, session_deltas, to_i64, to_stored, unstored_rows,
};
use crate::status::{self, SessionStatus, WriterEnd, WriterRow};
use crate::totals::{self, Gather, SessionTotals, TOTALS_VERSION};

/// How long to wait for the server when the URL does not say (`connect_timeout=`).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An event store in a PostgreSQL database (optionally in its own schema).
///
/// The synchronous client runs a small runtime of its own, which must not be started from
/// inside another tokio runtime; called from a thread that is in one, each operation (and
/// the final disconnect) runs on a short-lived helper thread instead, so the backend works
/// from both plain threads and async code.
pub struct PostgresBackend {
    conn: Option<Connection>,
    location: String,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("location", &self.location)
            .finish()
    }
}

/// Runs `f` here, or on a helper thread when this thread is inside a tokio runtime.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

impl PostgresBackend {
    /// Connects to `url`, selects (creating if missing) `schema`, and migrates the store up
    /// to `target`. A store with a newer schema than this build knows is refused untouched.
    pub fn open(url: &str, schema: Option<&str>, target: i64) -> Result<Self> {
        let conn = off_runtime(|| Connection::open(url, schema, Some(target)))?;
        Ok(Self {
            location: conn.location.clone(),
            conn: Some(conn),
        })
    }

    /// Connects to the existing store at `url` (in `schema`) for reading only: no schema
    /// is created, nothing migrated, and the session is read-only (see
    /// [`open_backend_read_only`](crate::open_backend_read_only)).
    pub fn open_read_only(url: &str, schema: Option<&str>) -> Result<Self> {
        let conn = off_runtime(|| Connection::open(url, schema, None))?;
        Ok(Self {
            location: conn.location.clone(),
            conn: Some(conn),
        })
    }

    fn with<T: Send>(&mut self, f: impl FnOnce(&mut Connection) -> Result<T> + Send) -> Result<T> {
        match self.conn.as_mut() {
            Some(conn) => off_runtime(|| f(conn)),
            // Only `drop` takes the connection.
            None => Err(StoreError::Closed),
        }
    }
}

impl Drop for PostgresBackend {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            off_runtime(move || drop(conn));
        }
    }
}

impl Backend for PostgresBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn schema_version(&mut self) -> Result<i64> {
        self.with(|c| c.schema_version())
    }

    fn append(&mut self, rows: &[EventRow]) -> Result<RangeInclusive<u64>> {
        self.with(|c| c.append(rows, false))
    }

    fn append_new(&mut self, rows: &[EventRow]) -> Result<usize> {
        self.with(|c| c.append(rows, true))
            .map(|range| range.count())
    }

    fn begin_writer(&mut self, writer_id: &str) -> Result<()> {
        self.with(|c| c.begin_writer(writer_id))
    }

    fn end_writer(&mut self, end: &WriterEnd) -> Result<()> {
        self.with(|c| c.end_writer(end))
    }

    fn scan(
        &mut self,
        query: &EventQuery,
        each: &mut dyn FnMut(StoredEvent) -> Result<()>,
    ) -> Result<()> {
        if tokio::runtime::Handle::try_current().is_err() {
            return match self.conn.as_mut() {
                Some(conn) => conn.scan(query, each),
                None => Err(StoreError::Closed),
            };
        }
        // `each` may not be sendable to the helper thread: collect, then call it here.
        let rows = self.with(|c| {
            let mut rows = Vec::new();
            c.scan(query, &mut |e| {
                rows.push(e);
                Ok(())
            })?;
            Ok(rows)
        })?;
        rows.into_iter().try_for_each(each)
    }

    fn first_times(
        &mut self,
        types: &[&str],
        session_id: Option<&str>,
        each: &mut dyn FnMut(String, i64),
    ) -> Result<()> {
        let rows = self.with(|c| c.first_times(types, session_id))?;
        for (request, ts) in rows {
            each(request, ts);
        }
        Ok(())
    }

    fn session_counts(&mut self, session_id: Option<&str>) -> Result<Vec<SessionCounts>> {
        self.with(|c| c.session_counts(session_id))
    }

    fn session_totals(&mut self, session_id: Option<&str>) -> Result<Option<Vec<StoredTotals>>> {
        self.with(|c| c.session_totals(session_id))
    }

    fn last_seq(&mut self) -> Result<u64> {
        self.with(|c| c.last_seq())
    }

    fn count(&mut self) -> Result<u64> {
        self.with(|c| c.count())
    }
}

/// The connection and the SQL; [`PostgresBackend`] decides which thread runs it.
struct Connection {
    client: Client,
    location: String,
    /// The schema version (fixed once opened).
    version: i64,
    /// The writer registered on this connection, named in `agentbus_sessions`.
    writer_id: Option<String>,
    /// Whether `events_event_id` is known to exist (see `migrations::EVENT_ID_INDEX`).
    event_id_indexed: bool,
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Connection {
    /// Connects; with `target`, creates the schema if needed and migrates up to `target`;
    /// without, opens read-only and refuses a database without a store.
    fn open(url: &str, schema: Option<&str>, target: Option<i64>) -> Result<Self> {
        let mut location = mask_url(url);
        if let Some(schema) = schema {
            location.push_str(&format!(" (schema {schema})"));
        }
        let mut config: Config =
            url.parse()
                .map_err(|e: postgres::Error| StoreError::InvalidUrl {
                    url: mask_url(url),
                    reason: e.to_string(),
                })?;
        if config.get_ssl_mode() == postgres::config::SslMode::Require {
            return Err(StoreError::InvalidUrl {
                url: mask_url(url),
                reason:
                    "TLS connections are not supported by this build; use sslmode=disable or prefer"
                        .into(),
            });
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        let mut client = config.connect(NoTls).map_err(|e| StoreError::Connect {
            location: location.clone(),
            message: e.to_string(),
        })?;
        if let Some(schema) = schema {
            let quoted = quote_ident(schema);
            let sql = if target.is_some() {
                format!("CREATE SCHEMA IF NOT EXISTS {quoted}; SET search_path TO {quoted}")
            } else {
                format!("SET search_path TO {quoted}")
            };
            client
                .batch_execute(&sql)
                .map_err(StoreError::postgres("selecting the schema"))?;
        }
        if target.is_none() {
            // A reader never writes, and never waits long on a lock.
            client
                .batch_execute("SET default_transaction_read_only = on; SET lock_timeout = '2s'")
                .map_err(StoreError::postgres("making the session read-only"))?;
        }
        let mut backend = Self {
            client,
            location,
            version: 0,
            writer_id: None,
            event_id_indexed: false,
        };
        let has_store = backend.has_schema_table()?;
        if has_store {
            let found = backend.schema_version()?;
            migrations::check_supported(&backend.location, found)?;
        }
        match target {
            Some(target) => backend.migrate(target)?,
            None if !has_store => {
                return Err(StoreError::NotFound {
                    location: backend.location,
                });
            }
            None => {}
        }
        backend.version = backend.schema_version()?;
        Ok(backend)
    }

    fn has_schema_table(&mut self) -> Result<bool> {
        let row = self
            .client
            .query_one("SELECT to_regclass('agentbus_schema') IS NOT NULL", &[])
            .map_err(StoreError::postgres("reading the schema"))?;
        Ok(row.get(0))
    }

    fn migrate(&mut self, target: i64) -> Result<()> {
        let location = self.location.clone();
        let mut tx = self
            .client
            .transaction()
            .map_err(StoreError::postgres("starting the migration"))?;
        // Serialise concurrent migrations of the same schema.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema()))",
            &[],
        )
        .map_err(StoreError::postgres("locking for the migration"))?;
        let exists: bool = tx
            .query_one("SELECT to_regclass('agentbus_schema') IS NOT NULL", &[])
            .map_err(StoreError::postgres("reading the schema"))?
            .get(0);
        if !exists {
            tx.batch_execute(SCHEMA_TABLE_DDL)
                .map_err(StoreError::postgres("creating the schema table"))?;
        }
        let current: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0)::BIGINT FROM agentbus_schema",
                &[],
            )
            .map_err(StoreError::postgres("reading the schema version"))?
            .get(0);
        migrations::check_supported(&location, current)?;
        for m in migrations::pending(current, target) {
            tracing::info!(
                version = m.version,
                description = m.description,
                "migrating store"
            );
            tx.batch_execute(m.postgres)
                .map_err(StoreError::postgres("applying a migration"))?;
            if m.version == TOTALS_VERSION {
                for (session_id, totals) in gather_totals(&mut tx, None)? {
                    write_totals(&mut tx, &session_id, &totals)?;
                }
            }
            tx.execute(
                "INSERT INTO agentbus_schema (version, description, applied_at_us) VALUES ($1, $2, $3)",
                &[&m.version, &m.description, &chrono::Utc::now().timestamp_micros()],
            )
            .map_err(StoreError::postgres("recording a migration"))?;
        }
        tx.commit()
            .map_err(StoreError::postgres("committing the migration"))
    }
}

const UPSERT_SESSION: &str = "INSERT INTO agentbus_sessions \
     (session_id, first_seq, last_seq, first_us, last_us, events, writer_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (session_id) DO UPDATE SET \
     last_seq = excluded.last_seq, \
     first_us = LEAST(agentbus_sessions.first_us, excluded.first_us), \
     last_us = GREATEST(agentbus_sessions.last_us, excluded.last_us), \
     events = agentbus_sessions.events + excluded.events, \
     writer_id = COALESCE(excluded.writer_id, agentbus_sessions.writer_id)";

/// The call totals of every session (or of one), folded from its stored call events.
fn gather_totals(
    client: &mut impl GenericClient,
    session_id: Option<&str>,
) -> Result<std::collections::HashMap<String, SessionTotals>> {
    let sql = totals::call_events_sql("$1", session_id.is_some());
    let params: Vec<&str> = session_id.into_iter().collect();
    let mut rows = client
        .query_raw(&sql, params)
        .map_err(StoreError::postgres("reading call events"))?;
    let mut gather = Gather::default();
    while let Some(row) = rows
        .next()
        .map_err(StoreError::postgres("reading call events"))?
    {
        let session_id: String = row
            .try_get(0)
            .map_err(StoreError::postgres("reading a call event"))?;
        let body: String = row
            .try_get(1)
            .map_err(StoreError::postgres("reading a call event"))?;
        gather.push(&session_id, &body);
    }
    Ok(gather.finish())
}

fn write_totals(
    client: &mut impl GenericClient,
    session_id: &str,
    totals: &SessionTotals,
) -> Result<()> {
    client
        .execute(
            "UPDATE agentbus_sessions SET calls = $2 WHERE session_id = $1",
            &[&session_id, &totals.to_json()],
        )
        .map_err(StoreError::postgres("writing a session's call totals"))?;
    Ok(())
}

/// Folds the call events of an appended batch (already copied in) into their sessions'
/// stored totals. The append's table lock keeps concurrent writers out meanwhile.
fn update_totals(client: &mut impl GenericClient, rows: &[EventRow]) -> Result<()> {
    for (session_id, events) in totals::batch_events(rows) {
        let current: Option<String> = client
            .query_one(
                "SELECT calls FROM agentbus_sessions WHERE session_id = $1",
                &[&session_id],
            )
            .and_then(|row| row.try_get(0))
            .map_err(StoreError::postgres("reading a session's call totals"))?;
        let totals = match totals::updated(session_id, current.as_deref(), &events) {
            Some(totals) => totals,
            None => gather_totals(client, Some(session_id))?
                .remove(session_id)
                .unwrap_or_default(),
        };
        write_totals(client, session_id, &totals)?;
    }
    Ok(())
}

fn count(value: i64) -> u64 {
    value.max(0) as u64
}

impl Connection {
    fn schema_version(&mut self) -> Result<i64> {
        let row = self
            .client
            .query_one(
                "SELECT COALESCE(MAX(version), 0)::BIGINT FROM agentbus_schema",
                &[],
            )
            .map_err(StoreError::postgres("reading the schema version"))?;
        Ok(row.get(0))
    }

    /// Appends `rows`; with `skip_known`, leaves out rows whose event id is stored (or
    /// repeated in `rows`), checked under the same table lock.
    fn append(&mut self, rows: &[EventRow], skip_known: bool) -> Result<RangeInclusive<u64>> {
        if rows.is_empty() {
            #[allow(clippy::reversed_empty_ranges)]
            return Ok(1..=0);
        }
        let mut tx = self
            .client
            .transaction()
            .map_err(StoreError::postgres("starting an append"))?;
        tx.batch_execute("LOCK TABLE events IN EXCLUSIVE MODE")
            .map_err(StoreError::postgres("locking the events table"))?;
        let kept;
        let rows = if skip_known {
            if !self.event_id_indexed {
                tx.batch_execute(crate::migrations::EVENT_ID_INDEX)
                    .map_err(StoreError::postgres("creating the event id index"))?;
            }
            let ids: Vec<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
            let stored: std::collections::HashSet<String> = tx
                .query(
                    "SELECT event_id FROM events WHERE event_id = ANY($1)",
                    &[&ids],
                )
                .map_err(StoreError::postgres("checking event ids"))?
                .iter()
                .map(|row| row.get(0))
                .collect();
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
            .query_one("SELECT COALESCE(MAX(seq), 0)::BIGINT FROM events", &[])
            .map_err(StoreError::postgres("reading the last seq"))?
            .get(0);
        let first = last + 1;
        let sink = tx
            .copy_in(&format!("COPY events ({COLUMNS}) FROM STDIN BINARY"))
            .map_err(StoreError::postgres("starting the copy"))?;
        let types = [
            Type::INT8,
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
        ];
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        let mut seq = first;
        for row in rows {
            let bus_seq = row.bus_seq.map(to_i64);
            writer
                .write(&[
                    &seq,
                    &bus_seq,
                    &row.event_id,
                    &row.session_id,
                    &row.event_type,
                    &row.timestamp_us,
                    &row.request_id,
                    &row.agent_call_id,
                    &row.body,
                ])
                .map_err(StoreError::postgres("copying rows"))?;
            seq += 1;
        }
        writer
            .finish()
            .map_err(StoreError::postgres("finishing the copy"))?;
        if self.version >= JOURNAL_VERSION {
            let upsert = tx
                .prepare(UPSERT_SESSION)
                .map_err(StoreError::postgres("preparing the session update"))?;
            for d in session_deltas(rows, first) {
                tx.execute(
                    &upsert,
                    &[
                        &d.session_id,
                        &d.first_seq,
                        &d.last_seq,
                        &d.first_us,
                        &d.last_us,
                        &d.events,
                        &self.writer_id,
                    ],
                )
                .map_err(StoreError::postgres("updating the session index"))?;
            }
        }
        if self.version >= TOTALS_VERSION {
            update_totals(&mut tx, rows)?;
        }
        tx.commit()
            .map_err(StoreError::postgres("committing an append"))?;
        if skip_known {
            self.event_id_indexed = true;
        }
        Ok(first as u64..=(seq - 1) as u64)
    }

    fn scan(
        &mut self,
        query: &EventQuery,
        each: &mut dyn FnMut(StoredEvent) -> Result<()>,
    ) -> Result<()> {
        let (clause, params) = query.to_sql(Dialect::Postgres);
        let sql = format!("SELECT {COLUMNS} FROM events{clause}");
        let params: Vec<Box<dyn ToSql + Sync>> = params
            .into_iter()
            .map(|p| match p {
                SqlParam::Text(s) => Box::new(s) as Box<dyn ToSql + Sync>,
                SqlParam::Int(n) => Box::new(n) as Box<dyn ToSql + Sync>,
            })
            .collect();
        let mut rows = self
            .client
            .query_raw(&sql, params.iter().map(|p| &**p as &dyn ToSql))
            .map_err(StoreError::postgres("running a query"))?;
        while let Some(row) = rows
            .next()
            .map_err(StoreError::postgres("reading events"))?
        {
            let get = || -> std::result::Result<(i64, Option<i64>, EventRow), postgres::Error> {
                Ok((
                    row.try_get(0)?,
                    row.try_get(1)?,
                    EventRow {
                        bus_seq: None,
                        event_id: row.try_get(2)?,
                        session_id: row.try_get(3)?,
                        event_type: row.try_get(4)?,
                        timestamp_us: row.try_get(5)?,
                        request_id: row.try_get(6)?,
                        agent_call_id: row.try_get(7)?,
                        body: row.try_get(8)?,
                    },
                ))
            };
            let (seq, bus_seq, event) = get().map_err(StoreError::postgres("reading an event"))?;
            each(to_stored(seq, bus_seq, event)?)?;
        }
        Ok(())
    }

    fn begin_writer(&mut self, writer_id: &str) -> Result<()> {
        if self.version >= JOURNAL_VERSION {
            self.client
                .execute(
                    "INSERT INTO agentbus_writers (writer_id, pid, host, started_us, state) \
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        &writer_id,
                        &i64::from(std::process::id()),
                        &status::this_host(),
                        &chrono::Utc::now().timestamp_micros(),
                        &status::STATE_WRITING,
                    ],
                )
                .map_err(StoreError::postgres("recording the writer"))?;
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
            WriterEnd::Failed { lost, error } => (to_i64(*lost), Some(error.clone())),
        };
        self.client
            .execute(
                "UPDATE agentbus_writers SET state = $1, lost = $2, error = $3, ended_us = $4 \
                 WHERE writer_id = $5",
                &[
                    &end.state(),
                    &lost,
                    &error,
                    &chrono::Utc::now().timestamp_micros(),
                    &writer_id,
                ],
            )
            .map_err(StoreError::postgres("recording the writer's end"))?;
        Ok(())
    }

    /// One row per request (not per event), so collecting them is fine.
    fn first_times(
        &mut self,
        types: &[&str],
        session_id: Option<&str>,
    ) -> Result<Vec<(String, i64)>> {
        let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
        let rows = match session_id {
            Some(id) => self.client.query(
                "SELECT request_id, MIN(ts_us) FROM events WHERE request_id IS NOT NULL \
                 AND type = ANY($1) AND session_id = $2 GROUP BY request_id",
                &[&types, &id],
            ),
            None => self.client.query(
                "SELECT request_id, MIN(ts_us) FROM events WHERE request_id IS NOT NULL \
                 AND type = ANY($1) GROUP BY request_id",
                &[&types],
            ),
        }
        .map_err(StoreError::postgres("reading first outputs"))?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<std::result::Result<Vec<_>, postgres::Error>>()
            .map_err(StoreError::postgres("reading first outputs"))
    }

    fn session_counts(&mut self, session_id: Option<&str>) -> Result<Vec<SessionCounts>> {
        let journal = self.version >= JOURNAL_VERSION;
        let sql = match (journal, session_id.is_some()) {
            (false, filtered) => format!(
                "SELECT session_id, MIN(ts_us), MAX(ts_us), COUNT(*), MIN(seq), MAX(seq) \
                 FROM events WHERE {} GROUP BY session_id ORDER BY MIN(seq)",
                if filtered {
                    "session_id = $1"
                } else {
                    "session_id IS NOT NULL"
                }
            ),
            (true, filtered) => format!(
                "SELECT s.session_id, s.first_us, s.last_us, s.events, s.first_seq, s.last_seq, \
                 w.pid, w.host, w.state, w.lost, w.error \
                 FROM agentbus_sessions s LEFT JOIN agentbus_writers w ON w.writer_id = s.writer_id\
                 {} ORDER BY s.first_seq",
                if filtered {
                    " WHERE s.session_id = $1"
                } else {
                    ""
                }
            ),
        };
        let rows = match session_id {
            Some(id) => self.client.query(&sql, &[&id]),
            None => self.client.query(&sql, &[]),
        }
        .map_err(StoreError::postgres("listing sessions"))?;
        rows.iter()
            .map(|row| {
                let status = if !journal {
                    SessionStatus::Unknown
                } else {
                    match row.try_get::<_, Option<i64>>(6)? {
                        Some(pid) => WriterRow {
                            pid,
                            host: row.try_get(7)?,
                            state: row.try_get(8)?,
                            lost: row.try_get(9)?,
                            error: row.try_get(10)?,
                        }
                        .status(),
                        None => SessionStatus::Unknown,
                    }
                };
                Ok(SessionCounts {
                    session_id: row.try_get(0)?,
                    first_us: row.try_get(1)?,
                    last_us: row.try_get(2)?,
                    events: count(row.try_get(3)?),
                    first_seq: count(row.try_get(4)?),
                    last_seq: count(row.try_get(5)?),
                    status,
                })
            })
            .collect::<std::result::Result<Vec<_>, postgres::Error>>()
            .map_err(StoreError::postgres("listing sessions"))
    }

    fn session_totals(&mut self, session_id: Option<&str>) -> Result<Option<Vec<StoredTotals>>> {
        if self.version < TOTALS_VERSION {
            return Ok(None);
        }
        let rows = match session_id {
            Some(id) => self.client.query(
                "SELECT session_id, calls FROM agentbus_sessions WHERE session_id = $1",
                &[&id],
            ),
            None => self
                .client
                .query("SELECT session_id, calls FROM agentbus_sessions", &[]),
        }
        .map_err(StoreError::postgres("reading call totals"))?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<std::result::Result<Vec<_>, postgres::Error>>()
            .map(Some)
            .map_err(StoreError::postgres("reading call totals"))
    }

    fn last_seq(&mut self) -> Result<u64> {
        let last: i64 = self
            .client
            .query_one("SELECT COALESCE(MAX(seq), 0)::BIGINT FROM events", &[])
            .map_err(StoreError::postgres("reading the last seq"))?
            .get(0);
        Ok(last.max(0) as u64)
    }

    fn count(&mut self) -> Result<u64> {
        let n: i64 = self
            .client
            .query_one("SELECT COUNT(*) FROM events", &[])
            .map_err(StoreError::postgres("counting events"))?
            .get(0);
        Ok(n.max(0) as u64)
    }
}
