//! Constrained decoding: tool calls the embedded model cannot get wrong.
//!
//! With tools offered, each token the model may produce next is checked against a
//! grammar built from the request: either plain answer text, or a tool call in the
//! model's own format (`<tool_call>[{"name": "…", "arguments": {…}}]</tool_call>`) whose
//! name is one of the offered tools and whose arguments are JSON valid against that
//! tool's JSON Schema (types, required fields, enums, nested objects and arrays). With
//! tool choice `required` only a call is allowed; with a named tool, only a call of that
//! tool. Every other token's logit is set to negative infinity before sampling, so the
//! sampler can only pick a token that keeps the output valid.
//!
//! The grammar engine is [`llguidance`] (Microsoft's, maintained with the Guidance
//! project; MIT): an Earley parser over a lexer of regex derivatives, with JSON Schema
//! compiled to grammar rules, and a token trie over the model's own vocabulary so a mask
//! costs one walk of the trie (the cost per token is measured by `agentbus bench local`).
//! The grammar is written in llguidance's Lark dialect with `%json { schema }` for each
//! tool's arguments. `outlines-core` was evaluated too: it compiles a regex to a token
//! index up front (JSON Schema only through a regex of bounded nesting, no recursion, and
//! its tokenizer helpers fetch from the Hugging Face hub), which is a poorer fit for
//! "text or one of several calls" than llguidance's lazy grammar.

use std::sync::Arc;

use agentbus_llm::{ToolChoice, ToolDefinition};
use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{ApproximateTokEnv, TokEnv, TokRxInfo, TokTrie};
use llguidance::{Matcher, ParserFactory};
use serde_json::{Value, json};

use crate::engine::TokenConstraint;
use crate::error::{LocalError, Result};
use crate::tokenizer::GgufTokenizer;
use crate::tool_calls::{CLOSE_TAG, OPEN_TAG};

/// The model's vocabulary indexed for the grammar engine, built once per model (a few
/// tens of milliseconds) and shared by every request.
#[derive(Clone)]
pub struct ConstraintEnv {
    factory: Arc<ParserFactory>,
    vocab_size: usize,
    end_of_turn: u32,
}

impl std::fmt::Debug for ConstraintEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConstraintEnv")
            .field("vocab_size", &self.vocab_size)
            .field("end_of_turn", &self.end_of_turn)
            .finish_non_exhaustive()
    }
}

impl ConstraintEnv {
    /// Indexes `tokenizer`'s vocabulary; `end_of_turn` is the token that ends the
    /// model's answer (allowed once the grammar is complete).
    pub fn new(tokenizer: &GgufTokenizer, end_of_turn: u32) -> Result<Self> {
        let json = tokenizer.inner().to_string(false).map_err(|error| {
            LocalError::Constraint(format!("serialising the tokenizer: {error}"))
        })?;
        let json: Value = serde_json::from_str(&json).map_err(|error| {
            LocalError::Constraint(format!("reading the serialised tokenizer: {error}"))
        })?;
        let words = llguidance::token_bytes_from_tokenizer_json(&json)
            .map_err(|error| LocalError::Constraint(format!("token bytes: {error}")))?;
        let vocab_size = words.len();
        let info = TokRxInfo::new(vocab_size as u32, end_of_turn);
        let trie = TokTrie::from(&info, &words);
        let env: TokEnv = Arc::new(ApproximateTokEnv::new(trie));
        let mut factory = ParserFactory::new_simple(&env)
            .map_err(|error| LocalError::Constraint(format!("grammar engine: {error}")))?;
        factory.quiet();
        Ok(Self {
            factory: Arc::new(factory),
            vocab_size,
            end_of_turn,
        })
    }
}

/// Answer text: anything that does not begin like a call.
const TEXT_RULES: &str = "text: TEXT\nTEXT: /[^<](?s:.)*/\n";

/// The grammar (Lark) of what the model may answer with `tools` offered under `choice`:
/// text or calls (`auto`), calls only (`required`), calls of one tool (a named tool),
/// text that does not begin like a call (`none`: a small model otherwise writes a call
/// as text). `parallel` allows several calls in one block.
pub fn tool_call_grammar(
    tools: &[ToolDefinition],
    choice: &ToolChoice,
    parallel: bool,
) -> Result<String> {
    let allowed: Vec<&ToolDefinition> = match choice {
        ToolChoice::None => return Ok(format!("start: text\n{TEXT_RULES}")),
        ToolChoice::Tool(name) => tools.iter().filter(|tool| &tool.name == name).collect(),
        ToolChoice::Auto | ToolChoice::Required => tools.iter().collect(),
    };
    if allowed.is_empty() {
        return Err(LocalError::ToolChoice(format!(
            "tool choice `{choice}` allows none of the offered tools"
        )));
    }
    let mut lark = String::new();
    let start = match choice {
        ToolChoice::Auto => "start: calls | text\n",
        _ => "start: calls\n",
    };
    lark.push_str(start);
    lark.push_str(TEXT_RULES);
    let open = serde_json::to_string(&format!("{OPEN_TAG}[")).expect("a string");
    let close = serde_json::to_string(&format!("]{CLOSE_TAG}")).expect("a string");
    if parallel {
        lark.push_str(&format!("calls: {open} call (\", \" call)* {close}\n"));
    } else {
        lark.push_str(&format!("calls: {open} call {close}\n"));
    }
    let alternatives: Vec<String> = (0..allowed.len()).map(|i| format!("call_{i}")).collect();
    lark.push_str(&format!("call: {}\n", alternatives.join(" | ")));
    for (i, tool) in allowed.iter().enumerate() {
        let head = serde_json::to_string(&format!(
            "{{\"name\": {}, \"arguments\": ",
            serde_json::to_string(&tool.name).expect("a string")
        ))
        .expect("a string");
        lark.push_str(&format!("call_{i}: {head} args_{i} \"}}\"\n"));
        lark.push_str(&format!(
            "args_{i}: %json {}\n",
            arguments_schema(&tool.parameters)
        ));
    }
    Ok(lark)
}

/// A tool's parameters as the schema the grammar compiles: an object schema (a tool
/// without one takes an object), closed to undeclared properties unless it says
/// otherwise, with the output formatted as the model was trained to write it
/// (`{"key": value, ...}` on one line) and unknown keywords tolerated.
fn arguments_schema(parameters: &Value) -> Value {
    let mut schema = match parameters {
        Value::Object(map) if !map.is_empty() => Value::Object(map.clone()),
        _ => json!({"type": "object"}),
    };
    // A small model invents arguments ("argument1") where a tool takes none or names its
    // own: unless the schema says otherwise, only the declared properties are allowed.
    if let Value::Object(map) = &mut schema
        && !map.contains_key("additionalProperties")
    {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    schema["x-guidance"] = json!({
        "whitespace_flexible": false,
        "key_separator": ": ",
        "item_separator": ", ",
        "lenient": true,
    });
    schema
}

/// One request's constraint: the grammar of [`tool_call_grammar`] over the model's
/// vocabulary.
pub struct ToolCallConstraint {
    matcher: Matcher,
    env: ConstraintEnv,
}

impl std::fmt::Debug for ToolCallConstraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolCallConstraint")
            .field("env", &self.env)
            .finish_non_exhaustive()
    }
}

impl ToolCallConstraint {
    /// The constraint for `tools` under `choice` (see [`tool_call_grammar`]); fails when
    /// a tool's schema cannot be compiled or the choice allows no tool.
    pub fn new(
        env: ConstraintEnv,
        tools: &[ToolDefinition],
        choice: &ToolChoice,
        parallel: bool,
    ) -> Result<Self> {
        let lark = tool_call_grammar(tools, choice, parallel)?;
        Self::from_lark(env, &lark)
    }

    /// A constraint for any grammar in llguidance's Lark dialect.
    pub fn from_lark(env: ConstraintEnv, lark: &str) -> Result<Self> {
        let parser = env
            .factory
            .create_parser(TopLevelGrammar::from_lark(lark.to_owned()))
            .map_err(|error| LocalError::Constraint(format!("compiling the grammar: {error}")))?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(error) = matcher.get_error() {
            return Err(LocalError::Constraint(error));
        }
        Ok(Self { matcher, env })
    }

    /// The tokens allowed next, as a mask over the vocabulary (`true`: allowed).
    pub fn allowed(&mut self) -> Result<Vec<bool>> {
        let mask = self
            .matcher
            .compute_mask_or_eos()
            .map_err(|error| LocalError::Constraint(error.to_string()))?;
        Ok((0..self.env.vocab_size)
            .map(|token| mask.is_allowed(token as u32))
            .collect())
    }

    /// Whether the grammar is complete: only the end of the turn may follow.
    pub fn is_complete(&self) -> bool {
        self.matcher.is_stopped()
    }
}

impl TokenConstraint for ToolCallConstraint {
    fn mask(&mut self, logits: &mut [f32]) -> Result<bool> {
        if self.matcher.is_stopped() {
            return Ok(false);
        }
        let mask = self
            .matcher
            .compute_mask()
            .map_err(|error| LocalError::Constraint(error.to_string()))?;
        let mut any = false;
        let mut only_end = true;
        for (token, logit) in logits.iter_mut().enumerate() {
            if token < self.env.vocab_size && mask.is_allowed(token as u32) {
                any = true;
                only_end &= token as u32 == self.env.end_of_turn;
            } else {
                *logit = f32::NEG_INFINITY;
            }
        }
        if !any {
            return Err(LocalError::Constraint(
                "the grammar allows no token here".to_owned(),
            ));
        }
        // Complete (a closed call block): nothing but the end of the turn may follow.
        Ok(!only_end)
    }

    fn commit(&mut self, token: u32) -> Result<()> {
        if token == self.env.end_of_turn && self.matcher.is_accepting().unwrap_or(false) {
            return Ok(());
        }
        self.matcher
            .consume_token(token)
            .map_err(|error| LocalError::Constraint(error.to_string()))
    }
}
