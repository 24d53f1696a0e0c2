//! The bus contract, one behaviour per test: handler failures, waiting, merging and
//! shutting down.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use agentbus::{EventManager, Overflow, SendError, SubscribeError, SubscribeOptions, WaitError};
use agentbus_events::DynEvent;
use agentbus_events::base::ExceptionEvent;
use common::{Log, Ping, Pong, Stranger, bus, ping, pong, stalled};
use tokio::sync::Notify;

const WAIT: Duration = Duration::from_secs(10);

// ---- failures ----------------------------------------------------------------------------

#[tokio::test]
async fn failing_handler_publishes_exception_event_and_the_bus_keeps_going() {
    let bus = bus();
    let exceptions = Log::default();
    let x = exceptions.clone();
    bus.subscribe("exceptions", move |e: Arc<ExceptionEvent>| {
        let x = x.clone();
        async move { x.push((*e).clone()) }
    })
    .unwrap();
    let ok = Log::default();
    let o = ok.clone();
    bus.subscribe("picky", move |e: Arc<Ping>| {
        let o = o.clone();
        async move {
            if e.n == 1 {
                return Err(format!("cannot handle {}", e.n));
            }
            o.push(e.n);
            Ok(())
        }
    })
    .unwrap();
    let failing = ping(1);
    let failing_id = failing.meta.event_id;
    bus.try_send(ping(0)).unwrap();
    bus.try_send(failing).unwrap();
    bus.try_send(ping(2)).unwrap();
    bus.wait(WAIT).await.unwrap();
    assert_eq!(ok.get(), vec![0, 2]);
    let exceptions = exceptions.get();
    assert_eq!(exceptions.len(), 1);
    let e = &exceptions[0];
    assert_eq!(e.handler, "picky");
    assert_eq!(e.exc.message, "cannot handle 1");
    assert_eq!(e.failed_event_type.as_deref(), Some("test.ping"));
    assert_eq!(e.failed_event_id, Some(failing_id));
    let stats = bus.stats();
    let picky = stats
        .subscribers
        .iter()
        .find(|s| s.name == "picky")
        .unwrap();
    assert_eq!((picky.delivered, picky.failed), (3, 1));
}

#[tokio::test]
async fn panicking_handler_publishes_exception_event() {
    let bus = bus();
    let exceptions = Log::default();
    let x = exceptions.clone();
    bus.subscribe("exceptions", move |e: Arc<ExceptionEvent>| {
        let x = x.clone();
        async move { x.push((e.exc.kind.clone(), e.exc.message.clone(), e.handler.clone())) }
    })
    .unwrap();
    let after = Arc::new(AtomicUsize::new(0));
    let a = after.clone();
    bus.subscribe("boom", move |e: Arc<Ping>| {
        let a = a.clone();
        async move {
            tokio::task::yield_now().await;
            if e.n == 0 {
                panic!("boom {}", e.n);
            }
            a.fetch_add(1, Ordering::SeqCst);
        }
    })
    .unwrap();
    bus.try_send(ping(0)).unwrap();
    bus.try_send(ping(1)).unwrap();
    bus.wait(WAIT).await.unwrap();
    assert_eq!(
        exceptions.get(),
        vec![("panic".to_owned(), "boom 0".to_owned(), "boom".to_owned())]
    );
    assert_eq!(
        after.load(Ordering::SeqCst),
        1,
        "the subscriber survives its panic"
    );
}

#[tokio::test]
async fn exception_event_recursion_is_bounded() {
    let bus = bus();
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    // Fails on everything, including ExceptionEvents: must not loop.
    bus.subscribe("always-fails", move |_: Arc<dyn DynEvent>| {
        let s = s.clone();
        async move {
            s.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>("nope")
        }
    })
    .unwrap();
    bus.subscribe("exception-handler-fails", |_: Arc<ExceptionEvent>| async {
        Err::<(), _>("also nope")
    })
    .unwrap();
    bus.try_send(ping(1)).unwrap();
    bus.wait(WAIT).await.unwrap();
    // ping (fails -> 1 exception), the exception (fails twice: both suppressed).
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    assert_eq!(bus.stats().suppressed_exceptions, 2);
}

// ---- wait ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_covers_work_caused_by_handlers() {
    let bus = bus();
    let pongs = Log::default();
    let relay = bus.clone();
    bus.subscribe("relay", move |e: Arc<Ping>| {
        let relay = relay.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            relay.try_send(pong(e.n)).unwrap();
        }
    })
    .unwrap();
    let p = pongs.clone();
    bus.subscribe("pongs", move |e: Arc<Pong>| {
        let p = p.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            p.push(e.n)
        }
    })
    .unwrap();
    for n in 0..20 {
        bus.try_send(ping(n)).unwrap();
    }
    bus.wait(WAIT).await.unwrap();
    assert_eq!(pongs.get(), (0..20).collect::<Vec<_>>());
}

#[tokio::test]
async fn wait_timeout_is_an_error_value() {
    let bus = bus();
    let gate = Arc::new(Notify::new());
    let g = gate.clone();
    bus.subscribe("stuck", move |_: Arc<Ping>| {
        let g = g.clone();
        async move { g.notified().await }
    })
    .unwrap();
    bus.try_send(ping(1)).unwrap();
    bus.try_send(ping(2)).unwrap();
    let err = bus.wait(Duration::from_millis(30)).await.unwrap_err();
    assert!(matches!(err, WaitError::Timeout { .. }), "{err}");
    gate.notify_one();
    gate.notify_one();
    bus.wait(WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_inside_a_handler_neither_deadlocks_nor_times_out() {
    let bus = bus();
    let pongs = Log::default();
    let p = pongs.clone();
    bus.subscribe("pongs", move |e: Arc<Pong>| {
        let p = p.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            p.push(e.n)
        }
    })
    .unwrap();
    let results = Log::default();
    let (inner, r, p2) = (bus.clone(), results.clone(), pongs.clone());
    bus.subscribe("waiter", move |e: Arc<Ping>| {
        let (inner, r, p2) = (inner.clone(), r.clone(), p2.clone());
        async move {
            inner.try_send(pong(e.n)).unwrap();
            // Its own queue (ping 2 behind this one) is not waited for; the pong is.
            let result = inner.wait(Duration::from_secs(5)).await;
            r.push((result, p2.len()));
        }
    })
    .unwrap();
    bus.try_send(ping(1)).unwrap();
    bus.try_send(ping(2)).unwrap();
    bus.wait(WAIT).await.unwrap();
    assert_eq!(results.get(), vec![(Ok(()), 1), (Ok(()), 2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handlers_waiting_inside_do_not_wait_for_each_other() {
    let bus = bus();
    let results = Log::default();
    for name in ["a", "b"] {
        let (inner, r) = (bus.clone(), results.clone());
        bus.subscribe(name, move |_: Arc<Ping>| {
            let (inner, r) = (inner.clone(), r.clone());
            async move { r.push(inner.wait(Duration::from_secs(5)).await) }
        })
        .unwrap();
    }
    bus.try_send(ping(1)).unwrap();
    bus.wait(WAIT).await.unwrap();
    assert_eq!(results.get(), vec![Ok(()), Ok(())]);
}

// ---- merge ---------------------------------------------------------------------------------

#[tokio::test]
async fn merged_managers_deliver_both_ways() {
    let root = bus();
    let child = bus();
    let at_root = Log::default();
    let at_child = Log::default();
    let r = at_root.clone();
    root.subscribe("root", move |e: Arc<Ping>| {
        let r = r.clone();
        async move { r.push(e.n) }
    })
    .unwrap();
    let c = at_child.clone();
    child
        .subscribe("child", move |e: Arc<Ping>| {
            let c = c.clone();
            async move { c.push(e.n) }
        })
        .unwrap();
    root.merge(&child).unwrap();
    root.try_send(ping(1)).unwrap();
    child.try_send(ping(2)).unwrap();
    root.wait(WAIT).await.unwrap();
    assert_eq!(at_root.get(), vec![1, 2]);
    assert_eq!(at_child.get(), vec![1, 2]);
}

#[tokio::test]
async fn merge_is_transitive() {
    let root = bus();
    let child = bus();
    let grandchild = bus();
    let got = Log::default();
    let g = got.clone();
    root.subscribe("root", move |e: Arc<Ping>| {
        let g = g.clone();
        async move { g.push(e.n) }
    })
    .unwrap();
    child.merge(&grandchild).unwrap();
    root.merge(&child).unwrap();
    grandchild.try_send(ping(3)).unwrap();
    root.wait(WAIT).await.unwrap();
    assert_eq!(got.get(), vec![3]);
}

#[tokio::test]
async fn merge_keeps_silent_sets_and_registrations() {
    let root = EventManager::builder().without_catalogue().build().unwrap();
    let child = bus();
    child.silent::<Ping>();
    child.register::<Stranger>().unwrap();
    root.merge(&child).unwrap();
    assert!(root.is_silent("test.ping") && child.is_silent("test.ping"));
    assert!(root.is_registered("test.stranger"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_covers_in_flight_work_in_wait() {
    let root = bus();
    let child = bus();
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    child
        .subscribe("slow-child", move |_: Arc<Ping>| {
            let d = d.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                d.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
    child.try_send(ping(1)).unwrap();
    child.try_send(ping(2)).unwrap();
    root.merge(&child).unwrap();
    root.wait(WAIT).await.unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn shutting_down_the_root_shuts_merged_children() {
    let root = bus();
    let child = bus();
    let grandchild = bus();
    child.merge(&grandchild).unwrap();
    root.merge(&child).unwrap();
    let _report = root.shutdown(WAIT).await;
    for m in [&root, &child, &grandchild] {
        assert_eq!(m.try_send(ping(1)), Err(SendError::Shutdown));
        assert!(m.is_shut_down());
    }
}

#[tokio::test]
async fn shutting_down_a_child_detaches_it_and_the_root_keeps_running() {
    let root = bus();
    let child = bus();
    let at_root = Log::default();
    let at_child = Log::default();
    let r = at_root.clone();
    root.subscribe("root", move |e: Arc<Ping>| {
        let r = r.clone();
        async move { r.push(e.n) }
    })
    .unwrap();
    let c = at_child.clone();
    child
        .subscribe("child", move |e: Arc<Ping>| {
            let c = c.clone();
            async move { c.push(e.n) }
        })
        .unwrap();
    root.merge(&child).unwrap();
    root.try_send(ping(1)).unwrap();
    let report = child.shutdown(WAIT).await;
    assert_eq!(report.subscribers.len(), 1);
    assert_eq!(report.subscribers[0].name, "child");
    assert_eq!(child.try_send(ping(2)), Err(SendError::Shutdown));
    root.try_send(ping(3)).unwrap();
    root.wait(WAIT).await.unwrap();
    assert_eq!(at_root.get(), vec![1, 3]);
    assert_eq!(at_child.get(), vec![1]);
}

// ---- shutdown ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_handlers_and_later_sends_fail() {
    let bus = bus();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    bus.subscribe("h", move |_: Arc<Ping>| {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
        }
    })
    .unwrap();
    bus.try_send(ping(1)).unwrap();
    let report = bus.shutdown(WAIT).await;
    assert_eq!(
        (report.delivered, report.cancelled, report.timed_out),
        (1, 0, false)
    );
    assert_eq!(bus.try_send(ping(2)), Err(SendError::Shutdown));
    assert_eq!(
        bus.subscribe("late", |_: Arc<Ping>| async {}).unwrap_err(),
        SubscribeError::Shutdown
    );
    tokio::task::yield_now().await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_on_shutdown_loses_nothing_accepted() {
    let bus = bus();
    let got = Log::default();
    let g = got.clone();
    bus.subscribe("h", move |e: Arc<Ping>| {
        let g = g.clone();
        async move {
            if e.n.is_multiple_of(100) {
                tokio::task::yield_now().await;
            }
            g.push(e.n)
        }
    })
    .unwrap();
    // Senders on another thread race the shutdown: whatever was accepted is delivered.
    let sender = bus.clone();
    let accepted = std::thread::spawn(move || {
        let mut accepted = Vec::new();
        for n in 0..1_000_000u64 {
            match sender.blocking_send(ping(n)) {
                Ok(_) => accepted.push(n),
                Err(SendError::Shutdown) => break,
                Err(e) => panic!("{e}"),
            }
        }
        accepted
    });
    while got.len() < 1000 {
        tokio::task::yield_now().await;
    }
    let report = bus.shutdown(Duration::from_secs(30)).await;
    let accepted = accepted.join().unwrap();
    assert!(!report.timed_out);
    assert_eq!(report.cancelled, 0);
    assert_eq!(got.get(), accepted);
    assert_eq!(report.delivered, accepted.len() as u64);
}

#[tokio::test]
async fn shutdown_deadline_cancels_and_reports_what_was_lost() {
    let bus = bus();
    bus.subscribe("stuck", |_: Arc<Ping>| std::future::pending::<()>())
        .unwrap();
    for n in 0..10 {
        bus.try_send(ping(n)).unwrap();
    }
    tokio::task::yield_now().await;
    let report = bus.shutdown(Duration::from_millis(20)).await;
    assert!(report.timed_out);
    assert_eq!(report.delivered, 0);
    assert_eq!(report.cancelled, 10, "9 queued + 1 running");
}

/// A consumer cancelled at the deadline in the middle of a batch (it has handled some
/// deliveries it has not yet reported to the queue's count) still accounts for every
/// accepted delivery exactly once: delivered or cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_deadline_mid_batch_accounts_for_every_delivery() {
    for concurrency in [1, 3] {
        let bus = bus();
        let handled = Arc::new(AtomicUsize::new(0));
        let h = handled.clone();
        bus.subscribe_with(
            "stalls-at-45",
            SubscribeOptions::new().concurrency(concurrency),
            move |e: Arc<Ping>| {
                let h = h.clone();
                async move {
                    if e.n >= 45 {
                        std::future::pending::<()>().await;
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                }
            },
        )
        .unwrap();
        for n in 0..100 {
            bus.try_send(ping(n)).unwrap();
        }
        while handled.load(Ordering::SeqCst) < 45 {
            tokio::task::yield_now().await;
        }
        let report = bus.shutdown(Duration::from_millis(50)).await;
        assert!(report.timed_out);
        assert_eq!(report.delivered, 45, "concurrency {concurrency}");
        assert_eq!(report.cancelled, 55, "concurrency {concurrency}");
    }
}

/// The queue bound counts every accepted delivery not yet finished, the running one
/// included: with a stalled handler and capacity 8, the ninth send is refused.
#[tokio::test]
async fn capacity_counts_the_running_delivery() {
    let bus = bus();
    let (gate, handle) = stalled(
        &bus,
        SubscribeOptions::new()
            .capacity(8)
            .overflow(Overflow::Error),
    );
    for n in 0..8 {
        bus.try_send(ping(n)).unwrap();
    }
    assert!(matches!(bus.try_send(ping(8)), Err(SendError::Full { .. })));
    // Let the handler take the first delivery: it still holds its place while running.
    tokio::task::yield_now().await;
    assert!(matches!(bus.try_send(ping(9)), Err(SendError::Full { .. })));
    // Once deliveries finish, places come back.
    gate.notify_one();
    let mut accepted = false;
    for _ in 0..1000 {
        if bus.try_send(ping(10)).is_ok() {
            accepted = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(accepted, "a place came back after the handler finished");
    drop(handle);
}

/// Whatever the consumer's spin before parking (none, the default, longer than the gaps
/// between sends), every event from a thread that sends in bursts and pauses arrives,
/// in order: parking and waking never lose one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spin_setting_delivers_everything_in_order() {
    for spin in [
        Duration::ZERO,
        agentbus::DEFAULT_SPIN,
        Duration::from_millis(2),
    ] {
        let bus = bus();
        let got = Log::default();
        let g = got.clone();
        bus.subscribe_with(
            "h",
            SubscribeOptions::new().spin(spin),
            move |e: Arc<Ping>| {
                let g = g.clone();
                async move { g.push(e.n) }
            },
        )
        .unwrap();
        let sender = bus.clone();
        std::thread::spawn(move || {
            for n in 0..20_000u64 {
                sender.blocking_send(ping(n)).unwrap();
                if n % 997 == 0 {
                    std::thread::sleep(Duration::from_micros(300));
                }
            }
        })
        .join()
        .unwrap();
        bus.wait(Duration::from_secs(10)).await.unwrap();
        assert_eq!(got.get(), (0..20_000).collect::<Vec<_>>(), "spin {spin:?}");
        let _report = bus.shutdown(Duration::from_secs(1)).await;
    }
}
