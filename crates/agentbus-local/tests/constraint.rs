//! Constrained decoding, property-tested over the model's own vocabulary: for random tool
//! schemas (nested objects, arrays, enums with escapes, bounded integers, strings), a
//! random walk that picks any token the constraint allows always ends in a tool call that
//! parses and validates against its schema, and the constraint never leaves nothing to
//! pick. Skips with a note when the model is not pulled (its tokenizer is needed).

mod common;

use common::model_pulled;
use std::sync::OnceLock;

use agentbus_llm::{ToolChoice, ToolDefinition};
use agentbus_local::constraint::{ConstraintEnv, ToolCallConstraint};
use agentbus_local::template::ChatTemplate;
use agentbus_local::tokenizer::GgufTokenizer;
use agentbus_local::tool_calls::{CLOSE_TAG, OPEN_TAG};
use agentbus_local::{DEFAULT_MODEL, ModelDir, TokenConstraint};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// The tokenizer and the constraint environment over its vocabulary, built once.
fn vocabulary() -> &'static (GgufTokenizer, ConstraintEnv, u32) {
    static VOCABULARY: OnceLock<(GgufTokenizer, ConstraintEnv, u32)> = OnceLock::new();
    VOCABULARY.get_or_init(|| {
        let dir = ModelDir::from_env().unwrap();
        let mut file = std::fs::File::open(dir.model_path(DEFAULT_MODEL)).unwrap();
        let content = candle_core::quantized::gguf_file::Content::read(&mut file).unwrap();
        let tokenizer = GgufTokenizer::from_gguf(&content).unwrap();
        let end = ChatTemplate::new(&tokenizer).unwrap().im_end();
        let env = ConstraintEnv::new(&tokenizer, end).unwrap();
        (tokenizer, env, end)
    })
}

fn text() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "plain",
        "a \"quoted\" word",
        "back\\slash",
        "tab\there",
        "new\nline",
        "ünïcödé",
        "",
    ])
    .prop_map(str::to_owned)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..8).prop_map(|max| json!({"type": "string", "maxLength": max})),
        (-50i64..0, 0i64..500)
            .prop_map(|(min, max)| json!({"type": "integer", "minimum": min, "maximum": max})),
        Just(json!({"type": "boolean"})),
        prop::collection::vec(text(), 1..4)
            .prop_map(|values| json!({"type": "string", "enum": values})),
    ]
}

fn object(inner: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    let keys = prop::sample::subsequence(vec!["a", "b c", "quote\"d", "ünï", "e"], 1..4);
    (
        keys,
        prop::collection::vec(inner, 4),
        prop::collection::vec(any::<bool>(), 4),
    )
        .prop_map(|(keys, schemas, required)| {
            let mut properties = Map::new();
            let mut needed = Vec::new();
            for ((key, schema), required) in keys.iter().zip(schemas).zip(required) {
                properties.insert((*key).to_owned(), schema);
                if required {
                    needed.push(json!(key));
                }
            }
            // Closed, so that a random walk ends (an open object takes any key).
            json!({
                "type": "object",
                "properties": properties,
                "required": needed,
                "additionalProperties": false,
            })
        })
}

fn schema() -> impl Strategy<Value = Value> {
    let nested = leaf().prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_map(|items| json!({"type": "array", "items": items, "maxItems": 3})),
            object(inner),
        ]
    });
    object(nested)
}

/// Picks tokens the constraint allows, at random, until it allows nothing more; returns
/// the text.
fn random_walk(constraint: &mut ToolCallConstraint, seed: u64) -> String {
    let (tokenizer, _, end) = vocabulary();
    let vocab = tokenizer.inner().get_vocab_size(true);
    let mut state = seed | 1;
    let mut tokens = Vec::new();
    for _ in 0..4000 {
        let mut logits = vec![0f32; vocab];
        let open = constraint.mask(&mut logits).expect("a mask");
        if !open {
            return tokenizer.decode(&tokens).unwrap();
        }
        let allowed: Vec<u32> = (0..vocab as u32)
            .filter(|&token| logits[token as usize].is_finite())
            .collect();
        assert!(!allowed.is_empty(), "the constraint allowed no token");
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let token = allowed[(state % allowed.len() as u64) as usize];
        constraint
            .commit(token)
            .expect("an allowed token is accepted");
        if token == *end {
            return tokenizer.decode(&tokens).unwrap();
        }
        tokens.push(token);
    }
    panic!("no end after 4000 tokens: {:?}", tokenizer.decode(&tokens));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_constrained_call_parses_and_validates(schema in schema(), seed in any::<u64>()) {
        if !model_pulled() {
            return Ok(());
        }
        let (_, env, _) = vocabulary();
        let tools = vec![
            ToolDefinition { name: "probe".into(), description: "d".into(), parameters: schema.clone() },
            ToolDefinition { name: "other".into(), description: "d".into(), parameters: json!({"type": "object", "properties": {}}) },
        ];
        for choice in [ToolChoice::Required, ToolChoice::Tool("probe".into())] {
            let mut constraint =
                ToolCallConstraint::new(env.clone(), &tools, &choice, false).unwrap();
            let text = random_walk(&mut constraint, seed);
            let body = text
                .strip_prefix(OPEN_TAG)
                .and_then(|rest| rest.strip_suffix(CLOSE_TAG))
                .unwrap_or_else(|| panic!("not one call block: {text:?}"));
            let calls: Vec<Value> = serde_json::from_str(body)
                .unwrap_or_else(|error| panic!("{error}: {body}"));
            prop_assert_eq!(calls.len(), 1);
            let name = calls[0]["name"].as_str().unwrap();
            if let ToolChoice::Tool(named) = &choice {
                prop_assert_eq!(name, named.as_str());
            }
            let tool = tools.iter().find(|tool| tool.name == name).expect("an offered tool");
            let validator = jsonschema::validator_for(&tool.parameters).unwrap();
            let arguments = &calls[0]["arguments"];
            prop_assert!(
                validator.is_valid(arguments),
                "{} is not valid against {}", arguments, tool.parameters
            );
        }
    }
}

#[test]
fn auto_allows_text_and_none_allows_no_call() {
    if !model_pulled() {
        return;
    }
    let (tokenizer, env, _) = vocabulary();
    let tools = vec![ToolDefinition {
        name: "calculator".into(),
        description: "d".into(),
        parameters: json!({"type": "object", "properties": {"expression": {"type": "string"}}}),
    }];
    let first_allowed = |choice: ToolChoice| {
        let mut constraint = ToolCallConstraint::new(env.clone(), &tools, &choice, true).unwrap();
        let mut logits = vec![0f32; tokenizer.inner().get_vocab_size(true)];
        constraint.mask(&mut logits).unwrap();
        let allowed = |text: &str| {
            let ids = tokenizer.encode(text).unwrap();
            logits[ids[0] as usize].is_finite()
        };
        (allowed("Hello"), allowed("<tool_call>"))
    };
    assert_eq!(first_allowed(ToolChoice::Auto), (true, true));
    assert_eq!(first_allowed(ToolChoice::None), (true, false));
    assert_eq!(first_allowed(ToolChoice::Required), (false, true));
}
