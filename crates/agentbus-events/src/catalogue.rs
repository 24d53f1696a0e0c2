//! The whole catalogue: every event type agentbus defines, in one list.

use crate::EventInfo;

/// Every event type of the catalogue, grouped by domain.
pub fn all() -> Vec<EventInfo> {
    let mut all = vec![EventInfo::of::<crate::base::ExceptionEvent>()];
    all.push(EventInfo::of::<crate::bus::SubscriberLaggedEvent>());
    all.push(EventInfo::of::<crate::bus::SubscriberLaggedEvent>());
    all.extend(crate::stream::event_infos());
    all.extend(crate::react::event_infos());
    all
}
