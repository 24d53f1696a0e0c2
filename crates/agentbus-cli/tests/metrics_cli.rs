//! Telemetry through the real binary: a session recorded live with a collector attached,
//! then `agentbus replay` with `--metrics-json` (the same counts as the live run) and with
//! `--metrics-addr` (the Prometheus endpoint scraped while the replay runs).

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agentbus::EventManager;
use agentbus_events::llm::{LLMErrorEvent, LLMRequestStartedEvent, LLMResponseCompletedEvent};
use agentbus_events::react::{
    EventOrigin, LLMCallEndEvent, LLMCallStartEvent, ReactEndEvent, ReactStartEvent, TokenUsage,
};
use agentbus_events::tool::ToolEndEvent;
use agentbus_events::turn::TurnEndedEvent;
use agentbus_events::{DynEvent, ErrorFields, ErrorInfo, EventMeta, PluginInfo};
use agentbus_store::{EventStore, SinkOptions, StoreSink, WriterOptions};
use agentbus_telemetry::{MetricsCollector, MetricsSummary};
use agentbus_test_support::openai::{chunk, reply, usage};
use agentbus_test_support::{FakeServer, Gate, closed_port, gate};
use serde_json::json;

fn scratch_store(name: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!(
        "agentbus-metrics-cli-{}-{name}-{}",
        std::process::id(),
        EventMeta::new().event_id
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("events.db").display());
    (dir, url)
}

/// Base fields at `03:04:00 + seconds`, in `session`.
fn meta_at(session: &str, seconds: f64) -> EventMeta {
    let whole = seconds.trunc() as u32;
    let millis = ((seconds.fract()) * 1000.0).round() as u32;
    serde_json::from_value(json!({
        "event_id": EventMeta::new().event_id,
        "timestamp": format!("2026-01-02T03:04:{whole:02}.{millis:03}Z"),
        "session_id": session,
    }))
    .unwrap()
}

/// A session of Vision Agents and ReAct events with known values, spread over `span`
/// seconds of event time.
fn session_events(session: &str, span: f64) -> Vec<Box<dyn DynEvent>> {
    let at = |fraction: f64| meta_at(session, fraction * span);
    let openai = || PluginInfo::named("openai");
    let origin = EventOrigin {
        session_id: session.into(),
        agent_call_id: "call-1".into(),
        ..EventOrigin::default()
    };
    vec![
        Box::new(ReactStartEvent {
            meta: at(0.0),
            origin: origin.clone(),
            model: Some("gpt-test".into()),
            ..Default::default()
        }),
        Box::new(LLMCallStartEvent {
            meta: at(0.05),
            origin: origin.clone(),
            model: Some("gpt-test".into()),
            ..Default::default()
        }),
        Box::new(LLMCallEndEvent {
            meta: at(0.3),
            origin: origin.clone(),
            model: Some("gpt-test".into()),
            finish_reason: "tool_calls".into(),
            usage: TokenUsage {
                input_tokens: 300,
                output_tokens: 12,
                ..TokenUsage::default()
            },
            time_to_first_token_ms: Some(90.0),
            execution_time_ms: 420.0,
            ..Default::default()
        }),
        Box::new(ToolEndEvent {
            meta: at(0.4),
            plugin: PluginInfo::named("agent"),
            tool_name: "calculator".into(),
            success: true,
            tool_call_id: Some("tc-1".into()),
            execution_time_ms: Some(3.5),
            ..Default::default()
        }),
        Box::new(LLMRequestStartedEvent {
            meta: at(0.5),
            plugin: openai(),
            request_id: "r-1".into(),
            model: Some("gpt-4o".into()),
            streaming: true,
            tool_choice: None,
        }),
        Box::new(LLMResponseCompletedEvent {
            meta: at(0.6),
            plugin: openai(),
            latency_ms: Some(610.0),
            time_to_first_token_ms: Some(140.0),
            input_tokens: Some(700),
            output_tokens: Some(33),
            model: Some("gpt-4o".into()),
            ..Default::default()
        }),
        Box::new(LLMRequestStartedEvent {
            meta: at(0.7),
            plugin: openai(),
            request_id: "r-2".into(),
            model: Some("gpt-4o".into()),
            streaming: true,
            tool_choice: None,
        }),
        Box::new(LLMErrorEvent {
            meta: at(0.8),
            plugin: openai(),
            failure: ErrorFields::new(ErrorInfo::new("timeout", "no answer")),
            request_id: Some("r-2".into()),
            ..Default::default()
        }),
        Box::new(TurnEndedEvent {
            meta: at(0.9),
            plugin: PluginInfo::named("smart_turn"),
            duration_ms: Some(1800.0),
            ..Default::default()
        }),
        Box::new(ReactEndEvent {
            meta: at(1.0),
            origin,
            response: "done".into(),
            iterations: 1,
            execution_time_ms: 1000.0 * span,
            ..Default::default()
        }),
    ]
}

/// Records `events` into the store at `url` through a bus, with a live collector
/// attached; returns the live collector's summary.
fn record_live(url: &str, events: Vec<Box<dyn DynEvent>>) -> MetricsSummary {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bus = EventManager::new();
        let collector = MetricsCollector::new();
        collector.attach(&bus, "live-metrics").unwrap();
        let store = EventStore::open(url).unwrap();
        let writer = store.writer(WriterOptions::default()).unwrap();
        let sink = StoreSink::attach(&bus, writer, SinkOptions::default()).unwrap();
        for event in events {
            bus.send(event).await.unwrap();
        }
        bus.wait(Duration::from_secs(10)).await.unwrap();
        sink.close(Duration::from_secs(10)).await.unwrap();
        collector.summary()
    })
}

#[test]
fn replay_of_a_stored_session_records_the_live_runs_metrics() {
    let (dir, url) = scratch_store("replay");
    let session = "metrics-cli-replay";
    let live = record_live(&url, session_events(session, 2.0));
    assert_eq!(live.llm.responses, 2);
    assert_eq!(live.tools.calls, 1);

    let output = Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args(["replay", session, "--store", &url, "--speed", "max"])
        .args(["--events", "jsonl", "--metrics-json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON summary on stderr: {stderr}"));
    let replayed: MetricsSummary = serde_json::from_str(line).unwrap();
    assert_eq!(replayed, live, "replay recorded different metrics");
    // stdout is still only the replayed events.
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 10);
    std::fs::remove_dir_all(dir).ok();
}

fn scrape(addr: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

#[test]
fn metrics_endpoint_is_scraped_while_a_replay_runs() {
    let (dir, url) = scratch_store("scrape");
    let session = "metrics-cli-scrape";
    // Four seconds of event time, replayed in real time: the process outlives the scrape.
    record_live(&url, session_events(session, 4.0));
    let addr = closed_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args(["replay", session, "--store", &url, "--speed", "1"])
        .args(["--metrics-addr", &addr.to_string(), "--metrics-linger", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first LLM call is replayed 1.2 s in; poll until it shows, the process still
    // running (the replay lasts 4 s).
    let expected = "gen_ai_client_token_usage_sum{gen_ai_operation_name=\"chat\",\
                    gen_ai_request_model=\"gpt-test\",gen_ai_response_model=\"gpt-test\",\
                    gen_ai_token_type=\"input\"} 300";
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    let body = loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "replay ended before /metrics showed the first LLM call; last scrape:\n{last}"
        );
        if let Some(body) = scrape(addr) {
            if body.lines().any(|l| l == expected) {
                break body;
            }
            last = body;
        }
        assert!(Instant::now() < deadline, "no {expected} in\n{last}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(body.contains("# TYPE llm_latency_ms histogram"), "{body}");
    assert!(
        body.lines()
            .any(|l| l == "llm_tokens_input_total{model=\"gpt-test\"} 300"),
        "{body}"
    );
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("metrics: http://{addr}/metrics")),
        "{stderr}"
    );
    // The end-of-run summary: latency, TTFT, tokens and tool timings.
    assert!(stderr.contains("tokens in 1000 out 45"), "{stderr}");
    assert!(stderr.contains("ttft ms"), "{stderr}");
    assert!(stderr.contains("calculator: calls 1"), "{stderr}");
    std::fs::remove_dir_all(dir).ok();
}

// ---- agentbus run --metrics-addr, against a fake OpenAI-compatible server ---------------

/// A fake model: the first request gets a calculator call; the second is answered only
/// once `gate` is released, so the run is still going while the test scrapes.
fn serve_held(gate: Gate) -> FakeServer {
    let call = json!({"index": 0, "id": "call_1", "type": "function",
                      "function": {"name": "calculator",
                                   "arguments": "{\"expression\": \"17 * 23\"}"}});
    FakeServer::start_blocking(vec![
        reply(&[
            chunk(json!({"role": "assistant", "content": null}), None),
            chunk(json!({"tool_calls": [call]}), None),
            chunk(json!({}), Some("tool_calls")),
            usage(90, 18),
        ]),
        // Held until the test has scraped (or gave up: the release is dropped).
        reply(&[
            chunk(json!({"role": "assistant", "content": "391"}), None),
            chunk(json!({}), Some("stop")),
            usage(130, 7),
        ])
        .held(gate),
    ])
}

#[test]
fn run_serves_metrics_while_it_runs_and_prints_the_summary() {
    let (release, held) = gate();
    let server = serve_held(held);
    let url = server.base_url.clone();
    let (dir, _) = scratch_store("run");
    let addr = closed_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .current_dir(&dir)
        .env_remove("OPENAI_API_KEY")
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
        .args(["--no-store", "--metrics-addr", &addr.to_string()])
        .args(["--metrics-linger", "3m"])
        .arg("What is 17 * 23?")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input_of_first_call = |body: &str| {
        body.lines().any(|l| {
            l.starts_with("gen_ai_client_token_usage_sum{")
                && l.contains("gen_ai_token_type=\"input\"")
                && l.ends_with("} 90")
        })
    };
    let tool_recorded = |body: &str| {
        body.lines().any(|l| {
            l.starts_with("llm_tool_calls_total{")
                && l.contains("success=\"true\",tool_name=\"calculator\"")
                && l.ends_with("} 1")
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    let body = loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "run ended early:\n{last}"
        );
        if let Some(body) = scrape(addr) {
            if input_of_first_call(&body) && tool_recorded(&body) {
                break body;
            }
            last = body;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed the first call:\n{last}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(body.contains("# TYPE gen_ai_client_operation_duration_seconds histogram"));
    assert!(body.contains("# TYPE gen_ai_execute_tool_duration_seconds histogram"));
    release.release();
    // The run ends, then lingers (at most three minutes) until /metrics is scraped once
    // more: that scrape sees the complete run, and the process exits right after it.
    let mut stderr_lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut stderr = String::new();
    for line in stderr_lines.by_ref() {
        let line = line.unwrap();
        stderr.push_str(&line);
        stderr.push('\n');
        if line.contains("run finished; serving") {
            break;
        }
    }
    assert!(
        stderr.contains("at most 180s (--metrics-linger)"),
        "{stderr}"
    );
    let last = scrape(addr).expect("/metrics is served after the run");
    let input_total = last
        .lines()
        .filter(|l| {
            l.starts_with("gen_ai_client_token_usage_sum{")
                && l.contains("gen_ai_token_type=\"input\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum::<u64>();
    assert_eq!(
        input_total, 220,
        "the scrape after the run sees both calls:\n{last}"
    );
    let scraped = Instant::now();
    let status = child.wait().unwrap();
    assert!(
        scraped.elapsed() < Duration::from_secs(90),
        "the run kept lingering after its last scrape"
    );
    for line in stderr_lines {
        stderr.push_str(&line.unwrap());
        stderr.push('\n');
    }
    assert!(status.success(), "{stderr}");
    // The end-of-run summary: latency, TTFT, tokens and tool timings.
    assert!(stderr.contains("llm     responses 2 errors 0"), "{stderr}");
    assert!(stderr.contains("latency ms n=2"), "{stderr}");
    assert!(stderr.contains("ttft ms    n="), "{stderr}");
    assert!(stderr.contains("tokens in 220 out 25"), "{stderr}");
    assert!(
        stderr.contains("calculator: calls 1 failures 0  ms n=1"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn chat_records_the_instrumented_call() {
    let server = FakeServer::start_blocking(vec![reply(&[
        chunk(json!({"role": "assistant", "content": "hi"}), None),
        chunk(json!({}), Some("stop")),
        usage(42, 2),
    ])]);
    let url = server.base_url.clone();
    let output = Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .env_remove("OPENAI_API_KEY")
        .env("RUST_LOG", "error")
        .args([
            "chat",
            "--provider",
            "openai",
            "--base-url",
            &url,
            "--model",
            "fake-model",
        ])
        .args(["--no-store", "--metrics-json", "hello"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON summary: {stderr}"));
    let summary: MetricsSummary = serde_json::from_str(line).unwrap();
    assert_eq!(summary.llm.responses, 1, "{line}");
    assert_eq!(summary.llm.input_tokens, Some(42));
    assert_eq!(summary.llm.output_tokens, Some(2));
    assert_eq!(summary.llm.models.get("fake-model"), Some(&1));
    assert!(summary.llm.latency_ms.is_some());
}
