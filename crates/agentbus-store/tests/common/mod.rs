//! Test helpers: a temporary SQLite file or a uniquely named PostgreSQL schema per test,
//! and sample events.
#![allow(dead_code)]

use std::path::PathBuf;

use agentbus_events::stream::{StreamFinishEvent, StreamTextDeltaEvent};
use agentbus_events::tool::ToolEndEvent;
use agentbus_events::{DynEvent, EventMeta, PluginInfo};

pub use agentbus_test_support::services::{pg_url, postgres_available};

/// A store location that is removed when dropped.
pub struct TestStore {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Schema(String),
}

impl TestStore {
    /// A fresh SQLite file in a fresh directory.
    pub fn sqlite() -> Self {
        let dir =
            std::env::temp_dir().join(format!("agentbus-store-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("events.db").display());
        Self {
            url,
            cleanup: Cleanup::Dir(dir),
        }
    }

    /// A fresh schema in the test database.
    pub fn postgres() -> Self {
        let schema = format!("agentbus_test_{}", uuid::Uuid::new_v4().simple());
        Self {
            url: format!("{}?schema={schema}", pg_url()),
            cleanup: Cleanup::Schema(schema),
        }
    }

    /// Both kinds, for tests that run on each backend; SQLite only, with a note on
    /// stderr, when PostgreSQL is not reachable here (see [`postgres_available`]).
    pub fn both() -> Vec<(&'static str, Self)> {
        let mut stores = vec![("sqlite", Self::sqlite())];
        if postgres_available() {
            stores.push(("postgres", Self::postgres()));
        }
        stores
    }

    /// A fresh PostgreSQL schema, or `None` (with a note) when PostgreSQL is not reachable.
    pub fn postgres_if_available() -> Option<Self> {
        postgres_available().then(Self::postgres)
    }

    /// The SQLite file (panics for PostgreSQL).
    pub fn sqlite_path(&self) -> PathBuf {
        PathBuf::from(self.url.strip_prefix("sqlite://").unwrap())
    }

    /// Runs SQL on the store's database directly (in its schema for PostgreSQL).
    pub fn execute_raw(&self, sql: &str) {
        match &self.cleanup {
            Cleanup::Dir(_) => {
                let conn = rusqlite::Connection::open(self.sqlite_path()).unwrap();
                conn.execute_batch(sql).unwrap();
            }
            Cleanup::Schema(schema) => {
                let sql = format!("SET search_path TO {schema}; {sql}");
                // The sync client must not run inside a tokio runtime: use a plain thread.
                std::thread::scope(|s| {
                    s.spawn(|| {
                        let mut client =
                            postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
                        client.batch_execute(&sql).unwrap();
                    })
                    .join()
                    .unwrap()
                });
            }
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Schema(schema) => {
                let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                // The sync client must not run inside a tokio runtime: use a plain thread.
                std::thread::scope(|s| {
                    s.spawn(|| {
                        if let Ok(mut client) =
                            postgres::Client::connect(&pg_url(), postgres::NoTls)
                        {
                            let _ = client.batch_execute(&sql);
                        }
                    });
                });
            }
        }
    }
}

/// Metadata of an event of `session` with bus seq `seq`, at `micros` after a fixed start.
pub fn meta(session: &str, seq: u64, micros: i64) -> EventMeta {
    let mut meta = EventMeta::for_session(session);
    meta.seq = agentbus_events::Seq::new(seq);
    meta.timestamp =
        chrono::DateTime::from_timestamp_micros(1_767_225_600_000_000 + micros).unwrap();
    meta
}

/// One example of every catalogue type, each with fresh metadata in `session`.
pub fn catalogue_events(session: &str) -> Vec<Box<dyn DynEvent>> {
    agentbus_events::catalogue::all()
        .iter()
        .enumerate()
        .map(|(i, info)| {
            let mut event = info.example();
            *event.meta_mut() = meta(session, i as u64 + 1, i as i64 * 1000);
            event
        })
        .collect()
}

/// A small LLM session: one request streaming two chunks, finishing with usage and cost,
/// and one tool call.
pub fn llm_session(
    session: &str,
    request: &str,
    model: &str,
    start_us: i64,
) -> Vec<Box<dyn DynEvent>> {
    let started = agentbus_events::llm::LLMRequestStartedEvent {
        meta: meta(session, 1, start_us),
        plugin: PluginInfo::named("test"),
        request_id: request.into(),
        model: Some(model.into()),
        streaming: true,
        tool_choice: None,
    };
    let delta = |n: u64, at: i64, text: &str| StreamTextDeltaEvent {
        meta: meta(session, n, start_us + at),
        request_id: request.into(),
        content: text.into(),
        snapshot_len: text.len() as u64,
    };
    let finish = StreamFinishEvent {
        meta: meta(session, 4, start_us + 1_000_000),
        request_id: request.into(),
        stop_reason: "stop".into(),
        input_tokens: 100,
        output_tokens: 50,
        cost_usd: Some(0.25),
        model: model.into(),
        ..Default::default()
    };
    let tool = ToolEndEvent {
        meta: meta(session, 5, start_us + 1_100_000),
        plugin: PluginInfo::named("test"),
        tool_name: "calculator".into(),
        success: true,
        execution_time_ms: Some(12.0),
        ..Default::default()
    };
    vec![
        Box::new(started),
        Box::new(delta(2, 200_000, "Hel")),
        Box::new(delta(3, 300_000, "lo")),
        Box::new(finish),
        Box::new(tool),
    ]
}
