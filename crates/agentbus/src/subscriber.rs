//! One subscriber: its bounded queue, its counters, and the single consumer task that
//! runs its handler.
//!
//! The queue is a lock-free segmented queue (`crossbeam_queue::SegQueue`, 24-byte slots
//! allocated 31 at a time and freed as they drain). Beside it, one atomic word, `state`,
//! carries the two facts senders and the consumer share:
//!
//! - the **count** of accepted deliveries not yet finished (queued, taken, or running).
//!   A sender reserves its place with one `fetch_add` before pushing; that add is also
//!   the capacity check. The consumer gives places back in batches (every
//!   [`RELEASE_EVERY`] handled deliveries or 1/16 of the capacity, whichever is
//!   smaller, and whenever the queue stays empty through its spin), so in a burst the
//!   word stays in the sender's cache instead of bouncing between cores on every
//!   event. The count therefore over-states the backlog by less than one batch: the
//!   bound is conservative, never exceeded.
//! - the **idle** bit: the consumer parks only by turning "count = what I hold" into
//!   "same count, idle" with one compare-and-swap, so no reservation can slip past it;
//!   the sender whose `fetch_add` sees the bit clears it and wakes the consumer. A burst
//!   costs one wake-up, not one per event, and no fence is needed on the send path.

use std::any::TypeId;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use agentbus_events::{DynEvent, ErrorInfo};
use crossbeam_queue::SegQueue;
use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::handler::{HandlerOutcome, panic_failure};
use crate::manager::{Node, report_failure};
use crate::wait;
use crate::{EventSet, Overflow, SubscribeOptions};

/// Deliveries handled between two cooperative yields of a busy consumer.
const YIELD_EVERY: u32 = 1024;

/// Handled deliveries a serial consumer gives back to the count at once, at most (see
/// the module documentation); small queues give back every 1/16 of their capacity, so
/// the count never over-states their backlog by more than that.
const RELEASE_EVERY: usize = 32;

/// Pauses (`spin_loop`, about 30 ns each here) between two looks at the queue while a
/// consumer spins before parking.
const PAUSES_PER_LOOK: u32 = 32;

/// Passes that found the count above what the consumer holds but nothing in the queue
/// (a sender between its reservation and its push) before the consumer yields its
/// thread to let that sender finish.
const SPIN_ON_RESERVED: u32 = 64;

/// The idle bit of [`Subscriber::state`].
const IDLE: usize = 1;
/// One delivery in the count of [`Subscriber::state`] (the bits above the idle bit).
const ONE: usize = 2;

/// Keeps a value on its own cache lines (128 bytes: adjacent-line prefetch), so fields
/// written by the consumer on every delivery do not slow down senders, and vice versa.
#[repr(align(128))]
#[derive(Default)]
struct Padded<T>(T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Counters only the consumer task writes (so it bumps them with a load and a store,
/// not a locked read-modify-write).
#[derive(Default)]
struct ConsumerSide {
    /// Handler calls currently in progress.
    in_handler: AtomicUsize,
    /// Deliveries whose handler completed (successfully or not).
    delivered: AtomicU64,
    /// Deliveries whose handler failed.
    failed: AtomicU64,
    /// Time spent in the handler, in nanoseconds.
    handler_nanos: AtomicU64,
}

/// Adds `n` to a counter that only the calling task writes.
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed) + n, Relaxed);
}

/// Identifies a subscription for deduplication: the same name subscribed to the same set
/// of types is the same handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SubscriptionKey {
    pub name: Arc<str>,
    /// Sorted `TypeId`s of the event set; `None` for a wildcard.
    pub types: Option<Vec<TypeId>>,
}

/// The shared state of one subscriber.
pub(crate) struct Subscriber {
    pub id: u64,
    pub key: SubscriptionKey,
    /// The subscribed types and their `type` strings (empty for a wildcard).
    pub members: Vec<(TypeId, &'static str)>,
    pub options: SubscribeOptions,
    /// The node (manager) the subscription was made through.
    pub origin: u64,
    /// How many handled deliveries the serial consumer gives back at once.
    release_every: usize,
    queue: SegQueue<Arc<dyn DynEvent>>,
    /// The count of accepted, unfinished deliveries (times [`ONE`]) and the [`IDLE`] bit;
    /// see the module documentation.
    state: Padded<AtomicUsize>,
    wake: Notify,
    /// Senders blocked waiting for room.
    space_waiters: AtomicUsize,
    space: Notify,
    /// Handlers of this subscriber currently inside `EventManager::wait`.
    pub in_wait: AtomicUsize,
    /// Blocked senders must give up: the subscriber is being removed.
    closing: AtomicBool,
    /// The consumer exits once the queue is empty.
    finish: AtomicBool,
    /// Deliveries dropped by overflow.
    dropped: AtomicU64,
    /// Deliveries lost at shutdown (queued or running when the deadline passed).
    cancelled: AtomicU64,
    /// A lag event was published for the current episode of drops.
    lag_reported: AtomicBool,
    /// `dropped` when the current lag episode began.
    lag_base: AtomicU64,
    consumer: Padded<ConsumerSide>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// What happened to one delivery offered to a subscriber.
pub(crate) enum Push {
    /// Queued.
    Queued,
    /// Queued after dropping the oldest delivery; `lag` is set when this drop starts a
    /// new lag episode (the caller publishes the lag event).
    Dropped { lag: Option<(u64, u64)> },
    /// The queue is full and the policy does not drop; the delivery comes back.
    Full(Arc<dyn DynEvent>),
}

impl Subscriber {
    pub fn new(
        id: u64,
        key: SubscriptionKey,
        members: Vec<(TypeId, &'static str)>,
        options: SubscribeOptions,
        origin: u64,
    ) -> Self {
        Self {
            id,
            key,
            members,
            options,
            origin,
            release_every: (options.capacity / 16).clamp(1, RELEASE_EVERY),
            queue: SegQueue::new(),
            state: Padded::default(),
            wake: Notify::new(),
            space_waiters: AtomicUsize::new(0),
            space: Notify::new(),
            in_wait: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            finish: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            lag_reported: AtomicBool::new(false),
            lag_base: AtomicU64::new(0),
            consumer: Padded::default(),
            task: Mutex::new(None),
        }
    }

    pub fn name(&self) -> &str {
        &self.key.name
    }

    pub fn is_wildcard(&self) -> bool {
        self.key.types.is_none()
    }

    /// Offers one delivery, applying the overflow policy when the queue is full. Takes
    /// the caller's reference (the last subscriber of a send gets the sender's own, so a
    /// send to one subscriber clones nothing).
    pub fn push(&self, event: Arc<dyn DynEvent>) -> Push {
        let mut outcome = Push::Queued;
        // The reservation: counts the delivery before it is queued, so the consumer can
        // never park while a reserved delivery is still on its way into the queue.
        let before = self.state.fetch_add(ONE, AcqRel);
        if before / ONE >= self.options.capacity {
            match self.options.overflow {
                Overflow::DropOldest => {
                    // With concurrent senders the pop can come up empty (the consumer took
                    // the items and holds their places): then the push goes ahead.
                    if self.queue.pop().is_some() {
                        self.state.fetch_sub(ONE, AcqRel);
                        let total = self.dropped.fetch_add(1, Relaxed) + 1;
                        let lag = if self.lag_reported.swap(true, AcqRel) {
                            None
                        } else {
                            Some((total - self.lag_base.load(Acquire), total))
                        };
                        outcome = Push::Dropped { lag };
                    }
                }
                Overflow::Block | Overflow::Error => {
                    self.state.fetch_sub(ONE, AcqRel);
                    return Push::Full(event);
                }
            }
        }
        self.queue.push(event);
        if before & IDLE != 0 {
            self.wake_consumer();
        }
        outcome
    }

    /// Wakes the consumer if it is still marked idle (one sender wins the bit).
    fn wake_consumer(&self) {
        if self.state.fetch_and(!IDLE, AcqRel) & IDLE != 0 {
            self.wake.notify_one();
        }
    }

    /// Wakes the consumer unconditionally (a stored permit if it is running).
    pub fn wake_always(&self) {
        self.state.fetch_and(!IDLE, AcqRel);
        self.wake.notify_one();
    }

    /// Waits (asynchronously) until the queue may have room, or the subscriber is closing.
    /// Returns false when closing.
    pub async fn wait_for_space(&self) -> bool {
        let notified = self.space.notified();
        tokio::pin!(notified);
        self.space_waiters.fetch_add(1, SeqCst);
        notified.as_mut().enable();
        let result = if self.closing.load(SeqCst) {
            false
        } else if self.queued() < self.options.capacity {
            true
        } else {
            notified.await;
            !self.closing.load(SeqCst)
        };
        self.space_waiters.fetch_sub(1, SeqCst);
        result
    }

    /// Deliveries queued, not yet taken by the handler.
    pub fn queue_depth(&self) -> usize {
        self.queue.len()
    }

    /// Whether the subscriber has no queued or running work.
    pub fn is_idle(&self) -> bool {
        self.queued() == 0
    }

    /// Accepted deliveries not yet finished (queued or running; a serial consumer's
    /// last few handled ones until it gives their places back).
    pub fn queued(&self) -> usize {
        self.state.load(SeqCst) / ONE
    }

    /// Gives back the places of `n` finished (or lost) deliveries and wakes senders
    /// waiting for room.
    fn release(&self, n: usize) {
        self.state.fetch_sub(n * ONE, SeqCst);
        if self.space_waiters.load(SeqCst) > 0 {
            self.space.notify_waiters();
        }
    }

    /// Stops blocked senders (they give up on this subscriber).
    pub fn begin_close(&self) {
        self.closing.store(true, SeqCst);
        self.space.notify_waiters();
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(SeqCst)
    }

    /// Tells the consumer to exit once it has drained the queue.
    pub fn finish(&self) {
        self.closing.store(true, SeqCst);
        self.finish.store(true, SeqCst);
        self.space.notify_waiters();
        self.wake_always();
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

    /// Ends a lag episode once the consumer has caught up.
    fn caught_up(&self) {
        if self.lag_reported.load(Relaxed) {
            self.lag_base.store(self.dropped.load(Relaxed), Release);
            self.lag_reported.store(false, Release);
        }
    }

    /// Marks the consumer idle if the count is exactly the `held` places it holds (no
    /// sender reserved one since); false when there is new work.
    fn try_idle(&self, held: usize) -> bool {
        self.state
            .compare_exchange(held * ONE, (held * ONE) | IDLE, AcqRel, Acquire)
            .is_ok()
    }

    /// Clears the idle bit after a wake-up (a stored permit can wake the consumer while
    /// the bit is still set).
    fn clear_idle(&self) {
        self.state.fetch_and(!IDLE, AcqRel);
    }

    /// With the queue found empty: keeps polling it for up to the subscriber's `spin`,
    /// in case the sender is about to send again (then no wake-up is needed). True when
    /// work arrived.
    fn spin_for_work(&self) -> bool {
        let spin = self.options.spin;
        if spin.is_zero() {
            return false;
        }
        let started = Instant::now();
        loop {
            // Each look pulls a cache line the sender writes away from it, so look only
            // every few pauses.
            for _ in 0..PAUSES_PER_LOOK {
                std::hint::spin_loop();
            }
            if !self.queue.is_empty() {
                return true;
            }
            if started.elapsed() >= spin {
                return false;
            }
        }
    }

    /// With the queue found empty (after the spin) and every finished place given back:
    /// signals idleness and parks until a sender wakes it. Returns false when the
    /// consumer should exit (finishing, and nothing left), true to look for work again.
    /// `taken` is what the last pass took; a pass that took nothing while places are
    /// reserved waits for the sender between its reservation and its push.
    async fn rest(&self, taken: u32, empty_passes: &mut u32) -> bool {
        if self.queued() > 0 {
            if taken == 0 {
                wait_for_reserved(empty_passes).await;
            }
            return true;
        }
        wait::notify_idle();
        self.caught_up();
        if !self.try_idle(0) {
            return true;
        }
        if self.finish.load(SeqCst) {
            return false;
        }
        self.wake.notified().await;
        self.clear_idle();
        true
    }
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

/// The places of handled deliveries a serial consumer has not given back yet. Dropping
/// it gives them back, so a consumer task cancelled at shutdown leaves the count exact.
struct Finished<'a> {
    sub: &'a Subscriber,
    held: usize,
}

impl Finished<'_> {
    /// Gives the held places back.
    fn release(&mut self) {
        let held = std::mem::take(&mut self.held);
        if held > 0 {
            self.sub.release(held);
        }
    }
}

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// The delivery the current task is handling: set (as a task-local) around the consumer
/// task so `wait` and `send` know when they are called from a handler.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CurrentDelivery {
    pub subscriber: u64,
}

tokio::task_local! {
    pub(crate) static CURRENT: CurrentDelivery;
}

/// The subscriber whose handler is running on this task, if any.
pub(crate) fn current_subscriber() -> Option<u64> {
    CURRENT.try_with(|c| c.subscriber).ok()
}

/// Runs one handler call, catching panics; returns the failure, if any.
async fn call<T, F, Fut>(
    handler: &F,
    event: Arc<dyn DynEvent>,
) -> Option<(ErrorInfo, &'static str, Uuid)>
where
    T: EventSet,
    F: Fn(T) -> Fut,
    Fut: Future,
    Fut::Output: HandlerOutcome,
{
    let event_type = event.event_type();
    let event_id = event.meta().event_id;
    let item = match T::from_event(event) {
        Ok(item) => item,
        // Routing only sends members of the set; a non-member is skipped.
        Err(_) => return None,
    };
    let future = match std::panic::catch_unwind(AssertUnwindSafe(|| handler(item))) {
        Ok(future) => future,
        Err(payload) => return Some((panic_failure(&*payload), event_type, event_id)),
    };
    let failure = match AssertUnwindSafe(future).catch_unwind().await {
        Ok(outcome) => outcome.into_failure(),
        Err(payload) => Some(panic_failure(&*payload)),
    };
    failure.map(|f| (f, event_type, event_id))
}

/// The consumer task: one per subscriber, for its whole life.
/// The consumer task: one per subscriber, for its whole life.
pub(crate) async fn consume<T, F, Fut>(sub: Arc<Subscriber>, handler: F, node: Weak<Node>)
where
    T: EventSet,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: HandlerOutcome,
{
    if sub.options.concurrency <= 1 {
        consume_serial(&sub, &handler, &node).await
    } else {
        consume_concurrent(&sub, &handler, &node).await
    }
}

/// Lets a sender that reserved a place but has not pushed yet run, after `passes` passes
/// found nothing to take (it may have been preempted between the two steps).
async fn wait_for_reserved(passes: &mut u32) {
    *passes += 1;
    if *passes >= SPIN_ON_RESERVED {
        *passes = 0;
        std::thread::yield_now();
        tokio::task::yield_now().await;
    } else {
        std::hint::spin_loop();
    }
}

async fn consume_serial<T, F, Fut>(sub: &Subscriber, handler: &F, node: &Weak<Node>)
where
    T: EventSet,
    F: Fn(T) -> Fut,
    Fut: Future,
    Fut::Output: HandlerOutcome,
{
    let mut finished = Finished { sub, held: 0 };
    let mut empty_passes = 0u32;
    loop {
        let started = Instant::now();
        let mut since_yield = 0u32;
        let mut taken = 0u32;
        while let Some(event) = sub.queue.pop() {
            taken += 1;
            sub.consumer.in_handler.store(1, Relaxed);
            let failure = call::<T, F, Fut>(handler, event).await;
            sub.consumer.in_handler.store(0, Relaxed);
            bump(&sub.consumer.delivered, 1);
            finished.held += 1;
            if let Some((info, event_type, event_id)) = failure {
                bump(&sub.consumer.failed, 1);
                report_failure(node, sub, info, event_type, event_id);
            }
            if finished.held == sub.release_every {
                finished.release();
            }
            since_yield += 1;
            if since_yield == YIELD_EVERY {
                since_yield = 0;
                tokio::task::yield_now().await;
            }
        }
        if taken > 0 {
            empty_passes = 0;
            bump(
                &sub.consumer.handler_nanos,
                started.elapsed().as_nanos() as u64,
            );
        }
        // Places are given back only once the queue stays dry: giving them back on
        // every dry spell would pull the count's cache line from the sender each time.
        if sub.spin_for_work() {
            continue;
        }
        finished.release();
        if !sub.rest(taken, &mut empty_passes).await {
            return;
        }
    }
}

async fn consume_concurrent<T, F, Fut>(sub: &Subscriber, handler: &F, node: &Weak<Node>)
where
    T: EventSet,
    F: Fn(T) -> Fut,
    Fut: Future,
    Fut::Output: HandlerOutcome,
{
    let limit = sub.options.concurrency;
    let mut running = FuturesUnordered::new();
    let mut empty_passes = 0u32;
    let finished = |failure: Option<(ErrorInfo, &'static str, Uuid)>, elapsed: Duration| {
        sub.consumer.in_handler.store(
            sub.consumer.in_handler.load(Relaxed).saturating_sub(1),
            Relaxed,
        );
        bump(&sub.consumer.delivered, 1);
        bump(&sub.consumer.handler_nanos, elapsed.as_nanos() as u64);
        if let Some((info, event_type, event_id)) = failure {
            bump(&sub.consumer.failed, 1);
            report_failure(node, sub, info, event_type, event_id);
        }
        sub.release(1);
    };
    loop {
        let mut taken = 0u32;
        while running.len() < limit {
            let Some(event) = sub.queue.pop() else { break };
            taken += 1;
            sub.consumer
                .in_handler
                .store(sub.consumer.in_handler.load(Relaxed) + 1, Relaxed);
            running.push(async move {
                let started = Instant::now();
                let failure = call::<T, F, Fut>(handler, event).await;
                (failure, started.elapsed())
            });
        }
        if taken > 0 {
            empty_passes = 0;
        }
        if running.is_empty() {
            if sub.spin_for_work() || sub.rest(taken, &mut empty_passes).await {
                continue;
            }
            return;
        }
        if running.len() < limit {
            // Room for more: wait for a completion or for new work. The handlers
            // running hold their places in the count.
            if sub.try_idle(running.len()) {
                tokio::select! {
                    Some((failure, elapsed)) = running.next() => finished(failure, elapsed),
                    _ = sub.wake.notified() => {}
                }
                sub.clear_idle();
            } else if taken == 0 {
                wait_for_reserved(&mut empty_passes).await;
            }
        } else if let Some((failure, elapsed)) = running.next().await {
            finished(failure, elapsed);
        }
    }
}
