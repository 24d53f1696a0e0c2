//! [`UiStreamMapper`]: turns an agent run's [`AgentOutput`]s into AI SDK UI message
//! stream chunks.
//!
//! | agentbus | UI message stream |
//! |---|---|
//! | (the run starts) | `start` ([`UiStreamMapper::start`]) |
//! | `ReactIterationStart` / `End` | `start-step` / `finish-step` |
//! | `LLMChunkArrive` (text / reasoning) | `text-start`, `text-delta` / `reasoning-start`, `reasoning-delta` |
//! | `ToolCallArgumentsDelta` | `tool-input-start` once the id is known, `tool-input-delta` |
//! | `LLMCallEnd` | `text-end` / `reasoning-end`, `tool-input-available` per call |
//! | `ToolCallEnd` | `tool-output-available` or `tool-output-error` |
//! | `ReactEnd` | `error` (LLM failure, iteration limit) or `abort` (cancelled), then `finish` with usage and cost as message metadata |
//!
//! Tool parts are `dynamic` (the client does not declare the server's tools). A fork's
//! own events are not streamed: its result arrives as its tool's output.
//!
//! ```
//! use agentbus_serve::to_ui_stream::UiStreamMapper;
//! use agentbus_serve::ui_stream::UiChunk;
//!
//! let mapper = UiStreamMapper::new();
//! assert!(matches!(mapper.start(), UiChunk::Start { .. }));
//! ```

use agentbus_agent::AgentOutput;
use agentbus_agent::react::{AbortReason, ChunkChannel, ReactEvent, ReactOutput};

use crate::stream_state::{MessageState, ToolStep, ToolStreams};
use crate::ui_stream::UiChunk;

/// The state of one run's mapping to the UI message stream.
#[derive(Debug)]
pub struct UiStreamMapper {
    message_id: String,
    text: MessageState,
    reasoning: MessageState,
    tools: ToolStreams,
    finished: bool,
}

impl Default for UiStreamMapper {
    fn default() -> Self {
        Self::new()
    }
}

impl UiStreamMapper {
    /// A mapper for one assistant message.
    pub fn new() -> Self {
        Self {
            message_id: uuid::Uuid::new_v4().to_string(),
            text: MessageState::default(),
            reasoning: MessageState::default(),
            tools: ToolStreams::default(),
            finished: false,
        }
    }

    /// The first chunk.
    pub fn start(&self) -> UiChunk {
        UiChunk::Start {
            message_id: Some(self.message_id.clone()),
        }
    }

    /// Whether the closing `finish` was produced.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// An `error` and `finish` for a failure outside the agent.
    pub fn error(&mut self, message: impl Into<String>) -> Vec<UiChunk> {
        self.finished = true;
        vec![
            UiChunk::Error {
                error_text: message.into(),
            },
            UiChunk::Finish {
                finish_reason: Some("error".into()),
                message_metadata: None,
            },
        ]
    }

    /// Appends the chunks `output` maps to onto `out`.
    pub fn push(&mut self, output: &AgentOutput, out: &mut Vec<UiChunk>) {
        let ReactOutput::Event(yielded) = output else {
            return;
        };
        if yielded.origin().is_fork() {
            return;
        }
        match &yielded.event {
            ReactEvent::ReactIterationStart(_) => out.push(UiChunk::StartStep),
            ReactEvent::ReactIterationEnd(_) => {
                self.close_parts(out);
                out.push(UiChunk::FinishStep);
            }
            ReactEvent::LlmChunkArrive(chunk) if chunk.delta.is_empty() => {}
            ReactEvent::LlmChunkArrive(chunk) => match chunk.channel {
                ChunkChannel::Text => {
                    self.close_reasoning(out);
                    if let Some(id) = self.text.open() {
                        out.push(UiChunk::TextStart { id });
                    }
                    out.push(UiChunk::TextDelta {
                        id: self.text.id().to_owned(),
                        delta: chunk.delta.clone(),
                    });
                }
                ChunkChannel::Reasoning => {
                    self.close_text(out);
                    if let Some(id) = self.reasoning.open() {
                        out.push(UiChunk::ReasoningStart { id });
                    }
                    out.push(UiChunk::ReasoningDelta {
                        id: self.reasoning.id().to_owned(),
                        delta: chunk.delta.clone(),
                    });
                }
            },
            ReactEvent::ToolCallArgumentsDelta(delta) => {
                self.close_parts(out);
                for step in self.tools.delta(delta) {
                    out.push(tool_chunk(step));
                }
            }
            ReactEvent::LlmCallEnd(end) => {
                self.close_parts(out);
                for step in self.tools.complete(&end.tool_calls) {
                    out.push(tool_chunk(step));
                }
                for call in &end.tool_calls {
                    out.push(UiChunk::ToolInputAvailable {
                        tool_call_id: call.id.clone(),
                        tool_name: call.name.clone(),
                        input: match (&call.arguments, &call.arguments_raw) {
                            (serde_json::Value::Null, Some(raw)) => {
                                serde_json::Value::String(raw.clone())
                            }
                            (value, _) => value.clone(),
                        },
                        dynamic: true,
                    });
                }
                self.tools.reset();
            }
            ReactEvent::ToolCallEnd(end) => out.push(match &end.error {
                None => UiChunk::ToolOutputAvailable {
                    tool_call_id: end.tool_call_id.clone(),
                    output: end.result.clone(),
                    dynamic: true,
                },
                Some(error) => UiChunk::ToolOutputError {
                    tool_call_id: end.tool_call_id.clone(),
                    error_text: error.message.clone(),
                    dynamic: true,
                },
            }),
            ReactEvent::ReactEnd(end) => {
                self.close_parts(out);
                self.finished = true;
                let finish_reason = match end.abort_reason {
                    None => "stop",
                    Some(AbortReason::MaxIterations) => {
                        out.push(UiChunk::Error {
                            error_text: "the agent reached its iteration limit".into(),
                        });
                        "length"
                    }
                    Some(AbortReason::LlmError) => {
                        out.push(UiChunk::Error {
                            error_text: end
                                .error
                                .as_ref()
                                .map(|e| e.message.clone())
                                .unwrap_or_else(|| "the LLM call failed".into()),
                        });
                        "error"
                    }
                    Some(reason @ (AbortReason::Cancelled | AbortReason::Interrupted)) => {
                        out.push(UiChunk::Abort {
                            reason: Some(reason.as_str().to_owned()),
                        });
                        "other"
                    }
                };
                out.push(UiChunk::Finish {
                    finish_reason: Some(finish_reason.into()),
                    message_metadata: Some(serde_json::json!({
                        "usage": {
                            "inputTokens": end.usage.input_tokens,
                            "outputTokens": end.usage.output_tokens,
                            "totalTokens": end.usage.total_tokens(),
                            "reasoningTokens": end.usage.reasoning_tokens,
                            "cachedInputTokens": end.usage.cached_tokens,
                        },
                        "costUsd": end.cost_usd,
                        "sessionId": end.origin.session_id,
                        "llmCalls": end.total_llm_calls,
                        "toolCalls": end.total_tool_calls,
                    })),
                });
            }
            _ => {}
        }
    }

    fn close_text(&mut self, out: &mut Vec<UiChunk>) {
        if let Some(id) = self.text.close() {
            out.push(UiChunk::TextEnd { id });
        }
    }

    fn close_reasoning(&mut self, out: &mut Vec<UiChunk>) {
        if let Some(id) = self.reasoning.close() {
            out.push(UiChunk::ReasoningEnd { id });
        }
    }

    fn close_parts(&mut self, out: &mut Vec<UiChunk>) {
        self.close_reasoning(out);
        self.close_text(out);
    }
}

fn tool_chunk(step: ToolStep) -> UiChunk {
    match step {
        ToolStep::Start { id, name } => UiChunk::ToolInputStart {
            tool_call_id: id,
            tool_name: name,
            dynamic: true,
        },
        ToolStep::Args { id, delta } => UiChunk::ToolInputDelta {
            tool_call_id: id,
            input_text_delta: delta,
        },
    }
}
