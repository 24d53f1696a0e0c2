//! Voice activity detection events: speech starting, speech ending, errors.
//!
//! Provenance: these are Vision Agents' voice activity detection events. The seed gives
//! these classes but no `type` strings; they follow their siblings' pattern
//! (`plugin.vad_speech_start`, ...), as `catalogue.md` settles. The seed's `timestamp`
//! fields are the base `timestamp`.

use crate::{ErrorFields, define_event};

define_event! {
    /// Voice activity detection heard speech begin.
    ///
    /// The base `timestamp` is when speech started.
    #[event(type = "plugin.vad_speech_start", domain = Vad, base = plugin)]
    pub struct VADSpeechStartEvent {}
}

define_event! {
    /// Voice activity detection heard speech end.
    ///
    /// The base `timestamp` is when speech ended.
    #[event(type = "plugin.vad_speech_end", domain = Vad, base = plugin)]
    pub struct VADSpeechEndEvent {
        /// How long the speech segment lasted, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub duration_ms: Option<f64>,
    }
}

define_event! {
    /// Voice activity detection failed.
    ///
    /// The exception is carried as data ([`ErrorFields`]); a human-readable message is
    /// [`VADErrorEvent::error_message`].
    #[event(type = "plugin.vad_error", domain = Vad, base = plugin)]
    pub struct VADErrorEvent {
        /// The error, its code and where it happened.
        #[serde(flatten)]
        pub failure: ErrorFields,
    }
}

impl VADErrorEvent {
    /// A human-readable message for the error (`"Unknown error"` when none is carried).
    pub fn error_message(&self) -> String {
        self.failure.error_message()
    }
}

/// Every voice activity detection event type, for [`catalogue::all`](crate::catalogue::all).
pub fn event_infos() -> Vec<crate::EventInfo> {
    vec![
        crate::EventInfo::of::<VADSpeechStartEvent>(),
        crate::EventInfo::of::<VADSpeechEndEvent>(),
        crate::EventInfo::of::<VADErrorEvent>(),
    ]
}
