//! [`EventManager`]: the public API of the bus. Each method is a thin door into the
//! module that does the work: `builder.rs` (construction), `core.rs` (shared core, merge
//! tree), `subscription.rs` (subscribing), `deliver.rs` (the one delivery routine),
//! `idle_wait.rs` (idle), `shutdown.rs`.

use std::any::TypeId;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::*;
use std::time::Duration;

use agentbus_events::{Event, EventInfo, Outgoing, Registry};
use tokio::runtime::Handle;

use crate::core::{Node, lock};
use crate::deliver::{self, Attempt, Mode};
use crate::handler::HandlerOutcome;
use crate::stream::EventStream;
use crate::subscription::{self, SubscriptionHandle, subscriber_stats};
use crate::{
    BuildError, BusStats, EventManagerBuilder, EventSet, MergeError, RegisterError, SendError,
    SendJsonError, Sent, ShutdownReport, SubscribeError, SubscribeOptions, WaitError, idle_wait,
    shutdown,
};

/// The in-process event bus (Vision Agents' `EventManager`): typed, ordered, bounded,
/// and honest about failure.
///
/// Cloning gives another handle to the same manager. See the crate documentation for the
/// delivery contract.
///
/// # Sending
/// | method | a full `Block` subscriber | use it in |
/// |---|---|---|
/// | [`send(..).await`](Self::send) | waits (asynchronously) for room | async code |
/// | [`try_send`](Self::try_send) | refuses (reported in [`Sent::refused`]) | anywhere; never waits |
/// | [`blocking_send`](Self::blocking_send) | parks the thread until there is room | plain threads only |
///
/// An `Err` from any of them means the event reached nobody.
#[derive(Clone)]
pub struct EventManager {
    node: Arc<Node>,
}

impl std::fmt::Debug for EventManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventManager")
            .field("id", &self.node.id)
            .field("closed", &self.node.is_closed())
            .finish()
    }
}

impl EventManagerBuilder {
    /// The manager.
    ///
    /// # Errors
    /// [`BuildError::NoRuntime`] when no handle was given and the calling thread is not
    /// inside a tokio runtime; [`BuildError::Registry`] if the bus's own event types
    /// conflict with the registry (they cannot with the catalogue).
    pub fn build(self) -> Result<EventManager, BuildError> {
        Ok(EventManager {
            node: self.build_node()?,
        })
    }
}

impl EventManager {
    // ---- building ----------------------------------------------------------------------

    /// A manager on the current tokio runtime, with the whole catalogue registered and
    /// lenient registration.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let bus = agentbus::EventManager::new();
    /// assert!(bus.is_registered("base.exception"));
    /// # }
    /// ```
    ///
    /// # Errors
    /// None; see [`try_new`](Self::try_new) for the fallible form.
    ///
    /// # Panics
    /// Outside a tokio runtime (like `tokio::spawn`); use [`EventManager::try_new`] or
    /// [`EventManager::with_handle`] there.
    ///
    /// # Cancel safety
    /// Not async.
    #[allow(clippy::new_without_default)] // a `Default` that panics outside a runtime would surprise
    pub fn new() -> Self {
        match Self::try_new() {
            Ok(manager) => manager,
            Err(error) => panic!("{error}"),
        }
    }

    /// A manager on the current tokio runtime.
    ///
    /// # Examples
    /// ```
    /// use agentbus::{BuildError, EventManager};
    ///
    /// // No runtime on this thread: an error value, not a panic.
    /// assert_eq!(EventManager::try_new().unwrap_err(), BuildError::NoRuntime);
    /// ```
    ///
    /// # Errors
    /// [`BuildError::NoRuntime`] outside a tokio runtime.
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Not async.
    pub fn try_new() -> Result<Self, BuildError> {
        EventManagerBuilder::default().build()
    }

    /// A manager whose consumer tasks run on `handle`; usable from any thread.
    ///
    /// # Examples
    /// ```
    /// let runtime = tokio::runtime::Runtime::new().unwrap();
    /// let bus = agentbus::EventManager::with_handle(runtime.handle().clone());
    /// // A plain thread can send with backpressure.
    /// bus.blocking_send(agentbus_events::base::ExceptionEvent::default()).unwrap();
    /// ```
    ///
    /// # Errors
    /// None.
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Not async.
    pub fn with_handle(handle: Handle) -> Self {
        // The catalogue and the bus's own types cannot conflict (the catalogue's strings
        // are unique and include them), and a handle is given: `build` cannot fail. If it
        // ever did, the manager below still works: only the registry differs.
        EventManagerBuilder::default()
            .handle(handle.clone())
            .build()
            .unwrap_or_else(|error| {
                tracing::error!(%error, "building the catalogue registry failed; starting empty");
                EventManagerBuilder::default()
                    .handle(handle)
                    .without_catalogue()
                    .build()
                    .unwrap_or_else(|_| unreachable!("an empty registry cannot conflict"))
            })
    }

    /// A builder for non-default settings (strict mode, default subscriber options,
    /// empty registry, runtime handle).
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let bus = agentbus::EventManager::builder().strict().build().unwrap();
    /// # }
    /// ```
    ///
    /// # Errors
    /// None (see [`EventManagerBuilder::build`]).
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Not async.
    pub fn builder() -> EventManagerBuilder {
        EventManagerBuilder::default()
    }

    // ---- registration ------------------------------------------------------------------

    /// Registers `E` so JSON naming its `type` decodes to it (and, in strict mode, so it
    /// may be sent and subscribed). Registering a type again is a no-op.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use agentbus_events::base::ExceptionEvent;
    ///
    /// let bus = agentbus::EventManager::builder().without_catalogue().build().unwrap();
    /// bus.register::<ExceptionEvent>().unwrap();
    /// assert!(bus.is_registered("base.exception"));
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`RegisterError::Registry`]: an invalid `type` string, or a second Rust type
    /// claiming a registered string.
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Not async.
    pub fn register<E: Event>(&self) -> Result<(), RegisterError> {
        self.register_many([EventInfo::of::<E>()])
    }

    /// Registers several types at once (e.g. `agentbus_events::catalogue::all()`).
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let bus = agentbus::EventManager::builder().without_catalogue().build().unwrap();
    /// bus.register_many(agentbus_events::catalogue::all()).unwrap();
    /// assert!(bus.is_registered("plugin.llm_response_completed"));
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`register`](Self::register); all or nothing: on error nothing is registered.
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Not async.
    pub fn register_many(
        &self,
        infos: impl IntoIterator<Item = EventInfo>,
    ) -> Result<(), RegisterError> {
        let core = self.node.core.load();
        let mut state = lock(&core.state);
        let mut registry = state.registry.clone();
        for info in infos {
            registry.insert(info)?;
        }
        state.registry = registry;
        core.rebuild_routes(&state);
        Ok(())
    }

    /// Whether a type with this `type` string is registered.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let bus = agentbus::EventManager::new();
    /// assert!(!bus.is_registered("no.such_type"));
    /// # }
    /// ```
    ///
    /// # Errors
    /// None.
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Not async.
    pub fn is_registered(&self, event_type: &str) -> bool {
        lock(&self.node.core.load().state)
            .registry
            .contains(event_type)
    }

    /// A copy of the registry.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let bus = agentbus::EventManager::new();
    /// assert!(bus.registry().contains("base.exception"));
    /// # }
    /// ```
    ///
    /// # Errors
    /// None.
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Not async.
    pub fn registry(&self) -> Registry {
        lock(&self.node.core.load().state).registry.clone()
    }

    /// Marks `E` silent: no trace line is logged per send, and wildcard subscribers that
    /// asked to [`skip_silent`](SubscribeOptions::skip_silent) do not receive it (sinks
    /// use that for high-volume types such as audio frames). Typed subscribers still get it.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use agentbus_events::bus::SubscriberLaggedEvent;
    ///
    /// let bus = agentbus::EventManager::new();
    /// bus.silent::<SubscriberLaggedEvent>();
    /// assert!(bus.is_silent("bus.subscriber_lagged"));
    /// # }
    /// ```
    ///
    /// # Errors
    /// None.
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Not async.
    pub fn silent<E: Event>(&self) {
        self.silent_type(E::TYPE);
    }

    /// [`silent`](Self::silent) by `type` string.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let bus = agentbus::EventManager::new();
    /// bus.silent_type("plugin.audio_frame");
    /// assert!(bus.is_silent("plugin.audio_frame"));
    /// # }
    /// ```
    ///
    /// # Errors
    /// None.
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Not async.
    pub fn silent_type(&self, event_type: &str) {
        let core = self.node.core.load();
        let mut state = lock(&core.state);
        if state.silent.insert(event_type.to_owned()) {
            core.rebuild_routes(&state);
        }
    }

    /// Whether the `type` string is silent.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let bus = agentbus::EventManager::new();
    /// assert!(!bus.is_silent("base.exception"));
    /// # }
    /// ```
    ///
    /// # Errors
    /// None.
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Not async.
    pub fn is_silent(&self, event_type: &str) -> bool {
        lock(&self.node.core.load().state)
            .silent
            .contains(event_type)
    }

    /// Whether sending an `E` would reach any handler (typed, union or wildcard).
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use agentbus_events::base::ExceptionEvent;
    ///
    /// let bus = agentbus::EventManager::new();
    /// assert!(!bus.has_subscribers::<ExceptionEvent>());
    /// bus.subscribe("log", |_: Arc<ExceptionEvent>| async {}).unwrap();
    /// assert!(bus.has_subscribers::<ExceptionEvent>());
    /// # }
    /// ```
    ///
    /// # Errors
    /// None.
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Not async.
    pub fn has_subscribers<E: Event>(&self) -> bool {
        let core = self.node.core.load();
        let routes = core.routes.load();
        !routes
            .destination(TypeId::of::<E>(), E::TYPE)
            .subs
            .is_empty()
    }

    // ---- subscribing -------------------------------------------------------------------

    /// Subscribes `handler` under `name` with the bus's default options.
    ///
    /// The handler's argument type says what it receives: `Arc<E>` for one event type, an
    /// [`event_union!`](crate::event_union) enum for several, `Arc<dyn DynEvent>` for every
    /// event (wildcard). It returns `()` or `Result<(), impl Display>`. When a handler
    /// does not compile, see [`handler_requirements`](crate::handler_requirements).
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use agentbus_events::DynEvent;
    /// use agentbus_events::base::ExceptionEvent;
    ///
    /// let bus = agentbus::EventManager::new();
    /// bus.subscribe("failures", |e: Arc<ExceptionEvent>| async move {
    ///     println!("{} failed", e.handler);
    /// })
    /// .unwrap();
    /// bus.subscribe("sink", |e: Arc<dyn DynEvent>| async move {
    ///     Ok::<(), String>(println!("{}", e.event_type()))
    /// })
    /// .unwrap();
    /// // Names identify handlers: a second "sink" is refused.
    /// assert!(bus.subscribe("sink", |_: Arc<dyn DynEvent>| async {}).is_err());
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`SubscribeError`]: the bus is shut down, the name is empty or already subscribed,
    /// or (strict mode) an event type is not registered. Nothing was subscribed then.
    ///
    /// # Panics
    /// Never. A handler that panics is caught and reported as an `ExceptionEvent`.
    ///
    /// # Cancel safety
    /// Not async.
    pub fn subscribe<T, F, Fut>(
        &self,
        name: impl Into<String>,
        handler: F,
    ) -> Result<SubscriptionHandle, SubscribeError>
    where
        T: EventSet,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerOutcome,
    {
        let options = self.node.core.load().defaults;
        self.subscribe_with(name, options, handler)
    }

    /// [`subscribe`](Self::subscribe) with explicit capacity, overflow policy,
    /// concurrency and spin.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use agentbus::{Overflow, SubscribeOptions};
    /// use agentbus_events::DynEvent;
    ///
    /// let bus = agentbus::EventManager::new();
    /// let options = SubscribeOptions::new().capacity(1024).overflow(Overflow::DropOldest);
    /// let handle = bus
    ///     .subscribe_with("metrics", options, |_: Arc<dyn DynEvent>| async {})
    ///     .unwrap();
    /// assert_eq!(handle.stats().capacity, 1024);
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`subscribe`](Self::subscribe), and zero capacity or concurrency.
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Not async.
    pub fn subscribe_with<T, F, Fut>(
        &self,
        name: impl Into<String>,
        options: SubscribeOptions,
        handler: F,
    ) -> Result<SubscriptionHandle, SubscribeError>
    where
        T: EventSet,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerOutcome,
    {
        subscription::subscribe(&self.node, name.into(), options, handler)
    }

    /// A subscription read as a [`Stream`](futures::Stream) instead of through a
    /// handler: `while let Some(event) = stream.next().await`. `T` selects the events as
    /// for a handler (`Arc<E>`, an [`event_union!`](crate::event_union) enum, or
    /// `Arc<dyn DynEvent>`); the options' capacity and overflow policy apply as for any
    /// subscriber. Dropping the stream unsubscribes; the stream ends when the bus shuts
    /// down.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use futures::StreamExt;
    /// use agentbus::SubscribeOptions;
    /// use agentbus_events::base::ExceptionEvent;
    ///
    /// let bus = agentbus::EventManager::new();
    /// let mut failures = bus
    ///     .stream::<Arc<ExceptionEvent>>("failures", SubscribeOptions::new())
    ///     .unwrap();
    /// bus.send(ExceptionEvent::default()).await.unwrap();
    /// let first = failures.next().await.unwrap();
    /// assert_eq!(first.meta.seq.unwrap().get(), 1);
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`subscribe_with`](Self::subscribe_with).
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Not async; the stream's `next()` is cancel-safe (an event is only taken when
    /// `next()` returns it).
    pub fn stream<T: EventSet>(
        &self,
        name: impl Into<String>,
        options: SubscribeOptions,
    ) -> Result<EventStream<T>, SubscribeError> {
        EventStream::subscribe(&self.node, name.into(), options)
    }

    // ---- sending -----------------------------------------------------------------------

    /// Sends one event (typed, or a `Box<dyn DynEvent>`), waiting asynchronously for room
    /// in full [`Block`](crate::Overflow::Block) subscribers; never blocks a thread.
    /// Returns the `seq` the bus stamped and the subscribers that refused the event
    /// ([`Error`](crate::Overflow::Error) subscribers that were full; a handler's own
    /// full `Block` queue, which it cannot wait for without deadlocking). A full
    /// [`DropOldest`](crate::Overflow::DropOldest) subscriber drops its oldest delivery.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use agentbus_events::DynEvent;
    /// use agentbus_events::base::ExceptionEvent;
    ///
    /// let bus = agentbus::EventManager::new();
    /// let sent = bus.send(ExceptionEvent::default()).await.unwrap();
    /// assert_eq!(sent.seq().get(), 1);
    /// let erased: Box<dyn DynEvent> = Box::new(ExceptionEvent::default());
    /// assert_eq!(bus.send(erased).await.unwrap().seq().get(), 2);
    /// # }
    /// ```
    ///
    /// # Errors
    /// Nothing was sent: [`SendError::Shutdown`] (also when a shutdown begins while
    /// waiting for room), [`SendError::Unregistered`] (strict mode),
    /// [`SendError::Full`] (every subscriber refused).
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Cancel-safe and all-or-nothing. The event is pushed to every subscriber in one
    /// synchronous step, after a place was reserved in each `Block` subscriber; the
    /// future waits only *before* that step, holding no reservation. Dropping it while it
    /// waits delivers nothing and consumes no `seq` (the event is dropped with the
    /// future).
    pub async fn send(&self, event: impl Outgoing) -> Result<Sent, SendError> {
        let mut event = event;
        loop {
            match deliver::attempt(&self.node, event, Mode::Wait) {
                Attempt::Done(result) => return result,
                Attempt::WaitFor(sub, back) => {
                    event = back;
                    if !sub.wait_for_space().await && self.is_shut_down() {
                        return Err(SendError::Shutdown);
                    }
                }
            }
        }
    }

    /// Sends one event without ever waiting: a full `Block` or `Error` subscriber refuses
    /// it (listed in [`Sent::refused`]); the others get it. Works on any thread, with or
    /// without a runtime.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use agentbus::SubscribeOptions;
    /// use agentbus_events::base::ExceptionEvent;
    ///
    /// let bus = agentbus::EventManager::new();
    /// bus.subscribe_with("slow", SubscribeOptions::new().capacity(1), |_: Arc<ExceptionEvent>| {
    ///     tokio::time::sleep(Duration::from_millis(50))
    /// })
    /// .unwrap();
    /// bus.subscribe("fast", |_: Arc<ExceptionEvent>| async {}).unwrap();
    /// assert!(bus.try_send(ExceptionEvent::default()).unwrap().is_complete());
    /// // "slow" is full: it refuses, "fast" still gets the event.
    /// let sent = bus.try_send(ExceptionEvent::default()).unwrap();
    /// assert_eq!(sent.refused()[0].subscriber, "slow");
    /// # }
    /// ```
    ///
    /// # Errors
    /// Nothing was sent: [`SendError::Shutdown`], [`SendError::Unregistered`] (strict
    /// mode), [`SendError::Full`] (every subscriber refused).
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Not async.
    pub fn try_send(&self, event: impl Outgoing) -> Result<Sent, SendError> {
        deliver::try_send(&self.node, event)
    }

    /// Sends one event from a plain thread, parking it until full `Block` subscribers
    /// have room. Inside a tokio runtime it refuses (it would block a worker).
    ///
    /// # Examples
    /// ```
    /// use agentbus_events::base::ExceptionEvent;
    ///
    /// let runtime = tokio::runtime::Runtime::new().unwrap();
    /// let bus = agentbus::EventManager::with_handle(runtime.handle().clone());
    /// let sent = std::thread::spawn(move || bus.blocking_send(ExceptionEvent::default()))
    ///     .join()
    ///     .unwrap()
    ///     .unwrap();
    /// assert_eq!(sent.seq().get(), 1);
    /// ```
    ///
    /// # Errors
    /// Nothing was sent: [`SendError::InsideRuntime`] on a thread inside a tokio runtime,
    /// and as [`send`](Self::send).
    ///
    /// # Panics
    /// Never (unlike tokio's `blocking_send`, inside a runtime it returns an error).
    ///
    /// # Cancel safety
    /// Not async.
    pub fn blocking_send(&self, event: impl Outgoing) -> Result<Sent, SendError> {
        if Handle::try_current().is_ok() {
            return Err(SendError::InsideRuntime);
        }
        let mut event = event;
        loop {
            match deliver::attempt(&self.node, event, Mode::Wait) {
                Attempt::Done(result) => return result,
                Attempt::WaitFor(sub, back) => {
                    event = back;
                    if !futures::executor::block_on(sub.wait_for_space()) && self.is_shut_down() {
                        return Err(SendError::Shutdown);
                    }
                }
            }
        }
    }

    /// Decodes wire-format JSON through the bus's registry and [`try_send`](Self::try_send)s
    /// the typed event (JSON from disk or the network → handlers). The `seq` in the JSON,
    /// if any, is replaced by this bus's.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let bus = agentbus::EventManager::new();
    /// let json = br#"{"type":"base.exception","schema_version":1,"event_id":"00000000-0000-0000-0000-000000000001",
    ///     "timestamp":"2024-01-01T00:00:00Z","exc":{"message":"m","kind":"k"},"handler":"h"}"#;
    /// assert_eq!(bus.try_send_json(json).unwrap().seq().get(), 1);
    /// assert!(bus.try_send_json(b"{\"type\":\"no.such\"}").is_err());
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`SendJsonError::Decode`] (malformed JSON, unknown type, bad fields) or
    /// [`SendJsonError::Send`] as [`try_send`](Self::try_send). Nothing was sent.
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Not async.
    pub fn try_send_json(&self, bytes: &[u8]) -> Result<Sent, SendJsonError> {
        let event = lock(&self.node.core.load().state).registry.decode(bytes)?;
        Ok(self.try_send(event)?)
    }

    /// Decodes wire-format JSON as [`try_send_json`](Self::try_send_json) and
    /// [`send`](Self::send)s it, waiting for room.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let bus = agentbus::EventManager::new();
    /// let json = br#"{"type":"base.exception","schema_version":1,"event_id":"00000000-0000-0000-0000-000000000001",
    ///     "timestamp":"2024-01-01T00:00:00Z","exc":{"message":"m","kind":"k"},"handler":"h"}"#;
    /// assert_eq!(bus.send_json(json).await.unwrap().seq().get(), 1);
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`try_send_json`](Self::try_send_json), with [`send`](Self::send)'s errors.
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// As [`send`](Self::send): dropping the future sends nothing.
    pub async fn send_json(&self, bytes: &[u8]) -> Result<Sent, SendJsonError> {
        let event = lock(&self.node.core.load().state).registry.decode(bytes)?;
        Ok(self.send(event).await?)
    }

    // ---- waiting -----------------------------------------------------------------------

    /// Resolves when the bus is idle: every delivery accepted before the call — and
    /// everything those handlers sent in turn — has been handled. Sleeps on this bus's
    /// own signal (no polling).
    ///
    /// It is a quiescence barrier: events other tasks keep sending during the wait are
    /// waited for too. Called from inside a handler, it waits for every *other*
    /// subscriber to be idle, and does not wait for the calling subscriber's own queue
    /// (the current delivery and the ones queued behind it cannot run until the handler
    /// returns) nor for subscribers whose handlers are themselves waiting (two handlers
    /// waiting for each other would otherwise deadlock).
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use agentbus_events::base::ExceptionEvent;
    ///
    /// let bus = agentbus::EventManager::new();
    /// let seen = Arc::new(AtomicU64::new(0));
    /// let counter = Arc::clone(&seen);
    /// bus.subscribe("count", move |_: Arc<ExceptionEvent>| {
    ///     counter.fetch_add(1, Ordering::SeqCst);
    ///     async {}
    /// })
    /// .unwrap();
    /// bus.send(ExceptionEvent::default()).await.unwrap();
    /// bus.idle().await;
    /// assert_eq!(seen.load(Ordering::SeqCst), 1);
    /// # }
    /// ```
    ///
    /// # Errors
    /// None; [`wait`](Self::wait) adds a timeout.
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Cancel-safe: it only observes.
    pub fn idle(&self) -> impl Future<Output = ()> + Send + '_ {
        idle_wait::idle(&self.node)
    }

    /// [`idle`](Self::idle) with a timeout.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    ///
    /// let bus = agentbus::EventManager::new();
    /// bus.wait(Duration::from_secs(1)).await.unwrap();
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`WaitError::Timeout`] (with the deliveries still queued) if the bus is not idle
    /// within `timeout`.
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Cancel-safe: it only observes.
    pub async fn wait(&self, timeout: Duration) -> Result<(), WaitError> {
        match tokio::time::timeout(timeout, self.idle()).await {
            Ok(()) => Ok(()),
            Err(_) => Err(WaitError::Timeout {
                timeout,
                pending: idle_wait::pending(&self.node),
            }),
        }
    }

    // ---- merging -----------------------------------------------------------------------

    /// Merges `child` (a plugin's manager) into this one: from now on they are one bus.
    /// Events sent through either reach the handlers subscribed through either; the
    /// child's registrations and silent types join this bus's; work queued in the child
    /// is covered by `idle` on either. Transitive: managers merged into `child` before
    /// (or after) come along. Subscriber names are unique per bus at subscribe time;
    /// merging does not rename or refuse same-named subscribers of the two buses.
    ///
    /// Shutdown: shutting down this manager shuts down the child too; shutting down the
    /// child detaches it (and what was merged into it): its subscribers drain and stop,
    /// its handle refuses sends, and this manager keeps running.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use agentbus_events::base::ExceptionEvent;
    ///
    /// let agent = agentbus::EventManager::new();
    /// let plugin = agentbus::EventManager::new();
    /// plugin.subscribe("plugin-log", |_: Arc<ExceptionEvent>| async {}).unwrap();
    /// agent.merge(&plugin).unwrap();
    /// assert!(agent.has_subscribers::<ExceptionEvent>());
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`MergeError::Shutdown`] if either is shut down; [`MergeError::Registry`] when two
    /// Rust types claim one `type` string. Both are unchanged then.
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Not async.
    pub fn merge(&self, child: &EventManager) -> Result<(), MergeError> {
        self.node.merge(&child.node)
    }

    // ---- shutting down -----------------------------------------------------------------

    /// Stops accepting events through this manager and everything merged into it, drains
    /// their subscribers' queues for at most `deadline`, then cancels what is left and
    /// reports. Later sends through those managers return [`SendError::Shutdown`].
    ///
    /// If this manager was merged into a parent, only it and its merged children are
    /// shut down (detached); the parent keeps running. Handlers that send while draining
    /// get `Shutdown`. Called from inside a handler of this bus, that handler's own
    /// subscriber is told to finish but not waited for (it cannot finish before the
    /// handler returns).
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    ///
    /// let bus = agentbus::EventManager::new();
    /// let report = bus.shutdown(Duration::from_secs(1)).await;
    /// assert!(!report.timed_out);
    /// assert!(bus.is_shut_down());
    /// # }
    /// ```
    ///
    /// # Errors
    /// None: what could not be drained is counted in the report (`cancelled`,
    /// `timed_out`).
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Not cancel-safe in what it reports: the bus is closed from the first poll, and a
    /// dropped future leaves the remaining consumers draining on their own without a
    /// deadline.
    #[must_use = "the report says what was delivered, cancelled or timed out"]
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        shutdown::shutdown(&self.node, deadline).await
    }

    /// Whether this manager has been shut down (directly or through a parent).
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let bus = agentbus::EventManager::new();
    /// assert!(!bus.is_shut_down());
    /// # }
    /// ```
    ///
    /// # Errors
    /// None.
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Not async.
    pub fn is_shut_down(&self) -> bool {
        self.node.is_closed()
    }

    // ---- stats ---------------------------------------------------------------------------

    /// A snapshot of the counters.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use agentbus_events::base::ExceptionEvent;
    ///
    /// let bus = agentbus::EventManager::new();
    /// bus.try_send(ExceptionEvent::default()).unwrap();
    /// assert_eq!(bus.stats().next_seq, 2);
    /// # }
    /// ```
    ///
    /// # Errors
    /// None.
    ///
    /// # Panics
    /// Never.
    ///
    /// # Cancel safety
    /// Not async.
    pub fn stats(&self) -> BusStats {
        let core = self.node.core.load();
        let subscribers = lock(&core.state)
            .subscribers
            .iter()
            .map(|s| subscriber_stats(s))
            .collect();
        BusStats {
            next_seq: core.hot.seq.load(SeqCst),
            subscribers,
            unregistered: core.unregistered.load(Relaxed),
            suppressed_exceptions: core.suppressed_exceptions.load(Relaxed),
        }
    }
}
