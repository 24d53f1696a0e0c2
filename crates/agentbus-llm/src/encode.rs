//! [`ChatRequest`] → the JSON request body of each protocol.

use serde_json::{Map, Value, json};

use crate::request::{ChatRequest, Message, Role, ToolChoice};

/// Options of the Chat Completions body that a server may reject (and that are then
/// dropped or renamed on a retry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChatBodyOptions {
    /// Send `stream_options: {include_usage: true}`.
    pub include_usage: bool,
    /// Send the token limit as `max_completion_tokens` instead of `max_tokens`.
    pub max_completion_tokens: bool,
}

/// The Anthropic default for `max_tokens`, which that API requires.
pub(crate) const ANTHROPIC_DEFAULT_MAX_TOKENS: u32 = 4096;

fn arguments_string(arguments: &Value) -> String {
    match arguments {
        Value::String(s) => s.clone(),
        Value::Null => "{}".to_owned(),
        other => other.to_string(),
    }
}

/// The Chat Completions body.
pub(crate) fn openai_chat_body(
    request: &ChatRequest,
    model: &str,
    options: ChatBodyOptions,
) -> Value {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| match m.role {
            Role::Tool => json!({
                "role": "tool",
                "tool_call_id": m.tool_call_id.clone().unwrap_or_default(),
                "content": m.content,
            }),
            Role::Assistant if !m.tool_calls.is_empty() => {
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": arguments_string(&c.arguments)},
                        })
                    })
                    .collect();
                let content = if m.content.is_empty() { Value::Null } else { Value::String(m.content.clone()) };
                json!({"role": "assistant", "content": content, "tool_calls": calls})
            }
            role => json!({"role": role.as_str(), "content": m.content}),
        })
        .collect();
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), messages.into());
    body.insert("stream".into(), true.into());
    if options.include_usage {
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters,
                }})
            })
            .collect();
        body.insert("tools".into(), tools.into());
    }
    insert_openai_tool_choice(
        &mut body,
        request,
        |name| json!({"type": "function", "function": {"name": name}}),
    );
    if let Some(max) = request.max_tokens {
        let key = if options.max_completion_tokens {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body.insert(key.into(), max.into());
    }
    insert_sampling(&mut body, request, true);
    Value::Object(body)
}

/// OpenAI's `tool_choice` (`"auto"`, `"none"`, `"required"`, or `named(name)`) and
/// `parallel_tool_calls`, when the request sets them.
fn insert_openai_tool_choice(
    body: &mut Map<String, Value>,
    request: &ChatRequest,
    named: impl Fn(&str) -> Value,
) {
    // Without tools there is nothing to choose from (OpenAI refuses a `tool_choice` then).
    if request.tools.is_empty() {
        return;
    }
    if let Some(choice) = &request.tool_choice {
        let value = match choice {
            ToolChoice::Auto => "auto".into(),
            ToolChoice::None => "none".into(),
            ToolChoice::Required => "required".into(),
            ToolChoice::Tool(name) => named(name),
        };
        body.insert("tool_choice".into(), value);
    }
    if let Some(parallel) = request.parallel_tool_calls {
        body.insert("parallel_tool_calls".into(), parallel.into());
    }
}

/// Anthropic's `tool_choice`: `{"type": "auto" | "any" | "tool" | "none", "name"?,
/// "disable_parallel_tool_use"?}`. Parallel use can only be disabled alongside a choice,
/// so a request that sets only `parallel_tool_calls: false` sends `auto` with it. Without
/// tools nothing is sent.
fn anthropic_tool_choice(request: &ChatRequest) -> Option<Value> {
    if request.tools.is_empty() {
        return None;
    }
    let disable_parallel = request.parallel_tool_calls.map(|parallel| !parallel);
    let choice = match (&request.tool_choice, disable_parallel) {
        (None, None) | (None, Some(false)) => return None,
        (None, Some(true)) => &ToolChoice::Auto,
        (Some(choice), _) => choice,
    };
    let mut value = match choice {
        ToolChoice::Auto => json!({"type": "auto"}),
        ToolChoice::None => return Some(json!({"type": "none"})),
        ToolChoice::Required => json!({"type": "any"}),
        ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
    };
    if let Some(disable) = disable_parallel {
        value["disable_parallel_tool_use"] = disable.into();
    }
    Some(value)
}

fn insert_sampling(body: &mut Map<String, Value>, request: &ChatRequest, stop_and_seed: bool) {
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), f64::from(t).into());
    }
    if let Some(p) = request.top_p {
        body.insert("top_p".into(), f64::from(p).into());
    }
    if stop_and_seed {
        if !request.stop.is_empty() {
            body.insert("stop".into(), request.stop.clone().into());
        }
        if let Some(seed) = request.seed {
            body.insert("seed".into(), seed.into());
        }
    }
}

/// The Responses body. `stop` and `seed` have no Responses equivalent and are not sent.
pub(crate) fn openai_responses_body(request: &ChatRequest, model: &str) -> Value {
    let mut input = Vec::new();
    for m in &request.messages {
        match m.role {
            Role::Tool => input.push(json!({
                "type": "function_call_output",
                "call_id": m.tool_call_id.clone().unwrap_or_default(),
                "output": m.content,
            })),
            Role::Assistant => {
                if !m.content.is_empty() {
                    input.push(json!({"role": "assistant", "content": m.content}));
                }
                for c in &m.tool_calls {
                    input.push(json!({
                        "type": "function_call",
                        "call_id": c.id,
                        "name": c.name,
                        "arguments": arguments_string(&c.arguments),
                    }));
                }
            }
            role => input.push(json!({"role": role.as_str(), "content": m.content})),
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("input".into(), input.into());
    body.insert("stream".into(), true.into());
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| json!({"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters}))
            .collect();
        body.insert("tools".into(), tools.into());
    }
    insert_openai_tool_choice(
        &mut body,
        request,
        |name| json!({"type": "function", "name": name}),
    );
    if let Some(max) = request.max_tokens {
        body.insert("max_output_tokens".into(), max.into());
    }
    insert_sampling(&mut body, request, false);
    Value::Object(body)
}

fn anthropic_assistant_content(m: &Message) -> Vec<Value> {
    let mut content = Vec::new();
    if let (Some(thinking), Some(signature)) = (&m.reasoning, &m.reasoning_signature) {
        content.push(json!({"type": "thinking", "thinking": thinking, "signature": signature}));
    }
    if !m.content.is_empty() {
        content.push(json!({"type": "text", "text": m.content}));
    }
    for c in &m.tool_calls {
        let input = if c.arguments.is_object() {
            c.arguments.clone()
        } else {
            json!({})
        };
        content.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}));
    }
    content
}

/// The Anthropic Messages body. System messages go to `system`; consecutive tool results
/// (and a user message right after them) are merged into one user turn, as the API
/// requires alternating roles.
pub(crate) fn anthropic_body(request: &ChatRequest, model: &str) -> Value {
    let mut system = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    // Content blocks of the user turn being built.
    let mut user_blocks: Vec<Value> = Vec::new();
    let flush = |blocks: &mut Vec<Value>, messages: &mut Vec<Value>| {
        if !blocks.is_empty() {
            messages.push(json!({"role": "user", "content": std::mem::take(blocks)}));
        }
    };
    for m in &request.messages {
        match m.role {
            Role::System => system.push(m.content.clone()),
            Role::User => user_blocks.push(json!({"type": "text", "text": m.content})),
            Role::Tool => user_blocks.push(json!({
                "type": "tool_result",
                "tool_use_id": m.tool_call_id.clone().unwrap_or_default(),
                "content": m.content,
                "is_error": m.is_error,
            })),
            Role::Assistant => {
                flush(&mut user_blocks, &mut messages);
                messages
                    .push(json!({"role": "assistant", "content": anthropic_assistant_content(m)}));
            }
        }
    }
    flush(&mut user_blocks, &mut messages);
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert(
        "max_tokens".into(),
        request
            .max_tokens
            .unwrap_or(ANTHROPIC_DEFAULT_MAX_TOKENS)
            .into(),
    );
    body.insert("stream".into(), true.into());
    if !system.is_empty() {
        body.insert("system".into(), system.join("\n\n").into());
    }
    body.insert("messages".into(), messages.into());
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
        body.insert("tools".into(), tools.into());
    }
    if let Some(choice) = anthropic_tool_choice(request) {
        body.insert("tool_choice".into(), choice);
    }
    if !request.stop.is_empty() {
        body.insert("stop_sequences".into(), request.stop.clone().into());
    }
    insert_sampling(&mut body, request, false);
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{ToolCallRequest, ToolDefinition};

    fn conversation() -> ChatRequest {
        ChatRequest::new(vec![
            Message::system("be brief"),
            Message::user("weather in Paris and Rome?"),
            Message::assistant_with_tool_calls(
                "",
                vec![
                    ToolCallRequest {
                        id: "c1".into(),
                        name: "weather".into(),
                        arguments: json!({"city": "Paris"}),
                    },
                    ToolCallRequest {
                        id: "c2".into(),
                        name: "weather".into(),
                        arguments: json!({"city": "Rome"}),
                    },
                ],
            ),
            Message::tool_result("c1", "sunny", false),
            Message::tool_result("c2", "rain", true),
        ])
        .with_tools(vec![ToolDefinition {
            name: "weather".into(),
            description: "the weather".into(),
            parameters: json!({"type": "object"}),
        }])
    }

    #[test]
    fn chat_body_has_tool_calls_and_usage_option() {
        let options = ChatBodyOptions {
            include_usage: true,
            max_completion_tokens: false,
        };
        let body = openai_chat_body(&conversation().with_max_tokens(10), "m", options);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["max_tokens"], 10);
        assert_eq!(
            body["messages"][2]["tool_calls"][1]["function"]["arguments"],
            "{\"city\":\"Rome\"}"
        );
        assert_eq!(body["messages"][2]["content"], Value::Null);
        assert_eq!(body["messages"][4]["tool_call_id"], "c2");
        let options = ChatBodyOptions {
            include_usage: false,
            max_completion_tokens: true,
        };
        let body = openai_chat_body(&conversation().with_max_tokens(10), "m", options);
        assert!(body.get("stream_options").is_none());
        assert_eq!(body["max_completion_tokens"], 10);
    }

    #[test]
    fn anthropic_body_merges_tool_results_and_lifts_system() {
        let body = anthropic_body(&conversation(), "claude");
        assert_eq!(body["system"], "be brief");
        assert_eq!(body["max_tokens"], ANTHROPIC_DEFAULT_MAX_TOKENS);
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[1]["content"][0]["type"], "tool_use");
        assert_eq!(messages[2]["content"].as_array().unwrap().len(), 2);
        assert_eq!(messages[2]["content"][1]["is_error"], true);
        assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
    }

    #[test]
    fn responses_body_uses_items() {
        let body = openai_responses_body(&conversation(), "m");
        let input = body["input"].as_array().unwrap();
        assert_eq!(input[2]["type"], "function_call");
        assert_eq!(input[4]["type"], "function_call_output");
        assert_eq!(body["tools"][0]["name"], "weather");
    }
}
