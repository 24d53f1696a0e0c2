//! `GET /events` over real HTTP, fed by a bus whose store sink writes SQLite: exact
//! resume with `Last-Event-ID`, filters, slow clients (lag policies) that never slow the
//! sender, and the JSON API beside it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentbus::EventManager;
use agentbus_events::EventMeta;
use agentbus_events::llm::LLMResponseChunkEvent;
use agentbus_serve::{AgentTemplate, LagPolicy, ServeOptions, Server};
use agentbus_store::{EventQuery, EventStore, SinkOptions, StoreSink, WriterOptions};
use futures::StreamExt;
use serde_json::Value;

struct Running {
    base: String,
    bus: EventManager,
    store: Arc<EventStore>,
    _sink: StoreSink,
    _dir: tempfile::TempDir,
}

async fn serve(options: ServeOptions) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    let bus = EventManager::new();
    let store = Arc::new(EventStore::open(&url).unwrap());
    let sink = StoreSink::attach(
        &bus,
        store.writer(WriterOptions::default()).unwrap(),
        SinkOptions::default(),
    )
    .unwrap();
    let model = Arc::new(agentbus_agent::testing::ScriptedTurns::new(
        "unused",
        vec![],
    ));
    let server = Server::with_store(
        bus.clone(),
        AgentTemplate::new(model),
        options,
        store.clone(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, server.router()).await });
    Running {
        base: format!("http://{addr}"),
        bus,
        store,
        _sink: sink,
        _dir: dir,
    }
}

/// The one place these tests send on the bus.
async fn publish(bus: &EventManager, session: &str, text: String) {
    let event = LLMResponseChunkEvent {
        meta: EventMeta::for_session(session),
        delta: Some(text),
        ..Default::default()
    };
    bus.send(event).await.unwrap();
}

/// One SSE frame.
#[derive(Debug)]
struct Frame {
    id: Option<u64>,
    event: Option<String>,
    data: String,
}

/// Reads SSE frames from a response body.
struct Reader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl Reader {
    fn new(response: reqwest::Response) -> Self {
        Self {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next frame with data (keep-alive comments skipped); `None` at the end.
    async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut frame = Frame {
                    id: None,
                    event: None,
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        frame.id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        frame.event = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        frame.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if frame.data.is_empty() {
                    continue;
                }
                return Some(frame);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.body.next())
                .await
                .expect("the stream stalled")?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk.ok()?));
        }
    }
}

async fn wait_stored(store: &EventStore, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.count().unwrap() < count {
        assert!(
            Instant::now() < deadline,
            "the store has {} of {count}",
            store.count().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn get(url: String, last_event_id: Option<u64>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(url);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_resumes_exactly_after_event_k() {
    let server = serve(ServeOptions::default()).await;
    for i in 0..50 {
        publish(&server.bus, "s1", format!("chunk {i}")).await;
    }
    wait_stored(&server.store, 50).await;
    let mut reader = Reader::new(get(format!("{}/events?after=0", server.base), None).await);
    let mut ids = Vec::new();
    for _ in 0..20 {
        let frame = reader.next().await.unwrap();
        let event: Value = serde_json::from_str(&frame.data).unwrap();
        assert_eq!(event["type"], "plugin.llm_response_chunk");
        ids.push(frame.id.unwrap());
    }
    assert_eq!(ids, (1..=20).collect::<Vec<u64>>());
    drop(reader); // disconnect after event k = 20
    for i in 50..80 {
        publish(&server.bus, "s1", format!("chunk {i}")).await; // sent while away
    }
    let mut reader = Reader::new(get(format!("{}/events", server.base), Some(20)).await);
    for i in 80..100 {
        publish(&server.bus, "s1", format!("chunk {i}")).await; // sent after reconnecting
    }
    let stored = server.store.events(&EventQuery::all()).unwrap();
    let mut resumed = Vec::new();
    while resumed.len() < 80 {
        let frame = reader.next().await.unwrap();
        let id = frame.id.unwrap();
        let event: Value = serde_json::from_str(&frame.data).unwrap();
        let expected: Value = serde_json::from_str(
            &server
                .store
                .events(&EventQuery {
                    after_seq: Some(id - 1),
                    limit: Some(1),
                    ..EventQuery::default()
                })
                .unwrap()[0]
                .row
                .body,
        )
        .unwrap();
        assert_eq!(event, expected, "event {id} is the stored one");
        resumed.push(id);
    }
    assert_eq!(
        resumed,
        (21..=100).collect::<Vec<u64>>(),
        "k+1 … with no gap and no duplicate"
    );
    assert!(stored.len() >= 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_by_session_and_type_pattern() {
    let server = serve(ServeOptions::default()).await;
    let mut by_session = Reader::new(get(format!("{}/events?session=b", server.base), None).await);
    let mut by_type = Reader::new(
        get(
            format!("{}/events?type=plugin.llm_*,react.*", server.base),
            None,
        )
        .await,
    );
    let mut none =
        Reader::new(get(format!("{}/events?type=vad.*&after=0", server.base), None).await);
    for i in 0..10 {
        publish(
            &server.bus,
            if i % 2 == 0 { "a" } else { "b" },
            format!("{i}"),
        )
        .await;
    }
    for expected in [1, 3, 5, 7, 9] {
        let frame = by_session.next().await.unwrap();
        let event: Value = serde_json::from_str(&frame.data).unwrap();
        assert_eq!(event["session_id"], "b");
        assert_eq!(event["delta"], expected.to_string());
    }
    for expected in 0..10 {
        let event: Value = serde_json::from_str(&by_type.next().await.unwrap().data).unwrap();
        assert_eq!(event["delta"], expected.to_string());
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), none.next())
            .await
            .is_err(),
        "no event matches vad.*"
    );
    let bad = reqwest::get(format!("{}/events?type=a%20b", server.base))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad = reqwest::Client::new()
        .get(format!("{}/events", server.base))
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

/// A client that stops reading falls behind the ring; the sender is never slowed.
async fn stalled_client(policy: LagPolicy) -> (Vec<Frame>, u64) {
    let server = serve(ServeOptions {
        lag_policy: policy,
        ring_capacity: 256,
        ..ServeOptions::default()
    })
    .await;
    let stalled = get(format!("{}/events", server.base), None).await;
    let payload = "x".repeat(4096);
    let total = 6000u64; // ~25 MB: more than the sockets buffer for a client not reading
    let started = Instant::now();
    let sender = {
        let bus = server.bus.clone();
        let payload = payload.clone();
        tokio::spawn(async move {
            for i in 0..total {
                publish(&bus, "load", format!("{i} {payload}")).await;
            }
        })
    };
    sender.await.unwrap();
    let elapsed = started.elapsed();
    wait_stored(&server.store, total).await;
    assert!(
        elapsed < Duration::from_secs(60),
        "sending took {elapsed:?}"
    );
    // Now the stalled client reads what it has.
    let mut stalled = Reader::new(stalled);
    let mut frames = Vec::new();
    while let Ok(Some(frame)) = tokio::time::timeout(Duration::from_secs(5), stalled.next()).await {
        let done = frame.id == Some(total);
        frames.push(frame);
        if done {
            break;
        }
    }
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lagged: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("agentbus_serve_sse_lagged_total "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(lagged >= 1, "{metrics}");
    (frames, total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_told_and_catches_up_from_the_store() {
    let (frames, total) = stalled_client(LagPolicy::CatchUp).await;
    let lagged = frames
        .iter()
        .position(|f| f.event.as_deref() == Some("lagged"));
    assert!(lagged.is_some(), "the client was told it lagged");
    let ids: Vec<u64> = frames.iter().filter_map(|f| f.id).collect();
    assert_eq!(
        ids,
        (1..=total).collect::<Vec<u64>>(),
        "nothing lost, nothing twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_disconnected_by_policy() {
    let (frames, total) = stalled_client(LagPolicy::Disconnect).await;
    let last = frames.last().unwrap();
    assert_eq!(
        last.event.as_deref(),
        Some("lagged"),
        "the stream ends with the notice"
    );
    let ids: Vec<u64> = frames.iter().filter_map(|f| f.id).collect();
    assert!((ids.len() as u64) < total);
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<u64>>(),
        "what it got has no gap"
    );
    let notice: Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(notice["missed_after"], *ids.last().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_reads_sessions_events_and_stats() {
    let server = serve(ServeOptions::default()).await;
    for i in 0..5 {
        publish(&server.bus, "s-api", format!("{i}")).await;
    }
    wait_stored(&server.store, 5).await;
    let sessions: Value = reqwest::get(format!("{}/api/sessions", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sessions[0]["session_id"], "s-api");
    assert_eq!(sessions[0]["events"], 5);
    let page: Value = reqwest::get(format!(
        "{}/api/sessions/s-api/events?after=2&limit=2",
        server.base
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(page["events"][0]["seq"], 3);
    assert_eq!(page["events"][1]["event"]["delta"], "3");
    assert_eq!(page["next_after"], 4);
    let missing = reqwest::get(format!("{}/api/sessions/nope/events", server.base))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let stats = reqwest::get(format!("{}/api/stats", server.base))
        .await
        .unwrap();
    assert_eq!(stats.status(), 200);
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("agentbus_bus_events_total 5"), "{metrics}");
    assert!(metrics.contains("agentbus_serve_sse_clients 0"));
}
