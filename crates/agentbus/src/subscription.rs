//! Subscribing: validating a subscription, starting its consumer task, and the handle
//! that stops it.

use std::any::TypeId;
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};

use crate::consumer::{CURRENT, CurrentDelivery, consume};
use crate::core::{Node, lock, next_id};
use crate::deliver::report_failure;
use crate::handler::HandlerOutcome;
use crate::subscriber::Subscriber;
use crate::{EventSet, Registration, SubscribeError, SubscribeOptions, SubscriberStats};

/// Subscribes `handler` (see `EventManager::subscribe_with`).
pub(crate) fn subscribe<T, F, Fut>(
    node: &Arc<Node>,
    name: String,
    options: SubscribeOptions,
    handler: F,
) -> Result<SubscriptionHandle, SubscribeError>
where
    T: EventSet,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: HandlerOutcome,
{
    if name.is_empty() {
        return Err(SubscribeError::EmptyName);
    }
    if options.capacity == 0 {
        return Err(SubscribeError::ZeroCapacity { name });
    }
    if options.concurrency == 0 {
        return Err(SubscribeError::ZeroConcurrency { name });
    }
    if node.is_closed() {
        return Err(SubscribeError::Shutdown);
    }
    let members = T::members();
    let core = node.core.load_full();
    let mut state = lock(&core.state);
    if state.subscribers.iter().any(|s| *s.name == *name) {
        return Err(SubscribeError::NameTaken { name });
    }
    let mut unregistered = 0;
    for info in members.iter().flatten() {
        let registered = state
            .registry
            .get(info.event_type)
            .is_some_and(|r| r.type_id() == info.type_id());
        if !registered {
            if core.registration == Registration::Strict {
                return Err(SubscribeError::Unregistered {
                    event_type: info.event_type.to_owned(),
                });
            }
            unregistered += 1;
        }
    }
    core.unregistered.fetch_add(unregistered, Relaxed);
    let member_types = members.map(|infos| {
        let mut types: Vec<(TypeId, &'static str)> = Vec::new();
        for info in infos {
            if !types.iter().any(|&(t, _)| t == info.type_id()) {
                types.push((info.type_id(), info.event_type));
            }
        }
        types
    });
    let id = next_id();
    let sub = Arc::new(Subscriber::new(
        id,
        Arc::from(name.as_str()),
        member_types,
        options,
        node.id,
        Arc::clone(&core.idle),
    ));
    let weak = Arc::downgrade(node);
    let consumer = consume::<T, F, Fut, _>(Arc::clone(&sub), handler, move |sub, failure| {
        report_failure(&weak, sub, failure)
    });
    let task = core
        .handle
        .spawn(CURRENT.scope(CurrentDelivery { subscriber: id }, consumer));
    sub.set_task(task);
    state.subscribers.push(Arc::clone(&sub));
    core.rebuild_routes(&state);
    tracing::debug!(subscriber = name, id, "subscribed");
    Ok(SubscriptionHandle {
        node: Arc::downgrade(node),
        sub,
    })
}

/// A subscription. Dropping the handle does **not** unsubscribe (the subscription lives
/// as long as the bus, like a decorator-registered handler); call
/// [`unsubscribe`](SubscriptionHandle::unsubscribe) to stop it.
#[derive(Clone)]
pub struct SubscriptionHandle {
    node: Weak<Node>,
    sub: Arc<Subscriber>,
}

impl std::fmt::Debug for SubscriptionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionHandle")
            .field("id", &self.sub.id)
            .field("name", &self.sub.name())
            .finish()
    }
}

impl SubscriptionHandle {
    /// The subscription's id (unique in the process).
    pub fn id(&self) -> u64 {
        self.sub.id
    }

    /// The name it was subscribed under.
    pub fn name(&self) -> &str {
        self.sub.name()
    }

    /// Whether it still receives new events.
    pub fn is_active(&self) -> bool {
        !self.sub.is_closing()
    }

    /// Its counters.
    pub fn stats(&self) -> SubscriberStats {
        subscriber_stats(&self.sub)
    }

    /// Stops delivering new events to this handler. Deliveries already queued are still
    /// handled, then its consumer task ends. Returns false if it was already removed.
    pub fn unsubscribe(self) -> bool {
        let Some(node) = self.node.upgrade() else {
            return false;
        };
        let core = node.core.load_full();
        let removed = {
            let mut state = lock(&core.state);
            let before = state.subscribers.len();
            state.subscribers.retain(|s| s.id != self.sub.id);
            let removed = state.subscribers.len() != before;
            if removed {
                core.rebuild_routes(&state);
            }
            removed
        };
        if removed {
            tracing::debug!(subscriber = self.sub.name(), "unsubscribed");
            self.sub.finish();
            core.idle.notify_always();
        }
        removed
    }
}

pub(crate) fn subscriber_stats(sub: &Subscriber) -> SubscriberStats {
    let counters = sub.counters();
    SubscriberStats {
        id: sub.id,
        name: sub.name().to_owned(),
        event_types: sub.members.iter().map(|&(_, t)| t).collect(),
        wildcard: sub.is_wildcard(),
        capacity: sub.options.capacity,
        overflow: sub.options.overflow,
        concurrency: sub.options.concurrency,
        queue_depth: counters.queue_depth,
        delivered: counters.delivered,
        failed: counters.failed,
        dropped: counters.dropped,
        cancelled: counters.cancelled,
        handler_time: counters.handler_time,
    }
}
