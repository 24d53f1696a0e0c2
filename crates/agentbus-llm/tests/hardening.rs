//! A hostile or broken server against `HttpModel` over real loopback HTTP: absurd retry
//! headers, storms of errors, never-ending lines and events, endless keep-alives, headers
//! then silence, echoed keys, passwords in URLs. Every case ends in exactly one terminal
//! event, without a panic, within the configured bounds.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentbus::EventManager;
use agentbus_events::DynEvent;
use agentbus_llm::{
    Api, ApiKey, ChatModel, ChatRequest, HttpConfig, HttpModel, InstrumentedModel, StreamErrorKind,
    StreamEvent, StreamLimits,
};
use agentbus_test_support::{FakeServer, Framing, Reply, closed_port};
use common::{assert_one_terminal_last, error_of, fixtures, run, summarize};
use futures::StreamExt;

fn config(base_url: &str) -> HttpConfig {
    common::fast_config(base_url, Duration::from_millis(50))
}

fn rate_limited(header: &str, value: &str) -> Reply {
    Reply::Status {
        status: 429,
        headers: vec![(header.into(), value.into())],
        body: r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#.into(),
    }
}

#[tokio::test]
async fn absurd_retry_headers_are_capped_or_ignored_and_the_call_still_succeeds() {
    let f = fixtures()
        .into_iter()
        .find(|f| f.name == "openai__chat_text_usage")
        .unwrap();
    let far_future = "Fri, 31 Dec 9999 23:59:59 GMT";
    for (header, value) in [
        ("retry-after", "1e20"),
        ("retry-after-ms", "1e300"),
        ("retry-after", "-1"),
        ("retry-after", "NaN"),
        ("retry-after-ms", "inf"),
        ("retry-after", "18446744073709551616"),
        ("retry-after", far_future),
        ("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ("retry-after", "tomorrow-ish"),
    ] {
        let server = FakeServer::start(vec![
            rate_limited(header, value),
            Reply::stream_split(&f.body, 64, Duration::ZERO),
        ])
        .await;
        let events = run(f.api, config(&server.base_url)).await;
        assert_eq!(summarize(&events), f.expected, "{header}: {value}");
        assert_eq!(server.requests().len(), 2, "{header}: {value}");
    }
}

#[tokio::test]
async fn a_storm_of_429_500_503_and_cut_streams_ends_in_one_error() {
    let cut =
        b"data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\ndata: {\"choi"
            .to_vec();
    let server = FakeServer::start(vec![
        rate_limited("retry-after", "1e20"),
        Reply::status(500, r#"{"error":{"message":"boom","type":"server_error"}}"#),
        Reply::Stream {
            pieces: vec![(Duration::ZERO, cut.clone())],
            framing: Framing::Chunked { complete: false },
        },
        rate_limited("retry-after-ms", "1e300"),
        Reply::status(503, "upstream down"),
        Reply::Stream {
            pieces: vec![(Duration::ZERO, cut)],
            framing: Framing::Close,
        },
    ])
    .await;
    let mut config = config(&server.base_url);
    config.retry.max_retries = 5;
    let events = run(Api::OpenAiChat, config).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let error = error_of(&events);
    assert_eq!(error.kind, StreamErrorKind::Network);
    assert_eq!(server.requests().len(), 6);
}

#[tokio::test]
async fn a_never_ending_line_is_refused_without_a_retry() {
    let limits = StreamLimits {
        max_line_bytes: 64 * 1024,
        ..StreamLimits::default()
    };
    let mut body = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"".to_vec();
    body.resize(1024 * 1024, b'x');
    let server = FakeServer::start(vec![
        Reply::stream_split(&body, 16 * 1024, Duration::ZERO),
        Reply::stream_split(&body, 16 * 1024, Duration::ZERO),
    ])
    .await;
    let events = run(
        Api::OpenAiChat,
        config(&server.base_url).with_limits(limits),
    )
    .await;
    let error = error_of(&events);
    assert_eq!(error.kind, StreamErrorKind::Protocol, "{error:?}");
    assert!(!error.recoverable);
    assert_eq!(error.code.as_deref(), Some("stream_limit_exceeded"));
    assert!(error.message.contains("65536 bytes"), "{}", error.message);
    assert_eq!(server.requests().len(), 1, "a limit error is not retried");
}

#[tokio::test]
async fn data_lines_without_an_end_of_event_are_refused_without_a_retry() {
    let limits = StreamLimits {
        max_event_bytes: 100 * 1024,
        ..StreamLimits::default()
    };
    let body = "data: {\"choices\":[]}\n".repeat(20_000);
    let server = FakeServer::start(vec![
        Reply::stream_split(body.as_bytes(), 8 * 1024, Duration::ZERO),
        Reply::stream_split(body.as_bytes(), 8 * 1024, Duration::ZERO),
    ])
    .await;
    let events = run(
        Api::AnthropicMessages,
        config(&server.base_url).with_limits(limits),
    )
    .await;
    let error = error_of(&events);
    assert_eq!(
        (error.kind, error.recoverable),
        (StreamErrorKind::Protocol, false),
        "{error:?}"
    );
    assert!(error.message.contains("102400 bytes"), "{}", error.message);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn keep_alive_comments_do_not_extend_the_request_past_its_deadline() {
    let pieces = (0..600)
        .map(|_| (Duration::from_millis(50), b": keep-alive\n\n".to_vec()))
        .collect();
    let server = FakeServer::start(vec![Reply::Stream {
        pieces,
        framing: Framing::Close,
    }])
    .await;
    let mut config = config(&server.base_url);
    config.timeouts.total = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let events = run(Api::OpenAiChat, config).await;
    let error = error_of(&events);
    assert_eq!(error.kind, StreamErrorKind::Timeout);
    assert_eq!(error.code.as_deref(), Some("request_deadline_exceeded"));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the stream of keep-alives lasts 30 s"
    );
    assert_eq!(server.requests().len(), 1, "no time left for a retry");
}

#[tokio::test]
async fn headers_then_nothing_is_bounded_by_the_first_byte_limit_and_the_deadline() {
    let silent = || Reply::Stream {
        pieces: vec![(Duration::from_secs(60), b"data: [DONE]\n\n".to_vec())],
        framing: Framing::Close,
    };
    // Each attempt gets the first-byte limit; the total deadline stops the retries.
    let server = FakeServer::start(vec![silent(), silent(), silent()]).await;
    let mut config = config(&server.base_url);
    config.timeouts.first_byte = Duration::from_millis(300);
    config.timeouts.total = Duration::from_millis(500);
    let events = run(Api::OpenAiChat, config).await;
    let error = error_of(&events);
    assert_eq!(error.kind, StreamErrorKind::Timeout);
    assert_eq!(error.code.as_deref(), Some("request_deadline_exceeded"));
    assert_eq!(server.requests().len(), 2, "{error:?}");

    // Without a binding deadline: the first-byte limit, named as such, per attempt.
    let server = FakeServer::start(vec![silent(), silent()]).await;
    let mut config = self::config(&server.base_url);
    config.timeouts.first_byte = Duration::from_millis(150);
    config.retry.max_retries = 1;
    let events = run(Api::OpenAiChat, config).await;
    let error = error_of(&events);
    assert!(
        error.message.contains("headers arrived but no body bytes"),
        "{}",
        error.message
    );
    assert_eq!(server.requests().len(), 2);
}

const KEY: &str = "sk-proj-Zr8uQ1xW4vN7bT2yK5mP9cL3";

fn echoes_the_key() -> Vec<Reply> {
    vec![
        Reply::status(
            401,
            &format!(
                r#"{{"error":{{"message":"Incorrect API key provided: Bearer {KEY}. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}}}"#
            ),
        ),
        Reply::status(401, &format!("x-api-key {KEY} is not valid")),
        Reply::stream_split(
            format!(
                "event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"authentication_error\",\"message\":\"invalid x-api-key: {KEY}\"}}}}\n\n"
            )
            .as_bytes(),
            40,
            Duration::ZERO,
        ),
        Reply::stream_split(
            format!("data: {{\"not json {KEY}\n\n").as_bytes(),
            40,
            Duration::ZERO,
        ),
    ]
}

#[tokio::test]
async fn an_echoed_key_reaches_no_error_and_no_event() {
    for (reply, api) in echoes_the_key().into_iter().zip([
        Api::OpenAiChat,
        Api::OpenAiResponses,
        Api::AnthropicMessages,
        Api::OpenAiChat,
    ]) {
        let server = FakeServer::start(vec![reply]).await;
        let bus = EventManager::new();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = Arc::clone(&seen);
        bus.subscribe("capture", move |e: Arc<dyn DynEvent>| {
            let sink = Arc::clone(&sink);
            async move { sink.lock().unwrap().push(e.to_wire_string().unwrap()) }
        })
        .unwrap();
        let http = HttpModel::new(
            api,
            config(&server.base_url).with_api_key(Some(ApiKey::new(KEY))),
        )
        .unwrap();
        let model = InstrumentedModel::new(http, bus.clone());
        let events: Vec<StreamEvent> = model.stream(ChatRequest::from_prompt("hi")).collect().await;
        bus.wait(Duration::from_secs(5)).await.unwrap();
        assert_one_terminal_last("echo", &events);
        let error = error_of(&events);
        assert!(!format!("{error:?}").contains(&KEY[8..]), "{error:?}");
        assert!(error.message.contains("[REDACTED]"), "{}", error.message);
        let wire = seen.lock().unwrap().join("\n");
        assert!(wire.contains("llm_error"), "{wire}");
        assert!(!wire.contains(&KEY[8..]), "{wire}");
        // The key was sent, so the server really had it to echo.
        assert!(server.requests()[0].head.contains(KEY));
    }
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn passwords_in_the_url_reach_no_log_and_no_error() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // Retries (WARN lines) against a server that fails, through a URL with a password.
    let server = FakeServer::start(vec![
        rate_limited("retry-after", "1e20"),
        Reply::status(500, "boom"),
        Reply::status(500, "boom"),
    ])
    .await;
    let url = server.base_url.replace("http://", "http://alice:hunter2@");
    let events = run(Api::OpenAiChat, config(&url)).await;
    assert_eq!(error_of(&events).status, Some(500));
    // A refused connection: the transport error quotes the URL.
    let addr = closed_port();
    let mut refused = config(&format!("http://alice:hunter2@{addr}/v1"));
    refused.retry.max_retries = 1;
    let events = run(Api::OpenAiChat, refused).await;
    let error = error_of(&events);
    assert_eq!(error.kind, StreamErrorKind::Network);
    assert!(!error.message.contains("hunter2"), "{}", error.message);

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("retrying"), "{logs}");
    assert!(logs.contains("alice:***@"), "{logs}");
    assert!(!logs.contains("hunter2"), "{logs}");
}
