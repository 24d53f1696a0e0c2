//! The store on a live bus: every event stored in bus order, silent types skipped, and a
//! replay through a new bus delivering the same events.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentbus::EventManager;
use agentbus_events::stream::StreamTextDeltaEvent;
use agentbus_events::{DynEvent, Registry};
use agentbus_store::{
    EventQuery, EventStore, Recording, ReplaySpeed, SinkOptions, StoreSink, WriterOptions,
};
use common::{TestStore, catalogue_events, llm_session};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_session_is_stored_and_replays_identically() {
    for (backend, test) in TestStore::both() {
        let store = EventStore::open(&test.url).unwrap();
        let bus = EventManager::new();
        let keep_audio = WriterOptions {
            audio: agentbus_store::AudioPolicy::Keep,
            ..WriterOptions::default()
        };
        let sink = StoreSink::attach(
            &bus,
            store.writer(keep_audio).unwrap(),
            SinkOptions::default(),
        )
        .unwrap();
        let mut sent = Vec::new();
        for event in catalogue_events("live")
            .into_iter()
            .chain(llm_session("live", "r", "m", 0))
        {
            sent.push(event.clone());
            bus.send(event).await.unwrap();
        }
        let report = sink.close(WAIT).await.unwrap();
        assert_eq!(report.written, sent.len() as u64, "{backend}");

        let stored = store.events(&EventQuery::session("live")).unwrap();
        assert_eq!(stored.len(), sent.len(), "{backend}");
        let bus_seqs: Vec<u64> = stored.iter().map(|e| e.row.bus_seq.unwrap()).collect();
        assert!(
            bus_seqs.windows(2).all(|w| w[0] < w[1]),
            "{backend}: bus order"
        );
        for (original, row) in sent.iter().zip(&stored) {
            assert_eq!(
                row.row.event_id,
                original.meta().event_id.to_string(),
                "{backend}"
            );
        }

        // Replay into a fresh bus, collected by a wildcard subscriber.
        let replay_bus = EventManager::new();
        let received: Arc<Mutex<Vec<Arc<dyn DynEvent>>>> = Arc::default();
        let sink_received = Arc::clone(&received);
        replay_bus
            .subscribe("collect", move |e: Arc<dyn DynEvent>| {
                let received = Arc::clone(&sink_received);
                async move { received.lock().unwrap().push(e) }
            })
            .unwrap();
        let recording = Recording::open(&store, "live", &Registry::catalogue()).unwrap();
        let n = recording
            .play_into(&replay_bus, ReplaySpeed::Max)
            .await
            .unwrap();
        assert_eq!(n, sent.len() as u64);
        replay_bus.wait(WAIT).await.unwrap();
        let received = std::mem::take(&mut *received.lock().unwrap());
        assert_eq!(received.len(), sent.len(), "{backend}");
        for (original, replayed) in sent.iter().zip(received.iter()) {
            // Same type, id, time and fields; only the bus seq is the replay bus's own.
            let mut a = original.to_wire_value().unwrap();
            let mut b = replayed.to_wire_value().unwrap();
            a.as_object_mut().unwrap().remove("seq");
            b.as_object_mut().unwrap().remove("seq");
            assert_eq!(a, b, "{backend}");
        }
        let _report = replay_bus.shutdown(WAIT).await;
        let _report = bus.shutdown(WAIT).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_types_are_skipped_unless_configured() {
    let test = TestStore::sqlite();
    let store = EventStore::open(&test.url).unwrap();
    for store_silent in [false, true] {
        let bus = EventManager::new();
        bus.silent::<StreamTextDeltaEvent>();
        let session = format!("silent-{store_silent}");
        let sink = StoreSink::attach(
            &bus,
            store.writer(WriterOptions::default()).unwrap(),
            SinkOptions {
                store_silent,
                ..SinkOptions::default()
            },
        )
        .unwrap();
        for event in llm_session(&session, "r", "m", 0) {
            bus.send(event).await.unwrap();
        }
        sink.close(WAIT).await.unwrap();
        let deltas = store
            .events(&EventQuery::session(&session).with_types(["stream.text_delta"]))
            .unwrap();
        assert_eq!(deltas.len(), if store_silent { 2 } else { 0 });
        assert_eq!(
            store.events(&EventQuery::session(&session)).unwrap().len(),
            if store_silent { 5 } else { 3 }
        );
        let _report = bus.shutdown(WAIT).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_every_queue_is_stored_whole() {
    let test = TestStore::sqlite();
    let store = EventStore::open(&test.url).unwrap();
    let bus = EventManager::new();
    let sink = StoreSink::attach(
        &bus,
        store
            .writer(WriterOptions {
                capacity: 16,
                max_batch: 32,
                ..WriterOptions::default()
            })
            .unwrap(),
        SinkOptions {
            capacity: 16,
            ..SinkOptions::default()
        },
    )
    .unwrap();
    let templates = catalogue_events("burst");
    let mut total = 0;
    for _ in 0..20 {
        for template in &templates {
            let mut event = template.clone();
            event.meta_mut().event_id = uuid::Uuid::new_v4();
            // send(..).await waits for room: backpressure instead of loss.
            let event: StreamTextDeltaEvent = StreamTextDeltaEvent {
                meta: event.meta().clone(),
                request_id: "r".into(),
                content: "x".into(),
                snapshot_len: 1,
            };
            bus.send(event).await.unwrap();
            total += 1;
        }
    }
    let report = sink.close(WAIT).await.unwrap();
    assert_eq!(report.written, total);
    assert_eq!(store.count().unwrap(), total);
    let _report = bus.shutdown(WAIT).await;
}
