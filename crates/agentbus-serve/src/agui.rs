//! The AG-UI 1.0 protocol types (`@ag-ui/core` 1.0.0): the events a server streams and
//! the [`RunAgentInput`] a client posts, with the protocol's camelCase JSON.
//!
//! Only what agentbus reads or writes is typed; unknown fields a client sends are
//! ignored (the protocol's objects are open). Every event serialises as one JSON object
//! whose `type` is the protocol's SCREAMING_SNAKE_CASE tag.
//!
//! ```
//! use agentbus_serve::agui::{AgUiEvent, TextMessageContent};
//!
//! let event = AgUiEvent::TextMessageContent(TextMessageContent {
//!     message_id: "m1".into(),
//!     delta: "Hello".into(),
//! });
//! let json = serde_json::to_string(&event).unwrap();
//! assert_eq!(json, r#"{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"Hello"}"#);
//! ```

use serde::{Deserialize, Serialize};

/// One AG-UI event, as streamed to the client (`data: <json>\n\n`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)] // each variant is documented by its payload type
pub enum AgUiEvent {
    RunStarted(RunStarted),
    RunFinished(RunFinished),
    RunError(RunError),
    StepStarted(Step),
    StepFinished(Step),
    TextMessageStart(TextMessageStart),
    TextMessageContent(TextMessageContent),
    TextMessageEnd(MessageRef),
    ReasoningStart(MessageRef),
    ReasoningMessageStart(ReasoningMessageStart),
    ReasoningMessageContent(TextMessageContent),
    ReasoningMessageEnd(MessageRef),
    ReasoningEnd(MessageRef),
    ToolCallStart(ToolCallStart),
    ToolCallArgs(ToolCallArgs),
    ToolCallEnd(ToolCallRef),
    ToolCallResult(ToolCallResult),
    SubagentStarted(SubagentStarted),
    SubagentFinished(SubagentFinished),
    SubagentError(SubagentError),
    Custom(Custom),
}

impl AgUiEvent {
    /// The protocol's `type` tag of this event.
    pub fn type_name(&self) -> &'static str {
        match self {
            AgUiEvent::RunStarted(_) => "RUN_STARTED",
            AgUiEvent::RunFinished(_) => "RUN_FINISHED",
            AgUiEvent::RunError(_) => "RUN_ERROR",
            AgUiEvent::StepStarted(_) => "STEP_STARTED",
            AgUiEvent::StepFinished(_) => "STEP_FINISHED",
            AgUiEvent::TextMessageStart(_) => "TEXT_MESSAGE_START",
            AgUiEvent::TextMessageContent(_) => "TEXT_MESSAGE_CONTENT",
            AgUiEvent::TextMessageEnd(_) => "TEXT_MESSAGE_END",
            AgUiEvent::ReasoningStart(_) => "REASONING_START",
            AgUiEvent::ReasoningMessageStart(_) => "REASONING_MESSAGE_START",
            AgUiEvent::ReasoningMessageContent(_) => "REASONING_MESSAGE_CONTENT",
            AgUiEvent::ReasoningMessageEnd(_) => "REASONING_MESSAGE_END",
            AgUiEvent::ReasoningEnd(_) => "REASONING_END",
            AgUiEvent::ToolCallStart(_) => "TOOL_CALL_START",
            AgUiEvent::ToolCallArgs(_) => "TOOL_CALL_ARGS",
            AgUiEvent::ToolCallEnd(_) => "TOOL_CALL_END",
            AgUiEvent::ToolCallResult(_) => "TOOL_CALL_RESULT",
            AgUiEvent::SubagentStarted(_) => "SUBAGENT_STARTED",
            AgUiEvent::SubagentFinished(_) => "SUBAGENT_FINISHED",
            AgUiEvent::SubagentError(_) => "SUBAGENT_ERROR",
            AgUiEvent::Custom(_) => "CUSTOM",
        }
    }
}

/// `RUN_STARTED`: the first event of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStarted {
    /// The conversation (an agentbus session).
    pub thread_id: String,
    /// This run.
    pub run_id: String,
}

/// `RUN_FINISHED`: the run ended without error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunFinished {
    /// The conversation.
    pub thread_id: String,
    /// This run.
    pub run_id: String,
    /// How the run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RunOutcome>,
    /// Token usage of the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usage: Vec<TokenUsage>,
}

/// How a run ended (`RUN_FINISHED.outcome`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum RunOutcome {
    /// Done; `pending_tool_call_ids` are client-side tool calls the client must answer.
    #[serde(rename_all = "camelCase")]
    Success {
        /// Calls of client-declared tools waiting for the client's result.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pending_tool_call_ids: Vec<String>,
    },
    /// The run was cancelled.
    Cancelled,
}

/// Token counts in AG-UI's shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    /// The provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Both.
    pub total_tokens: u64,
    /// Completion tokens spent reasoning.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reasoning_tokens: u64,
    /// Prompt tokens served from cache.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cached_input_tokens: u64,
    /// Prompt tokens written to cache.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_input_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `RUN_ERROR`: the run failed; nothing follows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunError {
    /// What went wrong.
    pub message: String,
    /// A short class of error (`llm_error`, `max_iterations`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Token usage spent before the failure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usage: Vec<TokenUsage>,
}

/// `STEP_STARTED` / `STEP_FINISHED`: one iteration of the ReAct loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The step's name (`iteration 1`, ...).
    pub step_name: String,
    /// The sub-agent run this step belongs to, for a fork's steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
}

/// `TEXT_MESSAGE_START`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextMessageStart {
    /// The message.
    pub message_id: String,
    /// Always `assistant` here.
    pub role: String,
}

/// `TEXT_MESSAGE_CONTENT` and `REASONING_MESSAGE_CONTENT`: a fragment of text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextMessageContent {
    /// The message.
    pub message_id: String,
    /// The new text.
    pub delta: String,
}

/// An event that only names its message (`TEXT_MESSAGE_END`, `REASONING_START`, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRef {
    /// The message.
    pub message_id: String,
}

/// `REASONING_MESSAGE_START`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasoningMessageStart {
    /// The message.
    pub message_id: String,
    /// Always `reasoning`.
    pub role: String,
}

/// `TOOL_CALL_START`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallStart {
    /// The call.
    pub tool_call_id: String,
    /// The tool.
    pub tool_call_name: String,
    /// The assistant message the call belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_message_id: Option<String>,
}

/// `TOOL_CALL_ARGS`: a fragment of the arguments' JSON text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallArgs {
    /// The call.
    pub tool_call_id: String,
    /// The fragment.
    pub delta: String,
}

/// `TOOL_CALL_END`: the arguments are complete.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallRef {
    /// The call.
    pub tool_call_id: String,
}

/// `TOOL_CALL_RESULT`: what a server-side tool returned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallResult {
    /// The tool message this result becomes.
    pub message_id: String,
    /// The call answered.
    pub tool_call_id: String,
    /// The result text (a failure's message when the tool failed).
    pub content: String,
    /// Always `tool`.
    pub role: String,
}

/// `SUBAGENT_STARTED`: a fork (sub-agent) began.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubagentStarted {
    /// The fork's run (its agent call id).
    pub subagent_run_id: String,
    /// The tool it runs as.
    pub name: String,
    /// The parent fork's run, when the parent is itself a fork.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_subagent_run_id: Option<String>,
    /// The tool call that started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_tool_call_id: Option<String>,
}

/// `SUBAGENT_FINISHED`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubagentFinished {
    /// The fork's run.
    pub subagent_run_id: String,
    /// The fork's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
}

/// `SUBAGENT_ERROR`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubagentError {
    /// The fork's run.
    pub subagent_run_id: String,
    /// What went wrong.
    pub message: String,
    /// Its class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// `CUSTOM`: an event a tool emitted while it ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Custom {
    /// The event's name.
    pub name: String,
    /// Its payload.
    pub value: serde_json::Value,
}

/// What a client posts to start a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunAgentInput {
    /// The conversation: agentbus stores the run's events under this session id.
    pub thread_id: String,
    /// This run.
    pub run_id: String,
    /// The run this one continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<String>,
    /// The client's state (carried, not interpreted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<serde_json::Value>,
    /// The whole conversation so far, the new user message (or tool results) last.
    pub messages: Vec<InputMessage>,
    /// Tools the client implements: the agent may call them, and the run then ends so
    /// the client can answer in its next run.
    #[serde(default)]
    pub tools: Vec<ClientTool>,
    /// Extra context for the agent.
    #[serde(default)]
    pub context: Vec<Context>,
    /// Anything else the client forwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_props: Option<serde_json::Value>,
}

/// One message of [`RunAgentInput::messages`], by role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "camelCase")]
pub enum InputMessage {
    /// Instructions from the application's developer.
    Developer(TextMessage),
    /// Instructions from the system.
    System(TextMessage),
    /// The user.
    User(UserMessage),
    /// The assistant: its text and the tool calls it made.
    #[serde(rename_all = "camelCase")]
    Assistant {
        /// The message id.
        id: String,
        /// The text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<String>,
        /// The tool calls.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<InputToolCall>,
    },
    /// The result of one tool call.
    #[serde(rename_all = "camelCase")]
    Tool {
        /// The message id.
        id: String,
        /// The result.
        content: UserContent,
        /// The call it answers.
        tool_call_id: String,
        /// Set when the tool failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A UI activity (not shown to the model).
    Activity(serde_json::Value),
    /// Reasoning the assistant did (not replayed to the model).
    Reasoning(serde_json::Value),
}

/// A message whose content is plain text (developer, system).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextMessage {
    /// The message id.
    pub id: String,
    /// The text.
    pub content: String,
}

/// A user message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserMessage {
    /// The message id.
    pub id: String,
    /// The text, or parts.
    pub content: UserContent,
}

/// A message body: text, or a list of parts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UserContent {
    /// Plain text.
    Text(String),
    /// Parts (`{"type":"text","text":...}`, images, ...).
    Parts(Vec<ContentPart>),
}

/// One part of a message body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContentPart {
    /// `text`, `image`, `audio`, `video`, `document`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A tool call inside an assistant message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputToolCall {
    /// The call id.
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// The tool and its arguments.
    pub function: FunctionCall,
}

fn function_type() -> String {
    "function".into()
}

/// The tool and arguments of a call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// The tool.
    pub name: String,
    /// The arguments' JSON text.
    pub arguments: String,
}

/// A tool the client declares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientTool {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// The JSON Schema of its arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
}

/// A piece of context the client gives the agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Context {
    /// What it is.
    pub description: String,
    /// Its value.
    pub value: String,
}
