//! # agentbus
//!
//! The in-process event bus of agentbus, [`EventManager`]: what Vision Agents calls
//! `EventManager`, with the contract its users needed.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use agentbus::EventManager;
//! use agentbus_events::{DynEvent, ErrorInfo};
//! use agentbus_events::base::ExceptionEvent;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let bus = EventManager::new();
//! bus.subscribe("log-failures", |e: Arc<ExceptionEvent>| async move {
//!     println!("{} failed: {}", e.handler, e.exc);
//! })
//! .unwrap();
//! bus.subscribe("sink", |e: Arc<dyn DynEvent>| async move {
//!     println!("#{:?} {}", e.meta().seq, e.event_type());
//! })
//! .unwrap();
//! bus.send(ExceptionEvent { exc: ErrorInfo::new("demo", "hello"), ..Default::default() })
//!     .unwrap();
//! bus.wait(Duration::from_secs(1)).await.unwrap();
//! bus.shutdown(Duration::from_secs(1)).await;
//! # }
//! ```
//!
//! ## The contract
//! 1. [`send`](EventManager::send) never blocks an async task and works from any thread
//!    (no runtime needed on it); after shutdown it returns [`BusError::Shutdown`]. The
//!    bus stamps `meta.seq`, one per accepted event, increasing.
//! 2. Each subscriber has one consumer task and sees events in send order (each
//!    sender's events in the order it sent them; events sent concurrently from several
//!    threads have no order between them, and may reach a subscriber in a different order
//!    than their `seq`s); a handler never runs concurrently with itself unless subscribed
//!    with concurrency N.
//! 3. Queues are bounded; a full queue applies the subscriber's [`Overflow`] policy.
//! 4. A handler error or panic publishes an
//!    [`ExceptionEvent`](agentbus_events::base::ExceptionEvent) (handler name, failed
//!    event type and id); failures while handling an `ExceptionEvent` are logged and
//!    counted, never re-published.
//! 5. [`wait`](EventManager::wait) returns when the bus is idle, times out as an error,
//!    and does not deadlock inside a handler.
//! 6. [`merge`](EventManager::merge) is transitive; shutdown covers a manager and what was
//!    merged into it.
//! 7. [`shutdown`](EventManager::shutdown) drains within a deadline and reports.
//! 8. Wildcard subscribers (`Arc<dyn DynEvent>`) see every event, type-erased and
//!    serialisable: sinks are built on them.
//!
//! ## Cost
//! An event is allocated once (`Arc`), shared by every subscriber; a queued delivery is
//! one 24-byte queue slot. `send` does one lock-free routing-table load and one `TypeId`
//! lookup. Consumers drain their queue in batches, report finished deliveries to the
//! senders' shared count in batches too (so a burst does not bounce that count between
//! cores), and park only when the queue stays empty through a short spin.

#![warn(missing_docs)]

mod error;
mod handler;
mod manager;
mod options;
mod routes;
mod stats;
mod subscriber;
mod target;
mod wait;

pub use error::BusError;
pub use handler::HandlerOutcome;
pub use manager::{EventManager, EventManagerBuilder, SubscriptionHandle};
pub use options::{DEFAULT_CAPACITY, DEFAULT_SPIN, Overflow, Registration, SubscribeOptions};
pub use stats::{BusStats, ShutdownReport, SubscriberStats};
pub use target::{EventSet, downcast_arc};

/// The event crate, re-exported for macros and convenience.
pub use agentbus_events as events;

#[doc(hidden)]
pub use agentbus_events as __events;
