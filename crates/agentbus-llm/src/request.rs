//! What goes into a model: [`ChatRequest`], its [`Message`]s and [`ToolDefinition`]s.
//!
//! These types are provider-neutral; each provider translates them into its own wire
//! format (OpenAI Chat Completions, OpenAI Responses, Anthropic Messages, a local model's
//! chat template).

use serde::{Deserialize, Serialize};

/// Who wrote a message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions for the model. Anthropic takes them out of the message list into its
    /// `system` field; the others keep them in place.
    System,
    /// The user.
    #[default]
    User,
    /// The model: its text and/or the tool calls it requested.
    Assistant,
    /// The result of one tool call; `tool_call_id` names the call.
    Tool,
}

impl Role {
    /// The role's name as OpenAI spells it (`system`, `user`, `assistant`, `tool`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// A tool call the assistant made, as it is replayed in the conversation history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRequest {
    /// The provider's id of the call (the `tool_use_id` of the
    /// [`ToolCall`](agentbus_events::stream::ToolCall) event).
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as JSON (an object for well-formed calls).
    pub arguments: serde_json::Value,
}

impl From<&agentbus_events::stream::ToolCall> for ToolCallRequest {
    fn from(call: &agentbus_events::stream::ToolCall) -> Self {
        Self {
            id: call.tool_use_id.clone(),
            name: call.tool_name.clone(),
            arguments: call.tool_input.clone(),
        }
    }
}

/// One message of the conversation.
///
/// Build them with the constructors: [`Message::system`], [`Message::user`],
/// [`Message::assistant`], [`Message::assistant_with_tool_calls`],
/// [`Message::tool_result`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// The text (may be empty for an assistant message that only calls tools).
    pub content: String,
    /// Tool calls the assistant requested (assistant messages only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallRequest>,
    /// The call this message answers (tool messages only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Whether the tool failed (tool messages only; Anthropic's `is_error`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
    /// The reasoning (thinking) the assistant produced before this message, replayed to
    /// Anthropic as a `thinking` block when `reasoning_signature` is set (Anthropic
    /// requires the signed block back in a tool-use turn). Other providers ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// The signature of `reasoning` (from [`ReasoningDelta::signature`](agentbus_events::stream::ReasoningDelta::signature)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_signature: Option<String>,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
            ..Self::default()
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
            ..Self::default()
        }
    }

    /// An assistant message with text only.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
            ..Self::default()
        }
    }

    /// An assistant message that requested tool calls (with optional text before them).
    pub fn assistant_with_tool_calls(
        content: impl Into<String>,
        tool_calls: Vec<ToolCallRequest>,
    ) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
            tool_calls,
            ..Self::default()
        }
    }

    /// The result of the tool call `tool_call_id`.
    pub fn tool_result(
        tool_call_id: impl Into<String>,
        content: impl Into<String>,
        is_error: bool,
    ) -> Self {
        Self {
            role: Role::Tool,
            content: content.into(),
            tool_call_id: Some(tool_call_id.into()),
            is_error,
            ..Self::default()
        }
    }
}

/// A tool the model may call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    /// The tool's name (what the model calls).
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// The JSON Schema of the arguments object (`{"type":"object","properties":{...}}`).
    pub parameters: serde_json::Value,
}

/// Whether and which tool the model must call: the `tool_choice` of a request.
///
/// Each provider maps it exactly to its own wire format:
///
/// | choice | OpenAI (Chat Completions / Responses) | Anthropic | local model |
/// |---|---|---|---|
/// | `Auto` | `"auto"` | `{"type":"auto"}` | text or a valid call |
/// | `None` | `"none"` | `{"type":"none"}` | text only |
/// | `Required` | `"required"` | `{"type":"any"}` | one valid call |
/// | `Tool(name)` | `{"type":"function","function":{"name":…}}` (Responses: `{"type":"function","name":…}`) | `{"type":"tool","name":…}` | one valid call of that tool |
///
/// Its text form (for the CLI's `--tool-choice`, events and the store) is `auto`, `none`,
/// `required`, or the tool's name:
///
/// ```
/// use agentbus_llm::ToolChoice;
///
/// assert_eq!("required".parse::<ToolChoice>().unwrap(), ToolChoice::Required);
/// assert_eq!("calculator".parse::<ToolChoice>().unwrap(), ToolChoice::Tool("calculator".into()));
/// assert_eq!(ToolChoice::Tool("calculator".into()).to_string(), "tool:calculator");
/// assert_eq!("tool:auto".parse::<ToolChoice>().unwrap(), ToolChoice::Tool("auto".into()));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides: plain text or tool calls.
    #[default]
    Auto,
    /// No tool call: text only (the tools stay described).
    None,
    /// At least one tool call (any of the offered tools).
    Required,
    /// A call of this tool.
    Tool(String),
}

impl ToolChoice {
    /// Whether this choice forces a tool call.
    pub fn forces_a_call(&self) -> bool {
        matches!(self, ToolChoice::Required | ToolChoice::Tool(_))
    }

    /// Checks the choice against the offered `tools`: a named tool must be one of them,
    /// and `required` needs at least one. The message says what is wrong.
    pub fn check(&self, tools: &[ToolDefinition]) -> Result<(), String> {
        match self {
            ToolChoice::Required if tools.is_empty() => {
                Err("tool_choice `required` but no tools are offered".to_owned())
            }
            ToolChoice::Tool(name) if !tools.iter().any(|tool| &tool.name == name) => {
                let offered: Vec<&str> = tools.iter().map(|tool| tool.name.as_str()).collect();
                Err(format!(
                    "tool_choice names the tool `{name}`, which is not offered (offered: {})",
                    if offered.is_empty() {
                        "none".to_owned()
                    } else {
                        offered.join(", ")
                    }
                ))
            }
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for ToolChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToolChoice::Auto => f.write_str("auto"),
            ToolChoice::None => f.write_str("none"),
            ToolChoice::Required => f.write_str("required"),
            ToolChoice::Tool(name) => write!(f, "tool:{name}"),
        }
    }
}

impl std::str::FromStr for ToolChoice {
    type Err = String;

    /// `auto`, `none`, `required` (or Anthropic's `any`), `tool:NAME`, or a bare tool
    /// name.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        Ok(match text {
            "" => {
                return Err(
                    "an empty tool choice (use auto, none, required or a tool name)".into(),
                );
            }
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" | "any" => ToolChoice::Required,
            other => {
                let name = other.strip_prefix("tool:").unwrap_or(other).trim();
                if name.is_empty() {
                    return Err(format!("`{text}` names no tool"));
                }
                ToolChoice::Tool(name.to_owned())
            }
        })
    }
}

/// One request to a [`ChatModel`](crate::ChatModel).
///
/// Everything but `messages` is optional; unset sampling options are not sent, so the
/// provider's defaults apply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDefinition>,
    /// Whether and which tool the model must call ([`ToolChoice`]); `None` sends nothing,
    /// so the provider's default applies (`auto` everywhere when tools are offered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Whether the model may make several tool calls in one answer; `None` sends nothing
    /// (the provider's default, allowed everywhere). OpenAI's `parallel_tool_calls`,
    /// Anthropic's `disable_parallel_tool_use` (negated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// The model to use; `None` uses the model the provider was configured with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Maximum tokens to generate. Anthropic requires one: its provider sends a default
    /// when this is `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Seed for deterministic sampling, where the provider supports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The id of this LLM call on the bus. Not sent to the provider; the instrumentation
    /// ([`InstrumentedModel`](crate::InstrumentedModel)) uses it for every event of the
    /// call and generates a random one when it is `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The session the call belongs to. Not sent to the provider; the instrumentation
    /// stamps it on every event (overriding the wrapper's own session id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

impl ChatRequest {
    /// A request with these messages and nothing else set.
    pub fn new(messages: Vec<Message>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }

    /// A request with one user message.
    pub fn from_prompt(prompt: impl Into<String>) -> Self {
        Self::new(vec![Message::user(prompt)])
    }

    /// The same request with `tools`.
    pub fn with_tools(mut self, tools: Vec<ToolDefinition>) -> Self {
        self.tools = tools;
        self
    }

    /// The same request with `tool_choice`.
    pub fn with_tool_choice(mut self, tool_choice: ToolChoice) -> Self {
        self.tool_choice = Some(tool_choice);
        self
    }

    /// The same request for `model`.
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// The same request with `max_tokens`.
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }
}
