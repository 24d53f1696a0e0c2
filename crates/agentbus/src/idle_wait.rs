//! Waiting for a bus to be idle: the quiescence check behind `EventManager::idle` and
//! `wait`, and the mark a handler leaves while it waits (so two handlers waiting for
//! each other do not deadlock).

use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;

use crate::consumer::current_subscriber;
use crate::core::{Core, Node};
use crate::subscriber::Subscriber;

/// Resolves once every delivery accepted so far by `node`'s bus — and everything those
/// handlers sent in turn — has been handled (see `EventManager::idle`).
pub(crate) async fn idle(node: &Node) {
    let me = current_subscriber();
    let _in_wait = me.and_then(|id| InWait::enter(&node.core.load(), id));
    loop {
        // The core changes on merge; its old signal is notified then, so a waiter
        // registered on it comes round and registers on the new one.
        let core = node.core.load_full();
        let signal = Arc::clone(&core.idle);
        let waiter = signal.waiter();
        let notified = waiter.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if busy(&core, me).is_none() {
            return;
        }
        notified.await;
    }
}

/// What is still queued on `node`'s bus, as `wait` reports it on timeout (0 when idle).
pub(crate) fn pending(node: &Node) -> u64 {
    busy(&node.core.load(), current_subscriber()).unwrap_or(0)
}

/// `None` when idle; otherwise the number of queued deliveries. Called from a handler
/// (`me`), it skips that handler's own subscriber and subscribers whose handlers are
/// themselves waiting.
fn busy(core: &Core, me: Option<u64>) -> Option<u64> {
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

/// Marks the calling handler's subscriber as being inside `idle`.
struct InWait {
    sub: Arc<Subscriber>,
}

impl InWait {
    fn enter(core: &Core, id: u64) -> Option<Self> {
        let routes = core.routes.load();
        let sub = routes.all.iter().find(|s| s.id == id)?;
        sub.in_wait.fetch_add(1, SeqCst);
        core.idle.notify();
        Some(Self {
            sub: Arc::clone(sub),
        })
    }
}

impl Drop for InWait {
    fn drop(&mut self) {
        self.sub.in_wait.fetch_sub(1, SeqCst);
        self.sub.signal_idle();
    }
}
