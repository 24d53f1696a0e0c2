//! Agent lifecycle events: user and agent turns, the agent joining and leaving calls, and
//! finishing.
//!
//! Provenance: these are Vision Agents' `vision_agents.core.agents.events`, listed only in
//! seed 001; their `type` strings come from Vision Agents' code. The seed's `participant`
//! fields are the base `participant`.

use crate::call::CallInfo;
use crate::define_event;

define_event! {
    /// The final transcript of what the user said, which starts an LLM turn. Fired in both
    /// classic speech-to-text and realtime modes: the event to listen to for "what did
    /// the user say".
    ///
    /// Who spoke is the base `participant`.
    #[event(type = "agent.user_transcript", domain = Agent, base = event)]
    pub struct UserTranscriptEvent {
        /// The user's final transcribed text.
        pub text: String,
    }
}

define_event! {
    /// The user started speaking. Who started speaking is the base `participant`.
    #[event(type = "agent.user_turn_started", domain = Agent, base = event)]
    pub struct UserTurnStartedEvent {}
}

define_event! {
    /// The user stopped speaking. Who stopped speaking is the base `participant`.
    #[event(type = "agent.user_turn_ended", domain = Agent, base = event)]
    pub struct UserTurnEndedEvent {}
}

define_event! {
    /// The agent started speaking: its first audio chunk left the pipeline. Carries only
    /// the base fields.
    #[event(type = "agent.agent_turn_started", domain = Agent, base = event)]
    pub struct AgentTurnStartedEvent {}
}

define_event! {
    /// The agent stopped speaking, either because it finished or because the user barged
    /// in.
    #[event(type = "agent.agent_turn_ended", domain = Agent, base = event)]
    pub struct AgentTurnEndedEvent {
        /// True if a user interruption cut the turn short.
        #[serde(default)]
        pub interrupted: bool,
    }
}

define_event! {
    /// The agent has joined a call.
    #[event(type = "agent.joined_call", domain = Agent, base = event)]
    pub struct AgentJoinedCallEvent {
        /// The call joined.
        pub call: CallInfo,
    }
}

define_event! {
    /// The agent has left a call.
    #[event(type = "agent.left_call", domain = Agent, base = event)]
    pub struct AgentLeftCallEvent {
        /// The call left.
        pub call: CallInfo,
    }
}

define_event! {
    /// The agent has finished (its `finish()` completed). Carries only the base fields.
    #[event(type = "agent.finish", domain = Agent, base = event)]
    pub struct AgentFinishEvent {}
}

/// Every agent lifecycle event type, for [`catalogue::all`](crate::catalogue::all).
pub fn event_infos() -> Vec<crate::EventInfo> {
    vec![
        crate::EventInfo::of::<UserTranscriptEvent>(),
        crate::EventInfo::of::<UserTurnStartedEvent>(),
        crate::EventInfo::of::<UserTurnEndedEvent>(),
        crate::EventInfo::of::<AgentTurnStartedEvent>(),
        crate::EventInfo::of::<AgentTurnEndedEvent>(),
        crate::EventInfo::of::<AgentJoinedCallEvent>(),
        crate::EventInfo::of::<AgentLeftCallEvent>(),
        crate::EventInfo::of::<AgentFinishEvent>(),
    ]
}
