//! [`CallSession`]: the call-session side of a conversation — the call created and ended,
//! its session started and ended, who joined and left (the agent included), the
//! participant counts, transcription started and stopped, and closed captions of what
//! was said, recording started and stopped — published as the catalogue's `call.*`
//! events and `agent.joined_call` / `agent.left_call`.
//!
//! An edge that hosts calls itself (the browser edge: one call per page) drives a
//! `CallSession`; an edge on a video platform would publish what the platform reports.
//! The transport's own view (`plugin.edge.*`) is [`InstrumentedTransport`]'s.
//!
//! [`InstrumentedTransport`]: crate::transport::InstrumentedTransport

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use agentbus_events::Participant;
use agentbus_events::agent::{AgentJoinedCallEvent, AgentLeftCallEvent};
use agentbus_events::call::{
    CallCreatedEvent, CallInfo, CallRecordingStartedEvent, CallRecordingStoppedEvent,
    CallSessionCallEndedEvent, CallSessionEndedEvent, CallSessionParticipantCountsUpdatedEvent,
    CallSessionParticipantJoinedEvent, CallSessionParticipantLeftEvent, CallSessionStartedEvent,
    CallTranscriptionStartedEvent, CallTranscriptionStoppedEvent, ClosedCaptionEvent,
};
use chrono::Utc;

use crate::publish::Emitter;

/// The role of a participant in the counts of `call.session_participant_count_updated`.
const USER_ROLE: &str = "user";
const AGENT_ROLE: &str = "agent";

/// One call with one session: a user and the agent. Shared by reference (`&self`
/// methods), so captions can come from another task while the call runs.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use agentbus::SubscribeOptions;
/// use agentbus_events::{DynEvent, Participant};
/// use agentbus_voice::call::CallSession;
/// use agentbus_voice::publish::Emitter;
/// use futures::StreamExt;
///
/// let bus = agentbus::EventManager::new();
/// let mut events = bus.stream::<Arc<dyn DynEvent>>("log", SubscribeOptions::new()).unwrap();
/// let emitter = Emitter::new(bus.clone(), "browser").with_session(Some("s-1".into()));
/// let user = Participant { user_id: "guest".into(), ..Participant::default() };
/// let call = CallSession::new(emitter, "call-1", user);
/// call.start().await;
/// call.caption_user("What is the capital of France?").await;
/// call.end(Some("hung up")).await;
/// assert_eq!(events.next().await.unwrap().event_type(), "call.created");
/// # }
/// ```
#[derive(Debug)]
pub struct CallSession {
    emitter: Emitter,
    call: CallInfo,
    user: Participant,
    agent: Participant,
    started: Mutex<Option<Instant>>,
}

impl CallSession {
    /// The call `call_id` (type `default`) between `user` and the agent, published
    /// through `emitter` (its session id names the call session).
    pub fn new(emitter: Emitter, call_id: impl Into<String>, user: Participant) -> Self {
        Self {
            emitter,
            call: CallInfo {
                call_type: Some("default".into()),
                ..CallInfo::new(call_id)
            },
            user,
            agent: Participant {
                user_id: "agent".into(),
                name: Some("agentbus".into()),
                ..Participant::default()
            },
            started: Mutex::new(None),
        }
    }

    /// The call.
    pub fn call(&self) -> &CallInfo {
        &self.call
    }

    fn meta_of(&self, participant: Option<&Participant>) -> agentbus_events::EventMeta {
        let mut meta = self.emitter.meta();
        meta.participant = participant.map(|p| Box::new(p.clone()));
        meta
    }

    async fn counts(&self, users: u64, agents: u64) {
        let mut by_role = BTreeMap::new();
        by_role.insert(USER_ROLE.to_owned(), users);
        by_role.insert(AGENT_ROLE.to_owned(), agents);
        self.emitter
            .emit(CallSessionParticipantCountsUpdatedEvent {
                meta: self.meta_of(None),
                call_cid: self.call.cid(),
                participants_count_by_role: by_role,
                anonymous_participant_count: 0,
            })
            .await;
    }

    /// The call is created, its session starts, the agent and the user join, and
    /// transcription starts (once; later calls do nothing).
    pub async fn start(&self) {
        {
            let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
            if started.is_some() {
                return;
            }
            *started = Some(Instant::now());
        }
        let cid = self.call.cid();
        self.emitter
            .emit(CallCreatedEvent {
                meta: self.meta_of(None),
                call_cid: cid.clone(),
                call: self.call.clone(),
                members: vec![self.user.clone(), self.agent.clone()],
            })
            .await;
        self.emitter
            .emit(CallSessionStartedEvent {
                meta: self.meta_of(None),
                call_cid: cid.clone(),
                call: self.call.clone(),
            })
            .await;
        self.emitter
            .emit(AgentJoinedCallEvent {
                meta: self.meta_of(Some(&self.agent)),
                call: self.call.clone(),
            })
            .await;
        for who in [&self.agent, &self.user] {
            self.emitter
                .emit(CallSessionParticipantJoinedEvent {
                    meta: self.meta_of(Some(who)),
                    call_cid: cid.clone(),
                })
                .await;
        }
        self.counts(1, 1).await;
        self.emitter
            .emit(CallTranscriptionStartedEvent {
                meta: self.meta_of(None),
                call_cid: cid,
                egress_id: None,
            })
            .await;
    }

    async fn caption(&self, speaker: &Participant, text: &str) {
        let text = text.trim();
        let live = self
            .started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        if text.is_empty() || !live {
            return;
        }
        self.emitter
            .emit(ClosedCaptionEvent {
                meta: self.meta_of(Some(speaker)),
                call_cid: self.call.cid(),
                text: text.to_owned(),
                speaker_id: speaker.user_id.clone(),
                start_time: None,
                end_time: Some(Utc::now()),
            })
            .await;
    }

    /// The call is being recorded (`recording_type` e.g. `individual`; `egress_id` names
    /// the recording).
    pub async fn recording_started(&self, recording_type: &str, egress_id: &str) {
        self.emitter
            .emit(CallRecordingStartedEvent {
                meta: self.meta_of(None),
                call_cid: self.call.cid(),
                recording_type: Some(recording_type.to_owned()),
                egress_id: Some(egress_id.to_owned()),
            })
            .await;
    }

    /// The call's recording stopped.
    pub async fn recording_stopped(&self, recording_type: &str, egress_id: &str) {
        self.emitter
            .emit(CallRecordingStoppedEvent {
                meta: self.meta_of(None),
                call_cid: self.call.cid(),
                recording_type: Some(recording_type.to_owned()),
                egress_id: Some(egress_id.to_owned()),
            })
            .await;
    }

    /// A closed caption of what the user said.
    pub async fn caption_user(&self, text: &str) {
        self.caption(&self.user, text).await;
    }

    /// A closed caption of what the agent said.
    pub async fn caption_agent(&self, text: &str) {
        self.caption(&self.agent, text).await;
    }

    /// Transcription stops, the user and the agent leave, the session and the call end
    /// (once, and only after [`start`](Self::start)).
    pub async fn end(&self, reason: Option<&str>) {
        let taken = self
            .started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(started) = taken else {
            return;
        };
        let cid = self.call.cid();
        let duration_seconds = started.elapsed().as_secs();
        self.emitter
            .emit(CallTranscriptionStoppedEvent {
                meta: self.meta_of(None),
                call_cid: cid.clone(),
                egress_id: None,
            })
            .await;
        self.emitter
            .emit(CallSessionParticipantLeftEvent {
                meta: self.meta_of(Some(&self.user)),
                call_cid: cid.clone(),
                duration_seconds,
                reason: reason.map(str::to_owned),
            })
            .await;
        self.counts(0, 1).await;
        self.emitter
            .emit(CallSessionParticipantLeftEvent {
                meta: self.meta_of(Some(&self.agent)),
                call_cid: cid.clone(),
                duration_seconds,
                reason: Some("the user left".into()),
            })
            .await;
        self.emitter
            .emit(AgentLeftCallEvent {
                meta: self.meta_of(Some(&self.agent)),
                call: self.call.clone(),
            })
            .await;
        self.counts(0, 0).await;
        self.emitter
            .emit(CallSessionEndedEvent {
                meta: self.meta_of(None),
                call_cid: cid.clone(),
                call: self.call.clone(),
            })
            .await;
        self.emitter
            .emit(CallSessionCallEndedEvent {
                meta: self.meta_of(None),
                call_cid: cid,
                call: self.call.clone(),
                reason: reason.map(str::to_owned),
            })
            .await;
    }
}
