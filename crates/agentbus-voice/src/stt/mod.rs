//! Speech to text: the [`Stt`] trait (audio of one utterance streamed in, partial
//! transcripts and one final transcript out) and [`InstrumentedStt`], which publishes
//! `plugin.stt_partial_transcript`, `plugin.stt_transcript` (with confidence, language,
//! processing time), connection events for network engines, and `plugin.stt_error`.
//!
//! Engines: [`WhisperStt`] (Whisper tiny.en on candle, offline), [`OpenAiStt`]
//! (`POST /v1/audio/transcriptions`) and [`DeepgramStt`] (Deepgram's live WebSocket API,
//! with partial transcripts as the user speaks).

pub mod ct2;
mod deepgram;
pub mod mel;
mod openai;
mod whisper;

use std::time::Duration;

use agentbus_events::base::ConnectionState;
use agentbus_events::stt::{
    STTConnectedEvent, STTConnectionEvent, STTDisconnectedEvent, STTErrorEvent,
    STTPartialTranscriptEvent, STTTranscriptEvent,
};
pub use deepgram::DeepgramStt;
use futures::future::BoxFuture;
pub use openai::OpenAiStt;
pub use whisper::{WHISPER_TINY_EN, WhisperModelFiles, WhisperStt};

use crate::audio::AudioFrame;
use crate::clock::{SharedClock, millis};
use crate::error::{Result, VoiceError};
use crate::publish::{Emitter, error_fields};

/// A transcript, partial or final.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transcript {
    /// The text.
    pub text: String,
    /// Confidence, 0 to 1, when the engine gives one.
    pub confidence: Option<f32>,
    /// The language code, when known.
    pub language: Option<String>,
}

/// A speech-to-text engine. One utterance at a time: [`push`](Stt::push) its audio as it
/// arrives (the engine may answer with partial transcripts), then
/// [`finish`](Stt::finish) for the final one; the engine is then ready for the next.
pub trait Stt: Send + Sync {
    /// The engine's name (the events' `plugin_name`).
    fn name(&self) -> &str;
    /// The model, when there is one.
    fn model_name(&self) -> Option<String> {
        None
    }
    /// Whether the engine talks to a server (it then gets connection events).
    fn is_remote(&self) -> bool {
        false
    }
    /// Opens the connection (network engines); offline engines have nothing to do.
    fn connect(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Takes more audio of the current utterance; may return partial transcripts.
    fn push<'a>(&'a mut self, frame: &'a AudioFrame) -> BoxFuture<'a, Result<Vec<Transcript>>>;
    /// The utterance is over: its final transcript.
    fn finish(&mut self) -> BoxFuture<'_, Result<Transcript>>;
    /// Drops the current utterance's audio (barge-in, reset).
    fn discard(&mut self);
}

/// An [`Stt`] engine whose work is published and timed.
pub struct InstrumentedStt {
    engine: Box<dyn Stt>,
    emitter: Emitter,
    clock: SharedClock,
    audio: Duration,
    connected: bool,
}

impl std::fmt::Debug for InstrumentedStt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentedStt")
            .field("engine", &self.engine.name())
            .finish_non_exhaustive()
    }
}

impl InstrumentedStt {
    /// Wraps `engine`; events go through `emitter` under the engine's name, times are
    /// read on `clock`.
    pub fn new(engine: Box<dyn Stt>, emitter: Emitter, clock: SharedClock) -> Self {
        let emitter = emitter.renamed(engine.name().to_owned());
        Self {
            engine,
            emitter,
            clock,
            audio: Duration::ZERO,
            connected: false,
        }
    }

    /// The engine's name.
    pub fn name(&self) -> &str {
        self.engine.name()
    }

    async fn connection(&self, state: ConnectionState) {
        self.emitter
            .emit(STTConnectionEvent {
                meta: self.emitter.meta(),
                plugin: self.emitter.plugin(),
                connection_state: state,
                provider: Some(self.engine.name().to_owned()),
                details: None,
                reconnect_attempts: 0,
            })
            .await;
    }

    async fn ensure_connected(&mut self) -> Result<()> {
        if self.connected || !self.engine.is_remote() {
            return Ok(());
        }
        self.connection(ConnectionState::Connecting).await;
        match self.engine.connect().await {
            Ok(()) => {
                self.connected = true;
                self.connection(ConnectionState::Connected).await;
                self.emitter
                    .emit(STTConnectedEvent {
                        meta: self.emitter.meta(),
                        plugin: self.emitter.plugin(),
                    })
                    .await;
                Ok(())
            }
            Err(error) => {
                self.connection(ConnectionState::Error).await;
                self.emit_error(&error, "connect").await;
                Err(error)
            }
        }
    }

    async fn emit_error(&self, error: &VoiceError, context: &str) {
        self.emitter
            .emit(STTErrorEvent {
                meta: self.emitter.meta(),
                plugin: self.emitter.plugin(),
                failure: error_fields(error, context),
                retry_count: 0,
                is_recoverable: error.is_recoverable(),
            })
            .await;
    }

    /// Feeds audio of the current utterance, publishing partial transcripts.
    pub async fn push(&mut self, frame: &AudioFrame) -> Result<Vec<Transcript>> {
        self.ensure_connected().await?;
        self.audio += frame.duration();
        let partials = match self.engine.push(frame).await {
            Ok(partials) => partials,
            Err(error) => {
                self.emit_error(&error, "streaming audio").await;
                return Err(error);
            }
        };
        for partial in &partials {
            self.emitter
                .emit(STTPartialTranscriptEvent {
                    meta: self.emitter.meta(),
                    plugin: self.emitter.plugin(),
                    text: partial.text.clone(),
                    confidence: partial.confidence.map(f64::from),
                    language: partial.language.clone(),
                })
                .await;
        }
        Ok(partials)
    }

    /// Ends the utterance: the final transcript, published with its processing time
    /// (from the end of the audio to the transcript) and audio duration. An empty
    /// transcript is returned but not published (`plugin.stt_transcript` requires text).
    pub async fn finish(&mut self) -> Result<(Transcript, Duration)> {
        self.ensure_connected().await?;
        let started = self.clock.now();
        let audio = std::mem::take(&mut self.audio);
        let result = self.engine.finish().await;
        let elapsed = self.clock.now().saturating_sub(started);
        let transcript = match result {
            Ok(transcript) => transcript,
            Err(error) => {
                self.emit_error(&error, "final transcript").await;
                return Err(error);
            }
        };
        if !transcript.text.trim().is_empty() {
            self.emitter
                .emit(STTTranscriptEvent {
                    meta: self.emitter.meta(),
                    plugin: self.emitter.plugin(),
                    text: transcript.text.clone(),
                    confidence: transcript.confidence.map(f64::from),
                    language: transcript.language.clone(),
                    processing_time_ms: Some(millis(elapsed)),
                    audio_duration_ms: Some(millis(audio)),
                    model_name: self.engine.model_name(),
                })
                .await;
        }
        Ok((transcript, elapsed))
    }

    /// Drops the current utterance.
    pub fn discard(&mut self) {
        self.audio = Duration::ZERO;
        self.engine.discard();
    }

    /// Closes a network engine's connection (publishes the disconnection).
    pub async fn close(&mut self) {
        if !self.connected {
            return;
        }
        self.connected = false;
        self.connection(ConnectionState::Disconnected).await;
        self.emitter
            .emit(STTDisconnectedEvent {
                meta: self.emitter.meta(),
                plugin: self.emitter.plugin(),
                reason: Some("closed".into()),
                clean: true,
            })
            .await;
    }
}

/// The words of `text` for scoring: lower case, punctuation dropped (apostrophes kept).
pub fn normalized_words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Word error rate: (substitutions + deletions + insertions) / reference words, after
/// [`normalized_words`]. 0 for two empty texts, 1 per inserted word for an empty reference.
///
/// ```
/// use agentbus_voice::stt::word_error_rate;
///
/// assert_eq!(word_error_rate("What is the capital of France?", "what is the capital of france"), 0.0);
/// assert_eq!(word_error_rate("a b c d", "a x c"), 0.5);
/// ```
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let r = normalized_words(reference);
    let h = normalized_words(hypothesis);
    if r.is_empty() {
        return h.len() as f64;
    }
    let mut previous: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut current = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let substitution = previous[j] + usize::from(rw != hw);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[h.len()] as f64 / r.len() as f64
}
