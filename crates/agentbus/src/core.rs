//! The shared core of a bus and the merge tree.
//!
//! A manager is a *node*; nodes share a *core* (seq counter, registry, subscribers,
//! routes, idle signal). `merge` moves a child's core into its parent's and points every
//! node of the child at the parent's core, so a merged group is one bus reachable through
//! any of its managers, and merging is transitive. The nodes also form a tree (parent,
//! children) that decides what `shutdown` covers.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use agentbus_events::Registry;
use arc_swap::ArcSwap;
use tokio::runtime::Handle;

use crate::idle::IdleSignal;
use crate::routes::Routes;
use crate::subscriber::Subscriber;
use crate::{MergeError, Registration, SubscribeOptions};

/// Ids of nodes and subscribers, unique in the process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Relaxed)
}

/// Locks a mutex, recovering the data if a thread panicked while holding it (every
/// critical section here leaves the data consistent before anything can panic).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The counters every send touches, on one cache line.
#[repr(align(64))]
pub(crate) struct Hot {
    /// The next `seq`.
    pub seq: AtomicU64,
    /// Sends in progress (between the closed check and the last push): `shutdown` waits
    /// for them before draining, so nothing accepted lands in a queue nobody drains.
    pub in_send: AtomicUsize,
}

/// The shared bus of a merged group.
pub(crate) struct Core {
    pub hot: Hot,
    pub handle: Handle,
    pub routes: ArcSwap<Routes>,
    pub state: Mutex<CoreState>,
    pub registration: Registration,
    pub defaults: SubscribeOptions,
    pub unregistered: AtomicU64,
    pub suppressed_exceptions: AtomicU64,
    pub idle: Arc<IdleSignal>,
}

pub(crate) struct CoreState {
    pub registry: Registry,
    pub subscribers: Vec<Arc<Subscriber>>,
    pub silent: HashSet<String>,
    pub members: Vec<Weak<Node>>,
}

impl Core {
    pub fn new(
        handle: Handle,
        registry: Registry,
        registration: Registration,
        defaults: SubscribeOptions,
    ) -> Self {
        let state = CoreState {
            registry,
            subscribers: Vec::new(),
            silent: HashSet::new(),
            members: Vec::new(),
        };
        let routes = Routes::build(&state.registry, &state.subscribers, &state.silent);
        Self {
            hot: Hot {
                seq: AtomicU64::new(1),
                in_send: AtomicUsize::new(0),
            },
            handle,
            routes: ArcSwap::from_pointee(routes),
            state: Mutex::new(state),
            registration,
            defaults,
            unregistered: AtomicU64::new(0),
            suppressed_exceptions: AtomicU64::new(0),
            idle: Arc::new(IdleSignal::default()),
        }
    }

    pub fn rebuild_routes(&self, state: &CoreState) {
        self.routes.store(Arc::new(Routes::build(
            &state.registry,
            &state.subscribers,
            &state.silent,
        )));
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
    pub id: u64,
    pub core: ArcSwap<Core>,
    pub closed: AtomicBool,
    pub tree: Mutex<Tree>,
}

#[derive(Default)]
pub(crate) struct Tree {
    pub parent: Option<Weak<Node>>,
    pub children: Vec<Arc<Node>>,
}

impl Node {
    /// A node with its own new core.
    pub fn new(core: Core) -> Arc<Self> {
        let core = Arc::new(core);
        let node = Arc::new(Node {
            id: next_id(),
            core: ArcSwap::new(Arc::clone(&core)),
            closed: AtomicBool::new(false),
            tree: Mutex::new(Tree::default()),
        });
        lock(&core.state).members.push(Arc::downgrade(&node));
        node
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(SeqCst)
    }

    /// This node and every node merged into it, transitively.
    pub fn subtree(self: &Arc<Self>) -> Vec<Arc<Node>> {
        let mut out = vec![Arc::clone(self)];
        let mut i = 0;
        while i < out.len() {
            let children = lock(&out[i].tree).children.clone();
            out.extend(children);
            i += 1;
        }
        out
    }

    /// Merges `child`'s group into this node's (see `EventManager::merge`).
    pub fn merge(self: &Arc<Self>, child: &Arc<Node>) -> Result<(), MergeError> {
        if self.is_closed() || child.is_closed() {
            return Err(MergeError::Shutdown);
        }
        let parent_core = self.core.load_full();
        let child_core = child.core.load_full();
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
            for sub in &subscribers {
                sub.set_idle_signal(Arc::clone(&parent_core.idle));
            }
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
        // Waiters on the child's signal re-check against the merged bus.
        child_core.idle.notify_always();
        let mut child_tree = lock(&child.tree);
        if child_tree.parent.is_none() {
            child_tree.parent = Some(Arc::downgrade(self));
            drop(child_tree);
            lock(&self.tree).children.push(Arc::clone(child));
        }
        tracing::debug!(parent = self.id, child = child.id, "merged event managers");
        Ok(())
    }
}
