//! The model's tokenizer, built from the GGUF file's own metadata.
//!
//! SmolLM2's GGUF declares `tokenizer.ggml.model = gpt2` with the `smollm` pre-tokenizer.
//! This builds the same tokenizer the model was trained with, using the `tokenizers`
//! crate: byte-level BPE from `tokenizer.ggml.tokens` and `tokenizer.ggml.merges`; a
//! pre-tokenizer that first splits every digit on its own, then applies the byte-level
//! (GPT-2) split without a prefix space; a byte-level decoder; and the tokens whose
//! `tokenizer.ggml.token_type` is 3 (control) as special tokens. No BOS is added.
//! (candle's own GGUF tokenizer does not know the `smollm` pre-tokenizer and gets most
//! strings wrong for this model.)
//!
//! Text is always encoded with special tokens treated as plain text: a user who types
//! `<|im_end|>` gets the characters, never the control token. Control tokens enter a
//! prompt only through [`crate::template`], by id.

use candle_core::quantized::gguf_file;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use crate::error::{LocalError, Result};

/// `tokenizer.ggml.token_type` of control tokens.
const CONTROL_TOKEN_TYPE: i32 = 3;

/// The tokenizer of a GGUF model, with its control tokens.
#[derive(Clone)]
pub struct GgufTokenizer {
    inner: Tokenizer,
    special_ids: Vec<u32>,
    eos_id: u32,
}

impl std::fmt::Debug for GgufTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufTokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("special_ids", &self.special_ids)
            .field("eos_id", &self.eos_id)
            .finish()
    }
}

fn metadata<'a>(content: &'a gguf_file::Content, key: &str) -> Result<&'a gguf_file::Value> {
    content
        .metadata
        .get(key)
        .ok_or_else(|| LocalError::Tokenizer(format!("the GGUF metadata has no `{key}`")))
}

fn string_array(content: &gguf_file::Content, key: &str) -> Result<Vec<String>> {
    let values = metadata(content, key)?
        .to_vec()
        .map_err(|error| LocalError::Tokenizer(format!("`{key}`: {error}")))?;
    values
        .iter()
        .map(|value| {
            value
                .to_string()
                .cloned()
                .map_err(|error| LocalError::Tokenizer(format!("`{key}`: {error}")))
        })
        .collect()
}

impl GgufTokenizer {
    /// Builds the tokenizer from a GGUF file's metadata.
    ///
    /// Fails when the file declares a tokenizer other than byte-level BPE (`gpt2`), or when
    /// the vocabulary, merges or token types are missing or malformed.
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self> {
        let model = metadata(content, "tokenizer.ggml.model")?
            .to_string()
            .map_err(|error| LocalError::Tokenizer(error.to_string()))?;
        if model != "gpt2" {
            return Err(LocalError::Tokenizer(format!(
                "tokenizer model `{model}` is not supported (only byte-level BPE, `gpt2`)"
            )));
        }
        let tokens = string_array(content, "tokenizer.ggml.tokens")?;
        let merges = string_array(content, "tokenizer.ggml.merges")?
            .into_iter()
            .map(|merge| match merge.split_once(' ') {
                Some((left, right)) => Ok((left.to_owned(), right.to_owned())),
                None => Err(LocalError::Tokenizer(format!(
                    "merge `{merge}` is not two tokens separated by a space"
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        let token_types = metadata(content, "tokenizer.ggml.token_type")?
            .to_vec()
            .map_err(|error| LocalError::Tokenizer(error.to_string()))?
            .iter()
            .map(|value| value.to_i32())
            .collect::<candle_core::Result<Vec<i32>>>()
            .map_err(|error| LocalError::Tokenizer(format!("token types: {error}")))?;
        if token_types.len() != tokens.len() {
            return Err(LocalError::Tokenizer(format!(
                "{} token types for {} tokens",
                token_types.len(),
                tokens.len()
            )));
        }
        let eos_id = metadata(content, "tokenizer.ggml.eos_token_id")?
            .to_u32()
            .map_err(|error| LocalError::Tokenizer(error.to_string()))?;

        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(id, token)| (token.clone(), id as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|error| LocalError::Tokenizer(format!("building the BPE model: {error}")))?;
        let mut inner = Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
        ])));
        inner.with_decoder(Some(ByteLevelDecoder::default()));

        let special_ids: Vec<u32> = token_types
            .iter()
            .enumerate()
            .filter(|(_, kind)| **kind == CONTROL_TOKEN_TYPE)
            .map(|(id, _)| id as u32)
            .collect();
        inner
            .add_special_tokens(
                special_ids
                    .iter()
                    .map(|&id| AddedToken::from(tokens[id as usize].clone(), true)),
            )
            .map_err(|error| LocalError::Tokenizer(error.to_string()))?;
        // Control tokens are never parsed out of text: see the module documentation.
        inner.set_encode_special_tokens(true);
        Ok(Self {
            inner,
            special_ids,
            eos_id,
        })
    }

    /// Encodes `text` as plain text: control-token spellings in it stay characters.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|error| LocalError::Tokenizer(format!("encoding: {error}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Decodes `ids` (control tokens included, spelled out).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|error| LocalError::Tokenizer(format!("decoding: {error}")))
    }

    /// The id of the token spelled exactly `token`, if the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The ids of the control tokens (`token_type` 3).
    pub fn special_ids(&self) -> &[u32] {
        &self.special_ids
    }

    /// Whether `id` is a control token.
    pub fn is_special(&self, id: u32) -> bool {
        self.special_ids.contains(&id)
    }

    /// The end-of-sequence id the GGUF declares.
    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    /// How many tokens the vocabulary has (added tokens included).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The `tokenizers` tokenizer, e.g. for streaming decoding.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}
