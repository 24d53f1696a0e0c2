//! [`Publisher`]: where an agent sends the bus events its work implies.

use std::sync::Arc;

use agentbus_events::DynEvent;

/// Somewhere events go: the bus, or any sink a user plugs in.
///
/// `publish` is called on the agent's task for every event, in order; it must not block
/// (the agent's stream must not stall because a sink is slow). The bus's `send`
/// satisfies this: it never blocks and applies each subscriber's bounded-queue policy.
pub trait EventSink: Send + Sync + 'static {
    /// Hands one event to the sink. Failures are the sink's to report (log, count); the
    /// agent does not stop because a sink failed.
    fn publish(&self, event: Box<dyn DynEvent>);
}

/// A cheap, cloneable handle on an [`EventSink`].
#[derive(Clone)]
pub struct Publisher {
    sink: Arc<dyn EventSink>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

impl Publisher {
    /// A publisher sending to `sink`.
    pub fn new(sink: impl EventSink) -> Self {
        Self {
            sink: Arc::new(sink),
        }
    }

    /// A publisher sending to an already shared sink.
    pub fn from_arc(sink: Arc<dyn EventSink>) -> Self {
        Self { sink }
    }

    /// Publishes one event.
    pub fn publish(&self, event: Box<dyn DynEvent>) {
        self.sink.publish(event);
    }
}

impl<F> EventSink for F
where
    F: Fn(Box<dyn DynEvent>) + Send + Sync + 'static,
{
    fn publish(&self, event: Box<dyn DynEvent>) {
        self(event)
    }
}
