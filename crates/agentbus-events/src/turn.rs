//! Turn detection events: a speaker starting and finishing their turn.
//!
//! Provenance: these are Vision Agents' turn detection events; the seed's `participant`
//! fields are the base `participant`.

use crate::define_event;

define_event! {
    /// A speaker has started their turn.
    ///
    /// Who started speaking is the base `participant`.
    #[event(type = "plugin.turn_detection.turn_started", domain = Turn, base = plugin)]
    pub struct TurnStartedEvent {
        /// The id of the participant speaking.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub participant_id: Option<String>,
        /// Detection confidence, 0.0 to 1.0.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub confidence: Option<f64>,
        /// Detector-specific metadata.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub custom: Option<serde_json::Value>,
    }
}

define_event! {
    /// A speaker has finished their turn, with how long it lasted and the silence that
    /// ended it.
    ///
    /// Who stopped speaking is the base `participant`.
    #[event(type = "plugin.turn_detection.turn_ended", domain = Turn, base = plugin)]
    pub struct TurnEndedEvent {
        /// The id of the participant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub participant_id: Option<String>,
        /// Detection confidence, 0.0 to 1.0.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub confidence: Option<f64>,
        /// How long the turn lasted, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub duration_ms: Option<f64>,
        /// The silence before the end was called, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub trailing_silence_ms: Option<f64>,
        /// Detector-specific metadata.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub custom: Option<serde_json::Value>,
        /// Whether the end was called early (eager end-of-turn detection).
        #[serde(default)]
        pub eager_end_of_turn: bool,
    }
}

/// Every turn detection event type, for [`catalogue::all`](crate::catalogue::all).
pub fn event_infos() -> Vec<crate::EventInfo> {
    vec![
        crate::EventInfo::of::<TurnStartedEvent>(),
        crate::EventInfo::of::<TurnEndedEvent>(),
    ]
}
