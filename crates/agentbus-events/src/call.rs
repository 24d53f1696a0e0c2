//! Call session events, from the video platform's webhook vocabulary (Stream Video), and
//! [`CallInfo`], the call an event concerns.
//!
//! Every event carries the call's channel id, `call_cid` (`type:id`). Where the platform's
//! payload has `session_id`, `participant` or `created_at`, the base fields `session_id`,
//! `participant` and `timestamp` carry it.
//!
//! Provenance: only seed 002 lists these classes. It gives full fields for the participant
//! joined/left events only and names the others with a one-line description; their fields
//! here follow the platform's webhook payloads, reduced to data ([`CallInfo`] stands for
//! the live `Call` object Vision Agents passes). The `type` strings follow the pattern
//! settled in `catalogue.md`. The seed's `CallEndedEvent` is [`CallSessionCallEndedEvent`]
//! here, named apart from the edge transport's `CallEndedEvent`;
//! [`CallSessionParticipantCountsUpdatedEvent`] keeps the seed's plural class name, with
//! the singular `type` string `call.session_participant_count_updated`.

#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[cfg(feature = "schema")]
use crate::Example;
use crate::{Participant, define_event};

/// A call on the video platform, reduced to the data that identifies it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct CallInfo {
    /// The call's id.
    pub call_id: String,
    /// The call's type (e.g. `default`, `livestream`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_type: Option<String>,
    /// Anything else the platform reported about the call (settings, custom data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<serde_json::Value>,
}

impl CallInfo {
    /// A call with `call_id` and nothing else.
    pub fn new(call_id: impl Into<String>) -> Self {
        Self {
            call_id: call_id.into(),
            ..Self::default()
        }
    }

    /// The call's channel id, `type:id` (the platform's `call_cid`); just the id when the
    /// type is unknown.
    pub fn cid(&self) -> String {
        match &self.call_type {
            Some(call_type) => format!("{call_type}:{}", self.call_id),
            None => self.call_id.clone(),
        }
    }
}

#[cfg(feature = "schema")]
impl Example for CallInfo {
    fn example() -> Self {
        Self {
            call_id: "call-1".into(),
            call_type: Some("default".into()),
            custom: Some(serde_json::json!({"topic": "support"})),
        }
    }
    fn minimal() -> Self {
        Self::new("call-1")
    }
}

define_event! {
    /// A participant joined the call session.
    ///
    /// The session is the base `session_id` and who joined the base `participant`: the
    /// participant's user id, name and per-call session id map onto [`Participant`],
    /// anything else the platform reports about them goes into its `custom`.
    #[event(type = "call.session_participant_joined", domain = Call, base = event)]
    pub struct CallSessionParticipantJoinedEvent {
        /// The call's channel id (`type:id`).
        pub call_cid: String,
    }
}

define_event! {
    /// A participant left the call session.
    ///
    /// The session is the base `session_id` and who left the base `participant`, as for
    /// [`CallSessionParticipantJoinedEvent`].
    #[event(type = "call.session_participant_left", domain = Call, base = event)]
    pub struct CallSessionParticipantLeftEvent {
        /// The call's channel id (`type:id`).
        pub call_cid: String,
        /// How long the participant was in the call, in seconds.
        #[serde(default)]
        pub duration_seconds: u64,
        /// Why they left.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reason: Option<String>,
    }
}

define_event! {
    /// A call was created.
    #[event(type = "call.created", domain = Call, base = event)]
    pub struct CallCreatedEvent {
        /// The call's channel id (`type:id`).
        pub call_cid: String,
        /// The call that was created.
        pub call: CallInfo,
        /// The call's initial members.
        #[serde(default)]
        pub members: Vec<Participant>,
    }
}

define_event! {
    /// A call ended, as the call session reports it (the edge transport reports it as
    /// [`EdgeCallEndedEvent`](crate::edge::EdgeCallEndedEvent)).
    #[event(type = "call.ended", domain = Call, base = event)]
    pub struct CallSessionCallEndedEvent {
        /// The call's channel id (`type:id`).
        pub call_cid: String,
        /// The call that ended.
        pub call: CallInfo,
        /// Why it ended, when given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reason: Option<String>,
    }
}

define_event! {
    /// A session of the call started (the base `session_id` names it).
    #[event(type = "call.session_started", domain = Call, base = event)]
    pub struct CallSessionStartedEvent {
        /// The call's channel id (`type:id`).
        pub call_cid: String,
        /// The call.
        pub call: CallInfo,
    }
}

define_event! {
    /// A session of the call ended (the base `session_id` names it).
    #[event(type = "call.session_ended", domain = Call, base = event)]
    pub struct CallSessionEndedEvent {
        /// The call's channel id (`type:id`).
        pub call_cid: String,
        /// The call.
        pub call: CallInfo,
    }
}

define_event! {
    /// The number of participants in the call session changed: the counts per role and
    /// of anonymous participants, as they are now.
    #[event(type = "call.session_participant_count_updated", domain = Call, base = event)]
    pub struct CallSessionParticipantCountsUpdatedEvent {
        /// The call's channel id (`type:id`).
        pub call_cid: String,
        /// Participants currently in the session, per role.
        #[serde(default)]
        pub participants_count_by_role: std::collections::BTreeMap<String, u64>,
        /// Anonymous participants currently in the session.
        #[serde(default)]
        pub anonymous_participant_count: u64,
    }
}

define_event! {
    /// The call's settings were updated.
    #[event(type = "call.updated", domain = Call, base = event)]
    pub struct CallUpdatedEvent {
        /// The call's channel id (`type:id`).
        pub call_cid: String,
        /// The call as it is now.
        pub call: CallInfo,
    }
}

define_event! {
    /// Members were added to the call.
    #[event(type = "call.member_added", domain = Call, base = event)]
    pub struct CallMemberAddedEvent {
        /// The call's channel id (`type:id`).
        pub call_cid: String,
        /// The call.
        pub call: CallInfo,
        /// The members added.
        #[serde(default)]
        pub members: Vec<Participant>,
    }
}

define_event! {
    /// Members were removed from the call.
    #[event(type = "call.member_removed", domain = Call, base = event)]
    pub struct CallMemberRemovedEvent {
        /// The call's channel id (`type:id`).
        pub call_cid: String,
        /// The call.
        pub call: CallInfo,
        /// The user ids of the members removed.
        #[serde(default)]
        pub members: Vec<String>,
    }
}

define_event! {
    /// Recording of the call started.
    #[event(type = "call.recording_started", domain = Call, base = event)]
    pub struct CallRecordingStartedEvent {
        /// The call's channel id (`type:id`).
        pub call_cid: String,
        /// What is recorded (e.g. `composite`, `individual`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub recording_type: Option<String>,
        /// The platform's id of the recording job.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub egress_id: Option<String>,
    }
}

define_event! {
    /// Recording of the call stopped.
    #[event(type = "call.recording_stopped", domain = Call, base = event)]
    pub struct CallRecordingStoppedEvent {
        /// The call's channel id (`type:id`).
        pub call_cid: String,
        /// What was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub recording_type: Option<String>,
        /// The platform's id of the recording job.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub egress_id: Option<String>,
    }
}

define_event! {
    /// Transcription of the call started.
    #[event(type = "call.transcription_started", domain = Call, base = event)]
    pub struct CallTranscriptionStartedEvent {
        /// The call's channel id (`type:id`).
        pub call_cid: String,
        /// The platform's id of the transcription job.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub egress_id: Option<String>,
    }
}

define_event! {
    /// Transcription of the call stopped.
    #[event(type = "call.transcription_stopped", domain = Call, base = event)]
    pub struct CallTranscriptionStoppedEvent {
        /// The call's channel id (`type:id`).
        pub call_cid: String,
        /// The platform's id of the transcription job.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub egress_id: Option<String>,
    }
}

define_event! {
    /// A closed caption for the call was received: a piece of text someone said, and when.
    ///
    /// The platform nests the caption in a `closed_caption` object; its fields sit flat
    /// here. The speaker, when known as a participant, is also the base `participant`.
    #[event(type = "call.closed_caption", domain = Call, base = event)]
    pub struct ClosedCaptionEvent {
        /// The call's channel id (`type:id`).
        pub call_cid: String,
        /// The caption text.
        pub text: String,
        /// The user id of the speaker.
        #[serde(default)]
        pub speaker_id: String,
        /// When the captioned speech started.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub start_time: Option<chrono::DateTime<chrono::Utc>>,
        /// When the captioned speech ended.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub end_time: Option<chrono::DateTime<chrono::Utc>>,
    }
}

/// Every call session event type, for [`catalogue::all`](crate::catalogue::all).
pub fn event_infos() -> Vec<crate::EventInfo> {
    vec![
        crate::EventInfo::of::<CallSessionParticipantJoinedEvent>(),
        crate::EventInfo::of::<CallSessionParticipantLeftEvent>(),
        crate::EventInfo::of::<CallCreatedEvent>(),
        crate::EventInfo::of::<CallSessionCallEndedEvent>(),
        crate::EventInfo::of::<CallSessionStartedEvent>(),
        crate::EventInfo::of::<CallSessionEndedEvent>(),
        crate::EventInfo::of::<CallSessionParticipantCountsUpdatedEvent>(),
        crate::EventInfo::of::<CallUpdatedEvent>(),
        crate::EventInfo::of::<CallMemberAddedEvent>(),
        crate::EventInfo::of::<CallMemberRemovedEvent>(),
        crate::EventInfo::of::<CallRecordingStartedEvent>(),
        crate::EventInfo::of::<CallRecordingStoppedEvent>(),
        crate::EventInfo::of::<CallTranscriptionStartedEvent>(),
        crate::EventInfo::of::<CallTranscriptionStoppedEvent>(),
        crate::EventInfo::of::<ClosedCaptionEvent>(),
    ]
}
