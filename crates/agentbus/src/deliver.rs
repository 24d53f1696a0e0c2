//! The one delivery routine behind every send (`send(..).await`, `try_send`,
//! `blocking_send`), and the bus's own events (handler failures, lag).
//!
//! A delivery attempt is synchronous and all-or-nothing:
//! 1. route the event (one lock-free load, one `TypeId` lookup) and check registration;
//! 2. when the caller can wait: look (read-only) for a full `Block` subscriber. If there
//!    is one, nothing is sent and nothing is held: the attempt returns it, the caller
//!    waits for room in it (asynchronously, or parked) and tries again. (The first
//!    subscriber needs no look: step 3 reserves in it before anything is pushed, and a
//!    full one ends the attempt the same way.);
//! 3. one pass over the subscribers: reserve a place and push at once. The `seq` is taken
//!    and the event stamped at the first subscriber that accepts it, so when every
//!    subscriber refuses (full `Error` ones, full `Block` ones when the caller cannot
//!    wait) the send is an `Err` and no `seq` is consumed. `DropOldest` subscribers drop
//!    their oldest delivery when full. A `Block` subscriber that step 2 found with room
//!    but another thread filled since takes the delivery past its capacity (see
//!    `Subscriber::reserve_past_capacity`): by at most one per thread sending at that
//!    instant. No step here waits.
//!
//! One pass rather than "reserve everywhere, then push everywhere": with two passes a
//! consumer sees its place reserved long before the delivery arrives and spins for it,
//! which made 100 subscribers 0.75x as fast (`bench bus`, N=100).

use std::sync::atomic::Ordering::*;
use std::sync::{Arc, Weak};

use agentbus_events::base::ExceptionEvent;
use agentbus_events::bus::SubscriberLaggedEvent;
use agentbus_events::{DynEvent, Event, EventMeta, Outgoing, Seq};

use crate::consumer::{Failure, current_subscriber};
use crate::core::{Core, Node};
use crate::routes::{Destination, Routes};
use crate::slots::NoRoom;
use crate::subscriber::{Push, Subscriber};
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

    // Step 2: a full `Block` subscriber to wait for (read-only: nothing to give back).
    // The first subscriber needs no look: step 3 reserves in it before anything is pushed.
    // One being removed is left to step 3, which skips it once closed (waiting for it
    // here would return at once, again and again, until it is).
    if mode == Mode::Wait {
        for sub in subs.iter().skip(1) {
            if sub.options.overflow == Overflow::Block
                && sub.is_full()
                && !sub.is_closing()
                && current_subscriber() != Some(sub.id)
            {
                return Attempt::WaitFor(Arc::clone(sub), event);
            }
        }
    }

    // Step 3: one pass, reserve and push.
    let mut pending = Some(event);
    let mut shared: Option<Arc<dyn DynEvent>> = None;
    let mut seq = None;
    let mut refused = Vec::new();
    let last = subs.len().saturating_sub(1);
    for (i, sub) in subs.iter().enumerate() {
        let reservation = match sub.options.overflow {
            Overflow::DropOldest => None,
            policy => match sub.reserve() {
                Ok(reservation) => Some(reservation),
                Err(NoRoom::Closed) => continue,
                Err(NoRoom::Full) => {
                    let can_wait = policy == Overflow::Block
                        && mode == Mode::Wait
                        && current_subscriber() != Some(sub.id);
                    if !can_wait {
                        refused.push(sub.refusal());
                        continue;
                    }
                    match pending.take() {
                        // Nothing pushed yet: wait for room, holding nothing.
                        Some(event) => return Attempt::WaitFor(Arc::clone(sub), event),
                        None => match sub.reserve_past_capacity() {
                            Ok(reservation) => Some(reservation),
                            Err(_) => continue,
                        },
                    }
                }
            },
        };
        // Accepted: stamp on the first acceptance; the last subscriber takes the sender's
        // copy, every other one a clone.
        if shared.is_none() {
            let Some(event) = pending.take() else { break };
            let taken = next_seq(&core, &dest, event_type);
            seq = Some(taken);
            shared = Some(event.into_stamped(taken));
        }
        let stamped = if i == last {
            shared.take()
        } else {
            shared.clone()
        };
        let Some(stamped) = stamped else { break };
        match reservation {
            Some(reservation) => sub.commit(reservation, stamped),
            None => {
                if let Push::Dropped { lag: Some(lag) } = sub.push_dropping_oldest(stamped) {
                    publish_lag(node, sub, lag);
                }
            }
        }
    }
    match seq {
        Some(seq) => Attempt::Done(Ok(Sent { seq, refused })),
        // No subscriber (or every one removed since the routes were loaded): sent, to
        // nobody.
        None if refused.is_empty() => Attempt::Done(Ok(Sent {
            seq: next_seq(&core, &dest, event_type),
            refused,
        })),
        // Every subscriber refused: not sent, and no `seq` consumed.
        None => Attempt::Done(Err(SendError::Full { refused })),
    }
}

/// Takes the next `seq`, counting an unregistered type (lenient mode).
fn next_seq(core: &Core, dest: &Destination<'_>, event_type: &'static str) -> Seq {
    if !dest.registered {
        core.unregistered.fetch_add(1, Relaxed);
    }
    let n = core.hot.seq.fetch_add(1, Relaxed);
    // The counter starts at 1 and cannot wrap (2^64 sends).
    let seq = Seq::new(n).unwrap_or(Seq::FIRST);
    if !dest.silent {
        tracing::trace!(event_type, %seq, "send");
    }
    seq
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
