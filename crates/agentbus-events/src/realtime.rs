//! Realtime (speech-to-speech) LLM session events: connecting, audio in and out,
//! responses, conversation items, transcriptions and errors.
//!
//! Provenance: these are Vision Agents' realtime events, each type the union of the
//! versions seeds 000, 001 and 002 give. `provider` (on the connected and disconnected
//! events) is in seeds 000 and 002 but not 001; the `epoch` of [`RealtimeAudioOutputEvent`]
//! is only in seed 002; seeds 000 and 002 name the cleanliness flag `was_clean`, seed 001
//! `clean`. [`RealtimeAudioOutputDoneEvent`] and [`RealtimeConversationItemEvent`] are
//! listed only in seed 002; their `type` strings come from Vision Agents' code. The seeds'
//! `session_id` fields are the base `session_id`.

use crate::base::PcmData;
use crate::{ErrorFields, define_event};

define_event! {
    /// A realtime LLM session has connected.
    ///
    /// The session's id is the base `session_id` (one field on the wire).
    #[event(type = "plugin.realtime_connected", domain = Realtime, base = plugin)]
    pub struct RealtimeConnectedEvent {
        /// The provider (e.g. `openai`, `gemini`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub provider: Option<String>,
        /// The configuration the session was opened with.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub session_config: Option<serde_json::Value>,
        /// What the session supports (e.g. `audio`, `text`, `tools`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub capabilities: Option<Vec<String>>,
    }
}

define_event! {
    /// A realtime LLM session has disconnected.
    ///
    /// The session's id is the base `session_id`.
    #[event(type = "plugin.realtime_disconnected", domain = Realtime, base = plugin)]
    pub struct RealtimeDisconnectedEvent {
        /// The provider.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub provider: Option<String>,
        /// Why the session ended.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reason: Option<String>,
        /// Whether the session closed cleanly (true when absent on the wire; `Default::default()`
        /// gives `false`). Decoding also accepts it as `clean`.
        #[serde(default = "crate::llm::default_true", alias = "clean")]
        pub was_clean: bool,
    }
}

define_event! {
    /// Audio was sent into the realtime session.
    #[event(type = "plugin.realtime_audio_input", domain = Realtime, base = plugin)]
    pub struct RealtimeAudioInputEvent {
        /// The audio sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub data: Option<PcmData>,
    }
}

define_event! {
    /// Audio came back from the realtime session.
    #[event(type = "plugin.realtime_audio_output", domain = Realtime, base = plugin)]
    pub struct RealtimeAudioOutputEvent {
        /// The audio received.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub data: Option<PcmData>,
        /// The response the audio belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub response_id: Option<String>,
        /// Interruption counter: it increases on every interruption, so audio of an
        /// earlier response can be recognised as stale and dropped.
        #[serde(default)]
        pub epoch: u64,
    }
}

define_event! {
    /// The realtime model has finished sending audio for a response, either normally or
    /// because the user interrupted it.
    #[event(type = "plugin.realtime_audio_output_done", domain = Realtime, base = plugin)]
    pub struct RealtimeAudioOutputDoneEvent {
        /// The response whose audio is complete.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub response_id: Option<String>,
        /// True if the user cut the response short, false if it completed.
        #[serde(default)]
        pub interrupted: bool,
    }
}

define_event! {
    /// The realtime session produced a response (text and/or its raw form).
    #[event(type = "plugin.realtime_response", domain = Realtime, base = plugin)]
    pub struct RealtimeResponseEvent {
        /// The raw response as the provider sent it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub original: Option<String>,
        /// The response text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub text: Option<String>,
        /// Identifies the response.
        pub response_id: String,
        /// Whether the response is complete (true when absent on the wire; `Default::default()`
        /// gives `false`).
        #[serde(default = "crate::llm::default_true")]
        pub is_complete: bool,
        /// The conversation item the response belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub conversation_item_id: Option<String>,
    }
}

define_event! {
    /// A conversation item of the realtime session was created or updated (a message, a
    /// function call or a function call's output).
    #[event(type = "plugin.realtime_conversation_item", domain = Realtime, base = plugin)]
    pub struct RealtimeConversationItemEvent {
        /// Identifies the item.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub item_id: Option<String>,
        /// `message`, `function_call` or `function_call_output`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub item_type: Option<String>,
        /// `completed`, `in_progress` or `incomplete`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub status: Option<String>,
        /// `user`, `assistant` or `system`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub role: Option<String>,
        /// The item's content parts, as the provider sent them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub content: Option<Vec<serde_json::Value>>,
    }
}

define_event! {
    /// The realtime session reported an error.
    ///
    /// The exception is carried as data ([`ErrorFields`]); a human-readable message is
    /// [`RealtimeErrorEvent::error_message`].
    #[event(type = "plugin.realtime_error", domain = Realtime, base = plugin)]
    pub struct RealtimeErrorEvent {
        /// The error, its code and where it happened.
        #[serde(flatten)]
        pub failure: ErrorFields,
        /// Whether the session can carry on (true when absent on the wire; `Default::default()`
        /// gives `false`).
        #[serde(default = "crate::llm::default_true")]
        pub is_recoverable: bool,
    }
}

impl RealtimeErrorEvent {
    /// A human-readable message for the error (`"Unknown error"` when none is carried).
    pub fn error_message(&self) -> String {
        self.failure.error_message()
    }
}

define_event! {
    /// The realtime API transcribed what the user said.
    #[event(type = "plugin.realtime_user_speech_transcription", domain = Realtime, base = plugin)]
    pub struct RealtimeUserSpeechTranscriptionEvent {
        /// The user's transcribed speech.
        #[serde(default)]
        pub text: String,
        /// The provider's raw event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub original: Option<serde_json::Value>,
    }
}

define_event! {
    /// The realtime API transcribed what the agent said.
    #[event(type = "plugin.realtime_agent_speech_transcription", domain = Realtime, base = plugin)]
    pub struct RealtimeAgentSpeechTranscriptionEvent {
        /// The agent's transcribed speech.
        #[serde(default)]
        pub text: String,
        /// The provider's raw event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub original: Option<serde_json::Value>,
    }
}

/// Every realtime event type, for [`catalogue::all`](crate::catalogue::all).
pub fn event_infos() -> Vec<crate::EventInfo> {
    vec![
        crate::EventInfo::of::<RealtimeConnectedEvent>(),
        crate::EventInfo::of::<RealtimeDisconnectedEvent>(),
        crate::EventInfo::of::<RealtimeAudioInputEvent>(),
        crate::EventInfo::of::<RealtimeAudioOutputEvent>(),
        crate::EventInfo::of::<RealtimeAudioOutputDoneEvent>(),
        crate::EventInfo::of::<RealtimeResponseEvent>(),
        crate::EventInfo::of::<RealtimeConversationItemEvent>(),
        crate::EventInfo::of::<RealtimeErrorEvent>(),
        crate::EventInfo::of::<RealtimeUserSpeechTranscriptionEvent>(),
        crate::EventInfo::of::<RealtimeAgentSpeechTranscriptionEvent>(),
    ]
}
