//! [`MetricsCollector`]: a bus subscriber that turns catalogue events into metrics.
//!
//! Every value comes from the event itself (its fields and timestamps), never from the
//! time the collector happened to receive it, so a replay of a stored session records
//! the same metrics as the live run. Optional fields that are absent are not recorded:
//! no model means no `model` attribute, no token counts means no token measurement.
//!
//! ## Sources
//! - Vision Agents events: LLM response completed / error, tool end, STT, TTS, turn,
//!   VLM, video processor and realtime events — as Vision Agents' collector records them.
//! - The ReAct loop's events: `react.llm_call_end` / `react.llm_call_error` are LLM calls
//!   (the agent loop does not emit Vision Agents' LLM events, so these are its only LLM
//!   record); `react.react_start` / `react.react_end` are agent runs. Tool calls are
//!   recorded from Vision Agents' `plugin.llm.tool.end`, which the agent loop publishes
//!   beside `react.tool_call_end` for every call: recording both would count each call
//!   twice. The provider stream's `stream.*` events are not recorded for the same reason
//!   (the loop's `llm_call_end` already sums them).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use agentbus::{EventManager, SubscribeError, SubscribeOptions, SubscriptionHandle};
use agentbus_events::llm::{LLMErrorEvent, LLMRequestStartedEvent, LLMResponseCompletedEvent};
use agentbus_events::react::{
    LLMCallEndEvent, LLMCallErrorEvent, LLMCallStartEvent, ReactEndEvent, ReactStartEvent,
    ToolCallEndEvent, ToolCallErrorEvent, ToolCallStartEvent,
};
use agentbus_events::realtime::{
    RealtimeAgentSpeechTranscriptionEvent, RealtimeAudioInputEvent, RealtimeAudioOutputEvent,
    RealtimeConnectedEvent, RealtimeDisconnectedEvent, RealtimeErrorEvent, RealtimeResponseEvent,
    RealtimeUserSpeechTranscriptionEvent,
};
use agentbus_events::stt::{STTErrorEvent, STTTranscriptEvent};
use agentbus_events::tool::ToolEndEvent;
use agentbus_events::tts::{TTSErrorEvent, TTSSynthesisCompleteEvent};
use agentbus_events::turn::TurnEndedEvent;
use agentbus_events::video::VideoProcessorDetectionEvent;
use agentbus_events::vlm::{VLMErrorEvent, VLMInferenceCompletedEvent};
use agentbus_events::{DynEvent, ErrorInfo};
use chrono::{DateTime, Utc};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry_sdk::metrics::SdkMeterProvider;

use crate::attributes::{AttributeCache, Builder, Set};
use crate::instruments::{Instruments, attr};
use crate::reader::MetricsReader;
use crate::spans::SpanRecorder;
use crate::summary::{MetricsSummary, SummaryState, add_opt};
use crate::telemetry::SCOPE;

/// The semantic conventions' `error.type` when a failure's class is not known.
pub const ERROR_TYPE_OTHER: &str = "_OTHER";

/// How many in-flight correlations (requests, sessions, failed tool calls) are kept; the
/// oldest is forgotten beyond this, so a producer that never closes what it opens cannot
/// grow the collector without bound.
pub const MAX_PENDING: usize = 10_000;

/// Records metrics from bus events. Cheap to clone (shared state).
#[derive(Clone)]
pub struct MetricsCollector {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MetricsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsCollector")
            .field("otel", &self.inner.instruments.is_some())
            .finish_non_exhaustive()
    }
}

struct Inner {
    instruments: Option<Instruments>,
    state: Mutex<State>,
    /// The provider the collector made for itself ([`MetricsCollector::with_reader`]),
    /// kept alive as long as the collector.
    _provider: Option<SdkMeterProvider>,
}

#[derive(Default)]
struct State {
    summary: SummaryState,
    attributes: AttributeCache,
    /// `request_id` → (start time, requested model) of Vision Agents LLM requests.
    llm_requests: Pending<(DateTime<Utc>, Option<String>)>,
    /// `agent_call_id` → model asked for by the loop's current LLM call.
    llm_call_models: Pending<Option<String>>,
    /// Sessions whose LLM calls are also published as Vision Agents LLM events (the
    /// model is instrumented): their calls are measured from those events, and the ReAct
    /// loop's `llm_call_end`/`llm_call_error` only drive spans, so no call counts twice.
    instrumented_sessions: Pending<()>,
    /// `session_id` → connect time of realtime sessions.
    realtime_sessions: Pending<DateTime<Utc>>,
    /// `tool_call_id` → error kind of failed tool calls, until their `plugin.llm.tool.end`.
    tool_errors: Pending<String>,
    spans: Option<SpanRecorder>,
}

/// A bounded map of in-flight correlations, forgetting the oldest entry when full.
struct Pending<V> {
    map: HashMap<String, V>,
    order: VecDeque<String>,
}

impl<V> Default for Pending<V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<V> Pending<V> {
    fn insert(&mut self, key: &str, value: V) {
        if self.map.insert(key.to_owned(), value).is_none() {
            self.order.push_back(key.to_owned());
        }
        while self.map.len() > MAX_PENDING {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.map.remove(&oldest);
                }
                None => break,
            }
        }
        // Keys removed by `take` leave stale entries in `order`; drop them in bulk.
        if self.order.len() > 2 * MAX_PENDING {
            let map = &self.map;
            self.order.retain(|k| map.contains_key(k));
        }
    }

    fn take(&mut self, key: &str) -> Option<V> {
        self.map.remove(key)
    }

    fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key)
    }
}

agentbus::event_union! {
    /// Every event type the collector records something from: what it subscribes to.
    pub enum RecordedEvent {
        /// `plugin.llm_request_started`.
        LlmRequestStarted(LLMRequestStartedEvent),
        /// `plugin.llm_response_completed`.
        LlmResponseCompleted(LLMResponseCompletedEvent),
        /// `plugin.llm_error`.
        LlmError(LLMErrorEvent),
        /// `plugin.llm.tool.end`.
        ToolEnd(ToolEndEvent),
        /// `plugin.stt_transcript`.
        SttTranscript(STTTranscriptEvent),
        /// `plugin.stt_error`.
        SttError(STTErrorEvent),
        /// `plugin.tts_synthesis_complete`.
        TtsSynthesisComplete(TTSSynthesisCompleteEvent),
        /// `plugin.tts_error`.
        TtsError(TTSErrorEvent),
        /// `plugin.turn_detection.turn_ended`.
        TurnEnded(TurnEndedEvent),
        /// `plugin.realtime_connected`.
        RealtimeConnected(RealtimeConnectedEvent),
        /// `plugin.realtime_disconnected`.
        RealtimeDisconnected(RealtimeDisconnectedEvent),
        /// `plugin.realtime_audio_input`.
        RealtimeAudioInput(RealtimeAudioInputEvent),
        /// `plugin.realtime_audio_output`.
        RealtimeAudioOutput(RealtimeAudioOutputEvent),
        /// `plugin.realtime_response`.
        RealtimeResponse(RealtimeResponseEvent),
        /// `plugin.realtime_user_speech_transcription`.
        RealtimeUserTranscription(RealtimeUserSpeechTranscriptionEvent),
        /// `plugin.realtime_agent_speech_transcription`.
        RealtimeAgentTranscription(RealtimeAgentSpeechTranscriptionEvent),
        /// `plugin.realtime_error`.
        RealtimeError(RealtimeErrorEvent),
        /// `plugin.vlm_inference_completed`.
        VlmInferenceCompleted(VLMInferenceCompletedEvent),
        /// `plugin.vlm_error`.
        VlmError(VLMErrorEvent),
        /// `plugin.video_processor.detection`.
        VideoDetection(VideoProcessorDetectionEvent),
        /// `react.react_start`.
        ReactStart(ReactStartEvent),
        /// `react.react_end`.
        ReactEnd(ReactEndEvent),
        /// `react.llm_call_start`.
        LlmCallStart(LLMCallStartEvent),
        /// `react.llm_call_end`.
        LlmCallEnd(LLMCallEndEvent),
        /// `react.llm_call_error`.
        LlmCallError(LLMCallErrorEvent),
        /// `react.tool_call_start`.
        ToolCallStart(ToolCallStartEvent),
        /// `react.tool_call_error`.
        ToolCallError(ToolCallErrorEvent),
        /// `react.tool_call_end`.
        ToolCallEnd(ToolCallEndEvent),
    }
}

/// Calls `$body` with the concrete event behind a [`RecordedEvent`] or a `&dyn DynEvent`.
macro_rules! each_source {
    ($mac:ident) => {
        $mac! {
            LlmRequestStarted(LLMRequestStartedEvent) => llm_request_started,
            LlmResponseCompleted(LLMResponseCompletedEvent) => llm_response_completed,
            LlmError(LLMErrorEvent) => llm_error,
            ToolEnd(ToolEndEvent) => tool_end,
            SttTranscript(STTTranscriptEvent) => stt_transcript,
            SttError(STTErrorEvent) => stt_error,
            TtsSynthesisComplete(TTSSynthesisCompleteEvent) => tts_complete,
            TtsError(TTSErrorEvent) => tts_error,
            TurnEnded(TurnEndedEvent) => turn_ended,
            RealtimeConnected(RealtimeConnectedEvent) => realtime_connected,
            RealtimeDisconnected(RealtimeDisconnectedEvent) => realtime_disconnected,
            RealtimeAudioInput(RealtimeAudioInputEvent) => realtime_audio_input,
            RealtimeAudioOutput(RealtimeAudioOutputEvent) => realtime_audio_output,
            RealtimeResponse(RealtimeResponseEvent) => realtime_response,
            RealtimeUserTranscription(RealtimeUserSpeechTranscriptionEvent) => realtime_user,
            RealtimeAgentTranscription(RealtimeAgentSpeechTranscriptionEvent) => realtime_agent,
            RealtimeError(RealtimeErrorEvent) => realtime_error,
            VlmInferenceCompleted(VLMInferenceCompletedEvent) => vlm_completed,
            VlmError(VLMErrorEvent) => vlm_error,
            VideoDetection(VideoProcessorDetectionEvent) => video_detection,
            ReactStart(ReactStartEvent) => react_start,
            ReactEnd(ReactEndEvent) => react_end,
            LlmCallStart(LLMCallStartEvent) => llm_call_start,
            LlmCallEnd(LLMCallEndEvent) => llm_call_end,
            LlmCallError(LLMCallErrorEvent) => llm_call_error,
            ToolCallStart(ToolCallStartEvent) => tool_call_start,
            ToolCallError(ToolCallErrorEvent) => tool_call_error,
            ToolCallEnd(ToolCallEndEvent) => tool_call_end,
        }
    };
}

impl Default for MetricsCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsCollector {
    /// A collector that keeps only the in-memory [`MetricsSummary`].
    pub fn new() -> Self {
        Self::build(None, None)
    }

    /// A collector that also records both instrument sets on `meter`.
    pub fn with_meter(meter: &Meter) -> Self {
        Self::build(Some(Instruments::new(meter)), None)
    }

    /// A collector recording on `meter` (when given) and emitting spans through `spans`
    /// (when given).
    pub fn with_parts(meter: Option<&Meter>, spans: Option<SpanRecorder>) -> Self {
        Self::build(meter.map(Instruments::new), spans)
    }

    /// A collector recording on a meter provider of its own, read by `reader` (render it
    /// with [`MetricsReader::render_prometheus`], or take [`MetricsReader::snapshot`]s).
    pub fn with_reader(reader: &MetricsReader) -> Self {
        let provider = SdkMeterProvider::builder()
            .with_reader(reader.clone())
            .build();
        let mut collector = Self::build(Some(Instruments::new(&provider.meter(SCOPE))), None);
        // Just built: this is the only reference.
        if let Some(inner) = Arc::get_mut(&mut collector.inner) {
            inner._provider = Some(provider);
        }
        collector
    }

    fn build(instruments: Option<Instruments>, spans: Option<SpanRecorder>) -> Self {
        Self {
            inner: Arc::new(Inner {
                instruments,
                state: Mutex::new(State {
                    spans,
                    ..State::default()
                }),
                _provider: None,
            }),
        }
    }

    /// Subscribes to `bus` (as `name`) for every [`RecordedEvent`] type, with the bus's
    /// default subscription options: a bounded queue with backpressure, so no measurement
    /// is silently lost. Recording costs about a microsecond per recorded event and
    /// events of other types are never routed to the collector, so it does not fall
    /// behind a producer in practice (`agentbus bench telemetry` measures it).
    pub fn attach(
        &self,
        bus: &EventManager,
        name: &str,
    ) -> Result<SubscriptionHandle, SubscribeError> {
        let collector = self.clone();
        bus.subscribe_with(
            name.to_owned(),
            SubscribeOptions::new(),
            move |event: RecordedEvent| {
                collector.record_recorded(&event);
                std::future::ready(())
            },
        )
    }

    /// Records one event; events of other types are ignored.
    pub fn record(&self, event: &dyn DynEvent) {
        macro_rules! dispatch {
            ($($variant:ident($ty:ty) => $method:ident,)*) => {
                $(
                    if let Some(e) = event.downcast_ref::<$ty>() {
                        return self.with_state(|s, i| s.$method(i, e));
                    }
                )*
            };
        }
        each_source!(dispatch);
    }

    /// Records one event delivered by a union subscription.
    pub fn record_recorded(&self, event: &RecordedEvent) {
        macro_rules! dispatch {
            ($($variant:ident($ty:ty) => $method:ident,)*) => {
                match event {
                    $( RecordedEvent::$variant(e) => self.with_state(|s, i| s.$method(i, e)), )*
                }
            };
        }
        each_source!(dispatch);
    }

    /// The summary of everything recorded so far.
    pub fn summary(&self) -> MetricsSummary {
        self.lock().summary.snapshot()
    }

    /// Number of distinct attribute sets built so far.
    pub fn attribute_sets(&self) -> usize {
        self.lock().attributes.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counts that are still valid numbers.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_state(&self, f: impl FnOnce(&mut State, Option<&Instruments>)) {
        let mut state = self.lock();
        state.summary.events += 1;
        f(&mut state, self.inner.instruments.as_ref());
    }
}

fn plugin(meta: &agentbus_events::PluginInfo) -> Option<&str> {
    meta.plugin_name.as_deref()
}

fn ms_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().map_or_else(
        || (to - from).num_milliseconds() as f64,
        |us| us as f64 / 1000.0,
    )
}

/// Time per output token after the first, in seconds, when everything it needs is known.
fn time_per_output_token(
    latency_ms: Option<f64>,
    ttft_ms: Option<f64>,
    output: Option<u64>,
) -> Option<f64> {
    let (latency, ttft, output) = (latency_ms?, ttft_ms?, output?);
    (output > 1 && latency >= ttft).then(|| (latency - ttft) / 1000.0 / (output - 1) as f64)
}

/// What one completed LLM call reported.
struct LlmCall<'a> {
    provider: Option<&'a str>,
    request_model: Option<&'a str>,
    response_model: Option<&'a str>,
    latency_ms: Option<f64>,
    ttft_ms: Option<f64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

/// What one failed LLM call reported.
struct LlmFailure<'a> {
    provider: Option<&'a str>,
    request_model: Option<&'a str>,
    error: Option<&'a ErrorInfo>,
    error_code: Option<&'a str>,
    duration_ms: Option<f64>,
}

impl State {
    fn record_llm_call(&mut self, i: Option<&Instruments>, call: LlmCall<'_>) {
        let s = &mut self.summary;
        s.llm_responses += 1;
        if let Some(v) = call.latency_ms {
            s.llm_latency.record(v);
        }
        if let Some(v) = call.ttft_ms {
            s.llm_ttft.record(v);
        }
        if let Some(v) = call.input_tokens {
            add_opt(&mut s.llm_input_tokens, v);
        }
        if let Some(v) = call.output_tokens {
            add_opt(&mut s.llm_output_tokens, v);
        }
        if let Some(model) = call.response_model {
            match s.llm_models.get_mut(model) {
                Some(n) => *n += 1,
                None => {
                    s.llm_models.insert(model.to_owned(), 1);
                }
            }
        }
        let Some(i) = i else { return };
        let key = [call.provider, call.request_model, call.response_model, None];
        let va = self.attributes.get(Set::LlmVa, key, || {
            Builder::new()
                .with_opt(attr::PROVIDER, call.provider)
                .with_opt(attr::MODEL, call.response_model)
                .build()
        });
        if let Some(v) = call.latency_ms {
            i.llm_latency.record(v, va);
        }
        if let Some(v) = call.ttft_ms {
            i.llm_ttft.record(v, va);
        }
        if let Some(v) = call.input_tokens {
            i.llm_tokens_input.add(v, va);
        }
        if let Some(v) = call.output_tokens {
            i.llm_tokens_output.add(v, va);
        }
        let chat = || {
            Builder::new()
                .with(attr::GEN_AI_OPERATION_NAME, "chat")
                .with_opt(attr::GEN_AI_PROVIDER_NAME, call.provider)
                .with_opt(attr::GEN_AI_REQUEST_MODEL, call.request_model)
                .with_opt(attr::GEN_AI_RESPONSE_MODEL, call.response_model)
        };
        let chat_attrs = self.attributes.get(Set::LlmChat, key, || chat().build());
        if let Some(v) = call.latency_ms {
            i.gen_ai_operation_duration.record(v / 1000.0, chat_attrs);
        }
        if let Some(v) = call.ttft_ms {
            i.gen_ai_ttft.record(v / 1000.0, chat_attrs);
        }
        if let Some(v) = time_per_output_token(call.latency_ms, call.ttft_ms, call.output_tokens) {
            i.gen_ai_tpot.record(v, chat_attrs);
        }
        if let Some(v) = call.input_tokens {
            let a = self.attributes.get(Set::LlmTokensInput, key, || {
                chat().with(attr::GEN_AI_TOKEN_TYPE, "input").build()
            });
            i.gen_ai_token_usage.record(v, a);
        }
        if let Some(v) = call.output_tokens {
            let a = self.attributes.get(Set::LlmTokensOutput, key, || {
                chat().with(attr::GEN_AI_TOKEN_TYPE, "output").build()
            });
            i.gen_ai_token_usage.record(v, a);
        }
    }

    fn record_llm_failure(&mut self, i: Option<&Instruments>, failure: LlmFailure<'_>) {
        self.summary.llm_errors += 1;
        let Some(i) = i else { return };
        let kind = failure.error.map(|e| e.kind.as_str());
        let code = failure
            .error_code
            .or(failure.error.and_then(|e| e.code.as_deref()));
        let key = [failure.provider, kind, code, failure.request_model];
        let va = self.attributes.get(Set::LlmErrorVa, key, || {
            Builder::new()
                .with_opt(attr::PROVIDER, failure.provider)
                .with_opt(attr::ERROR_TYPE, kind)
                .with_opt(attr::ERROR_CODE, code)
                .build()
        });
        i.llm_errors.add(1, va);
        if let Some(ms) = failure.duration_ms {
            let a = self.attributes.get(Set::LlmChatError, key, || {
                Builder::new()
                    .with(attr::GEN_AI_OPERATION_NAME, "chat")
                    .with_opt(attr::GEN_AI_PROVIDER_NAME, failure.provider)
                    .with_opt(attr::GEN_AI_REQUEST_MODEL, failure.request_model)
                    .with(attr::ERROR_TYPE_SEMCONV, kind.unwrap_or(ERROR_TYPE_OTHER))
                    .build()
            });
            i.gen_ai_operation_duration.record(ms / 1000.0, a);
        }
    }

    /// The `error_type`/`error_code` counter shared by STT, TTS, VLM and realtime errors.
    fn count_error(
        &mut self,
        set: Set,
        counter: &opentelemetry::metrics::Counter<u64>,
        provider: Option<&str>,
        error: Option<&ErrorInfo>,
        error_code: Option<&str>,
        extra: Option<(&'static str, &str)>,
    ) {
        let kind = error.map(|e| e.kind.as_str());
        let code = error_code.or(error.and_then(|e| e.code.as_deref()));
        let key = [provider, kind, code, extra.map(|(_, v)| v)];
        let a = self.attributes.get(set, key, || {
            let b = Builder::new()
                .with_opt(attr::PROVIDER, provider)
                .with_opt(attr::ERROR_TYPE, kind)
                .with_opt(attr::ERROR_CODE, code);
            match extra {
                Some((k, v)) => b.with(k, v),
                None => b,
            }
            .build()
        });
        counter.add(1, a);
    }

    fn simple<'s>(
        &'s mut self,
        set: Set,
        provider: Option<&str>,
        model: Option<&str>,
        extra: Option<(&'static str, &str)>,
    ) -> &'s [KeyValue] {
        let key = [provider, model, extra.map(|(_, v)| v), None];
        self.attributes.get(set, key, || {
            let b = Builder::new()
                .with_opt(attr::PROVIDER, provider)
                .with_opt(attr::MODEL, model);
            match extra {
                Some((k, v)) => b.with(k, v),
                None => b,
            }
            .build()
        })
    }

    // ---- Vision Agents LLM and tools ------------------------------------------------

    fn llm_request_started(&mut self, _: Option<&Instruments>, e: &LLMRequestStartedEvent) {
        if let Some(session) = &e.meta.session_id {
            self.instrumented_sessions.insert(session, ());
        }
        self.llm_requests
            .insert(&e.request_id, (e.meta.timestamp, e.model.clone()));
    }

    fn llm_response_completed(&mut self, i: Option<&Instruments>, e: &LLMResponseCompletedEvent) {
        self.record_llm_call(
            i,
            LlmCall {
                provider: plugin(&e.plugin),
                // The completed event names no request, so the requested model is unknown.
                request_model: None,
                response_model: e.model.as_deref(),
                latency_ms: e.latency_ms,
                ttft_ms: e.time_to_first_token_ms,
                input_tokens: e.input_tokens,
                output_tokens: e.output_tokens,
            },
        );
    }

    fn llm_error(&mut self, i: Option<&Instruments>, e: &LLMErrorEvent) {
        let started = e
            .request_id
            .as_deref()
            .and_then(|id| self.llm_requests.take(id));
        let (duration_ms, model) = match &started {
            Some((at, model)) => (Some(ms_between(*at, e.meta.timestamp)), model.as_deref()),
            None => (None, None),
        };
        self.record_llm_failure(
            i,
            LlmFailure {
                provider: plugin(&e.plugin),
                request_model: model,
                error: e.error.as_ref(),
                error_code: e.error_code.as_deref(),
                duration_ms,
            },
        );
    }

    fn tool_end(&mut self, i: Option<&Instruments>, e: &ToolEndEvent) {
        let s = &mut self.summary;
        s.tool_calls += 1;
        if !e.success {
            s.tool_failures += 1;
        }
        if let Some(v) = e.execution_time_ms {
            s.tool_latency.record(v);
        }
        let tool = match s.tools.get_mut(e.tool_name.as_str()) {
            Some(t) => t,
            None => s.tools.entry(e.tool_name.clone()).or_default(),
        };
        tool.calls += 1;
        if !e.success {
            tool.failures += 1;
        }
        if let Some(v) = e.execution_time_ms {
            tool.latency.record(v);
        }
        let error_kind = e
            .tool_call_id
            .as_deref()
            .and_then(|id| self.tool_errors.take(id));
        let Some(i) = i else { return };
        let provider = plugin(&e.plugin);
        let success = if e.success { "true" } else { "false" };
        let key = [provider, Some(e.tool_name.as_str()), Some(success), None];
        let va = self.attributes.get(Set::ToolVa, key, || {
            Builder::new()
                .with_opt(attr::PROVIDER, provider)
                .with(attr::TOOL_NAME, &e.tool_name)
                .with(attr::SUCCESS, success)
                .build()
        });
        i.llm_tool_calls.add(1, va);
        if let Some(v) = e.execution_time_ms {
            i.llm_tool_latency.record(v, va);
            let error_type =
                (!e.success).then(|| error_kind.as_deref().unwrap_or(ERROR_TYPE_OTHER));
            let key = [Some(e.tool_name.as_str()), error_type, None, None];
            let a = self.attributes.get(Set::ToolGenAi, key, || {
                Builder::new()
                    .with(attr::GEN_AI_OPERATION_NAME, "execute_tool")
                    .with(attr::GEN_AI_TOOL_NAME, &e.tool_name)
                    .with_opt(attr::ERROR_TYPE_SEMCONV, error_type)
                    .build()
            });
            i.gen_ai_execute_tool_duration.record(v / 1000.0, a);
        }
    }

    // ---- STT, TTS, turns ----------------------------------------------------------

    fn stt_transcript(&mut self, i: Option<&Instruments>, e: &STTTranscriptEvent) {
        let s = &mut self.summary;
        s.stt_transcripts += 1;
        if let Some(v) = e.processing_time_ms {
            s.stt_latency.record(v);
        }
        if let Some(v) = e.audio_duration_ms {
            add_opt(&mut s.stt_audio_ms, v);
        }
        let Some(i) = i else { return };
        let a = self.simple(
            Set::Stt,
            plugin(&e.plugin),
            e.model_name.as_deref(),
            e.language.as_deref().map(|l| (attr::LANGUAGE, l)),
        );
        if let Some(v) = e.processing_time_ms {
            i.stt_latency.record(v, a);
        }
        if let Some(v) = e.audio_duration_ms {
            i.stt_audio_duration.record(v, a);
        }
    }

    fn stt_error(&mut self, i: Option<&Instruments>, e: &STTErrorEvent) {
        self.summary.stt_errors += 1;
        if let Some(i) = i {
            self.count_error(
                Set::SttError,
                &i.stt_errors,
                plugin(&e.plugin),
                e.error.as_ref(),
                e.error_code.as_deref(),
                None,
            );
        }
    }

    fn tts_complete(&mut self, i: Option<&Instruments>, e: &TTSSynthesisCompleteEvent) {
        let characters = e.text.as_deref().map(|t| t.chars().count() as u64);
        let s = &mut self.summary;
        s.tts_syntheses += 1;
        s.tts_latency.record(e.synthesis_time_ms);
        if let Some(v) = e.audio_duration_ms {
            add_opt(&mut s.tts_audio_ms, v);
        }
        s.tts_characters += characters.unwrap_or(0);
        let Some(i) = i else { return };
        let a = self.simple(Set::Tts, plugin(&e.plugin), None, None);
        i.tts_latency.record(e.synthesis_time_ms, a);
        if let Some(v) = e.audio_duration_ms {
            i.tts_audio_duration.record(v, a);
        }
        if let Some(n) = characters.filter(|n| *n > 0) {
            i.tts_characters.add(n, a);
        }
    }

    fn tts_error(&mut self, i: Option<&Instruments>, e: &TTSErrorEvent) {
        self.summary.tts_errors += 1;
        if let Some(i) = i {
            self.count_error(
                Set::TtsError,
                &i.tts_errors,
                plugin(&e.plugin),
                e.error.as_ref(),
                e.error_code.as_deref(),
                None,
            );
        }
    }

    fn turn_ended(&mut self, i: Option<&Instruments>, e: &TurnEndedEvent) {
        let s = &mut self.summary;
        s.turns += 1;
        if let Some(v) = e.duration_ms {
            s.turn_duration.record(v);
        }
        if let Some(v) = e.trailing_silence_ms {
            s.turn_silence.record(v);
        }
        let Some(i) = i else { return };
        let a = self.simple(Set::Turn, plugin(&e.plugin), None, None);
        if let Some(v) = e.duration_ms {
            i.turn_duration.record(v, a);
        }
        if let Some(v) = e.trailing_silence_ms {
            i.turn_trailing_silence.record(v, a);
        }
    }

    // ---- Realtime -------------------------------------------------------------------

    fn realtime_connected(&mut self, i: Option<&Instruments>, e: &RealtimeConnectedEvent) {
        self.summary.rt_sessions += 1;
        if let Some(session) = &e.meta.session_id {
            self.realtime_sessions.insert(session, e.meta.timestamp);
        }
        if let Some(i) = i {
            let provider = plugin(&e.plugin).or(e.provider.as_deref());
            let a = self.simple(Set::Realtime, provider, None, None);
            i.realtime_sessions.add(1, a);
        }
    }

    fn realtime_disconnected(&mut self, i: Option<&Instruments>, e: &RealtimeDisconnectedEvent) {
        let started = e
            .meta
            .session_id
            .as_deref()
            .and_then(|s| self.realtime_sessions.take(s));
        let duration = started.map(|at| ms_between(at, e.meta.timestamp));
        if let Some(v) = duration {
            self.summary.rt_session_duration.record(v);
        }
        if let (Some(i), Some(v)) = (i, duration) {
            let provider = plugin(&e.plugin).or(e.provider.as_deref());
            let clean = if e.was_clean { "true" } else { "false" };
            let a = self.simple(
                Set::RealtimeDisconnect,
                provider,
                None,
                Some((attr::WAS_CLEAN, clean)),
            );
            i.realtime_session_duration.record(v, a);
        }
    }

    fn realtime_audio_input(&mut self, i: Option<&Instruments>, e: &RealtimeAudioInputEvent) {
        let Some(data) = &e.data else { return };
        let (bytes, ms) = (data.byte_len() as u64, data.duration_ms());
        self.summary.rt_in_bytes += bytes;
        self.summary.rt_in_ms += ms;
        if let Some(i) = i {
            let a = self.simple(Set::Realtime, plugin(&e.plugin), None, None);
            i.realtime_audio_input_bytes.add(bytes, a);
            if ms > 0.0 {
                i.realtime_audio_input_duration.add(ms, a);
            }
        }
    }

    fn realtime_audio_output(&mut self, i: Option<&Instruments>, e: &RealtimeAudioOutputEvent) {
        let Some(data) = &e.data else { return };
        let (bytes, ms) = (data.byte_len() as u64, data.duration_ms());
        self.summary.rt_out_bytes += bytes;
        self.summary.rt_out_ms += ms;
        if let Some(i) = i {
            let a = self.simple(Set::Realtime, plugin(&e.plugin), None, None);
            i.realtime_audio_output_bytes.add(bytes, a);
            if ms > 0.0 {
                i.realtime_audio_output_duration.add(ms, a);
            }
        }
    }

    fn realtime_response(&mut self, i: Option<&Instruments>, e: &RealtimeResponseEvent) {
        if !e.is_complete {
            return;
        }
        self.summary.rt_responses += 1;
        if let Some(i) = i {
            let a = self.simple(Set::Realtime, plugin(&e.plugin), None, None);
            i.realtime_responses.add(1, a);
        }
    }

    fn realtime_user(&mut self, i: Option<&Instruments>, e: &RealtimeUserSpeechTranscriptionEvent) {
        self.summary.rt_user += 1;
        if let Some(i) = i {
            let a = self.simple(Set::Realtime, plugin(&e.plugin), None, None);
            i.realtime_transcriptions_user.add(1, a);
        }
    }

    fn realtime_agent(
        &mut self,
        i: Option<&Instruments>,
        e: &RealtimeAgentSpeechTranscriptionEvent,
    ) {
        self.summary.rt_agent += 1;
        if let Some(i) = i {
            let a = self.simple(Set::Realtime, plugin(&e.plugin), None, None);
            i.realtime_transcriptions_agent.add(1, a);
        }
    }

    fn realtime_error(&mut self, i: Option<&Instruments>, e: &RealtimeErrorEvent) {
        self.summary.rt_errors += 1;
        if let Some(i) = i {
            let recoverable = if e.is_recoverable { "true" } else { "false" };
            self.count_error(
                Set::RealtimeError,
                &i.realtime_errors,
                plugin(&e.plugin),
                e.error.as_ref(),
                e.error_code.as_deref(),
                Some((attr::IS_RECOVERABLE, recoverable)),
            );
        }
    }

    // ---- Vision ---------------------------------------------------------------------

    fn vlm_completed(&mut self, i: Option<&Instruments>, e: &VLMInferenceCompletedEvent) {
        let s = &mut self.summary;
        s.vlm_inferences += 1;
        if let Some(v) = e.latency_ms {
            s.vlm_latency.record(v);
        }
        if let Some(v) = e.input_tokens {
            add_opt(&mut s.vlm_input_tokens, v);
        }
        if let Some(v) = e.output_tokens {
            add_opt(&mut s.vlm_output_tokens, v);
        }
        s.video_frames += e.frames_processed;
        s.video_detections += e.detections;
        let Some(i) = i else { return };
        let provider = plugin(&e.plugin);
        let model = e.model.as_deref();
        let a = self.simple(Set::Vlm, provider, model, None);
        i.vlm_inferences.add(1, a);
        if let Some(v) = e.latency_ms {
            i.vlm_latency.record(v, a);
        }
        if let Some(v) = e.input_tokens {
            i.vlm_tokens_input.add(v, a);
        }
        if let Some(v) = e.output_tokens {
            i.vlm_tokens_output.add(v, a);
        }
        if e.frames_processed > 0 {
            i.video_frames.add(e.frames_processed, a);
        }
        if e.detections > 0 {
            i.video_detections.add(e.detections, a);
        }
        // A VLM inference is a GenAI chat operation with image input.
        let key = [provider, model, None, None];
        let chat = || {
            Builder::new()
                .with(attr::GEN_AI_OPERATION_NAME, "chat")
                .with_opt(attr::GEN_AI_PROVIDER_NAME, provider)
                .with_opt(attr::GEN_AI_RESPONSE_MODEL, model)
        };
        if let Some(v) = e.latency_ms {
            let a = self.attributes.get(Set::VlmChat, key, || chat().build());
            i.gen_ai_operation_duration.record(v / 1000.0, a);
        }
        if let Some(v) = e.input_tokens {
            let a = self.attributes.get(Set::VlmTokensInput, key, || {
                chat().with(attr::GEN_AI_TOKEN_TYPE, "input").build()
            });
            i.gen_ai_token_usage.record(v, a);
        }
        if let Some(v) = e.output_tokens {
            let a = self.attributes.get(Set::VlmTokensOutput, key, || {
                chat().with(attr::GEN_AI_TOKEN_TYPE, "output").build()
            });
            i.gen_ai_token_usage.record(v, a);
        }
    }

    fn vlm_error(&mut self, i: Option<&Instruments>, e: &VLMErrorEvent) {
        self.summary.vlm_errors += 1;
        if let Some(i) = i {
            self.count_error(
                Set::VlmError,
                &i.vlm_errors,
                plugin(&e.plugin),
                e.error.as_ref(),
                e.error_code.as_deref(),
                None,
            );
        }
    }

    fn video_detection(&mut self, i: Option<&Instruments>, e: &VideoProcessorDetectionEvent) {
        let s = &mut self.summary;
        s.video_frames += 1;
        s.video_detections += e.detection_count;
        if let Some(v) = e.inference_time_ms {
            s.video_latency.record(v);
        }
        let Some(i) = i else { return };
        let a = self.simple(Set::Video, plugin(&e.plugin), e.model_id.as_deref(), None);
        i.video_frames.add(1, a);
        if e.detection_count > 0 {
            i.video_detections.add(e.detection_count, a);
        }
        if let Some(v) = e.inference_time_ms {
            i.video_latency.record(v, a);
        }
    }

    // ---- The ReAct loop -----------------------------------------------------------

    fn react_start(&mut self, _: Option<&Instruments>, e: &ReactStartEvent) {
        self.summary.runs_started += 1;
        if let Some(spans) = &mut self.spans {
            spans.agent_start(e);
        }
    }

    fn react_end(&mut self, _: Option<&Instruments>, e: &ReactEndEvent) {
        let s = &mut self.summary;
        s.runs_finished += 1;
        if e.aborted || e.error.is_some() {
            s.runs_failed += 1;
        }
        s.run_duration.record(e.execution_time_ms);
        if let Some(spans) = &mut self.spans {
            spans.agent_end(e);
        }
    }

    fn llm_call_start(&mut self, _: Option<&Instruments>, e: &LLMCallStartEvent) {
        self.llm_call_models
            .insert(&e.origin.agent_call_id, e.model.clone());
        if let Some(spans) = &mut self.spans {
            spans.chat_start(e);
        }
    }

    fn llm_call_end(&mut self, i: Option<&Instruments>, e: &LLMCallEndEvent) {
        let requested = self.llm_call_models.take(&e.origin.agent_call_id).flatten();
        let instrumented = self
            .instrumented_sessions
            .get(&e.origin.session_id)
            .is_some();
        if !instrumented {
            self.record_llm_call(
                i,
                LlmCall {
                    provider: None,
                    request_model: requested.as_deref(),
                    response_model: e.model.as_deref(),
                    latency_ms: Some(e.execution_time_ms),
                    ttft_ms: e.time_to_first_token_ms,
                    input_tokens: Some(e.usage.input_tokens),
                    output_tokens: Some(e.usage.output_tokens),
                },
            );
        }
        if let Some(spans) = &mut self.spans {
            spans.chat_end(e, requested.as_deref());
        }
    }

    fn llm_call_error(&mut self, i: Option<&Instruments>, e: &LLMCallErrorEvent) {
        let requested = self.llm_call_models.take(&e.origin.agent_call_id).flatten();
        let instrumented = self
            .instrumented_sessions
            .get(&e.origin.session_id)
            .is_some();
        if !instrumented {
            self.record_llm_failure(
                i,
                LlmFailure {
                    provider: None,
                    request_model: requested.as_deref(),
                    error: Some(&e.error),
                    error_code: None,
                    duration_ms: Some(e.execution_time_ms),
                },
            );
        }
        if let Some(spans) = &mut self.spans {
            spans.chat_error(e, requested.as_deref());
        }
    }

    fn tool_call_start(&mut self, _: Option<&Instruments>, e: &ToolCallStartEvent) {
        if let Some(spans) = &mut self.spans {
            spans.tool_start(e);
        }
    }

    fn tool_call_error(&mut self, _: Option<&Instruments>, e: &ToolCallErrorEvent) {
        self.tool_errors
            .insert(&e.tool_call_id, e.error.kind.clone());
    }

    fn tool_call_end(&mut self, _: Option<&Instruments>, e: &ToolCallEndEvent) {
        if let Some(spans) = &mut self.spans {
            let error_kind = self.tool_errors.get(&e.tool_call_id).map(String::as_str);
            spans.tool_end(e, error_kind);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpot_needs_every_input() {
        assert_eq!(
            time_per_output_token(Some(1100.0), Some(100.0), Some(11)),
            Some(0.1)
        );
        assert_eq!(time_per_output_token(None, Some(100.0), Some(11)), None);
        assert_eq!(time_per_output_token(Some(1100.0), None, Some(11)), None);
        assert_eq!(
            time_per_output_token(Some(1100.0), Some(100.0), Some(1)),
            None
        );
        assert_eq!(time_per_output_token(Some(1100.0), Some(100.0), None), None);
    }

    #[test]
    fn pending_forgets_the_oldest_beyond_its_bound() {
        let mut p = Pending::default();
        for n in 0..(MAX_PENDING + 5) {
            p.insert(&n.to_string(), n);
        }
        assert!(p.get("0").is_none());
        assert!(p.get("4").is_none());
        assert_eq!(p.get("5"), Some(&5));
        assert_eq!(
            p.take(&(MAX_PENDING + 4).to_string()),
            Some(MAX_PENDING + 4)
        );
    }
}
