//! `agentbus sessions`, `stats` and `replay` against a real SQLite store.

use std::path::PathBuf;
use std::process::{Command, Output};

use agentbus_events::stream::{StreamFinishEvent, StreamTextDeltaEvent};
use agentbus_events::tool::ToolEndEvent;
use agentbus_events::{DynEvent, EventMeta, PluginInfo};
use agentbus_store::{EventStore, WriterOptions};
use serde_json::Value;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "agentbus-store-cli-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.0.join("agentbus.db").display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn meta(session: &str, seq: u64, ms: i64) -> EventMeta {
    let mut meta = EventMeta::for_session(session);
    meta.seq = Some(seq);
    meta.timestamp = agentbus_store::micros_to_datetime((1_767_225_600_000 + ms) * 1000);
    meta
}

/// A session of two LLM calls (gpt-4o) and one failing tool call.
fn session_events(session: &str) -> Vec<Box<dyn DynEvent>> {
    let mut events: Vec<Box<dyn DynEvent>> = Vec::new();
    let mut seq = 0;
    let mut next = || {
        seq += 1;
        seq
    };
    for (call, start) in [("r1", 0), ("r2", 2_000)] {
        events.push(Box::new(agentbus_events::llm::LLMRequestStartedEvent {
            meta: meta(session, next(), start),
            plugin: PluginInfo::named("openai"),
            request_id: call.into(),
            model: Some("gpt-4o".into()),
            streaming: true,
        }));
        events.push(Box::new(StreamTextDeltaEvent {
            meta: meta(session, next(), start + 100),
            request_id: call.into(),
            content: "Hi".into(),
            snapshot: "Hi".into(),
        }));
        events.push(Box::new(StreamFinishEvent {
            meta: meta(session, next(), start + 600),
            request_id: call.into(),
            stop_reason: "stop".into(),
            input_tokens: 10,
            output_tokens: 20,
            cost_usd: Some(0.01),
            model: "gpt-4o".into(),
            ..Default::default()
        }));
    }
    events.push(Box::new(ToolEndEvent {
        meta: meta(session, next(), 3_000),
        plugin: PluginInfo::named("agent"),
        tool_name: "calculator".into(),
        success: false,
        error: Some("division by zero".into()),
        execution_time_ms: Some(3.0),
        ..Default::default()
    }));
    events
}

fn fill(url: &str, session: &str) -> Vec<Box<dyn DynEvent>> {
    let store = EventStore::open(url).unwrap();
    let writer = store.writer(WriterOptions::default()).unwrap();
    let events = session_events(session);
    for e in &events {
        writer.append_blocking(e.as_ref()).unwrap();
    }
    writer.close_blocking().unwrap();
    events
}

fn agentbus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args(args)
        .env_remove("AGENTBUS_STORE")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn sessions_lists_counts_tokens_and_cost() {
    let dir = TempDir::new("sessions");
    fill(&dir.url(), "s-one");
    fill(&dir.url(), "s-two");
    let json: Value = serde_json::from_str(&stdout(&agentbus(&[
        "sessions",
        "--store",
        &dir.url(),
        "--json",
    ])))
    .unwrap();
    let sessions = json.as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0]["session_id"], "s-one");
    assert_eq!(sessions[0]["events"], 7);
    assert_eq!(sessions[0]["llm_calls"], 2);
    assert_eq!(sessions[0]["total_tokens"], 60);
    assert_eq!(sessions[0]["cost_usd"], 0.02);
    assert_eq!(sessions[0]["models"], serde_json::json!(["gpt-4o"]));

    let table = stdout(&agentbus(&["sessions", "--store", &dir.url()]));
    assert!(
        table.contains("s-one") && table.contains("s-two"),
        "{table}"
    );
    assert!(table.contains("gpt-4o"), "{table}");
}

#[test]
fn stats_reports_models_and_tools() {
    let dir = TempDir::new("stats");
    fill(&dir.url(), "s");
    let json: Value = serde_json::from_str(&stdout(&agentbus(&[
        "stats",
        "s",
        "--store",
        &dir.url(),
        "--json",
    ])))
    .unwrap();
    let model = &json["models"][0];
    assert_eq!(model["model"], "gpt-4o");
    assert_eq!(model["calls"], 2);
    assert_eq!(model["ttft_p50_ms"], 100.0);
    assert_eq!(model["latency_p95_ms"], 600.0);
    assert_eq!(model["input_tokens"], 20);
    assert_eq!(model["output_tokens"], 40);
    // 40 output tokens over 2 × 500 ms of generation.
    assert_eq!(model["tokens_per_s"], 40.0);
    let tool = &json["tools"][0];
    assert_eq!(
        (tool["tool"].as_str(), tool["calls"].as_u64()),
        (Some("calculator"), Some(1))
    );
    assert_eq!(tool["failures"], 1);

    let table = stdout(&agentbus(&["stats", "--store", &dir.url()]));
    assert!(
        table.contains("gpt-4o") && table.contains("calculator"),
        "{table}"
    );
    let missing = agentbus(&["stats", "nope", "--store", &dir.url()]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no session `nope`"));
}

#[test]
fn replay_jsonl_gives_back_the_stored_events() {
    let dir = TempDir::new("replay");
    let events = fill(&dir.url(), "s");
    let out = stdout(&agentbus(&[
        "replay",
        "s",
        "--store",
        &dir.url(),
        "--speed",
        "max",
        "--events",
        "jsonl",
    ]));
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), events.len());
    for (original, line) in events.iter().zip(&lines) {
        let mut expected = original.to_wire_value().unwrap();
        let mut got = line.clone();
        // Same id, type, time and fields; the seq is the replay bus's own.
        expected.as_object_mut().unwrap().remove("seq");
        got.as_object_mut().unwrap().remove("seq");
        assert_eq!(got, expected);
    }
    // With timing (100× faster than the original 3 s) it still delivers everything.
    let timed = stdout(&agentbus(&[
        "replay",
        "s",
        "--store",
        &dir.url(),
        "--speed",
        "100",
    ]));
    assert_eq!(timed.lines().count(), events.len(), "{timed}");
}

#[test]
fn bad_stores_and_sessions_are_clear_errors() {
    let dir = TempDir::new("bad");
    let path = dir.0.join("agentbus.db");
    std::fs::write(
        &path,
        b"this is not a database, it is a shopping list\n".repeat(100),
    )
    .unwrap();
    let before = std::fs::read(&path).unwrap();
    let out = agentbus(&["sessions", "--store", &dir.url()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a SQLite database"), "{stderr}");
    assert_eq!(std::fs::read(&path).unwrap(), before);

    let empty = TempDir::new("empty");
    let out = agentbus(&["replay", "ghost", "--store", &empty.url()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no session `ghost`"));
    let out = agentbus(&["replay", "s", "--store", &empty.url(), "--speed", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid speed"));
}

#[test]
fn bench_store_runs_and_prints_the_baseline() {
    let out = stdout(&agentbus(&[
        "bench",
        "store",
        "--events",
        "2000",
        "--reps",
        "1",
        "--no-postgres",
        "--json",
    ]));
    let json: Value = serde_json::from_str(&out).unwrap();
    let sqlite = &json[0];
    assert_eq!(sqlite["backend"], "sqlite");
    for key in [
        "append_events_per_s",
        "baseline_plain_insert_rows_per_s",
        "read_decode_events_per_s",
        "read_rows_per_s",
    ] {
        assert!(sqlite[key].as_f64().unwrap() > 0.0, "{key}: {sqlite}");
    }
}
