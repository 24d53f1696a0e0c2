//! Helpers shared by the integration tests: the recorded fixtures and their `expected`,
//! and a fake server.

#![allow(dead_code)]

pub mod server;

use std::path::PathBuf;

use agentbus_llm::{Api, ChatResponse, StreamEvent};
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
