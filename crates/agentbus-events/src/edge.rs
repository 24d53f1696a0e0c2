//! Edge transport events: participants and tracks coming and going on the call, the
//! call ending, audio arriving.
//!
//! Provenance: these are Vision Agents' `vision_agents.core.edge.events`, listed only in
//! seed 001; their `type` strings come from Vision Agents' code. The seed's `participant`
//! fields (required on the participant events) are the base `participant`, and its
//! `CallEndedEvent` is [`EdgeCallEndedEvent`] here, named apart from the call session's
//! `CallEndedEvent`.

#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[cfg(feature = "schema")]
use crate::Example;
use crate::base::PcmData;
use crate::call::CallInfo;
use crate::define_event;

/// The kind of media a track carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum TrackType {
    /// Audio (a microphone).
    #[default]
    Audio,
    /// Video (a camera).
    Video,
    /// A shared screen.
    ScreenShare,
}

#[cfg(feature = "schema")]
impl Example for TrackType {
    fn example() -> Self {
        TrackType::Video
    }
}

define_event! {
    /// A participant other than the agent joined the call.
    ///
    /// Who joined is the base `participant`; producers always set it.
    #[event(type = "plugin.edge.participant_joined", domain = Edge, base = plugin)]
    pub struct ParticipantJoinedEvent {
        /// The call joined.
        pub call: CallInfo,
    }
}

define_event! {
    /// A participant other than the agent left the call.
    ///
    /// Who left is the base `participant`; producers always set it.
    #[event(type = "plugin.edge.participant_left", domain = Edge, base = plugin)]
    pub struct ParticipantLeftEvent {
        /// The call left.
        pub call: CallInfo,
    }
}

define_event! {
    /// The call ended, as the edge transport saw it (the call session reports it as
    /// [`CallSessionCallEndedEvent`](crate::call::CallSessionCallEndedEvent)).
    #[event(type = "plugin.edge.call_ended", domain = Edge, base = plugin)]
    pub struct EdgeCallEndedEvent {
        /// The call that ended.
        pub call: CallInfo,
    }
}

define_event! {
    /// A media track was added to the call; the base `participant` is whose track it is.
    #[event(type = "plugin.edge.track_added", domain = Edge, base = plugin)]
    pub struct TrackAddedEvent {
        /// The track's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub track_id: Option<String>,
        /// What the track carries.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub track_type: Option<TrackType>,
    }
}

define_event! {
    /// A media track was removed from the call; the base `participant` is whose track it
    /// was.
    #[event(type = "plugin.edge.track_removed", domain = Edge, base = plugin)]
    pub struct TrackRemovedEvent {
        /// The track's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub track_id: Option<String>,
        /// What the track carried.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub track_type: Option<TrackType>,
    }
}

define_event! {
    /// Audio arrived from a participant (the base `participant`). High volume: silence it
    /// when not needed.
    #[event(type = "plugin.edge.audio_received", domain = Edge, base = plugin)]
    pub struct AudioReceivedEvent {
        /// The audio.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub pcm_data: Option<PcmData>,
    }
}

/// Every edge transport event type, for [`catalogue::all`](crate::catalogue::all).
pub fn event_infos() -> Vec<crate::EventInfo> {
    vec![
        crate::EventInfo::of::<ParticipantJoinedEvent>(),
        crate::EventInfo::of::<ParticipantLeftEvent>(),
        crate::EventInfo::of::<EdgeCallEndedEvent>(),
        crate::EventInfo::of::<TrackAddedEvent>(),
        crate::EventInfo::of::<TrackRemovedEvent>(),
        crate::EventInfo::of::<AudioReceivedEvent>(),
    ]
}
