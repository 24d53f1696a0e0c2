//! `agentbus run` end to end: the binary against a fake OpenAI-compatible server on
//! loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// What the fake server streams for one request.
enum Reply {
    /// These chunks, then `[DONE]`.
    Sse(Vec<Value>),
    /// These chunks, then the connection is closed mid-stream.
    Cut(Vec<Value>),
}

/// Serves `replies` in order on a background thread; returns the base URL and the
/// recorded request bodies.
fn serve(replies: Vec<Reply>) -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let requests: Arc<Mutex<Vec<Value>>> = Arc::default();
    let recorded = requests.clone();
    std::thread::spawn(move || {
        for reply in replies {
            let Ok((mut socket, _)) = listener.accept() else {
                return;
            };
            let Some(body) = read_request(&mut socket) else {
                return;
            };
            recorded.lock().unwrap().push(body);
            let (chunks, done) = match reply {
                Reply::Sse(chunks) => (chunks, true),
                Reply::Cut(chunks) => (chunks, false),
            };
            let mut out = String::from(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
            );
            for chunk in chunks {
                out.push_str(&format!("data: {chunk}\n\n"));
            }
            if done {
                out.push_str("data: [DONE]\n\n");
            }
            let _ = socket.write_all(out.as_bytes());
            let _ = socket.flush();
        }
    });
    (url, requests)
}

fn read_request(socket: &mut TcpStream) -> Option<Value> {
    let mut reader = BufReader::new(socket.try_clone().ok()?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().ok()?;
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "c1", "object": "chat.completion.chunk", "model": "fake-model",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({"id": "c1", "object": "chat.completion.chunk", "model": "fake-model", "choices": [],
           "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                     "total_tokens": prompt + completion}})
}

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
        Reply::Sse(vec![
            chunk(json!({"role": "assistant", "content": null}), None),
            fragment(Some("call_1"), ""),
            fragment(None, "{\"expression\":"),
            fragment(None, " \"17 * 23\"}"),
            chunk(json!({}), Some("tool_calls")),
            usage(90, 18),
        ]),
        Reply::Sse(vec![
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
    let (url, requests) = serve(calculator_conversation());
    let output = run_agentbus(&url, &[]);
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
    let requests = requests.lock().unwrap();
    assert_eq!(requests.len(), 2);
    let tool_names: Vec<&str> = requests[0]["tools"]
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
    let (url, _) = serve(calculator_conversation());
    let output = run_agentbus(&url, &["--events", "jsonl"]);
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
    let (url, _) = serve(vec![Reply::Cut(vec![chunk(
        json!({"role": "assistant", "content": "Hel"}),
        None,
    )])]);
    let output = run_agentbus(&url, &[]);
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
