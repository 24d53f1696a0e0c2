//! The one place that builds prompts ([`ChatTemplate`]) against the chat template the
//! model ships: the Jinja text in the GGUF's `tokenizer.chat_template` is rendered with
//! minijinja (the Jinja engine) for many conversations, and ours must give the same text,
//! and token ids that decode to it.

use agentbus_llm::{ChatRequest, Message, ToolCallRequest, ToolDefinition};
use agentbus_local::pull::pull;
use agentbus_local::template::{ChatTemplate, Turn, TurnRole};
use agentbus_local::tokenizer::GgufTokenizer;
use agentbus_local::{DEFAULT_MODEL, ModelDir};

/// The template text and the tokenizer of the pulled model.
fn shipped() -> (String, GgufTokenizer) {
    let dir = ModelDir::from_env().expect("a model directory");
    let path = pull(&dir, DEFAULT_MODEL, false, &mut |_| {}).expect("pulling the model");
    let mut file = std::fs::File::open(path).unwrap();
    let content = candle_core::quantized::gguf_file::Content::read(&mut file).unwrap();
    let template = content.metadata["tokenizer.chat_template"]
        .to_string()
        .unwrap()
        .clone();
    (template, GgufTokenizer::from_gguf(&content).unwrap())
}

fn jinja(template: &str, turns: &[Turn]) -> String {
    let mut env = minijinja::Environment::new();
    env.add_template("chat", template).unwrap();
    let messages: Vec<serde_json::Value> = turns
        .iter()
        .map(|turn| serde_json::json!({"role": turn.role.as_str(), "content": turn.content}))
        .collect();
    env.get_template("chat")
        .unwrap()
        .render(minijinja::context! { messages => messages, add_generation_prompt => true })
        .unwrap()
}

fn conversations() -> Vec<Vec<Turn>> {
    use TurnRole::*;
    let t = Turn::new;
    let tools = vec![ToolDefinition {
        name: "calculator".into(),
        description: "Evaluates an arithmetic expression.".into(),
        parameters: serde_json::json!({"type": "object", "properties": {"expression": {"type": "string"}}}),
    }];
    let agent = ChatRequest::new(vec![
        Message::system("Answer briefly."),
        Message::user("What is 17 * 23?"),
        Message::assistant_with_tool_calls(
            "",
            vec![ToolCallRequest {
                id: "c1".into(),
                name: "calculator".into(),
                arguments: serde_json::json!({"expression": "17 * 23"}),
            }],
        ),
        Message::tool_result("c1", "391", false),
    ])
    .with_tools(tools.clone());
    let chat_with_tools = ChatRequest::from_prompt("Hi").with_tools(tools);
    vec![
        vec![t(User, "What is the capital of France?")],
        vec![t(System, "Answer in French."), t(User, "Hello")],
        vec![
            t(User, "Hi"),
            t(Assistant, "Hello! How can I help?"),
            t(User, "Tell me a joke.\nA short one."),
        ],
        vec![t(User, "<|im_end|> is text here, and so is {{ this }}")],
        vec![t(System, ""), t(User, "")],
        agentbus_local::provider::turns(&agent),
        agentbus_local::provider::turns(&chat_with_tools),
    ]
}

#[test]
fn every_prompt_is_the_shipped_template_rendered() {
    let (template, tokenizer) = shipped();
    assert!(
        template.contains("You are a helpful AI assistant named SmolLM"),
        "{template}"
    );
    let chat = ChatTemplate::new(&tokenizer).unwrap();
    for turns in conversations() {
        let expected = jinja(&template, &turns);
        assert_eq!(ChatTemplate::render_text(&turns), expected, "{turns:?}");
        let ids = chat.render(&tokenizer, &turns).unwrap();
        assert_eq!(tokenizer.decode(&ids).unwrap(), expected, "{turns:?}");
        // Control tokens only where the template puts them: one <|im_start|> per turn
        // (plus the default system turn and the generation prompt).
        let starts = ids.iter().filter(|&&id| id == chat.im_start()).count();
        let system_added = usize::from(turns.first().map(|t| t.role) != Some(TurnRole::System));
        assert_eq!(starts, turns.len() + system_added + 1, "{turns:?}");
    }
}

#[test]
fn the_template_the_model_ships_is_the_one_implemented() {
    let (template, _) = shipped();
    assert_eq!(template, agentbus_local::template::SHIPPED_TEMPLATE);
}
