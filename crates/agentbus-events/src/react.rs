//! The ReAct agent loop's event stream.
//!
//! An agent run yields [`ReactOutput`]s: either the final [`ResponseYield`] or an
//! [`EventYield`] carrying one of the 14 loop events or a [`CustomEvent`], together with
//! the [`EventOrigin`] that says which agent call (main agent or a fork) produced it.
//!
//! Every event type here also carries its `origin` as a field, so that the wire format
//! (what the bus, the store and the browser see) keeps fork routing too. The wire `type`
//! strings are `react.<name>`, `<name>` being the snake_case event name (`react_start`,
//! `llm_chunk_arrive`, ...).
//!
//! These types carry data only: an [`LLMChunkArriveEvent`] carries the delta and the
//! accumulated *length*, not the accumulated text; messages are JSON values.
//!
//! Provenance: these types are SimpleLLMFunc's ReAct event stream (seed 003), made strict.
//! They keep its names and its `type` strings (the snake_case class names, namespaced
//! here), and keep data where its fields hold live objects or whole copies (the raw
//! provider response, a copy of all text per chunk). agentbus adds [`EventOrigin`]'s
//! `epoch`, and [`ReactEndEvent`]'s totals and abort reason beside SimpleLLMFunc's
//! `final_messages` and `response`. [`CustomEvent`] is what SimpleLLMFunc's
//! `ToolEventEmitter` emits; the SelfRef and memory-key fields of [`EventOrigin`] are
//! SimpleLLMFunc's.

#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[cfg(feature = "schema")]
use crate::Example;
use crate::{ErrorInfo, Event, EventMeta, define_event};

/// Which agent call produced an event: how events of a main agent and of its forks
/// (sub-agents) are told apart and routed.
///
/// `epoch` is the barge-in counter: it increments every time the agent is interrupted,
/// and every event of one response carries the same epoch, so a consumer can drop stale
/// output (as the `epoch` fields of TTS and realtime audio events intend).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct EventOrigin {
    /// The session (conversation) the agent call belongs to.
    pub session_id: String,
    /// The id of this agent call (one run of the loop).
    pub agent_call_id: String,
    /// Position of the event in the delivery order of this agent call: 0, 1, 2, ...
    /// without gaps.
    pub event_seq: u64,
    /// The agent call that started this one, when this is a fork (sub-agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_agent_call_id: Option<String>,
    /// The fork's id, when this is a fork.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fork_id: Option<String>,
    /// How deep the fork is: 0 for the main agent, 1 for its sub-agent, ...
    #[serde(default)]
    pub fork_depth: u32,
    /// The order of this fork among the forks its parent started, when this is a fork.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fork_seq: Option<u64>,
    /// The SelfRef instance id, when the agent is a SelfRef fork.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selfref_instance_id: Option<String>,
    /// The memory key the fork's memory was copied from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_memory_key: Option<String>,
    /// The memory key of the agent's own memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_key: Option<String>,
    /// The tool the fork runs as, in its parent (for a fork), or the tool that emitted
    /// the event (for a [`CustomEvent`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// The tool call id matching `tool_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// The barge-in epoch: the number of interruptions of this agent before the response
    /// this event belongs to.
    #[serde(default)]
    pub epoch: u64,
}

impl EventOrigin {
    /// Whether the event comes from a fork (sub-agent) rather than the main agent.
    pub fn is_fork(&self) -> bool {
        self.fork_depth > 0
    }
}

#[cfg(feature = "schema")]
impl Example for EventOrigin {
    fn example() -> Self {
        Self {
            session_id: "session-1".into(),
            agent_call_id: "call-2".into(),
            event_seq: 7,
            parent_agent_call_id: Some("call-1".into()),
            fork_id: Some("fork-1".into()),
            fork_depth: 1,
            fork_seq: Some(0),
            selfref_instance_id: Some("selfref-1".into()),
            source_memory_key: Some("memory-main".into()),
            memory_key: Some("memory-fork-1".into()),
            tool_name: Some("researcher".into()),
            tool_call_id: Some("tc-1".into()),
            epoch: 2,
        }
    }

    fn minimal() -> Self {
        Self {
            session_id: "session-1".into(),
            agent_call_id: "call-1".into(),
            ..Self::default()
        }
    }
}

/// Token counts of one LLM call, or summed over several.
///
/// `cached_tokens` and `cache_creation_tokens` are parts of `input_tokens` (providers
/// count them inside the prompt already): shown for visibility, never added to a total.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct TokenUsage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens (reasoning included).
    pub output_tokens: u64,
    /// Prompt tokens served from the provider's cache.
    #[serde(default)]
    pub cached_tokens: u64,
    /// Prompt tokens written to the provider's cache.
    #[serde(default)]
    pub cache_creation_tokens: u64,
    /// Completion tokens spent on reasoning, when the provider reports them.
    #[serde(default)]
    pub reasoning_tokens: u64,
}

impl TokenUsage {
    /// Input plus output tokens.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &TokenUsage) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cached_tokens = self.cached_tokens.saturating_add(other.cached_tokens);
        self.cache_creation_tokens = self
            .cache_creation_tokens
            .saturating_add(other.cache_creation_tokens);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(other.reasoning_tokens);
    }
}

#[cfg(feature = "schema")]
impl Example for TokenUsage {
    fn example() -> Self {
        Self {
            input_tokens: 120,
            output_tokens: 40,
            cached_tokens: 100,
            cache_creation_tokens: 20,
            reasoning_tokens: 10,
        }
    }
}

/// One tool call the model asked for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct ToolCallInfo {
    /// The provider's id of the call (what the tool result answers).
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments, parsed. `null` when the model's text was not valid JSON (the text
    /// is then in `arguments_raw`).
    pub arguments: serde_json::Value,
    /// The arguments exactly as the model wrote them, kept only when they are not valid
    /// JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments_raw: Option<String>,
}

#[cfg(feature = "schema")]
impl Example for ToolCallInfo {
    fn example() -> Self {
        Self {
            id: "tc-1".into(),
            name: "calculator".into(),
            arguments: serde_json::json!({"expression": "17 * 23"}),
            arguments_raw: Some("{\"expression\": \"17 * 23\"".into()),
        }
    }

    fn minimal() -> Self {
        Self {
            arguments_raw: None,
            ..Self::example()
        }
    }
}

/// The outcome of one tool call in a batch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct ToolCallResult {
    /// The tool call id.
    pub tool_call_id: String,
    /// The tool's name.
    pub tool_name: String,
    /// Whether the tool succeeded, from its real result.
    pub success: bool,
    /// What the tool returned (`null` when it failed).
    pub result: serde_json::Value,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// How long the tool ran, in milliseconds.
    pub execution_time_ms: f64,
}

#[cfg(feature = "schema")]
impl Example for ToolCallResult {
    fn example() -> Self {
        Self {
            tool_call_id: "tc-1".into(),
            tool_name: "calculator".into(),
            success: false,
            result: serde_json::Value::Null,
            error: Some(ErrorInfo::new("timeout", "tool ran longer than 30s")),
            execution_time_ms: 30_000.0,
        }
    }

    fn minimal() -> Self {
        Self {
            tool_call_id: "tc-1".into(),
            tool_name: "calculator".into(),
            success: true,
            result: serde_json::json!("391"),
            error: None,
            execution_time_ms: 0.25,
        }
    }
}

/// Which stream a chunk of model output belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChunkChannel {
    /// Answer text.
    #[default]
    Text,
    /// Reasoning (thinking) text.
    Reasoning,
}

#[cfg(feature = "schema")]
impl Example for ChunkChannel {
    fn example() -> Self {
        ChunkChannel::Reasoning
    }
    fn minimal() -> Self {
        ChunkChannel::Text
    }
}

/// Why a run stopped without a final answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AbortReason {
    /// The caller's cancellation token was cancelled.
    #[default]
    Cancelled,
    /// The agent was interrupted (barge-in); it stays usable for the next message.
    Interrupted,
    /// `max_iterations` iterations ran and the model still asked for tools.
    MaxIterations,
    /// The LLM call failed (see the run's [`LLMCallErrorEvent`]).
    LlmError,
}

impl AbortReason {
    /// The reason as written on the wire (`cancelled`, `max_iterations`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AbortReason::Cancelled => "cancelled",
            AbortReason::Interrupted => "interrupted",
            AbortReason::MaxIterations => "max_iterations",
            AbortReason::LlmError => "llm_error",
        }
    }
}

impl std::fmt::Display for AbortReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "schema")]
impl Example for AbortReason {
    fn example() -> Self {
        AbortReason::MaxIterations
    }
}

define_event! {
    /// The ReAct loop of one agent call begins.
    #[event(type = "react.react_start", domain = React, base = event)]
    pub struct ReactStartEvent {
        /// Which agent call this is.
        pub origin: EventOrigin,
        /// The user's message that started the run.
        pub user_message: String,
        /// The names of the tools the agent may call.
        pub tools: Vec<String>,
        /// The iteration limit of the run.
        pub max_iterations: u32,
        /// The model, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub model: Option<String>,
    }
}

define_event! {
    /// An iteration of the loop starts (emitted for every iteration, the first included).
    #[event(type = "react.react_iteration_start", domain = React, base = event)]
    pub struct ReactIterationStartEvent {
        /// Which agent call this is.
        pub origin: EventOrigin,
        /// The iteration, counted from 1.
        pub iteration: u32,
    }
}

define_event! {
    /// An iteration ends: its LLM call and, if it asked for any, its tool batch are done.
    #[event(type = "react.react_iteration_end", domain = React, base = event)]
    pub struct ReactIterationEndEvent {
        /// Which agent call this is.
        pub origin: EventOrigin,
        /// The iteration, counted from 1.
        pub iteration: u32,
        /// How many tool calls the iteration ran.
        pub tool_calls: u32,
        /// Whether the iteration produced the final answer (no tool calls).
        pub final_answer: bool,
    }
}

define_event! {
    /// The loop of one agent call ends; nothing of this agent call follows it.
    ///
    /// Carries the final answer and messages, the run's totals and, when the run stopped
    /// without an answer, why.
    #[event(type = "react.react_end", domain = React, base = event)]
    pub struct ReactEndEvent {
        /// Which agent call this is.
        pub origin: EventOrigin,
        /// The final answer (the last text the model produced when the run was aborted).
        pub response: String,
        /// The conversation history at the end of the run, as JSON messages.
        pub final_messages: Vec<serde_json::Value>,
        /// How many iterations ran.
        pub iterations: u32,
        /// How many tool calls ran, over all iterations.
        pub total_tool_calls: u32,
        /// How many LLM calls were made.
        pub total_llm_calls: u32,
        /// Token usage summed over every LLM call of the run.
        pub usage: TokenUsage,
        /// Cost summed over the LLM calls whose cost is known; absent when none is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cost_usd: Option<f64>,
        /// Whether the run stopped without a final answer.
        pub aborted: bool,
        /// Why it stopped, when `aborted`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub abort_reason: Option<AbortReason>,
        /// The error behind the abort, when there was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<ErrorInfo>,
        /// Wall-clock time of the whole run, in milliseconds.
        pub execution_time_ms: f64,
    }
}

define_event! {
    /// An LLM call is about to be made.
    #[event(type = "react.llm_call_start", domain = React, base = event)]
    pub struct LLMCallStartEvent {
        /// Which agent call this is.
        pub origin: EventOrigin,
        /// The iteration the call belongs to.
        pub iteration: u32,
        /// The messages the LLM sees, as JSON.
        pub messages: Vec<serde_json::Value>,
        /// The names of the tools offered to it.
        pub tools: Vec<String>,
        /// The model, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub model: Option<String>,
    }
}

define_event! {
    /// A chunk of streamed model output arrived.
    ///
    /// Carries the delta and the accumulated length, not a copy of all text so far, which
    /// would make a stream of n chunks cost O(n²).
    #[event(type = "react.llm_chunk_arrive", domain = React, base = event)]
    pub struct LLMChunkArriveEvent {
        /// Which agent call this is.
        pub origin: EventOrigin,
        /// The iteration the call belongs to.
        pub iteration: u32,
        /// The new text.
        pub delta: String,
        /// Length in bytes (UTF-8) of the text of this channel so far, this delta included.
        pub accumulated_length: u64,
        /// Whether the text is answer text or reasoning.
        #[serde(default)]
        pub channel: ChunkChannel,
        /// Position of the chunk in this LLM call: 0, 1, 2, ...
        pub chunk_index: u64,
    }
}

define_event! {
    /// A fragment of a tool call's arguments arrived while the model streams.
    #[event(type = "react.tool_call_arguments_delta", domain = React, base = event)]
    pub struct ToolCallArgumentsDeltaEvent {
        /// Which agent call this is.
        pub origin: EventOrigin,
        /// The iteration the call belongs to.
        pub iteration: u32,
        /// The tool call's position in the model's response (parallel calls differ).
        pub index: u32,
        /// The tool call id, once the provider has sent it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tool_call_id: Option<String>,
        /// The tool name, once the provider has sent it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tool_name: Option<String>,
        /// The new fragment of the arguments' JSON text.
        pub delta: String,
        /// Length in bytes of this call's arguments text so far, this delta included.
        pub accumulated_length: u64,
    }
}

define_event! {
    /// An LLM call completed.
    #[event(type = "react.llm_call_end", domain = React, base = event)]
    pub struct LLMCallEndEvent {
        /// Which agent call this is.
        pub origin: EventOrigin,
        /// The iteration the call belongs to.
        pub iteration: u32,
        /// The answer text.
        pub content: String,
        /// The reasoning text, when the model produced any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reasoning: Option<String>,
        /// The tool calls the model asked for.
        pub tool_calls: Vec<ToolCallInfo>,
        /// Why the model stopped (`stop`, `tool_calls`, `length`, ...).
        pub finish_reason: String,
        /// Token usage of this call.
        pub usage: TokenUsage,
        /// Cost of this call in USD, when the model's price is known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cost_usd: Option<f64>,
        /// The model that answered, when reported.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub model: Option<String>,
        /// Time to the first streamed output, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub time_to_first_token_ms: Option<f64>,
        /// Duration of the call, in milliseconds.
        pub execution_time_ms: f64,
    }
}

define_event! {
    /// An LLM call failed (the provider stream ended in an error, or was cancelled).
    #[event(type = "react.llm_call_error", domain = React, base = event)]
    pub struct LLMCallErrorEvent {
        /// Which agent call this is.
        pub origin: EventOrigin,
        /// The iteration the call belongs to.
        pub iteration: u32,
        /// What went wrong.
        pub error: ErrorInfo,
        /// Whether retrying the call could succeed.
        pub recoverable: bool,
        /// How long the call ran before failing, in milliseconds.
        pub execution_time_ms: f64,
    }
}

define_event! {
    /// The tool calls of one model response start running, as one batch.
    #[event(type = "react.tool_calls_batch_start", domain = React, base = event)]
    pub struct ToolCallsBatchStartEvent {
        /// Which agent call this is.
        pub origin: EventOrigin,
        /// The iteration the batch belongs to.
        pub iteration: u32,
        /// The calls in the batch.
        pub tool_calls: Vec<ToolCallInfo>,
    }
}

define_event! {
    /// One tool call starts.
    #[event(type = "react.tool_call_start", domain = React, base = event)]
    pub struct ToolCallStartEvent {
        /// Which agent call this is.
        pub origin: EventOrigin,
        /// The iteration the call belongs to.
        pub iteration: u32,
        /// The tool's name.
        pub tool_name: String,
        /// The tool call id.
        pub tool_call_id: String,
        /// The arguments, parsed (`null` when they were not valid JSON).
        pub arguments: serde_json::Value,
    }
}

define_event! {
    /// One tool call finished, successfully or not; `success` is the real outcome.
    #[event(type = "react.tool_call_end", domain = React, base = event)]
    pub struct ToolCallEndEvent {
        /// Which agent call this is.
        pub origin: EventOrigin,
        /// The iteration the call belongs to.
        pub iteration: u32,
        /// The tool's name.
        pub tool_name: String,
        /// The tool call id.
        pub tool_call_id: String,
        /// The arguments, parsed.
        pub arguments: serde_json::Value,
        /// What the tool returned (`null` when it failed).
        pub result: serde_json::Value,
        /// Whether the tool succeeded.
        pub success: bool,
        /// Why it failed, when it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<ErrorInfo>,
        /// How long the tool ran, in milliseconds.
        pub execution_time_ms: f64,
    }
}

define_event! {
    /// One tool call failed: unknown tool, invalid arguments, an error, a panic or a
    /// timeout. Emitted before that call's [`ToolCallEndEvent`] (which has
    /// `success: false`); the model is told the error.
    #[event(type = "react.tool_call_error", domain = React, base = event)]
    pub struct ToolCallErrorEvent {
        /// Which agent call this is.
        pub origin: EventOrigin,
        /// The iteration the call belongs to.
        pub iteration: u32,
        /// The tool's name.
        pub tool_name: String,
        /// The tool call id.
        pub tool_call_id: String,
        /// The arguments, parsed (`null` when they were not valid JSON).
        pub arguments: serde_json::Value,
        /// What went wrong.
        pub error: ErrorInfo,
        /// How long the tool ran before failing, in milliseconds.
        pub execution_time_ms: f64,
    }
}

define_event! {
    /// Every tool call of a batch is done.
    #[event(type = "react.tool_calls_batch_end", domain = React, base = event)]
    pub struct ToolCallsBatchEndEvent {
        /// Which agent call this is.
        pub origin: EventOrigin,
        /// The iteration the batch belongs to.
        pub iteration: u32,
        /// Each call's outcome, in the order the model asked for them.
        pub results: Vec<ToolCallResult>,
        /// How many calls succeeded.
        pub success_count: u32,
        /// How many failed.
        pub error_count: u32,
        /// Wall-clock time of the whole batch (calls run in parallel), in milliseconds.
        pub execution_time_ms: f64,
    }
}

define_event! {
    /// Data a tool emitted while it runs: streamed tool output, progress, anything the
    /// tool wants the UI to see.
    #[event(type = "react.custom_event", domain = React, base = event)]
    pub struct CustomEvent {
        /// Which agent call this is (with the emitting tool's name and call id).
        pub origin: EventOrigin,
        /// The name the tool gave the event.
        pub event_name: String,
        /// The payload.
        pub data: serde_json::Value,
        /// The call of the tool that emitted it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tool_call_id: Option<String>,
        /// The tool that emitted it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tool_name: Option<String>,
    }
}

/// Declares [`ReactEvent`] over the event types, with its accessors.
macro_rules! react_event_enum {
    ($($variant:ident($ty:ident)),* $(,)?) => {
        /// One event of the agent loop: any of the 14 ReAct events or a [`CustomEvent`].
        #[derive(Clone, Debug, PartialEq)]
        pub enum ReactEvent {
            $(
                #[doc = concat!("A [`", stringify!($ty), "`].")]
                $variant($ty),
            )*
        }

        impl ReactEvent {
            /// The origin the event carries.
            pub fn origin(&self) -> &EventOrigin {
                match self {
                    $(ReactEvent::$variant(e) => &e.origin,)*
                }
            }

            /// The origin, mutably.
            pub fn origin_mut(&mut self) -> &mut EventOrigin {
                match self {
                    $(ReactEvent::$variant(e) => &mut e.origin,)*
                }
            }

            /// The base fields.
            pub fn meta(&self) -> &EventMeta {
                match self {
                    $(ReactEvent::$variant(e) => &e.meta,)*
                }
            }

            /// The base fields, mutably.
            pub fn meta_mut(&mut self) -> &mut EventMeta {
                match self {
                    $(ReactEvent::$variant(e) => &mut e.meta,)*
                }
            }

            /// The wire `type` string.
            pub fn event_type(&self) -> &'static str {
                self.kind().event_type()
            }

            /// Which of the 15 kinds the event is.
            pub fn kind(&self) -> ReactEventKind {
                match self {
                    $(ReactEvent::$variant(_) => ReactEventKind::$variant,)*
                }
            }

            /// The event as a boxed type-erased event (for the bus and sinks).
            pub fn into_dyn(self) -> Box<dyn crate::DynEvent> {
                match self {
                    $(ReactEvent::$variant(e) => Box::new(e),)*
                }
            }

            /// A copy of the event, shared as the concrete event it holds, in one
            /// allocation: what a bus can send without copying it again (see the
            /// [`Outgoing`](crate::Outgoing) impl of `Arc<dyn DynEvent>`).
            pub fn to_shared(&self) -> std::sync::Arc<dyn crate::DynEvent> {
                match self {
                    $(ReactEvent::$variant(e) => std::sync::Arc::new(e.clone()),)*
                }
            }

            /// The event's wire-format JSON, appended to `out`.
            pub fn write_wire(&self, out: &mut Vec<u8>) -> Result<(), crate::EncodeError> {
                match self {
                    $(ReactEvent::$variant(e) => crate::wire::write(e, out),)*
                }
            }
        }

        $(
            impl From<$ty> for ReactEvent {
                fn from(event: $ty) -> Self {
                    ReactEvent::$variant(event)
                }
            }
        )*

        /// The kind of a [`ReactEvent`], without its data: what `filter_events` selects by.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ReactEventKind {
            $(
                #[doc = concat!("[`", stringify!($ty), "`].")]
                $variant,
            )*
        }

        impl ReactEventKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ReactEventKind] = &[$(ReactEventKind::$variant),*];

            /// The wire `type` string of this kind.
            pub fn event_type(self) -> &'static str {
                match self {
                    $(ReactEventKind::$variant => <$ty as Event>::TYPE,)*
                }
            }

            /// The Rust type name (`ReactStartEvent`, ...).
            pub fn name(self) -> &'static str {
                match self {
                    $(ReactEventKind::$variant => <$ty as Event>::NAME,)*
                }
            }
        }

        /// Every ReAct event type (the 14 loop events and [`CustomEvent`]), for the catalogue.
        pub fn event_infos() -> Vec<crate::EventInfo> {
            vec![$(crate::EventInfo::of::<$ty>()),*]
        }
    };
}

react_event_enum! {
    ReactStart(ReactStartEvent),
    ReactIterationStart(ReactIterationStartEvent),
    ReactIterationEnd(ReactIterationEndEvent),
    ReactEnd(ReactEndEvent),
    LlmCallStart(LLMCallStartEvent),
    LlmChunkArrive(LLMChunkArriveEvent),
    LlmCallEnd(LLMCallEndEvent),
    LlmCallError(LLMCallErrorEvent),
    ToolCallsBatchStart(ToolCallsBatchStartEvent),
    ToolCallStart(ToolCallStartEvent),
    ToolCallArgumentsDelta(ToolCallArgumentsDeltaEvent),
    ToolCallEnd(ToolCallEndEvent),
    ToolCallError(ToolCallErrorEvent),
    ToolCallsBatchEnd(ToolCallsBatchEndEvent),
    Custom(CustomEvent),
}

/// The final output of an agent call: the answer and the updated history, so the
/// conversation can continue.
///
/// `M` is the message type of the history: the LLM crate's message in the agent, JSON
/// values by default.
#[derive(Clone, Debug, PartialEq)]
pub struct ResponseYield<M = serde_json::Value> {
    /// The answer text.
    pub response: String,
    /// The whole conversation history after the run.
    pub messages: Vec<M>,
}

/// One event of an agent call; [`origin`](Self::origin) says where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct EventYield {
    /// The event.
    pub event: ReactEvent,
}

impl EventYield {
    /// Which agent call produced the event (the origin the event carries).
    pub fn origin(&self) -> &EventOrigin {
        self.event.origin()
    }
}

/// What an agent call yields: events while it works, then (unless aborted) its response.
// The event variant is the common one (every item but one per run): boxing it would add
// an allocation per event to spare the rare response a few hundred bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum ReactOutput<M = serde_json::Value> {
    /// The final answer and history.
    Response(ResponseYield<M>),
    /// An event of the loop.
    Event(EventYield),
}

impl<M> ReactOutput<M> {
    /// The event, if this is one.
    pub fn as_event(&self) -> Option<&EventYield> {
        match self {
            ReactOutput::Event(e) => Some(e),
            ReactOutput::Response(_) => None,
        }
    }

    /// The response, if this is one.
    pub fn as_response(&self) -> Option<&ResponseYield<M>> {
        match self {
            ReactOutput::Response(r) => Some(r),
            ReactOutput::Event(_) => None,
        }
    }

    /// Whether this is the response.
    pub fn is_response(&self) -> bool {
        matches!(self, ReactOutput::Response(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_types_line_up() {
        assert_eq!(ReactEventKind::ALL.len(), 15);
        let infos = event_infos();
        assert_eq!(infos.len(), 15);
        for (kind, info) in ReactEventKind::ALL.iter().zip(&infos) {
            assert_eq!(kind.event_type(), info.event_type);
            assert_eq!(kind.name(), info.name);
            assert!(info.event_type.starts_with("react."));
        }
    }

    #[test]
    fn chunk_event_round_trips_with_origin() {
        let event = LLMChunkArriveEvent::example();
        let text = crate::wire::to_string(&event).unwrap();
        assert!(text.contains("\"type\":\"react.llm_chunk_arrive\""));
        assert!(text.contains("\"agent_call_id\":\"call-2\""));
        let back: LLMChunkArriveEvent = crate::wire::decode_as(text.as_bytes()).unwrap();
        assert_eq!(back, event);
        let react = ReactEvent::from(back);
        assert_eq!(react.origin().event_seq, 7);
        assert_eq!(react.kind(), ReactEventKind::LlmChunkArrive);
    }

    #[test]
    fn usage_sums() {
        let mut total = TokenUsage::default();
        total.add(&TokenUsage::example());
        total.add(&TokenUsage::example());
        assert_eq!(total.input_tokens, 240);
        assert_eq!(total.total_tokens(), 320);
    }
}
