//! Node ids: which bridge a message came from, so two bridged buses never echo.
//!
//! Every exported message carries the exporting node's id in the [`NODE_HEADER`] header.
//! An importer skips messages whose node is its own; the events it imports are remembered
//! (by event id) in the node's [`Node`] so its exporter does not publish them again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::error::NatsError;

/// The header naming the node that exported a message.
pub const NODE_HEADER: &str = "Agentbus-Node";

/// How many imported event ids a node remembers at most (the exporter forgets each one as
/// soon as it sees it; the bound only matters when the exporter filters the event out).
const REMEMBERED: usize = 65_536;

/// One bridge's identity, shared by its exporter and importers.
///
/// ```
/// use agentbus_nats::Node;
/// let a = Node::new();
/// let b = Node::named("worker-1").unwrap();
/// assert_ne!(a.id(), b.id());
/// assert_eq!(b.id(), "worker-1");
/// assert!(Node::named("").is_err());
/// assert!(Node::named("two\nlines").is_err());
/// ```
#[derive(Clone, Debug)]
pub struct Node {
    id: Arc<str>,
    imported: Arc<Mutex<Imported>>,
}

/// Imported event ids, oldest first in `order`. Each entry carries the generation it was
/// inserted with, so an id imported again after it was taken is not evicted by its stale
/// entry in `order`.
#[derive(Debug, Default)]
struct Imported {
    ids: HashMap<Uuid, u64>,
    order: VecDeque<(Uuid, u64)>,
    generation: u64,
}

/// The longest node id (it travels in a header of every exported message).
pub const MAX_NODE_ID: usize = 128;

impl Default for Node {
    fn default() -> Self {
        Self::new()
    }
}

impl Node {
    /// A node with a fresh random id.
    pub fn new() -> Self {
        Self::with_id(Uuid::new_v4().simple().to_string())
    }

    /// A node with a chosen id (unique among the bridges on one stream): 1 to
    /// [`MAX_NODE_ID`] printable ASCII characters, no spaces, since it travels in a message
    /// header. Any other id is [`NatsError::Config`].
    pub fn named(id: impl Into<String>) -> Result<Self, NatsError> {
        let id = id.into();
        if id.is_empty() || id.len() > MAX_NODE_ID || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(NatsError::Config(format!(
                "a node id is 1 to {MAX_NODE_ID} printable ASCII characters without spaces; got {id:?}"
            )));
        }
        Ok(Self::with_id(id))
    }

    /// The stand-in for "no node" (durable consumers and stream reads skip nothing): its
    /// empty id is one no real node can have.
    pub(crate) fn none() -> Self {
        Self::with_id(String::new())
    }

    fn with_id(id: String) -> Self {
        Self {
            id: Arc::from(id),
            imported: Arc::default(),
        }
    }

    /// The node's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Remembers that the event `id` came in from NATS.
    pub(crate) fn mark_imported(&self, id: Uuid) {
        let mut imported = self.imported.lock().unwrap_or_else(|p| p.into_inner());
        imported.generation += 1;
        let generation = imported.generation;
        // Remembered already or not, the newest generation is the one evicted with it.
        imported.ids.insert(id, generation);
        imported.order.push_back((id, generation));
        while imported.order.len() > REMEMBERED {
            if let Some((old, old_generation)) = imported.order.pop_front()
                && imported.ids.get(&old) == Some(&old_generation)
            {
                imported.ids.remove(&old);
            }
        }
    }

    /// Whether the event `id` came in from NATS (and forgets it: each imported event
    /// reaches the exporter once).
    pub(crate) fn take_imported(&self, id: &Uuid) -> bool {
        let mut imported = self.imported.lock().unwrap_or_else(|p| p.into_inner());
        if imported.ids.is_empty() {
            return false;
        }
        // The id's entry stays in `order` until it ages out; `ids` is what is checked.
        imported.ids.remove(id).is_some()
    }
}
