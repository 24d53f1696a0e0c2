//! Chaos: SIGKILL the nats-server in the middle of a 100,000-event export and restart it;
//! the stream then holds exactly the events sent — each once. Run three times, killing at
//! different points.
//!
//! Order: events the client had buffered when the server died are sent on reconnect, before
//! the exporter re-publishes the ones the server lost, so a few events of a session can land
//! in the stream after later ones. Each carries its origin bus `seq` (`meta.seq`), which
//! orders them; the test checks that every session's events, by that seq, are exactly those
//! sent, and prints how many landed out of stream order.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use agentbus::EventManager;
use agentbus_events::{EventMeta, Registry, llm::LLMResponseChunkEvent};
use agentbus_nats::{Bridge, ExportOptions, NatsOptions};
use futures::StreamExt;

const EVENTS: usize = 100_000;
const SESSIONS: usize = 4;

async fn run_once(kill_at: u64) {
    let mut nats = common::server();
    let url = nats.server.url();
    let mut options = NatsOptions::new(&url);
    options.request_timeout = Duration::from_secs(1);
    let bridge = Bridge::connect(&options).await.unwrap();
    let bus = EventManager::new();
    let exporter = bridge.export(&bus, ExportOptions::default()).unwrap();

    let mut sent = Vec::with_capacity(EVENTS);
    let mut killed = false;
    for i in 0..EVENTS {
        let session = format!("s{}", i % SESSIONS);
        let event = LLMResponseChunkEvent {
            meta: EventMeta::for_session(session),
            delta: Some(i.to_string()),
            ..Default::default()
        };
        sent.push(event.meta.event_id);
        bus.send(event).await.unwrap();
        if !killed && exporter.stats().acked >= kill_at {
            killed = true;
            nats.server.kill();
            // The exporter buffers meanwhile; the sends above carry on until its queue is
            // full, then wait (Block).
            tokio::time::sleep(Duration::from_millis(300)).await;
            nats.server.restart().unwrap();
        }
    }
    assert!(killed, "the server was never killed");
    let stats = exporter.close(Duration::from_secs(120)).await.unwrap();
    assert_eq!(stats.acked, EVENTS as u64, "{stats:?}");
    // Whether a publish failed depends on timing: the client buffers what is sent while
    // the server is down and a restart within the ack timeout answers every one.
    eprintln!(
        "killed at {kill_at} acks: {} outage(s), {} re-published",
        stats.outages, stats.republished
    );

    // Read the whole stream back.
    let (messages, _) = bridge.stream_state().await.unwrap();
    assert_eq!(
        messages, EVENTS as u64,
        "exactly the events sent, none twice"
    );
    let stream = bridge.jetstream().get_stream("AGENTBUS").await.unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut reader = consumer.messages().await.unwrap().take(EVENTS);
    let registry = Registry::catalogue();
    let mut ids = HashSet::with_capacity(EVENTS);
    let mut last = [None::<usize>; SESSIONS];
    let mut late = 0;
    while let Some(message) = reader.next().await {
        let event = registry.decode(&message.unwrap().payload).unwrap();
        let chunk = event
            .as_any()
            .downcast_ref::<LLMResponseChunkEvent>()
            .unwrap();
        let i: usize = chunk.delta.as_deref().unwrap().parse().unwrap();
        let s = i % SESSIONS;
        if last[s].is_some_and(|prev| prev > i) {
            late += 1;
        }
        last[s] = last[s].max(Some(i));
        // The origin seq orders the session whatever the stream order.
        assert_eq!(
            chunk.meta.seq.map(|seq| seq.get()),
            Some(i as u64 + 1),
            "event {i} keeps its origin seq"
        );
        assert!(ids.insert(chunk.meta.event_id), "event {i} twice");
    }
    assert_eq!(ids, sent.into_iter().collect::<HashSet<_>>());
    eprintln!("killed at {kill_at} acks: {late} events landed after later ones of their session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_server_mid_export_loses_and_duplicates_nothing() {
    for kill_at in [10_000, 50_000, 85_000] {
        run_once(kill_at).await;
    }
}
