//! The per-bus idle signal that [`EventManager::idle`](crate::EventManager::idle) sleeps
//! on.
//!
//! Consumers signal it when their subscriber's count of unfinished deliveries reaches
//! zero, but only when someone is waiting (`waiters > 0`), so the hot path pays one
//! atomic load. Waiters re-check their bus's condition after every signal.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// One bus's idle signal (shared by the subscribers of a merged group).
#[derive(Default)]
pub(crate) struct IdleSignal {
    notify: Notify,
    waiters: AtomicUsize,
}

impl IdleSignal {
    /// Wakes every waiter, if there is one.
    pub(crate) fn notify(&self) {
        if self.waiters.load(SeqCst) > 0 {
            self.notify.notify_waiters();
        }
    }

    /// Wakes every waiter unconditionally (the bus's shape changed: merge, unsubscribe).
    pub(crate) fn notify_always(&self) {
        self.notify.notify_waiters();
    }

    /// Registers as a waiter for as long as the guard lives.
    pub(crate) fn waiter(&self) -> WaiterGuard<'_> {
        self.waiters.fetch_add(1, SeqCst);
        WaiterGuard { signal: self }
    }
}

/// A registered waiter.
pub(crate) struct WaiterGuard<'a> {
    signal: &'a IdleSignal,
}

impl WaiterGuard<'_> {
    /// The notification future (enable it before checking the condition).
    pub(crate) fn notified(&self) -> Notified<'_> {
        self.signal.notify.notified()
    }
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.signal.waiters.fetch_sub(1, SeqCst);
    }
}
