//! The instrumentation publishes every LLM event and stream event of a call on a real bus,
//! with one request id and session id; the scripted model replays events and recordings.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentbus::EventManager;
use agentbus_events::DynEvent;
use agentbus_events::llm::{
    LLMErrorEvent, LLMRequestStartedEvent, LLMResponseChunkEvent, LLMResponseCompletedEvent,
    LLMResponseFinalEvent,
};
use agentbus_events::stream::StreamFinishEvent;
use agentbus_llm::{
    Api, ChatModel, ChatRequest, InstrumentedModel, ScriptedModel, StreamError, StreamErrorKind,
    StreamEvent,
};
use futures::StreamExt;

async fn capture(
    model: ScriptedModel,
    request: ChatRequest,
) -> (Vec<StreamEvent>, Vec<Arc<dyn DynEvent>>) {
    let bus = EventManager::new();
    let seen: Arc<Mutex<Vec<Arc<dyn DynEvent>>>> = Arc::default();
    let sink = Arc::clone(&seen);
    bus.subscribe("capture", move |e: Arc<dyn DynEvent>| {
        let sink = Arc::clone(&sink);
        async move { sink.lock().unwrap().push(e) }
    })
    .unwrap();
    let model = InstrumentedModel::new(model, bus.clone()).with_session("s-1");
    let events: Vec<StreamEvent> = model.stream(request).collect().await;
    bus.wait(Duration::from_secs(5)).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    (events, seen)
}

#[tokio::test]
async fn a_recorded_call_publishes_every_event_with_one_request_and_session() {
    let fixture = common::fixtures()
        .into_iter()
        .find(|f| f.name == "openai__chat_text_usage")
        .unwrap();
    let scripted = ScriptedModel::from_sse("gpt", fixture.api, fixture.body.clone());
    let request = ChatRequest {
        request_id: Some("req-7".into()),
        ..ChatRequest::from_prompt("hi")
    };
    let (events, seen) = capture(scripted, request).await;
    let text_deltas = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::TextDelta(_)))
        .count();
    assert!(text_deltas > 1);

    assert!(
        seen[0].downcast_ref::<LLMRequestStartedEvent>().is_some(),
        "request started comes first"
    );
    for event in &seen {
        assert_eq!(
            event.meta().session_id.as_deref(),
            Some("s-1"),
            "{}",
            event.event_type()
        );
        let wire = event.to_wire_value().unwrap();
        let request_id = wire
            .get("request_id")
            .or_else(|| wire.get("user_metadata").and_then(|m| m.get("request_id")))
            .cloned();
        assert_eq!(
            request_id,
            Some(serde_json::json!("req-7")),
            "{}",
            event.event_type()
        );
    }
    let chunks: Vec<&LLMResponseChunkEvent> =
        seen.iter().filter_map(|e| e.downcast_ref()).collect();
    assert_eq!(chunks.len(), text_deltas);
    assert!(chunks[0].is_first_chunk && chunks[0].time_to_first_token_ms.is_some());
    assert!(
        chunks[1..]
            .iter()
            .all(|c| !c.is_first_chunk && c.time_to_first_token_ms.is_none())
    );
    assert!(
        chunks
            .iter()
            .enumerate()
            .all(|(i, c)| c.sequence_number == Some(i as u64))
    );
    let stream_events = seen
        .iter()
        .filter(|e| e.event_type().starts_with("stream."))
        .count();
    assert_eq!(
        stream_events,
        events.len(),
        "every stream event is published"
    );

    let completed: &LLMResponseCompletedEvent = seen.iter().find_map(|e| e.downcast_ref()).unwrap();
    assert_eq!(completed.text, fixture.expected["text"]);
    assert_eq!(
        completed.input_tokens,
        fixture.expected["usage"]["input_tokens"].as_u64()
    );
    assert_eq!(
        completed.output_tokens,
        fixture.expected["usage"]["output_tokens"].as_u64()
    );
    assert_eq!(
        completed.model.as_deref(),
        fixture.expected["model"].as_str()
    );
    let final_event: &LLMResponseFinalEvent = seen.iter().find_map(|e| e.downcast_ref()).unwrap();
    assert_eq!(final_event.text, completed.text);
    assert!(seen.iter().any(|e| e.is::<StreamFinishEvent>()));
    assert!(!seen.iter().any(|e| e.is::<LLMErrorEvent>()));
}

#[tokio::test]
async fn a_failed_call_publishes_an_llm_error() {
    let scripted = ScriptedModel::from_events(
        "m",
        vec![
            StreamEvent::text_delta("par", "par"),
            StreamEvent::Error(
                StreamError::new(StreamErrorKind::RateLimit, "slow down").with_status(429),
            ),
        ],
    );
    let (events, seen) = capture(scripted, ChatRequest::from_prompt("hi")).await;
    assert_eq!(events.len(), 2);
    let error: &LLMErrorEvent = seen.iter().find_map(|e| e.downcast_ref()).unwrap();
    assert!(error.is_recoverable);
    assert_eq!(error.failure.error_code.as_deref(), Some("429"));
    assert_eq!(error.failure.error.as_ref().unwrap().kind, "rate_limit");
    let started: &LLMRequestStartedEvent = seen.iter().find_map(|e| e.downcast_ref()).unwrap();
    assert_eq!(
        error.request_id.as_deref(),
        Some(started.request_id.as_str())
    );
    assert!(!seen.iter().any(|e| e.is::<LLMResponseCompletedEvent>()));
}

#[tokio::test]
async fn scripted_model_replays_with_delays_and_truncated_recordings_fail() {
    let scripted = ScriptedModel::text("m", "hello").with_delay(Duration::from_millis(1));
    let response = scripted.complete(ChatRequest::from_prompt("hi")).await;
    assert_eq!(response.text, "hello");
    assert!(response.finish.is_some());

    let fixture = common::fixtures()
        .into_iter()
        .find(|f| f.name == "anthropic__tool_use_nested_args")
        .unwrap();
    let half = fixture.body.len() / 2;
    let scripted =
        ScriptedModel::from_sse("m", Api::AnthropicMessages, fixture.body[..half].to_vec());
    let response = scripted.complete(ChatRequest::from_prompt("hi")).await;
    assert!(response.error.as_ref().is_some_and(|e| e.recoverable));
    assert!(response.finish.is_none());
}

fn completed_of(seen: &[Arc<dyn DynEvent>]) -> LLMResponseCompletedEvent {
    seen.iter()
        .find_map(|e| e.downcast_ref::<LLMResponseCompletedEvent>())
        .cloned()
        .expect("a completed event")
}

#[tokio::test]
async fn a_response_that_starts_with_a_tool_call_has_a_time_to_first_token() {
    use agentbus_events::stream::{Finish, ToolCall, ToolCallDelta};
    let delta = StreamEvent::ToolCallDelta(ToolCallDelta {
        index: 0,
        id: Some("call_1".into()),
        name: Some("calculator".into()),
        arguments_delta: "{\"expr\":\"1+1\"}".into(),
    });
    let call = StreamEvent::ToolCall(ToolCall {
        tool_use_id: "call_1".into(),
        tool_name: "calculator".into(),
        tool_input: serde_json::json!({"expr": "1+1"}),
        arguments_raw: None,
    });
    let finish = StreamEvent::Finish(Finish {
        stop_reason: "tool_calls".into(),
        ..Finish::default()
    });
    // With argument fragments, and a model that sends the whole call at once.
    for events in [
        vec![delta, call.clone(), finish.clone()],
        vec![call, finish],
    ] {
        let scripted = ScriptedModel::from_events("m", events).with_delay(Duration::from_millis(2));
        let (_, seen) = capture(scripted, ChatRequest::from_prompt("hi")).await;
        let completed = completed_of(&seen);
        let ttft = completed.time_to_first_token_ms.expect("a TTFT");
        assert!(
            ttft >= 2.0 && ttft <= completed.latency_ms.unwrap(),
            "{ttft}"
        );
    }
}

#[tokio::test]
async fn reasoning_first_sets_the_ttft_that_the_first_text_chunk_reports() {
    let scripted = ScriptedModel::from_events(
        "m",
        vec![
            StreamEvent::ReasoningStart,
            StreamEvent::reasoning_delta("thinking"),
            StreamEvent::text_delta("hi", "hi"),
            StreamEvent::Finish(Default::default()),
        ],
    )
    .with_delay(Duration::from_millis(5));
    let (_, seen) = capture(scripted, ChatRequest::from_prompt("hi")).await;
    let completed = completed_of(&seen);
    let chunk: &LLMResponseChunkEvent = seen.iter().find_map(|e| e.downcast_ref()).unwrap();
    assert!(chunk.is_first_chunk);
    assert_eq!(
        chunk.time_to_first_token_ms,
        completed.time_to_first_token_ms
    );
    // The reasoning delta came one delay before the text.
    let ttft = completed.time_to_first_token_ms.unwrap();
    assert!(ttft < completed.latency_ms.unwrap() - 4.0, "{ttft}");

    // No output at all: no TTFT.
    let scripted = ScriptedModel::from_events("m", vec![StreamEvent::Finish(Default::default())]);
    let (_, seen) = capture(scripted, ChatRequest::from_prompt("hi")).await;
    assert_eq!(completed_of(&seen).time_to_first_token_ms, None);
}

#[tokio::test]
async fn token_totals_saturate() {
    let scripted = ScriptedModel::from_events(
        "m",
        vec![StreamEvent::Finish(agentbus_events::stream::Finish {
            input_tokens: u64::MAX,
            output_tokens: 7,
            ..Default::default()
        })],
    );
    let (_, seen) = capture(scripted, ChatRequest::from_prompt("hi")).await;
    assert_eq!(completed_of(&seen).total_tokens, Some(u64::MAX));
}
