//! The whole catalogue: every event type agentbus defines, in one list.

use crate::EventInfo;

/// Every event type of the catalogue, grouped by domain.
pub fn all() -> Vec<EventInfo> {
    let mut all = vec![EventInfo::of::<crate::base::ExceptionEvent>()];
    // The Vision Agents catalogue, one domain module at a time.
    all.extend(crate::agent::event_infos());
    all.extend(crate::edge::event_infos());
    all.extend(crate::call::event_infos());
    all.extend(crate::llm::event_infos());
    all.extend(crate::tool::event_infos());
    all.extend(crate::realtime::event_infos());
    all.extend(crate::stt::event_infos());
    all.extend(crate::tts::event_infos());
    all.extend(crate::vad::event_infos());
    all.extend(crate::turn::event_infos());
    all.extend(crate::vlm::event_infos());
    all.extend(crate::video::event_infos());
    all.extend(crate::plugin::event_infos());
    all.push(EventInfo::of::<crate::bus::SubscriberLaggedEvent>());
    all.extend(crate::stream::event_infos());
    all.extend(crate::react::event_infos());
    all
}
