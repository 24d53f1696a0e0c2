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
//! - The voice pipeline's measurements Vision Agents has no field for, from the
//!   `user_metadata` of its TTS events: time to first byte (`plugin.tts_synthesis_complete`)
//!   and voice-to-voice latency (the first `plugin.tts_audio` of a reply).
//! - The ReAct loop's events: `react.llm_call_end` / `react.llm_call_error` are LLM calls
//!   (the agent loop does not emit Vision Agents' LLM events, so these are its only LLM
//!   record); `react.react_start` / `react.react_end` are agent runs. Tool calls are
//!   recorded from Vision Agents' `plugin.llm.tool.end`, which the agent loop publishes
//!   beside `react.tool_call_end` for every call: recording both would count each call
//!   twice. The provider stream's `stream.*` events are not recorded for the same reason
//!   (the loop's `llm_call_end` already sums them).

use std::cell::OnceCell;
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
use agentbus_events::tts::{TTSAudioEvent, TTSErrorEvent, TTSSynthesisCompleteEvent};
use agentbus_events::turn::TurnEndedEvent;
use agentbus_events::video::VideoProcessorDetectionEvent;
use agentbus_events::vlm::{VLMErrorEvent, VLMInferenceCompletedEvent};
use agentbus_events::{DynEvent, ErrorInfo};
use chrono::{DateTime, Utc};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{BoundCounter, BoundHistogram, Meter, MeterProvider as _};
use opentelemetry_sdk::metrics::SdkMeterProvider;

use crate::attributes::{AttributeCache, Builder, Set, SetCache};
use crate::consts::SCOPE;
use crate::instruments::{Instruments, attr};
use crate::reader::MetricsReader;
use crate::spans::SpanRecorder;
use crate::summary::{MetricsSummary, SummaryState, add_opt};

pub use crate::consts::{ERROR_TYPE_OTHER, MAX_PENDING};

mod llm;
mod realtime;
mod speech;
mod vision;

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
    /// The LLM-call instruments bound per provider and model.
    llm_calls: SetCache<llm::LlmCallInstruments>,
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
        /// `plugin.tts_audio` (only the first chunk of a reply carries a measurement).
        TtsAudio(TTSAudioEvent),
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
            TtsAudio(TTSAudioEvent) => tts_audio,
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
        if event
            .downcast_ref::<TTSAudioEvent>()
            .is_some_and(speech::measures_nothing)
        {
            return;
        }
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
        if let RecordedEvent::TtsAudio(audio) = event
            && speech::measures_nothing(audio)
        {
            return;
        }
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

impl State {
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
