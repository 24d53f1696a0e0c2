//! [`AgUiMapper`]: turns an agent run's [`AgentOutput`]s into AG-UI 1.0 events.
//!
//! The mapping (main agent; a fork's own events are summarised by `SUBAGENT_*`):
//!
//! | agentbus | AG-UI |
//! |---|---|
//! | `ReactIterationStart` / `End` | `STEP_STARTED` / `STEP_FINISHED` (`iteration N`) |
//! | `LLMChunkArrive` (text) | `TEXT_MESSAGE_START` once, `TEXT_MESSAGE_CONTENT` |
//! | `LLMChunkArrive` (reasoning) | `REASONING_START`, `REASONING_MESSAGE_START`, `REASONING_MESSAGE_CONTENT` |
//! | `ToolCallArgumentsDelta` | `TOOL_CALL_START` once the id is known, `TOOL_CALL_ARGS` |
//! | `LLMCallEnd` | closes open messages (`*_END`), `TOOL_CALL_END` for each call |
//! | `ToolCallEnd` (server tool) | `TOOL_CALL_RESULT` |
//! | `CustomEvent` | `CUSTOM` |
//! | a fork's `ReactStart` / `ReactEnd` | `SUBAGENT_STARTED` / `SUBAGENT_FINISHED` or `SUBAGENT_ERROR` |
//! | `ReactEnd` | `RUN_FINISHED` with usage (outcome `success`, with the pending client tool calls), or `RUN_ERROR` |
//!
//! `RUN_STARTED` is the caller's (it knows the run before the agent starts):
//! [`AgUiMapper::run_started`].
//!
//! ```
//! use agentbus_serve::to_agui::AgUiMapper;
//! use agentbus_serve::agui::AgUiEvent;
//!
//! let mapper = AgUiMapper::new("thread-1", "run-1", []);
//! assert!(matches!(mapper.run_started(), AgUiEvent::RunStarted(_)));
//! ```

use std::collections::HashSet;

use agentbus_agent::AgentOutput;
use agentbus_agent::react::{AbortReason, ChunkChannel, ReactEndEvent, ReactEvent, ReactOutput};

use crate::agui::*;
use crate::stream_state::{MessageState, ToolStreams};

/// The state of one run's mapping to AG-UI (see the module documentation).
#[derive(Debug)]
pub struct AgUiMapper {
    thread_id: String,
    run_id: String,
    client_tools: HashSet<String>,
    text: MessageState,
    reasoning: MessageState,
    tools: ToolStreams,
    /// Calls of client tools the client must answer, in call order.
    pending: Vec<String>,
    finished: bool,
}

impl AgUiMapper {
    /// A mapper for run `run_id` of thread `thread_id`; calls of `client_tools` are the
    /// client's to run (no `TOOL_CALL_RESULT`; listed in the run's outcome instead).
    pub fn new(
        thread_id: impl Into<String>,
        run_id: impl Into<String>,
        client_tools: impl IntoIterator<Item = String>,
    ) -> Self {
        Self {
            thread_id: thread_id.into(),
            run_id: run_id.into(),
            client_tools: client_tools.into_iter().collect(),
            text: MessageState::default(),
            reasoning: MessageState::default(),
            tools: ToolStreams::default(),
            pending: Vec::new(),
            finished: false,
        }
    }

    /// The run's first event.
    pub fn run_started(&self) -> AgUiEvent {
        AgUiEvent::RunStarted(RunStarted {
            thread_id: self.thread_id.clone(),
            run_id: self.run_id.clone(),
        })
    }

    /// Calls of client-side tools the agent made so far (the run should end after the
    /// tool batch that holds them).
    pub fn pending_client_calls(&self) -> &[String] {
        &self.pending
    }

    /// Whether the terminal event (`RUN_FINISHED` / `RUN_ERROR`) was produced.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// A `RUN_ERROR` for a failure outside the agent (the run could not start).
    pub fn error(&mut self, message: impl Into<String>, code: &str) -> AgUiEvent {
        self.finished = true;
        AgUiEvent::RunError(RunError {
            message: message.into(),
            code: Some(code.to_owned()),
            usage: Vec::new(),
        })
    }

    /// Appends the AG-UI events `output` maps to onto `out`.
    pub fn push(&mut self, output: &AgentOutput, out: &mut Vec<AgUiEvent>) {
        let ReactOutput::Event(yielded) = output else {
            return; // the response repeats what the events streamed
        };
        let origin = yielded.origin();
        if origin.is_fork() {
            self.push_fork(&yielded.event, out);
            return;
        }
        match &yielded.event {
            ReactEvent::ReactIterationStart(e) => out.push(AgUiEvent::StepStarted(Step {
                step_name: format!("iteration {}", e.iteration),
                subagent_run_id: None,
            })),
            ReactEvent::ReactIterationEnd(e) => {
                self.close_messages(out);
                out.push(AgUiEvent::StepFinished(Step {
                    step_name: format!("iteration {}", e.iteration),
                    subagent_run_id: None,
                }));
            }
            ReactEvent::LlmChunkArrive(chunk) if chunk.delta.is_empty() => {}
            ReactEvent::LlmChunkArrive(chunk) => match chunk.channel {
                ChunkChannel::Text => {
                    self.close_reasoning(out);
                    if let Some(id) = self.text.open() {
                        out.push(AgUiEvent::TextMessageStart(TextMessageStart {
                            message_id: id,
                            role: "assistant".into(),
                        }));
                    }
                    out.push(AgUiEvent::TextMessageContent(TextMessageContent {
                        message_id: self.text.id().to_owned(),
                        delta: chunk.delta.clone(),
                    }));
                }
                ChunkChannel::Reasoning => {
                    self.close_text(out);
                    if let Some(id) = self.reasoning.open() {
                        out.push(AgUiEvent::ReasoningStart(MessageRef {
                            message_id: id.clone(),
                        }));
                        out.push(AgUiEvent::ReasoningMessageStart(ReasoningMessageStart {
                            message_id: id,
                            role: "reasoning".into(),
                        }));
                    }
                    out.push(AgUiEvent::ReasoningMessageContent(TextMessageContent {
                        message_id: self.reasoning.id().to_owned(),
                        delta: chunk.delta.clone(),
                    }));
                }
            },
            ReactEvent::ToolCallArgumentsDelta(delta) => {
                self.close_messages(out);
                let parent = self.text.last_id().map(str::to_owned);
                for step in self.tools.delta(delta) {
                    self.push_tool_step(step, parent.clone(), out);
                }
            }
            ReactEvent::LlmCallEnd(end) => {
                self.close_messages(out);
                let parent = self.text.last_id().map(str::to_owned);
                for step in self.tools.complete(&end.tool_calls) {
                    self.push_tool_step(step, parent.clone(), out);
                }
                for call in &end.tool_calls {
                    out.push(AgUiEvent::ToolCallEnd(ToolCallRef {
                        tool_call_id: call.id.clone(),
                    }));
                    if self.client_tools.contains(&call.name) {
                        self.pending.push(call.id.clone());
                    }
                }
                self.tools.reset();
                self.text.forget();
            }
            ReactEvent::ToolCallEnd(end) => {
                if self.client_tools.contains(&end.tool_name) {
                    return;
                }
                let content = match &end.error {
                    None => agentbus_agent::result_text(&end.result),
                    Some(error) => format!("error: {}", error.message),
                };
                out.push(AgUiEvent::ToolCallResult(ToolCallResult {
                    message_id: uuid::Uuid::new_v4().to_string(),
                    tool_call_id: end.tool_call_id.clone(),
                    content,
                    role: "tool".into(),
                }));
            }
            ReactEvent::Custom(custom) => out.push(AgUiEvent::Custom(Custom {
                name: custom.event_name.clone(),
                value: custom.data.clone(),
            })),
            ReactEvent::ReactEnd(end) => {
                self.close_messages(out);
                out.push(self.end(end));
            }
            _ => {}
        }
    }

    fn push_tool_step(
        &self,
        step: crate::stream_state::ToolStep,
        parent: Option<String>,
        out: &mut Vec<AgUiEvent>,
    ) {
        use crate::stream_state::ToolStep;
        match step {
            ToolStep::Start { id, name } => out.push(AgUiEvent::ToolCallStart(ToolCallStart {
                tool_call_id: id,
                tool_call_name: name,
                parent_message_id: parent,
            })),
            ToolStep::Args { id, delta } => out.push(AgUiEvent::ToolCallArgs(ToolCallArgs {
                tool_call_id: id,
                delta,
            })),
        }
    }

    fn push_fork(&mut self, event: &ReactEvent, out: &mut Vec<AgUiEvent>) {
        let origin = event.origin();
        let parent_run = (origin.fork_depth > 1)
            .then(|| origin.parent_agent_call_id.clone())
            .flatten();
        match event {
            ReactEvent::ReactStart(_) => out.push(AgUiEvent::SubagentStarted(SubagentStarted {
                subagent_run_id: origin.agent_call_id.clone(),
                name: origin
                    .tool_name
                    .clone()
                    .unwrap_or_else(|| "subagent".into()),
                parent_subagent_run_id: parent_run,
                parent_tool_call_id: origin.tool_call_id.clone(),
            })),
            ReactEvent::ReactEnd(end) if end.aborted => {
                out.push(AgUiEvent::SubagentError(SubagentError {
                    subagent_run_id: origin.agent_call_id.clone(),
                    message: end
                        .error
                        .as_ref()
                        .map(|e| e.message.clone())
                        .unwrap_or_else(|| "the sub-agent stopped".into()),
                    code: end.abort_reason.map(|r| r.as_str().to_owned()),
                }))
            }
            ReactEvent::ReactEnd(end) => out.push(AgUiEvent::SubagentFinished(SubagentFinished {
                subagent_run_id: origin.agent_call_id.clone(),
                result: Some(serde_json::Value::String(end.response.clone())),
            })),
            ReactEvent::Custom(custom) => out.push(AgUiEvent::Custom(Custom {
                name: custom.event_name.clone(),
                value: custom.data.clone(),
            })),
            _ => {}
        }
    }

    fn end(&mut self, end: &ReactEndEvent) -> AgUiEvent {
        self.finished = true;
        let usage = vec![to_usage(end)];
        let outcome = match end.abort_reason {
            None => Some(RunOutcome::Success {
                pending_tool_call_ids: Vec::new(),
            }),
            // The run was stopped because a client tool was called: a success that
            // waits for the client.
            Some(AbortReason::Cancelled) if !self.pending.is_empty() => Some(RunOutcome::Success {
                pending_tool_call_ids: self.pending.clone(),
            }),
            Some(AbortReason::Cancelled | AbortReason::Interrupted) => Some(RunOutcome::Cancelled),
            Some(reason @ (AbortReason::LlmError | AbortReason::MaxIterations)) => {
                return AgUiEvent::RunError(RunError {
                    message: end
                        .error
                        .as_ref()
                        .map(|e| e.message.clone())
                        .unwrap_or_else(|| format!("the run stopped: {reason}")),
                    code: Some(reason.as_str().to_owned()),
                    usage,
                });
            }
        };
        AgUiEvent::RunFinished(RunFinished {
            thread_id: self.thread_id.clone(),
            run_id: self.run_id.clone(),
            outcome,
            usage,
        })
    }

    fn close_text(&mut self, out: &mut Vec<AgUiEvent>) {
        if let Some(id) = self.text.close() {
            out.push(AgUiEvent::TextMessageEnd(MessageRef { message_id: id }));
        }
    }

    fn close_reasoning(&mut self, out: &mut Vec<AgUiEvent>) {
        if let Some(id) = self.reasoning.close() {
            out.push(AgUiEvent::ReasoningMessageEnd(MessageRef {
                message_id: id.clone(),
            }));
            out.push(AgUiEvent::ReasoningEnd(MessageRef { message_id: id }));
        }
    }

    fn close_messages(&mut self, out: &mut Vec<AgUiEvent>) {
        self.close_reasoning(out);
        self.close_text(out);
    }
}

/// The run's usage in AG-UI's shape.
fn to_usage(end: &ReactEndEvent) -> TokenUsage {
    let summary = &end.usage;
    TokenUsage {
        provider: None,
        model: None,
        input_tokens: summary.input_tokens,
        output_tokens: summary.output_tokens,
        total_tokens: summary.total_tokens(),
        reasoning_tokens: summary.reasoning_tokens,
        cached_input_tokens: summary.cached_tokens,
        cache_write_input_tokens: summary.cache_creation_tokens,
    }
}
