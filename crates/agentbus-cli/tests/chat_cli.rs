//! `agentbus chat` against a fake OpenAI-compatible / Anthropic server on loopback that
//! replays recorded streams.

use std::process::Command;

use agentbus_test_support::{FakeServer, Reply};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../agentbus-llm/tests/fixtures"
);

fn fixture(name: &str) -> (Vec<u8>, serde_json::Value) {
    let body = std::fs::read(format!("{FIXTURES}/{name}.sse")).unwrap();
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/{name}.json")).unwrap()).unwrap();
    (body, meta["expected"].clone())
}

fn agentbus() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agentbus"));
    for var in [
        "RUST_LOG",
        "AGENTBUS_PROVIDER",
        "AGENTBUS_BASE_URL",
        "AGENTBUS_MODEL",
        "AGENTBUS_API_KEY_ENV",
    ] {
        command.env_remove(var);
    }
    // Calls are stored by default: keep them out of the working directory.
    command.env(
        "AGENTBUS_STORE",
        store_url(&std::env::temp_dir(), "chat-cli-tests"),
    );
    command
}

fn store_url(dir: &std::path::Path, name: &str) -> String {
    format!(
        "sqlite://{}",
        dir.join(format!("{name}-{}.db", std::process::id()))
            .display()
    )
}

#[test]
fn chat_stores_its_session_for_sessions_and_replay() {
    let (body, expected) = fixture("openai__chat_text_usage");
    let server = FakeServer::start_blocking(vec![Reply::body(200, "text/event-stream", body)]);
    let base_url = server.base_url.clone();
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(dir.path(), "chat");
    let output = agentbus()
        .env("OPENAI_API_KEY", "sk-test")
        .args(["chat", "--provider", "openai", "--base-url", &base_url])
        .args(["--model", "gpt-4o-mini", "--store", &store, "hello"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("events stored in"), "{stderr}");
    let sessions = agentbus()
        .args(["sessions", "--store", &store, "--json"])
        .output()
        .unwrap();
    let sessions: serde_json::Value = serde_json::from_slice(&sessions.stdout).unwrap();
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["llm_calls"], 1);
    assert_eq!(
        sessions[0]["total_tokens"],
        expected["usage"]["input_tokens"].as_u64().unwrap()
            + expected["usage"]["output_tokens"].as_u64().unwrap()
    );
    let session = sessions[0]["session_id"].as_str().unwrap();
    let replay = agentbus()
        .args(["replay", session, "--store", &store, "--speed", "max"])
        .args(["--events", "jsonl"])
        .output()
        .unwrap();
    let replayed = String::from_utf8(replay.stdout).unwrap();
    assert!(
        replayed
            .lines()
            .any(|l| l.contains("plugin.llm_response_completed"))
    );
}

#[test]
fn human_output_streams_the_text_then_a_summary() {
    let (body, expected) = fixture("openai__chat_text_usage");
    let server = FakeServer::start_blocking(vec![Reply::body(200, "text/event-stream", body)]);
    let base_url = server.base_url.clone();
    let output = agentbus()
        .env("AGENTBUS_TEST_KEY", "sk-very-secret-123")
        .args([
            "chat",
            "--provider",
            "openai",
            "--base-url",
            &base_url,
            "--model",
            "gpt-4o-mini",
            "--api-key-env",
            "AGENTBUS_TEST_KEY",
        ])
        .args(["--system", "be brief", "Say", "hello"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        stdout.trim_end(),
        expected["text"].as_str().unwrap().trim_end()
    );
    let summary = stderr.lines().last().unwrap();
    let tokens = format!(
        "{} in / {} out tokens",
        expected["usage"]["input_tokens"], expected["usage"]["output_tokens"]
    );
    assert!(summary.contains(&tokens), "{summary}");
    assert!(
        summary.contains("TTFT") && summary.contains("tok/s") && summary.contains('$'),
        "{summary}"
    );
    assert!(!stdout.contains("sk-very-secret") && !stderr.contains("sk-very-secret"));
    let request = server.requests()[0].text();
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: bearer sk-very-secret-123")
    );
    assert!(request.contains("\"role\":\"system\"") && request.contains("Say hello"));
}

#[test]
fn events_jsonl_writes_only_wire_events() {
    let (body, expected) = fixture("anthropic__tool_use_nested_args");
    let server = FakeServer::start_blocking(vec![Reply::body(200, "text/event-stream", body)]);
    let base_url = server.base_url.clone();
    let output = agentbus()
        .env("AGENTBUS_TEST_KEY", "sk-ant-secret-456")
        .args([
            "chat",
            "--provider",
            "anthropic",
            "--base-url",
            &base_url,
            "--api-key-env",
            "AGENTBUS_TEST_KEY",
        ])
        .args(["--events", "jsonl", "hi"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(!stdout.contains("sk-ant-secret"));
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types[0], "plugin.llm_request_started");
    for wanted in [
        "stream.text_delta",
        "stream.tool_call_delta",
        "stream.tool_call",
        "stream.finish",
        "plugin.llm_response_chunk",
        "plugin.llm_response_completed",
        "plugin.llm_response_final",
    ] {
        assert!(types.contains(&wanted), "{wanted} missing from {types:?}");
    }
    let session = events[0]["session_id"].clone();
    assert!(session.is_string());
    assert!(events.iter().all(|e| e["session_id"] == session));
    let call = events
        .iter()
        .find(|e| e["type"] == "stream.tool_call")
        .unwrap();
    assert_eq!(call["tool_input"], expected["tool_calls"][0]["arguments"]);
}

#[test]
fn an_error_exits_non_zero() {
    let body = br#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#.to_vec();
    let server = FakeServer::start_blocking(vec![Reply::body(401, "application/json", body)]);
    let base_url = server.base_url.clone();
    let output = agentbus()
        .args([
            "chat",
            "--provider",
            "openai",
            "--base-url",
            &base_url,
            "--events",
            "jsonl",
            "hi",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let types: Vec<String> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        types.contains(&"stream.error".to_owned())
            && types.contains(&"plugin.llm_error".to_owned()),
        "{types:?}"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("auth"));
}
