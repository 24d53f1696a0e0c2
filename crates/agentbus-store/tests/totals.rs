//! The per-session call totals the store keeps on append give exactly the summaries that
//! summing the stored call events gives: for random sessions mixing every call layer,
//! appended in random batches, on SQLite and PostgreSQL; after migrating an older store;
//! and when a stored total is damaged.

mod common;

use agentbus_events::DynEvent;
use agentbus_events::llm::{LLMErrorEvent, LLMRequestStartedEvent, LLMResponseCompletedEvent};
use agentbus_events::react::{LLMCallEndEvent, LLMCallErrorEvent, TokenUsage};
use agentbus_events::stream::{StreamErrorEvent, StreamFinishEvent, StreamTextDeltaEvent};
use agentbus_store::{
    EventStore, RowEncoder, StoreLocation, open_backend, open_backend_at_version,
};
use common::{TestStore, llm_session, meta};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// One step of a random session: which session, what happens, and its numbers.
#[derive(Clone, Debug)]
struct Step {
    session: u8,
    kind: u8,
    request: u8,
    model: u8,
    tokens: u64,
    cost: Option<f64>,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0u8..3,
        0u8..8,
        0u8..4,
        0u8..4,
        0u64..1_000_000,
        proptest::option::of(-1e3f64..1e3),
    )
        .prop_map(|(session, kind, request, model, tokens, cost)| Step {
            session,
            kind,
            request,
            model,
            tokens,
            cost,
        })
}

fn event(step: &Step, n: u64) -> Box<dyn DynEvent> {
    let session = format!("s{}", step.session);
    let meta = meta(&session, n, n as i64 * 1_000);
    let request_id = format!("r{}", step.request);
    // Model 0 is "none given".
    let model = (step.model > 0).then(|| format!("model-{}", step.model));
    match step.kind {
        0 => Box::new(LLMRequestStartedEvent {
            meta,
            request_id,
            model,
            ..Default::default()
        }),
        1 => Box::new(StreamFinishEvent {
            meta,
            request_id,
            input_tokens: step.tokens,
            output_tokens: step.tokens / 3,
            cost_usd: step.cost,
            model: model.unwrap_or_default(),
            ..Default::default()
        }),
        2 => Box::new(StreamErrorEvent {
            meta,
            request_id,
            ..Default::default()
        }),
        3 => Box::new(LLMCallEndEvent {
            meta,
            usage: TokenUsage {
                input_tokens: step.tokens,
                output_tokens: step.tokens / 2,
                ..Default::default()
            },
            cost_usd: step.cost,
            model,
            ..Default::default()
        }),
        4 => Box::new(LLMCallErrorEvent {
            meta,
            ..Default::default()
        }),
        5 => Box::new(LLMResponseCompletedEvent {
            meta,
            input_tokens: Some(step.tokens),
            output_tokens: None,
            model,
            ..Default::default()
        }),
        6 => Box::new(LLMErrorEvent {
            meta,
            ..Default::default()
        }),
        _ => Box::new(StreamTextDeltaEvent {
            meta,
            request_id,
            content: "x".into(),
            snapshot_len: 1,
        }),
    }
}

fn check(url: &str, steps: &[Step], cuts: &[usize]) -> Result<(), TestCaseError> {
    let rows: Vec<_> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            RowEncoder::default()
                .encode(event(s, i as u64 + 1).as_ref())
                .unwrap()
        })
        .collect();
    let mut backend = open_backend(&StoreLocation::parse(url).unwrap()).unwrap();
    // Append in batches cut at `cuts`, so totals carry across batches.
    let mut start = 0;
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (rows.len() + 1)).collect();
    ends.push(rows.len());
    ends.sort_unstable();
    for end in ends {
        if end > start {
            backend.append(&rows[start..end]).unwrap();
            start = end;
        }
    }
    drop(backend);
    let store = EventStore::open_read_only(url).unwrap();
    let stored = store.sessions().unwrap();
    let summed = store.sessions_from_events().unwrap();
    prop_assert_eq!(&stored, &summed);
    for summary in &stored {
        prop_assert_eq!(&store.session(&summary.session_id).unwrap(), summary);
    }
    Ok(())
}

#[test]
fn stored_totals_equal_the_totals_summed_from_the_events() {
    for (backend, _) in TestStore::both() {
        let mut runner = TestRunner::new(Config {
            cases: if backend == "sqlite" { 64 } else { 16 },
            ..Config::default()
        });
        runner
            .run(
                &(
                    proptest::collection::vec(step(), 1..60),
                    proptest::collection::vec(0usize..60, 0..4),
                ),
                |(steps, cuts)| {
                    let test = if backend == "sqlite" {
                        TestStore::sqlite()
                    } else {
                        TestStore::postgres()
                    };
                    check(&test.url, &steps, &cuts)
                },
            )
            .unwrap_or_else(|e| panic!("{backend}: {e}"));
    }
}

#[test]
fn migrating_an_older_store_fills_in_the_totals_of_its_sessions() {
    for (backend, test) in TestStore::both() {
        let location = StoreLocation::parse(&test.url).unwrap();
        {
            let mut v3 = open_backend_at_version(&location, 3).unwrap();
            let mut events = llm_session("old", "r1", "gpt-4o", 0);
            events.extend(llm_session("old", "r2", "claude", 5_000_000));
            let rows: Vec<_> = events
                .iter()
                .map(|e| RowEncoder::default().encode(e.as_ref()).unwrap())
                .collect();
            v3.append(&rows).unwrap();
        }
        // Read-only, not migrated: summed from the events.
        let old = EventStore::open_read_only(&test.url).unwrap();
        let before = old.sessions().unwrap();
        assert_eq!(before[0].llm_calls, 2, "{backend}");
        assert_eq!(before[0].models, ["gpt-4o", "claude"], "{backend}");
        drop(old);
        // Migrated: the stored totals are filled in, and equal.
        let store = EventStore::open(&test.url).unwrap();
        drop(store);
        let store = EventStore::open_read_only(&test.url).unwrap();
        assert_eq!(store.sessions().unwrap(), before, "{backend}");
        test.execute_raw("DELETE FROM events WHERE type = 'stream.finish'");
        // What is listed now comes from the stored totals, not from the events.
        assert_eq!(store.sessions().unwrap()[0].llm_calls, 2, "{backend}");
    }
}

#[test]
fn a_damaged_total_is_recomputed_from_the_events() {
    for (backend, test) in TestStore::both() {
        let mut backend_ = open_backend(&StoreLocation::parse(&test.url).unwrap()).unwrap();
        let encode = |events: Vec<Box<dyn DynEvent>>| -> Vec<_> {
            events
                .iter()
                .map(|e| RowEncoder::default().encode(e.as_ref()).unwrap())
                .collect()
        };
        backend_
            .append(&encode(llm_session("s", "r1", "m1", 0)))
            .unwrap();
        test.execute_raw("UPDATE agentbus_sessions SET calls = '{not json'");
        let store = EventStore::open_read_only(&test.url).unwrap();
        let summed = store.sessions_from_events().unwrap();
        assert_eq!(store.sessions().unwrap(), summed, "{backend}");
        assert_eq!(summed[0].llm_calls, 1, "{backend}");
        // The next append repairs it: the totals include both calls, and still agree.
        backend_
            .append(&encode(llm_session("s", "r2", "m2", 5_000_000)))
            .unwrap();
        test.execute_raw("DELETE FROM events WHERE type = 'stream.finish'");
        let after = store.sessions().unwrap();
        assert_eq!(after[0].llm_calls, 2, "{backend}");
        assert_eq!(after[0].models, ["m1", "m2"], "{backend}");
    }
}
