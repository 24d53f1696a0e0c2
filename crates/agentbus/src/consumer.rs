//! The consumer loops: the one task per subscriber that takes deliveries from its queue
//! and runs the handler (serially, or up to N at once), parks when there is nothing to
//! do, and reports failures through the callback it is given.
//!
//! This module knows the subscriber's queue protocol (`subscriber.rs`) and the handler
//! contract (`handler.rs`), never the manager.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

use agentbus_events::{DynEvent, ErrorInfo};
use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use uuid::Uuid;

use crate::EventSet;
use crate::handler::{HandlerOutcome, panic_failure};
use crate::subscriber::Subscriber;

/// Deliveries handled between two cooperative yields of a busy consumer.
const YIELD_EVERY: u32 = 1024;

/// Pauses (`spin_loop`, about 30 ns each here) between two looks at the queue while a
/// consumer spins before parking.
const PAUSES_PER_LOOK: u32 = 32;

/// Passes that found the count above what the consumer holds but nothing in the queue
/// (a sender between its reservation and its push) before the consumer yields its
/// thread to let that sender finish.
const SPIN_ON_RESERVED: u32 = 64;

/// A failed handler call, as data: what failed, on which event.
pub(crate) struct Failure {
    pub error: ErrorInfo,
    pub event_type: &'static str,
    pub event_id: Uuid,
}

/// Adds `n` to a counter that only the calling task writes.
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed) + n, Relaxed);
}

/// With the queue found empty: keeps polling it for up to `spin`, in case the sender is
/// about to send again (then no wake-up is needed). True when work arrived.
fn spin_for_work(sub: &Subscriber, spin: Duration) -> bool {
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
        if !sub.queue_is_empty() {
            return true;
        }
        if started.elapsed() >= spin {
            return false;
        }
    }
}

/// The spin a consumer on the current runtime uses: the subscriber's on a multi-thread
/// runtime, none on a current-thread one. There a spin would hold the only thread, so
/// nothing it waits for could happen during it (a sender task on the same runtime
/// cannot run), and every other task would wait for it.
fn spin_on_this_runtime(spin: Duration) -> Duration {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => spin,
        _ => Duration::ZERO,
    }
}

/// With the queue found empty (after the spin) and every finished place given back:
/// signals idleness and parks until a sender wakes it. Returns false when the consumer
/// should exit (finishing, and nothing left), true to look for work again. `taken` is
/// what the last pass took; a pass that took nothing while places are reserved waits for
/// the sender between its reservation and its push.
async fn rest(sub: &Subscriber, taken: u32, empty_passes: &mut u32) -> bool {
    if sub.queued() > 0 {
        if taken == 0 {
            wait_for_reserved(empty_passes).await;
        }
        return true;
    }
    sub.signal_idle();
    sub.caught_up();
    if sub.finished() {
        // Closed with nothing reserved: every later reservation is refused, so nothing
        // more can arrive.
        return false;
    }
    if !sub.try_idle(0) {
        // New work, or closed since the check above: look again.
        return true;
    }
    sub.parked().await;
    sub.clear_idle();
    true
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
async fn call<T, F, Fut>(handler: &F, event: Arc<dyn DynEvent>) -> Option<Failure>
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
        Err(payload) => {
            return Some(Failure {
                error: panic_failure(&*payload),
                event_type,
                event_id,
            });
        }
    };
    let failure = match AssertUnwindSafe(future).catch_unwind().await {
        Ok(outcome) => outcome.into_failure(),
        Err(payload) => Some(panic_failure(&*payload)),
    };
    failure.map(|error| Failure {
        error,
        event_type,
        event_id,
    })
}

/// The consumer task: one per subscriber, for its whole life.
pub(crate) async fn consume<T, F, Fut, R>(sub: Arc<Subscriber>, handler: F, report: R)
where
    R: Fn(&Subscriber, Failure) + Send + Sync + 'static,
    T: EventSet,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: HandlerOutcome,
{
    let spin = spin_on_this_runtime(sub.options.spin);
    if sub.options.concurrency <= 1 {
        consume_serial(&sub, &handler, &report, spin).await
    } else {
        consume_concurrent(&sub, &handler, &report, spin).await
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

async fn consume_serial<T, F, Fut, R>(sub: &Subscriber, handler: &F, report: &R, spin: Duration)
where
    R: Fn(&Subscriber, Failure),
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
        while let Some(event) = sub.pop() {
            taken += 1;
            sub.consumer.in_handler.store(1, Relaxed);
            let failure = call::<T, F, Fut>(handler, event).await;
            sub.consumer.in_handler.store(0, Relaxed);
            bump(&sub.consumer.delivered, 1);
            finished.held += 1;
            if let Some(failure) = failure {
                bump(&sub.consumer.failed, 1);
                report(sub, failure);
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
        if spin_for_work(sub, spin) {
            continue;
        }
        finished.release();
        if !rest(sub, taken, &mut empty_passes).await {
            return;
        }
    }
}

async fn consume_concurrent<T, F, Fut, R>(sub: &Subscriber, handler: &F, report: &R, spin: Duration)
where
    R: Fn(&Subscriber, Failure),
    T: EventSet,
    F: Fn(T) -> Fut,
    Fut: Future,
    Fut::Output: HandlerOutcome,
{
    let limit = sub.options.concurrency;
    let mut running = FuturesUnordered::new();
    let mut empty_passes = 0u32;
    let finished = |failure: Option<Failure>, elapsed: Duration| {
        sub.consumer.in_handler.store(
            sub.consumer.in_handler.load(Relaxed).saturating_sub(1),
            Relaxed,
        );
        bump(&sub.consumer.delivered, 1);
        bump(&sub.consumer.handler_nanos, elapsed.as_nanos() as u64);
        if let Some(failure) = failure {
            bump(&sub.consumer.failed, 1);
            report(sub, failure);
        }
        sub.release(1);
    };
    loop {
        let mut taken = 0u32;
        while running.len() < limit {
            let Some(event) = sub.pop() else { break };
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
            if spin_for_work(sub, spin) || rest(sub, taken, &mut empty_passes).await {
                continue;
            }
            return;
        }
        if running.len() < limit {
            // Room for more: wait for a completion or for new work. The handlers
            // running hold their places in the count.
            if sub.finishing() {
                // Closed: no new work can be announced (the idle mark is refused while
                // closed); what was reserved before is taken after the next completion.
                if let Some((failure, elapsed)) = running.next().await {
                    finished(failure, elapsed);
                }
            } else if sub.try_idle(running.len()) {
                tokio::select! {
                    Some((failure, elapsed)) = running.next() => finished(failure, elapsed),
                    _ = sub.parked() => {}
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
