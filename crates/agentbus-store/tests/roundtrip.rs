//! Every stored event reads back exactly as it was sent: the same JSON, every float
//! bit-for-bit, on SQLite and PostgreSQL — for every catalogue type, with random floats.

mod common;

use agentbus_events::react::LLMCallEndEvent;
use agentbus_events::{DynEvent, Registry};
use agentbus_store::{AudioPolicy, EventQuery, EventStore, WriterOptions};
use common::{TestStore, catalogue_events};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;

fn keep_everything() -> WriterOptions {
    WriterOptions {
        audio: AudioPolicy::Keep,
        ..WriterOptions::default()
    }
}

/// Replaces every float in `value` with the next of `floats` (cycling); returns how many.
fn replace_floats(value: &mut Value, floats: &[f64], next: &mut usize, round: bool) {
    match value {
        Value::Number(n) if n.is_f64() => {
            let mut x = floats[*next % floats.len()];
            *next += 1;
            if round {
                // For fields that are f32: a value an f32 holds.
                x = f64::from(x as f32);
                if !x.is_finite() {
                    x = 0.5;
                }
            }
            if let Some(number) = serde_json::Number::from_f64(x) {
                *n = number;
            }
        }
        Value::Array(items) => {
            for item in items {
                replace_floats(item, floats, next, round);
            }
        }
        Value::Object(map) => {
            for item in map.values_mut() {
                replace_floats(item, floats, next, round);
            }
        }
        _ => {}
    }
}

/// The catalogue examples of `session` with their floats replaced by `floats` (typed
/// events: each is what a producer would send).
fn events_with_floats(
    session: &str,
    floats: &[f64],
    registry: &Registry,
) -> Vec<Box<dyn DynEvent>> {
    catalogue_events(session)
        .into_iter()
        .map(|example| {
            let wire = example.to_wire_value().unwrap();
            for round in [false, true] {
                let mut value = wire.clone();
                let mut next = 0;
                replace_floats(&mut value, floats, &mut next, round);
                let bytes = serde_json::to_vec(&value).unwrap();
                if let Ok(event) = registry.decode(&bytes)
                    && event.to_wire_string().is_ok()
                {
                    return event;
                }
            }
            example
        })
        .collect()
}

/// Writes `sent` to `store` and checks each reads back identical, bit for bit.
fn check_round_trip(
    backend: &str,
    store: &EventStore,
    session: &str,
    sent: &[Box<dyn DynEvent>],
    registry: &Registry,
) -> Result<(), TestCaseError> {
    let writer = store.writer(keep_everything()).unwrap();
    for event in sent {
        writer.append_blocking(event.as_ref()).unwrap();
    }
    writer.close_blocking().unwrap();
    let stored = store.events(&EventQuery::session(session)).unwrap();
    prop_assert_eq!(stored.len(), sent.len(), "{}", backend);
    for (original, row) in sent.iter().zip(&stored) {
        let expected = original.to_wire_string().unwrap();
        // The body as written, then the event decoded from it and written again.
        prop_assert_eq!(&row.row.body, &expected, "{}: stored body", backend);
        let decoded = row
            .decode(registry)
            .map_err(|e| TestCaseError::fail(format!("{backend}: {e}: {}", row.row.body)))?;
        let again = decoded
            .to_wire_string()
            .map_err(|e| TestCaseError::fail(format!("{backend}: {e}")))?;
        prop_assert_eq!(
            &again,
            &expected,
            "{}: {} changed after the round trip",
            backend,
            original.event_type()
        );
        // The typed event itself is equal too (the text equality above already pins every
        // float's bits: the shortest representation is unique per value, -0.0 included).
        prop_assert!(
            *decoded == **original,
            "{}: {} decodes to a different event",
            backend,
            original.event_type()
        );
    }
    Ok(())
}

fn finite_f64() -> impl Strategy<Value = f64> {
    use proptest::num::f64;
    f64::POSITIVE | f64::NEGATIVE | f64::NORMAL | f64::SUBNORMAL | f64::ZERO
}

#[test]
fn every_catalogue_type_round_trips_bit_for_bit_with_random_floats() {
    let registry = Registry::catalogue();
    let stores: Vec<(&str, TestStore, EventStore)> = TestStore::both()
        .into_iter()
        .map(|(backend, test)| {
            let store = EventStore::open(&test.url).unwrap();
            (backend, test, store)
        })
        .collect();
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::sync::atomic::AtomicU64::new(0);
    runner
        .run(&prop::collection::vec(finite_f64(), 1..48), |floats| {
            let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let session = format!("case-{n}");
            let sent = events_with_floats(&session, &floats, &registry);
            for (backend, _, store) in &stores {
                check_round_trip(backend, store, &session, &sent, &registry)?;
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn the_float_seen_changing_in_a_live_run_reads_back_unchanged() {
    // A live `react.llm_call_end` had 20.753377999999998; `replay` gave 20.753378.
    let registry = Registry::catalogue();
    for (backend, test) in TestStore::both() {
        let store = EventStore::open(&test.url).unwrap();
        let mut event = LLMCallEndEvent {
            meta: common::meta("live", 1, 0),
            execution_time_ms: 20.753377999999998,
            ..Default::default()
        };
        event.time_to_first_token_ms = Some(0.1 + 0.2);
        let sent: Vec<Box<dyn DynEvent>> = vec![Box::new(event.clone())];
        check_round_trip(backend, &store, "live", &sent, &registry).unwrap();
        let stored = store.events(&EventQuery::session("live")).unwrap();
        let decoded = stored[0].decode(&registry).unwrap();
        let decoded = decoded.downcast_ref::<LLMCallEndEvent>().unwrap();
        assert_eq!(
            decoded.execution_time_ms.to_bits(),
            20.753377999999998f64.to_bits(),
            "{backend}"
        );
        assert_eq!(
            decoded.time_to_first_token_ms.map(f64::to_bits),
            Some((0.1f64 + 0.2).to_bits()),
            "{backend}"
        );
    }
}
