//! Inference: the quantised llama weights on the CPU with candle, token by token.
//!
//! [`LocalModel`] is synchronous and CPU-bound: run it on a blocking thread
//! ([`crate::provider`] does). candle spreads each matrix product over its own thread
//! pool, sized by `CANDLE_NUM_THREADS`/`RAYON_NUM_THREADS` or else the number of physical
//! cores; on a machine whose cores are busy, set it to the number of free ones (a busy
//! core collapses throughput).

use std::fs::File;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_llama::{MAX_SEQ_LEN, ModelWeights};

use crate::convert::ensure_q8;
use crate::error::{LocalError, Result};
use crate::home::ModelDir;
use crate::pull::verify;
use crate::spec::ModelSpec;
use crate::template::{ChatTemplate, Turn};
use crate::tokenizer::GgufTokenizer;

/// How many threads candle's CPU kernels use: `CANDLE_NUM_THREADS`, else
/// `RAYON_NUM_THREADS`, else the number of physical cores.
pub fn inference_threads() -> usize {
    std::env::var("CANDLE_NUM_THREADS")
        .ok()
        .and_then(|value| value.parse().ok())
        .filter(|&threads: &usize| threads > 0)
        .unwrap_or_else(candle_core::utils::get_num_threads)
}

/// How to sample. The default is greedy (the most likely token every time): this small
/// model degrades quickly when sampled hot.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerationParams {
    /// At most this many tokens are generated.
    pub max_tokens: usize,
    /// Sampling temperature; `None` or `<= 0` is greedy.
    pub temperature: Option<f64>,
    /// Nucleus sampling: keep the most likely tokens whose probabilities add up to `top_p`.
    pub top_p: Option<f64>,
    /// The sampling seed: the same seed, prompt and parameters give the same tokens.
    /// `None` picks a random seed (irrelevant when greedy).
    pub seed: Option<u64>,
}

impl Default for GenerationParams {
    fn default() -> Self {
        Self {
            max_tokens: 512,
            temperature: None,
            top_p: None,
            seed: None,
        }
    }
}

impl GenerationParams {
    fn sampling(&self) -> Sampling {
        match self.temperature {
            Some(temperature) if temperature > 0.0 => match self.top_p {
                Some(p) if p > 0.0 && p < 1.0 => Sampling::TopP { p, temperature },
                _ => Sampling::All { temperature },
            },
            _ => Sampling::ArgMax,
        }
    }

    fn seed(&self) -> u64 {
        self.seed.unwrap_or_else(|| {
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(Instant::now())
        })
    }
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The model ended its turn (`<|im_end|>` or another control token).
    EndOfTurn,
    /// `max_tokens` or the context size was reached.
    Length,
    /// The caller asked to stop.
    Cancelled,
}

impl StopReason {
    /// The reason as the provider contract spells it (`stop`, `length`, `cancelled`).
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::EndOfTurn => "stop",
            StopReason::Length => "length",
            StopReason::Cancelled => "cancelled",
        }
    }
}

/// What one generation did and how long it took.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// The generated text.
    pub text: String,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated (the control token that ended the turn is not counted).
    pub completion_tokens: usize,
    /// Why it stopped.
    pub stop: StopReason,
    /// From the call to the first token sampled: prompt processing plus one sampling.
    pub time_to_first_token: Duration,
    /// From the first token sampled to the last.
    pub decode_time: Duration,
}

impl Generation {
    /// Prompt tokens processed per second (over the time to first token).
    pub fn prompt_tokens_per_second(&self) -> f64 {
        self.prompt_tokens as f64 / self.time_to_first_token.as_secs_f64().max(1e-9)
    }

    /// Tokens generated per second after the first one.
    pub fn generation_tokens_per_second(&self) -> f64 {
        let decoded = self.completion_tokens.saturating_sub(1);
        if decoded == 0 {
            return 0.0;
        }
        decoded as f64 / self.decode_time.as_secs_f64().max(1e-9)
    }
}

/// The embedded model: weights, tokenizer and chat template.
pub struct LocalModel {
    weights: ModelWeights,
    tokenizer: GgufTokenizer,
    template: ChatTemplate,
    context: usize,
    name: String,
    device: Device,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("name", &self.name)
            .field("context", &self.context)
            .field("tokenizer", &self.tokenizer)
            .finish_non_exhaustive()
    }
}

impl LocalModel {
    /// Loads `spec` from `dir`: verifies the pulled file, converts it to Q8_0 once
    /// ([`crate::convert`]) and loads the converted weights.
    ///
    /// Fails with [`LocalError::ModelMissing`] when the model was not pulled and
    /// [`LocalError::Corrupted`] when the file is not the expected one.
    pub fn load(dir: &ModelDir, spec: &ModelSpec) -> Result<Self> {
        verify(&dir.model_path(spec), spec)?;
        let q8 = ensure_q8(dir, spec)?;
        Self::load_file(&q8, spec.name)
    }

    /// Loads a llama-architecture GGUF file as it is, calling the model `name`.
    pub fn load_file(path: &Path, name: &str) -> Result<Self> {
        let device = Device::Cpu;
        let mut file =
            File::open(path).map_err(LocalError::io(format!("opening {}", path.display())))?;
        let content = gguf_file::Content::read(&mut file)
            .map_err(|error| error.with_path(path))
            .map_err(LocalError::candle("reading the GGUF header"))?;
        let tokenizer = GgufTokenizer::from_gguf(&content)?;
        let template = ChatTemplate::new(&tokenizer)?;
        let context = content
            .metadata
            .get("llama.context_length")
            .and_then(|value| value.to_u32().ok())
            .map_or(MAX_SEQ_LEN, |length| (length as usize).min(MAX_SEQ_LEN));
        let weights = ModelWeights::from_gguf(content, &mut file, &device)
            .map_err(LocalError::candle(format!("loading {}", path.display())))?;
        tracing::debug!(
            model = name,
            threads = inference_threads(),
            context,
            "local model loaded"
        );
        Ok(Self {
            weights,
            tokenizer,
            template,
            context,
            name: name.to_owned(),
            device,
        })
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &GgufTokenizer {
        &self.tokenizer
    }

    /// The chat template.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// How many tokens (prompt and generated) fit in one conversation.
    pub fn context_size(&self) -> usize {
        self.context
    }

    /// The prompt token ids for `turns` in the chat template.
    pub fn prompt(&self, turns: &[Turn]) -> Result<Vec<u32>> {
        self.template.render(&self.tokenizer, turns)
    }

    /// Generates the assistant's answer to `prompt` (token ids from [`Self::prompt`]).
    ///
    /// Each generation is a new conversation: the KV cache is cleared first. `on_text` is
    /// called with each decoded piece of text as soon as it is complete UTF-8 (a token
    /// may end inside a character; its bytes then arrive with the next piece); returning
    /// [`ControlFlow::Break`] stops generation with [`StopReason::Cancelled`].
    pub fn generate(
        &mut self,
        prompt: &[u32],
        params: &GenerationParams,
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation> {
        let started = Instant::now();
        if prompt.is_empty() || prompt.len() >= self.context {
            return Err(LocalError::ContextTooLong {
                prompt_tokens: prompt.len(),
                context: self.context,
            });
        }
        self.weights.clear_kv_cache();
        let mut sampler = LogitsProcessor::from_sampling(params.seed(), params.sampling());
        let mut decoder = self.tokenizer.inner().decode_stream(false);
        let mut text = String::new();
        let mut completion_tokens = 0usize;

        let mut next = step(&mut self.weights, &self.device, prompt, 0, &mut sampler)?;
        let time_to_first_token = started.elapsed();
        let first_token_at = Instant::now();
        let stop = loop {
            if next == self.template.im_end() || self.tokenizer.is_special(next) {
                break StopReason::EndOfTurn;
            }
            completion_tokens += 1;
            let piece = decoder
                .step(next)
                .map_err(|error| LocalError::Tokenizer(format!("decoding: {error}")))?;
            if let Some(piece) = piece {
                text.push_str(&piece);
                if on_text(&piece).is_break() {
                    break StopReason::Cancelled;
                }
            }
            if completion_tokens >= params.max_tokens
                || prompt.len() + completion_tokens >= self.context
            {
                break StopReason::Length;
            }
            let position = prompt.len() + completion_tokens - 1;
            next = step(
                &mut self.weights,
                &self.device,
                &[next],
                position,
                &mut sampler,
            )?;
        };
        Ok(Generation {
            text,
            prompt_tokens: prompt.len(),
            completion_tokens,
            stop,
            time_to_first_token,
            decode_time: first_token_at.elapsed(),
        })
    }
}

/// Feeds `tokens` at `position` and samples the next token.
fn step(
    weights: &mut ModelWeights,
    device: &Device,
    tokens: &[u32],
    position: usize,
    sampler: &mut LogitsProcessor,
) -> Result<u32> {
    let input = Tensor::new(tokens, device)
        .and_then(|input| input.unsqueeze(0))
        .map_err(LocalError::candle("preparing the input"))?;
    weights
        .forward(&input, position)
        .and_then(|logits| logits.squeeze(0))
        .and_then(|logits| sampler.sample(&logits))
        .map_err(LocalError::candle("running the model"))
}
