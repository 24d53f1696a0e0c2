//! Both backends: append and read back, order, queries, summaries, migrations, bad input.

mod common;

use agentbus_events::{DynEvent, Registry};
use agentbus_store::{
    AudioPolicy, EventQuery, EventStore, Recording, ReplaySpeed, StoreError, StoreLocation,
    WriterOptions, migrations, open_backend_at_version,
};
use common::{TestStore, catalogue_events, llm_session};

fn keep_audio() -> WriterOptions {
    WriterOptions {
        audio: AudioPolicy::Keep,
        ..WriterOptions::default()
    }
}

#[test]
fn every_catalogue_type_reads_back_equal_in_order() {
    for (backend, test) in TestStore::both() {
        let store = EventStore::open(&test.url).unwrap();
        assert_eq!(store.count().unwrap(), 0, "{backend}");
        let events = catalogue_events("s1");
        let writer = store.writer(keep_audio()).unwrap();
        for e in &events {
            writer.append_blocking(e.as_ref()).unwrap();
        }
        let report = writer.close_blocking().unwrap();
        assert_eq!(report.written, events.len() as u64, "{backend}");
        let stored = store.events(&EventQuery::all()).unwrap();
        assert_eq!(stored.len(), events.len(), "{backend}");
        let registry = Registry::catalogue();
        for (i, (original, row)) in events.iter().zip(&stored).enumerate() {
            assert_eq!(row.seq, i as u64 + 1, "{backend}: seq");
            assert_eq!(row.row.event_type, original.event_type(), "{backend}");
            assert_eq!(
                row.row.bus_seq,
                original.meta().seq.map(|s| s.get()),
                "{backend}"
            );
            assert_eq!(row.row.session_id.as_deref(), Some("s1"), "{backend}");
            assert_eq!(row.timestamp(), original.meta().timestamp, "{backend}");
            let decoded = row.decode(&registry).unwrap();
            assert!(
                *decoded == **original,
                "{backend}: {} differs after the round trip",
                original.event_type()
            );
        }
    }
}

#[test]
fn queries_select_by_session_type_time_request_and_agent_call() {
    for (backend, test) in TestStore::both() {
        let store = EventStore::open(&test.url).unwrap();
        let mut events = llm_session("a", "req-a", "gpt-4o", 0);
        events.extend(llm_session("b", "req-b", "claude", 10_000_000));
        events.extend(catalogue_events("c"));
        let writer = store.writer(WriterOptions::default()).unwrap();
        for e in &events {
            writer.append_blocking(e.as_ref()).unwrap();
        }
        writer.close_blocking().unwrap();

        let a = store.events(&EventQuery::session("a")).unwrap();
        assert_eq!(a.len(), 5, "{backend}");
        assert!(
            a.windows(2).all(|w| w[0].seq < w[1].seq),
            "{backend}: ordered"
        );

        let finishes = store.events(&EventQuery::of_type("stream.finish")).unwrap();
        // Two from the sessions, one from the catalogue examples.
        assert_eq!(finishes.len(), 3, "{backend}");

        let by_request = store.events(&EventQuery::request("req-b")).unwrap();
        assert_eq!(by_request.len(), 4, "{backend}: started, 2 deltas, finish");
        assert!(
            by_request
                .iter()
                .all(|e| e.row.session_id.as_deref() == Some("b"))
        );

        let t0 = common::meta("x", 0, 0).timestamp;
        let window = store
            .events(&EventQuery::between(
                t0 + chrono::Duration::milliseconds(150),
                t0 + chrono::Duration::milliseconds(1_050),
            ))
            .unwrap();
        let types: Vec<_> = window.iter().map(|e| e.row.event_type.as_str()).collect();
        assert_eq!(
            types,
            ["stream.text_delta", "stream.text_delta", "stream.finish"],
            "{backend}"
        );

        // React events carry origin.agent_call_id; the catalogue examples use "call-2".
        let by_call = store
            .events(&EventQuery {
                agent_call_id: Some("call-2".into()),
                ..EventQuery::default()
            })
            .unwrap();
        assert!(!by_call.is_empty(), "{backend}");
        assert!(
            by_call
                .iter()
                .all(|e| e.row.event_type.starts_with("react.")),
            "{backend}"
        );

        let limited = store
            .events(&EventQuery {
                session_id: Some("c".into()),
                after_seq: Some(12),
                limit: Some(3),
                ..EventQuery::default()
            })
            .unwrap();
        assert_eq!(
            limited.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [13, 14, 15],
            "{backend}"
        );
    }
}

#[test]
fn sessions_and_stats_come_from_the_llm_and_tool_events() {
    for (backend, test) in TestStore::both() {
        let store = EventStore::open(&test.url).unwrap();
        let writer = store.writer(WriterOptions::default()).unwrap();
        let mut events = llm_session("a", "r1", "gpt-4o", 0);
        events.extend(llm_session("a", "r2", "gpt-4o", 5_000_000));
        events.extend(llm_session("b", "r3", "claude", 20_000_000));
        for e in &events {
            writer.append_blocking(e.as_ref()).unwrap();
        }
        writer.close_blocking().unwrap();

        let sessions = store.sessions().unwrap();
        assert_eq!(sessions.len(), 2, "{backend}");
        let a = &sessions[0];
        assert_eq!(a.session_id, "a");
        assert_eq!(a.events, 10);
        assert_eq!(a.llm_calls, 2);
        assert_eq!(a.models, ["gpt-4o"]);
        assert_eq!(a.input_tokens, 200);
        assert_eq!(a.output_tokens, 100);
        assert_eq!(a.total_tokens, 300);
        assert_eq!(a.cost_usd, Some(0.5));
        assert_eq!(
            (a.last_event - a.first_event).num_milliseconds(),
            6_100,
            "{backend}"
        );
        assert_eq!(sessions[1].models, ["claude"]);

        let stats = store.stats(Some("a")).unwrap();
        assert_eq!(stats.models.len(), 1);
        let m = &stats.models[0];
        assert_eq!((m.model.as_str(), m.calls, m.failures), ("gpt-4o", 2, 0));
        // TTFT: request started → first delta (200 ms); latency: → finish (1000 ms).
        assert_eq!(m.ttft_p50_ms, Some(200.0));
        assert_eq!(m.latency_p95_ms, Some(1000.0));
        // 100 output tokens over 2 × 800 ms of generation.
        assert_eq!(m.tokens_per_s, Some(62.5));
        assert_eq!(m.cost_usd, Some(0.5));
        assert_eq!(stats.tools.len(), 1);
        assert_eq!(stats.tools[0].tool, "calculator");
        assert_eq!(stats.tools[0].calls, 2);
        assert_eq!(stats.tools[0].time_p50_ms, Some(12.0));

        let all = store.stats(None).unwrap();
        assert_eq!(all.models.len(), 2, "{backend}");
        assert!(matches!(
            store.stats(Some("nope")),
            Err(StoreError::UnknownSession(_))
        ));
    }
}

#[test]
fn migrations_apply_to_an_empty_and_to_an_existing_store() {
    for (backend, test) in TestStore::both() {
        let location = StoreLocation::parse(&test.url).unwrap();
        {
            let mut v1 = open_backend_at_version(&location, 1).unwrap();
            assert_eq!(v1.schema_version().unwrap(), 1, "{backend}");
            let rows: Vec<_> = llm_session("old", "r", "m", 0)
                .iter()
                .map(|e| {
                    agentbus_store::RowEncoder::default()
                        .encode(e.as_ref())
                        .unwrap()
                })
                .collect();
            assert_eq!(v1.append(&rows).unwrap(), 1..=5);
        }
        let store = EventStore::open(&test.url).unwrap();
        assert_eq!(
            store.schema_version().unwrap(),
            migrations::LATEST_VERSION,
            "{backend}"
        );
        assert_eq!(store.events(&EventQuery::session("old")).unwrap().len(), 5);
        // Opening again is a no-op.
        drop(store);
        let store = EventStore::open(&test.url).unwrap();
        assert_eq!(store.schema_version().unwrap(), migrations::LATEST_VERSION);
        assert_eq!(store.count().unwrap(), 5);
    }
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    for (backend, test) in TestStore::both() {
        let store = EventStore::open(&test.url).unwrap();
        store
            .append_rows(&[agentbus_store::RowEncoder::default()
                .encode(llm_session("s", "r", "m", 0)[0].as_ref())
                .unwrap()])
            .unwrap();
        drop(store);
        test.execute_raw(
            "INSERT INTO agentbus_schema (version, description, applied_at_us) VALUES (99, 'from the future', 0)",
        );
        let before = (backend == "sqlite").then(|| std::fs::read(test.sqlite_path()).unwrap());
        match EventStore::open(&test.url) {
            Err(StoreError::SchemaTooNew {
                found, supported, ..
            }) => {
                assert_eq!(
                    (found, supported),
                    (99, migrations::LATEST_VERSION),
                    "{backend}"
                );
            }
            other => panic!("{backend}: expected SchemaTooNew, got {other:?}"),
        }
        if let Some(before) = before {
            assert_eq!(
                std::fs::read(test.sqlite_path()).unwrap(),
                before,
                "file changed"
            );
        }
        // The error message is the clear one.
        let message = EventStore::open(&test.url).unwrap_err().to_string();
        assert!(message.contains("schema version 99"), "{message}");
        assert!(message.contains("left untouched"), "{message}");
    }
}

#[test]
fn a_file_that_is_not_a_database_is_refused_untouched() {
    let test = TestStore::sqlite();
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(test.sqlite_path(), &garbage).unwrap();
    let err = EventStore::open(&test.url).unwrap_err();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err:?}");
    assert!(err.to_string().contains("not a SQLite database"), "{err}");
    assert_eq!(std::fs::read(test.sqlite_path()).unwrap(), garbage);
    for suffix in ["-wal", "-shm"] {
        let side = format!("{}{suffix}", test.sqlite_path().display());
        assert!(!std::path::Path::new(&side).exists(), "{side} created");
    }
}

#[test]
fn a_database_of_something_else_is_refused_untouched() {
    let test = TestStore::sqlite();
    test.execute_raw("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)");
    let before = std::fs::read(test.sqlite_path()).unwrap();
    let err = EventStore::open(&test.url).unwrap_err();
    assert!(matches!(err, StoreError::ForeignDatabase { .. }), "{err:?}");
    assert_eq!(std::fs::read(test.sqlite_path()).unwrap(), before);
}

#[test]
fn an_unreachable_postgres_is_a_clear_error() {
    let err = EventStore::open("postgres://postgres:hunter2@127.0.0.1:1/test").unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("cannot connect to PostgreSQL"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "password leaked: {message}");
}

#[test]
fn audio_samples_are_left_out_by_default_and_kept_on_request() {
    use agentbus_events::base::PcmData;
    use agentbus_events::tts::TTSAudioEvent;
    let test = TestStore::sqlite();
    let store = EventStore::open(&test.url).unwrap();
    let event = TTSAudioEvent {
        meta: common::meta("audio", 1, 0),
        data: Some(PcmData::from_s16(16_000, 1, &vec![1000; 16_000])),
        ..Default::default()
    };
    for options in [WriterOptions::default(), keep_audio()] {
        let writer = store.writer(options).unwrap();
        writer.append_blocking(&event).unwrap();
        writer.close_blocking().unwrap();
    }
    let stored = store.events(&EventQuery::session("audio")).unwrap();
    let registry = Registry::catalogue();
    let omitted = stored[0].decode(&registry).unwrap();
    let omitted = omitted.downcast_ref::<TTSAudioEvent>().unwrap();
    let pcm = omitted.data.as_ref().unwrap();
    assert!(pcm.samples.is_empty());
    assert_eq!((pcm.sample_rate, pcm.channels), (16_000, 1));
    assert_eq!(stored[0].json().unwrap()["data"]["samples_omitted"], 16_000);
    assert!(stored[0].row.body.len() < 1_000);
    let kept = stored[1].decode(&registry).unwrap();
    assert_eq!(kept.downcast_ref::<TTSAudioEvent>(), Some(&event));
}

#[test]
fn backpressure_and_several_writers_keep_one_gap_free_sequence() {
    for (backend, test) in TestStore::both() {
        let store = EventStore::open(&test.url).unwrap();
        let tiny = WriterOptions {
            capacity: 1,
            max_batch: 7,
            ..WriterOptions::default()
        };
        let first = store.writer(tiny).unwrap();
        let second = store.writer(tiny).unwrap();
        let events = catalogue_events("many");
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for e in &events {
                    first.append_blocking(e.as_ref()).unwrap();
                }
            });
            scope.spawn(|| {
                for e in &events {
                    second.append_blocking(e.as_ref()).unwrap();
                }
            });
        });
        let a = first.close_blocking().unwrap();
        let b = second.close_blocking().unwrap();
        assert_eq!(a.written + b.written, 2 * events.len() as u64, "{backend}");
        assert!(a.batches > 1, "{backend}: batches of at most 7");
        let seqs: Vec<u64> = store
            .events(&EventQuery::all())
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(
            seqs,
            (1..=2 * events.len() as u64).collect::<Vec<_>>(),
            "{backend}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_commits_everything_appended_before_it() {
    let test = TestStore::sqlite();
    let store = EventStore::open(&test.url).unwrap();
    let writer = store.writer(WriterOptions::default()).unwrap();
    let events = catalogue_events("f");
    for e in &events {
        writer.append(e.as_ref()).await.unwrap();
    }
    let report = writer.flush().await.unwrap();
    assert_eq!(report.written, events.len() as u64);
    assert_eq!(store.count().unwrap(), events.len() as u64);
    let appender = writer.appender();
    writer.close().await.unwrap();
    assert!(matches!(
        appender.append(events[0].as_ref()).await,
        Err(StoreError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_replays_its_events_with_the_original_gaps_scaled() {
    let test = TestStore::sqlite();
    let store = EventStore::open(&test.url).unwrap();
    let events = llm_session("r", "req", "m", 0);
    let writer = store.writer(WriterOptions::default()).unwrap();
    for e in &events {
        writer.append(e.as_ref()).await.unwrap();
    }
    writer.close().await.unwrap();
    let recording = Recording::open(&store, "r", &Registry::catalogue()).unwrap();
    assert_eq!(recording.session().events, 5);
    let speed = ReplaySpeed::Factor(100.0);
    let first = recording.session().first_us;
    let mut offsets = Vec::new();
    let mut replayed: Vec<Box<dyn DynEvent>> = Vec::new();
    let start = std::time::Instant::now();
    let n = recording
        .play(speed, |e| {
            offsets.push((
                start.elapsed(),
                speed.offset(e.meta().timestamp.timestamp_micros() - first),
            ));
            replayed.push(e);
            async { Ok::<(), StoreError>(()) }
        })
        .await
        .unwrap();
    assert_eq!(n, 5);
    // The original gaps (0, 200, 300, 1000, 1100 ms) divided by 100, from the start.
    assert_eq!(
        offsets
            .iter()
            .map(|(_, due)| due.as_micros())
            .collect::<Vec<_>>(),
        [0, 2_000, 3_000, 10_000, 11_000]
    );
    for (at, due) in &offsets {
        assert!(at >= due, "published at {at:?}, before {due:?}");
    }
    for (a, b) in events.iter().zip(&replayed) {
        assert!(**a == **b, "replayed events keep ids and fields");
    }
    assert!(matches!(
        Recording::open(&store, "missing", &Registry::catalogue()),
        Err(StoreError::UnknownSession(_))
    ));
}
