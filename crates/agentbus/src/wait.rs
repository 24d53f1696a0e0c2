//! The idle signal `EventManager::wait` sleeps on.
//!
//! One process-wide `Notify`: consumers signal it when they finish a batch, but only when
//! someone is waiting (`WAITERS > 0`), so the hot path pays one atomic load. Waiters
//! re-check their own bus's condition, so a wake-up meant for another bus is harmless.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use tokio::sync::Notify;

static IDLE: LazyLock<Notify> = LazyLock::new(Notify::new);
static WAITERS: AtomicUsize = AtomicUsize::new(0);

/// Called by consumers after they stop running (and by `wait` callers entering or
/// leaving a handler-side wait): wakes every waiter if there is one.
pub(crate) fn notify_idle() {
    if WAITERS.load(SeqCst) > 0 {
        IDLE.notify_waiters();
    }
}

/// Registers as a waiter for as long as the guard lives.
pub(crate) struct WaiterGuard;

impl WaiterGuard {
    pub(crate) fn new() -> Self {
        WAITERS.fetch_add(1, SeqCst);
        WaiterGuard
    }
}

impl Drop for WaiterGuard {
    fn drop(&mut self) {
        WAITERS.fetch_sub(1, SeqCst);
    }
}

/// The notification future to enable before checking the condition.
pub(crate) fn idle_signal() -> tokio::sync::futures::Notified<'static> {
    IDLE.notified()
}
