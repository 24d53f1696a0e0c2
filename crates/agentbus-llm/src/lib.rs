//! # agentbus-llm
//!
//! LLM providers for agentbus. Every provider turns what its server sends into the strict
//! provider contract, [`StreamEvent`] (Hive's stream
//! events: text and reasoning deltas, tool calls, exactly one `Finish` or `Error` at the
//! end), behind one trait, [`ChatModel`].
//!
//! - [`ChatModel`], [`ChatRequest`], [`Message`], [`Role`], [`ToolDefinition`],
//!   [`ToolCallRequest`]: the provider-neutral interface.
//! - [`sse`]: the Server-Sent Events decoder; [`StreamDecoder`]: SSE bytes of one of the
//!   three protocols ([`Api`]) to `StreamEvent`s.
//! - [`HttpModel`]: OpenAI-compatible Chat Completions, OpenAI Responses and Anthropic
//!   Messages over streaming HTTP, with retries ([`RetryPolicy`]) and [`Timeouts`].
//! - [`PricingTable`]: USD per million tokens, for `cost_usd`.
//! - [`InstrumentedModel`]: publishes any model's calls on the bus (LLM events and the
//!   `stream.*` events, one request id and session id).
//! - [`ScriptedModel`]: a test double replaying events or a recorded SSE body.
//! - [`redact`]: [`redact::mask_url`] and [`redact::Redactor`], which keep credentials out
//!   of logs, errors and events.
//!
//! # Limits
//!
//! Everything a server sends is untrusted: each buffer has a bound and each wait a
//! timeout. Past a limit the stream ends with one non-recoverable
//! [`StreamErrorKind::Protocol`] error (code `stream_limit_exceeded`), which is not
//! retried, and what was buffered is freed.
//!
//! | limit | default | set with |
//! |---|---|---|
//! | SSE line length | 16 MiB | [`StreamLimits::max_line_bytes`]; `--max-event-bytes` |
//! | SSE event size (joined `data` lines) | 16 MiB | [`StreamLimits::max_event_bytes`]; `--max-event-bytes` |
//! | output one response accumulates (text, reasoning, refusal, tool calls) | 64 MiB | [`StreamLimits::max_response_bytes`]; `--max-response-bytes` |
//! | tool calls one response opens | 1,024 | [`StreamLimits::max_tool_calls`] |
//! | content blocks one response opens (Anthropic) | 4,096 | [`StreamLimits::max_content_blocks`] |
//! | JSON nesting of a chunk or of tool arguments | 128 | serde_json's recursion limit (fixed) |
//! | HTTP error body read | 64 KiB | fixed |
//! | server message kept in an error | 2,000 characters | [`errors::MAX_SERVER_MESSAGE_CHARS`] (fixed) |
//! | `Retry-After` / `retry-after-ms` honoured | 60 s (values past a day, non-finite or negative: capped or ignored) | [`RetryPolicy::max_retry_after`] |
//! | connect (DNS, TCP, TLS) | 10 s | [`Timeouts::connect`] |
//! | request sent → first body byte (headers included) | 120 s | [`Timeouts::first_byte`]; `--first-byte-timeout` |
//! | silence between body chunks | 120 s | [`Timeouts::idle`]; `--idle-timeout` |
//! | the whole call, retries included | 30 min | [`Timeouts::total`]; `--request-timeout` |
//!
//! The CLI flags also read `AGENTBUS_*` variables and `agentbus.toml` keys (see the
//! README). The SSE buffers together never hold much more than line + event limits.
//!
//! # Fuzzing entry points
//!
//! Each decoder takes arbitrary bytes in arbitrary chunks, with no I/O:
//! [`sse::SseDecoder::feed`] (the framing) and [`StreamDecoder::feed`] +
//! [`StreamDecoder::end`] for each [`Api`] (framing, protocol and assembly). Neither may
//! panic, and a `StreamDecoder`'s output always ends with exactly one terminal event.
#![warn(missing_docs)]

mod assemble;
mod encode;
pub mod errors;
mod http;
mod instrument;
mod limits;
mod model;
pub mod pricing;
mod protocol;
pub mod redact;
mod request;
mod scripted;
pub mod sse;

pub use http::{
    ANTHROPIC_VERSION, ApiKey, HttpConfig, HttpModel, HttpModelError, RetryPolicy, Timeouts,
};
pub use instrument::InstrumentedModel;
pub use limits::{
    DEFAULT_MAX_CONTENT_BLOCKS, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_TOOL_CALLS, StreamLimits,
};
pub use model::{ChatModel, ChatResponse, ChatStream};
pub use pricing::{ModelPrice, PricingTable};
pub use protocol::{Api, StreamDecoder};
pub use request::{ChatRequest, Message, Role, ToolCallRequest, ToolChoice, ToolDefinition};
pub use scripted::ScriptedModel;

pub use agentbus_events::stream::{
    Finish, StreamError, StreamErrorKind, StreamEvent, TextDelta, ToolCall, ToolCallDelta,
};
