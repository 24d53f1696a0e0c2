//! A scripted session sent over a real bus produces exactly the expected values in both
//! instrument sets, read back through the SDK's pull reader.

mod common;

use std::time::Duration;

use agentbus::EventManager;
use agentbus_events::DynEvent;
use agentbus_events::PluginInfo;
use agentbus_events::llm::LLMResponseCompletedEvent;
use agentbus_events::stt::STTTranscriptEvent;
use agentbus_events::vlm::VLMInferenceCompletedEvent;
use agentbus_telemetry::snapshot::{HistogramPoint, Number};
use agentbus_telemetry::{MetricsCollector, MetricsReader, MetricsSnapshot};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;

struct Setup {
    bus: EventManager,
    collector: MetricsCollector,
    reader: MetricsReader,
    _provider: SdkMeterProvider,
}

fn setup() -> Setup {
    let reader = MetricsReader::new();
    let provider = SdkMeterProvider::builder()
        .with_reader(reader.clone())
        .build();
    let collector = MetricsCollector::with_meter(&provider.meter("test"));
    let bus = EventManager::new();
    collector.attach(&bus, "metrics").unwrap();
    Setup {
        bus,
        collector,
        reader,
        _provider: provider,
    }
}

async fn send_all(bus: &EventManager, events: Vec<Box<dyn DynEvent>>) {
    for event in events {
        bus.send(event).await.unwrap();
    }
    bus.wait(Duration::from_secs(10)).await.unwrap();
}

fn hist<'a>(s: &'a MetricsSnapshot, name: &str, labels: &[(&str, &str)]) -> &'a HistogramPoint {
    s.histogram(name, labels)
        .unwrap_or_else(|| panic!("no {name} {labels:?}; have {:?}", s.label_sets(name)))
}

fn sum(p: &HistogramPoint) -> f64 {
    p.sum.as_f64()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn counter(s: &MetricsSnapshot, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.counter(name, labels)
        .unwrap_or_else(|| panic!("no {name} {labels:?}; have {:?}", s.label_sets(name)))
        .as_f64()
}

/// Asserts that `p` holds exactly one measurement per listed bucket bound.
fn buckets(p: &HistogramPoint, expected: &[(f64, u64)]) {
    let total: u64 = expected.iter().map(|(_, n)| n).sum();
    assert_eq!(p.count, total, "count of {p:?}");
    for (le, n) in expected {
        assert_eq!(p.bucket(*le), Some(*n), "bucket le={le} of {p:?}");
    }
    assert_eq!(p.bucket_counts.iter().sum::<u64>(), total);
}

#[tokio::test]
async fn vision_agents_instrument_set_has_the_scripted_values() {
    let s = setup();
    send_all(&s.bus, common::vision_agents_session()).await;
    let m = s.reader.snapshot().unwrap();

    let openai_4o = [("provider", "openai"), ("model", "gpt-4o")];
    let p = hist(&m, "llm.latency.ms", &openai_4o);
    buckets(p, &[(500.0, 1), (2500.0, 1)]);
    assert_eq!(sum(p), 1500.0);
    let p = hist(&m, "llm.time_to_first_token.ms", &openai_4o);
    buckets(p, &[(250.0, 1)]);
    assert_eq!(counter(&m, "llm.tokens.input", &openai_4o), 5100.0);
    assert_eq!(counter(&m, "llm.tokens.output", &openai_4o), 21.0);
    assert_eq!(
        counter(
            &m,
            "llm.errors",
            &[
                ("provider", "openai"),
                ("error_type", "rate_limit"),
                ("error_code", "429")
            ]
        ),
        1.0
    );

    let ok = [
        ("provider", "agent"),
        ("tool_name", "search"),
        ("success", "true"),
    ];
    let failed = [
        ("provider", "agent"),
        ("tool_name", "search"),
        ("success", "false"),
    ];
    assert_eq!(counter(&m, "llm.tool_calls", &ok), 1.0);
    assert_eq!(counter(&m, "llm.tool_calls", &failed), 1.0);
    buckets(hist(&m, "llm.tool_latency.ms", &ok), &[(50.0, 1)]);
    buckets(hist(&m, "llm.tool_latency.ms", &failed), &[(250.0, 1)]);

    let stt = [
        ("provider", "deepgram"),
        ("model", "nova-2"),
        ("language", "en"),
    ];
    buckets(hist(&m, "stt.latency.ms", &stt), &[(100.0, 1)]);
    buckets(hist(&m, "stt.audio_duration.ms", &stt), &[(2500.0, 1)]);

    let tts = [("provider", "cartesia")];
    buckets(hist(&m, "tts.latency.ms", &tts), &[(250.0, 1)]);
    assert_eq!(
        counter(&m, "tts.characters", &tts),
        5.0,
        "characters, not bytes"
    );
    assert!(
        m.label_sets("tts.audio_duration.ms").is_empty(),
        "no audio duration was reported"
    );

    let turn = [("provider", "smart_turn")];
    buckets(hist(&m, "turn.duration.ms", &turn), &[(2500.0, 1)]);
    buckets(hist(&m, "turn.trailing_silence.ms", &turn), &[(500.0, 1)]);

    let vlm = [("provider", "moondream"), ("model", "moondream-2")];
    assert_eq!(counter(&m, "vlm.inferences", &vlm), 1.0);
    buckets(hist(&m, "vlm.inference.latency.ms", &vlm), &[(1000.0, 1)]);
    assert_eq!(counter(&m, "vlm.tokens.input", &vlm), 1000.0);
    assert!(m.label_sets("vlm.tokens.output").is_empty());
    assert_eq!(counter(&m, "video.frames.processed", &vlm), 4.0);
    assert_eq!(counter(&m, "video.detections", &vlm), 2.0);
    let yolo = [("provider", "ultralytics"), ("model", "yolo11")];
    assert_eq!(counter(&m, "video.frames.processed", &yolo), 1.0);
    assert_eq!(counter(&m, "video.detections", &yolo), 3.0);
    buckets(hist(&m, "video.processing.latency.ms", &yolo), &[(50.0, 1)]);

    let rt = [("provider", "openai")];
    assert_eq!(counter(&m, "realtime.sessions", &rt), 1.0);
    let p = hist(
        &m,
        "realtime.session_duration.ms",
        &[("provider", "openai"), ("was_clean", "true")],
    );
    buckets(p, &[(5000.0, 1)]);
    assert_eq!(sum(p), 5000.0, "from the events' timestamps");
    assert_eq!(counter(&m, "realtime.audio.input.bytes", &rt), 320.0);
    assert_eq!(
        m.counter("realtime.audio.input.duration.ms", &rt),
        Some(Number::F64(10.0))
    );
}

#[tokio::test]
async fn gen_ai_instrument_set_has_the_scripted_values_and_buckets() {
    let s = setup();
    send_all(&s.bus, common::vision_agents_session()).await;
    let m = s.reader.snapshot().unwrap();

    let chat = [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "openai"),
        ("gen_ai.response.model", "gpt-4o"),
    ];
    let with_type = |t: &'static str| {
        let mut l = chat.to_vec();
        l.push(("gen_ai.token.type", t));
        l
    };
    let input = hist(&m, "gen_ai.client.token.usage", &with_type("input"));
    buckets(input, &[(256.0, 1), (16384.0, 1)]);
    assert_eq!(input.sum, Number::U64(5100));
    let output = hist(&m, "gen_ai.client.token.usage", &with_type("output"));
    buckets(output, &[(64.0, 1)]);
    assert_eq!(output.sum, Number::U64(21));

    let duration = hist(&m, "gen_ai.client.operation.duration", &chat);
    buckets(duration, &[(0.32, 1), (1.28, 1)]);
    assert!(close(sum(duration), 1.5));
    let failed = hist(
        &m,
        "gen_ai.client.operation.duration",
        &[
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.provider.name", "openai"),
            ("gen_ai.request.model", "gpt-4o-mini"),
            ("error.type", "rate_limit"),
        ],
    );
    buckets(failed, &[(2.56, 1)]);
    assert!(close(sum(failed), 2.0), "request start to error: 2 s");

    buckets(
        hist(&m, "gen_ai.server.time_to_first_token", &chat),
        &[(0.25, 1)],
    );
    let tpot = hist(&m, "gen_ai.server.time_per_output_token", &chat);
    buckets(tpot, &[(0.075, 1)]);
    assert!(close(sum(tpot), 0.0525));

    let tool = [
        ("gen_ai.operation.name", "execute_tool"),
        ("gen_ai.tool.name", "search"),
    ];
    let p = hist(&m, "gen_ai.execute_tool.duration", &tool);
    buckets(p, &[(0.04, 1)]);
    let mut failed_tool = tool.to_vec();
    failed_tool.push(("error.type", "timeout"));
    buckets(
        hist(&m, "gen_ai.execute_tool.duration", &failed_tool),
        &[(0.32, 1)],
    );

    let vlm = [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "moondream"),
        ("gen_ai.response.model", "moondream-2"),
        ("gen_ai.token.type", "input"),
    ];
    buckets(hist(&m, "gen_ai.client.token.usage", &vlm), &[(1024.0, 1)]);

    // The convention's boundaries, as configured.
    assert_eq!(
        input.bounds,
        agentbus_telemetry::instruments::GEN_AI_TOKEN_BOUNDARIES
    );
    assert_eq!(
        duration.bounds,
        agentbus_telemetry::instruments::GEN_AI_DURATION_BOUNDARIES
    );
}

#[tokio::test]
async fn summary_has_counts_sums_and_percentiles() {
    let s = setup();
    send_all(&s.bus, common::vision_agents_session()).await;
    let summary = s.collector.summary();
    assert_eq!(summary.events, 16);
    assert_eq!(summary.llm.responses, 2);
    assert_eq!(summary.llm.errors, 1);
    assert_eq!(summary.llm.input_tokens, Some(5100));
    assert_eq!(summary.llm.output_tokens, Some(21));
    let latency = summary.llm.latency_ms.clone().unwrap();
    assert_eq!((latency.count, latency.sum), (2, 1500.0));
    assert_eq!((latency.p50, latency.p95), (300.0, 1200.0));
    assert_eq!(
        summary.llm.time_to_first_token_ms.as_ref().unwrap().p50,
        150.0
    );
    assert_eq!(summary.tools.calls, 2);
    assert_eq!(summary.tools.failures, 1);
    assert_eq!(summary.tools.by_tool["search"].calls, 2);
    assert_eq!(summary.tts.characters, 5);
    assert_eq!(summary.tts.audio_duration_ms, None);
    assert_eq!(summary.video.frames_processed, 5);
    assert_eq!(summary.realtime.audio_input_bytes, 320);

    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["llm"]["input_tokens"], 5100);
    assert_eq!(json["llm"]["latency_ms"]["p95"], 1200.0);
    assert!(json["tts"].get("audio_duration_ms").is_none());
    let back: agentbus_telemetry::MetricsSummary = serde_json::from_value(json).unwrap();
    assert_eq!(back, summary);
    let text = summary.to_string();
    assert!(text.contains("tokens in 5100 out 21"), "{text}");
}

#[tokio::test]
async fn react_events_are_llm_calls_and_tools_are_counted_once() {
    let s = setup();
    send_all(&s.bus, common::react_session()).await;
    let m = s.reader.snapshot().unwrap();
    let summary = s.collector.summary();
    assert_eq!(summary.agent.runs_started, 1);
    assert_eq!(summary.agent.runs_finished, 1);
    assert_eq!(summary.llm.responses, 2);
    assert_eq!(summary.llm.input_tokens, Some(120));
    assert_eq!(summary.llm.output_tokens, Some(15));
    // react.tool_call_end and plugin.llm.tool.end describe the same call.
    assert_eq!(summary.tools.calls, 1);

    let va = [("model", "gpt-test-2026")];
    let p = hist(&m, "llm.latency.ms", &va);
    assert_eq!((p.count, sum(p)), (2, 800.0));
    let input = [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.request.model", "gpt-test"),
        ("gen_ai.response.model", "gpt-test-2026"),
        ("gen_ai.token.type", "input"),
    ];
    let p = hist(&m, "gen_ai.client.token.usage", &input);
    assert_eq!((p.count, p.sum), (2, Number::U64(120)));
    let chat = [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.request.model", "gpt-test"),
        ("gen_ai.response.model", "gpt-test-2026"),
    ];
    // (500 - 100) ms over 9 tokens after the first.
    let p = hist(&m, "gen_ai.server.time_per_output_token", &chat);
    buckets(p, &[(0.05, 1)]);
    assert_eq!(
        counter(
            &m,
            "llm.tool_calls",
            &[
                ("provider", "agent"),
                ("tool_name", "calculator"),
                ("success", "true")
            ]
        ),
        1.0
    );
}

#[tokio::test]
async fn an_instrumented_agent_counts_each_llm_call_once() {
    // `agentbus run` publishes both the loop's llm_call_* events and the instrumented
    // model's Vision Agents LLM events for the same calls, in the same session.
    let s = setup();
    let mut events = common::react_session();
    for (i, (start, end)) in [(10, 510), (600, 900)].into_iter().enumerate() {
        let request_id = format!("req-{i}");
        events.push(Box::new(agentbus_events::llm::LLMRequestStartedEvent {
            meta: common::meta_at(start),
            plugin: PluginInfo::named("openai"),
            request_id: request_id.clone(),
            model: Some("gpt-test".into()),
            streaming: true,
            tool_choice: None,
        }));
        events.push(Box::new(LLMResponseCompletedEvent {
            meta: common::meta_at(end),
            plugin: PluginInfo::named("openai"),
            model: Some("gpt-test-2026".into()),
            latency_ms: Some((end - start) as f64),
            input_tokens: Some(60),
            output_tokens: Some(5),
            ..Default::default()
        }));
    }
    // In time order, as a run publishes them: each request starts with its loop call.
    events.sort_by_key(|e| e.meta().timestamp);
    send_all(&s.bus, events).await;
    let summary = s.collector.summary();
    assert_eq!(summary.llm.responses, 2, "two calls, not four");
    assert_eq!(summary.llm.input_tokens, Some(120));
    let m = s.reader.snapshot().unwrap();
    let p = hist(
        &m,
        "llm.latency.ms",
        &[("provider", "openai"), ("model", "gpt-test-2026")],
    );
    assert_eq!((p.count, sum(p)), (2, 800.0));
}

#[tokio::test]
async fn missing_optional_fields_are_not_invented() {
    let s = setup();
    send_all(
        &s.bus,
        vec![
            Box::new(LLMResponseCompletedEvent {
                plugin: PluginInfo::named("openai"),
                ..Default::default()
            }),
            Box::new(STTTranscriptEvent {
                text: "hi".into(),
                ..Default::default()
            }),
            Box::new(VLMInferenceCompletedEvent {
                plugin: PluginInfo::named("moondream"),
                ..Default::default()
            }),
        ],
    )
    .await;
    let m = s.reader.snapshot().unwrap();
    for name in [
        "llm.latency.ms",
        "llm.time_to_first_token.ms",
        "llm.tokens.input",
        "llm.tokens.output",
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
        "gen_ai.server.time_to_first_token",
        "gen_ai.server.time_per_output_token",
        "stt.latency.ms",
        "stt.audio_duration.ms",
        "vlm.tokens.input",
        "vlm.inference.latency.ms",
        "video.frames.processed",
    ] {
        assert!(m.label_sets(name).is_empty(), "{name} was recorded: {m:?}");
    }
    // Counted, without a model attribute.
    assert_eq!(
        counter(&m, "vlm.inferences", &[("provider", "moondream")]),
        1.0
    );

    let summary = s.collector.summary();
    assert_eq!(summary.llm.responses, 1);
    assert_eq!(summary.llm.input_tokens, None);
    assert_eq!(summary.llm.latency_ms, None);
    assert_eq!(summary.stt.transcripts, 1);
    assert_eq!(summary.stt.audio_duration_ms, None);
    let json = serde_json::to_value(&summary).unwrap();
    assert!(json["llm"].get("input_tokens").is_none());
    assert!(summary.to_string().contains("tokens in not reported"));
}

#[tokio::test]
async fn direct_recording_equals_recording_through_the_bus() {
    let s = setup();
    send_all(&s.bus, common::vision_agents_session()).await;
    let direct = MetricsCollector::new();
    for event in common::vision_agents_session() {
        direct.record(event.as_ref());
    }
    assert_eq!(direct.summary(), s.collector.summary());
}

/// The voice pipeline's first reply audio carries voice-to-voice latency, and each
/// synthesis its time to first byte, in `user_metadata`; the other audio chunks record
/// (and count) nothing.
#[tokio::test]
async fn voice_latencies_come_from_the_tts_events_metadata() {
    use agentbus_events::tts::{
        TIME_TO_FIRST_BYTE_MS, TTSAudioEvent, TTSSynthesisCompleteEvent, VOICE_TO_VOICE_MS,
    };
    let s = setup();
    let with = |key: &str, ms: f64| agentbus_events::EventMeta {
        user_metadata: Some(Box::new(serde_json::json!({ "epoch": 0, key: ms }))),
        ..agentbus_events::EventMeta::for_session("voice-1")
    };
    let espeak = || PluginInfo::named("espeak-ng");
    let mut events: Vec<Box<dyn DynEvent>> = vec![Box::new(TTSAudioEvent {
        meta: with(VOICE_TO_VOICE_MS, 1234.0),
        plugin: espeak(),
        ..Default::default()
    })];
    for _ in 0..5 {
        events.push(Box::new(TTSAudioEvent {
            meta: agentbus_events::EventMeta::for_session("voice-1"),
            plugin: espeak(),
            ..Default::default()
        }));
    }
    events.push(Box::new(TTSSynthesisCompleteEvent {
        meta: with(TIME_TO_FIRST_BYTE_MS, 14.0),
        plugin: espeak(),
        synthesis_time_ms: 40.0,
        ..Default::default()
    }));
    send_all(&s.bus, events).await;

    let m = s.reader.snapshot().unwrap();
    let tts = [("provider", "espeak-ng")];
    buckets(hist(&m, "voice.voice_to_voice.ms", &tts), &[(2500.0, 1)]);
    assert!(close(
        sum(hist(&m, "voice.voice_to_voice.ms", &tts)),
        1234.0
    ));
    buckets(hist(&m, "tts.time_to_first_byte.ms", &tts), &[(25.0, 1)]);
    let summary = s.collector.summary();
    assert_eq!(
        summary.events, 2,
        "audio chunks without a measurement are not counted"
    );
    assert_eq!(summary.tts.voice_to_voice_ms.as_ref().unwrap().p50, 1234.0);
    assert_eq!(
        summary.tts.time_to_first_byte_ms.as_ref().unwrap().p50,
        14.0
    );
    let text = summary.to_string();
    assert!(text.contains("voice-to-voice ms"), "{text}");
}
