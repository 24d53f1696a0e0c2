//! The browser edge's router and transport without a browser: a WebSocket client plays
//! the page. A good call's audio arrives converted to 16 kHz and its call-session events
//! are published; a cross-origin page, one call too many, a bad hello, a message that is
//! not whole samples and a silent page are each refused or ended with a clear reason.

use std::sync::Arc;
use std::time::Duration;

use agentbus::{EventManager, SubscribeOptions};
use agentbus_events::DynEvent;
use agentbus_voice::browser::{BrowserCall, BrowserConfig, BrowserLimits, router};
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

type Client = tokio_tungstenite::WebSocketStream<TcpStream>;

/// What the application's handler saw of one call.
#[derive(Debug)]
struct Seen {
    samples: usize,
    rates: Vec<u32>,
    error: Option<String>,
}

struct Edge {
    addr: std::net::SocketAddr,
    calls: mpsc::Receiver<Seen>,
    bus: EventManager,
}

async fn start() -> Edge {
    let bus = EventManager::new();
    let (tx, calls) = mpsc::channel(8);
    let config = BrowserConfig {
        limits: BrowserLimits {
            hello_timeout: Duration::from_millis(500),
            idle_timeout: Duration::from_millis(500),
            ..BrowserLimits::default()
        },
        max_calls: 1,
        record: None,
    };
    let app = router(bus.clone(), config, move |mut call: BrowserCall| {
        let tx = tx.clone();
        async move {
            let mut seen = Seen {
                samples: 0,
                rates: Vec::new(),
                error: None,
            };
            loop {
                match call.transport.recv().await {
                    Some(Ok(frame)) => {
                        seen.samples += frame.samples.len();
                        if !seen.rates.contains(&frame.sample_rate) {
                            seen.rates.push(frame.sample_rate);
                        }
                    }
                    Some(Err(error)) => {
                        seen.error = Some(error.to_string());
                        break;
                    }
                    None => break,
                }
            }
            let _ = call.transport.close().await;
            let _ = tx.send(seen).await;
            Ok(())
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Edge { addr, calls, bus }
}

async fn connect(addr: std::net::SocketAddr, origin: Option<&str>) -> Result<Client, WsError> {
    let mut request = format!("ws://{addr}/voice/ws")
        .into_client_request()
        .unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_tungstenite::client_async(request, tcp)
        .await
        .map(|(socket, _)| socket)
}

/// Connects once the previous call has let go of its place (the handler reports a call
/// just before the router ends it).
async fn connect_when_free(addr: std::net::SocketAddr) -> Client {
    for _ in 0..100 {
        match connect(addr, None).await {
            Ok(client) => return client,
            Err(WsError::Http(response)) if response.status() == 503 => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(error) => panic!("{error}"),
        }
    }
    panic!("the edge stayed busy");
}

async fn hello(client: &mut Client, rate: u32) {
    let hello = format!(r#"{{"type":"hello","sample_rate":{rate},"name":"tester"}}"#);
    client.send(Message::text(hello)).await.unwrap();
    let ready = client.next().await.unwrap().unwrap();
    assert!(
        ready.to_text().unwrap().contains(r#""type":"ready""#),
        "{ready:?}"
    );
}

fn pcm(samples: usize) -> Vec<u8> {
    (0..samples)
        .flat_map(|i| (((i as f32 * 0.05).sin() * 5000.0) as i16).to_le_bytes())
        .collect()
}

async fn next_call(edge: &mut Edge) -> Seen {
    tokio::time::timeout(Duration::from_secs(10), edge.calls.recv())
        .await
        .expect("the call ended")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_from_a_page_and_the_pages_that_are_refused() {
    let mut edge = start().await;
    let mut events = edge
        .bus
        .stream::<Arc<dyn DynEvent>>("log", SubscribeOptions::new().capacity(4096))
        .unwrap();

    // The page itself.
    let page = reqwest::get(format!("http://{}/voice", edge.addr))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("agentbus voice"));

    // A page on another site may not connect.
    match connect(edge.addr, Some("https://evil.example")).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("a cross-origin page connected: {other:?}"),
    }

    // A good call: 48 kHz audio in 20 ms messages, then bye.
    let mut call = connect(edge.addr, Some(&format!("http://{}", edge.addr)))
        .await
        .unwrap();
    hello(&mut call, 48_000).await;
    // While it runs, a second call is one too many.
    match connect(edge.addr, None).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("a second call was let in: {other:?}"),
    }
    for _ in 0..50 {
        call.send(Message::binary(pcm(960))).await.unwrap();
    }
    call.send(Message::text(r#"{"type":"bye"}"#)).await.unwrap();
    let seen = next_call(&mut edge).await;
    assert_eq!(seen.error, None);
    assert_eq!(seen.rates, [16_000], "converted once, at the edge");
    // One second at 48 kHz is 16,000 samples at 16 kHz, less what the resampler holds.
    assert!(
        (14_000..=16_000).contains(&seen.samples),
        "{}",
        seen.samples
    );
    // The page is told the call is over, then the socket closes.
    let mut done = false;
    while let Some(Ok(message)) = call.next().await {
        done |= message
            .to_text()
            .is_ok_and(|t| t.contains(r#""type":"done""#));
    }
    assert!(done, "the page hears that the call ended");

    // A hello with an impossible rate: no call starts, the socket closes.
    let mut bad = connect_when_free(edge.addr).await;
    bad.send(Message::text(r#"{"type":"hello","sample_rate":5}"#))
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(5), bad.next())
            .await
            .unwrap()
            .is_none_or(|m| m.is_err() || m.is_ok_and(|m| m.is_close())),
        "the socket is closed"
    );

    // Audio that is not whole 16-bit samples ends the call with the reason.
    let mut odd = connect_when_free(edge.addr).await;
    hello(&mut odd, 16_000).await;
    odd.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let seen = next_call(&mut edge).await;
    assert!(seen.error.unwrap().contains("odd"), "a clear reason");

    // A page that says nothing after its hello is hung up on.
    let mut silent = connect_when_free(edge.addr).await;
    hello(&mut silent, 16_000).await;
    let seen = next_call(&mut edge).await;
    assert!(seen.error.unwrap().contains("sent nothing"));

    // The good call's session: created to ended, in order.
    let mut types = Vec::new();
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(200), events.next()).await
    {
        types.push(event.event_type());
    }
    let first = |t: &str| types.iter().position(|x| *x == t).unwrap_or(usize::MAX);
    let order = [
        "call.created",
        "call.session_started",
        "agent.joined_call",
        "call.session_participant_joined",
        "call.transcription_started",
        "call.transcription_stopped",
        "call.session_participant_left",
        "agent.left_call",
        "call.session_ended",
        "call.ended",
    ];
    for pair in order.windows(2) {
        assert!(first(pair[0]) < first(pair[1]), "{pair:?} in {types:?}");
    }
    assert_eq!(
        types.iter().filter(|t| **t == "call.created").count(),
        3,
        "one call each for the good, odd and silent pages; none for the bad hello"
    );
}
