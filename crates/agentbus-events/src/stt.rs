//! Speech-to-text events: transcripts, partial transcripts, connection state and errors.
//!
//! Provenance: these are Vision Agents' `vision_agents.core.stt.events`. The seed marks
//! [`STTTranscriptEvent`]'s `text` required and non-empty (decoding does not check that it
//! is non-empty). [`STTErrorEvent`] is the union of the seeds: 002 adds `retry_count` and
//! `is_recoverable` to 001's fields. [`STTConnectedEvent`] and [`STTDisconnectedEvent`]
//! are listed only in seed 001.

use crate::base::ConnectionState;
use crate::{ErrorFields, define_event};

define_event! {
    /// A final transcript of a stretch of speech is available.
    #[event(type = "plugin.stt_transcript", domain = Stt, base = plugin)]
    pub struct STTTranscriptEvent {
        /// The recognised text; required on the wire.
        pub text: String,
        /// Recognition confidence, 0.0 to 1.0.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub confidence: Option<f64>,
        /// The detected language code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub language: Option<String>,
        /// How long recognition took, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub processing_time_ms: Option<f64>,
        /// How much audio was transcribed, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub audio_duration_ms: Option<f64>,
        /// The recognition model.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub model_name: Option<String>,
    }
}

define_event! {
    /// An interim transcript while the speaker is still talking; later partials and the
    /// final [`STTTranscriptEvent`] supersede it.
    #[event(type = "plugin.stt_partial_transcript", domain = Stt, base = plugin)]
    pub struct STTPartialTranscriptEvent {
        /// The text recognised so far.
        pub text: String,
        /// Recognition confidence, 0.0 to 1.0.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub confidence: Option<f64>,
        /// The detected language code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub language: Option<String>,
    }
}

define_event! {
    /// Speech-to-text failed.
    ///
    /// The exception is carried as data ([`ErrorFields`]); a human-readable message is
    /// [`STTErrorEvent::error_message`].
    #[event(type = "plugin.stt_error", domain = Stt, base = plugin)]
    pub struct STTErrorEvent {
        /// The error, its code and where it happened.
        #[serde(flatten)]
        pub failure: ErrorFields,
        /// How many times the operation was retried.
        #[serde(default)]
        pub retry_count: u32,
        /// Whether recognition can carry on (true when absent on the wire; `Default::default()`
        /// gives `false`).
        #[serde(default = "crate::llm::default_true")]
        pub is_recoverable: bool,
    }
}

impl STTErrorEvent {
    /// A human-readable message for the error (`"Unknown error"` when none is carried).
    pub fn error_message(&self) -> String {
        self.failure.error_message()
    }
}

define_event! {
    /// The connection to the speech-to-text provider changed state.
    #[event(type = "plugin.stt_connection", domain = Stt, base = plugin)]
    pub struct STTConnectionEvent {
        /// The new state.
        pub connection_state: ConnectionState,
        /// The provider.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub provider: Option<String>,
        /// Anything else the provider said about the connection.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub details: Option<serde_json::Value>,
        /// How many reconnection attempts have been made.
        #[serde(default)]
        pub reconnect_attempts: u32,
    }
}

define_event! {
    /// A speech-to-text connection has been established. Carries only the plugin base
    /// fields.
    #[event(type = "plugin.stt_connected", domain = Stt, base = plugin)]
    pub struct STTConnectedEvent {}
}

define_event! {
    /// A speech-to-text connection has closed.
    #[event(type = "plugin.stt_disconnected", domain = Stt, base = plugin)]
    pub struct STTDisconnectedEvent {
        /// Why it closed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reason: Option<String>,
        /// Whether it closed cleanly (true when absent on the wire; `Default::default()`
        /// gives `false`).
        #[serde(default = "crate::llm::default_true")]
        pub clean: bool,
    }
}

/// Every speech-to-text event type, for [`catalogue::all`](crate::catalogue::all).
pub fn event_infos() -> Vec<crate::EventInfo> {
    vec![
        crate::EventInfo::of::<STTTranscriptEvent>(),
        crate::EventInfo::of::<STTPartialTranscriptEvent>(),
        crate::EventInfo::of::<STTErrorEvent>(),
        crate::EventInfo::of::<STTConnectionEvent>(),
        crate::EventInfo::of::<STTConnectedEvent>(),
        crate::EventInfo::of::<STTDisconnectedEvent>(),
    ]
}
