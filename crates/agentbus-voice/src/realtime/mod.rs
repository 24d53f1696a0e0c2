//! Speech-to-speech sessions: the [`Realtime`] trait (audio in, audio, text and
//! transcripts out, over one connection) and [`InstrumentedRealtime`], which turns what
//! the session reports into the `plugin.realtime_*` catalogue events; the engine
//! [`OpenAiRealtime`](openai::OpenAiRealtime) (the OpenAI Realtime WebSocket API).

pub mod openai;

use agentbus_events::realtime::{
    RealtimeAgentSpeechTranscriptionEvent, RealtimeAudioInputEvent, RealtimeAudioOutputDoneEvent,
    RealtimeAudioOutputEvent, RealtimeConnectedEvent, RealtimeConversationItemEvent,
    RealtimeDisconnectedEvent, RealtimeErrorEvent, RealtimeResponseEvent,
    RealtimeUserSpeechTranscriptionEvent,
};
use futures::future::BoxFuture;
use serde_json::Value;

use crate::audio::AudioFrame;
use crate::error::{Result, VoiceError};
use crate::publish::{Emitter, error_fields};

/// What a realtime session reports.
#[derive(Debug)]
pub enum RealtimeUpdate {
    /// The session is open.
    Connected {
        /// The configuration the server accepted.
        session_config: Option<Value>,
    },
    /// Reply audio.
    Audio {
        /// The audio.
        audio: AudioFrame,
        /// The response it belongs to.
        response_id: Option<String>,
    },
    /// A response's audio is complete (or was cut off).
    AudioDone {
        /// The response.
        response_id: Option<String>,
        /// Whether an interruption ended it.
        interrupted: bool,
    },
    /// Reply text (a delta, or the whole text when `is_complete`).
    Text {
        /// The response.
        response_id: String,
        /// The text.
        text: String,
        /// Whether the response is finished.
        is_complete: bool,
    },
    /// A transcript of what the user said.
    UserTranscript {
        /// The text.
        text: String,
        /// The provider's message.
        original: Option<Value>,
    },
    /// A transcript of what the agent said.
    AgentTranscript {
        /// The text.
        text: String,
        /// The provider's message.
        original: Option<Value>,
    },
    /// A conversation item was created or changed.
    Item {
        /// Its id.
        item_id: Option<String>,
        /// `message`, `function_call`, ...
        item_type: Option<String>,
        /// `in_progress`, `completed`, ...
        status: Option<String>,
        /// `user`, `assistant`, ...
        role: Option<String>,
        /// Its content parts.
        content: Option<Vec<Value>>,
    },
    /// The session reported an error.
    Error(VoiceError),
    /// The session closed.
    Disconnected {
        /// Why.
        reason: Option<String>,
        /// Whether it closed cleanly.
        clean: bool,
    },
}

/// A speech-to-speech session with a provider.
pub trait Realtime: Send {
    /// The engine's name (the events' `plugin_name`).
    fn name(&self) -> &str;
    /// Opens the session.
    fn connect(&mut self) -> BoxFuture<'_, Result<()>>;
    /// Streams user audio to the session.
    fn send_audio<'a>(&'a mut self, frame: &'a AudioFrame) -> BoxFuture<'a, Result<()>>;
    /// The next thing the session reports; `None` once it is closed.
    fn next_update(&mut self) -> BoxFuture<'_, Option<RealtimeUpdate>>;
    /// Stops the response in progress (barge-in).
    fn interrupt(&mut self) -> BoxFuture<'_, Result<()>>;
    /// Closes the session.
    fn close(&mut self) -> BoxFuture<'_, Result<()>>;
}

/// A [`Realtime`] session whose traffic is published.
pub struct InstrumentedRealtime {
    inner: Box<dyn Realtime>,
    emitter: Emitter,
}

impl std::fmt::Debug for InstrumentedRealtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentedRealtime")
            .field("engine", &self.inner.name())
            .finish_non_exhaustive()
    }
}

impl InstrumentedRealtime {
    /// Wraps `inner`.
    pub fn new(inner: Box<dyn Realtime>, emitter: Emitter) -> Self {
        let emitter = emitter.renamed(inner.name().to_owned());
        Self { inner, emitter }
    }

    async fn error(&self, error: &VoiceError, context: &str) {
        self.emitter
            .emit(RealtimeErrorEvent {
                meta: self.emitter.meta(),
                plugin: self.emitter.plugin(),
                failure: error_fields(error, context),
                is_recoverable: error.is_recoverable(),
            })
            .await;
    }

    /// Opens the session (errors are published too).
    pub async fn connect(&mut self) -> Result<()> {
        let result = self.inner.connect().await;
        if let Err(error) = &result {
            self.error(error, "connect").await;
        }
        result
    }

    /// Sends user audio, published as `plugin.realtime_audio_input`.
    pub async fn send_audio(&mut self, frame: &AudioFrame) -> Result<()> {
        self.emitter
            .emit(RealtimeAudioInputEvent {
                meta: self.emitter.meta(),
                plugin: self.emitter.plugin(),
                data: Some(frame.to_pcm_data()),
            })
            .await;
        let result = self.inner.send_audio(frame).await;
        if let Err(error) = &result {
            self.error(error, "sending audio").await;
        }
        result
    }

    /// Interrupts the response in progress.
    pub async fn interrupt(&mut self) -> Result<()> {
        self.inner.interrupt().await
    }

    /// Closes the session.
    pub async fn close(&mut self) -> Result<()> {
        self.inner.close().await
    }

    /// The next update, published as its catalogue event.
    pub async fn next_update(&mut self) -> Option<RealtimeUpdate> {
        let update = self.inner.next_update().await?;
        let e = &self.emitter;
        let provider = Some(self.inner.name().to_owned());
        match &update {
            RealtimeUpdate::Connected { session_config } => {
                e.emit(RealtimeConnectedEvent {
                    meta: e.meta(),
                    plugin: e.plugin(),
                    provider,
                    session_config: session_config.clone(),
                    capabilities: Some(vec!["audio".into(), "text".into()]),
                })
                .await
            }
            RealtimeUpdate::Audio { audio, response_id } => {
                e.emit(RealtimeAudioOutputEvent {
                    meta: e.meta(),
                    plugin: e.plugin(),
                    data: Some(audio.to_pcm_data()),
                    response_id: response_id.clone(),
                    epoch: e.epoch().get(),
                })
                .await
            }
            RealtimeUpdate::AudioDone {
                response_id,
                interrupted,
            } => {
                e.emit(RealtimeAudioOutputDoneEvent {
                    meta: e.meta(),
                    plugin: e.plugin(),
                    response_id: response_id.clone(),
                    interrupted: *interrupted,
                })
                .await
            }
            RealtimeUpdate::Text {
                response_id,
                text,
                is_complete,
            } => {
                e.emit(RealtimeResponseEvent {
                    meta: e.meta(),
                    plugin: e.plugin(),
                    original: None,
                    text: Some(text.clone()),
                    response_id: response_id.clone(),
                    is_complete: *is_complete,
                    conversation_item_id: None,
                })
                .await
            }
            RealtimeUpdate::UserTranscript { text, original } => {
                e.emit(RealtimeUserSpeechTranscriptionEvent {
                    meta: e.meta(),
                    plugin: e.plugin(),
                    text: text.clone(),
                    original: original.clone(),
                })
                .await
            }
            RealtimeUpdate::AgentTranscript { text, original } => {
                e.emit(RealtimeAgentSpeechTranscriptionEvent {
                    meta: e.meta(),
                    plugin: e.plugin(),
                    text: text.clone(),
                    original: original.clone(),
                })
                .await
            }
            RealtimeUpdate::Item {
                item_id,
                item_type,
                status,
                role,
                content,
            } => {
                e.emit(RealtimeConversationItemEvent {
                    meta: e.meta(),
                    plugin: e.plugin(),
                    item_id: item_id.clone(),
                    item_type: item_type.clone(),
                    status: status.clone(),
                    role: role.clone(),
                    content: content.clone(),
                })
                .await
            }
            RealtimeUpdate::Error(error) => self.error(error, "session").await,
            RealtimeUpdate::Disconnected { reason, clean } => {
                e.emit(RealtimeDisconnectedEvent {
                    meta: e.meta(),
                    plugin: e.plugin(),
                    provider,
                    reason: reason.clone(),
                    was_clean: *clean,
                })
                .await
            }
        }
        Some(update)
    }
}
