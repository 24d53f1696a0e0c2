//! The one delivery routine behind every send (`send(..).await`, `try_send`,
//! `blocking_send`), and the bus's own events (handler failures, lag).
//!
//! A delivery attempt is synchronous and all-or-nothing:
//! 1. route the event (one lock-free load, one `TypeId` lookup) and check registration;
//! 2. reserve a place in every `Block` and `Error` subscriber. A full `Error`
//!    subscriber — or a full `Block` one when the caller cannot wait — is a refusal;
//!    a full `Block` subscriber the caller can wait for gives every reservation back
//!    and returns it, so the caller waits for room (asynchronously, or parked) and tries
//!    again. Nothing is held while waiting;
//! 3. if every subscriber refused: `Err`, and no `seq` is consumed;
//! 4. otherwise take a `seq`, stamp and share the event, and push it to every subscriber
//!    that did not refuse (`DropOldest` subscribers drop their oldest delivery when
//!    full). No step here waits.

use std::sync::atomic::Ordering::*;
use std::sync::{Arc, Weak};

use agentbus_events::base::ExceptionEvent;
use agentbus_events::bus::SubscriberLaggedEvent;
use agentbus_events::{Event, EventMeta, Outgoing, Seq};

use crate::consumer::{Failure, current_subscriber};
use crate::core::{Core, Node};
use crate::routes::Routes;
use crate::slots::NoRoom;
use crate::subscriber::{Push, Reservation, Subscriber};
use crate::{Overflow, Registration, SendError, Sent};

/// Whether the caller of a delivery attempt can wait for room in a `Block` subscriber.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Never wait: a full `Block` subscriber refuses (`try_send`).
    Try,
    /// Wait for room (`send(..).await`, `blocking_send`), except in the caller's own
    /// subscriber (a handler sending to its own full queue would deadlock).
    Wait,
}

/// How a delivery attempt ended.
pub(crate) enum Attempt<O> {
    /// Sent (possibly with refusals), or not sent at all.
    Done(Result<Sent, SendError>),
    /// A `Block` subscriber is full: nothing was sent and nothing is held; wait for room
    /// in it, then try again with the event given back.
    WaitFor(Arc<Subscriber>, O),
}

/// Marks a send in progress for as long as it lives.
struct SendGuard<'a> {
    core: &'a Core,
}

impl<'a> SendGuard<'a> {
    /// Counts a send in progress, loads the routes, then checks that the node is open:
    /// in that order. `shutdown` sets the closed flag before it rebuilds the routes
    /// without its subscribers, so a send that loads the rebuilt routes also sees the flag
    /// and is refused, instead of being accepted and reaching nobody; a send that loaded
    /// the old routes is counted, and `shutdown` waits for it before stopping them.
    fn enter(
        core: &'a Core,
        node: &Node,
    ) -> Result<(Self, arc_swap::Guard<Arc<Routes>>), SendError> {
        core.hot.in_send.fetch_add(1, SeqCst);
        let guard = Self { core };
        let routes = core.routes.load();
        if node.is_closed() {
            return Err(SendError::Shutdown);
        }
        Ok((guard, routes))
    }
}

impl Drop for SendGuard<'_> {
    fn drop(&mut self) {
        self.core.hot.in_send.fetch_sub(1, SeqCst);
    }
}

/// What phase 2 does for one subscriber.
#[derive(Clone, Copy)]
enum Slot {
    /// `DropOldest`: push, dropping the oldest delivery when full.
    Push,
    /// A reserved place to commit to.
    Reserved(Reservation),
    /// Full: the subscriber does not get the event.
    Refused,
    /// Removed since the routes were loaded: it is no longer a subscriber of the event.
    Gone,
}

/// Subscribers of one event whose slots live on the stack.
const INLINE_SLOTS: usize = 16;

/// One delivery attempt (see the module documentation).
pub(crate) fn attempt<O: Outgoing>(node: &Node, event: O, mode: Mode) -> Attempt<O> {
    let core = node.core.load();
    let (_guard, routes) = match SendGuard::enter(&core, node) {
        Ok(entered) => entered,
        Err(error) => return Attempt::Done(Err(error)),
    };
    let event_type = event.event_type();
    let dest = routes.destination(event.event_type_id(), event_type);
    if !dest.registered && core.registration == Registration::Strict {
        return Attempt::Done(Err(SendError::Unregistered {
            event_type: event_type.to_owned(),
        }));
    }
    let subs = dest.subs;

    // Phase 1: reserve.
    let mut inline = [Slot::Refused; INLINE_SLOTS];
    let mut heap = Vec::new();
    let slots: &mut [Slot] = if subs.len() <= INLINE_SLOTS {
        &mut inline[..subs.len()]
    } else {
        heap.resize(subs.len(), Slot::Refused);
        &mut heap
    };
    let mut refused = Vec::new();
    for (i, sub) in subs.iter().enumerate() {
        slots[i] = match sub.options.overflow {
            Overflow::DropOldest => Slot::Push,
            policy => match sub.reserve() {
                Ok(reservation) => Slot::Reserved(reservation),
                Err(NoRoom::Closed) => Slot::Gone,
                Err(NoRoom::Full) => {
                    if policy == Overflow::Block
                        && mode == Mode::Wait
                        && current_subscriber() != Some(sub.id)
                    {
                        cancel_all(&subs[..i], &slots[..i]);
                        return Attempt::WaitFor(Arc::clone(sub), event);
                    }
                    refused.push(sub.refusal());
                    Slot::Refused
                }
            },
        };
    }
    if !refused.is_empty()
        && slots
            .iter()
            .all(|s| matches!(s, Slot::Refused | Slot::Gone))
    {
        return Attempt::Done(Err(SendError::Full { refused }));
    }

    // Phase 2: stamp and push; nothing here waits or fails.
    if !dest.registered {
        core.unregistered.fetch_add(1, Relaxed);
    }
    let n = core.hot.seq.fetch_add(1, Relaxed);
    // The counter starts at 1 and cannot wrap (2^64 sends).
    let seq = Seq::new(n).unwrap_or(Seq::FIRST);
    if !dest.silent {
        tracing::trace!(event_type, %seq, "send");
    }
    let last = slots
        .iter()
        .rposition(|s| matches!(s, Slot::Push | Slot::Reserved(_)));
    let mut shared = Some(event.into_stamped(seq));
    for (i, (sub, slot)) in subs.iter().zip(slots.iter()).enumerate() {
        if matches!(slot, Slot::Refused | Slot::Gone) {
            continue;
        }
        // Every subscriber but the last gets a clone; the last takes the sender's.
        let event = if Some(i) == last {
            shared.take()
        } else {
            shared.as_ref().map(Arc::clone)
        };
        let Some(event) = event else { break };
        match *slot {
            Slot::Reserved(reservation) => sub.commit(reservation, event),
            Slot::Push => {
                if let Push::Dropped { lag: Some(lag) } = sub.push_dropping_oldest(event) {
                    publish_lag(node, sub, lag);
                }
            }
            Slot::Refused | Slot::Gone => {}
        }
    }
    Attempt::Done(Ok(Sent { seq, refused }))
}

/// Gives back the places reserved so far.
fn cancel_all(subs: &[Arc<Subscriber>], slots: &[Slot]) {
    for (sub, slot) in subs.iter().zip(slots) {
        if let Slot::Reserved(reservation) = *slot {
            sub.cancel(reservation);
        }
    }
}

/// `try_send` on a node.
pub(crate) fn try_send<O: Outgoing>(node: &Node, event: O) -> Result<Sent, SendError> {
    match attempt(node, event, Mode::Try) {
        Attempt::Done(result) => result,
        // `Mode::Try` never waits; should it ever, the event was not sent.
        Attempt::WaitFor(sub, _) => Err(SendError::Full {
            refused: vec![sub.refusal()],
        }),
    }
}

/// Publishes `bus.subscriber_lagged` for a new episode of drops.
fn publish_lag(node: &Node, sub: &Subscriber, (dropped, total_dropped): (u64, u64)) {
    tracing::warn!(
        subscriber = sub.name(),
        dropped,
        total_dropped,
        "subscriber lagging: dropping oldest events"
    );
    let event = SubscriberLaggedEvent {
        meta: EventMeta::new(),
        subscriber: sub.name().to_owned(),
        dropped,
        total_dropped,
        capacity: sub.options.capacity as u64,
    };
    if let Err(error) = try_send(node, event) {
        tracing::debug!(%error, "could not publish bus.subscriber_lagged");
    }
}

/// Publishes the `ExceptionEvent` for a failed handler call (the consumers' failure
/// callback). Failures while handling an `ExceptionEvent` are logged and counted, never
/// re-published (that could loop).
pub(crate) fn report_failure(node: &Weak<Node>, sub: &Subscriber, failure: Failure) {
    let node = node.upgrade();
    let Failure {
        error,
        event_type,
        event_id,
    } = failure;
    if event_type == ExceptionEvent::TYPE {
        if let Some(node) = &node {
            node.core.load().suppressed_exceptions.fetch_add(1, Relaxed);
        }
        tracing::error!(
            handler = sub.name(),
            %error,
            "a handler of base.exception failed; not publishing another ExceptionEvent"
        );
        return;
    }
    tracing::warn!(handler = sub.name(), event_type, %event_id, %error, "event handler failed");
    let Some(node) = node else { return };
    let event = ExceptionEvent {
        meta: EventMeta::new(),
        exc: error,
        handler: sub.name().to_owned(),
        failed_event_type: Some(event_type.to_owned()),
        failed_event_id: Some(event_id),
    };
    if let Err(error) = try_send(&node, event) {
        tracing::warn!(handler = sub.name(), %error, "could not publish ExceptionEvent");
    }
}
