//! The fields every event shares: identity, time, session, and who it concerns.
//!
//! Provenance: [`EventMeta`] is Vision Agents' `BaseEvent` plus the bus sequence number,
//! and [`PluginInfo`] its `PluginBaseEvent`. Where Vision Agents passes its video
//! platform's live participant object, [`Participant`] keeps the data that identifies it.
//! The `"Unknown error"` of [`ErrorFields::error_message`] is what Vision Agents'
//! `error_message` property returns when the event carries no exception.

use chrono::{DateTime, Utc};
#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "schema")]
use crate::Example;
use crate::Seq;

/// The base fields of every event, plus the bus sequence number.
///
/// On the wire these fields sit flat beside the event's own fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct EventMeta {
    /// Unique id of this event instance (a random UUID).
    pub event_id: Uuid,
    /// When the event was created, in UTC (RFC 3339 on the wire).
    pub timestamp: DateTime<Utc>,
    /// Position in the order the bus accepted events; stamped by the bus on `send`,
    /// absent on events that never went through a bus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<Seq>,
    /// The session (agent run, call, conversation) the event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The call participant the event relates to, when there is one (boxed: most events
    /// have none, and every queued event pays for this field's size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<Box<Participant>>,
    /// Caller-supplied metadata, carried untouched (boxed for the same reason as
    /// `participant`: a `Value` is 32 bytes inline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_metadata: Option<Box<serde_json::Value>>,
}

impl EventMeta {
    /// Fresh metadata: the current time and a new id made from it; everything else empty.
    ///
    /// The id is a UUIDv7: the timestamp's milliseconds, then 74 random bits. Ids made
    /// later sort later (to the millisecond), so a store's index of event ids grows at its
    /// end instead of at random places (with random ids, every stored batch rewrote pages
    /// all over that index). They are unique as random ids are.
    ///
    /// ```
    /// let a = agentbus_events::EventMeta::new();
    /// assert_eq!(a.event_id.get_version_num(), 7);
    /// assert_eq!(
    ///     a.event_id.get_timestamp().map(|t| t.to_unix().0),
    ///     Some(a.timestamp.timestamp() as u64)
    /// );
    /// ```
    pub fn new() -> Self {
        let timestamp = Utc::now();
        Self {
            event_id: time_ordered_id(timestamp),
            timestamp,
            seq: None,
            session_id: None,
            participant: None,
            user_metadata: None,
        }
    }

    /// Fresh metadata belonging to `session_id`.
    pub fn for_session(session_id: impl Into<String>) -> Self {
        Self {
            session_id: Some(session_id.into()),
            ..Self::new()
        }
    }
}

/// A UUIDv7 for `time`; no shared counter, so threads making ids never wait on each other.
fn time_ordered_id(time: DateTime<Utc>) -> Uuid {
    // Times before 1970 do not occur for a fresh event; they would map to the epoch.
    let seconds = u64::try_from(time.timestamp()).unwrap_or(0);
    Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        seconds,
        time.timestamp_subsec_nanos().min(999_999_999), // a leap second counts as its last nanosecond
    ))
}

impl Default for EventMeta {
    /// Same as [`EventMeta::new`]: a default event still gets a unique id and a time.
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "schema")]
impl Example for EventMeta {
    fn example() -> Self {
        Self {
            event_id: Uuid::example(),
            timestamp: DateTime::<Utc>::example(),
            seq: Seq::new(42),
            session_id: Some("session-1".into()),
            participant: Some(Box::new(Participant::example())),
            user_metadata: Some(Box::new(serde_json::json!({"tenant": "acme"}))),
        }
    }

    fn minimal() -> Self {
        Self {
            event_id: Uuid::example(),
            timestamp: DateTime::<Utc>::example(),
            seq: None,
            session_id: None,
            participant: None,
            user_metadata: None,
        }
    }
}

/// The fields plugin events add: which plugin emitted the event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct PluginInfo {
    /// Name of the plugin that emitted the event (e.g. `openai`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_name: Option<String>,
    /// Version of that plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_version: Option<String>,
}

impl PluginInfo {
    /// Plugin info naming `name`, with no version.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            plugin_name: Some(name.into()),
            plugin_version: None,
        }
    }
}

#[cfg(feature = "schema")]
impl Example for PluginInfo {
    fn example() -> Self {
        Self {
            plugin_name: Some("openai".into()),
            plugin_version: Some("1.0.0".into()),
        }
    }
    fn minimal() -> Self {
        Self::default()
    }
}

/// A participant in a call: who an event relates to.
///
/// Holds the data that identifies the participant; anything else the video platform
/// reports about them is in `custom`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct Participant {
    /// The participant's user id.
    pub user_id: String,
    /// Display name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The participant's own session id on the call, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_session_id: Option<String>,
    /// Anything else the transport reported about the participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<serde_json::Value>,
}

#[cfg(feature = "schema")]
impl Example for Participant {
    fn example() -> Self {
        Self {
            user_id: "user-1".into(),
            name: Some("Ada".into()),
            participant_session_id: Some("ps-1".into()),
            custom: Some(serde_json::json!({"role": "host"})),
        }
    }
    fn minimal() -> Self {
        Self {
            user_id: "user-1".into(),
            ..Self::default()
        }
    }
}

/// An error carried inside an event: data, never a live exception object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct ErrorInfo {
    /// Human-readable message.
    pub message: String,
    /// What kind of error this is (an error class such as `rate_limit`, `timeout`,
    /// `ValueError`, `panic`).
    pub kind: String,
    /// A provider or protocol error code, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl ErrorInfo {
    /// An error of `kind` with `message` and no code.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            kind: kind.into(),
            code: None,
        }
    }

    /// The same error with `code` set.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }
}

impl std::fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        if let Some(code) = &self.code {
            write!(f, " (code {code})")?;
        }
        Ok(())
    }
}

#[cfg(feature = "schema")]
impl Example for ErrorInfo {
    fn example() -> Self {
        Self::new("rate_limit", "too many requests").with_code("429")
    }
    fn minimal() -> Self {
        Self::new("rate_limit", "too many requests")
    }
}

/// The error fields the provider error events share (`plugin.llm_error`,
/// `plugin.realtime_error`, `plugin.stt_error`, `plugin.tts_error`, `plugin.vad_error`,
/// `plugin.vlm_error`, `plugin.qwen.llm_error`), flattened into each: on the wire they
/// sit beside the event's other fields as `error`, `error_code` and `context`, each left
/// out when absent, as before they were shared.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct ErrorFields {
    /// The error that occurred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// The provider's error code, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Where the error happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

impl ErrorFields {
    /// Fields carrying `error`, with no code and no context.
    pub fn new(error: ErrorInfo) -> Self {
        Self {
            error: Some(error),
            ..Self::default()
        }
    }

    /// A human-readable message: the error's own message, else its code, else
    /// `"Unknown error"` when the event carries neither.
    pub fn error_message(&self) -> String {
        match (&self.error, &self.error_code) {
            (Some(error), _) => error.message.clone(),
            (None, Some(code)) => format!("error code {code}"),
            (None, None) => "Unknown error".to_owned(),
        }
    }
}

#[cfg(feature = "schema")]
impl Example for ErrorFields {
    fn example() -> Self {
        Self {
            error: Example::example(),
            error_code: Example::example(),
            context: Example::example(),
        }
    }
    fn minimal() -> Self {
        Self::default()
    }
}
