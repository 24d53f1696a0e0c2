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
#![warn(missing_docs)]

mod assemble;
mod encode;
pub mod errors;
mod http;
mod instrument;
mod model;
pub mod pricing;
mod protocol;
mod request;
mod scripted;
pub mod sse;

pub use http::{
    ANTHROPIC_VERSION, ApiKey, HttpConfig, HttpModel, HttpModelError, RetryPolicy, Timeouts,
};
pub use instrument::InstrumentedModel;
pub use model::{ChatModel, ChatResponse, ChatStream};
pub use pricing::{ModelPrice, PricingTable};
pub use protocol::{Api, StreamDecoder};
pub use request::{ChatRequest, Message, Role, ToolCallRequest, ToolDefinition};
pub use scripted::ScriptedModel;

pub use agentbus_events::stream::{
    Finish, StreamError, StreamErrorKind, StreamEvent, TextDelta, ToolCall, ToolCallDelta,
};
