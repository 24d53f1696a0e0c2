//! The bridge against a real `nats-server -js` started by each test: round trip of every
//! catalogue type, subjects and headers, no echo, deduplication, and bad input.

mod common;

use std::sync::Arc;
use std::time::Duration;

use agentbus::EventManager;
use agentbus_events::{DynEvent, EventMeta, Registry, catalogue, llm::LLMResponseChunkEvent};
use agentbus_nats::{
    Bridge, DurableOptions, ExportOptions, NatsError, NatsOptions, Node, Skip, StartAt,
    StreamSettings,
};
use common::{Collected, server, without_seq};
use futures::StreamExt;

const WAIT: Duration = Duration::from_secs(20);

fn options(url: &str) -> NatsOptions {
    let mut options = NatsOptions::new(url);
    options.request_timeout = Duration::from_secs(2);
    options
}

fn chunk(session: &str, i: usize) -> LLMResponseChunkEvent {
    LLMResponseChunkEvent {
        meta: EventMeta::for_session(session),
        delta: Some(i.to_string()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_catalogue_type_round_trips_typed_and_equal() {
    let nats = server();
    let producer = EventManager::new();
    let consumer = EventManager::new();
    let received = Collected::attach(&consumer, "collect");
    let a = Bridge::connect(&options(&nats.server.url())).await.unwrap();
    let b = Bridge::connect(&options(&nats.server.url())).await.unwrap();
    let _import = b
        .import_live(&consumer, None, None, StartAt::All)
        .await
        .unwrap();
    let exporter = a.export(&producer, ExportOptions::default()).unwrap();

    let mut sent: Vec<Box<dyn DynEvent>> = Vec::new();
    for (i, info) in catalogue::all().iter().enumerate() {
        for mut event in [info.example(), info.minimal()] {
            // Half in a session with characters a subject cannot hold, half without one.
            event.meta_mut().session_id = (i % 2 == 0).then(|| format!("s.{i} *>"));
            event.meta_mut().event_id = uuid::Uuid::new_v4();
            producer.try_send(event.clone_box()).unwrap();
            sent.push(event);
        }
    }
    let stats = exporter.close(WAIT).await.unwrap();
    assert_eq!(stats.acked, sent.len() as u64);
    assert_eq!(stats.duplicates, 0);
    received.wait_for(sent.len(), WAIT).await;
    let got = received.events();
    assert_eq!(got.len(), sent.len());
    for (sent, got) in sent.iter().zip(&got) {
        assert_eq!(got.event_type(), sent.event_type());
        assert!(
            without_seq(got.as_ref()).dyn_eq(without_seq(sent.as_ref()).as_ref()),
            "{} differs after NATS:\nsent {sent:?}\ngot  {got:?}",
            sent.event_type()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_carry_the_subject_and_the_event_id_as_message_id() {
    let nats = server();
    let bus = EventManager::new();
    let bridge = Bridge::connect(&options(&nats.server.url())).await.unwrap();
    let exporter = bridge.export(&bus, ExportOptions::default()).unwrap();
    let event = chunk("run 1", 0);
    let id = event.meta.event_id;
    bus.try_send(event).unwrap();
    exporter.close(WAIT).await.unwrap();
    let stream = bridge.jetstream().get_stream("AGENTBUS").await.unwrap();
    let message = stream.get_raw_message(1).await.unwrap();
    assert_eq!(
        message.subject.as_str(),
        "agentbus.run%201.plugin.llm_response_chunk"
    );
    let headers = message.headers;
    assert_eq!(
        headers.get("Nats-Msg-Id").map(|v| v.as_str()),
        Some(id.hyphenated().to_string().as_str())
    );
    assert_eq!(
        headers.get("Agentbus-Node").map(|v| v.as_str()),
        Some(bridge.node().id())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bridged_buses_do_not_echo() {
    let nats = server();
    let (bus_a, bus_b) = (EventManager::new(), EventManager::new());
    let (seen_a, seen_b) = (
        Collected::attach(&bus_a, "c"),
        Collected::attach(&bus_b, "c"),
    );
    let a = Bridge::connect(&options(&nats.server.url())).await.unwrap();
    let b = Bridge::connect_with(
        &options(&nats.server.url()),
        &StreamSettings::default(),
        Node::named("node-b").unwrap(),
    )
    .await
    .unwrap();
    let import_a = a
        .import_live(&bus_a, None, None, StartAt::New)
        .await
        .unwrap();
    let import_b = b
        .import_live(&bus_b, None, None, StartAt::New)
        .await
        .unwrap();
    let export_a = a.export(&bus_a, ExportOptions::default()).unwrap();
    let export_b = b.export(&bus_b, ExportOptions::default()).unwrap();

    bus_a.try_send(chunk("s", 1)).unwrap();
    bus_b.try_send(chunk("s", 2)).unwrap();
    seen_a.wait_for(2, WAIT).await;
    seen_b.wait_for(2, WAIT).await;
    export_a.flush(WAIT).await.unwrap();
    export_b.flush(WAIT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen_a.len(), 2, "A sees its own and B's event once each");
    assert_eq!(seen_b.len(), 2);
    assert_eq!(a.stream_state().await.unwrap().0, 2, "nothing re-exported");
    assert_eq!(import_a.stats().own, 1);
    assert_eq!(import_b.stats().own, 1);
    assert_eq!(
        export_a.stats().skipped,
        1,
        "the imported event is not exported"
    );
    assert_eq!(export_b.stats().skipped, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_republished_event_is_stored_once() {
    let nats = server();
    let bus = EventManager::new();
    let bridge = Bridge::connect(&options(&nats.server.url())).await.unwrap();
    let exporter = bridge.export(&bus, ExportOptions::default()).unwrap();
    let event = chunk("s", 0);
    bus.try_send(event.clone()).unwrap();
    bus.try_send(event).unwrap();
    let stats = exporter.close(WAIT).await.unwrap();
    assert_eq!((stats.acked, stats.duplicates), (2, 1));
    assert_eq!(bridge.stream_state().await.unwrap().0, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_types_and_sessions() {
    let nats = server();
    let (bus, viewer) = (EventManager::new(), EventManager::new());
    let seen = Collected::attach(&viewer, "c");
    let bridge = Bridge::connect(&options(&nats.server.url())).await.unwrap();
    let exporter = bridge
        .export(
            &bus,
            ExportOptions {
                types: vec!["plugin.*".into()],
                ..ExportOptions::default()
            },
        )
        .unwrap();
    let other = Bridge::connect(&options(&nats.server.url())).await.unwrap();
    let _import = other
        .import_live(&viewer, Some("keep"), Some("plugin.>"), StartAt::All)
        .await
        .unwrap();
    bus.try_send(chunk("keep", 1)).unwrap();
    bus.try_send(chunk("drop", 2)).unwrap();
    bus.try_send(agentbus_events::base::ExceptionEvent::default())
        .unwrap();
    let stats = exporter.close(WAIT).await.unwrap();
    assert_eq!((stats.acked, stats.skipped), (2, 1));
    seen.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen.events()[0].meta().session_id.as_deref(), Some("keep"));
}

/// Raw messages on agentbus subjects that are not importable: counted and skipped, and the
/// valid event after them still arrives.
async fn publish_bad_input(bridge: &Bridge) {
    let js = bridge.jetstream();
    let valid = agentbus_events::wire::to_string(&chunk("s", 1)).unwrap();
    let newer = valid.replace("\"schema_version\":1", "\"schema_version\":99");
    assert_ne!(newer, valid, "the wire format names schema_version 1");
    for payload in [
        "not json at all".to_string(),
        r#"{"type":"nobody.knows","schema_version":1}"#.to_string(),
        newer,
        r#"{"type":"plugin.llm_response_chunk","schema_version":1,"event_id":"nope"}"#.to_string(),
        valid,
    ] {
        js.publish("agentbus.s.x", payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_counted_and_skipped_by_the_live_import() {
    let nats = server();
    let viewer = EventManager::new();
    let seen = Collected::attach(&viewer, "c");
    let bridge = Bridge::connect(&options(&nats.server.url())).await.unwrap();
    let import = bridge
        .import_live(&viewer, None, None, StartAt::All)
        .await
        .unwrap();
    publish_bad_input(&bridge).await;
    seen.wait_for(1, WAIT).await;
    let stats = import.stats();
    assert_eq!(
        (
            stats.imported,
            stats.malformed,
            stats.unknown_type,
            stats.newer_schema
        ),
        (1, 2, 1, 1)
    );
    assert_eq!(seen.events()[0].event_type(), "plugin.llm_response_chunk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_consumer_skips_bad_messages_once_and_redelivers_unacked_work() {
    let nats = server();
    let bridge = Bridge::connect(&options(&nats.server.url())).await.unwrap();
    publish_bad_input(&bridge).await;
    let mut durable_options = DurableOptions::new("worker");
    durable_options.ack_wait = Duration::from_secs(1);
    let consumer = bridge
        .durable(Registry::catalogue(), durable_options.clone())
        .await
        .unwrap();
    let batch = consumer
        .next_batch(10, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(batch.len(), 5);
    let kinds: Vec<&str> = batch
        .iter()
        .map(|d| match &d.event {
            Ok(_) => "ok",
            Err(Skip::Malformed(_)) => "malformed",
            Err(Skip::UnknownType(_)) => "unknown",
            Err(Skip::NewerSchema(_)) => "newer",
            Err(_) => "other",
        })
        .collect();
    assert_eq!(kinds, ["malformed", "unknown", "newer", "malformed", "ok"]);
    // Acknowledge (terminate) the bad ones; leave the good one unacknowledged: its work
    // "failed", so it comes back, and only it.
    for d in &batch[..4] {
        d.ack().await.unwrap();
    }
    drop(batch);
    let again = consumer
        .next_batch(10, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert!(again[0].event.is_ok());
    assert_eq!(again[0].stream_sequence, 5);
    again[0].ack().await.unwrap();
    // A second process opening the same durable consumer sees nothing left.
    let second = bridge
        .durable(Registry::catalogue(), durable_options)
        .await
        .unwrap();
    let rest = second
        .next_batch(10, Duration::from_millis(1500))
        .await
        .unwrap();
    assert!(rest.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_jetstream_is_a_clear_error() {
    let nats = common::server_with(&[]);
    let error = Bridge::connect(&options(&nats.server.url()))
        .await
        .unwrap_err();
    assert!(matches!(error, NatsError::NoJetStream { .. }), "{error}");
    assert!(error.to_string().contains("-js"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_clear_error() {
    let port = agentbus_nats::server::free_port().unwrap();
    let mut options = options(&format!("nats://127.0.0.1:{port}"));
    options.connect_timeout = Duration::from_secs(1);
    let error = Bridge::connect(&options).await.unwrap_err();
    assert!(matches!(error, NatsError::Connect { .. }), "{error}");
    assert!(error.to_string().contains(&port.to_string()), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incompatible_stream_is_named() {
    let nats = server();
    let client = async_nats::connect(nats.server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "AGENTBUS".into(),
        subjects: vec!["agentbus.>".into()],
        storage: async_nats::jetstream::stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .unwrap();
    let error = Bridge::connect(&options(&nats.server.url()))
        .await
        .unwrap_err();
    assert!(
        matches!(error, NatsError::IncompatibleStream { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("storage"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_work_and_never_appear_in_errors() {
    use agentbus_nats::{Auth, Secret};
    let nats = common::server_with(&["-js", "--user", "bob", "--pass", "right-pw-123"]);
    let port = nats.server.port();
    // Right credentials, as options.
    let good = options(&nats.server.url()).auth(Auth::UserPassword {
        user: "bob".into(),
        password: Secret::new("right-pw-123"),
    });
    assert!(!format!("{good:?}").contains("right-pw-123"));
    Bridge::connect(&good).await.unwrap();
    // Wrong ones, as options and inside the URL.
    let wrong = options(&nats.server.url()).auth(Auth::UserPassword {
        user: "bob".into(),
        password: Secret::new("wrong-pw-456"),
    });
    let in_url = options(&format!("nats://bob:wrong-pw-789@127.0.0.1:{port}"));
    for (opts, secret) in [(wrong, "wrong-pw-456"), (in_url, "wrong-pw-789")] {
        let error = Bridge::connect(&opts).await.unwrap_err();
        let shown = format!("{error} {error:?} {opts:?}");
        assert!(matches!(error, NatsError::Connect { .. }), "{shown}");
        assert!(!shown.contains(secret), "credential leaked: {shown}");
    }
    // A token server.
    let token_server = common::server_with(&["-js", "--auth", "tok-abc-123"]);
    let token = options(&token_server.server.url()).auth(Auth::Token(Secret::new("tok-abc-123")));
    Bridge::connect(&token).await.unwrap();
    let error = Bridge::connect(&options(&token_server.server.url()))
        .await
        .unwrap_err();
    assert!(!error.to_string().contains("tok-abc-123"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_consumer_reads_a_session_in_order() {
    let nats = server();
    let bus = EventManager::new();
    let bridge = Bridge::connect(&options(&nats.server.url())).await.unwrap();
    let exporter = bridge.export(&bus, ExportOptions::default()).unwrap();
    for i in 0..500 {
        bus.try_send(chunk(if i % 2 == 0 { "even" } else { "odd" }, i))
            .unwrap();
    }
    exporter.close(WAIT).await.unwrap();
    let stream = bridge.jetstream().get_stream("AGENTBUS").await.unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: agentbus_nats::subject::filter_subject(Some("odd"), None),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap().take(250);
    let mut expected = 1;
    while let Some(m) = messages.next().await {
        let event: Arc<dyn DynEvent> = Registry::catalogue()
            .decode(&m.unwrap().payload)
            .unwrap()
            .into();
        let chunk = event
            .as_any()
            .downcast_ref::<LLMResponseChunkEvent>()
            .unwrap();
        assert_eq!(chunk.delta.as_deref(), Some(expected.to_string().as_str()));
        expected += 2;
    }
    assert_eq!(expected, 501);
}

/// With the broker away and the exporter's queue full, `DropOldest` drops — and says so:
/// counted in the exporter's stats and announced on the bus (`bus.subscriber_lagged`).
/// Once the broker is back, what was kept is exported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflow_while_the_broker_is_away_is_counted_and_announced() {
    let mut nats = server();
    let bridge = Bridge::connect(&options(&nats.server.url())).await.unwrap();
    let bus = EventManager::new();
    let seen = Collected::attach(&bus, "watch");
    let exporter = bridge
        .export(
            &bus,
            ExportOptions {
                capacity: 16,
                overflow: agentbus::Overflow::DropOldest,
                max_in_flight: 4,
                ..ExportOptions::default()
            },
        )
        .unwrap();
    nats.server.kill();
    const SENT: usize = 500;
    for i in 0..SENT {
        bus.send(chunk("away", i)).await.unwrap();
    }
    let lagged = || {
        seen.events()
            .iter()
            .any(|e| e.event_type() == "bus.subscriber_lagged")
    };
    let start = std::time::Instant::now();
    while exporter.stats().dropped == 0 || !lagged() {
        assert!(start.elapsed() < WAIT, "{:?}", exporter.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nats.server.restart().unwrap();
    let stats = exporter.close(Duration::from_secs(30)).await.unwrap();
    assert!(stats.dropped > 0, "{stats:?}");
    // Every event was either dropped by the bus or reached JetStream; none vanished.
    // (The lagged events themselves are bus events the exporter also takes.)
    assert!(
        stats.acked + stats.dropped >= SENT as u64,
        "{stats:?}: {SENT} sent"
    );
    assert_eq!(stats.lost, 0, "{stats:?}");
}
