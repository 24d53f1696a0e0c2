//! [`BusError`]: everything the bus can refuse, as values.

use std::time::Duration;

use agentbus_events::{DecodeError, RegistryError};
use thiserror::Error;

use crate::Overflow;

/// An operation on the bus failed. Every variant says what to do differently.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum BusError {
    /// The manager (or the merged group it belongs to) has been shut down: it accepts no
    /// more events or subscriptions.
    #[error("the event bus is shut down")]
    Shutdown,
    /// A subscriber's queue was full and its policy refuses to wait here. The event was
    /// accepted (it has a `seq`) and delivered to every other subscriber.
    #[error(
        "subscriber `{subscriber}` is full ({capacity} queued, overflow policy {policy:?}); \
         event seq {seq} was not queued for it"
    )]
    Full {
        /// The name of the subscriber that refused the event.
        subscriber: String,
        /// Its queue capacity.
        capacity: usize,
        /// Its overflow policy (`Error`, or `Block` where waiting is impossible: a
        /// non-async `send` from inside a runtime, or a handler sending to its own queue).
        policy: Overflow,
        /// The `seq` the bus stamped on the event.
        seq: u64,
    },
    /// Strict mode: the event type was never registered on this bus.
    #[error(
        "event type `{event_type}` is not registered on this bus (strict mode); register it first"
    )]
    Unregistered {
        /// The `type` string of the unregistered event.
        event_type: String,
    },
    /// A registration was refused (invalid `type` string, or two Rust types claiming one).
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Bytes given to `decode_and_send` are not a registered event.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// `wait` gave up before the bus became idle.
    #[error("wait timed out after {timeout:?}: {pending} deliveries still queued")]
    Timeout {
        /// The timeout that expired.
        timeout: Duration,
        /// Deliveries still queued (in the subscribers `wait` was waiting for) when it
        /// gave up.
        pending: u64,
    },
    /// The manager was created outside a tokio runtime and no handle was given.
    #[error(
        "no tokio runtime: create the EventManager inside a runtime or pass a Handle (EventManager::with_handle)"
    )]
    NoRuntime,
    /// Subscription options that cannot work (empty name, zero capacity or concurrency).
    #[error("invalid subscription `{name}`: {reason}")]
    InvalidSubscription {
        /// The subscriber name given.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
}
