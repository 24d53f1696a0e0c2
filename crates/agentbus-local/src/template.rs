//! The model's chat template (ChatML), rendered straight to token ids.
//!
//! SmolLM2's template (from the GGUF's `tokenizer.chat_template`) is:
//!
//! ```text
//! <|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n
//! <|im_start|>user\n{content}<|im_end|>\n
//! <|im_start|>assistant\n
//! ```
//!
//! with the default system message only when the conversation does not start with one.
//! `<|im_start|>` and `<|im_end|>` are inserted by id; the text between them is encoded
//! with [`GgufTokenizer::encode`], which never produces control tokens, so message
//! content cannot inject them. Each stretch between two control tokens is encoded as
//! one piece, exactly as llama.cpp tokenises a rendered template.

use crate::error::{LocalError, Result};
use crate::tokenizer::GgufTokenizer;

/// The Jinja chat template SmolLM2-135M-Instruct ships (`tokenizer.chat_template` in its
/// GGUF and tokenizer configuration), which [`ChatTemplate`] implements. A model whose
/// template differs gets a warning at load ([`crate::LocalModel::load_file`]).
pub const SHIPPED_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// The system message SmolLM2's template adds when the conversation has none.
pub const DEFAULT_SYSTEM_PROMPT: &str =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// Who speaks in a turn of the template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TurnRole {
    /// Instructions.
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

impl TurnRole {
    /// The role's name in the template.
    pub fn as_str(self) -> &'static str {
        match self {
            TurnRole::System => "system",
            TurnRole::User => "user",
            TurnRole::Assistant => "assistant",
            TurnRole::Tool => "tool",
        }
    }
}

/// One message of the conversation, as the template sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    /// Who speaks.
    pub role: TurnRole,
    /// What they say (plain text; control-token spellings stay text).
    pub content: String,
}

impl Turn {
    /// A turn of `role` saying `content`.
    pub fn new(role: TurnRole, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// A rendered prompt: its token ids, and how many of them are the fixed prefix (the
/// system turn).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    /// The token ids, ending with the opening of the assistant's turn.
    pub ids: Vec<u32>,
    /// The first `prefix_len` ids are the system turn (through its `<|im_end|>\n`).
    pub prefix_len: usize,
}

/// Renders conversations to prompt token ids.
#[derive(Clone, Debug)]
pub struct ChatTemplate {
    im_start: u32,
    im_end: u32,
}

impl ChatTemplate {
    /// The template for `tokenizer`, whose vocabulary must have `<|im_start|>` and
    /// `<|im_end|>` as control tokens.
    pub fn new(tokenizer: &GgufTokenizer) -> Result<Self> {
        let control = |token: &str| {
            tokenizer
                .token_id(token)
                .filter(|id| tokenizer.is_special(*id))
                .ok_or_else(|| {
                    LocalError::Tokenizer(format!(
                        "the vocabulary has no control token `{token}` (not a ChatML model)"
                    ))
                })
        };
        Ok(Self {
            im_start: control("<|im_start|>")?,
            im_end: control("<|im_end|>")?,
        })
    }

    /// The id of `<|im_start|>`.
    pub fn im_start(&self) -> u32 {
        self.im_start
    }

    /// The id of `<|im_end|>`, which ends the assistant's turn.
    pub fn im_end(&self) -> u32 {
        self.im_end
    }

    /// The prompt for `turns`, ending with the opening of the assistant's turn.
    pub fn render(&self, tokenizer: &GgufTokenizer, turns: &[Turn]) -> Result<Vec<u32>> {
        Ok(self.render_prompt(tokenizer, turns)?.ids)
    }

    /// The prompt for `turns` with the length of its fixed prefix: the system turn (the
    /// given one or the default), which stays the same from one request to the next and
    /// is worth caching ([`crate::LocalModel`] keeps its KV cache).
    pub fn render_prompt(&self, tokenizer: &GgufTokenizer, turns: &[Turn]) -> Result<Prompt> {
        let mut ids = Vec::new();
        let default_system;
        let turns_with_system: Vec<&Turn> = match turns.first() {
            Some(first) if first.role == TurnRole::System => turns.iter().collect(),
            _ => {
                default_system = Turn::new(TurnRole::System, DEFAULT_SYSTEM_PROMPT);
                std::iter::once(&default_system).chain(turns).collect()
            }
        };
        // Text between two control tokens is one piece: "{role}\n{content}", then "\n".
        let mut prefix_len = None;
        let mut pending = String::new();
        for turn in turns_with_system {
            if !pending.is_empty() {
                ids.extend(tokenizer.encode(&pending)?);
                prefix_len.get_or_insert(ids.len());
            }
            ids.push(self.im_start);
            ids.extend(tokenizer.encode(&format!("{}\n{}", turn.role.as_str(), turn.content))?);
            ids.push(self.im_end);
            pending = "\n".to_owned();
        }
        ids.extend(tokenizer.encode(&pending)?);
        let prefix_len = *prefix_len.get_or_insert(ids.len());
        ids.push(self.im_start);
        ids.extend(tokenizer.encode("assistant\n")?);
        Ok(Prompt { ids, prefix_len })
    }

    /// The rendered prompt as text, control tokens spelled out (for display and tests).
    pub fn render_text(turns: &[Turn]) -> String {
        let mut text = String::new();
        if turns.first().map(|turn| turn.role) != Some(TurnRole::System) {
            text.push_str(&format!(
                "<|im_start|>system\n{DEFAULT_SYSTEM_PROMPT}<|im_end|>\n"
            ));
        }
        for turn in turns {
            text.push_str(&format!(
                "<|im_start|>{}\n{}<|im_end|>\n",
                turn.role.as_str(),
                turn.content
            ));
        }
        text.push_str("<|im_start|>assistant\n");
        text
    }
}
