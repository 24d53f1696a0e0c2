//! Counters: per subscriber, per bus, and the report `shutdown` returns.

use std::time::Duration;

use crate::Overflow;

/// What one subscriber has done so far.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriberStats {
    /// The subscription's id (unique in the process).
    pub id: u64,
    /// The name it was subscribed under.
    pub name: String,
    /// The `type` strings it receives; empty for a wildcard subscriber.
    pub event_types: Vec<&'static str>,
    /// Whether it receives every type.
    pub wildcard: bool,
    /// Its queue capacity.
    pub capacity: usize,
    /// Its overflow policy.
    pub overflow: Overflow,
    /// How many deliveries it may handle at once.
    pub concurrency: usize,
    /// Deliveries queued, not yet taken by the handler.
    pub queue_depth: usize,
    /// Handler calls completed (successfully or not).
    pub delivered: u64,
    /// Handler calls that returned an error or panicked (included in `delivered`).
    pub failed: u64,
    /// Deliveries dropped by the drop-oldest policy.
    pub dropped: u64,
    /// Deliveries lost at shutdown: still queued, or running, when the deadline passed.
    pub cancelled: u64,
    /// Total time spent handling (measured per batch of deliveries for concurrency 1, per
    /// call otherwise).
    pub handler_time: Duration,
}

/// A snapshot of the bus.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BusStats {
    /// The `seq` the next accepted event will get (so `next_seq - 1` events were accepted
    /// by this bus, counting from 1).
    pub next_seq: u64,
    /// Every current subscriber, in subscription order.
    pub subscribers: Vec<SubscriberStats>,
    /// Lenient mode: sends and subscriptions of unregistered types.
    pub unregistered: u64,
    /// Handler failures while handling an `ExceptionEvent`: logged and counted here
    /// instead of publishing another `ExceptionEvent` (which could loop).
    pub suppressed_exceptions: u64,
}

/// What `shutdown` achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "the report says what was delivered, cancelled or timed out"]
pub struct ShutdownReport {
    /// Handler calls completed, over all subscribers shut down.
    pub delivered: u64,
    /// Handler calls that failed (included in `delivered`).
    pub failed: u64,
    /// Deliveries dropped by overflow over the subscribers' lives.
    pub dropped: u64,
    /// Deliveries lost because the deadline passed before they were handled.
    pub cancelled: u64,
    /// Whether the deadline passed before every queue drained.
    pub timed_out: bool,
    /// Per subscriber, after draining.
    pub subscribers: Vec<SubscriberStats>,
}
