//! A scripted session: catalogue events with chosen timings and token counts, and the
//! metric values they must produce.

#![allow(dead_code)] // each test binary uses part of this module

use agentbus_events::base::PcmData;
use agentbus_events::llm::{LLMErrorEvent, LLMRequestStartedEvent, LLMResponseCompletedEvent};
use agentbus_events::react::{
    EventOrigin, LLMCallEndEvent, LLMCallStartEvent, ReactEndEvent, ReactStartEvent, TokenUsage,
    ToolCallEndEvent, ToolCallErrorEvent, ToolCallStartEvent,
};
use agentbus_events::realtime::{
    RealtimeAudioInputEvent, RealtimeConnectedEvent, RealtimeDisconnectedEvent,
};
use agentbus_events::stt::STTTranscriptEvent;
use agentbus_events::tool::ToolEndEvent;
use agentbus_events::tts::TTSSynthesisCompleteEvent;
use agentbus_events::turn::TurnEndedEvent;
use agentbus_events::video::VideoProcessorDetectionEvent;
use agentbus_events::vlm::VLMInferenceCompletedEvent;
use agentbus_events::{DynEvent, ErrorFields, ErrorInfo, EventMeta, PluginInfo};
use chrono::{DateTime, Duration, TimeZone, Utc};

/// The session's clock: `t(ms)` is `ms` after a fixed instant.
pub fn t(ms: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + Duration::milliseconds(ms)
}

pub fn meta_at(ms: i64) -> EventMeta {
    EventMeta {
        timestamp: t(ms),
        ..EventMeta::for_session("session-1")
    }
}

fn openai() -> PluginInfo {
    PluginInfo::named("openai")
}

/// Vision Agents events with known values (see the assertions in `scripted_session.rs`).
pub fn vision_agents_session() -> Vec<Box<dyn DynEvent>> {
    vec![
        Box::new(LLMRequestStartedEvent {
            meta: meta_at(0),
            plugin: openai(),
            request_id: "r1".into(),
            model: Some("gpt-4o".into()),
            streaming: true,
            tool_choice: None,
        }),
        // latency 1200 ms, ttft 150 ms, 100 in, 21 out: tpot = 1.05 s / 20 = 0.0525 s.
        Box::new(LLMResponseCompletedEvent {
            meta: meta_at(1200),
            plugin: openai(),
            latency_ms: Some(1200.0),
            time_to_first_token_ms: Some(150.0),
            input_tokens: Some(100),
            output_tokens: Some(21),
            model: Some("gpt-4o".into()),
            ..Default::default()
        }),
        // latency 300 ms, 5000 in, no output count, no ttft.
        Box::new(LLMResponseCompletedEvent {
            meta: meta_at(1500),
            plugin: openai(),
            latency_ms: Some(300.0),
            input_tokens: Some(5000),
            model: Some("gpt-4o".into()),
            ..Default::default()
        }),
        Box::new(LLMRequestStartedEvent {
            meta: meta_at(2000),
            plugin: openai(),
            request_id: "r2".into(),
            model: Some("gpt-4o-mini".into()),
            streaming: true,
            tool_choice: None,
        }),
        // Fails 2 s after its request started.
        Box::new(LLMErrorEvent {
            meta: meta_at(4000),
            plugin: openai(),
            failure: ErrorFields::new(ErrorInfo::new("rate_limit", "slow down").with_code("429")),
            request_id: Some("r2".into()),
            is_recoverable: true,
        }),
        Box::new(ToolEndEvent {
            meta: meta_at(4100),
            plugin: PluginInfo::named("agent"),
            tool_name: "search".into(),
            success: true,
            tool_call_id: Some("tc1".into()),
            execution_time_ms: Some(40.0),
            ..Default::default()
        }),
        Box::new(ToolCallErrorEvent {
            meta: meta_at(4300),
            origin: EventOrigin::default(),
            tool_name: "search".into(),
            tool_call_id: "tc2".into(),
            error: ErrorInfo::new("timeout", "took too long"),
            execution_time_ms: 250.0,
            ..Default::default()
        }),
        Box::new(ToolEndEvent {
            meta: meta_at(4350),
            plugin: PluginInfo::named("agent"),
            tool_name: "search".into(),
            success: false,
            error: Some("timeout: took too long".into()),
            tool_call_id: Some("tc2".into()),
            execution_time_ms: Some(250.0),
            ..Default::default()
        }),
        Box::new(STTTranscriptEvent {
            meta: meta_at(5000),
            plugin: PluginInfo::named("deepgram"),
            text: "hello there".into(),
            language: Some("en".into()),
            processing_time_ms: Some(80.0),
            audio_duration_ms: Some(1500.0),
            model_name: Some("nova-2".into()),
            ..Default::default()
        }),
        Box::new(TTSSynthesisCompleteEvent {
            meta: meta_at(5200),
            plugin: PluginInfo::named("cartesia"),
            text: Some("héllo".into()),
            synthesis_time_ms: 120.0,
            ..Default::default()
        }),
        Box::new(TurnEndedEvent {
            meta: meta_at(7000),
            plugin: PluginInfo::named("smart_turn"),
            duration_ms: Some(2000.0),
            trailing_silence_ms: Some(500.0),
            ..Default::default()
        }),
        Box::new(VLMInferenceCompletedEvent {
            meta: meta_at(8000),
            plugin: PluginInfo::named("moondream"),
            model: Some("moondream-2".into()),
            latency_ms: Some(900.0),
            input_tokens: Some(1000),
            frames_processed: 4,
            detections: 2,
            ..Default::default()
        }),
        Box::new(VideoProcessorDetectionEvent {
            meta: meta_at(8100),
            plugin: PluginInfo::named("ultralytics"),
            model_id: Some("yolo11".into()),
            inference_time_ms: Some(30.0),
            detection_count: 3,
        }),
        Box::new(RealtimeConnectedEvent {
            meta: meta_at(9000),
            plugin: openai(),
            ..Default::default()
        }),
        // 160 samples of 16-bit mono at 16 kHz: 320 bytes, 10 ms.
        Box::new(RealtimeAudioInputEvent {
            meta: meta_at(9500),
            plugin: openai(),
            data: Some(PcmData::from_s16(16_000, 1, &[0i16; 160])),
        }),
        Box::new(RealtimeDisconnectedEvent {
            meta: meta_at(14_000),
            plugin: openai(),
            was_clean: true,
            ..Default::default()
        }),
    ]
}

pub fn origin(agent_call_id: &str, parent: Option<&str>) -> EventOrigin {
    EventOrigin {
        session_id: "session-1".into(),
        agent_call_id: agent_call_id.into(),
        parent_agent_call_id: parent.map(str::to_owned),
        ..EventOrigin::default()
    }
}

/// One ReAct run: an LLM call asking for a tool, the tool, a second LLM call answering.
pub fn react_session() -> Vec<Box<dyn DynEvent>> {
    let o = || origin("call-1", None);
    vec![
        Box::new(ReactStartEvent {
            meta: meta_at(0),
            origin: o(),
            user_message: "what is 2+2".into(),
            model: Some("gpt-test".into()),
            ..Default::default()
        }),
        Box::new(LLMCallStartEvent {
            meta: meta_at(10),
            origin: o(),
            model: Some("gpt-test".into()),
            ..Default::default()
        }),
        Box::new(LLMCallEndEvent {
            meta: meta_at(510),
            origin: o(),
            model: Some("gpt-test-2026".into()),
            finish_reason: "tool_calls".into(),
            usage: TokenUsage {
                input_tokens: 50,
                output_tokens: 10,
                ..TokenUsage::default()
            },
            time_to_first_token_ms: Some(100.0),
            execution_time_ms: 500.0,
            ..Default::default()
        }),
        Box::new(ToolCallStartEvent {
            meta: meta_at(520),
            origin: o(),
            tool_name: "calculator".into(),
            tool_call_id: "tc-9".into(),
            ..Default::default()
        }),
        Box::new(ToolCallEndEvent {
            meta: meta_at(540),
            origin: o(),
            tool_name: "calculator".into(),
            tool_call_id: "tc-9".into(),
            success: true,
            execution_time_ms: 20.0,
            ..Default::default()
        }),
        Box::new(ToolEndEvent {
            meta: meta_at(540),
            plugin: PluginInfo::named("agent"),
            tool_name: "calculator".into(),
            success: true,
            tool_call_id: Some("tc-9".into()),
            execution_time_ms: Some(20.0),
            ..Default::default()
        }),
        Box::new(LLMCallStartEvent {
            meta: meta_at(550),
            origin: o(),
            model: Some("gpt-test".into()),
            ..Default::default()
        }),
        Box::new(LLMCallEndEvent {
            meta: meta_at(850),
            origin: o(),
            model: Some("gpt-test-2026".into()),
            finish_reason: "stop".into(),
            usage: TokenUsage {
                input_tokens: 70,
                output_tokens: 5,
                ..TokenUsage::default()
            },
            execution_time_ms: 300.0,
            ..Default::default()
        }),
        Box::new(ReactEndEvent {
            meta: meta_at(860),
            origin: o(),
            response: "4".into(),
            iterations: 2,
            total_tool_calls: 1,
            total_llm_calls: 2,
            execution_time_ms: 860.0,
            ..Default::default()
        }),
    ]
}
