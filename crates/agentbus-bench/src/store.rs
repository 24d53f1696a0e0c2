//! `agentbus bench store`: the event store's append and replay-read rates, beside a
//! baseline in the same run.
//!
//! - **append**: `--events` events (a realistic mix: streamed text deltas, tool-call
//!   argument deltas, LLM request/finish events) encoded to rows and queued by the caller,
//!   written in batches by the [`StoreWriter`](agentbus_store::StoreWriter) thread; timed
//!   from the first append to `close` returning (everything committed).
//! - **baseline**: the same rows, already encoded, inserted into an identical empty store
//!   with one plain multi-row `INSERT` per batch of 1,000 rows (no encoding, no queue).
//! - **read**: the session read back in store order and decoded into typed events (what a
//!   replay does before publishing); beside it the raw row scan without decoding.
//!
//! - **sessions**: listing every session of a store of `--listing-events` events in
//!   `--listing-sessions` sessions (SQLite; each session a few streamed LLM requests with
//!   their start and finish events), from the per-session totals the store keeps on append;
//!   beside it the same listing summed from the stored call events (the baseline: what a
//!   store without those totals has to do).
//!
//! SQLite runs in a temporary directory; PostgreSQL (`--postgres URL`, default the local
//! test server) in a fresh schema that is dropped afterwards, and is skipped with a note
//! when the server cannot be reached. Each figure is the median of `--reps` runs.

use std::process::ExitCode;
use std::time::Instant;

use agentbus_events::llm::LLMRequestStartedEvent;
use agentbus_events::stream::{StreamFinishEvent, StreamTextDeltaEvent};
use agentbus_events::{DynEvent, EventMeta, Registry};
use agentbus_store::{EventQuery, EventRow, EventStore, RowEncoder, StoreLocation, WriterOptions};
use anyhow::Context;
use serde_json::json;

use crate::baseline;
use crate::stats::median;

/// Arguments of `agentbus bench store`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  agentbus bench store
  agentbus bench store --no-postgres --listing-events 0 --json")]
pub struct Args {
    /// Events per run.
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Repetitions; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// The PostgreSQL server to measure (a fresh schema per run).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub postgres: String,
    /// Skip PostgreSQL.
    #[arg(long)]
    pub no_postgres: bool,
    /// Events in the store whose sessions are listed (0 skips the listing case).
    #[arg(long, default_value_t = 2_000_000)]
    pub listing_events: usize,
    /// Sessions those events are spread over.
    #[arg(long, default_value_t = 2_000)]
    pub listing_sessions: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn events(n: usize) -> Vec<Box<dyn DynEvent>> {
    let session = "bench-session";
    (0..n)
        .map(|i| {
            let mut meta = EventMeta::for_session(session);
            meta.seq = agentbus_events::Seq::new(i as u64 + 1);
            let request_id = format!("req-{}", i / 100);
            let event: Box<dyn DynEvent> = if i % 100 == 99 {
                Box::new(StreamFinishEvent {
                    meta,
                    request_id,
                    stop_reason: "stop".into(),
                    input_tokens: 1_200,
                    output_tokens: 99,
                    cost_usd: Some(0.0021),
                    model: "gpt-4o-mini".into(),
                    ..Default::default()
                })
            } else {
                Box::new(StreamTextDeltaEvent {
                    meta,
                    request_id,
                    content: "token ".into(),
                    snapshot_len: 6,
                })
            };
            event
        })
        .collect()
}

struct Scratch {
    location: StoreLocation,
    cleanup: Option<Box<dyn FnOnce()>>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            cleanup();
        }
    }
}

fn scratch_sqlite() -> anyhow::Result<Scratch> {
    let dir = std::env::temp_dir().join(format!("agentbus-bench-store-{}", uuid_like()));
    std::fs::create_dir_all(&dir)?;
    let location = StoreLocation::Sqlite {
        path: dir.join("bench.db"),
    };
    Ok(Scratch {
        location,
        cleanup: Some(Box::new(move || {
            let _ = std::fs::remove_dir_all(&dir);
        })),
    })
}

fn scratch_postgres(url: &str) -> Scratch {
    let schema = format!("agentbus_bench_{}", uuid_like());
    let location = StoreLocation::Postgres {
        url: url.to_owned(),
        schema: Some(schema.clone()),
    };
    let url = url.to_owned();
    Scratch {
        location,
        cleanup: Some(Box::new(move || drop_schema(&url, &schema))),
    }
}

fn drop_schema(url: &str, schema: &str) {
    if let Err(error) = baseline::drop_postgres_schema(url, schema) {
        tracing::warn!(%error, schema, "could not drop the benchmark schema");
    }
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}_{nanos}", std::process::id())
}

struct Figures {
    append: f64,
    baseline: f64,
    read_decode: f64,
    read_rows: f64,
}

fn measure(
    backend: &str,
    make: &dyn Fn() -> anyhow::Result<Scratch>,
    events: &[Box<dyn DynEvent>],
    rows: &[EventRow],
    reps: usize,
) -> anyhow::Result<Figures> {
    let registry = Registry::catalogue();
    let (mut append, mut base, mut read, mut raw) = (vec![], vec![], vec![], vec![]);
    for rep in 0..reps {
        eprintln!("{backend}: run {} of {reps}", rep + 1);
        // Append through the writer.
        let scratch = make()?;
        let store = EventStore::open_location(scratch.location.clone())?;
        let writer = store.writer(WriterOptions::default())?;
        let start = Instant::now();
        for event in events {
            writer.append_blocking(event.as_ref())?;
        }
        let report = writer.close_blocking()?;
        append.push(events.len() as f64 / start.elapsed().as_secs_f64());
        anyhow::ensure!(report.written == events.len() as u64, "writer lost events");

        // Read back: rows only, then rows decoded.
        let start = Instant::now();
        let mut n = 0usize;
        store.scan(&EventQuery::session("bench-session"), |_| {
            n += 1;
            Ok(())
        })?;
        raw.push(n as f64 / start.elapsed().as_secs_f64());
        let start = Instant::now();
        let mut n = 0usize;
        store.scan(&EventQuery::session("bench-session"), |row| {
            row.decode(&registry)?;
            n += 1;
            Ok(())
        })?;
        read.push(n as f64 / start.elapsed().as_secs_f64());
        anyhow::ensure!(n == events.len(), "read {n} of {} events", events.len());
        drop(store);
        drop(scratch);

        // Baseline: plain multi-row inserts of the pre-encoded rows into an identical store.
        let scratch = make()?;
        drop(EventStore::open_location(scratch.location.clone())?);
        let start = Instant::now();
        baseline::plain_multi_row_insert(&scratch.location, rows, 1_000, 0)?;
        base.push(rows.len() as f64 / start.elapsed().as_secs_f64());
    }
    Ok(Figures {
        append: median(append),
        baseline: median(base),
        read_decode: median(read),
        read_rows: median(raw),
    })
}

/// Events of the listing case: `sessions` sessions, one after the other, each made of
/// requests of 100 events (a start, 98 text deltas, a finish with usage and cost).
/// Rows `range` of them are made at a time, so the store is filled in bounded memory.
fn listing_rows(
    range: std::ops::Range<usize>,
    events: usize,
    sessions: usize,
) -> anyhow::Result<Vec<EventRow>> {
    let per_session = events.div_ceil(sessions.max(1)).max(1);
    let encoder = RowEncoder::default();
    range
        .map(|i| {
            let session = format!("session-{:06}", i / per_session);
            let mut meta = EventMeta::for_session(&session);
            meta.seq = agentbus_events::Seq::new(i as u64 + 1);
            let request_id = format!("req-{}", i / 100);
            let event: Box<dyn DynEvent> = match i % 100 {
                0 => Box::new(LLMRequestStartedEvent {
                    meta,
                    request_id,
                    model: Some("gpt-4o-mini".into()),
                    ..Default::default()
                }),
                99 => Box::new(StreamFinishEvent {
                    meta,
                    request_id,
                    stop_reason: "stop".into(),
                    input_tokens: 1_200,
                    output_tokens: 98,
                    cost_usd: Some(0.0021),
                    model: "gpt-4o-mini".into(),
                    ..Default::default()
                }),
                _ => Box::new(StreamTextDeltaEvent {
                    meta,
                    request_id,
                    content: "token ".into(),
                    snapshot_len: 6,
                }),
            };
            encoder.encode(event.as_ref())
        })
        .collect::<Result<_, _>>()
        .context("encoding the listing events")
}

struct Listing {
    stored_ms: f64,
    summed_ms: f64,
    sessions: usize,
}

/// The listing case: a SQLite store filled through the append path, then listed.
fn listing(args: &Args, reps: usize) -> anyhow::Result<Listing> {
    let (events, sessions) = (args.listing_events, args.listing_sessions);
    let scratch = scratch_sqlite()?;
    let store = EventStore::open_location(scratch.location.clone())?;
    const BATCH: usize = 10_000;
    for start in (0..events).step_by(BATCH) {
        if start % 100_000 == 0 {
            eprint!("\rsessions listing: appending, {start} of {events} events");
        }
        let rows = listing_rows(start..(start + BATCH).min(events), events, sessions)?;
        store.append_rows(&rows)?;
    }
    eprintln!();
    drop(store);
    let store = EventStore::open_location_read_only(scratch.location.clone())?;
    let (mut stored, mut summed) = (vec![], vec![]);
    let mut listed = 0;
    for rep in 0..reps {
        eprintln!("sessions listing: run {} of {reps}", rep + 1);
        let start = Instant::now();
        let sessions = store.sessions()?;
        stored.push(start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        let baseline = store.sessions_from_events()?;
        summed.push(start.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(
            sessions == baseline,
            "stored and summed session totals differ"
        );
        listed = sessions.len();
    }
    Ok(Listing {
        stored_ms: median(stored),
        summed_ms: median(summed),
        sessions: listed,
    })
}

/// Runs `agentbus bench store`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let events = events(args.events);
    let encoder = RowEncoder::default();
    let rows: Vec<EventRow> = events
        .iter()
        .map(|e| encoder.encode(e.as_ref()))
        .collect::<Result<_, _>>()
        .context("encoding the benchmark events")?;
    let reps = args.reps.max(1);
    let mut results = Vec::new();
    let sqlite = measure("sqlite", &scratch_sqlite, &events, &rows, reps)?;
    results.push(("sqlite", Some(sqlite), None));
    if !args.no_postgres {
        let url = args.postgres.clone();
        let make = move || -> anyhow::Result<Scratch> { Ok(scratch_postgres(&url)) };
        match measure("postgres", &make, &events, &rows, reps) {
            Ok(figures) => results.push(("postgres", Some(figures), None)),
            Err(error) => results.push(("postgres", None, Some(format!("{error:#}")))),
        }
    }
    let listing = if args.listing_events > 0 {
        Some(listing(&args, reps)?)
    } else {
        None
    };
    if args.json {
        let mut out: Vec<_> = results
            .iter()
            .map(|(backend, figures, skipped)| match figures {
                Some(f) => json!({
                    "backend": backend,
                    "events": args.events,
                    "reps": reps,
                    "append_events_per_s": f.append.round(),
                    "baseline_plain_insert_rows_per_s": f.baseline.round(),
                    "append_vs_baseline": f.append / f.baseline,
                    "read_decode_events_per_s": f.read_decode.round(),
                    "read_rows_per_s": f.read_rows.round(),
                }),
                None => json!({"backend": backend, "skipped": skipped}),
            })
            .collect();
        if let Some(l) = &listing {
            out.push(json!({
                "case": "sessions",
                "events": args.listing_events,
                "sessions": l.sessions,
                "stored_totals_ms": l.stored_ms,
                "baseline_summed_from_events_ms": l.summed_ms,
                "speedup": l.summed_ms / l.stored_ms,
            }));
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "agentbus bench store — {} events per run, medians of {reps} runs",
        args.events
    );
    println!(
        "{:<9} {:>16} {:>20} {:>7} {:>18} {:>16}",
        "backend", "append ev/s", "baseline rows/s", "ratio", "replay read ev/s", "raw rows/s"
    );
    for (backend, figures, skipped) in &results {
        match figures {
            Some(f) => println!(
                "{:<9} {:>16.0} {:>20.0} {:>6.2}x {:>18.0} {:>16.0}",
                backend,
                f.append,
                f.baseline,
                f.append / f.baseline,
                f.read_decode,
                f.read_rows
            ),
            None => println!("{backend:<9} skipped: {}", skipped.as_deref().unwrap_or("")),
        }
    }
    println!(
        "append: encode + queue + batched writer, to close (all committed); baseline: the same \
         rows pre-encoded, one plain multi-row INSERT per 1,000; replay read: rows decoded into \
         typed events. Targets (SQLite): append >= 200,000/s, read >= 500,000/s."
    );
    if let Some(l) = &listing {
        println!(
            "sessions (SQLite, {} events, {} sessions): {:.1} ms from the stored totals; \
             baseline summed from the call events {:.1} ms ({:.0}x)",
            args.listing_events,
            l.sessions,
            l.stored_ms,
            l.summed_ms,
            l.summed_ms / l.stored_ms
        );
    }
    Ok(ExitCode::SUCCESS)
}
