//! `agentbus run` end to end: the binary against a fake OpenAI-compatible server on
//! loopback.

use std::process::{Command, Output};

use agentbus_test_support::openai::{chunk, reply, reply_cut, usage};
use agentbus_test_support::{FakeServer, Reply};
use serde_json::{Value, json};

/// The two answers of "What is 17 * 23?": a calculator call, then the answer.
fn calculator_conversation() -> Vec<Reply> {
    let fragment = |id: Option<&str>, args: &str| {
        let mut call = json!({"index": 0, "function": {"arguments": args}});
        if let Some(id) = id {
            call["id"] = json!(id);
            call["type"] = json!("function");
            call["function"]["name"] = json!("calculator");
        }
        chunk(json!({"tool_calls": [call]}), None)
    };
    vec![
        reply(&[
            chunk(json!({"role": "assistant", "content": null}), None),
            fragment(Some("call_1"), ""),
            fragment(None, "{\"expression\":"),
            fragment(None, " \"17 * 23\"}"),
            chunk(json!({}), Some("tool_calls")),
            usage(90, 18),
        ]),
        reply(&[
            chunk(json!({"role": "assistant", "content": "17 * 23 = "}), None),
            chunk(json!({"content": "391"}), None),
            chunk(json!({}), Some("stop")),
            usage(130, 7),
        ]),
    ]
}

fn run_agentbus(url: &str, extra: &[&str]) -> Output {
    let dir = tempfile_dir();
    let mut command = Command::new(env!("CARGO_BIN_EXE_agentbus"));
    command
        .current_dir(&dir)
        .env_remove("OPENAI_API_KEY")
        .env("RUST_LOG", "error")
        .args([
            "run",
            "--provider",
            "openai",
            "--base-url",
            url,
            "--model",
            "fake-model",
        ])
        .args(extra)
        .arg("What is 17 * 23?");
    let output = command.output().expect("running agentbus");
    let _ = std::fs::remove_dir_all(&dir);
    output
}

/// A fresh empty working directory (the file tools are confined to it).
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "agentbus-run-cli-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[test]
fn run_answers_with_the_calculator_in_human_output() {
    let server = FakeServer::start_blocking(calculator_conversation());
    let output = run_agentbus(&server.base_url, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("→ calculator({\"expression\":\"17 * 23\"})"),
        "{stdout}"
    );
    assert!(stdout.contains("✓ 391"), "{stdout}");
    assert!(stdout.contains("17 * 23 = 391"), "{stdout}");
    let summary = stdout.lines().last().unwrap();
    assert!(
        summary.starts_with(
            "— done · 2 iterations · 2 LLM calls · 1 tool call · 220 in / 25 out tokens"
        ),
        "{summary}"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let tool_names: Vec<&str> = requests[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tool_names,
        ["calculator", "current_time", "read_file", "list_dir"]
    );
}

#[test]
fn run_events_jsonl_writes_only_wire_events() {
    let server = FakeServer::start_blocking(calculator_conversation());
    let output = run_agentbus(&server.base_url, &["--events", "jsonl"]);
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let events: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(
        events.iter().all(|e| e["type"].is_string()
            && e["schema_version"] == 1
            && e["event_id"].is_string())
    );
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for expected in [
        "agent.agent_turn_started",
        "react.react_start",
        "react.llm_chunk_arrive",
        "react.tool_call_arguments_delta",
        "react.tool_call_start",
        "plugin.llm.tool.start",
        "react.tool_call_end",
        "plugin.llm.tool.end",
        "react.react_end",
        "agent.agent_turn_ended",
        "agent.finish",
        // The model is instrumented: the providers' LLM events are on the bus too.
        "plugin.llm_request_started",
        "plugin.llm_response_chunk",
        "plugin.llm_response_completed",
        "stream.finish",
    ] {
        assert!(
            types.contains(&expected),
            "{expected} missing from {types:?}"
        );
    }
    assert_eq!(types.last(), Some(&"agent.finish"));
    // The agent's events and the model's LLM events share one session.
    let session = events
        .iter()
        .find(|e| e["type"] == "react.react_start")
        .map(|e| e["session_id"].clone())
        .unwrap();
    assert!(session.is_string(), "react_start has no session id");
    for e in events.iter().filter(|e| {
        let t = e["type"].as_str().unwrap();
        t.starts_with("plugin.llm_") || t.starts_with("stream.") || t.starts_with("react.")
    }) {
        assert_eq!(e["session_id"], session, "{e}");
    }
    // Bus sequence numbers increase by one, in order.
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let end = events
        .iter()
        .find(|e| e["type"] == "react.react_end")
        .unwrap();
    assert_eq!(end["aborted"], false);
    assert_eq!(end["response"], "17 * 23 = 391");
    assert_eq!(end["usage"]["input_tokens"], 220);
    let tool_end = events
        .iter()
        .find(|e| e["type"] == "plugin.llm.tool.end")
        .unwrap();
    assert_eq!(tool_end["success"], true);
    assert!(tool_end["execution_time_ms"].is_number());
}

#[test]
fn run_exits_non_zero_when_the_stream_breaks() {
    let server = FakeServer::start_blocking(vec![reply_cut(&[chunk(
        json!({"role": "assistant", "content": "Hel"}),
        None,
    )])]);
    let output = run_agentbus(&server.base_url, &[]);
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("LLM error:"), "{stdout}");
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("— aborted (llm_error"),
        "{stdout}"
    );
}
