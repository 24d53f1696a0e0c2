//! The errors of the bus: one small type per operation, each `#[non_exhaustive]`.
//!
//! An `Err` from a send always means "sent to nobody"; an event some subscribers took and
//! others refused is an `Ok(Sent)` that lists the refusals.

use std::time::Duration;

use agentbus_events::{DecodeError, RegistryError};
use thiserror::Error;

use crate::Overflow;

/// [`EventManagerBuilder::build`](crate::EventManagerBuilder::build) failed.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum BuildError {
    /// No handle was given and the calling thread is not inside a tokio runtime.
    #[error(
        "no tokio runtime: create the EventManager inside a runtime or pass a Handle (EventManager::with_handle)"
    )]
    NoRuntime,
    /// The registry could not be built (two Rust types claiming one `type` string).
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// [`EventManager::register`](crate::EventManager::register) refused a type.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum RegisterError {
    /// An invalid `type` string, or a second Rust type claiming a registered one.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// A subscription was refused; nothing was subscribed.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The bus (or the merged group it belongs to) is shut down.
    #[error("the event bus is shut down")]
    Shutdown,
    /// The name is empty.
    #[error("invalid subscription: the name is empty")]
    EmptyName,
    /// A capacity of 0 could never take an event.
    #[error("invalid subscription `{name}`: capacity must be at least 1")]
    ZeroCapacity {
        /// The subscriber name given.
        name: String,
    },
    /// A concurrency of 0 could never run the handler.
    #[error("invalid subscription `{name}`: concurrency must be at least 1")]
    ZeroConcurrency {
        /// The subscriber name given.
        name: String,
    },
    /// A subscriber of this name already exists on the bus: names identify handlers in
    /// stats, logs and `ExceptionEvent`s, so they must be unique. Unsubscribe the old one
    /// first, or pick another name.
    #[error("a subscriber named `{name}` already exists on this bus")]
    NameTaken {
        /// The name.
        name: String,
    },
    /// Strict mode: the handler's event type was never registered on this bus.
    #[error(
        "event type `{event_type}` is not registered on this bus (strict mode); register it first"
    )]
    Unregistered {
        /// The `type` string of the unregistered event.
        event_type: String,
    },
}

/// One subscriber that did not take an event: its queue was full and its policy refuses
/// (or must not wait here).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusal {
    /// The subscriber's name.
    pub subscriber: String,
    /// Its queue capacity.
    pub capacity: usize,
    /// Its overflow policy: `Error`, or `Block` where waiting was not possible
    /// (`try_send`, or a handler sending to its own full queue).
    pub policy: Overflow,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` (full at {}, policy {:?})",
            self.subscriber, self.capacity, self.policy
        )
    }
}

/// A send failed: the event reached **no** subscriber and took no `seq`.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum SendError {
    /// The bus (or the merged group it belongs to) is shut down.
    #[error("the event bus is shut down")]
    Shutdown,
    /// Strict mode: the event type was never registered on this bus.
    #[error(
        "event type `{event_type}` is not registered on this bus (strict mode); register it first"
    )]
    Unregistered {
        /// The `type` string of the unregistered event.
        event_type: String,
    },
    /// Every subscriber of the event refused it (their queues were full).
    #[error("every subscriber refused the event: {}", list(.refused))]
    Full {
        /// Who refused, in subscription order.
        refused: Vec<Refusal>,
    },
    /// `blocking_send` was called on a thread inside a tokio runtime, where parking would
    /// block a worker; use `send(..).await` (or `try_send`) there.
    #[error(
        "blocking_send called inside a tokio runtime (it would block a worker): use send(..).await or try_send"
    )]
    InsideRuntime,
}

fn list(refused: &[Refusal]) -> String {
    refused
        .iter()
        .map(Refusal::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A send of wire-format JSON failed: nothing was sent.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum SendJsonError {
    /// The bytes are not a registered event (malformed JSON, unknown `type`, bad fields).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The decoded event could not be sent.
    #[error(transparent)]
    Send(#[from] SendError),
}

/// [`EventManager::wait`](crate::EventManager::wait) gave up.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitError {
    /// The bus did not become idle within the timeout.
    #[error("wait timed out after {timeout:?}: {pending} deliveries still queued")]
    Timeout {
        /// The timeout that expired.
        timeout: Duration,
        /// Deliveries still queued (in the subscribers `wait` was waiting for) when it
        /// gave up.
        pending: u64,
    },
}

/// [`EventManager::merge`](crate::EventManager::merge) refused; both managers are
/// unchanged.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum MergeError {
    /// One of the two managers is shut down.
    #[error("the event bus is shut down")]
    Shutdown,
    /// Their registries conflict (two Rust types claiming one `type` string).
    #[error(transparent)]
    Registry(#[from] RegistryError),
}
