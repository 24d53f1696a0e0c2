//! The yardstick of `agentbus-bench store`: the same rows inserted with one plain
//! multi-row `INSERT` per batch, no event encoding, no queue, no writer thread.

use std::time::Duration;

use agentbus_store::{EventRow, StoreLocation, mask_url};
use anyhow::{Context, Result};

const COLUMNS: &str = "INSERT INTO events (seq, bus_seq, event_id, session_id, type, ts_us, request_id, agent_call_id, body) VALUES ";

fn values(rows: usize, dollar: bool) -> String {
    let mut sql = String::from(COLUMNS);
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..9 {
            if c > 0 {
                sql.push(',');
            }
            if dollar {
                sql.push_str(&format!("${}", r * 9 + c + 1));
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql
}

/// Inserts `rows` into the (existing, migrated) store at `location` with one multi-row
/// INSERT per `batch` rows, each in its own transaction, numbering them after `first_seq`.
/// Use on an empty store made for the purpose: it does not coordinate with writers.
pub fn plain_multi_row_insert(
    location: &StoreLocation,
    rows: &[EventRow],
    batch: usize,
    first_seq: i64,
) -> Result<()> {
    // SQLite: 32,766 parameters per statement; PostgreSQL: 65,535.
    let batch = batch.clamp(1, 3_000);
    match location {
        StoreLocation::Sqlite { path } => {
            let mut conn = rusqlite::Connection::open(path).context("opening the database")?;
            conn.busy_timeout(Duration::from_secs(30))
                .context("setting the busy timeout")?;
            conn.pragma_update(None, "synchronous", "NORMAL")
                .context("setting synchronous")?;
            let mut seq = first_seq;
            for chunk in rows.chunks(batch) {
                let tx = conn.transaction().context("starting a batch")?;
                {
                    let mut stmt = tx
                        .prepare_cached(&values(chunk.len(), false))
                        .context("preparing the insert")?;
                    let mut i = 1;
                    for row in chunk {
                        seq += 1;
                        let bus_seq = row.bus_seq.map(|s| s as i64);
                        let params: [&dyn rusqlite::ToSql; 9] = [
                            &seq,
                            &bus_seq,
                            &row.event_id,
                            &row.session_id,
                            &row.event_type,
                            &row.timestamp_us,
                            &row.request_id,
                            &row.agent_call_id,
                            &row.body,
                        ];
                        for p in params {
                            stmt.raw_bind_parameter(i, p).context("binding a row")?;
                            i += 1;
                        }
                    }
                    stmt.raw_execute().context("inserting rows")?;
                }
                tx.commit().context("committing a batch")?;
            }
            Ok(())
        }
        StoreLocation::Postgres { url, schema } => {
            // The sync client must not run inside a tokio runtime: use a thread of its own,
            // scoped, so it borrows the rows (a copy would be timed as part of the baseline).
            std::thread::scope(|scope| {
                scope
                    .spawn(|| -> Result<()> {
                        let mut client = postgres::Client::connect(url, postgres::NoTls)
                            .with_context(|| format!("connecting to {}", mask_url(url)))?;
                        if let Some(schema) = schema {
                            client
                                .batch_execute(&format!("SET search_path TO \"{schema}\""))
                                .context("selecting the schema")?;
                        }
                        let mut seq = first_seq;
                        for chunk in rows.chunks(batch) {
                            let mut tx = client.transaction().context("starting a batch")?;
                            let mut owned: Vec<(i64, Option<i64>)> =
                                Vec::with_capacity(chunk.len());
                            for row in chunk {
                                seq += 1;
                                owned.push((seq, row.bus_seq.map(|s| s as i64)));
                            }
                            let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> =
                                Vec::with_capacity(chunk.len() * 9);
                            for (row, (seq, bus_seq)) in chunk.iter().zip(&owned) {
                                params.extend_from_slice(&[
                                    seq,
                                    bus_seq,
                                    &row.event_id,
                                    &row.session_id,
                                    &row.event_type,
                                    &row.timestamp_us,
                                    &row.request_id,
                                    &row.agent_call_id,
                                    &row.body,
                                ]);
                            }
                            tx.execute(&values(chunk.len(), true), &params)
                                .context("inserting rows")?;
                            tx.commit().context("committing a batch")?;
                        }
                        Ok(())
                    })
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("the baseline insert thread panicked")))
            })
        }
    }
}

/// Drops `schema` (and everything in it) from the PostgreSQL database at `url`: cleanup
/// for benchmarks and tests that made a store in a schema of their own.
pub fn drop_postgres_schema(url: &str, schema: &str) -> Result<()> {
    let url = url.to_owned();
    let sql = format!(
        "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
        schema.replace('"', "\"\"")
    );
    std::thread::spawn(move || -> Result<()> {
        let mut client = postgres::Client::connect(&url, postgres::NoTls)
            .with_context(|| format!("connecting to {}", mask_url(&url)))?;
        client.batch_execute(&sql).context("dropping a schema")
    })
    .join()
    .unwrap_or_else(|_| Err(anyhow::anyhow!("the cleanup thread panicked")))
}
