//! How a subscriber is configured: queue capacity, overflow policy, concurrency, spin.

use std::time::Duration;

/// What the bus does when a subscriber's queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// Backpressure: the sender waits for room.
    ///
    /// [`send(..).await`](crate::EventManager::send) waits (asynchronously) until the
    /// consumer frees a slot; [`blocking_send`](crate::EventManager::blocking_send) parks
    /// its plain thread; [`try_send`](crate::EventManager::try_send) does not wait: this
    /// subscriber refuses the event (reported in [`Sent::refused`](crate::Sent::refused);
    /// the other subscribers still get it). A handler sending to its own full queue is
    /// refused too (waiting would deadlock).
    #[default]
    Block,
    /// Drop the oldest queued delivery to make room. Each drop is counted in the
    /// subscriber's stats, and a `bus.subscriber_lagged` event
    /// ([`SubscriberLaggedEvent`](agentbus_events::bus::SubscriberLaggedEvent)) is
    /// published once per episode of lag (until the subscriber catches up).
    DropOldest,
    /// Refuse: the send reports this subscriber in
    /// [`Sent::refused`](crate::Sent::refused); the other subscribers still get the event
    /// (when every subscriber refuses, the send fails with
    /// [`SendError::Full`](crate::SendError::Full)).
    Error,
}

/// The default queue capacity of a subscriber.
pub const DEFAULT_CAPACITY: usize = 8192;

/// How long, by default, a consumer keeps polling its empty queue before it parks.
///
/// Short on purpose. It covers the gaps inside a burst (a sender sends every few hundred
/// nanoseconds), which is all the throughput needs. Longer spins that still end in a
/// park made paced deliveries slower on the 2-vCPU machines we measure on: p50 6 µs at
/// 2 µs, 12 µs at 15 µs, 30 µs at 40 µs (`agentbus bench bus`, 10,000 events/s).
pub const DEFAULT_SPIN: Duration = Duration::from_micros(2);

/// Options of one subscription. Build with [`SubscribeOptions::new`] and the setters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// Most deliveries accepted and not yet finished by the handler: queued, running,
    /// or just finished (default 8192). The consumer reports finished deliveries in
    /// small batches (at most 32, and at most 1/16 of the capacity), so a sender can
    /// see the queue full up to that many deliveries early: the bound is approached
    /// conservatively. A [`Block`](Overflow::Block) queue that several threads fill at
    /// the same instant can go past it by at most one delivery per thread sending (a send
    /// that found room a moment before, and has pushed the event to other subscribers,
    /// may neither refuse nor wait: sends are all-or-nothing).
    pub capacity: usize,
    /// What happens when the queue is full (default [`Overflow::Block`]).
    pub overflow: Overflow,
    /// How many deliveries the handler may run at once (default 1: never concurrently
    /// with itself). With N > 1, handlers start in send order but may finish out of order.
    pub concurrency: usize,
    /// For wildcard subscribers: do not receive event types marked
    /// [`silent`](crate::EventManager::silent) (default false). Sinks that only want the
    /// interesting events set this.
    pub skip_silent: bool,
    /// How long the consumer keeps polling its empty queue before parking (default
    /// [`DEFAULT_SPIN`], 2 µs). A parked consumer is woken by the next send, which costs
    /// the sender a system call and the delivery the operating system's wake-up latency
    /// (tens of microseconds on a virtual machine). A longer spin trades CPU for latency:
    /// a subscriber whose events arrive more often than once per `spin` never parks, and
    /// keeps one core busy while they do (for a spin to pay, it must outlast the gaps
    /// between events). Zero parks at once. On a current-thread runtime the consumer
    /// never spins: the spin would hold the only thread, so no sender task could send
    /// during it, and every other task would wait.
    pub spin: Duration,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            overflow: Overflow::Block,
            concurrency: 1,
            skip_silent: false,
            spin: DEFAULT_SPIN,
        }
    }
}

impl SubscribeOptions {
    /// The defaults: capacity 8192, [`Overflow::Block`], concurrency 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the queue capacity.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets the overflow policy.
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// Sets how many deliveries may be handled at once.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Sets whether a wildcard subscriber skips silent event types.
    pub fn skip_silent(mut self, skip: bool) -> Self {
        self.skip_silent = skip;
        self
    }

    /// Sets how long the consumer polls its empty queue before parking (see
    /// [`spin`](Self::spin)).
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }
}

/// Whether sending or subscribing an unregistered event type is an error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Registration {
    /// Unregistered types are delivered anyway and counted in
    /// [`BusStats::unregistered`](crate::BusStats::unregistered) (the default).
    #[default]
    Lenient,
    /// Sending or subscribing an unregistered type is refused
    /// ([`SendError::Unregistered`](crate::SendError::Unregistered),
    /// [`SubscribeError::Unregistered`](crate::SubscribeError::Unregistered)).
    Strict,
}
