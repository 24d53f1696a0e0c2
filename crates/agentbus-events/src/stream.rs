//! The provider contract: the stream of events every LLM provider yields.
//!
//! Every LLM provider (OpenAI-compatible Chat Completions, OpenAI Responses, Anthropic
//! Messages, a local model, the scripted test double) turns what it receives into a stream
//! of [`StreamEvent`]s. The contract:
//!
//! - Text arrives as [`TextDelta`]s (each with the accumulated `snapshot`), followed by one
//!   [`TextEnd`] when any text was produced.
//! - Reasoning (thinking) arrives as one [`StreamEvent::ReasoningStart`] per reasoning block
//!   followed by [`ReasoningDelta`]s.
//! - Tool calls stream their arguments as [`ToolCallDelta`]s (keyed by `index`; `id` and
//!   `name` ride on the first fragment that carries them) and are then delivered whole as
//!   one [`ToolCall`] each, with the arguments parsed as JSON (or kept raw in
//!   `arguments_raw` when they are not valid JSON, e.g. cut off by a token limit).
//! - **Every stream ends with exactly one [`Finish`] or exactly one [`StreamError`]**, and
//!   nothing follows it. A stream cut short is a recoverable [`StreamError`], never a quiet
//!   success.
//!
//! [`StreamEvent`] is the light in-process form (no ids, no timestamps): what a
//! `ChatModel` stream yields, one per token. On the bus each variant becomes a catalogue
//! event with a namespaced `type` (`stream.text_delta`, ..., `stream.error`) carrying the
//! base fields and the `request_id` of the LLM call: see [`StreamEvent::to_bus_event`].
//!
//! Provenance: [`StreamEvent`] is Hive's `StreamEvent` discriminated union (seed 004),
//! made strict, with the seed's short `type` literals. Not in Hive:
//! [`StreamEvent::ToolCallDelta`], [`ReasoningDelta::signature`], [`Finish::refusal`] and
//! [`Finish::incomplete_reason`]. Hive carries a stream error as a string, where
//! [`StreamErrorEvent`] carries an [`ErrorInfo`](crate::ErrorInfo).

#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[cfg(feature = "schema")]
use crate::Example;
pub use crate::text_snapshot::TextSnapshot;
use crate::{DynEvent, EventMeta, define_event};

// ---------------------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------------------

/// A chunk of assistant text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct TextDelta {
    /// This chunk's text.
    pub content: String,
    /// All text of the response so far, this chunk included (shared, not copied: see
    /// [`TextSnapshot`]).
    pub snapshot: TextSnapshot,
}

/// Text generation is complete: the whole text of the response.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct TextEnd {
    /// The full text (equal to the last [`TextDelta::snapshot`]).
    pub full_text: String,
}

/// The model requests one tool call, complete.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct ToolCall {
    /// The provider's id of the call (OpenAI `call_...`, Anthropic `toolu_...`, the
    /// Responses API `call_id`); tool results refer to it.
    pub tool_use_id: String,
    /// The tool's name.
    pub tool_name: String,
    /// The arguments, parsed from the streamed JSON string. An empty string gives `{}`;
    /// arguments that are not valid JSON give `null` and are kept in `arguments_raw`.
    pub tool_input: serde_json::Value,
    /// The streamed argument string, present only when it was not valid JSON (e.g. cut off
    /// by a token limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments_raw: Option<String>,
}

/// A fragment of a tool call as it streams: its arguments arrive piece by piece.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct ToolCallDelta {
    /// Which call of the response this fragment belongs to: the provider's index
    /// (OpenAI `tool_calls[].index`, Anthropic content-block index, Responses
    /// `output_index`). Fragments of parallel calls may interleave.
    pub index: u32,
    /// The call's id, on the first fragment that carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The tool's name, on the first fragment that carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// This fragment of the JSON argument string (may be empty).
    pub arguments_delta: String,
}

/// The result of executing a tool call (produced by the agent loop, not by providers).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct ToolResult {
    /// The [`ToolCall::tool_use_id`] this answers.
    pub tool_use_id: String,
    /// The tool's output, as text.
    pub content: String,
    /// Whether the tool failed.
    pub is_error: bool,
}

/// A chunk of reasoning (thinking) text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct ReasoningDelta {
    /// This chunk's reasoning text.
    pub content: String,
    /// The provider's signature of the reasoning block, when this fragment carries it
    /// (Anthropic `signature_delta`, with empty `content`); it must be sent back with the
    /// block in a later turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// The model finished: why, what it cost, which model answered.
///
/// `cached_tokens` and `cache_creation_tokens` are reported as the provider counts them:
/// OpenAI's `input_tokens` include cached tokens, Anthropic's do not include cache reads.
/// Never add them to a total blindly.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct Finish {
    /// Why generation stopped, as the provider names it (`stop`, `length`, `tool_calls`,
    /// `end_turn`, `max_tokens`, `tool_use`, `completed`, `incomplete`, ...).
    pub stop_reason: String,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens (reasoning included where the provider counts it there).
    pub output_tokens: u64,
    /// Prompt tokens served from the provider's cache, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// Prompt tokens written to the provider's cache, when reported (Anthropic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_tokens: Option<u64>,
    /// Output tokens spent on reasoning, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// Cost of the call in USD, from the pricing table; absent (not 0) when the model's
    /// price is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// The model that answered, as the stream names it.
    pub model: String,
    /// The refusal text, when the model refused (OpenAI `delta.refusal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Why the response is incomplete (Responses API `incomplete_details.reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_reason: Option<String>,
}

/// What kind of failure ended a stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum StreamErrorKind {
    /// HTTP 429 or a provider rate-limit error.
    RateLimit,
    /// The provider is overloaded (HTTP 529/503, Anthropic `overloaded_error`).
    Overloaded,
    /// Authentication or permission failure (HTTP 401/403).
    Auth,
    /// The request was rejected (HTTP 400/404/422...).
    BadRequest,
    /// The provider failed (HTTP 5xx, `api_error`).
    Server,
    /// The connection failed or was cut before the end of the stream.
    Network,
    /// The provider sent something that breaks its protocol (invalid JSON, unknown
    /// framing).
    #[default]
    Protocol,
    /// A connect, first-byte or idle timeout expired.
    Timeout,
}

impl StreamErrorKind {
    /// The kind as its wire string (`rate_limit`, `overloaded`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            StreamErrorKind::RateLimit => "rate_limit",
            StreamErrorKind::Overloaded => "overloaded",
            StreamErrorKind::Auth => "auth",
            StreamErrorKind::BadRequest => "bad_request",
            StreamErrorKind::Server => "server",
            StreamErrorKind::Network => "network",
            StreamErrorKind::Protocol => "protocol",
            StreamErrorKind::Timeout => "timeout",
        }
    }

    /// Whether retrying the same request may succeed (rate limit, overload, server,
    /// network, timeout).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            StreamErrorKind::RateLimit
                | StreamErrorKind::Overloaded
                | StreamErrorKind::Server
                | StreamErrorKind::Network
                | StreamErrorKind::Timeout
        )
    }
}

impl std::fmt::Display for StreamErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "schema")]
impl Example for StreamErrorKind {
    fn example() -> Self {
        StreamErrorKind::RateLimit
    }
}

/// The stream failed. Terminal: nothing follows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct StreamError {
    /// What kind of failure.
    pub kind: StreamErrorKind,
    /// Human-readable description (never contains credentials).
    pub message: String,
    /// The provider's own error code or type, when it sent one (`rate_limit_error`,
    /// `context_length_exceeded`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Whether the caller may retry (the request may succeed later). A stream cut short
    /// after output was streamed is recoverable but was not retried silently.
    pub recoverable: bool,
    /// The upstream HTTP status, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl StreamError {
    /// An error of `kind` with `message`; `recoverable` defaults to the kind's
    /// [`StreamErrorKind::is_retryable`].
    pub fn new(kind: StreamErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            code: None,
            recoverable: kind.is_retryable(),
            status: None,
        }
    }

    /// The same error with the upstream HTTP `status`.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The same error with the provider's error `code`.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// The same error with `recoverable` set.
    pub fn with_recoverable(mut self, recoverable: bool) -> Self {
        self.recoverable = recoverable;
        self
    }

    /// The error as the catalogue's generic [`crate::ErrorInfo`].
    pub fn to_error_info(&self) -> crate::ErrorInfo {
        crate::ErrorInfo {
            message: self.message.clone(),
            kind: self.kind.as_str().to_owned(),
            code: self.code.clone(),
        }
    }
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status})")?;
        }
        Ok(())
    }
}

impl std::error::Error for StreamError {}

// ---------------------------------------------------------------------------------------
// The in-process union
// ---------------------------------------------------------------------------------------

/// One event of a provider stream.
///
/// Serialised with the variant's short literal as `type` (`{"type":"text_delta",...}`).
/// See the [module documentation](self) for the ordering contract.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// A chunk of text (`text_delta`).
    TextDelta(TextDelta),
    /// Text is complete (`text_end`).
    TextEnd(TextEnd),
    /// A complete tool call (`tool_call`).
    ToolCall(ToolCall),
    /// A fragment of a tool call's arguments (`tool_call_delta`).
    ToolCallDelta(ToolCallDelta),
    /// The result of a tool call (`tool_result`).
    ToolResult(ToolResult),
    /// A reasoning block starts (`reasoning_start`).
    ReasoningStart,
    /// A chunk of reasoning (`reasoning_delta`).
    ReasoningDelta(ReasoningDelta),
    /// Terminal: the model finished (`finish`).
    Finish(Finish),
    /// Terminal: the stream failed (`error`).
    #[serde(rename = "error")]
    Error(StreamError),
}

impl StreamEvent {
    /// A text delta.
    pub fn text_delta(content: impl Into<String>, snapshot: impl Into<TextSnapshot>) -> Self {
        StreamEvent::TextDelta(TextDelta {
            content: content.into(),
            snapshot: snapshot.into(),
        })
    }

    /// A reasoning delta.
    pub fn reasoning_delta(content: impl Into<String>) -> Self {
        StreamEvent::ReasoningDelta(ReasoningDelta {
            content: content.into(),
            signature: None,
        })
    }

    /// The variant's short `type` literal (`text_delta`, ..., `error`).
    pub fn kind(&self) -> &'static str {
        match self {
            StreamEvent::TextDelta(_) => "text_delta",
            StreamEvent::TextEnd(_) => "text_end",
            StreamEvent::ToolCall(_) => "tool_call",
            StreamEvent::ToolCallDelta(_) => "tool_call_delta",
            StreamEvent::ToolResult(_) => "tool_result",
            StreamEvent::ReasoningStart => "reasoning_start",
            StreamEvent::ReasoningDelta(_) => "reasoning_delta",
            StreamEvent::Finish(_) => "finish",
            StreamEvent::Error(_) => "error",
        }
    }

    /// Whether this event is model output, what time to first token waits for: a
    /// non-empty text or reasoning delta, a tool-call argument fragment, or a whole tool
    /// call (a provider may send one without fragments).
    ///
    /// ```
    /// use agentbus_events::stream::{StreamEvent, ToolCall};
    ///
    /// assert!(StreamEvent::text_delta("Hi", "Hi").is_output());
    /// assert!(!StreamEvent::text_delta("", "").is_output());
    /// assert!(StreamEvent::ToolCall(ToolCall::default()).is_output());
    /// assert!(!StreamEvent::ReasoningStart.is_output());
    /// ```
    pub fn is_output(&self) -> bool {
        match self {
            StreamEvent::TextDelta(d) => !d.content.is_empty(),
            StreamEvent::ReasoningDelta(d) => !d.content.is_empty(),
            StreamEvent::ToolCallDelta(_) | StreamEvent::ToolCall(_) => true,
            StreamEvent::TextEnd(_)
            | StreamEvent::ToolResult(_)
            | StreamEvent::ReasoningStart
            | StreamEvent::Finish(_)
            | StreamEvent::Error(_) => false,
        }
    }

    /// Whether this event ends the stream ([`Finish`] or [`StreamError`]).
    pub fn is_terminal(&self) -> bool {
        matches!(self, StreamEvent::Finish(_) | StreamEvent::Error(_))
    }

    /// The bus event for this stream event, carrying `request_id` and the base fields
    /// `meta` (set its `session_id` to tie it to a session).
    pub fn to_bus_event(&self, request_id: &str, meta: EventMeta) -> Box<dyn DynEvent> {
        let request_id = request_id.to_owned();
        match self.clone() {
            StreamEvent::TextDelta(d) => Box::new(StreamTextDeltaEvent {
                meta,
                request_id,
                snapshot_len: d.snapshot.len() as u64,
                content: d.content,
            }),
            StreamEvent::TextEnd(d) => Box::new(StreamTextEndEvent {
                meta,
                request_id,
                full_text: d.full_text,
            }),
            StreamEvent::ToolCall(d) => Box::new(StreamToolCallEvent {
                meta,
                request_id,
                tool_use_id: d.tool_use_id,
                tool_name: d.tool_name,
                tool_input: d.tool_input,
                arguments_raw: d.arguments_raw,
            }),
            StreamEvent::ToolCallDelta(d) => Box::new(StreamToolCallDeltaEvent {
                meta,
                request_id,
                index: d.index,
                id: d.id,
                name: d.name,
                arguments_delta: d.arguments_delta,
            }),
            StreamEvent::ToolResult(d) => Box::new(StreamToolResultEvent {
                meta,
                request_id,
                tool_use_id: d.tool_use_id,
                content: d.content,
                is_error: d.is_error,
            }),
            StreamEvent::ReasoningStart => Box::new(StreamReasoningStartEvent { meta, request_id }),
            StreamEvent::ReasoningDelta(d) => Box::new(StreamReasoningDeltaEvent {
                meta,
                request_id,
                content: d.content,
                signature: d.signature,
            }),
            StreamEvent::Finish(d) => Box::new(StreamFinishEvent {
                meta,
                request_id,
                stop_reason: d.stop_reason,
                input_tokens: d.input_tokens,
                output_tokens: d.output_tokens,
                cached_tokens: d.cached_tokens,
                cache_creation_tokens: d.cache_creation_tokens,
                reasoning_tokens: d.reasoning_tokens,
                cost_usd: d.cost_usd,
                model: d.model,
                refusal: d.refusal,
                incomplete_reason: d.incomplete_reason,
            }),
            StreamEvent::Error(d) => Box::new(StreamErrorEvent {
                meta,
                request_id,
                error: d.to_error_info(),
                error_kind: d.kind,
                recoverable: d.recoverable,
                status: d.status,
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Bus events
// ---------------------------------------------------------------------------------------

define_event! {
    /// A chunk of assistant text from a provider stream ([`TextDelta`]).
    ///
    /// Unlike the in-process [`TextDelta`], the bus event does not repeat the whole text
    /// so far: a sink writing every delta of an n-chunk answer would store O(n²) bytes.
    /// It carries the snapshot's length instead; the text is the concatenation of the
    /// request's `content`s (and `stream.text_end` carries it whole).
    #[event(type = "stream.text_delta", domain = Stream, base = event)]
    pub struct StreamTextDeltaEvent {
        /// The LLM call this chunk belongs to.
        pub request_id: String,
        /// This chunk's text.
        pub content: String,
        /// Length in bytes of all text so far, this chunk included.
        #[serde(default)]
        pub snapshot_len: u64,
    }
}

define_event! {
    /// Text generation of a provider stream is complete ([`TextEnd`]).
    #[event(type = "stream.text_end", domain = Stream, base = event)]
    pub struct StreamTextEndEvent {
        /// The LLM call.
        pub request_id: String,
        /// The full text.
        pub full_text: String,
    }
}

define_event! {
    /// A complete tool call requested by the model ([`ToolCall`]).
    #[event(type = "stream.tool_call", domain = Stream, base = event)]
    pub struct StreamToolCallEvent {
        /// The LLM call.
        pub request_id: String,
        /// The provider's id of the tool call.
        pub tool_use_id: String,
        /// The tool's name.
        pub tool_name: String,
        /// The parsed arguments (`null` when they were not valid JSON).
        pub tool_input: serde_json::Value,
        /// The raw argument string, when it was not valid JSON.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub arguments_raw: Option<String>,
    }
}

define_event! {
    /// A fragment of a streaming tool call's arguments ([`ToolCallDelta`]).
    #[event(type = "stream.tool_call_delta", domain = Stream, base = event)]
    pub struct StreamToolCallDeltaEvent {
        /// The LLM call.
        pub request_id: String,
        /// Which call of the response (provider index).
        pub index: u32,
        /// The call's id, on the first fragment that carries it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub id: Option<String>,
        /// The tool's name, on the first fragment that carries it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        /// This fragment of the argument string.
        pub arguments_delta: String,
    }
}

define_event! {
    /// The result of a tool call ([`ToolResult`]).
    #[event(type = "stream.tool_result", domain = Stream, base = event)]
    pub struct StreamToolResultEvent {
        /// The LLM call whose tool call this answers.
        pub request_id: String,
        /// The tool call's id.
        pub tool_use_id: String,
        /// The tool's output.
        pub content: String,
        /// Whether the tool failed.
        pub is_error: bool,
    }
}

define_event! {
    /// A reasoning (thinking) block starts.
    #[event(type = "stream.reasoning_start", domain = Stream, base = event)]
    pub struct StreamReasoningStartEvent {
        /// The LLM call.
        pub request_id: String,
    }
}

define_event! {
    /// A chunk of reasoning text ([`ReasoningDelta`]).
    #[event(type = "stream.reasoning_delta", domain = Stream, base = event)]
    pub struct StreamReasoningDeltaEvent {
        /// The LLM call.
        pub request_id: String,
        /// This chunk's reasoning text.
        pub content: String,
        /// The reasoning block's signature, when this fragment carries it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub signature: Option<String>,
    }
}

define_event! {
    /// A provider stream finished ([`Finish`]): stop reason, usage, cost, model.
    #[event(type = "stream.finish", domain = Stream, base = event)]
    pub struct StreamFinishEvent {
        /// The LLM call.
        pub request_id: String,
        /// Why generation stopped, as the provider names it.
        pub stop_reason: String,
        /// Prompt tokens.
        pub input_tokens: u64,
        /// Generated tokens.
        pub output_tokens: u64,
        /// Prompt tokens served from cache, when reported.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cached_tokens: Option<u64>,
        /// Prompt tokens written to cache, when reported.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cache_creation_tokens: Option<u64>,
        /// Output tokens spent on reasoning, when reported.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reasoning_tokens: Option<u64>,
        /// Cost in USD; absent when the model's price is unknown.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cost_usd: Option<f64>,
        /// The model that answered.
        pub model: String,
        /// The refusal text, when the model refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub refusal: Option<String>,
        /// Why the response is incomplete (Responses API).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub incomplete_reason: Option<String>,
    }
}

define_event! {
    /// A provider stream failed ([`StreamError`]). The error is a [`crate::ErrorInfo`]
    /// (`kind` is the [`StreamErrorKind`] string, `code` the provider's code), with the
    /// typed kind and the HTTP status beside it.
    #[event(type = "stream.error", domain = Stream, base = event)]
    pub struct StreamErrorEvent {
        /// The LLM call.
        pub request_id: String,
        /// The error.
        pub error: crate::ErrorInfo,
        /// The error's kind, typed.
        pub error_kind: StreamErrorKind,
        /// Whether the caller may retry.
        pub recoverable: bool,
        /// The upstream HTTP status, when there was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub status: Option<u16>,
    }
}

impl StreamErrorEvent {
    /// The error as the in-process [`StreamError`].
    pub fn to_stream_error(&self) -> StreamError {
        StreamError {
            kind: self.error_kind,
            message: self.error.message.clone(),
            code: self.error.code.clone(),
            recoverable: self.recoverable,
            status: self.status,
        }
    }
}

/// The stream-contract event types, in variant order (used by [`crate::catalogue::all`]).
pub fn event_infos() -> Vec<crate::EventInfo> {
    use crate::EventInfo;
    vec![
        EventInfo::of::<StreamTextDeltaEvent>(),
        EventInfo::of::<StreamTextEndEvent>(),
        EventInfo::of::<StreamToolCallEvent>(),
        EventInfo::of::<StreamToolCallDeltaEvent>(),
        EventInfo::of::<StreamToolResultEvent>(),
        EventInfo::of::<StreamReasoningStartEvent>(),
        EventInfo::of::<StreamReasoningDeltaEvent>(),
        EventInfo::of::<StreamFinishEvent>(),
        EventInfo::of::<StreamErrorEvent>(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_event_uses_the_seed_literals() {
        let event = StreamEvent::text_delta("Hel", "Hel");
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "text_delta");
        assert_eq!(
            serde_json::to_value(StreamEvent::ReasoningStart).unwrap(),
            serde_json::json!({"type": "reasoning_start"})
        );
        let error = StreamEvent::Error(
            StreamError::new(StreamErrorKind::RateLimit, "slow down").with_status(429),
        );
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(json["type"], "error");
        assert_eq!(json["kind"], "rate_limit");
        assert_eq!(json["status"], 429);
        assert_eq!(json["recoverable"], true);
        let back: StreamEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, error);
    }

    #[test]
    fn bus_events_carry_request_and_session() {
        let finish = StreamEvent::Finish(Finish {
            stop_reason: "stop".into(),
            input_tokens: 3,
            output_tokens: 4,
            model: "m".into(),
            ..Finish::default()
        });
        let event = finish.to_bus_event("req-1", EventMeta::for_session("s-1"));
        assert_eq!(event.event_type(), "stream.finish");
        let value = event.to_wire_value().unwrap();
        assert_eq!(value["request_id"], "req-1");
        assert_eq!(value["session_id"], "s-1");
        assert!(
            value.get("cost_usd").is_none(),
            "unknown cost is absent, not 0"
        );
        let error =
            StreamEvent::Error(StreamError::new(StreamErrorKind::Server, "boom").with_status(500));
        let bus = error.to_bus_event("req-1", EventMeta::new());
        let typed = bus.downcast_ref::<StreamErrorEvent>().unwrap();
        assert_eq!(
            typed.to_stream_error(),
            StreamError::new(StreamErrorKind::Server, "boom").with_status(500)
        );
    }
}
