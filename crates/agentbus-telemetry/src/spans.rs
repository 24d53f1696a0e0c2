//! Spans from the ReAct loop's events: one `invoke_agent` span per agent run, one
//! `chat {model}` span per LLM call and one `execute_tool {tool}` span per tool call,
//! following the OpenTelemetry GenAI span conventions.
//!
//! Spans carry the events' ids: a span's id is the low 64 bits of its start event's
//! `event_id`, a root run's trace id is its `react.react_start` event's `event_id` (all 128
//! bits), and the attributes `agentbus.start_event_id` / `agentbus.end_event_id` name both
//! events. Start and end times are the events' timestamps. So a replay of a stored session
//! produces the same spans as the live run.
//!
//! Parenting: LLM and tool calls are children of their agent call's `invoke_agent` span; a
//! sub-agent's run is a child of the parent's `execute_tool` span it runs as (its origin's
//! `tool_call_id`), else of the parent's `invoke_agent` span.

use std::cell::Cell;
use std::collections::HashMap;
use std::time::SystemTime;

use agentbus_events::EventMeta;
use agentbus_events::react::{
    LLMCallEndEvent, LLMCallErrorEvent, LLMCallStartEvent, ReactEndEvent, ReactStartEvent,
    ToolCallEndEvent, ToolCallStartEvent,
};
use chrono::{DateTime, Utc};
use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanContext, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _,
};
use opentelemetry::{Context, KeyValue, trace::SpanId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracer};

use crate::consts::MAX_PENDING;

thread_local! {
    /// The ids the next span built on this thread takes (set by [`SpanRecorder`] just
    /// before it builds a span).
    static NEXT_IDS: Cell<(Option<TraceId>, Option<SpanId>)> = const { Cell::new((None, None)) };
}

/// An [`IdGenerator`] that gives spans the ids derived from their events. Install it on
/// the tracer provider whose tracer the [`SpanRecorder`] uses; spans built by anything
/// else get random ids.
#[derive(Clone, Debug, Default)]
pub struct EventIdGenerator {
    random: RandomIdGenerator,
}

impl IdGenerator for EventIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        NEXT_IDS.with(|ids| {
            let (trace, span) = ids.get();
            ids.set((None, span));
            trace.unwrap_or_else(|| self.random.new_trace_id())
        })
    }

    fn new_span_id(&self) -> SpanId {
        NEXT_IDS.with(|ids| {
            let (trace, span) = ids.get();
            ids.set((trace, None));
            span.unwrap_or_else(|| self.random.new_span_id())
        })
    }
}

/// The span id carried by an event: the low 64 bits of its `event_id`.
pub fn span_id_of(meta: &EventMeta) -> SpanId {
    let bytes = meta.event_id.as_bytes();
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[8..]);
    SpanId::from_bytes(low)
}

/// The trace id of a root run: its start event's `event_id`.
pub fn trace_id_of(meta: &EventMeta) -> TraceId {
    TraceId::from_bytes(*meta.event_id.as_bytes())
}

fn system_time(at: DateTime<Utc>) -> SystemTime {
    at.into()
}

#[derive(Clone)]
struct Open {
    trace_id: TraceId,
    span_id: SpanId,
    parent: Option<SpanId>,
    start: DateTime<Utc>,
    start_event: String,
    name: String,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
}

/// Turns ReAct events into spans on an SDK tracer (see the module docs).
pub struct SpanRecorder {
    tracer: SdkTracer,
    /// `agent_call_id` → its open `invoke_agent` span.
    agents: HashMap<String, Open>,
    /// `agent_call_id` → its open `chat` span.
    chats: HashMap<String, Open>,
    /// `tool_call_id` → its open `execute_tool` span.
    tools: HashMap<String, Open>,
}

impl std::fmt::Debug for SpanRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanRecorder")
            .field("open_agents", &self.agents.len())
            .field("open_chats", &self.chats.len())
            .field("open_tools", &self.tools.len())
            .finish()
    }
}

fn bounded_insert(map: &mut HashMap<String, Open>, key: &str, open: Open) {
    // A producer that never ends what it starts cannot grow this without bound: past the
    // limit the oldest-started span is dropped unexported.
    if map.len() >= MAX_PENDING
        && let Some(oldest) = map
            .iter()
            .min_by_key(|(_, o)| o.start)
            .map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
    map.insert(key.to_owned(), open);
}

impl SpanRecorder {
    /// Records spans on `tracer`, whose provider should use [`EventIdGenerator`].
    pub fn new(tracer: SdkTracer) -> Self {
        Self {
            tracer,
            agents: HashMap::new(),
            chats: HashMap::new(),
            tools: HashMap::new(),
        }
    }

    fn parent_of_agent(&self, e: &ReactStartEvent) -> Option<(TraceId, SpanId)> {
        let origin = &e.origin;
        if let Some(tool) = origin
            .tool_call_id
            .as_deref()
            .and_then(|id| self.tools.get(id))
        {
            return Some((tool.trace_id, tool.span_id));
        }
        let parent = origin.parent_agent_call_id.as_deref()?;
        self.agents.get(parent).map(|a| (a.trace_id, a.span_id))
    }

    /// `react.react_start`: opens an `invoke_agent` span.
    pub fn agent_start(&mut self, e: &ReactStartEvent) {
        let parent = self.parent_of_agent(e);
        let trace_id = parent.map_or_else(|| trace_id_of(&e.meta), |(t, _)| t);
        let mut attributes = vec![
            KeyValue::new("gen_ai.operation.name", "invoke_agent"),
            KeyValue::new("agentbus.agent_call_id", e.origin.agent_call_id.clone()),
        ];
        if !e.origin.session_id.is_empty() {
            attributes.push(KeyValue::new(
                "gen_ai.conversation.id",
                e.origin.session_id.clone(),
            ));
        }
        if let Some(model) = &e.model {
            attributes.push(KeyValue::new("gen_ai.request.model", model.clone()));
        }
        if let Some(fork) = &e.origin.fork_id {
            attributes.push(KeyValue::new("agentbus.fork_id", fork.clone()));
        }
        let open = Open {
            trace_id,
            span_id: span_id_of(&e.meta),
            parent: parent.map(|(_, s)| s),
            start: e.meta.timestamp,
            start_event: e.meta.event_id.to_string(),
            name: "invoke_agent".to_owned(),
            kind: SpanKind::Internal,
            attributes,
        };
        bounded_insert(&mut self.agents, &e.origin.agent_call_id, open);
    }

    /// `react.react_end`: closes the run's `invoke_agent` span.
    pub fn agent_end(&mut self, e: &ReactEndEvent) {
        let Some(mut open) = self.agents.remove(&e.origin.agent_call_id) else {
            return;
        };
        open.attributes.extend([
            KeyValue::new("gen_ai.usage.input_tokens", e.usage.input_tokens as i64),
            KeyValue::new("gen_ai.usage.output_tokens", e.usage.output_tokens as i64),
            KeyValue::new("agentbus.iterations", i64::from(e.iterations)),
        ]);
        let status = match (&e.error, e.aborted) {
            (Some(error), _) => Some(error.kind.clone()),
            (None, true) => Some(
                e.abort_reason
                    .as_ref()
                    .map_or_else(|| "aborted".to_owned(), |r| format!("{r:?}")),
            ),
            (None, false) => None,
        };
        self.finish(open, &e.meta, status);
    }

    /// `react.llm_call_start`: opens a `chat {model}` span.
    pub fn chat_start(&mut self, e: &LLMCallStartEvent) {
        let Some(agent) = self.agents.get(&e.origin.agent_call_id) else {
            return;
        };
        let name = match &e.model {
            Some(model) => format!("chat {model}"),
            None => "chat".to_owned(),
        };
        let mut attributes = vec![KeyValue::new("gen_ai.operation.name", "chat")];
        if let Some(model) = &e.model {
            attributes.push(KeyValue::new("gen_ai.request.model", model.clone()));
        }
        let open = Open {
            trace_id: agent.trace_id,
            span_id: span_id_of(&e.meta),
            parent: Some(agent.span_id),
            start: e.meta.timestamp,
            start_event: e.meta.event_id.to_string(),
            name,
            kind: SpanKind::Client,
            attributes,
        };
        bounded_insert(&mut self.chats, &e.origin.agent_call_id, open);
    }

    /// `react.llm_call_end`: closes the call's `chat` span with usage and response model.
    pub fn chat_end(&mut self, e: &LLMCallEndEvent, _requested: Option<&str>) {
        let Some(mut open) = self.chats.remove(&e.origin.agent_call_id) else {
            return;
        };
        if let Some(model) = &e.model {
            open.attributes
                .push(KeyValue::new("gen_ai.response.model", model.clone()));
        }
        open.attributes.extend([
            KeyValue::new("gen_ai.usage.input_tokens", e.usage.input_tokens as i64),
            KeyValue::new("gen_ai.usage.output_tokens", e.usage.output_tokens as i64),
            KeyValue::new(
                "gen_ai.response.finish_reasons",
                opentelemetry::Value::Array(opentelemetry::Array::String(vec![
                    opentelemetry::StringValue::from(e.finish_reason.clone()),
                ])),
            ),
        ]);
        self.finish(open, &e.meta, None);
    }

    /// `react.llm_call_error`: closes the call's `chat` span as failed.
    pub fn chat_error(&mut self, e: &LLMCallErrorEvent, _requested: Option<&str>) {
        let Some(open) = self.chats.remove(&e.origin.agent_call_id) else {
            return;
        };
        self.finish(open, &e.meta, Some(e.error.kind.clone()));
    }

    /// `react.tool_call_start`: opens an `execute_tool {tool}` span.
    pub fn tool_start(&mut self, e: &ToolCallStartEvent) {
        let Some(agent) = self.agents.get(&e.origin.agent_call_id) else {
            return;
        };
        let open = Open {
            trace_id: agent.trace_id,
            span_id: span_id_of(&e.meta),
            parent: Some(agent.span_id),
            start: e.meta.timestamp,
            start_event: e.meta.event_id.to_string(),
            name: format!("execute_tool {}", e.tool_name),
            kind: SpanKind::Internal,
            attributes: vec![
                KeyValue::new("gen_ai.operation.name", "execute_tool"),
                KeyValue::new("gen_ai.tool.name", e.tool_name.clone()),
                KeyValue::new("gen_ai.tool.call.id", e.tool_call_id.clone()),
            ],
        };
        bounded_insert(&mut self.tools, &e.tool_call_id, open);
    }

    /// `react.tool_call_end`: closes the call's `execute_tool` span.
    pub fn tool_end(&mut self, e: &ToolCallEndEvent, error_kind: Option<&str>) {
        let Some(open) = self.tools.remove(&e.tool_call_id) else {
            return;
        };
        let error = (!e.success).then(|| {
            e.error
                .as_ref()
                .map(|err| err.kind.clone())
                .or_else(|| error_kind.map(str::to_owned))
                .unwrap_or_else(|| crate::consts::ERROR_TYPE_OTHER.to_owned())
        });
        self.finish(open, &e.meta, error);
    }

    fn finish(&mut self, mut open: Open, end: &EventMeta, error: Option<String>) {
        open.attributes.extend([
            KeyValue::new("agentbus.start_event_id", open.start_event.clone()),
            KeyValue::new("agentbus.end_event_id", end.event_id.to_string()),
        ]);
        if let Some(kind) = &error {
            open.attributes
                .push(KeyValue::new("error.type", kind.clone()));
        }
        let parent_cx = match open.parent {
            Some(parent) => Context::new().with_remote_span_context(SpanContext::new(
                open.trace_id,
                parent,
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            )),
            None => Context::new(),
        };
        let builder = SpanBuilder::from_name(open.name)
            .with_kind(open.kind.clone())
            .with_start_time(system_time(open.start))
            .with_attributes(open.attributes);
        NEXT_IDS.with(|ids| ids.set((Some(open.trace_id), Some(open.span_id))));
        let mut span = self.tracer.build_with_context(builder, &parent_cx);
        NEXT_IDS.with(|ids| ids.set((None, None)));
        if let Some(kind) = error {
            span.set_status(Status::error(kind));
        }
        span.end_with_timestamp(system_time(end.timestamp));
    }
}
