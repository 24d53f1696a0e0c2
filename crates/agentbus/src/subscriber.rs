//! One subscriber's shared state and the lock-free protocol between its senders and its
//! consumer task (the consumer loops themselves are in `consumer.rs`).
//!
//! The queue is a lock-free segmented queue (`crossbeam_queue::SegQueue`, 24-byte slots
//! allocated 31 at a time and freed as they drain). Beside it, one atomic word, `state`,
//! carries the two facts senders and the consumer share:
//!
//! - the **count** of accepted deliveries not yet finished (reserved, queued, taken, or
//!   running). A sender reserves its place with one `fetch_add` before pushing; that add
//!   is also the capacity check. A reservation is committed (the delivery is pushed)
//!   right after, without waiting in between. The consumer gives places back in batches
//!   (see `consumer.rs`), so in a burst the word stays in the sender's cache instead of
//!   bouncing between cores on every event. The count therefore over-states the backlog
//!   by less than one batch: the bound is conservative. The one exception is a `Block`
//!   subscriber two threads fill at the same instant (see
//!   `Subscriber::reserve_past_capacity`): then it goes past its capacity by at most one
//!   delivery per thread sending.
//! - the **idle** bit: the consumer parks only by turning "count = what I hold" into
//!   "same count, idle" with one compare-and-swap, so no reservation can slip past it;
//!   the sender whose reservation saw the bit clears it and wakes the consumer when it
//!   commits. A burst costs one wake-up, not one per event, and no fence is needed on
//!   the send path.

use std::any::TypeId;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentbus_events::DynEvent;
use arc_swap::ArcSwap;
use crossbeam_queue::SegQueue;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::idle::IdleSignal;
use crate::slots::{NoRoom, Slots};
use crate::{Overflow, Refusal, SubscribeOptions};

/// Handled deliveries a serial consumer gives back to the count at once, at most; small
/// queues give back every 1/16 of their capacity, so the count never over-states their
/// backlog by more than that.
const RELEASE_EVERY: usize = 32;

/// Keeps a value on its own cache lines (128 bytes: adjacent-line prefetch), so fields
/// written by the consumer on every delivery do not slow down senders, and vice versa.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Padded<T>(T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Counters only the consumer task writes (so it bumps them with a load and a store,
/// not a locked read-modify-write).
#[derive(Default)]
pub(crate) struct ConsumerSide {
    /// Handler calls currently in progress.
    pub in_handler: AtomicUsize,
    /// Deliveries whose handler completed (successfully or not).
    pub delivered: AtomicU64,
    /// Deliveries whose handler failed.
    pub failed: AtomicU64,
    /// Time spent in the handler, in nanoseconds.
    pub handler_nanos: AtomicU64,
}

/// The shared state of one subscriber.
pub(crate) struct Subscriber {
    pub id: u64,
    pub name: Arc<str>,
    /// The subscribed types and their `type` strings (empty for a wildcard).
    pub members: Vec<(TypeId, &'static str)>,
    wildcard: bool,
    pub options: SubscribeOptions,
    /// The node (manager) the subscription was made through.
    pub origin: u64,
    /// How many handled deliveries the serial consumer gives back at once.
    pub release_every: usize,
    queue: SegQueue<Arc<dyn DynEvent>>,
    /// The count of accepted, unfinished deliveries and the idle bit; see the module
    /// documentation.
    state: Padded<Slots>,
    wake: Notify,
    /// Senders blocked waiting for room.
    space_waiters: AtomicUsize,
    space: Notify,
    /// The idle signal of the bus the subscriber belongs to (re-pointed on merge).
    idle: ArcSwap<IdleSignal>,
    /// Handlers of this subscriber currently inside `EventManager::idle`.
    pub in_wait: AtomicUsize,
    /// Blocked senders must give up: the subscriber is being removed.
    closing: AtomicBool,
    /// Deliveries dropped by overflow.
    dropped: AtomicU64,
    /// Deliveries lost at shutdown (queued or running when the deadline passed).
    cancelled: AtomicU64,
    /// A lag event was published for the current episode of drops.
    lag_reported: AtomicBool,
    /// `dropped` when the current lag episode began.
    lag_base: AtomicU64,
    pub consumer: Padded<ConsumerSide>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// A place reserved in a subscriber's queue: commit it (push) without waiting in
/// between.
#[derive(Clone, Copy)]
pub(crate) struct Reservation {
    /// The consumer was idle when the place was reserved: the committer wakes it.
    was_idle: bool,
}

/// What happened to one delivery offered to a `DropOldest` subscriber.
pub(crate) enum Push {
    /// Queued.
    Queued,
    /// Queued after dropping the oldest delivery; `lag` is set when this drop starts a
    /// new lag episode (the caller publishes the lag event).
    Dropped { lag: Option<(u64, u64)> },
    /// Not queued: the subscriber was removed.
    Closed,
}

/// A snapshot of a subscriber's counters.
pub(crate) struct Counters {
    pub queue_depth: usize,
    pub delivered: u64,
    pub failed: u64,
    pub dropped: u64,
    pub cancelled: u64,
    pub handler_time: Duration,
}

impl Subscriber {
    pub fn new(
        id: u64,
        name: Arc<str>,
        members: Option<Vec<(TypeId, &'static str)>>,
        options: SubscribeOptions,
        origin: u64,
        idle: Arc<IdleSignal>,
    ) -> Self {
        Self {
            id,
            name,
            wildcard: members.is_none(),
            members: members.unwrap_or_default(),
            options,
            origin,
            release_every: (options.capacity / 16).clamp(1, RELEASE_EVERY),
            queue: SegQueue::new(),
            state: Padded::default(),
            wake: Notify::new(),
            space_waiters: AtomicUsize::new(0),
            space: Notify::new(),
            idle: ArcSwap::new(idle),
            in_wait: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            lag_reported: AtomicBool::new(false),
            lag_base: AtomicU64::new(0),
            consumer: Padded::default(),
            task: Mutex::new(None),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The refusal to report when this subscriber's queue is full.
    pub fn refusal(&self) -> Refusal {
        Refusal {
            subscriber: self.name().to_owned(),
            capacity: self.options.capacity,
            policy: self.options.overflow,
        }
    }

    // ---- the sender's side -------------------------------------------------------------

    /// Reserves a place, or says why not (full; closed: the subscriber was removed and
    /// must not get the delivery). Nothing is held on `Err`.
    ///
    /// The reservation counts the delivery before it is queued, so the consumer can never
    /// park, nor exit, while a reserved delivery is still on its way into the queue.
    #[inline]
    pub fn reserve(&self) -> Result<Reservation, NoRoom> {
        self.state
            .reserve(self.options.capacity)
            .map(|was_idle| Reservation { was_idle })
    }

    /// Queues a delivery in a reserved place.
    #[inline]
    pub fn commit(&self, reservation: Reservation, event: Arc<dyn DynEvent>) {
        self.queue.push(event);
        if reservation.was_idle {
            self.wake_consumer();
        }
    }

    /// Reserves a place whatever the count, or says the subscriber is closed: for a
    /// `Block` subscriber that a sender found with room just before another thread filled
    /// it. The sender may have pushed the event to other subscribers already, and may
    /// neither refuse it here (it can wait for `Block` subscribers) nor wait (the send is
    /// all-or-nothing), so the queue goes past its capacity by this one delivery: by at
    /// most one per thread sending at that instant.
    pub fn reserve_past_capacity(&self) -> Result<Reservation, NoRoom> {
        self.state
            .take()
            .map(|(_, was_idle)| Reservation { was_idle })
            .ok_or(NoRoom::Closed)
    }

    /// Whether `capacity` places are taken (a look, not a reservation).
    #[inline]
    pub fn is_full(&self) -> bool {
        self.queued() >= self.options.capacity
    }

    /// Offers one delivery to a `DropOldest` subscriber: when the queue is full, the
    /// oldest queued delivery is dropped to make room.
    pub fn push_dropping_oldest(&self, event: Arc<dyn DynEvent>) -> Push {
        debug_assert_eq!(self.options.overflow, Overflow::DropOldest);
        let mut outcome = Push::Queued;
        let Some((before, was_idle)) = self.state.take() else {
            return Push::Closed;
        };
        // With concurrent senders the pop can come up empty (the consumer took the items
        // and holds their places): then the push goes ahead.
        if before >= self.options.capacity && self.queue.pop().is_some() {
            self.state.release(1);
            let total = self.dropped.fetch_add(1, Relaxed) + 1;
            let lag = if self.lag_reported.swap(true, AcqRel) {
                None
            } else {
                Some((total - self.lag_base.load(Acquire), total))
            };
            outcome = Push::Dropped { lag };
        }
        self.queue.push(event);
        if was_idle {
            self.wake_consumer();
        }
        outcome
    }

    /// Wakes the consumer if it is still marked idle (one sender wins the bit).
    fn wake_consumer(&self) {
        if self.state.take_idle() {
            self.wake.notify_one();
        }
    }

    /// Waits (asynchronously) until the queue may have room, or the subscriber is closing.
    /// Returns false when closing. Cancel-safe: it holds nothing.
    pub async fn wait_for_space(&self) -> bool {
        let notified = self.space.notified();
        tokio::pin!(notified);
        self.space_waiters.fetch_add(1, SeqCst);
        let _unregister = DecrementOnDrop(&self.space_waiters);
        notified.as_mut().enable();
        if self.closing.load(SeqCst) {
            false
        } else if !self.is_full() {
            true
        } else {
            notified.await;
            !self.closing.load(SeqCst)
        }
    }

    // ---- the consumer's side -----------------------------------------------------------

    /// Takes the oldest queued delivery.
    #[inline]
    pub fn pop(&self) -> Option<Arc<dyn DynEvent>> {
        self.queue.pop()
    }

    /// Whether nothing is queued (a look that a spinning consumer makes).
    #[inline]
    pub fn queue_is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Gives back the places of `n` finished (or lost) deliveries, wakes senders waiting
    /// for room, and signals the bus's waiters when nothing is left.
    pub fn release(&self, n: usize) {
        let left = self.state.release(n);
        if self.space_waiters.load(SeqCst) > 0 {
            self.space.notify_waiters();
        }
        if left == 0 {
            self.idle.load().notify();
        }
    }

    /// Marks the consumer idle if the count is exactly the `held` places it holds (no
    /// sender reserved one since); false when there is new work.
    pub fn try_idle(&self, held: usize) -> bool {
        self.state.try_idle(held)
    }

    /// Clears the idle bit after a wake-up (a stored permit can wake the consumer while
    /// the bit is still set).
    pub fn clear_idle(&self) {
        self.state.take_idle();
    }

    /// Parks until a sender (or `finish`) wakes the consumer.
    pub async fn parked(&self) {
        self.wake.notified().await;
    }

    /// Whether the subscriber is closed (no new deliveries are accepted).
    pub fn finishing(&self) -> bool {
        self.state.is_closed()
    }

    /// Whether it is closed with nothing reserved or queued (one load): the consumer
    /// exits.
    pub fn finished(&self) -> bool {
        self.state.is_closed_and_empty()
    }

    /// Signals the bus's idle waiters (the consumer found nothing to do).
    pub fn signal_idle(&self) {
        self.idle.load().notify();
    }

    /// Re-points the subscriber at another bus's idle signal (merge).
    pub fn set_idle_signal(&self, idle: Arc<IdleSignal>) {
        self.idle.store(idle);
    }

    /// Ends a lag episode once the consumer has caught up.
    pub fn caught_up(&self) {
        if self.lag_reported.load(Relaxed) {
            self.lag_base.store(self.dropped.load(Relaxed), Release);
            self.lag_reported.store(false, Release);
        }
    }

    // ---- both / the manager ------------------------------------------------------------

    /// Deliveries queued, not yet taken by the handler.
    pub fn queue_depth(&self) -> usize {
        self.queue.len()
    }

    /// Whether the subscriber has no reserved, queued or running work.
    pub fn is_idle(&self) -> bool {
        self.queued() == 0
    }

    /// Accepted deliveries not yet finished (reserved, queued or running; a serial
    /// consumer's last few handled ones until it gives their places back).
    pub fn queued(&self) -> usize {
        self.state.count()
    }

    /// Stops blocked senders (they give up on this subscriber).
    pub fn begin_close(&self) {
        self.closing.store(true, SeqCst);
        self.space.notify_waiters();
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(SeqCst)
    }

    /// Closes the subscriber to new deliveries and tells the consumer to exit once it has
    /// handled every delivery accepted before.
    pub fn finish(&self) {
        self.closing.store(true, SeqCst);
        self.state.close();
        self.space.notify_waiters();
        self.state.take_idle();
        self.wake.notify_one();
    }

    pub fn set_task(&self, task: JoinHandle<()>) {
        if let Ok(mut slot) = self.task.lock() {
            *slot = Some(task);
        }
    }

    pub fn take_task(&self) -> Option<JoinHandle<()>> {
        self.task.lock().ok().and_then(|mut slot| slot.take())
    }

    /// Counts what the consumer can no longer deliver (after its task was cancelled and
    /// dropped, which gave back the places of what it had finished): everything still
    /// queued and every handler call that was running.
    pub fn cancel_remaining(&self) {
        let mut lost = self.consumer.in_handler.swap(0, SeqCst);
        while self.queue.pop().is_some() {
            lost += 1;
        }
        if lost > 0 {
            self.release(lost);
        }
        self.cancelled.fetch_add(lost as u64, Relaxed);
    }

    pub fn counters(&self) -> Counters {
        Counters {
            queue_depth: self.queue_depth(),
            delivered: self.consumer.delivered.load(Relaxed),
            failed: self.consumer.failed.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            cancelled: self.cancelled.load(Relaxed),
            handler_time: Duration::from_nanos(self.consumer.handler_nanos.load(Relaxed)),
        }
    }
}

/// Decrements a counter when dropped (a waiter leaving, even by cancellation).
struct DecrementOnDrop<'a>(&'a AtomicUsize);

impl Drop for DecrementOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}
