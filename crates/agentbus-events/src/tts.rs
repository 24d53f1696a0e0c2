//! Text-to-speech events: audio chunks, synthesis start and completion, connection state
//! and errors.
//!
//! Provenance: these are Vision Agents' `vision_agents.core.tts.events`. [`TTSErrorEvent`]
//! is the union of the seeds: 002 adds `text_source`, `synthesis_id` and `is_recoverable`
//! to 001's fields. [`TTSConnectedEvent`] and [`TTSDisconnectedEvent`] are listed only in
//! seed 001.

use crate::base::{ConnectionState, PcmData};
use crate::{ErrorFields, define_event};

/// `user_metadata` key of [`TTSSynthesisCompleteEvent`]: milliseconds from the start of
/// synthesis to its first audio (the fields Vision Agents defines have no place for it).
pub const TIME_TO_FIRST_BYTE_MS: &str = "time_to_first_byte_ms";

/// `user_metadata` key of the first [`TTSAudioEvent`] of a reply: milliseconds from the
/// end of the user's speech to this first reply audio (voice-to-voice latency).
pub const VOICE_TO_VOICE_MS: &str = "voice_to_voice_ms";

define_event! {
    /// A chunk of synthesised audio is ready.
    #[event(type = "plugin.tts_audio", domain = Tts, base = plugin)]
    pub struct TTSAudioEvent {
        /// The audio.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub data: Option<PcmData>,
        /// Position of this chunk in the synthesis, from 0.
        #[serde(default)]
        pub chunk_index: u64,
        /// Whether this is the synthesis's last chunk.
        #[serde(default)]
        pub is_final_chunk: bool,
        /// The text being spoken.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub text_source: Option<String>,
        /// The synthesis the chunk belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub synthesis_id: Option<String>,
        /// Interruption counter: it increases each time speech is interrupted, so audio
        /// produced before an interruption can be recognised as stale.
        #[serde(default)]
        pub epoch: u64,
    }
}

define_event! {
    /// Speech synthesis of a text has begun.
    #[event(type = "plugin.tts_synthesis_start", domain = Tts, base = plugin)]
    pub struct TTSSynthesisStartEvent {
        /// The text to speak.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub text: Option<String>,
        /// Identifies this synthesis; its audio and completion events carry the same id.
        pub synthesis_id: String,
        /// The voice model.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub model_name: Option<String>,
        /// The voice.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub voice_id: Option<String>,
        /// The expected length of the audio, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub estimated_duration_ms: Option<f64>,
    }
}

define_event! {
    /// Speech synthesis has finished, with how much audio it produced and how fast.
    #[event(type = "plugin.tts_synthesis_complete", domain = Tts, base = plugin)]
    pub struct TTSSynthesisCompleteEvent {
        /// The synthesis that finished.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub synthesis_id: Option<String>,
        /// The text that was spoken.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub text: Option<String>,
        /// Total audio produced, in bytes.
        #[serde(default)]
        pub total_audio_bytes: u64,
        /// How long synthesis took, in milliseconds.
        #[serde(default)]
        pub synthesis_time_ms: f64,
        /// The length of the audio produced, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub audio_duration_ms: Option<f64>,
        /// How many audio chunks were produced.
        #[serde(default)]
        pub chunk_count: u64,
        /// Synthesis time divided by audio duration (below 1 is faster than real time).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub real_time_factor: Option<f64>,
    }
}

define_event! {
    /// Speech synthesis failed.
    ///
    /// The exception is carried as data ([`ErrorFields`]); a human-readable message is
    /// [`TTSErrorEvent::error_message`].
    #[event(type = "plugin.tts_error", domain = Tts, base = plugin)]
    pub struct TTSErrorEvent {
        /// The error, its code and where it happened.
        #[serde(flatten)]
        pub failure: ErrorFields,
        /// The text being synthesised.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub text_source: Option<String>,
        /// The synthesis that failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub synthesis_id: Option<String>,
        /// Whether synthesis can carry on (true when absent on the wire; `Default::default()`
        /// gives `false`).
        #[serde(default = "crate::llm::default_true")]
        pub is_recoverable: bool,
    }
}

impl TTSErrorEvent {
    /// A human-readable message for the error (`"Unknown error"` when none is carried).
    pub fn error_message(&self) -> String {
        self.failure.error_message()
    }
}

define_event! {
    /// The connection to the text-to-speech provider changed state.
    #[event(type = "plugin.tts_connection", domain = Tts, base = plugin)]
    pub struct TTSConnectionEvent {
        /// The new state.
        pub connection_state: ConnectionState,
        /// The provider.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub provider: Option<String>,
        /// Anything else the provider said about the connection.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub details: Option<serde_json::Value>,
    }
}

define_event! {
    /// A text-to-speech connection has been established. Carries only the plugin base
    /// fields.
    #[event(type = "plugin.tts_connected", domain = Tts, base = plugin)]
    pub struct TTSConnectedEvent {}
}

define_event! {
    /// A text-to-speech connection has closed.
    #[event(type = "plugin.tts_disconnected", domain = Tts, base = plugin)]
    pub struct TTSDisconnectedEvent {
        /// Why it closed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reason: Option<String>,
        /// Whether it closed cleanly (true when absent on the wire; `Default::default()`
        /// gives `false`).
        #[serde(default = "crate::llm::default_true")]
        pub clean: bool,
    }
}

/// Every text-to-speech event type, for [`catalogue::all`](crate::catalogue::all).
pub fn event_infos() -> Vec<crate::EventInfo> {
    vec![
        crate::EventInfo::of::<TTSAudioEvent>(),
        crate::EventInfo::of::<TTSSynthesisStartEvent>(),
        crate::EventInfo::of::<TTSSynthesisCompleteEvent>(),
        crate::EventInfo::of::<TTSErrorEvent>(),
        crate::EventInfo::of::<TTSConnectionEvent>(),
        crate::EventInfo::of::<TTSConnectedEvent>(),
        crate::EventInfo::of::<TTSDisconnectedEvent>(),
    ]
}
