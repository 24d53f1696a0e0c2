//! # agentbus-agent
//!
//! A ReAct agent whose every step is an event: SimpleLLMFunc's event stream (seed 003)
//! with the strict agent contract of agentbus, over any
//! [`ChatModel`](agentbus_llm::ChatModel), published on the bus.
//!
//! - [`Agent`] runs the loop: system prompt + history + user message → streaming LLM
//!   call → tool calls as a parallel batch (with a concurrency limit and per-tool
//!   timeouts) → results appended → next iteration, until a final answer,
//!   `max_iterations`, cancellation or interruption.
//! - A run is an [`AgentStream`] of [`AgentOutput`] =
//!   `ReactOutput::Response | ReactOutput::Event(EventYield { event })`; all 14
//!   ReAct events and `CustomEvent` (see [`agentbus_events::react`]) are emitted at their
//!   point, `ReactEndEvent` last.
//! - [`Tool`] and [`FunctionTool`] (an async function with typed, schema-described
//!   arguments); [`ToolEventEmitter`] for live custom events; [`SubAgentTool`] for forks.
//! - [`combinators`]: `responses_only`, `events_only`, `filter_events`, `observe`.
//! - `tools` (the `builtin-tools` feature, on by default): the built-in `calculator`,
//!   `current_time`, `read_file` and `list_dir`.
//! - [`testing`]: a scripted multi-turn model.
#![warn(missing_docs)]

mod agent;
mod batch;
pub mod combinators;
mod context;
mod emitter;
mod fork;
mod generator;
mod inner;
mod llm_call;
mod publish;
mod request;
mod run_loop;
mod stop;
pub mod testing;
mod tool;
mod tool_choice;
mod tool_emitter;
#[cfg(feature = "builtin-tools")]
pub mod tools;

pub use agent::{Agent, AgentBuilder, AgentStream};
pub use combinators::{ReactStreamExt, events_only, filter_events, observe, responses_only};
pub use fork::{SubAgentArgs, SubAgentTool};
pub use inner::{
    AgentConfig, AgentOutput, DEFAULT_MAX_ITERATIONS, DEFAULT_TOOL_CONCURRENCY,
    DEFAULT_TOOL_TIMEOUT,
};
pub use publish::{EventSink, PublishFuture, Publisher};
pub use request::RunRequest;
pub use tool::{
    FunctionTool, Tool, ToolContext, ToolError, ToolFuture, ToolResult, parameters_schema,
    parse_arguments, result_text,
};
pub use tool_choice::ToolChoicePolicy;
pub use tool_emitter::{EmitError, ToolEventEmitter};

pub use agentbus_events::react;
pub use tokio_util::sync::CancellationToken;

/// Milliseconds since `start`, as a float.
pub(crate) fn elapsed_ms(start: std::time::Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}
