//! [`Publisher`]: where an agent sends the bus events its work implies.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use agentbus::{BusError, EventManager};
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
    refused: Arc<AtomicU64>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

impl Publisher {
    /// A publisher sending to `sink`.
    pub fn new(sink: impl EventSink) -> Self {
        Self::from_arc(Arc::new(sink))
    }

    /// A publisher sending to an already shared sink.
    pub fn from_arc(sink: Arc<dyn EventSink>) -> Self {
        Self {
            sink,
            refused: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A publisher sending to `bus` with [`EventManager::send_dyn`], which never waits
    /// inside an async task: a subscriber whose bounded queue is full applies its own
    /// overflow policy (drop-oldest with a lag event, or refusal), and the agent's stream
    /// goes on. Refusals (a full `Block`/`Error` subscriber, a shut-down bus) are logged at
    /// debug level and counted in [`refused`](Self::refused).
    pub fn bus(bus: EventManager) -> Self {
        let refused = Arc::new(AtomicU64::new(0));
        let sink = BusSink {
            bus,
            refused: refused.clone(),
        };
        Self {
            sink: Arc::new(sink),
            refused,
        }
    }

    /// How many events the bus refused for at least one subscriber (see
    /// [`bus`](Self::bus)); always 0 for other sinks.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
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

/// The bus as a sink; see [`Publisher::bus`].
struct BusSink {
    bus: EventManager,
    refused: Arc<AtomicU64>,
}

impl EventSink for BusSink {
    fn publish(&self, event: Box<dyn DynEvent>) {
        if let Err(error) = self.bus.send_dyn(event) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            match error {
                BusError::Full { .. } | BusError::Shutdown => {
                    tracing::debug!(%error, "bus refused an agent event");
                }
                other => tracing::warn!(error = %other, "bus refused an agent event"),
            }
        }
    }
}
