//! [`EventStream`]: a subscription read as a `Stream`.
//!
//! Built on an ordinary subscriber (so capacity, overflow policy, stats and shutdown work
//! as for any handler) whose handler hands each event to the stream through a one-slot
//! channel: the subscriber's queue is the buffer, and a reader that falls behind fills it
//! and meets the overflow policy there.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;

use std::sync::Arc;

use crate::core::Node;
use crate::subscription::{self, SubscriptionHandle};
use crate::{EventSet, SubscribeError, SubscribeOptions};

/// Events of a subscription, as a [`Stream`]; made by
/// [`EventManager::stream`](crate::EventManager::stream).
///
/// Holds at most the subscription's capacity plus two events (one being handed over, one
/// in the hand-over slot). Dropping it unsubscribes. It ends (`None`) when the bus shuts
/// down and everything queued was read.
#[must_use = "a stream does nothing unless polled; dropping it unsubscribes"]
pub struct EventStream<T> {
    events: mpsc::Receiver<T>,
    handle: Option<SubscriptionHandle>,
}

impl<T: EventSet> EventStream<T> {
    pub(crate) fn subscribe(
        node: &Arc<Node>,
        name: String,
        options: SubscribeOptions,
    ) -> Result<Self, SubscribeError> {
        let (tx, events) = mpsc::channel::<T>(1);
        let handle = subscription::subscribe(node, name, options, move |event: T| {
            let tx = tx.clone();
            async move {
                // A closed channel means the stream was dropped (and is unsubscribing):
                // the event is discarded, as for any unsubscribed handler.
                let _ = tx.send(event).await;
            }
        })?;
        Ok(Self {
            events,
            handle: Some(handle),
        })
    }

    /// The subscription behind the stream (its name and counters).
    pub fn subscription(&self) -> Option<&SubscriptionHandle> {
        self.handle.as_ref()
    }
}

impl<T> std::fmt::Debug for EventStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("subscription", &self.handle)
            .finish()
    }
}

impl<T> Stream for EventStream<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.events.poll_recv(cx)
    }
}

impl<T> Drop for EventStream<T> {
    fn drop(&mut self) {
        self.events.close();
        if let Some(handle) = self.handle.take() {
            handle.unsubscribe();
        }
    }
}
