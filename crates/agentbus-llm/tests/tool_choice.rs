//! `tool_choice` and `parallel_tool_calls` reach the wire exactly, for each protocol:
//! the request body a loopback fake server received is asserted field by field.

mod common;

use std::time::Duration;

use agentbus_llm::{
    Api, ChatModel, ChatRequest, HttpConfig, HttpModel, ToolChoice, ToolDefinition,
};
use agentbus_test_support::{FakeServer, Reply};
use common::{assert_one_terminal_last, fixtures};
use futures::StreamExt;
use serde_json::{Value, json};

fn tools() -> Vec<ToolDefinition> {
    ["calculator", "read_file"]
        .into_iter()
        .map(|name| ToolDefinition {
            name: name.into(),
            description: format!("the {name}"),
            parameters: json!({"type": "object", "properties": {}}),
        })
        .collect()
}

/// The body `api` sends for a request offering the two tools, with `choice` and `parallel`.
async fn body_sent(api: Api, choice: Option<ToolChoice>, parallel: Option<bool>) -> Value {
    body_sent_with(api, tools(), choice, parallel).await
}

/// The body `api` sends for a request offering `tools`, with `choice` and `parallel`.
async fn body_sent_with(
    api: Api,
    tools: Vec<ToolDefinition>,
    choice: Option<ToolChoice>,
    parallel: Option<bool>,
) -> Value {
    let fixture = match api {
        Api::AnthropicMessages => "anthropic__text",
        Api::OpenAiResponses => "openai__responses_text",
        _ => "openai__chat_text_usage",
    };
    let fixture = fixtures()
        .into_iter()
        .find(|f| f.name == fixture)
        .expect("fixture");
    let server = FakeServer::start(vec![Reply::stream_split(
        &fixture.body,
        400,
        Duration::ZERO,
    )])
    .await;
    let model = HttpModel::new(api, HttpConfig::new("test", &server.base_url, "m")).unwrap();
    let request = ChatRequest {
        tool_choice: choice,
        parallel_tool_calls: parallel,
        ..ChatRequest::from_prompt("hi").with_tools(tools)
    };
    let events: Vec<_> = model.stream(request).collect().await;
    assert_one_terminal_last("tool_choice", &events);
    server.requests()[0].body.clone()
}

fn choices() -> Vec<Option<ToolChoice>> {
    vec![
        None,
        Some(ToolChoice::Auto),
        Some(ToolChoice::None),
        Some(ToolChoice::Required),
        Some(ToolChoice::Tool("calculator".into())),
    ]
}

/// Each of [`choices`] sent on `api` (no parallel flag) puts `expected` in `tool_choice`,
/// sends no `parallel_tool_calls`, and offers both tools.
async fn assert_each_choice(api: Api, expected: [Option<Value>; 5]) {
    for (choice, expected) in choices().into_iter().zip(expected) {
        let body = body_sent(api, choice.clone(), None).await;
        assert_eq!(
            body.get("tool_choice"),
            expected.as_ref(),
            "{api:?} {choice:?}: {body}"
        );
        assert!(body.get("parallel_tool_calls").is_none(), "{body}");
        assert_eq!(body["tools"].as_array().unwrap().len(), 2, "{body}");
    }
}

#[tokio::test]
async fn openai_chat_completions_gets_each_choice_exactly() {
    let expected = [
        None,
        Some(json!("auto")),
        Some(json!("none")),
        Some(json!("required")),
        Some(json!({"type": "function", "function": {"name": "calculator"}})),
    ];
    assert_each_choice(Api::OpenAiChat, expected).await;
    let body = body_sent(Api::OpenAiChat, Some(ToolChoice::Required), Some(false)).await;
    assert_eq!(body["parallel_tool_calls"], false);
    assert_eq!(body["tool_choice"], "required");
}

#[tokio::test]
async fn openai_responses_gets_each_choice_exactly() {
    let expected = [
        None,
        Some(json!("auto")),
        Some(json!("none")),
        Some(json!("required")),
        Some(json!({"type": "function", "name": "calculator"})),
    ];
    assert_each_choice(Api::OpenAiResponses, expected).await;
    let body = body_sent(Api::OpenAiResponses, None, Some(true)).await;
    assert_eq!(body["parallel_tool_calls"], true);
}

#[tokio::test]
async fn anthropic_gets_each_choice_exactly() {
    let expected = [
        None,
        Some(json!({"type": "auto"})),
        Some(json!({"type": "none"})),
        Some(json!({"type": "any"})),
        Some(json!({"type": "tool", "name": "calculator"})),
    ];
    assert_each_choice(Api::AnthropicMessages, expected).await;
    // Parallel use is disabled through the choice object.
    let body = body_sent(
        Api::AnthropicMessages,
        Some(ToolChoice::Tool("read_file".into())),
        Some(false),
    )
    .await;
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "read_file", "disable_parallel_tool_use": true})
    );
    let body = body_sent(Api::AnthropicMessages, None, Some(false)).await;
    assert_eq!(
        body["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    let body = body_sent(
        Api::AnthropicMessages,
        Some(ToolChoice::Required),
        Some(true),
    )
    .await;
    assert_eq!(
        body["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": false})
    );
}

/// Without tools there is nothing to choose: no protocol sends `tool_choice` or
/// `parallel_tool_calls` (OpenAI refuses a `tool_choice` without tools).
#[tokio::test]
async fn no_choice_is_sent_without_tools() {
    for api in [
        Api::OpenAiChat,
        Api::OpenAiResponses,
        Api::AnthropicMessages,
    ] {
        let body = body_sent_with(api, Vec::new(), Some(ToolChoice::Required), Some(false)).await;
        assert!(body.get("tool_choice").is_none(), "{api:?}: {body}");
        assert!(body.get("parallel_tool_calls").is_none(), "{api:?}: {body}");
    }
}

#[test]
fn text_forms_parse_and_print() {
    for (text, choice) in [
        ("auto", ToolChoice::Auto),
        ("none", ToolChoice::None),
        ("required", ToolChoice::Required),
        ("any", ToolChoice::Required),
        ("calculator", ToolChoice::Tool("calculator".into())),
        ("tool:none", ToolChoice::Tool("none".into())),
    ] {
        assert_eq!(text.parse::<ToolChoice>().unwrap(), choice, "{text}");
        assert_eq!(choice.to_string().parse::<ToolChoice>().unwrap(), choice);
    }
    assert!("".parse::<ToolChoice>().is_err());
    assert!("tool:".parse::<ToolChoice>().is_err());
    assert!(
        ToolChoice::Tool("nope".into())
            .check(&tools())
            .unwrap_err()
            .contains("calculator, read_file")
    );
    assert!(ToolChoice::Required.check(&[]).is_err());
    assert!(
        ToolChoice::Tool("calculator".into())
            .check(&tools())
            .is_ok()
    );
}
