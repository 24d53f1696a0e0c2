//! Client conversations (AG-UI [`RunAgentInput`], AI SDK [`ChatRequest`]) into the agent's
//! [`RunRequest`]: the history, and the new user message or the tool results the run
//! answers. Anything agentbus cannot honour is a [`RequestError`], before anything runs.

use agentbus_agent::RunRequest;
use agentbus_llm::{Message, ToolCallRequest};

use crate::agui::{InputMessage, RunAgentInput, UserContent};
use crate::error::RequestError;
use crate::ui_stream::{ChatRequest, UiRole};

/// What a client asked for, ready to run.
#[derive(Debug)]
pub struct Conversation {
    /// The run request (without session or cancellation: the server adds them).
    pub request: RunRequest,
    /// The text of the new user message (empty when the run answers tool results).
    pub user_message: String,
}

/// The text of a message body; media parts are refused.
fn content_text(content: &UserContent, what: &str) -> Result<String, RequestError> {
    match content {
        UserContent::Text(text) => Ok(text.clone()),
        UserContent::Parts(parts) => {
            let mut text = String::new();
            for part in parts {
                match (part.kind.as_str(), &part.text) {
                    ("text", Some(t)) => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(t);
                    }
                    ("text", None) => {
                        return Err(RequestError::invalid(format!(
                            "{what}: a text part has no `text`"
                        )));
                    }
                    (other, _) => {
                        return Err(RequestError::invalid(format!(
                            "{what}: `{other}` parts are not supported (text only)"
                        )));
                    }
                }
            }
            Ok(text)
        }
    }
}

/// Parses a tool call's arguments text.
fn parse_arguments(text: &str, call: &str) -> Result<serde_json::Value, RequestError> {
    if text.trim().is_empty() {
        return Ok(serde_json::json!({}));
    }
    serde_json::from_str(text).map_err(|e| {
        RequestError::invalid(format!(
            "tool call `{call}`: the arguments are not JSON: {e}"
        ))
    })
}

/// Splits a history into the run request: a final user message becomes the new turn;
/// final tool results make a [`RunRequest::resume`].
fn finish(mut history: Vec<Message>) -> Result<Conversation, RequestError> {
    match history.last().map(|m| m.role) {
        Some(agentbus_llm::Role::User) => {
            let user = history.pop().map(|m| m.content).unwrap_or_default();
            Ok(Conversation {
                request: RunRequest::new(user.clone()).history(history),
                user_message: user,
            })
        }
        Some(agentbus_llm::Role::Tool) => Ok(Conversation {
            request: RunRequest::resume(history),
            user_message: String::new(),
        }),
        Some(_) => Err(RequestError::invalid(
            "the last message must be a user message or tool results",
        )),
        None => Err(RequestError::invalid("`messages` is empty")),
    }
}

/// The run an AG-UI client asked for. `context` entries become a system message.
pub fn from_run_input(input: &RunAgentInput) -> Result<Conversation, RequestError> {
    if input.thread_id.trim().is_empty() {
        return Err(RequestError::invalid("`threadId` is empty"));
    }
    let mut history = Vec::with_capacity(input.messages.len() + 1);
    for (i, message) in input.messages.iter().enumerate() {
        let what = format!("messages[{i}]");
        match message {
            InputMessage::Developer(m) | InputMessage::System(m) => {
                history.push(Message::system(m.content.clone()));
            }
            InputMessage::User(m) => {
                history.push(Message::user(content_text(&m.content, &what)?));
            }
            InputMessage::Assistant {
                content,
                tool_calls,
                ..
            } => {
                let calls = tool_calls
                    .iter()
                    .map(|c| {
                        Ok(ToolCallRequest {
                            id: c.id.clone(),
                            name: c.function.name.clone(),
                            arguments: parse_arguments(&c.function.arguments, &c.id)?,
                        })
                    })
                    .collect::<Result<Vec<_>, RequestError>>()?;
                history.push(Message::assistant_with_tool_calls(
                    content.clone().unwrap_or_default(),
                    calls,
                ));
            }
            InputMessage::Tool {
                content,
                tool_call_id,
                error,
                ..
            } => {
                let text = match error {
                    Some(error) => error.clone(),
                    None => content_text(content, &what)?,
                };
                history.push(Message::tool_result(
                    tool_call_id.clone(),
                    text,
                    error.is_some(),
                ));
            }
            InputMessage::Activity(_) | InputMessage::Reasoning(_) => {}
        }
    }
    if !input.context.is_empty() {
        let mut text = String::from("Context from the application:");
        for c in &input.context {
            text.push_str(&format!("\n- {}: {}", c.description, c.value));
        }
        let at = history
            .iter()
            .take_while(|m| m.role == agentbus_llm::Role::System)
            .count();
        history.insert(at, Message::system(text));
    }
    finish(history)
}

/// The run an AI SDK `useChat` client asked for.
pub fn from_chat_request(chat: &ChatRequest) -> Result<Conversation, RequestError> {
    if chat.id.trim().is_empty() {
        return Err(RequestError::invalid("`id` is empty"));
    }
    let mut history = Vec::with_capacity(chat.messages.len());
    for message in &chat.messages {
        let mut text = String::new();
        let mut calls = Vec::new();
        let mut results = Vec::new();
        for part in &message.parts {
            if part.kind == "text" {
                text.push_str(part.text.as_deref().unwrap_or_default());
            } else if let Some(tool) = part.tool() {
                let id = part.tool_call_id.clone().ok_or_else(|| {
                    RequestError::invalid(format!(
                        "message `{}`: a tool part has no `toolCallId`",
                        message.id
                    ))
                })?;
                calls.push(ToolCallRequest {
                    id: id.clone(),
                    name: tool.to_owned(),
                    arguments: part.input.clone().unwrap_or(serde_json::json!({})),
                });
                match (part.state.as_deref(), &part.output, &part.error_text) {
                    (Some("output-available"), Some(output), _) => results.push(
                        Message::tool_result(id, agentbus_agent::result_text(output), false),
                    ),
                    (Some("output-error"), _, Some(error)) => {
                        results.push(Message::tool_result(id, error.clone(), true))
                    }
                    _ => {
                        return Err(RequestError::invalid(format!(
                            "message `{}`: tool call `{id}` has no output",
                            message.id
                        )));
                    }
                }
            }
        }
        match message.role {
            UiRole::System => history.push(Message::system(text)),
            UiRole::User => history.push(Message::user(text)),
            UiRole::Assistant if calls.is_empty() => history.push(Message::assistant(text)),
            UiRole::Assistant => {
                history.push(Message::assistant_with_tool_calls(text, calls));
                history.extend(results);
            }
        }
    }
    finish(history)
}
