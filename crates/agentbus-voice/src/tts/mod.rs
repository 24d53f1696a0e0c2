//! Text to speech: the [`Tts`] trait (text in, a stream of audio out) and
//! [`InstrumentedTts`], which publishes `plugin.tts_synthesis_start`, one
//! `plugin.tts_audio` per chunk (with the barge-in epoch), `plugin.tts_synthesis_complete`
//! (time to first byte, real-time factor) and `plugin.tts_error`.
//!
//! Engines: [`EspeakTts`] (the `espeak-ng` program, offline) and [`OpenAiTts`]
//! (`POST /v1/audio/speech`, streamed).

mod espeak;
mod openai;

use std::time::Duration;

use agentbus_events::tts::{
    TTSAudioEvent, TTSErrorEvent, TTSSynthesisCompleteEvent, TTSSynthesisStartEvent,
};
pub use espeak::EspeakTts;
use futures::stream::{BoxStream, StreamExt};
pub use openai::{OPENAI_PCM_RATE, OpenAiTts};

use crate::audio::AudioFrame;
use crate::clock::{SharedClock, millis};
use crate::error::{Result, VoiceError};
use crate::publish::{Emitter, error_fields};

/// A text-to-speech engine: streams the audio of a text as it is synthesised.
pub trait Tts: Send + Sync {
    /// The engine's name (the events' `plugin_name`).
    fn name(&self) -> &str;
    /// The voice, when there is a choice.
    fn voice(&self) -> Option<String> {
        None
    }
    /// The model, when there is one.
    fn model_name(&self) -> Option<String> {
        None
    }
    /// The audio of `text`, chunk by chunk, as it is produced. Dropping the stream stops
    /// the synthesis.
    fn synthesize(&self, text: &str) -> BoxStream<'static, Result<AudioFrame>>;
}

/// The figures of one finished synthesis.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SynthesisReport {
    /// From the request to the first audio.
    pub time_to_first_byte: Option<Duration>,
    /// From the request to the last audio.
    pub synthesis_time: Duration,
    /// The length of the audio.
    pub audio: Duration,
    /// `synthesis_time / audio`.
    pub real_time_factor: Option<f64>,
    /// How many chunks.
    pub chunks: u64,
}

/// A [`Tts`] engine whose work is published and timed.
pub struct InstrumentedTts {
    engine: std::sync::Arc<dyn Tts>,
    emitter: Emitter,
    clock: SharedClock,
}

impl std::fmt::Debug for InstrumentedTts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentedTts")
            .field("engine", &self.engine.name())
            .finish_non_exhaustive()
    }
}

/// What the stream carries: audio as it comes, then the report.
#[derive(Clone, Debug, PartialEq)]
pub enum SynthesisItem {
    /// A chunk of audio.
    Audio(AudioFrame),
    /// The synthesis finished (after its last chunk).
    Done(SynthesisReport),
}

struct State {
    inner: BoxStream<'static, Result<AudioFrame>>,
    emitter: Emitter,
    clock: SharedClock,
    text: String,
    id: String,
    started: Duration,
    first: Option<Duration>,
    /// The last chunk's event, held until the next chunk tells whether it was final.
    held: Option<TTSAudioEvent>,
    speech_ended: Option<Duration>,
    chunks: u64,
    bytes: u64,
    audio: Duration,
    done: bool,
}

impl State {
    async fn flush_held(&mut self, is_final: bool) {
        if let Some(mut event) = self.held.take() {
            event.is_final_chunk = is_final;
            self.emitter.emit(event).await;
        }
    }
}

impl InstrumentedTts {
    /// Wraps `engine`; events go through `emitter` under the engine's name.
    pub fn new(engine: std::sync::Arc<dyn Tts>, emitter: Emitter, clock: SharedClock) -> Self {
        let emitter = emitter.renamed(engine.name().to_owned());
        Self {
            engine,
            emitter,
            clock,
        }
    }

    /// The engine's name.
    pub fn name(&self) -> &str {
        self.engine.name()
    }

    /// Synthesises `text`: audio chunks as they come, then [`SynthesisItem::Done`]. The
    /// events carry the epoch current when the synthesis started. Dropping the stream
    /// stops the engine; nothing more is published.
    pub async fn synthesize(&self, text: &str) -> BoxStream<'static, Result<SynthesisItem>> {
        self.synthesize_after(text, None).await
    }

    /// [`synthesize`](Self::synthesize), for a reply to speech that ended at
    /// `speech_ended` (on the wrapper's clock): the first chunk's event then carries
    /// `voice_to_voice_ms` in its `user_metadata` (end of user speech → first reply audio).
    pub async fn synthesize_after(
        &self,
        text: &str,
        speech_ended: Option<Duration>,
    ) -> BoxStream<'static, Result<SynthesisItem>> {
        let id = uuid::Uuid::new_v4().to_string();
        let emitter = self.emitter.clone();
        emitter
            .emit(TTSSynthesisStartEvent {
                meta: emitter.meta(),
                plugin: emitter.plugin(),
                text: Some(text.to_owned()),
                synthesis_id: id.clone(),
                model_name: self.engine.model_name(),
                voice_id: self.engine.voice(),
                estimated_duration_ms: None,
            })
            .await;
        let state = State {
            inner: self.engine.synthesize(text),
            emitter,
            clock: self.clock.clone(),
            text: text.to_owned(),
            id,
            started: self.clock.now(),
            first: None,
            held: None,
            speech_ended,
            chunks: 0,
            bytes: 0,
            audio: Duration::ZERO,
            done: false,
        };
        futures::stream::unfold(state, |mut state| async move {
            if state.done {
                return None;
            }
            match state.inner.next().await {
                Some(Ok(frame)) => {
                    let now = state.clock.now();
                    state.first.get_or_insert(now);
                    state.flush_held(false).await;
                    state.bytes += frame.samples.len() as u64 * 2;
                    state.audio += frame.duration();
                    let meta = match state.speech_ended.take() {
                        Some(ended) if state.chunks == 0 => state.emitter.meta_with([(
                            agentbus_events::tts::VOICE_TO_VOICE_MS,
                            millis(now.saturating_sub(ended)).into(),
                        )]),
                        _ => state.emitter.meta(),
                    };
                    state.held = Some(TTSAudioEvent {
                        meta,
                        plugin: state.emitter.plugin(),
                        data: Some(frame.to_pcm_data()),
                        chunk_index: state.chunks,
                        is_final_chunk: false,
                        text_source: Some(state.text.clone()),
                        synthesis_id: Some(state.id.clone()),
                        epoch: state.emitter.epoch().get(),
                    });
                    state.chunks += 1;
                    Some((Ok(SynthesisItem::Audio(frame)), state))
                }
                Some(Err(error)) => {
                    state.done = true;
                    state.flush_held(true).await;
                    state
                        .emitter
                        .emit(TTSErrorEvent {
                            meta: state.emitter.meta(),
                            plugin: state.emitter.plugin(),
                            failure: error_fields(&error, "synthesis"),
                            text_source: Some(state.text.clone()),
                            synthesis_id: Some(state.id.clone()),
                            is_recoverable: error.is_recoverable(),
                        })
                        .await;
                    Some((Err(error), state))
                }
                None => {
                    state.done = true;
                    state.flush_held(true).await;
                    let total = state.clock.now().saturating_sub(state.started);
                    let report = SynthesisReport {
                        time_to_first_byte: state.first.map(|t| t.saturating_sub(state.started)),
                        synthesis_time: total,
                        audio: state.audio,
                        real_time_factor: (!state.audio.is_zero())
                            .then(|| total.as_secs_f64() / state.audio.as_secs_f64()),
                        chunks: state.chunks,
                    };
                    let meta = match report.time_to_first_byte {
                        Some(ttfb) => state.emitter.meta_with([(
                            agentbus_events::tts::TIME_TO_FIRST_BYTE_MS,
                            millis(ttfb).into(),
                        )]),
                        None => state.emitter.meta(),
                    };
                    state
                        .emitter
                        .emit(TTSSynthesisCompleteEvent {
                            meta,
                            plugin: state.emitter.plugin(),
                            synthesis_id: Some(state.id.clone()),
                            text: Some(state.text.clone()),
                            total_audio_bytes: state.bytes,
                            synthesis_time_ms: millis(total),
                            audio_duration_ms: Some(millis(state.audio)),
                            chunk_count: state.chunks,
                            real_time_factor: report.real_time_factor,
                        })
                        .await;
                    Some((Ok(SynthesisItem::Done(report)), state))
                }
            }
        })
        .boxed()
    }
}

/// An error for a synthesis that produced nothing.
pub(crate) fn no_audio(engine: &str) -> VoiceError {
    VoiceError::Program {
        program: engine.to_owned(),
        reason: "produced no audio".into(),
    }
}
