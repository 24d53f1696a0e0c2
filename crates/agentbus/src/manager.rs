//! [`EventManager`]: the bus itself.
//!
//! A manager is a *node*; nodes share a *core* (seq counter, registry, subscribers,
//! routes). `merge` moves a child's core into its parent's and points every node of the
//! child at the parent's core, so a merged group is one bus reachable through any of its
//! managers, and merging is transitive. The nodes also form a tree (parent, children) that
//! decides what `shutdown` covers.

use std::any::TypeId;
use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use agentbus_events::base::ExceptionEvent;
use agentbus_events::bus::SubscriberLaggedEvent;
use agentbus_events::{DynEvent, ErrorInfo, Event, EventInfo, EventMeta, Registry};
use arc_swap::ArcSwap;
use tokio::runtime::Handle;
use uuid::Uuid;

use crate::handler::HandlerOutcome;
use crate::routes::{Destination, Routes};
use crate::subscriber::{
    CURRENT, CurrentDelivery, Push, Subscriber, SubscriptionKey, consume, current_subscriber,
};
use crate::wait::{self, WaiterGuard};
use crate::{
    BusError, BusStats, EventSet, Overflow, Registration, ShutdownReport, SubscribeOptions,
    SubscriberStats,
};

/// Ids of nodes and subscribers, unique in the process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Relaxed)
}

/// Locks a mutex, recovering the data if a thread panicked while holding it (every
/// critical section here leaves the data consistent before anything can panic).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The counters every send touches, on one cache line.
#[repr(align(64))]
struct Hot {
    /// The next `seq`.
    seq: AtomicU64,
    /// Sends in progress (between the closed check and the last push): `shutdown` waits
    /// for them before draining, so nothing accepted lands in a queue nobody drains.
    in_send: AtomicUsize,
}

/// The shared bus of a merged group.
pub(crate) struct Core {
    hot: Hot,
    handle: Handle,
    routes: ArcSwap<Routes>,
    state: Mutex<CoreState>,
    registration: Registration,
    defaults: SubscribeOptions,
    unregistered: AtomicU64,
    suppressed_exceptions: AtomicU64,
}

struct CoreState {
    registry: Registry,
    subscribers: Vec<Arc<Subscriber>>,
    silent: HashSet<String>,
    members: Vec<Weak<Node>>,
}

impl Core {
    fn rebuild_routes(&self, state: &CoreState) {
        self.routes.store(Arc::new(Routes::build(
            &state.registry,
            &state.subscribers,
            &state.silent,
        )));
    }

    fn check_registered(&self, dest: &Destination<'_>, event_type: &str) -> Result<(), BusError> {
        if !dest.registered {
            match self.registration {
                Registration::Strict => {
                    return Err(BusError::Unregistered {
                        event_type: event_type.to_owned(),
                    });
                }
                Registration::Lenient => {
                    self.unregistered.fetch_add(1, Relaxed);
                }
            }
        }
        Ok(())
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // Nobody can send any more: let every consumer drain and exit.
        for sub in &lock(&self.state).subscribers {
            sub.finish();
        }
    }
}

/// One manager of a (possibly merged) group.
pub(crate) struct Node {
    id: u64,
    core: ArcSwap<Core>,
    closed: AtomicBool,
    tree: Mutex<Tree>,
}

#[derive(Default)]
struct Tree {
    parent: Option<Weak<Node>>,
    children: Vec<Arc<Node>>,
}

impl Node {
    /// This node and every node merged into it, transitively.
    fn subtree(self: &Arc<Self>) -> Vec<Arc<Node>> {
        let mut out = vec![Arc::clone(self)];
        let mut i = 0;
        while i < out.len() {
            let children = lock(&out[i].tree).children.clone();
            out.extend(children);
            i += 1;
        }
        out
    }
}

/// Marks a send in progress for as long as it lives.
struct SendGuard<'a> {
    core: &'a Core,
}

impl<'a> SendGuard<'a> {
    /// Counts a send in progress, loads the routes, then checks that the node is open:
    /// in that order. `shutdown` sets the closed flag before it rebuilds the routes
    /// without its subscribers, so a send that loads the rebuilt routes also sees the flag
    /// and is refused, instead of being accepted and reaching nobody; a send that loaded
    /// the old routes is counted, and `shutdown` waits for it before stopping them.
    fn enter(
        core: &'a Core,
        node: &Node,
    ) -> Result<(Self, arc_swap::Guard<Arc<Routes>>), BusError> {
        core.hot.in_send.fetch_add(1, SeqCst);
        let guard = Self { core };
        let routes = core.routes.load();
        if node.closed.load(SeqCst) {
            return Err(BusError::Shutdown);
        }
        Ok((guard, routes))
    }
}

impl Drop for SendGuard<'_> {
    fn drop(&mut self) {
        self.core.hot.in_send.fetch_sub(1, SeqCst);
    }
}

/// The in-process event bus (Vision Agents' `EventManager`): typed, ordered, bounded,
/// and honest about failure.
///
/// Cloning gives another handle to the same manager. See the crate documentation for the
/// delivery contract.
#[derive(Clone)]
pub struct EventManager {
    node: Arc<Node>,
}

impl std::fmt::Debug for EventManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventManager")
            .field("id", &self.node.id)
            .field("closed", &self.node.closed.load(Relaxed))
            .finish()
    }
}

impl Default for EventManager {
    /// Same as [`EventManager::new`] (panics outside a tokio runtime).
    fn default() -> Self {
        Self::new()
    }
}

/// Builds an [`EventManager`] with non-default settings.
#[derive(Clone, Debug, Default)]
pub struct EventManagerBuilder {
    handle: Option<Handle>,
    registration: Registration,
    defaults: SubscribeOptions,
    without_catalogue: bool,
}

impl EventManagerBuilder {
    /// The runtime consumer tasks are spawned on (default: the current runtime).
    pub fn handle(mut self, handle: Handle) -> Self {
        self.handle = Some(handle);
        self
    }

    /// Strict or lenient handling of unregistered types (default lenient).
    pub fn registration(mut self, registration: Registration) -> Self {
        self.registration = registration;
        self
    }

    /// Shorthand for `registration(Registration::Strict)`.
    pub fn strict(self) -> Self {
        self.registration(Registration::Strict)
    }

    /// The options `subscribe` uses (default [`SubscribeOptions::default`]).
    pub fn default_options(mut self, options: SubscribeOptions) -> Self {
        self.defaults = options;
        self
    }

    /// Starts with an empty registry instead of the whole catalogue (the bus's own
    /// `base.exception` and `bus.subscriber_lagged` are always registered).
    pub fn without_catalogue(mut self) -> Self {
        self.without_catalogue = true;
        self
    }

    /// The manager. Fails with [`BusError::NoRuntime`] when no handle was given and the
    /// calling thread is not inside a tokio runtime.
    pub fn build(self) -> Result<EventManager, BusError> {
        let handle = match self.handle {
            Some(handle) => handle,
            None => Handle::try_current().map_err(|_| BusError::NoRuntime)?,
        };
        let mut registry = if self.without_catalogue {
            Registry::new()
        } else {
            Registry::catalogue()
        };
        registry.register::<ExceptionEvent>()?;
        registry.register::<SubscriberLaggedEvent>()?;
        let state = CoreState {
            registry,
            subscribers: Vec::new(),
            silent: HashSet::new(),
            members: Vec::new(),
        };
        let routes = Routes::build(&state.registry, &state.subscribers, &state.silent);
        let core = Arc::new(Core {
            hot: Hot {
                seq: AtomicU64::new(1),
                in_send: AtomicUsize::new(0),
            },
            handle,
            routes: ArcSwap::from_pointee(routes),
            state: Mutex::new(state),
            registration: self.registration,
            defaults: self.defaults,
            unregistered: AtomicU64::new(0),
            suppressed_exceptions: AtomicU64::new(0),
        });
        let node = Arc::new(Node {
            id: next_id(),
            core: ArcSwap::new(Arc::clone(&core)),
            closed: AtomicBool::new(false),
            tree: Mutex::new(Tree::default()),
        });
        lock(&core.state).members.push(Arc::downgrade(&node));
        Ok(EventManager { node })
    }
}

/// A subscription. Dropping the handle does **not** unsubscribe (the subscription lives
/// as long as the bus, like a decorator-registered handler); call
/// [`unsubscribe`](SubscriptionHandle::unsubscribe) to stop it.
#[derive(Clone)]
pub struct SubscriptionHandle {
    node: Weak<Node>,
    sub: Arc<Subscriber>,
}

impl std::fmt::Debug for SubscriptionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionHandle")
            .field("id", &self.sub.id)
            .field("name", &self.sub.name())
            .finish()
    }
}

impl SubscriptionHandle {
    /// The subscription's id (unique in the process).
    pub fn id(&self) -> u64 {
        self.sub.id
    }

    /// The name it was subscribed under.
    pub fn name(&self) -> &str {
        self.sub.name()
    }

    /// Whether it still receives new events.
    pub fn is_active(&self) -> bool {
        !self.sub.is_closing()
    }

    /// Its counters.
    pub fn stats(&self) -> SubscriberStats {
        subscriber_stats(&self.sub)
    }

    /// Stops delivering new events to this handler. Deliveries already queued are still
    /// handled, then its consumer task ends. Returns false if it was already removed.
    pub fn unsubscribe(self) -> bool {
        let Some(node) = self.node.upgrade() else {
            return false;
        };
        let core = node.core.load_full();
        let removed = {
            let mut state = lock(&core.state);
            let before = state.subscribers.len();
            state.subscribers.retain(|s| s.id != self.sub.id);
            let removed = state.subscribers.len() != before;
            if removed {
                core.rebuild_routes(&state);
            }
            removed
        };
        if removed {
            tracing::debug!(subscriber = self.sub.name(), "unsubscribed");
            self.sub.finish();
        }
        removed
    }
}

fn subscriber_stats(sub: &Subscriber) -> SubscriberStats {
    let counters = sub.counters();
    SubscriberStats {
        id: sub.id,
        name: sub.name().to_owned(),
        event_types: sub.members.iter().map(|&(_, t)| t).collect(),
        wildcard: sub.is_wildcard(),
        capacity: sub.options.capacity,
        overflow: sub.options.overflow,
        concurrency: sub.options.concurrency,
        queue_depth: counters.queue_depth,
        delivered: counters.delivered,
        failed: counters.failed,
        dropped: counters.dropped,
        cancelled: counters.cancelled,
        handler_time: counters.handler_time,
    }
}

/// Publishes the `ExceptionEvent` for a failed handler call (called by consumers).
pub(crate) fn report_failure(
    node: &Weak<Node>,
    sub: &Subscriber,
    exc: ErrorInfo,
    event_type: &'static str,
    event_id: Uuid,
) {
    let node = node.upgrade();
    if event_type == ExceptionEvent::TYPE {
        if let Some(node) = &node {
            node.core.load().suppressed_exceptions.fetch_add(1, Relaxed);
        }
        tracing::error!(
            handler = sub.name(),
            error = %exc,
            "a handler of base.exception failed; not publishing another ExceptionEvent"
        );
        return;
    }
    tracing::warn!(handler = sub.name(), event_type, %event_id, error = %exc, "event handler failed");
    let Some(node) = node else { return };
    let event = ExceptionEvent {
        meta: EventMeta::new(),
        exc,
        handler: sub.name().to_owned(),
        failed_event_type: Some(event_type.to_owned()),
        failed_event_id: Some(event_id),
    };
    if let Err(error) = (EventManager { node }).send(event) {
        tracing::warn!(handler = sub.name(), %error, "could not publish ExceptionEvent");
    }
}

/// Whether a `Block` send may park this thread waiting for `sub` to make room: only
/// outside any tokio runtime (never blocks a worker) — and so never from a handler.
fn may_block_thread() -> bool {
    Handle::try_current().is_err()
}

impl EventManager {
    /// A manager on the current tokio runtime, with the whole catalogue registered and
    /// lenient registration.
    ///
    /// # Panics
    /// Outside a tokio runtime (like `tokio::spawn`); use [`EventManager::try_new`] or
    /// [`EventManager::with_handle`] there.
    pub fn new() -> Self {
        match Self::try_new() {
            Ok(manager) => manager,
            Err(error) => panic!("{error}"),
        }
    }

    /// A manager on the current tokio runtime, or [`BusError::NoRuntime`].
    pub fn try_new() -> Result<Self, BusError> {
        EventManagerBuilder::default().build()
    }

    /// A manager whose consumer tasks run on `handle`; usable from any thread.
    pub fn with_handle(handle: Handle) -> Self {
        // Registering the catalogue and the bus types cannot conflict (the catalogue's
        // strings are unique and include them), and a handle is given: `build` cannot fail.
        match EventManagerBuilder::default().handle(handle).build() {
            Ok(manager) => manager,
            Err(error) => unreachable!("building with a handle cannot fail: {error}"),
        }
    }

    /// A builder for non-default settings (strict mode, default subscriber options,
    /// empty registry, runtime handle).
    pub fn builder() -> EventManagerBuilder {
        EventManagerBuilder::default()
    }

    fn core(&self) -> arc_swap::Guard<Arc<Core>> {
        self.node.core.load()
    }

    // ---- registration ------------------------------------------------------------------

    /// Registers `E` so JSON naming its `type` decodes to it (and, in strict mode, so it
    /// may be sent and subscribed). Registering a type again is a no-op; an invalid `type`
    /// string or a second Rust type claiming a string is an error.
    pub fn register<E: Event>(&self) -> Result<(), BusError> {
        self.register_many([EventInfo::of::<E>()])
    }

    /// Registers several types at once (e.g. `agentbus_events::catalogue::all()`). All or
    /// nothing: on error nothing is registered.
    pub fn register_many(
        &self,
        infos: impl IntoIterator<Item = EventInfo>,
    ) -> Result<(), BusError> {
        let core = self.core();
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
    pub fn is_registered(&self, event_type: &str) -> bool {
        lock(&self.core().state).registry.contains(event_type)
    }

    /// A copy of the registry.
    pub fn registry(&self) -> Registry {
        lock(&self.core().state).registry.clone()
    }

    /// Marks `E` silent: no trace line is logged per send, and wildcard subscribers that
    /// asked to [`skip_silent`](SubscribeOptions::skip_silent) do not receive it (sinks
    /// use that for high-volume types such as audio frames). Typed subscribers still get it.
    pub fn silent<E: Event>(&self) {
        self.silent_type(E::TYPE);
    }

    /// [`silent`](Self::silent) by `type` string.
    pub fn silent_type(&self, event_type: &str) {
        let core = self.core();
        let mut state = lock(&core.state);
        if state.silent.insert(event_type.to_owned()) {
            core.rebuild_routes(&state);
        }
    }

    /// Whether the `type` string is silent.
    pub fn is_silent(&self, event_type: &str) -> bool {
        lock(&self.core().state).silent.contains(event_type)
    }

    /// Whether sending an `E` would reach any handler (typed, union or wildcard).
    pub fn has_subscribers<E: Event>(&self) -> bool {
        let core = self.core();
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
    /// event (wildcard). It returns `()` or `Result<(), impl Display>`.
    ///
    /// Handlers are identified by `name` and their set of event types: subscribing the
    /// same name to the same set again returns a handle to the existing subscription, and
    /// the handler runs once per event.
    pub fn subscribe<T, F, Fut>(
        &self,
        name: impl Into<String>,
        handler: F,
    ) -> Result<SubscriptionHandle, BusError>
    where
        T: EventSet,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerOutcome,
    {
        let options = self.core().defaults;
        self.subscribe_with(name, options, handler)
    }

    /// [`subscribe`](Self::subscribe) with explicit capacity, overflow policy and
    /// concurrency.
    pub fn subscribe_with<T, F, Fut>(
        &self,
        name: impl Into<String>,
        options: SubscribeOptions,
        handler: F,
    ) -> Result<SubscriptionHandle, BusError>
    where
        T: EventSet,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerOutcome,
    {
        let name: String = name.into();
        let invalid = |reason| BusError::InvalidSubscription {
            name: name.clone(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("the name is empty"));
        }
        if options.capacity == 0 {
            return Err(invalid("capacity must be at least 1"));
        }
        if options.concurrency == 0 {
            return Err(invalid("concurrency must be at least 1"));
        }
        if self.node.closed.load(SeqCst) {
            return Err(BusError::Shutdown);
        }
        let members = T::members();
        let key = SubscriptionKey {
            name: Arc::from(name.as_str()),
            types: members.as_ref().map(|infos| {
                let mut ids: Vec<TypeId> = infos.iter().map(|i| i.type_id()).collect();
                ids.sort_unstable();
                ids.dedup();
                ids
            }),
        };
        let core = self.node.core.load_full();
        let mut state = lock(&core.state);
        for info in members.iter().flatten() {
            let registered = state
                .registry
                .get(info.event_type)
                .is_some_and(|r| r.type_id() == info.type_id());
            if !registered {
                match core.registration {
                    Registration::Strict => {
                        return Err(BusError::Unregistered {
                            event_type: info.event_type.to_owned(),
                        });
                    }
                    Registration::Lenient => {
                        core.unregistered.fetch_add(1, Relaxed);
                    }
                }
            }
        }
        if let Some(existing) = state.subscribers.iter().find(|s| s.key == key) {
            return Ok(SubscriptionHandle {
                node: Arc::downgrade(&self.node),
                sub: Arc::clone(existing),
            });
        }
        let mut member_types: Vec<(TypeId, &'static str)> = Vec::new();
        for info in members.iter().flatten() {
            if !member_types.iter().any(|&(t, _)| t == info.type_id()) {
                member_types.push((info.type_id(), info.event_type));
            }
        }
        let id = next_id();
        let sub = Arc::new(Subscriber::new(
            id,
            key,
            member_types,
            options,
            self.node.id,
        ));
        let consumer = consume::<T, F, Fut>(Arc::clone(&sub), handler, Arc::downgrade(&self.node));
        let task = core
            .handle
            .spawn(CURRENT.scope(CurrentDelivery { subscriber: id }, consumer));
        sub.set_task(task);
        state.subscribers.push(Arc::clone(&sub));
        core.rebuild_routes(&state);
        tracing::debug!(subscriber = name, id, "subscribed");
        Ok(SubscriptionHandle {
            node: Arc::downgrade(&self.node),
            sub,
        })
    }

    // ---- sending -----------------------------------------------------------------------

    /// Sends one event; returns the `seq` the bus stamped on it.
    ///
    /// Never waits in an async context and needs no runtime on the calling thread. The
    /// event is queued for every subscriber in send order. A subscriber whose queue is
    /// full applies its [`Overflow`] policy: `DropOldest` drops (counted, lag event);
    /// `Error` gives [`BusError::Full`]; `Block` parks the calling thread until there is
    /// room when the thread is outside any tokio runtime, and otherwise gives
    /// [`BusError::Full`] (use [`send_async`](Self::send_async) for backpressure in async
    /// code). On `Full` the event was still accepted and delivered to every other
    /// subscriber. After shutdown: [`BusError::Shutdown`]; also when a shutdown begins
    /// while the thread is parked waiting for room (that subscriber never got the event;
    /// the others did). Strict mode, unregistered type: [`BusError::Unregistered`]
    /// (nothing sent).
    pub fn send<E: Event>(&self, mut event: E) -> Result<u64, BusError> {
        self.send_erased(TypeId::of::<E>(), E::TYPE, move |seq| {
            event.meta_mut().seq = Some(seq);
            Arc::new(event)
        })
    }

    /// Sends several events in order; returns the `seq` of the last one (0 if there
    /// were none). Stops at the first error.
    pub fn send_many<E: Event>(
        &self,
        events: impl IntoIterator<Item = E>,
    ) -> Result<u64, BusError> {
        let mut last = 0;
        for event in events {
            last = self.send(event)?;
        }
        Ok(last)
    }

    /// Sends a type-erased event (e.g. one decoded from JSON). Same contract as
    /// [`send`](Self::send).
    pub fn send_dyn(&self, mut event: Box<dyn DynEvent>) -> Result<u64, BusError> {
        let type_id = event.as_any().type_id();
        let event_type = event.event_type();
        self.send_erased(type_id, event_type, move |seq| {
            event.meta_mut().seq = Some(seq);
            Arc::from(event)
        })
    }

    /// The body of the synchronous sends: `stamp` puts the `seq` on the event and shares
    /// it (generic, so it inlines into each caller).
    fn send_erased(
        &self,
        type_id: TypeId,
        event_type: &'static str,
        stamp: impl FnOnce(u64) -> Arc<dyn DynEvent>,
    ) -> Result<u64, BusError> {
        let core = self.core();
        let (_guard, routes) = SendGuard::enter(&core, &self.node)?;
        let dest = routes.destination(type_id, event_type);
        core.check_registered(&dest, event_type)?;
        let seq = core.hot.seq.fetch_add(1, Relaxed);
        if !dest.silent {
            tracing::trace!(event_type, seq, "send");
        }
        self.dispatch_sync(dest.subs, stamp(seq), seq)
    }

    /// Decodes wire-format JSON through the bus's registry and sends the typed event
    /// (JSON from disk or the network → handlers). Unknown types and malformed JSON give
    /// [`BusError::Decode`]. The event's `seq` is re-stamped by this bus.
    pub fn decode_and_send(&self, bytes: &[u8]) -> Result<u64, BusError> {
        let event = lock(&self.core().state).registry.decode(bytes)?;
        self.send_dyn(event)
    }

    fn dispatch_sync(
        &self,
        subs: &[Arc<Subscriber>],
        event: Arc<dyn DynEvent>,
        seq: u64,
    ) -> Result<u64, BusError> {
        let mut first_error = None;
        for (sub, event) in per_subscriber(subs, event) {
            match sub.push(event) {
                Push::Queued => {}
                Push::Dropped { lag } => self.publish_lag(sub, lag),
                Push::Full(event) => {
                    if sub.options.overflow == Overflow::Block && may_block_thread() {
                        if !block_until_pushed(self, sub, event) && self.is_shut_down() {
                            // Shutdown closed the queue while we waited for room: this
                            // delivery was never accepted, and the caller must know.
                            first_error.get_or_insert(BusError::Shutdown);
                        }
                    } else {
                        first_error.get_or_insert_with(|| full_error(sub, seq));
                    }
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(seq),
        }
    }

    /// Sends one event, waiting (asynchronously) for room in `Block` subscribers' queues:
    /// backpressure for async producers. Returns the `seq`. A handler sending to its own
    /// full queue gets [`BusError::Full`] instead of deadlocking; other policies behave as
    /// in [`send`](Self::send).
    pub async fn send_async<E: Event>(&self, mut event: E) -> Result<u64, BusError> {
        self.send_erased_async(TypeId::of::<E>(), E::TYPE, move |seq| {
            event.meta_mut().seq = Some(seq);
            Arc::new(event)
        })
        .await
    }

    /// Sends a type-erased event with backpressure. Same contract as
    /// [`send_async`](Self::send_async); the async counterpart of
    /// [`send_dyn`](Self::send_dyn).
    pub async fn send_dyn_async(&self, mut event: Box<dyn DynEvent>) -> Result<u64, BusError> {
        let type_id = event.as_any().type_id();
        let event_type = event.event_type();
        self.send_erased_async(type_id, event_type, move |seq| {
            event.meta_mut().seq = Some(seq);
            Arc::from(event)
        })
        .await
    }

    /// The body of the async sends, as [`send_erased`](Self::send_erased) with
    /// backpressure.
    async fn send_erased_async(
        &self,
        type_id: TypeId,
        event_type: &'static str,
        stamp: impl FnOnce(u64) -> Arc<dyn DynEvent>,
    ) -> Result<u64, BusError> {
        let core = self.node.core.load_full();
        let (_guard, routes) = SendGuard::enter(&core, &self.node)?;
        // Held across awaits: a plain `Arc`, not a borrowed guard.
        let routes = arc_swap::Guard::into_inner(routes);
        let dest = routes.destination(type_id, event_type);
        core.check_registered(&dest, event_type)?;
        let seq = core.hot.seq.fetch_add(1, Relaxed);
        if !dest.silent {
            tracing::trace!(event_type, seq, "send");
        }
        let event = stamp(seq);
        let me = current_subscriber();
        let mut first_error = None;
        for (sub, mut event) in per_subscriber(dest.subs, event) {
            loop {
                match sub.push(event) {
                    Push::Queued => break,
                    Push::Dropped { lag } => {
                        self.publish_lag(sub, lag);
                        break;
                    }
                    Push::Full(back) => {
                        if sub.options.overflow == Overflow::Block && me != Some(sub.id) {
                            if sub.wait_for_space().await {
                                event = back;
                                continue;
                            }
                            // Closing: the subscriber is being removed, or the bus is
                            // shutting down (then this delivery was never accepted).
                            if self.is_shut_down() {
                                first_error.get_or_insert(BusError::Shutdown);
                            }
                            break;
                        }
                        first_error.get_or_insert_with(|| full_error(sub, seq));
                        break;
                    }
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(seq),
        }
    }

    fn publish_lag(&self, sub: &Subscriber, lag: Option<(u64, u64)>) {
        let Some((dropped, total_dropped)) = lag else {
            return;
        };
        tracing::warn!(
            subscriber = sub.name(),
            dropped,
            total_dropped,
            "subscriber lagging: dropping oldest events"
        );
        let event = SubscriberLaggedEvent {
            meta: EventMeta::new(),
            subscriber: sub.name().to_owned(),
            dropped,
            total_dropped,
            capacity: sub.options.capacity as u64,
        };
        if let Err(error) = self.send(event) {
            tracing::debug!(%error, "could not publish bus.subscriber_lagged");
        }
    }

    // ---- waiting -----------------------------------------------------------------------

    /// Waits until the bus is idle: every delivery queued before the call — and
    /// everything those handlers sent in turn — has been handled. Returns
    /// [`BusError::Timeout`] if that takes longer than `timeout`.
    ///
    /// It is a quiescence barrier: events other tasks keep sending during the wait are
    /// waited for too. Called from inside a handler, it waits for every *other*
    /// subscriber to be idle, and does not wait for the calling subscriber's own queue
    /// (the current delivery and the ones queued behind it cannot run until the handler
    /// returns) nor for subscribers whose handlers are themselves inside `wait` (two
    /// handlers waiting for each other would otherwise deadlock).
    pub async fn wait(&self, timeout: Duration) -> Result<(), BusError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let me = current_subscriber();
        let _in_wait = me.and_then(|id| InWait::enter(&self.core(), id));
        let _waiter = WaiterGuard::new();
        loop {
            let notified = wait::idle_signal();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let pending = match self.busy(me) {
                None => return Ok(()),
                Some(pending) => pending,
            };
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(BusError::Timeout { timeout, pending });
            }
            // The periodic re-check covers work that finishes without a consumer signal
            // (a subscriber removed while busy).
            let recheck = (now + Duration::from_millis(10)).min(deadline);
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(recheck) => {}
            }
        }
    }

    /// `None` when idle; otherwise the number of queued deliveries.
    fn busy(&self, me: Option<u64>) -> Option<u64> {
        let core = self.core();
        for _ in 0..64 {
            let seq_before = core.hot.seq.load(SeqCst);
            let routes = core.routes.load();
            let mut busy = false;
            let mut pending = 0u64;
            for sub in routes.all.iter() {
                if me.is_some() && (Some(sub.id) == me || sub.in_wait.load(SeqCst) > 0) {
                    continue;
                }
                if !sub.is_idle() {
                    busy = true;
                    pending += sub.queued() as u64;
                }
            }
            if busy {
                return Some(pending);
            }
            // Nothing was accepted during the scan: the idle picture is consistent.
            if core.hot.seq.load(SeqCst) == seq_before {
                return None;
            }
        }
        Some(0)
    }

    // ---- merging -----------------------------------------------------------------------

    /// Merges `child` (a plugin's manager) into this one: from now on they are one bus.
    /// Events sent through either reach the handlers subscribed through either; the
    /// child's registrations and silent types join this bus's; work queued in the child
    /// is covered by `wait` on either. Transitive: managers merged into `child` before
    /// (or after) come along.
    ///
    /// Shutdown: shutting down this manager shuts down the child too; shutting down the
    /// child detaches it (and what was merged into it): its subscribers drain and stop,
    /// its handle refuses sends, and this manager keeps running.
    ///
    /// Errors: [`BusError::Shutdown`] if either is shut down; a registry conflict (two
    /// Rust types claiming one `type` string) leaves both unchanged.
    pub fn merge(&self, child: &EventManager) -> Result<(), BusError> {
        if self.node.closed.load(SeqCst) || child.node.closed.load(SeqCst) {
            return Err(BusError::Shutdown);
        }
        let parent_core = self.node.core.load_full();
        let child_core = child.node.core.load_full();
        if Arc::ptr_eq(&parent_core, &child_core) {
            return Ok(());
        }
        {
            // Lock in address order so concurrent merges cannot deadlock.
            let parent_first = Arc::as_ptr(&parent_core) < Arc::as_ptr(&child_core);
            let (mut parent_state, mut child_state) = if parent_first {
                let p = lock(&parent_core.state);
                let c = lock(&child_core.state);
                (p, c)
            } else {
                let c = lock(&child_core.state);
                let p = lock(&parent_core.state);
                (p, c)
            };
            let mut registry = parent_state.registry.clone();
            for info in child_state.registry.iter() {
                registry.insert(*info)?;
            }
            parent_state.registry = registry;
            let silent = std::mem::take(&mut child_state.silent);
            parent_state.silent.extend(silent);
            let subscribers = std::mem::take(&mut child_state.subscribers);
            parent_state.subscribers.extend(subscribers);
            for member in std::mem::take(&mut child_state.members) {
                if let Some(node) = member.upgrade() {
                    node.core.store(Arc::clone(&parent_core));
                    parent_state.members.push(member);
                }
            }
            parent_core.rebuild_routes(&parent_state);
            // The child's old routes stay as they were, so a send racing with the merge
            // still reaches the (same) subscribers.
        }
        let mut child_tree = lock(&child.node.tree);
        if child_tree.parent.is_none() {
            child_tree.parent = Some(Arc::downgrade(&self.node));
            drop(child_tree);
            lock(&self.node.tree).children.push(Arc::clone(&child.node));
        }
        tracing::debug!(
            parent = self.node.id,
            child = child.node.id,
            "merged event managers"
        );
        Ok(())
    }

    // ---- shutting down -----------------------------------------------------------------

    /// Stops accepting events through this manager and everything merged into it, drains
    /// their subscribers' queues for at most `deadline`, then cancels what is left and
    /// reports. Later `send`s through those managers return [`BusError::Shutdown`].
    ///
    /// If this manager was merged into a parent, only it and its merged children are
    /// shut down (detached); the parent keeps running. Handlers that send while draining
    /// get `Shutdown`. Called from inside a handler of this bus, that handler's own
    /// subscriber is told to finish but not waited for (it cannot finish before the
    /// handler returns).
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let end = tokio::time::Instant::now() + deadline;
        let subtree = self.node.subtree();
        for node in &subtree {
            node.closed.store(true, SeqCst);
        }
        let parent = lock(&self.node.tree).parent.take();
        let is_root = parent.is_none();
        if let Some(parent) = parent.and_then(|p| p.upgrade()) {
            lock(&parent.tree)
                .children
                .retain(|c| !Arc::ptr_eq(c, &self.node));
        }
        let ids: HashSet<u64> = subtree.iter().map(|n| n.id).collect();
        let core = self.node.core.load_full();
        let victims: Vec<Arc<Subscriber>> = {
            let mut state = lock(&core.state);
            let (victims, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut state.subscribers)
                .into_iter()
                .partition(|s| is_root || ids.contains(&s.origin));
            state.subscribers = keep;
            state
                .members
                .retain(|m| m.upgrade().is_some_and(|n| !ids.contains(&n.id)));
            core.rebuild_routes(&state);
            victims
        };
        for sub in &victims {
            sub.begin_close();
        }
        // Grace period: sends that passed the closed check (or loaded the old routes)
        // finish pushing before the consumers are told to stop.
        let mut spins = 0u32;
        while core.hot.in_send.load(SeqCst) != 0 && tokio::time::Instant::now() < end {
            spins += 1;
            if spins < 100 {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
        for sub in &victims {
            sub.finish();
        }
        let me = current_subscriber();
        let mut timed_out = false;
        for sub in &victims {
            if Some(sub.id) == me {
                continue;
            }
            let Some(mut task) = sub.take_task() else {
                continue;
            };
            match tokio::time::timeout_at(end, &mut task).await {
                Ok(_) => {}
                Err(_) => {
                    timed_out = true;
                    task.abort();
                    // Wait for the abort so nothing runs while we count.
                    let _ = task.await;
                    sub.cancel_remaining();
                }
            }
        }
        let subscribers: Vec<SubscriberStats> =
            victims.iter().map(|s| subscriber_stats(s)).collect();
        let report = ShutdownReport {
            delivered: subscribers.iter().map(|s| s.delivered).sum(),
            failed: subscribers.iter().map(|s| s.failed).sum(),
            dropped: subscribers.iter().map(|s| s.dropped).sum(),
            cancelled: subscribers.iter().map(|s| s.cancelled).sum(),
            timed_out,
            subscribers,
        };
        tracing::debug!(node = self.node.id, ?report, "event manager shut down");
        report
    }

    /// Whether this manager has been shut down (directly or through a parent).
    pub fn is_shut_down(&self) -> bool {
        self.node.closed.load(SeqCst)
    }

    // ---- stats ---------------------------------------------------------------------------

    /// A snapshot of the counters.
    pub fn stats(&self) -> BusStats {
        let core = self.core();
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

fn full_error(sub: &Subscriber, seq: u64) -> BusError {
    BusError::Full {
        subscriber: sub.name().to_owned(),
        capacity: sub.options.capacity,
        policy: sub.options.overflow,
        seq,
    }
}

/// Pairs each subscriber with its own reference to the event: clones for all but the
/// last, which takes the sender's.
fn per_subscriber(
    subs: &[Arc<Subscriber>],
    event: Arc<dyn DynEvent>,
) -> impl Iterator<Item = (&Subscriber, Arc<dyn DynEvent>)> {
    let last = subs.len().saturating_sub(1);
    let mut event = Some(event);
    subs.iter().enumerate().filter_map(move |(i, sub)| {
        let event = if i == last {
            event.take()?
        } else {
            Arc::clone(event.as_ref()?)
        };
        Some((&**sub, event))
    })
}

/// Parks this (non-runtime) thread until `sub` takes the event (true) or starts closing
/// (false: the event was not queued for it).
fn block_until_pushed(
    manager: &EventManager,
    sub: &Subscriber,
    mut event: Arc<dyn DynEvent>,
) -> bool {
    loop {
        if !futures::executor::block_on(sub.wait_for_space()) {
            return false;
        }
        match sub.push(event) {
            Push::Queued => return true,
            Push::Dropped { lag } => {
                manager.publish_lag(sub, lag);
                return true;
            }
            Push::Full(back) => event = back,
        }
    }
}

/// Marks the calling handler's subscriber as being inside `wait`.
struct InWait {
    sub: Arc<Subscriber>,
}

impl InWait {
    fn enter(core: &Core, id: u64) -> Option<Self> {
        let routes = core.routes.load();
        let sub = routes.all.iter().find(|s| s.id == id)?;
        sub.in_wait.fetch_add(1, SeqCst);
        wait::notify_idle();
        Some(Self {
            sub: Arc::clone(sub),
        })
    }
}

impl Drop for InWait {
    fn drop(&mut self) {
        self.sub.in_wait.fetch_sub(1, SeqCst);
        wait::notify_idle();
    }
}
