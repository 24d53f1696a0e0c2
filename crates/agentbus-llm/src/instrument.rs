//! [`InstrumentedModel`]: wraps any [`ChatModel`] and publishes its calls on a bus.
//!
//! For each call, on the [`EventManager`], all with the same request id and session id:
//!
//! - `plugin.llm_request_started` ([`LLMRequestStartedEvent`]) when the call starts (the
//!   stream's first poll);
//! - every stream event in its bus form (`stream.text_delta`, ..., `stream.finish` /
//!   `stream.error`), see [`StreamEvent::to_bus_event`];
//! - `plugin.llm_response_chunk` ([`LLMResponseChunkEvent`]) per text delta, with a
//!   sequence number, `is_first_chunk`, and `time_to_first_token_ms` on the first;
//!
//! Time to first token is the time to the first output of any kind: text, reasoning, or
//! a tool call (its first argument fragment, or the whole call when the model sends no
//! fragments). A response that opens with a tool call or with reasoning has one, and the
//! first text chunk carries the call's TTFT, not the time to its first text.
//! - on `Finish`: `plugin.llm_response_completed` ([`LLMResponseCompletedEvent`]: text,
//!   latency, TTFT, tokens, model) and `plugin.llm_response_final`
//!   ([`LLMResponseFinalEvent`]);
//! - on `Error`: `plugin.llm_error` ([`LLMErrorEvent`]).
//!
//! The chunk, completed and final events have no `request_id` field in the Vision Agents
//! catalogue: their `item_id` (chunk, completed) carries it, and `user_metadata` carries
//! `{"request_id": ...}` on those three.
//!
//! Events are published with [`send(..).await`](EventManager::send) before the stream
//! yields the model event they describe: a `Block` subscriber that fell behind (a store)
//! slows the stream instead of losing events. Publishing never changes the stream: a bus
//! that refuses an event (shut down, an `Error` subscriber full) is logged and the model's
//! events still flow to the caller unchanged.

use std::time::Instant;

use agentbus::EventManager;
use agentbus_events::llm::{
    LLMErrorEvent, LLMRequestStartedEvent, LLMResponseChunkEvent, LLMResponseCompletedEvent,
    LLMResponseFinalEvent,
};
use agentbus_events::stream::StreamEvent;
use agentbus_events::{ErrorFields, EventMeta, Outgoing, PluginInfo};
use futures::StreamExt;

use crate::model::{ChatModel, ChatStream};
use crate::request::ChatRequest;

/// A [`ChatModel`] that publishes the calls of the model it wraps on a bus.
#[derive(Clone)]
pub struct InstrumentedModel<M> {
    inner: M,
    bus: EventManager,
    session_id: Option<String>,
    plugin: PluginInfo,
}

impl<M: ChatModel> InstrumentedModel<M> {
    /// Wraps `inner`, publishing on `bus`. The plugin name of the events is the model's
    /// provider name.
    pub fn new(inner: M, bus: EventManager) -> Self {
        let plugin = PluginInfo::named(inner.provider());
        Self {
            inner,
            bus,
            session_id: None,
            plugin,
        }
    }

    /// The same wrapper stamping `session_id` on every event (a request's own
    /// [`ChatRequest::session_id`] takes precedence).
    pub fn with_session(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// The wrapped model.
    pub fn inner(&self) -> &M {
        &self.inner
    }
}

/// Publishes on the bus, logging (never failing) when the bus refuses.
#[derive(Clone)]
struct Publisher {
    bus: EventManager,
    session_id: Option<String>,
    request_id: String,
    plugin: PluginInfo,
}

impl Publisher {
    fn meta(&self) -> EventMeta {
        EventMeta {
            session_id: self.session_id.clone(),
            ..EventMeta::new()
        }
    }

    /// Meta carrying the request id in `user_metadata`.
    fn meta_with_request(&self) -> EventMeta {
        EventMeta {
            user_metadata: Some(Box::new(serde_json::json!({"request_id": self.request_id}))),
            ..self.meta()
        }
    }

    /// Sends a typed or type-erased event, waiting for room in `Block` subscribers.
    async fn send(&self, event: impl Outgoing) {
        let event_type = event.event_type();
        match self.bus.send(event).await {
            Ok(sent) => {
                for refusal in sent.refused() {
                    tracing::debug!(event_type, %refusal, "a bus subscriber refused an LLM event");
                }
            }
            Err(error) => tracing::debug!(event_type, %error, "bus refused an LLM event"),
        }
    }
}

/// What the instrumented stream carries between two items.
struct Instrumenting {
    stream: ChatStream,
    publisher: Publisher,
    state: CallState,
    /// The `plugin.llm_request_started` event, until the first poll publishes it.
    started: Option<LLMRequestStartedEvent>,
}

struct CallState {
    started: Instant,
    chunks: u64,
    ttft_ms: Option<f64>,
    text: String,
    model: String,
}

impl<M: ChatModel> ChatModel for InstrumentedModel<M> {
    fn stream(&self, mut request: ChatRequest) -> ChatStream {
        let request_id = request
            .request_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        request.request_id = Some(request_id.clone());
        let session_id = request
            .session_id
            .clone()
            .or_else(|| self.session_id.clone());
        request.session_id = session_id.clone();
        let model = request
            .model
            .clone()
            .unwrap_or_else(|| self.inner.name().to_owned());
        let publisher = Publisher {
            bus: self.bus.clone(),
            session_id,
            request_id: request_id.clone(),
            plugin: self.plugin.clone(),
        };
        // The choice made for this call when tools are offered (as the event documents):
        // the request's own, else the providers' default, `auto`.
        let tool_choice = (!request.tools.is_empty())
            .then(|| request.tool_choice.clone().unwrap_or_default().to_string());
        let started = LLMRequestStartedEvent {
            meta: publisher.meta(),
            plugin: publisher.plugin.clone(),
            request_id,
            model: Some(model.clone()),
            streaming: true,
            tool_choice,
        };
        let state = CallState {
            started: Instant::now(),
            chunks: 0,
            ttft_ms: None,
            text: String::new(),
            model,
        };
        let instrumenting = Instrumenting {
            stream: self.inner.stream(request),
            publisher,
            state,
            started: Some(started),
        };
        futures::stream::unfold(instrumenting, |mut st| async move {
            if let Some(started) = st.started.take() {
                st.publisher.send(started).await;
            }
            let event = st.stream.next().await?;
            observe(&st.publisher, &mut st.state, &event).await;
            Some((event, st))
        })
        .boxed()
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn provider(&self) -> &str {
        self.inner.provider()
    }
}

fn elapsed_ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

async fn observe(publisher: &Publisher, state: &mut CallState, event: &StreamEvent) {
    publisher
        .send(event.to_bus_event(&publisher.request_id, publisher.meta()))
        .await;
    if event.is_output() && state.ttft_ms.is_none() {
        state.ttft_ms = Some(elapsed_ms(state.started));
    }
    match event {
        StreamEvent::TextDelta(delta) => {
            let first = state.chunks == 0;
            state.text.push_str(&delta.content);
            publisher
                .send(LLMResponseChunkEvent {
                    meta: publisher.meta_with_request(),
                    plugin: publisher.plugin.clone(),
                    content_index: None,
                    delta: Some(delta.content.clone()),
                    item_id: Some(publisher.request_id.clone()),
                    output_index: None,
                    sequence_number: Some(state.chunks),
                    is_first_chunk: first,
                    time_to_first_token_ms: if first { state.ttft_ms } else { None },
                })
                .await;
            state.chunks += 1;
        }
        StreamEvent::Finish(finish) => {
            let model = if finish.model.is_empty() {
                state.model.clone()
            } else {
                finish.model.clone()
            };
            publisher
                .send(LLMResponseCompletedEvent {
                    meta: publisher.meta_with_request(),
                    plugin: publisher.plugin.clone(),
                    original: None,
                    text: state.text.clone(),
                    item_id: Some(publisher.request_id.clone()),
                    latency_ms: Some(elapsed_ms(state.started)),
                    time_to_first_token_ms: state.ttft_ms,
                    input_tokens: Some(finish.input_tokens),
                    output_tokens: Some(finish.output_tokens),
                    total_tokens: Some(finish.input_tokens.saturating_add(finish.output_tokens)),
                    model: Some(model.clone()),
                })
                .await;
            publisher
                .send(LLMResponseFinalEvent {
                    meta: publisher.meta_with_request(),
                    plugin: publisher.plugin.clone(),
                    text: std::mem::take(&mut state.text),
                    model: Some(model),
                })
                .await;
        }
        StreamEvent::Error(error) => {
            publisher
                .send(LLMErrorEvent {
                    meta: publisher.meta(),
                    plugin: publisher.plugin.clone(),
                    failure: ErrorFields {
                        error: Some(error.to_error_info()),
                        error_code: error
                            .code
                            .clone()
                            .or_else(|| error.status.map(|s| s.to_string()))
                            .or_else(|| Some(error.kind.as_str().to_owned())),
                        context: Some(format!(
                            "streaming {} from {} ({} text chunks received)",
                            state.model,
                            publisher
                                .plugin
                                .plugin_name
                                .as_deref()
                                .unwrap_or("provider"),
                            state.chunks
                        )),
                    },
                    request_id: Some(publisher.request_id.clone()),
                    is_recoverable: error.recoverable,
                })
                .await;
        }
        _ => {}
    }
}
