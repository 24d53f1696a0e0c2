//! Helpers shared by the integration tests: the recorded fixtures and their `expected`,
//! and a fast loopback config (the fake server is `agentbus_test_support`'s).

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use agentbus_llm::{
    Api, ChatModel, ChatRequest, ChatResponse, HttpConfig, HttpModel, RetryPolicy, StreamError,
    StreamEvent, Timeouts,
};
use futures::StreamExt;
use serde_json::Value;

/// One recorded stream with its expected decoding.
pub struct Fixture {
    pub name: String,
    pub api: Api,
    pub body: Vec<u8>,
    pub expected: Value,
}

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every fixture, sorted by name.
pub fn fixtures() -> Vec<Fixture> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let dir = fixtures_dir();
            let meta: Value =
                serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap())
                    .unwrap();
            let body = std::fs::read(dir.join(format!("{name}.sse"))).unwrap();
            let api = Api::from_name(meta["api"].as_str().unwrap()).expect("known api");
            Fixture {
                name,
                api,
                body,
                expected: meta["expected"].clone(),
            }
        })
        .collect()
}

/// Checks the contract: exactly one terminal event, and it is the last.
pub fn assert_one_terminal_last(name: &str, events: &[StreamEvent]) {
    let terminals = events.iter().filter(|e| e.is_terminal()).count();
    assert_eq!(
        terminals, 1,
        "{name}: {terminals} terminal events in {events:#?}"
    );
    assert!(
        events.last().is_some_and(StreamEvent::is_terminal),
        "{name}: terminal not last"
    );
}

/// The decoded result in the fixture README's `expected` shape.
pub fn summarize(events: &[StreamEvent]) -> Value {
    let mut response = ChatResponse::default();
    for event in events.iter().cloned() {
        response.push(event);
    }
    let tool_calls: Vec<Value> = response
        .tool_calls
        .iter()
        .map(|call| {
            let mut v = serde_json::json!({
                "id": call.tool_use_id,
                "name": call.tool_name,
                "arguments": call.tool_input,
            });
            if let Some(raw) = &call.arguments_raw {
                v["arguments_raw"] = Value::String(raw.clone());
            }
            v
        })
        .collect();
    let mut out = serde_json::json!({
        "text": response.text,
        "reasoning": response.reasoning,
        "tool_calls": tool_calls,
    });
    match (&response.finish, &response.error) {
        (Some(finish), _) => {
            out["finish_reason"] = Value::String(finish.stop_reason.clone());
            out["usage"] = serde_json::json!({
                "input_tokens": finish.input_tokens,
                "output_tokens": finish.output_tokens,
                "cached_tokens": finish.cached_tokens,
                "reasoning_tokens": finish.reasoning_tokens,
            });
            out["model"] = Value::String(finish.model.clone());
            if let Some(refusal) = &finish.refusal {
                out["refusal"] = Value::String(refusal.clone());
            }
            if let Some(reason) = &finish.incomplete_reason {
                out["incomplete_reason"] = Value::String(reason.clone());
            }
        }
        (None, Some(error)) => out["error"] = serde_json::to_value(error).unwrap(),
        (None, None) => out["error"] = Value::String("no terminal event".into()),
    }
    out
}

/// A config for a loopback fake server: short timeouts and backoffs, two retries, and
/// `max_retry_after` as the cap on a server's `Retry-After`.
pub fn fast_config(base_url: &str, max_retry_after: Duration) -> HttpConfig {
    HttpConfig::new("test", base_url, "test-model")
        .with_timeouts(Timeouts {
            connect: Duration::from_secs(2),
            first_byte: Duration::from_secs(3),
            idle: Duration::from_secs(3),
            total: Duration::from_secs(20),
        })
        .with_retry(RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            max_retry_after,
        })
}

/// Streams "hi" through an `HttpModel` and checks the stream ends in exactly one terminal
/// event, last.
pub async fn run(api: Api, config: HttpConfig) -> Vec<StreamEvent> {
    let model = HttpModel::new(api, config).unwrap();
    let events: Vec<StreamEvent> = model.stream(ChatRequest::from_prompt("hi")).collect().await;
    assert_one_terminal_last("http", &events);
    events
}

/// The error a stream ended with (panics if it ended otherwise).
pub fn error_of(events: &[StreamEvent]) -> StreamError {
    match events.last() {
        Some(StreamEvent::Error(e)) => e.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}
