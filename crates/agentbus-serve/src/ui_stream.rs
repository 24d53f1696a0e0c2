//! The Vercel AI SDK UI message stream, version 1 (`ai` 6.x, `useChat`): the chunks a
//! server streams (`data: <json>\n\n`, then `data: [DONE]`, with the response header
//! `x-vercel-ai-ui-message-stream: v1`) and the request body `useChat` posts.
//!
//! ```
//! use agentbus_serve::ui_stream::UiChunk;
//!
//! let chunk = UiChunk::TextDelta { id: "t1".into(), delta: "Hi".into() };
//! assert_eq!(
//!     serde_json::to_string(&chunk).unwrap(),
//!     r#"{"type":"text-delta","id":"t1","delta":"Hi"}"#
//! );
//! ```

use serde::{Deserialize, Serialize};

/// The response header that marks a UI message stream, and its value.
pub const STREAM_HEADER: (&str, &str) = ("x-vercel-ai-ui-message-stream", "v1");

/// The last line of a stream.
pub const DONE: &str = "[DONE]";

/// One chunk of a UI message stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum UiChunk {
    /// The assistant message starts.
    #[serde(rename_all = "camelCase")]
    Start {
        /// Its id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
    },
    /// A step (one LLM call and its tools) starts.
    StartStep,
    /// The step ends.
    FinishStep,
    /// A text part starts.
    TextStart {
        /// The part.
        id: String,
    },
    /// Text of a part.
    TextDelta {
        /// The part.
        id: String,
        /// The new text.
        delta: String,
    },
    /// The text part ends.
    TextEnd {
        /// The part.
        id: String,
    },
    /// A reasoning part starts.
    ReasoningStart {
        /// The part.
        id: String,
    },
    /// Reasoning text.
    ReasoningDelta {
        /// The part.
        id: String,
        /// The new text.
        delta: String,
    },
    /// The reasoning part ends.
    ReasoningEnd {
        /// The part.
        id: String,
    },
    /// A tool call starts streaming its input.
    #[serde(rename_all = "camelCase")]
    ToolInputStart {
        /// The call.
        tool_call_id: String,
        /// The tool.
        tool_name: String,
        /// Always true: the server's tools are not declared on the client.
        dynamic: bool,
    },
    /// A fragment of the input's JSON text.
    #[serde(rename_all = "camelCase")]
    ToolInputDelta {
        /// The call.
        tool_call_id: String,
        /// The fragment.
        input_text_delta: String,
    },
    /// The complete input.
    #[serde(rename_all = "camelCase")]
    ToolInputAvailable {
        /// The call.
        tool_call_id: String,
        /// The tool.
        tool_name: String,
        /// The arguments.
        input: serde_json::Value,
        /// Always true (see `ToolInputStart`).
        dynamic: bool,
    },
    /// What the tool returned.
    #[serde(rename_all = "camelCase")]
    ToolOutputAvailable {
        /// The call.
        tool_call_id: String,
        /// The result.
        output: serde_json::Value,
        /// Always true.
        dynamic: bool,
    },
    /// The tool failed.
    #[serde(rename_all = "camelCase")]
    ToolOutputError {
        /// The call.
        tool_call_id: String,
        /// Why.
        error_text: String,
        /// Always true.
        dynamic: bool,
    },
    /// The run failed.
    #[serde(rename_all = "camelCase")]
    Error {
        /// Why.
        error_text: String,
    },
    /// The run was cancelled.
    Abort {
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The message ends.
    #[serde(rename_all = "camelCase")]
    Finish {
        /// `stop`, `length`, `content-filter`, `tool-calls`, `error` or `other`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        finish_reason: Option<String>,
        /// Usage and cost of the run, as message metadata.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_metadata: Option<serde_json::Value>,
    },
}

/// The body `useChat` posts (`DefaultChatTransport`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The chat: agentbus stores the run's events under this session id.
    pub id: String,
    /// The whole conversation, the new user message last.
    pub messages: Vec<UiMessage>,
    /// `submit-message` or `regenerate-message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// The message to regenerate.
    #[serde(default, rename = "messageId", skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// Who wrote a [`UiMessage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UiRole {
    /// Instructions.
    System,
    /// The user.
    User,
    /// The assistant.
    Assistant,
}

/// One message of a chat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UiMessage {
    /// Its id.
    pub id: String,
    /// Who wrote it.
    pub role: UiRole,
    /// Its parts.
    pub parts: Vec<UiPart>,
}

/// One part of a [`UiMessage`]: `text`, `reasoning`, `step-start`, `tool-NAME` or
/// `dynamic-tool`, ... (the fields a part does not have are absent).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UiPart {
    /// The part's kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a text or reasoning part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A tool part's call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// A dynamic tool part's tool name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// A tool part's state (`output-available`, `output-error`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// A tool part's input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<serde_json::Value>,
    /// A tool part's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    /// A tool part's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_text: Option<String>,
}

impl UiPart {
    /// The tool name of a tool part (`tool-NAME` or a `dynamic-tool`), else `None`.
    pub fn tool(&self) -> Option<&str> {
        if self.kind == "dynamic-tool" {
            self.tool_name.as_deref()
        } else {
            self.kind.strip_prefix("tool-")
        }
    }
}
