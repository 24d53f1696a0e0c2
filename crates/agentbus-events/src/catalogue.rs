//! The whole catalogue: every event type agentbus defines, in one list.

use crate::EventInfo;

/// Every event type of the catalogue, grouped by domain.
pub fn all() -> Vec<EventInfo> {
    vec![EventInfo::of::<crate::base::ExceptionEvent>()]
}
