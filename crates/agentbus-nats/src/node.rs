//! Node ids: which bridge a message came from, so two bridged buses never echo.
//!
//! Every exported message carries the exporting node's id in the [`NODE_HEADER`] header.
//! An importer skips messages whose node is its own; the events it imports are remembered
//! (by event id) in the node's [`Node`] so its exporter does not publish them again.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

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
/// let b = Node::named("worker-1");
/// assert_ne!(a.id(), b.id());
/// assert_eq!(b.id(), "worker-1");
/// ```
#[derive(Clone, Debug)]
pub struct Node {
    id: Arc<str>,
    imported: Arc<Mutex<Imported>>,
}

#[derive(Debug, Default)]
struct Imported {
    ids: HashSet<Uuid>,
    order: VecDeque<Uuid>,
}

impl Default for Node {
    fn default() -> Self {
        Self::new()
    }
}

impl Node {
    /// A node with a fresh random id.
    pub fn new() -> Self {
        Self::named(Uuid::new_v4().simple().to_string())
    }

    /// A node with a chosen id (unique among the bridges on one stream).
    pub fn named(id: impl Into<String>) -> Self {
        Self {
            id: Arc::from(id.into()),
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
        if imported.ids.insert(id) {
            imported.order.push_back(id);
            while imported.order.len() > REMEMBERED {
                if let Some(old) = imported.order.pop_front() {
                    imported.ids.remove(&old);
                }
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
        // The id stays in `order` until it ages out; `ids` is what is checked.
        imported.ids.remove(id)
    }
}
