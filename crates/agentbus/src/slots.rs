//! The word a subscriber's senders and its consumer share: the **count** of accepted,
//! unfinished deliveries and the consumer's **idle** bit, with the few operations the
//! protocol is made of (see `subscriber.rs` for how they are used).
//!
//! Kept apart, with its atomics swappable for loom's, so the protocol can be
//! model-checked: `RUSTFLAGS="--cfg agentbus_loom" cargo test -p agentbus --lib loom`
//! explores every interleaving of senders and a consumer on a small model (see the tests
//! at the end) and fails on a lost wake-up, a lost delivery, an exceeded capacity or a
//! deadlock.

#[cfg(agentbus_loom)]
use loom::sync::atomic::{AtomicUsize, Ordering::*};
#[cfg(not(agentbus_loom))]
use std::sync::atomic::{AtomicUsize, Ordering::*};

/// The idle bit: the consumer is parked (or about to be).
const IDLE: usize = 1;
/// The closed bit: the subscriber takes no more deliveries (unsubscribed, shut down).
const CLOSED: usize = 2;
/// One delivery in the count (the bits above the idle and closed bits).
const ONE: usize = 4;

/// Why a reservation was not made (nothing is held).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoRoom {
    /// `capacity` places are taken.
    Full,
    /// The subscriber is closed: it must not get the delivery (nobody would take it).
    Closed,
}

/// The count-and-idle word.
#[derive(Default)]
pub(crate) struct Slots {
    state: AtomicUsize,
}

impl Slots {
    /// Reserves a place if fewer than `capacity` are taken and the subscriber is open:
    /// `Ok(was_idle)` (the consumer was parked: whoever commits this reservation must wake
    /// it), or why not, with nothing held. The add is also the capacity check; a refused
    /// add is undone at once, so the count over-states the backlog only for that instant.
    #[inline]
    pub fn reserve(&self, capacity: usize) -> Result<bool, NoRoom> {
        let before = self.state.fetch_add(ONE, AcqRel);
        if before & CLOSED != 0 {
            self.state.fetch_sub(ONE, AcqRel);
            return Err(NoRoom::Closed);
        }
        if before / ONE >= capacity {
            self.state.fetch_sub(ONE, AcqRel);
            return Err(NoRoom::Full);
        }
        Ok(before & IDLE != 0)
    }

    /// Takes a place whatever the count (`DropOldest`, which makes room itself): the
    /// count before and whether the consumer was parked, or `None` when closed (nothing
    /// held).
    #[inline]
    pub fn take(&self) -> Option<(usize, bool)> {
        let before = self.state.fetch_add(ONE, AcqRel);
        if before & CLOSED != 0 {
            self.state.fetch_sub(ONE, AcqRel);
            return None;
        }
        Some((before / ONE, before & IDLE != 0))
    }

    /// Closes the subscriber: every later reservation is refused, so once the count is
    /// zero nothing more can arrive and the consumer may exit.
    #[inline]
    pub fn close(&self) {
        self.state.fetch_or(CLOSED, AcqRel);
    }

    /// Whether [`close`](Self::close) was called.
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.state.load(SeqCst) & CLOSED != 0
    }

    /// Whether the subscriber is closed with nothing reserved, in one load (two loads
    /// would let a reservation made before the close slip between them): then nothing
    /// more can arrive and the consumer may exit.
    #[inline]
    pub fn is_closed_and_empty(&self) -> bool {
        let state = self.state.load(SeqCst);
        state & CLOSED != 0 && state / ONE == 0
    }

    /// Gives back `n` places (finished or dropped deliveries); returns the
    /// count left.
    #[inline]
    pub fn release(&self, n: usize) -> usize {
        self.state.fetch_sub(n * ONE, SeqCst) / ONE - n
    }

    /// Clears the idle bit; true for the one caller that found it set (that caller wakes
    /// the consumer).
    #[inline]
    pub fn take_idle(&self) -> bool {
        self.state.fetch_and(!IDLE, AcqRel) & IDLE != 0
    }

    /// The consumer marks itself idle, if the count is exactly the `held` places it holds
    /// (no sender reserved one since) and the subscriber is open; false when there is new
    /// work or it was closed.
    #[inline]
    pub fn try_idle(&self, held: usize) -> bool {
        self.state
            .compare_exchange(held * ONE, (held * ONE) | IDLE, AcqRel, Acquire)
            .is_ok()
    }

    /// The count: reserved, queued, running or finished-but-not-given-back deliveries.
    #[inline]
    pub fn count(&self) -> usize {
        self.state.load(SeqCst) / ONE
    }
}

/// Model checks of the protocol with loom, on a queue and a wake-up modelled by loom's
/// `Mutex` and `Notify` (the real ones are `crossbeam_queue::SegQueue` and
/// `tokio::sync::Notify`, whose permit semantics loom's `Notify` shares). The consumer
/// loop mirrors `consumer.rs`: drain, give places back, wait for a reserved delivery
/// still on its way, mark idle with the compare-and-swap, park.
#[cfg(all(test, agentbus_loom))]
mod loom_tests {
    use std::collections::VecDeque;

    use loom::sync::{Arc, Mutex, Notify};
    use loom::thread;

    use super::*;

    struct Model {
        slots: Slots,
        queue: Mutex<VecDeque<u32>>,
        wake: Notify,
        capacity: usize,
        /// Senders that take places past the capacity: the queue may hold that many more.
        slack: usize,
    }

    impl Model {
        fn new(capacity: usize) -> Arc<Self> {
            Self::with_slack(capacity, 0)
        }

        fn with_slack(capacity: usize, slack: usize) -> Arc<Self> {
            Arc::new(Self {
                slots: Slots::default(),
                queue: Mutex::new(VecDeque::new()),
                wake: Notify::new(),
                capacity,
                slack,
            })
        }

        /// A sender's reservation and commit; false when refused (full).
        fn send(&self, item: u32) -> bool {
            match self.slots.reserve(self.capacity) {
                Ok(was_idle) => self.commit(item, was_idle),
                Err(_) => false,
            }
        }

        /// A sender that takes a place whatever the count (a `Block` subscriber another
        /// thread filled just after this send found room in it); false when closed.
        fn send_past_capacity(&self, item: u32) -> bool {
            match self.slots.take() {
                Some((_, was_idle)) => self.commit(item, was_idle),
                None => false,
            }
        }

        /// Pushes into a place taken, waking the consumer if the place saw it idle.
        fn commit(&self, item: u32, was_idle: bool) -> bool {
            let mut queue = self.queue.lock().unwrap();
            queue.push_back(item);
            assert!(
                queue.len() <= self.capacity + self.slack,
                "capacity exceeded"
            );
            drop(queue);
            if was_idle && self.slots.take_idle() {
                self.wake.notify();
            }
            true
        }

        /// The consumer loop (as `consumer.rs`); returns what it took.
        fn consume(&self) -> Vec<u32> {
            let mut got = Vec::new();
            loop {
                let mut held = 0;
                while let Some(item) = self.queue.lock().unwrap().pop_front() {
                    got.push(item);
                    held += 1;
                }
                if held > 0 {
                    self.slots.release(held);
                }
                if self.slots.count() > 0 {
                    // A sender between its reservation and its push.
                    thread::yield_now();
                    continue;
                }
                if self.slots.is_closed_and_empty() {
                    // Closed with nothing reserved: nothing more can arrive.
                    return got;
                }
                if !self.slots.try_idle(0) {
                    continue;
                }
                self.wake.wait();
                self.slots.take_idle();
            }
        }

        /// `Subscriber::finish`: tell the consumer to exit once drained.
        fn finish(&self) {
            self.slots.close();
            self.slots.take_idle();
            self.wake.notify();
        }
    }

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        // Bounded so CI finishes in seconds; raise LOOM_MAX_PREEMPTIONS to look deeper.
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(3);
        }
        builder.check(f);
    }

    /// Two senders and a consumer: every accepted delivery is consumed (no lost
    /// wake-up: the model would deadlock), nothing beyond capacity is queued.
    #[test]
    fn loom_two_senders_one_consumer_lose_nothing() {
        model(|| {
            let m = Model::new(2);
            let consumer = {
                let m = Arc::clone(&m);
                thread::spawn(move || m.consume())
            };
            let senders: Vec<_> = (0..2u32)
                .map(|s| {
                    let m = Arc::clone(&m);
                    thread::spawn(move || (0..2u32).filter(|i| m.send(s * 10 + i)).count())
                })
                .collect();
            let accepted: usize = senders.into_iter().map(|t| t.join().unwrap()).sum();
            m.finish();
            let got = consumer.join().unwrap();
            assert_eq!(got.len(), accepted, "accepted deliveries lost");
            assert_eq!(m.slots.count(), 0);
        });
    }

    /// A sender racing an unsubscribe: its delivery is either taken by the consumer or
    /// refused; never left in a queue nobody drains.
    #[test]
    fn loom_send_racing_close_is_delivered_or_refused() {
        model(|| {
            let m = Model::new(2);
            let consumer = {
                let m = Arc::clone(&m);
                thread::spawn(move || m.consume())
            };
            let sender = {
                let m = Arc::clone(&m);
                thread::spawn(move || m.send(1))
            };
            m.finish();
            let sent = sender.join().unwrap();
            let got = consumer.join().unwrap();
            assert_eq!(got.len(), usize::from(sent), "a delivery was stranded");
            assert!(m.queue.lock().unwrap().is_empty());
        });
    }

    /// A place taken past the capacity (two threads filling a `Block` subscriber at once)
    /// is delivered like a reserved one, the queue holds at most one more than its
    /// capacity, and the count returns to zero.
    #[test]
    fn loom_place_taken_past_capacity_is_delivered() {
        model(|| {
            let m = Model::with_slack(1, 1);
            let consumer = {
                let m = Arc::clone(&m);
                thread::spawn(move || m.consume())
            };
            let forced = {
                let m = Arc::clone(&m);
                thread::spawn(move || m.send_past_capacity(8))
            };
            let sent = m.send(7);
            let forced = forced.join().unwrap();
            m.finish();
            let got = consumer.join().unwrap();
            assert_eq!(got.len(), usize::from(sent) + usize::from(forced));
            assert_eq!(m.slots.count(), 0);
        });
    }
}
