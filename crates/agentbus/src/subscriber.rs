//! One subscriber: its bounded queue, its counters, and the single consumer task that
//! runs its handler.
//!
//! The queue is a lock-free segmented queue (`crossbeam_queue::SegQueue`, 24-byte slots
//! allocated 31 at a time and freed as they drain) bounded by an atomic count of queued
//! deliveries. Senders push and wake the consumer only when it is parked; the consumer
//! drains everything queued before parking again, so a burst costs one wake-up, not one
//! per event.

use std::any::TypeId;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*, fence};
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

/// Checks of an empty queue before the consumer parks: a producer that is about to push
/// again is then picked up without a wake-up (a futex call on the producer's side).
const SPIN_BEFORE_PARK: u32 = 512;

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

/// Counters the consumer writes on every delivery.
#[derive(Default)]
struct ConsumerSide {
    /// The consumer is between taking work and finishing it (a batch is in progress).
    running: AtomicBool,
    /// Handler calls currently in progress.
    in_handler: AtomicUsize,
    /// Deliveries whose handler completed (successfully or not).
    delivered: AtomicU64,
    /// Deliveries whose handler failed.
    failed: AtomicU64,
    /// Time spent in the handler, in nanoseconds.
    handler_nanos: AtomicU64,
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
    queue: SegQueue<Arc<dyn DynEvent>>,
    /// Deliveries in the queue, not yet taken by the consumer (senders add, the consumer
    /// subtracts).
    queued: Padded<AtomicUsize>,
    /// The consumer is parked (or about to park) waiting for work.
    consumer_idle: AtomicBool,
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
    /// The queue is full and the policy does not drop.
    Full,
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
            queue: SegQueue::new(),
            queued: Padded::default(),
            consumer_idle: AtomicBool::new(false),
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

    /// Offers one delivery, applying the overflow policy when the queue is full.
    pub fn push(&self, event: &Arc<dyn DynEvent>) -> Push {
        let mut outcome = Push::Queued;
        if self.queued.fetch_add(1, SeqCst) >= self.options.capacity {
            match self.options.overflow {
                Overflow::DropOldest => {
                    // With concurrent senders the pop can come up empty (the consumer took
                    // the items): then there is room and the push goes ahead.
                    if self.queue.pop().is_some() {
                        self.queued.fetch_sub(1, SeqCst);
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
                    self.queued.fetch_sub(1, SeqCst);
                    return Push::Full;
                }
            }
        }
        self.queue.push(Arc::clone(event));
        self.wake_consumer();
        outcome
    }

    /// Wakes the consumer if it is parked (Dekker-style: the push happened before the
    /// fence; the consumer sets `consumer_idle` before re-checking the queue).
    fn wake_consumer(&self) {
        fence(SeqCst);
        if self.consumer_idle.load(Relaxed) && self.consumer_idle.swap(false, AcqRel) {
            self.wake.notify_one();
        }
    }

    /// Wakes the consumer unconditionally (a stored permit if it is running).
    pub fn wake_always(&self) {
        self.consumer_idle.store(false, SeqCst);
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
        } else if self.queued.load(SeqCst) < self.options.capacity {
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
        self.queued.load(SeqCst) == 0 && !self.consumer.running.load(SeqCst)
    }

    pub fn queued(&self) -> usize {
        self.queued.load(SeqCst)
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

    /// Counts what the consumer can no longer deliver (after its task was cancelled):
    /// everything still queued and every handler call that was running.
    pub fn cancel_remaining(&self) {
        let mut lost = self.consumer.in_handler.swap(0, SeqCst) as u64;
        while self.queue.pop().is_some() {
            self.queued.fetch_sub(1, SeqCst);
            lost += 1;
        }
        self.consumer.running.store(false, SeqCst);
        self.cancelled.fetch_add(lost, Relaxed);
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

    /// After draining: marks the consumer idle and returns whether it should exit.
    /// Sets `consumer_idle` before the final queue check so a concurrent push wakes it.
    fn park_or_exit(&self) -> ParkDecision {
        self.consumer.running.store(false, SeqCst);
        wait::notify_idle();
        self.caught_up();
        for _ in 0..SPIN_BEFORE_PARK {
            if !self.queue.is_empty() {
                return ParkDecision::Work;
            }
            std::hint::spin_loop();
        }
        self.consumer_idle.store(true, SeqCst);
        fence(SeqCst);
        if !self.queue.is_empty() {
            self.consumer_idle.store(false, SeqCst);
            return ParkDecision::Work;
        }
        if self.finish.load(SeqCst) {
            return ParkDecision::Exit;
        }
        ParkDecision::Park
    }

    fn take(&self) -> Option<Arc<dyn DynEvent>> {
        let event = self.queue.pop()?;
        self.queued.fetch_sub(1, SeqCst);
        if self.space_waiters.load(SeqCst) > 0 {
            self.space.notify_waiters();
        }
        Some(event)
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

enum ParkDecision {
    Work,
    Park,
    Exit,
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

async fn consume_serial<T, F, Fut>(sub: &Subscriber, handler: &F, node: &Weak<Node>)
where
    T: EventSet,
    F: Fn(T) -> Fut,
    Fut: Future,
    Fut::Output: HandlerOutcome,
{
    loop {
        sub.consumer.running.store(true, SeqCst);
        let started = Instant::now();
        let mut since_yield = 0u32;
        while let Some(event) = sub.take() {
            sub.consumer.in_handler.store(1, Relaxed);
            let failure = call::<T, F, Fut>(handler, event).await;
            sub.consumer.in_handler.store(0, Relaxed);
            sub.consumer.delivered.fetch_add(1, Relaxed);
            if let Some((info, event_type, event_id)) = failure {
                sub.consumer.failed.fetch_add(1, Relaxed);
                report_failure(node, sub, info, event_type, event_id);
            }
            since_yield += 1;
            if since_yield == YIELD_EVERY {
                since_yield = 0;
                tokio::task::yield_now().await;
            }
        }
        sub.consumer
            .handler_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Relaxed);
        match sub.park_or_exit() {
            ParkDecision::Work => continue,
            ParkDecision::Exit => return,
            ParkDecision::Park => sub.wake.notified().await,
        }
        sub.consumer_idle.store(false, SeqCst);
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
    let finished = |failure: Option<(ErrorInfo, &'static str, Uuid)>, elapsed: Duration| {
        sub.consumer.in_handler.fetch_sub(1, Relaxed);
        sub.consumer.delivered.fetch_add(1, Relaxed);
        sub.consumer
            .handler_nanos
            .fetch_add(elapsed.as_nanos() as u64, Relaxed);
        if let Some((info, event_type, event_id)) = failure {
            sub.consumer.failed.fetch_add(1, Relaxed);
            report_failure(node, sub, info, event_type, event_id);
        }
    };
    loop {
        sub.consumer.running.store(true, SeqCst);
        while running.len() < limit {
            let Some(event) = sub.take() else { break };
            sub.consumer.in_handler.fetch_add(1, Relaxed);
            running.push(async move {
                let started = Instant::now();
                let failure = call::<T, F, Fut>(handler, event).await;
                (failure, started.elapsed())
            });
        }
        if running.is_empty() {
            match sub.park_or_exit() {
                ParkDecision::Work => continue,
                ParkDecision::Exit => return,
                ParkDecision::Park => sub.wake.notified().await,
            }
            sub.consumer_idle.store(false, SeqCst);
            continue;
        }
        if running.len() < limit {
            // Room for more: wait for a completion or for new work.
            sub.consumer_idle.store(true, SeqCst);
            fence(SeqCst);
            if sub.queue.is_empty() {
                tokio::select! {
                    Some((failure, elapsed)) = running.next() => finished(failure, elapsed),
                    _ = sub.wake.notified() => {}
                }
            }
            sub.consumer_idle.store(false, SeqCst);
        } else if let Some((failure, elapsed)) = running.next().await {
            finished(failure, elapsed);
        }
    }
}
