//! A minimal async generator: an `async` block that yields items, driven as a
//! [`Stream`] on the consumer's own task (no task, no channel per item).
//!
//! The body receives a [`Yielder`]; `yielder.put(item).await` parks the item in a slot
//! and suspends the body once, so the stream returns the item to its consumer and the
//! body resumes at the consumer's next poll. Dropping the stream drops the body, which
//! cancels whatever it was awaiting.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures::Stream;
use futures::future::BoxFuture;

/// The slot one item waits in between the body and the stream.
type Slot<T> = Arc<Mutex<Option<T>>>;

/// Handed to a generator body: how it yields items.
pub(crate) struct Yielder<T> {
    slot: Slot<T>,
}

impl<T> Yielder<T> {
    /// Yields `item` to the stream's consumer; resumes when the consumer polls again.
    pub(crate) fn put(&self, item: T) -> impl Future<Output = ()> + Send + '_ {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(item);
        SuspendOnce { suspended: false }
    }
}

/// Pending on the first poll (without waking: the generator's stream returns the parked
/// item instead, and its consumer polls again), ready on the second.
struct SuspendOnce {
    suspended: bool,
}

impl Future for SuspendOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.suspended {
            Poll::Ready(())
        } else {
            self.suspended = true;
            Poll::Pending
        }
    }
}

/// A stream driven by a generator body.
pub(crate) struct Generator<T> {
    slot: Slot<T>,
    body: Option<BoxFuture<'static, ()>>,
}

impl<T: Send + 'static> Generator<T> {
    /// A stream of what `body` yields, ending when `body` returns.
    pub(crate) fn new<F, Fut>(body: F) -> Self
    where
        F: FnOnce(Yielder<T>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let slot: Slot<T> = Arc::new(Mutex::new(None));
        let yielder = Yielder { slot: slot.clone() };
        Self {
            slot,
            body: Some(Box::pin(body(yielder))),
        }
    }
}

impl<T> Stream for Generator<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let Some(body) = self.body.as_mut() else {
            return Poll::Ready(None);
        };
        let done = body.as_mut().poll(cx).is_ready();
        if done {
            self.body = None;
        }
        let item = self
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match item {
            Some(item) => Poll::Ready(Some(item)),
            None if done => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

impl<T> Unpin for Generator<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn yields_in_order_across_awaits() {
        let stream = Generator::new(|y| async move {
            for i in 0..5u32 {
                y.put(i).await;
                tokio::task::yield_now().await;
            }
        });
        let items: Vec<u32> = stream.collect().await;
        assert_eq!(items, vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn empty_body_ends() {
        let stream = Generator::<u8>::new(|_y| async move {});
        assert_eq!(stream.collect::<Vec<_>>().await, Vec::<u8>::new());
    }
}
