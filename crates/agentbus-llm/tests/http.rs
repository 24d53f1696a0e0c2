//! Providers over real HTTP on loopback against a fake server: every fixture, framing
//! quirks, parallel tool calls, usage after finish, truncation, in-band errors, retries,
//! timeouts. Every case ends in exactly one terminal event.

mod common;

use std::time::Duration;

use agentbus_llm::{Api, ApiKey, HttpConfig, RetryPolicy, StreamErrorKind, StreamEvent};
use agentbus_test_support::{FakeServer, Framing, Reply, closed_port};
use common::{error_of, fixtures, run, summarize};
use serde_json::json;

fn test_config(server: &FakeServer) -> HttpConfig {
    common::fast_config(&server.base_url, Duration::from_millis(200))
}

fn fixture(name: &str) -> common::Fixture {
    fixtures()
        .into_iter()
        .find(|f| f.name == name)
        .expect("fixture")
}

#[tokio::test]
async fn every_fixture_over_http_in_small_pieces() {
    for (i, fixture) in fixtures().into_iter().enumerate() {
        let piece = 5 + (i * 7) % 61;
        let server = FakeServer::start(vec![Reply::stream_split(
            &fixture.body,
            piece,
            Duration::ZERO,
        )])
        .await;
        let events = run(fixture.api, test_config(&server)).await;
        assert_eq!(summarize(&events), fixture.expected, "{}", fixture.name);
        assert_eq!(server.requests().len(), 1, "{}", fixture.name);
    }
}

fn quirked(body: &[u8], transform: impl Fn(&str) -> String) -> Vec<u8> {
    transform(std::str::from_utf8(body).unwrap()).into_bytes()
}

#[tokio::test]
async fn framing_quirks_decode_the_same() {
    let f = fixture("openai__chat_tool_call_nested_args");
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("crlf", quirked(&f.body, |s| s.replace('\n', "\r\n"))),
        ("cr", quirked(&f.body, |s| s.replace('\n', "\r"))),
        (
            "no space after colon",
            quirked(&f.body, |s| s.replace("data: ", "data:")),
        ),
        (
            "comments and fields",
            quirked(&f.body, |s| {
                s.replace(
                    "data: ",
                    ": keep-alive\nid: 1\nretry: 100\nevent: message\nunknown: x\ndata: ",
                )
            }),
        ),
        (
            "multi-line data",
            quirked(&f.body, |s| s.replace("data: {\"", "data: {\ndata: \"")),
        ),
        (
            "bom and blank lines",
            quirked(&f.body, |s| {
                format!("\u{feff}\n\n{}", s.replace("\n\n", "\n\n\n"))
            }),
        ),
    ];
    for (name, body) in variants {
        for piece in [1usize, 3, 64] {
            let server =
                FakeServer::start(vec![Reply::stream_split(&body, piece, Duration::ZERO)]).await;
            let events = run(f.api, test_config(&server)).await;
            assert_eq!(summarize(&events), f.expected, "{name}, pieces of {piece}");
        }
    }
}

#[tokio::test]
async fn utf8_split_inside_characters_with_delays() {
    let body = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"héllo ☃\"}}],\"model\":\"m\"}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" 🎉 ok\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n"
    )
    .as_bytes();
    let server = FakeServer::start(vec![Reply::stream_split(
        body,
        1,
        Duration::from_micros(200),
    )])
    .await;
    let events = run(Api::OpenAiChat, test_config(&server)).await;
    let summary = summarize(&events);
    assert_eq!(summary["text"], "héllo ☃ 🎉 ok");
    assert_eq!(summary["finish_reason"], "stop");
}

#[tokio::test]
async fn interleaved_parallel_tool_calls_are_routed_by_index() {
    let chunks = [
        json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"weather","arguments":""}}]}}],"model":"m"}),
        json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"time","arguments":""}}]}}]}),
        json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]}),
        json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"tz\":\"UT"}}]}}]}),
        json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}},{"index":1,"function":{"arguments":"C\"}"}}]}}]}),
        json!({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}),
        json!({"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":20}}),
    ];
    let mut body = String::new();
    for chunk in &chunks {
        body.push_str(&format!("data: {chunk}\n\n"));
    }
    body.push_str("data: [DONE]\n\n");
    let server = FakeServer::start(vec![Reply::stream_split(
        body.as_bytes(),
        17,
        Duration::from_micros(100),
    )])
    .await;
    let events = run(Api::OpenAiChat, test_config(&server)).await;
    let summary = summarize(&events);
    assert_eq!(
        summary["tool_calls"],
        json!([
            {"id": "call_a", "name": "weather", "arguments": {"city": "Paris"}},
            {"id": "call_b", "name": "time", "arguments": {"tz": "UTC"}},
        ])
    );
    assert_eq!(summary["usage"]["input_tokens"], 10);
    assert_eq!(summary["usage"]["output_tokens"], 20);
    let deltas: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCallDelta(d) => Some((d.index, d.arguments_delta.clone())),
            _ => None,
        })
        .collect();
    assert!(
        deltas.contains(&(1, "{\"tz\":\"UT".to_owned())),
        "{deltas:?}"
    );
}

#[tokio::test]
async fn usage_after_finish_with_null_choices() {
    let body = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}],\"model\":\"gpt-4o-mini\"}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"choices\":null,\"usage\":{\"prompt_tokens\":1000,\"completion_tokens\":1000,",
        "\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n",
        "data: [DONE]\n\n"
    );
    let server = FakeServer::start(vec![Reply::stream_split(
        body.as_bytes(),
        9,
        Duration::ZERO,
    )])
    .await;
    let events = run(Api::OpenAiChat, test_config(&server)).await;
    let StreamEvent::Finish(finish) = events.last().unwrap() else {
        panic!()
    };
    assert_eq!((finish.input_tokens, finish.output_tokens), (1000, 1000));
    let cost = finish.cost_usd.expect("gpt-4o-mini is priced");
    assert!((cost - 0.00075).abs() < 1e-12, "{cost}");
    // The request asked for the usage chunk.
    assert_eq!(
        server.requests()[0].body["stream_options"]["include_usage"],
        true
    );
}

#[tokio::test]
async fn truncated_streams_are_recoverable_errors_and_not_retried_after_output() {
    let f = fixture("openai__chat_two_tool_calls");
    let cut = f.body.len() * 2 / 3;
    for framing in [Framing::Close, Framing::Chunked { complete: false }] {
        let server = FakeServer::start(vec![Reply::Stream {
            pieces: vec![(Duration::ZERO, f.body[..cut].to_vec())],
            framing,
        }])
        .await;
        let events = run(f.api, test_config(&server)).await;
        let error = error_of(&events);
        assert!(
            matches!(error.kind, StreamErrorKind::Network),
            "{framing:?}: {error:?}"
        );
        assert!(error.recoverable);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, StreamEvent::ToolCallDelta(_)))
        );
        assert!(
            !events.iter().any(|e| matches!(e, StreamEvent::ToolCall(_))),
            "incomplete calls are not delivered"
        );
        assert_eq!(server.requests().len(), 1, "no retry after output");
    }
    // The same for Anthropic and Responses: no end marker, no success.
    for name in [
        "anthropic__parallel_tool_use",
        "openai__responses_function_call_nested",
    ] {
        let f = fixture(name);
        let cut = f.body.len() - 40;
        let server = FakeServer::start(vec![Reply::stream_split(
            &f.body[..cut],
            100,
            Duration::ZERO,
        )])
        .await;
        let events = run(f.api, test_config(&server)).await;
        assert!(error_of(&events).recoverable, "{name}");
    }
}

#[tokio::test]
async fn in_band_errors_end_the_stream() {
    let body = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"par\"}}]}\n\n",
        "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\",\"code\":null}}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"never\"}}]}\n\n",
    );
    let server = FakeServer::start(vec![Reply::stream_split(
        body.as_bytes(),
        50,
        Duration::ZERO,
    )])
    .await;
    let events = run(Api::OpenAiChat, test_config(&server)).await;
    let error = error_of(&events);
    assert_eq!(error.kind, StreamErrorKind::Server);
    assert!(summarize(&events)["text"] == "par");

    let body = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude\",\"usage\":{\"input_tokens\":3}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
    );
    let server = FakeServer::start(vec![Reply::stream_split(
        body.as_bytes(),
        50,
        Duration::ZERO,
    )])
    .await;
    let events = run(Api::AnthropicMessages, test_config(&server)).await;
    let error = error_of(&events);
    assert_eq!(error.kind, StreamErrorKind::Overloaded);
    assert!(error.recoverable);
    assert_eq!(server.requests().len(), 1, "text was streamed: no retry");

    // Invalid JSON in a chunk is a protocol error.
    let server = FakeServer::start(vec![Reply::stream_split(
        b"data: {\"choices\":[\n\n",
        50,
        Duration::ZERO,
    )])
    .await;
    let events = run(Api::OpenAiChat, test_config(&server)).await;
    assert_eq!(error_of(&events).kind, StreamErrorKind::Protocol);
}

#[tokio::test]
async fn an_in_band_error_before_any_output_is_retried() {
    let f = fixture("anthropic__text");
    let overloaded = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let server = FakeServer::start(vec![
        Reply::stream_split(overloaded.as_bytes(), 100, Duration::ZERO),
        Reply::stream_split(&f.body, 100, Duration::ZERO),
    ])
    .await;
    let events = run(f.api, test_config(&server)).await;
    assert_eq!(summarize(&events), f.expected);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn rate_limited_then_success_honours_retry_after() {
    let f = fixture("openai__chat_text_usage");
    let server = FakeServer::start(vec![
        Reply::Status {
            status: 429,
            headers: vec![("retry-after-ms".into(), "30".into())],
            body: r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#.into(),
        },
        Reply::stream_split(&f.body, 64, Duration::ZERO),
    ])
    .await;
    let started = std::time::Instant::now();
    let events = run(f.api, test_config(&server)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(30),
        "waited for Retry-After"
    );
    assert_eq!(summarize(&events), f.expected);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn server_errors_until_the_retry_budget_is_spent() {
    let replies = (0..5)
        .map(|_| Reply::status(500, r#"{"error":{"message":"boom","type":"server_error"}}"#))
        .collect();
    let server = FakeServer::start(replies).await;
    let events = run(Api::OpenAiChat, test_config(&server)).await;
    assert_eq!(events.len(), 1);
    let error = error_of(&events);
    assert_eq!(
        (error.kind, error.status, error.recoverable),
        (StreamErrorKind::Server, Some(500), true)
    );
    assert_eq!(server.requests().len(), 3, "1 attempt + 2 retries");

    // Client errors are not retried.
    let server = FakeServer::start(vec![Reply::status(401, r#"{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}"#)]).await;
    let events = run(Api::OpenAiChat, test_config(&server)).await;
    let error = error_of(&events);
    assert_eq!(
        (error.kind, error.status, error.recoverable),
        (StreamErrorKind::Auth, Some(401), false)
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = FakeServer::start(vec![Reply::Hang, Reply::Hang]).await;
    let mut config = test_config(&server);
    config.timeouts.first_byte = Duration::from_millis(150);
    config.retry.max_retries = 1;
    let events = run(Api::OpenAiChat, config).await;
    let error = error_of(&events);
    assert_eq!(error.kind, StreamErrorKind::Timeout);
    assert!(error.recoverable);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_silent_stream_after_output_hits_the_idle_timeout() {
    let first = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n".to_vec();
    let server = FakeServer::start(vec![Reply::Stream {
        pieces: vec![
            (Duration::ZERO, first),
            (Duration::from_secs(30), b"data: [DONE]\n\n".to_vec()),
        ],
        framing: Framing::Close,
    }])
    .await;
    let mut config = test_config(&server);
    config.timeouts.idle = Duration::from_millis(150);
    let events = run(Api::OpenAiChat, config).await;
    assert_eq!(error_of(&events).kind, StreamErrorKind::Timeout);
    assert_eq!(summarize(&events)["text"], "Hel");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn stream_options_rejected_is_asked_again_without_it() {
    let f = fixture("mistralrs__reasoning_text");
    let server = FakeServer::start(vec![
        Reply::status(400, r#"{"error":{"message":"Unrecognized request argument supplied: stream_options","type":"invalid_request_error"}}"#),
        Reply::stream_split(&f.body, 200, Duration::ZERO),
    ])
    .await;
    let events = run(f.api, test_config(&server)).await;
    assert_eq!(summarize(&events), f.expected);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].body.get("stream_options").is_some());
    assert!(requests[1].body.get("stream_options").is_none());
}

#[tokio::test]
async fn keys_are_sent_in_the_provider_header() {
    let f = fixture("anthropic__text");
    let server = FakeServer::start(vec![Reply::stream_split(&f.body, 500, Duration::ZERO)]).await;
    let config = test_config(&server).with_api_key(Some(ApiKey::new("sk-ant-test")));
    run(Api::AnthropicMessages, config).await;
    let head = server.requests()[0].head.to_ascii_lowercase();
    assert!(head.contains("x-api-key: sk-ant-test"), "{head}");
    assert!(head.contains("anthropic-version: 2023-06-01"));
    assert!(head.starts_with("post /v1/messages "));

    let f = fixture("openai__responses_text");
    let server = FakeServer::start(vec![Reply::stream_split(&f.body, 500, Duration::ZERO)]).await;
    let config = test_config(&server).with_api_key(Some(ApiKey::new("sk-test")));
    let events = run(Api::OpenAiResponses, config).await;
    assert_eq!(summarize(&events), f.expected);
    let request = &server.requests()[0];
    assert!(
        request
            .head
            .to_ascii_lowercase()
            .contains("authorization: bearer sk-test")
    );
    assert!(request.head.starts_with("POST /v1/responses "));
    assert_eq!(request.body["input"][0]["content"], "hi");
}

#[tokio::test]
async fn connection_refused_is_a_network_error() {
    let addr = closed_port();
    let mut config = HttpConfig::new("test", format!("http://{addr}/v1"), "m");
    config.retry = RetryPolicy {
        max_retries: 1,
        initial_backoff: Duration::from_millis(5),
        ..RetryPolicy::default()
    };
    let events = run(Api::OpenAiChat, config).await;
    let error = error_of(&events);
    assert_eq!(error.kind, StreamErrorKind::Network);
    assert!(error.recoverable);
}
