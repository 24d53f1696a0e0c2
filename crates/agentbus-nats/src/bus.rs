//! The only place this crate touches the bus API: one wildcard subscription (export) and one
//! typed publish path (import). When the bus API changes, this module changes.

use std::future::Future;
use std::sync::Arc;

use agentbus::{EventManager, Overflow, SubscribeOptions, SubscriptionHandle};
use agentbus_events::{DynEvent, Registry};

use crate::error::NatsError;

/// Subscribes `handler` to every event of `bus` with a bounded queue of `capacity` and the
/// `overflow` policy.
pub(crate) fn subscribe_all<F, Fut>(
    bus: &EventManager,
    name: &str,
    capacity: usize,
    overflow: Overflow,
    handler: F,
) -> Result<SubscriptionHandle, NatsError>
where
    F: Fn(Arc<dyn DynEvent>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let options = SubscribeOptions::new()
        .capacity(capacity)
        .overflow(overflow);
    bus.subscribe_with(name, options, handler)
        .map_err(|e| NatsError::Bus(e.to_string()))
}

/// The decoder for events coming in (the bus's registry: the catalogue plus whatever the
/// application registered).
pub(crate) fn registry(bus: &EventManager) -> Registry {
    bus.registry()
}

/// Publishes a decoded event, typed, on `bus`, waiting for room in `Block` subscribers.
pub(crate) async fn publish(bus: &EventManager, event: Box<dyn DynEvent>) -> Result<(), String> {
    bus.send(event).await.map(|_| ()).map_err(|e| e.to_string())
}

/// Waits until every delivery queued on `bus` has been handled.
pub(crate) async fn idle(bus: &EventManager, timeout: std::time::Duration) -> bool {
    bus.wait(timeout).await.is_ok()
}
