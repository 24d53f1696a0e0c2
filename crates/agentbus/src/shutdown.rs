//! Shutting a manager (and what was merged into it) down: stop accepting, drain within a
//! deadline, cancel what is left, report.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use crate::consumer::current_subscriber;
use crate::core::{Node, lock};
use crate::subscriber::Subscriber;
use crate::subscription::subscriber_stats;
use crate::{ShutdownReport, SubscriberStats};

/// See `EventManager::shutdown`.
pub(crate) async fn shutdown(node: &Arc<Node>, deadline: Duration) -> ShutdownReport {
    let end = tokio::time::Instant::now() + deadline;
    let subtree = node.subtree();
    for n in &subtree {
        n.closed.store(true, SeqCst);
    }
    let parent = lock(&node.tree).parent.take();
    let is_root = parent.is_none();
    if let Some(parent) = parent.and_then(|p| p.upgrade()) {
        lock(&parent.tree)
            .children
            .retain(|c| !Arc::ptr_eq(c, node));
    }
    let ids: HashSet<u64> = subtree.iter().map(|n| n.id).collect();
    let core = node.core.load_full();
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
    core.idle.notify_always();
    for sub in &victims {
        sub.begin_close();
    }
    // Grace period: sends that passed the closed check (or loaded the old routes)
    // finish pushing before the consumers are told to stop. A send never waits while
    // counted, so this is short.
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
        if tokio::time::timeout_at(end, &mut task).await.is_err() {
            timed_out = true;
            task.abort();
            // Wait for the abort so nothing runs while we count.
            let _ = task.await;
            sub.cancel_remaining();
        }
    }
    let subscribers: Vec<SubscriberStats> = victims.iter().map(|s| subscriber_stats(s)).collect();
    let report = ShutdownReport {
        delivered: subscribers.iter().map(|s| s.delivered).sum(),
        failed: subscribers.iter().map(|s| s.failed).sum(),
        dropped: subscribers.iter().map(|s| s.dropped).sum(),
        cancelled: subscribers.iter().map(|s| s.cancelled).sum(),
        timed_out,
        subscribers,
    };
    tracing::debug!(node = node.id, ?report, "event manager shut down");
    report
}
