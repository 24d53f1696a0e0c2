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

use crate::constraint::ConstraintEnv;
use crate::convert::ensure_q8;
use crate::error::{LocalError, Result};
use crate::home::ModelDir;
use crate::llama::{KvCache, Llama};
use crate::prefix_cache::PrefixCacheDir;
use crate::pull::verify;
use crate::repetition::RepetitionGuard;
use crate::spec::ModelSpec;
use crate::template::{ChatTemplate, Prompt, SHIPPED_TEMPLATE, Turn};
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

/// The environment variable that bounds how long candle's worker threads spin after a
/// quantised matrix product before they park.
pub const SPIN_LIMIT_ENV: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";

/// The spin limit agentbus's binaries set when the environment does not: candle's default
/// (25,000 spins after every quantised product) keeps a core busy while the f32 matrix
/// products of a prompt ([`crate::llama`]) need it, which cut prompt processing from
/// 450–600 to ~370 tokens/s on an 800-token prompt on a 2-core machine. Generation speed
/// is the same either way.
pub const DEFAULT_SPIN_LIMIT: &str = "1000";

/// Sets [`SPIN_LIMIT_ENV`] to [`DEFAULT_SPIN_LIMIT`] unless it is set.
///
/// # Safety
///
/// Changes the process environment: call it before any other thread may read or write
/// the environment (at the top of `main`).
pub unsafe fn set_default_spin_limit() {
    if std::env::var_os(SPIN_LIMIT_ENV).is_none() {
        // SAFETY: the caller guarantees no other thread uses the environment.
        unsafe { std::env::set_var(SPIN_LIMIT_ENV, DEFAULT_SPIN_LIMIT) };
    }
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
    /// What stops degenerate loops ([`RepetitionGuard`]; on by default).
    pub repetition: RepetitionGuard,
}

impl Default for GenerationParams {
    fn default() -> Self {
        Self {
            max_tokens: 512,
            temperature: None,
            top_p: None,
            seed: None,
            repetition: RepetitionGuard::default(),
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
    /// The repetition guard found a loop ([`RepetitionGuard`]).
    Repetition,
    /// The constraint was satisfied and allows nothing more (a complete tool call).
    Constraint,
}

impl StopReason {
    /// The reason as the provider contract spells it (`stop`, `length`, `cancelled`).
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::EndOfTurn => "stop",
            StopReason::Length => "length",
            StopReason::Cancelled => "cancelled",
            StopReason::Repetition => "repetition",
            StopReason::Constraint => "stop",
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
    /// Prompt tokens whose KV cache was reused from an earlier request (a cached
    /// prefix); only the others were processed.
    pub cached_prompt_tokens: usize,
    /// Tokens generated (the control token that ended the turn is not counted).
    pub completion_tokens: usize,
    /// Why it stopped.
    pub stop: StopReason,
    /// From the call to the first token sampled: prompt processing plus one sampling.
    pub time_to_first_token: Duration,
    /// From the first token sampled to the last.
    pub decode_time: Duration,
    /// Time spent computing the constraint's token masks (zero without a constraint).
    pub mask_time: Duration,
    /// Steps for which a constraint mask was computed.
    pub masked_steps: usize,
}

impl Generation {
    /// Prompt tokens processed per second (over the time to first token; tokens
    /// reused from a cached prefix are not counted).
    pub fn prompt_tokens_per_second(&self) -> f64 {
        (self.prompt_tokens - self.cached_prompt_tokens) as f64
            / self.time_to_first_token.as_secs_f64().max(1e-9)
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
    weights: Llama,
    /// The keys and values of the positions processed so far.
    cache: KvCache,
    tokenizer: GgufTokenizer,
    template: ChatTemplate,
    context: usize,
    name: String,
    device: Device,
    /// Model states (KV caches) after known token prefixes, with the logits that
    /// followed, newest last; see [`LocalModel::generate_with`].
    snapshots: Vec<Snapshot>,
    /// The vocabulary indexed for constrained decoding, built on first use.
    constraint_env: Option<ConstraintEnv>,
    /// Where prompt prefixes' KV caches are kept across processes (`None`: not kept).
    prefix_store: Option<PrefixCacheDir>,
}

/// The model's state after `tokens`: its KV cache (whose tensors are shared, not
/// copied) and the logits for the next token.
#[derive(Clone)]
struct Snapshot {
    tokens: Vec<u32>,
    cache: KvCache,
    logits: Vec<f32>,
}

/// How many prefix snapshots are kept (the fixed system prefix and the last prompts).
const MAX_SNAPSHOTS: usize = 3;

/// Restricts which tokens may come next: constrained decoding ([`crate::constraint`]).
pub trait TokenConstraint {
    /// Sets the logits of the tokens not allowed next to negative infinity. Returns
    /// `false` when nothing more is allowed (the constrained output is complete).
    fn mask(&mut self, logits: &mut [f32]) -> Result<bool>;
    /// Records that `token` was chosen.
    fn commit(&mut self, token: u32) -> Result<()>;
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
        let mut model = Self::load_file(&q8, spec.name)?;
        // The pulled file's hash names the weights; the Q8_0 copy is made from it.
        let weights = format!("{}/{}", spec.sha256, spec.q8_file_name());
        model.prefix_store = Some(PrefixCacheDir::new(
            dir.prefix_cache_path(),
            spec.name,
            &weights,
        ));
        Ok(model)
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
        let shipped = content
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|value| value.to_string().ok());
        if shipped.map(String::as_str) != Some(SHIPPED_TEMPLATE) {
            tracing::warn!(
                model = name,
                "the model's chat template is not SmolLM2's; prompts are built with SmolLM2's ChatML template"
            );
        }
        let weights = Llama::from_gguf(&content, &mut file, &device)
            .map_err(LocalError::candle(format!("loading {}", path.display())))?;
        let context = weights.shape().context;
        tracing::debug!(
            model = name,
            threads = inference_threads(),
            context,
            "local model loaded"
        );
        Ok(Self {
            weights,
            cache: KvCache::default(),
            tokenizer,
            template,
            context,
            name: name.to_owned(),
            device,
            snapshots: Vec::new(),
            constraint_env: None,
            prefix_store: None,
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

    /// The prompt for `turns` with its fixed prefix marked (see
    /// [`ChatTemplate::render_prompt`]).
    pub fn render_prompt(&self, turns: &[Turn]) -> Result<Prompt> {
        self.template.render_prompt(&self.tokenizer, turns)
    }

    /// The vocabulary indexed for constrained decoding ([`crate::constraint`]), built on
    /// first use and kept.
    pub fn constraint_env(&mut self) -> Result<ConstraintEnv> {
        if let Some(env) = &self.constraint_env {
            return Ok(env.clone());
        }
        let env = ConstraintEnv::new(&self.tokenizer, self.template.im_end())?;
        self.constraint_env = Some(env.clone());
        Ok(env)
    }

    /// Forgets the cached prefixes held in memory (the next generation processes its
    /// whole prompt unless its prefix is kept on disk: see [`Self::set_prefix_store`]).
    pub fn clear_prefix_cache(&mut self) {
        self.snapshots.clear();
    }

    /// Where prompt prefixes' KV caches are kept across processes: by default, for a
    /// model loaded with [`Self::load`], under the model directory
    /// ([`ModelDir::prefix_cache_path`]); `None` keeps them in memory only.
    pub fn set_prefix_store(&mut self, store: Option<PrefixCacheDir>) {
        self.prefix_store = store;
    }

    /// Generates the assistant's answer to `prompt` (token ids from [`Self::prompt`]),
    /// unconstrained; see [`Self::generate_with`].
    pub fn generate(
        &mut self,
        prompt: &[u32],
        params: &GenerationParams,
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation> {
        let prompt = Prompt {
            ids: prompt.to_vec(),
            prefix_len: 0,
        };
        self.generate_with(&prompt, params, None, on_text)
    }

    /// Generates the assistant's answer to `prompt`, each token allowed by `constraint`
    /// when there is one.
    ///
    /// The prompt's KV cache is reused where an earlier prompt started the same way: the
    /// model keeps its state after the fixed prefix ([`Prompt::prefix_len`]) and after the
    /// last prompts, so a request that extends one of them (the next iteration of an
    /// agent run, another question after the same system prompt and tools) processes only
    /// the tokens after it ([`Generation::cached_prompt_tokens`]). `on_text` is called
    /// with each decoded piece of text as soon as it is complete UTF-8 (a token may end
    /// inside a character; its bytes then arrive with the next piece); returning
    /// [`ControlFlow::Break`] stops generation with [`StopReason::Cancelled`].
    pub fn generate_with(
        &mut self,
        prompt: &Prompt,
        params: &GenerationParams,
        mut constraint: Option<&mut dyn TokenConstraint>,
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation> {
        let started = Instant::now();
        let ids = &prompt.ids;
        if ids.is_empty() || ids.len() >= self.context {
            return Err(LocalError::ContextTooLong {
                prompt_tokens: ids.len(),
                context: self.context,
            });
        }
        let (mut logits, cached_prompt_tokens) = self.prefill(ids, prompt.prefix_len)?;
        let mut sampler = LogitsProcessor::from_sampling(params.seed(), params.sampling());
        let mut decoder = self.tokenizer.inner().decode_stream(false);
        let mut text = String::new();
        let mut generated: Vec<u32> = Vec::new();
        let mut mask_time = Duration::ZERO;
        let mut masked_steps = 0usize;
        let mut time_to_first_token = None;
        let mut first_token_at = Instant::now();

        let stop = loop {
            params.repetition.penalise(&mut logits, &generated);
            if let Some(constraint) = constraint.as_deref_mut() {
                let mask_started = Instant::now();
                let open = constraint.mask(&mut logits)?;
                mask_time += mask_started.elapsed();
                masked_steps += 1;
                if !open {
                    break StopReason::Constraint;
                }
            }
            let next = sample(&mut sampler, &self.device, logits)?;
            if time_to_first_token.is_none() {
                time_to_first_token = Some(started.elapsed());
                first_token_at = Instant::now();
            }
            if let Some(constraint) = constraint.as_deref_mut() {
                constraint.commit(next)?;
            }
            if next == self.template.im_end() || self.tokenizer.is_special(next) {
                break StopReason::EndOfTurn;
            }
            generated.push(next);
            let piece = decoder
                .step(next)
                .map_err(|error| LocalError::Tokenizer(format!("decoding: {error}")))?;
            if let Some(piece) = piece {
                text.push_str(&piece);
                if on_text(&piece).is_break() {
                    break StopReason::Cancelled;
                }
            }
            if params.repetition.loop_period(&generated).is_some() {
                break StopReason::Repetition;
            }
            if generated.len() >= params.max_tokens || ids.len() + generated.len() >= self.context {
                break StopReason::Length;
            }
            logits = self
                .weights
                .forward(&[next], &mut self.cache)
                .map_err(LocalError::candle("running the model"))?;
        };
        Ok(Generation {
            text,
            prompt_tokens: ids.len(),
            cached_prompt_tokens,
            completion_tokens: generated.len(),
            stop,
            time_to_first_token: time_to_first_token.unwrap_or_else(|| started.elapsed()),
            decode_time: first_token_at.elapsed(),
            mask_time,
            masked_steps,
        })
    }

    /// Brings the model to the state after `ids` and returns the logits that follow,
    /// reusing the longest snapshot that `ids` extends; snapshots the state after the
    /// fixed prefix (`prefix_len` tokens) and after the whole prompt. Returns the logits
    /// and how many tokens were reused.
    fn prefill(&mut self, ids: &[u32], prefix_len: usize) -> Result<(Vec<f32>, usize)> {
        let best = self
            .snapshots
            .iter()
            .enumerate()
            .filter(|(_, snapshot)| ids.starts_with(&snapshot.tokens))
            .max_by_key(|(_, snapshot)| snapshot.tokens.len())
            .map(|(index, _)| index);
        let (mut done, mut logits) = match best {
            Some(index) => {
                let snapshot = self.snapshots.remove(index);
                self.cache = snapshot.cache.clone();
                let reused = (snapshot.tokens.len(), snapshot.logits.clone());
                // Most recently used last.
                self.snapshots.push(snapshot);
                reused
            }
            None => {
                self.cache = KvCache::default();
                (0, Vec::new())
            }
        };
        let mut reused = done;
        if prefix_len > done && prefix_len < ids.len() {
            let prefix = &ids[..prefix_len];
            if let Some((cache, stored)) = self.load_prefix(prefix) {
                self.cache = cache;
                logits = stored;
                reused = prefix_len;
            } else {
                logits = self.forward(&ids[done..prefix_len])?;
                self.save_prefix(prefix, &logits);
            }
            done = prefix_len;
            self.remember(prefix, &logits);
        }
        if done < ids.len() {
            logits = self.forward(&ids[done..])?;
            self.remember(ids, &logits);
        }
        Ok((logits, reused))
    }

    /// The KV cache and logits after `prefix` from the prefix store, if it holds them.
    fn load_prefix(&self, prefix: &[u32]) -> Option<(KvCache, Vec<f32>)> {
        let store = self.prefix_store.as_ref()?;
        match store.load(prefix, self.weights.shape(), &self.device) {
            Ok(Ok(found)) => Some(found),
            Ok(Err(_)) => None,
            Err(error) => {
                tracing::warn!(%error, "reading the prefix cache");
                None
            }
        }
    }

    /// Keeps the current KV cache (which holds exactly `prefix`) in the prefix store. A
    /// failure costs only speed: it is logged.
    fn save_prefix(&self, prefix: &[u32], logits: &[f32]) {
        if let Some(store) = &self.prefix_store
            && let Err(error) = store.save(prefix, self.weights.shape(), &self.cache, logits)
        {
            tracing::warn!(%error, "keeping the prefix cache");
        }
    }

    /// Feeds `tokens` after the cached positions and returns the logits that follow.
    fn forward(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        self.weights
            .forward(tokens, &mut self.cache)
            .map_err(LocalError::candle("running the model"))
    }

    /// Keeps the current state as the snapshot after `tokens`.
    fn remember(&mut self, tokens: &[u32], logits: &[f32]) {
        self.snapshots.retain(|snapshot| snapshot.tokens != tokens);
        if self.snapshots.len() >= MAX_SNAPSHOTS {
            self.snapshots.remove(0);
        }
        self.snapshots.push(Snapshot {
            tokens: tokens.to_vec(),
            cache: self.cache.clone(),
            logits: logits.to_vec(),
        });
    }
}

/// Samples the next token from `logits` (some may be negative infinity: not allowed).
fn sample(sampler: &mut LogitsProcessor, device: &Device, logits: Vec<f32>) -> Result<u32> {
    if !logits.iter().any(|logit| logit.is_finite()) {
        return Err(LocalError::Constraint(
            "no token is allowed next (the constraint left the sampler nothing)".to_owned(),
        ));
    }
    let length = logits.len();
    Tensor::from_vec(logits, length, device)
        .and_then(|logits| sampler.sample(&logits))
        .map_err(LocalError::candle("sampling"))
}
