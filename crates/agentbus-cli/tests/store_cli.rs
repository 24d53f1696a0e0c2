//! `agentbus sessions`, `stats` and `replay` against a real SQLite store.

use std::path::PathBuf;
use std::process::{Command, Output};

use agentbus_events::stream::{StreamFinishEvent, StreamTextDeltaEvent};
use agentbus_events::tool::ToolEndEvent;
use agentbus_events::{DynEvent, EventMeta, PluginInfo};
use agentbus_store::{EventStore, WriterOptions};
use agentbus_test_support::{FakeServer, openai};
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
    meta.seq = agentbus_events::Seq::new(seq);
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
            tool_choice: None,
        }));
        events.push(Box::new(StreamTextDeltaEvent {
            meta: meta(session, next(), start + 100),
            request_id: call.into(),
            content: "Hi".into(),
            snapshot_len: 2,
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
    // A store that does not exist is an error naming it, and reading creates nothing.
    let out = agentbus(&["replay", "ghost", "--store", &empty.url()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no event store at"), "{stderr}");
    assert!(!empty.0.join("agentbus.db").exists());
    let out = agentbus(&["replay", "s", "--store", &empty.url(), "--speed", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid speed"));
}

// ---- `agentbus run` → store → `agentbus replay` ------------------------------------------

/// Serves `replies` (each the chunks of one streamed answer) in order.
fn serve(replies: Vec<Vec<Value>>) -> FakeServer {
    FakeServer::start_blocking(replies.iter().map(|chunks| openai::reply(chunks)).collect())
}

fn calculator_conversation() -> Vec<Vec<Value>> {
    use agentbus_test_support::openai::{chunk, usage};
    use serde_json::json;
    let call = json!({"index": 0, "id": "call_1", "type": "function",
                      "function": {"name": "calculator", "arguments": "{\"expression\": \"17 * 23\"}"}});
    vec![
        vec![
            chunk(json!({"role": "assistant", "content": null}), None),
            chunk(json!({"tool_calls": [call]}), None),
            chunk(json!({}), Some("tool_calls")),
            usage(90, 18),
        ],
        vec![
            chunk(json!({"role": "assistant", "content": "17 * 23 = "}), None),
            chunk(json!({"content": "391"}), None),
            chunk(json!({}), Some("stop")),
            usage(130, 7),
        ],
    ]
}

#[test]
fn a_replay_yields_the_same_events_as_the_live_run() {
    let dir = TempDir::new("run");
    let server = serve(calculator_conversation());
    let url = server.base_url.clone();
    let live = Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .current_dir(&dir.0)
        .env_remove("OPENAI_API_KEY")
        .env_remove("AGENTBUS_STORE")
        .env("RUST_LOG", "error")
        .args([
            "run",
            "--provider",
            "openai",
            "--base-url",
            &url,
            "--model",
            "fake-model",
        ])
        .args(["--events", "jsonl", "What is 17 * 23?"])
        .output()
        .unwrap();
    let live_lines = stdout(&live);
    let stderr = String::from_utf8_lossy(&live.stderr);
    // The default store is ./agentbus.db.
    assert!(dir.0.join("agentbus.db").exists(), "{stderr}");
    assert!(
        stderr.contains("stored in sqlite://agentbus.db"),
        "{stderr}"
    );
    let live_events: Vec<Value> = live_lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(live_events.len() > 10);

    let sessions: Value = serde_json::from_str(&stdout(&agentbus(&[
        "sessions",
        "--store",
        &dir.url(),
        "--json",
    ])))
    .unwrap();
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let session = sessions[0]["session_id"].as_str().unwrap();
    assert_eq!(sessions[0]["llm_calls"], 2);
    assert_eq!(sessions[0]["total_tokens"], 245);

    let replay = stdout(&agentbus(&[
        "replay",
        session,
        "--store",
        &dir.url(),
        "--speed",
        "max",
        "--events",
        "jsonl",
    ]));
    let replayed: Vec<Value> = replay
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let strip = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().unwrap().remove("seq");
        v
    };
    // A session is the events carrying its session id; `agent.finish` is published by the
    // agent without one (it ends the agent, not a session), so it is stored outside it.
    let live_events: Vec<Value> = live_events
        .into_iter()
        .filter(|e| e["session_id"].as_str() == Some(session))
        .collect();
    assert!(live_events.len() > 10);
    let live_ids: Vec<&Value> = live_events.iter().map(|e| &e["event_id"]).collect();
    let replay_ids: Vec<&Value> = replayed.iter().map(|e| &e["event_id"]).collect();
    let types = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["type"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(
        replay_ids,
        live_ids,
        "same events in the same order; live {:?}, replayed {:?}",
        types(&live_events),
        types(&replayed)
    );
    for (a, b) in live_events.iter().zip(&replayed) {
        assert_eq!(strip(a), strip(b));
    }

    let stats: Value = serde_json::from_str(&stdout(&agentbus(&[
        "stats",
        session,
        "--store",
        &dir.url(),
        "--json",
    ])))
    .unwrap();
    assert_eq!(stats["models"][0]["calls"], 2, "{stats}");
    assert_eq!(stats["tools"][0]["tool"], "calculator", "{stats}");
}

// ---- reading commands open the store read-only; URLs are shown masked ----------------------

#[test]
fn a_typo_in_the_store_path_is_an_error_naming_it_and_creates_nothing() {
    let dir = TempDir::new("typo");
    let missing = dir.0.join("no-such-dir").join("agentbsu.db");
    let url = format!("sqlite://{}", missing.display());
    for args in [
        vec!["sessions", "--store", &url],
        vec!["stats", "--store", &url],
        vec!["replay", "s", "--store", &url],
    ] {
        let out = agentbus(&args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("no event store"), "{args:?}: {stderr}");
        assert!(stderr.contains("agentbsu.db"), "{args:?}: {stderr}");
        assert!(
            !missing.parent().unwrap().exists(),
            "{args:?} created a directory"
        );
    }
    // The same in an existing directory: no file appears.
    let url = format!("sqlite://{}", dir.0.join("agentbsu.db").display());
    let out = agentbus(&["sessions", "--store", &url]);
    assert!(!out.status.success());
    assert!(!dir.0.join("agentbsu.db").exists());
}

#[test]
fn a_locked_store_is_reported_at_once_with_its_holder() {
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new("locked");
    fill(&dir.url(), "s");
    let path = dir.0.join("agentbus.db");
    // Another program holding the store exclusively: Python's sqlite3, a real process.
    let script = "import sqlite3, sys, time\n\
                  c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                  c.execute('PRAGMA locking_mode = EXCLUSIVE')\n\
                  c.execute('BEGIN EXCLUSIVE')\n\
                  c.execute('UPDATE agentbus_schema SET description = description')\n\
                  print('locked', flush=True)\n\
                  time.sleep(120)\n";
    let mut holder = match Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            eprintln!("note: skipping: python3 is needed to hold the lock ({error})");
            return;
        }
    };
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let start = std::time::Instant::now();
    let out = agentbus(&["sessions", "--store", &dir.url()]);
    let waited = start.elapsed();
    let pid = holder.id();
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is locked"), "{stderr}");
    assert!(stderr.contains(&format!("pid {pid}")), "{stderr}");
    assert!(waited < std::time::Duration::from_secs(10), "{waited:?}");
    // Released: it reads.
    assert!(stdout(&agentbus(&["sessions", "--store", &dir.url()])).contains("s "));
}

#[test]
fn a_store_url_is_never_shown_with_its_password() {
    let url = "postgres://agentbus:hunter2@127.0.0.1:1/test?password=hunter3";
    for args in [
        vec!["sessions", "--store", url],
        vec!["stats", "--store", url],
        vec!["replay", "s", "--store", url],
        vec![
            "run",
            "--provider",
            "openai",
            "--base-url",
            "http://127.0.0.1:1/v1",
            "--store",
            url,
            "hi",
        ],
    ] {
        let out = agentbus(&args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("127.0.0.1:1"), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("hunter2") && !stderr.contains("hunter3"),
            "{args:?} leaked the password: {stderr}"
        );
    }
}

/// An OpenAI-compatible server that answers with one chunk and then holds the stream open.
fn serve_one_chunk_then_hang() -> FakeServer {
    FakeServer::start_blocking(vec![openai::reply_then_stall(&[openai::chunk(
        serde_json::json!({"role": "assistant", "content": "Hel"}),
        None,
    )])])
}

#[test]
fn a_session_whose_writer_was_killed_is_reported_cut_short() {
    let dir = TempDir::new("killed");
    let server = serve_one_chunk_then_hang();
    let url = server.base_url.clone();
    let mut run = Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .current_dir(&dir.0)
        .env_remove("AGENTBUS_STORE")
        .env("RUST_LOG", "error")
        .args(["run", "--provider", "openai", "--base-url", &url])
        .args(["--model", "fake-model", "--events", "jsonl", "Hello?"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the run has stored the start of its session (the first text delta).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let session = loop {
        assert!(std::time::Instant::now() < deadline, "nothing stored");
        assert!(run.try_wait().unwrap().is_none(), "the run ended");
        if let Ok(store) = EventStore::open_read_only(&dir.url())
            && let Ok(deltas) =
                store.events(&agentbus_store::EventQuery::of_type("stream.text_delta"))
            && let Some(delta) = deltas.first()
        {
            break delta.row.session_id.clone().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // SIGKILL: no close, no end event, no record of the writer's end.
    run.kill().unwrap();
    run.wait().unwrap();

    let listed = agentbus(&["sessions", "--store", &dir.url()]);
    let table = stdout(&listed);
    assert!(table.contains("INTERRUPTED"), "{table}");
    let warning = String::from_utf8_lossy(&listed.stderr);
    assert!(
        warning.contains(&format!("session {session} was interrupted")),
        "{warning}"
    );

    let json: Value = serde_json::from_str(&stdout(&agentbus(&[
        "sessions",
        "--store",
        &dir.url(),
        "--json",
    ])))
    .unwrap();
    assert_eq!(json[0]["status"]["state"], "interrupted", "{json}");

    let stats = agentbus(&["stats", &session, "--store", &dir.url()]);
    stdout(&stats);
    assert!(
        String::from_utf8_lossy(&stats.stderr).contains("was interrupted"),
        "{}",
        String::from_utf8_lossy(&stats.stderr)
    );
    let replay = agentbus(&[
        "replay",
        &session,
        "--store",
        &dir.url(),
        "--speed",
        "max",
        "--events",
        "jsonl",
    ]);
    assert!(!stdout(&replay).is_empty());
    assert!(
        String::from_utf8_lossy(&replay.stderr).contains("was interrupted"),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
}
