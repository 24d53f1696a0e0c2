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
//!     .await
//!     .unwrap();
//! bus.wait(Duration::from_secs(1)).await.unwrap();
//! let _report = bus.shutdown(Duration::from_secs(1)).await;
//! # }
//! ```
//!
//! ## The contract
//! 1. Three sends, one meaning each, for typed events and `Box<dyn DynEvent>` alike:
//!    [`send(..).await`](EventManager::send) waits asynchronously for room in full
//!    `Block` subscribers (cancel-safe, all-or-nothing);
//!    [`try_send`](EventManager::try_send) never waits (a full subscriber refuses);
//!    [`blocking_send`](EventManager::blocking_send) parks a plain thread and refuses
//!    inside a runtime. An `Err` means the event reached nobody and took no `seq`; an
//!    event some subscribers refused is an `Ok(`[`Sent`]`)` listing them. The bus stamps
//!    `meta.seq` ([`Seq`](agentbus_events::Seq)), one per accepted event, increasing.
//! 2. Each subscriber has one consumer task and sees events in send order (each
//!    sender's events in the order it sent them; events sent concurrently from several
//!    threads have no order between them, and may reach a subscriber in a different order
//!    than their `seq`s); a handler never runs concurrently with itself unless subscribed
//!    with concurrency N.
//! 3. Queues are bounded; a full queue applies the subscriber's [`Overflow`] policy.
//!    Nothing is dropped silently: a refusal is in the send's result, a `DropOldest`
//!    drop is counted and announced by a `bus.subscriber_lagged` event.
//! 4. A handler error or panic publishes an
//!    [`ExceptionEvent`](agentbus_events::base::ExceptionEvent) (handler name, failed
//!    event type and id); failures while handling an `ExceptionEvent` are logged and
//!    counted, never re-published.
//! 5. [`idle`](EventManager::idle) resolves when the bus is idle (on a per-bus signal),
//!    [`wait`](EventManager::wait) adds a timeout, and neither deadlocks inside a handler.
//! 6. [`merge`](EventManager::merge) is transitive; shutdown covers a manager and what was
//!    merged into it.
//! 7. [`shutdown`](EventManager::shutdown) drains within a deadline and reports.
//! 8. Wildcard subscribers (`Arc<dyn DynEvent>`) see every event, type-erased and
//!    serialisable: sinks are built on them. [`EventManager::stream`] reads a
//!    subscription as a `Stream`.
//!
//! ## Cost
//! An event is allocated once (`Arc`), shared by every subscriber; a queued delivery is
//! one 24-byte queue slot. A send does one lock-free routing-table load, one `TypeId`
//! lookup and one atomic add per subscriber. Consumers drain their queue in batches,
//! report finished deliveries to the senders' shared count in batches too (so a burst
//! does not bounce that count between cores), and park only when the queue stays empty
//! through a short spin.
//!
//! ## Layout
//! `manager.rs` is the public API; `builder.rs` builds; `core.rs` holds the shared core
//! and the merge tree; `subscription.rs` subscribes; `deliver.rs` is the one delivery
//! routine of every send; `idle_wait.rs` and `idle.rs` wait for idleness; `shutdown.rs`
//! shuts down; `subscriber.rs` is the lock-free queue protocol between senders and a
//! consumer (its shared word, model-checked with loom, in `slots.rs`); `consumer.rs` the consumer loops (which know nothing of the manager).

#![warn(missing_docs)]

mod builder;
mod consumer;
mod core;
mod deliver;
mod error;
mod handler;
mod idle;
mod idle_wait;
mod manager;
mod options;
mod routes;
mod sent;
mod shutdown;
mod slots;
mod stats;
mod stream;
mod subscriber;
mod subscription;
mod target;

pub use builder::EventManagerBuilder;
pub use error::{
    BuildError, MergeError, Refusal, RegisterError, SendError, SendJsonError, SubscribeError,
    WaitError,
};
pub use handler::HandlerOutcome;
pub use manager::EventManager;
pub use options::{DEFAULT_CAPACITY, DEFAULT_SPIN, Overflow, Registration, SubscribeOptions};
pub use sent::Sent;
pub use stats::{BusStats, ShutdownReport, SubscriberStats};
pub use stream::EventStream;
pub use subscription::SubscriptionHandle;
pub use target::{EventSet, downcast_arc};

/// The event crate, re-exported for macros and convenience.
pub use agentbus_events as events;
pub use agentbus_events::{Outgoing, Seq};

#[doc(hidden)]
pub use agentbus_events as __events;

#[doc = include_str!("../docs/handler_requirements.md")]
pub mod handler_requirements {}
