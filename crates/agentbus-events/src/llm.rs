//! Non-realtime LLM events: a request starting, streamed chunks, the completed and final
//! response, and errors.
//!
//! Provenance: these are Vision Agents' `vision_agents.core.llm.events`.
//! [`LLMResponseFinalEvent`] is listed only in seed 001, and its `type` string comes from
//! Vision Agents' code. Vision Agents generates `request_id` when not given, where the
//! wire requires it; fields it declares `bool = True` default to true when absent on the
//! wire here too.

use crate::{ErrorFields, define_event};

/// The serde default of the boolean fields that default to true (`is_recoverable`,
/// `success`, `was_clean`, ...): a producer that leaves the field out means `true`.
pub(crate) fn default_true() -> bool {
    true
}

define_event! {
    /// An LLM request has begun: the first event of every request/response cycle.
    ///
    /// `request_id` is required on the wire: producers assign one before sending.
    #[event(type = "plugin.llm_request_started", domain = Llm, base = plugin)]
    pub struct LLMRequestStartedEvent {
        /// Identifies this request; later chunk, completion and error events refer to it.
        pub request_id: String,
        /// The model the request goes to (e.g. `gpt-4o`, `claude-3-opus`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub model: Option<String>,
        /// Whether the response is streamed in chunks.
        #[serde(default)]
        pub streaming: bool,
        /// The tool choice the request was made with when tools were offered: `auto`,
        /// `none`, `required` or `tool:NAME` (agentbus extension; absent without tools).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tool_choice: Option<String>,
    }
}

define_event! {
    /// One piece of a streamed LLM response arrived.
    ///
    /// The positional fields mirror the provider's streaming protocol (OpenAI Responses
    /// API): which output item and content part the `delta` text belongs to.
    #[event(type = "plugin.llm_response_chunk", domain = Llm, base = plugin)]
    pub struct LLMResponseChunkEvent {
        /// Index of the content part the delta was appended to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub content_index: Option<u64>,
        /// The text this chunk adds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub delta: Option<String>,
        /// Id of the output item the delta belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub item_id: Option<String>,
        /// Index of the output item the delta belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub output_index: Option<u64>,
        /// The provider's sequence number for this chunk.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sequence_number: Option<u64>,
        /// Whether this is the first chunk of the stream.
        #[serde(default)]
        pub is_first_chunk: bool,
        /// Milliseconds from the request's start to this chunk; set on the first chunk only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub time_to_first_token_ms: Option<f64>,
    }
}

define_event! {
    /// An LLM response has been fully received and processed, with its timing and token
    /// usage.
    ///
    /// `original` is the provider's raw response, kept as JSON (a JSON `null` and an
    /// absent field both mean "not kept").
    #[event(type = "plugin.llm_response_completed", domain = Llm, base = plugin)]
    pub struct LLMResponseCompletedEvent {
        /// The provider's raw response object.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub original: Option<serde_json::Value>,
        /// The complete response text.
        #[serde(default)]
        pub text: String,
        /// Identifier of the response item.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub item_id: Option<String>,
        /// Milliseconds from the request to the complete response.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub latency_ms: Option<f64>,
        /// Milliseconds from the request to the first token (streaming only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub time_to_first_token_ms: Option<f64>,
        /// Input (prompt) tokens consumed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub input_tokens: Option<u64>,
        /// Output (completion) tokens generated.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub output_tokens: Option<u64>,
        /// Total tokens; may differ from input + output when some were cached.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub total_tokens: Option<u64>,
        /// The model that produced the response.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub model: Option<String>,
    }
}

define_event! {
    /// The final text of an LLM response is available.
    #[event(type = "plugin.llm_response_final", domain = Llm, base = plugin)]
    pub struct LLMResponseFinalEvent {
        /// The full response text.
        #[serde(default)]
        pub text: String,
        /// The model that produced it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub model: Option<String>,
    }
}

define_event! {
    /// A non-realtime LLM call failed.
    ///
    /// The exception is carried as data ([`ErrorFields`]); a human-readable message is
    /// [`LLMErrorEvent::error_message`].
    #[event(type = "plugin.llm_error", domain = Llm, base = plugin)]
    pub struct LLMErrorEvent {
        /// The error, its code and where it happened.
        #[serde(flatten)]
        pub failure: ErrorFields,
        /// The request the error belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub request_id: Option<String>,
        /// Whether the caller can carry on (true when absent on the wire; `Default::default()`
        /// gives `false`).
        #[serde(default = "crate::llm::default_true")]
        pub is_recoverable: bool,
    }
}

impl LLMErrorEvent {
    /// A human-readable message for the error (`"Unknown error"` when none is carried).
    pub fn error_message(&self) -> String {
        self.failure.error_message()
    }
}

/// Every LLM event type, for [`catalogue::all`](crate::catalogue::all).
pub fn event_infos() -> Vec<crate::EventInfo> {
    vec![
        crate::EventInfo::of::<LLMRequestStartedEvent>(),
        crate::EventInfo::of::<LLMResponseChunkEvent>(),
        crate::EventInfo::of::<LLMResponseCompletedEvent>(),
        crate::EventInfo::of::<LLMResponseFinalEvent>(),
        crate::EventInfo::of::<LLMErrorEvent>(),
    ]
}
