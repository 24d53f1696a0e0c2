//! [`Publisher`]: where an agent sends the bus events its work implies.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use agentbus::{EventManager, SendError, Sent};
use agentbus_events::DynEvent;
use agentbus_events::react::ReactEvent;

/// A boxed future returned by [`EventSink::publish_async`].
pub type PublishFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Somewhere events go: the bus, or any sink a user plugs in.
///
/// The agent's run loop calls `publish_async` on its task for every event, in order, and
/// awaits it: a sink that applies backpressure (the bus, for a subscriber with the
/// `Block` policy such as the store) slows the run instead of losing events. Synchronous
/// callers (`Agent::finish`) use `publish`, which must not block.
pub trait EventSink: Send + Sync + 'static {
    /// Hands one event to the sink without waiting. Failures are the sink's to report
    /// (log, count); the agent does not stop because a sink failed.
    fn publish(&self, event: Box<dyn DynEvent>);

    /// Hands one event to the sink from async code, waiting while the sink asks to
    /// (backpressure). The default calls [`publish`](Self::publish) and does not wait
    /// (its future is zero-sized: no allocation).
    fn publish_async(&self, event: Box<dyn DynEvent>) -> PublishFuture<'_> {
        self.publish(event);
        Box::pin(Done)
    }
}

/// A future that is already complete; zero-sized, so boxing it does not allocate.
struct Done;

impl Future for Done {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        std::task::Poll::Ready(())
    }
}

/// A cheap, cloneable handle on an [`EventSink`].
#[derive(Clone)]
pub struct Publisher {
    sink: Arc<dyn EventSink>,
    /// The same sink when it is the bus, which the run loop sends its events to directly
    /// (see `publish_react`).
    bus: Option<Arc<BusSink>>,
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
            bus: None,
            refused: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A publisher sending to `bus`. The run loop publishes with
    /// [`send(..).await`](EventManager::send): a subscriber with the `Block` policy whose
    /// queue is full (a store that fell behind) makes the run wait for room, so it loses
    /// nothing; `DropOldest` subscribers never slow the run. Synchronous publishes use
    /// [`EventManager::try_send`], which never waits. Refusals (a full `Error`
    /// subscriber, a full `Block` one on the synchronous path or from its own handler, a
    /// shut-down bus) are logged at debug level and counted in
    /// [`refused`](Self::refused).
    pub fn bus(bus: EventManager) -> Self {
        let refused = Arc::new(AtomicU64::new(0));
        let sink = Arc::new(BusSink {
            bus,
            refused: refused.clone(),
        });
        Self {
            sink: sink.clone(),
            bus: Some(sink),
            refused,
        }
    }

    /// How many events the bus refused for at least one subscriber (see
    /// [`bus`](Self::bus)); always 0 for other sinks.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Publishes one event without waiting.
    pub fn publish(&self, event: Box<dyn DynEvent>) {
        self.sink.publish(event);
    }

    /// Publishes one event, waiting while the sink applies backpressure.
    pub async fn publish_async(&self, event: Box<dyn DynEvent>) {
        self.sink.publish_async(event).await;
    }

    /// Publishes a copy of one event of the agent loop as
    /// [`publish_async`](Self::publish_async) does; a bus gets the copy made straight
    /// into the allocation its subscribers share (no box, no boxed future, no second
    /// copy).
    pub(crate) async fn publish_react(&self, event: &ReactEvent) {
        match &self.bus {
            Some(sink) => sink.account(sink.bus.send(event.to_shared()).await),
            None => self.sink.publish_async(event.clone().into_dyn()).await,
        }
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

impl BusSink {
    /// Counts and logs a send that did not reach every subscriber.
    fn account(&self, result: Result<Sent, SendError>) {
        match result {
            Ok(sent) if sent.is_complete() => {}
            Ok(sent) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                for refusal in sent.refused() {
                    tracing::debug!(%refusal, seq = %sent.seq(), "a bus subscriber refused an agent event");
                }
            }
            Err(error) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                match error {
                    SendError::Full { .. } | SendError::Shutdown => {
                        tracing::debug!(%error, "bus refused an agent event");
                    }
                    other => tracing::warn!(error = %other, "bus refused an agent event"),
                }
            }
        }
    }
}

impl EventSink for BusSink {
    fn publish(&self, event: Box<dyn DynEvent>) {
        self.account(self.bus.try_send(event));
    }

    fn publish_async(&self, event: Box<dyn DynEvent>) -> PublishFuture<'_> {
        Box::pin(async move { self.account(self.bus.send(event).await) })
    }
}
