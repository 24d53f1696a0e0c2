//! `append_new`: an event id already stored (or repeated in the batch) is skipped, on both
//! backends — what lets a store writer fed by an at-least-once source stay exact.

mod common;

use agentbus_store::{EventQuery, EventStore, RowEncoder};
use common::{TestStore, catalogue_events};

#[test]
fn append_new_skips_event_ids_already_stored_or_repeated() {
    for (backend, test) in TestStore::both() {
        let store = EventStore::open(&test.url).unwrap();
        let encoder = RowEncoder::default();
        let rows: Vec<_> = catalogue_events("s1")
            .iter()
            .map(|e| encoder.encode(e.as_ref()).unwrap())
            .collect();
        let (first, rest) = rows.split_at(10);
        assert_eq!(store.append_rows_new(first).unwrap(), 10, "{backend}");
        // A redelivery of the first ten, interleaved with new rows and a repeat.
        let mut batch: Vec<_> = first.to_vec();
        batch.extend_from_slice(rest);
        batch.push(rest[0].clone());
        assert_eq!(
            store.append_rows_new(&batch).unwrap(),
            rest.len(),
            "{backend}"
        );
        assert_eq!(store.append_rows_new(&batch).unwrap(), 0, "{backend}");
        let stored = store.events(&EventQuery::all()).unwrap();
        assert_eq!(stored.len(), rows.len(), "{backend}");
        let ids: Vec<_> = stored.iter().map(|e| e.row.event_id.clone()).collect();
        let expected: Vec<_> = rows.iter().map(|r| r.event_id.clone()).collect();
        assert_eq!(ids, expected, "{backend}: in order, once each");
        assert!(
            stored
                .iter()
                .enumerate()
                .all(|(i, e)| e.seq == i as u64 + 1),
            "{backend}: store seqs stay gap-free"
        );
    }
}

#[test]
fn append_new_finds_a_stored_id_anywhere_in_a_large_batch() {
    use agentbus_events::{DynEvent, EventMeta, llm::LLMResponseChunkEvent};
    for (backend, test) in TestStore::both() {
        let store = EventStore::open(&test.url).unwrap();
        let encoder = RowEncoder::default();
        // More rows than one id check asks about at once (1,000 on SQLite).
        let rows: Vec<_> = (0..2_500)
            .map(|i| {
                let event = LLMResponseChunkEvent {
                    meta: EventMeta::for_session("big"),
                    delta: Some(i.to_string()),
                    ..Default::default()
                };
                encoder.encode(&event as &dyn DynEvent).unwrap()
            })
            .collect();
        let stored = [5, 1_500, 2_499];
        let already: Vec<_> = stored.iter().map(|&i| rows[i].clone()).collect();
        assert_eq!(store.append_rows_new(&already).unwrap(), 3, "{backend}");
        assert_eq!(
            store.append_rows_new(&rows).unwrap(),
            rows.len() - stored.len(),
            "{backend}"
        );
        let stored_ids: Vec<_> = store
            .events(&EventQuery::all())
            .unwrap()
            .into_iter()
            .map(|e| e.row.event_id)
            .collect();
        let distinct: std::collections::HashSet<_> = stored_ids.iter().collect();
        assert_eq!(stored_ids.len(), rows.len(), "{backend}: no id twice");
        assert_eq!(distinct.len(), rows.len(), "{backend}: every id once");
    }
}
