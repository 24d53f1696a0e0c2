//! The bus contract, one behaviour per test: bounded queues, overflow policies and
//! stats.

mod common;

use std::sync::Arc;
use std::time::Duration;

use agentbus::{Overflow, SendError, SubscribeOptions};
use agentbus_events::ErrorInfo;
use agentbus_events::base::ExceptionEvent;
use agentbus_events::bus::SubscriberLaggedEvent;
use common::{Log, Ping, bus, ping, stalled};

const WAIT: Duration = Duration::from_secs(10);

// ---- overflow ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn million_event_burst_with_stalled_drop_oldest_subscriber_stays_bounded() {
    let bus = bus();
    let lags = Log::default();
    let l = lags.clone();
    bus.subscribe("lag-watch", move |e: Arc<SubscriberLaggedEvent>| {
        let l = l.clone();
        async move { l.push((e.subscriber.clone(), e.dropped, e.capacity)) }
    })
    .unwrap();
    let (_gate, handle) = stalled(
        &bus,
        SubscribeOptions::new()
            .capacity(1024)
            .overflow(Overflow::DropOldest),
    );
    let mut max_depth = 0;
    for n in 0..1_000_000u64 {
        bus.try_send(ping(n)).unwrap();
        if n % 4096 == 0 {
            max_depth = max_depth.max(handle.stats().queue_depth);
        }
    }
    let stats = handle.stats();
    assert!(
        max_depth <= 1024 && stats.queue_depth <= 1024,
        "depth {max_depth}/{}",
        stats.queue_depth
    );
    // Every event is queued, running (at most one) or counted as dropped.
    let accounted = stats.dropped + stats.queue_depth as u64;
    assert!((999_999..=1_000_000).contains(&accounted), "{accounted}");
    while lags.len() == 0 {
        tokio::task::yield_now().await;
    }
    let lag = &lags.get()[0];
    assert_eq!((lag.0.as_str(), lag.1, lag.2), ("stalled", 1, 1024));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn million_event_burst_with_stalled_error_subscriber_stays_bounded() {
    let bus = bus();
    let (_gate, handle) = stalled(
        &bus,
        SubscribeOptions::new()
            .capacity(1024)
            .overflow(Overflow::Error),
    );
    let mut refused = 0u64;
    for n in 0..1_000_000u64 {
        // The stalled subscriber is the only one: its refusal means nobody got the
        // event, an error.
        match bus.try_send(ping(n)) {
            Ok(_) => {}
            Err(SendError::Full { refused: who }) => {
                assert_eq!(who.len(), 1);
                assert_eq!(
                    (who[0].subscriber.as_str(), who[0].capacity, who[0].policy),
                    ("stalled", 1024, Overflow::Error)
                );
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let stats = handle.stats();
    assert!(stats.queue_depth <= 1024);
    assert!((998_975..=998_976).contains(&refused), "{refused}");
    assert_eq!(stats.dropped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_policy_applies_backpressure_to_plain_threads() {
    let bus = bus();
    let got = Log::default();
    let g = got.clone();
    let handle = bus
        .subscribe_with(
            "slowish",
            SubscribeOptions::new().capacity(4),
            move |e: Arc<Ping>| {
                let g = g.clone();
                async move {
                    if e.n.is_multiple_of(50) {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    g.push(e.n)
                }
            },
        )
        .unwrap();
    let sender = bus.clone();
    let max_depth = std::thread::spawn(move || {
        let mut max_depth = 0;
        for n in 0..2000 {
            sender.blocking_send(ping(n)).unwrap();
            max_depth = max_depth.max(handle.stats().queue_depth);
        }
        max_depth
    })
    .join()
    .unwrap();
    bus.wait(WAIT).await.unwrap();
    assert!(max_depth <= 4, "{max_depth}");
    assert_eq!(got.get(), (0..2000).collect::<Vec<_>>());
}

#[tokio::test]
async fn block_policy_try_send_reports_the_full_subscriber_instead_of_blocking() {
    let bus = bus();
    let (gate, _handle) = stalled(&bus, SubscribeOptions::new().capacity(2));
    let other = Log::default();
    let o = other.clone();
    bus.subscribe("other", move |e: Arc<Ping>| {
        let o = o.clone();
        async move { o.push(e.n) }
    })
    .unwrap();
    let mut full = 0;
    for n in 0..10 {
        // The other subscriber took it: a partial refusal is an `Ok` naming the full one.
        let sent = bus.try_send(ping(n)).unwrap();
        for refusal in sent.refused() {
            assert_eq!(
                (refusal.subscriber.as_str(), refusal.policy),
                ("stalled", Overflow::Block)
            );
            full += 1;
        }
    }
    assert!(full >= 7, "{full}");
    gate.notify_waiters();
    tokio::task::yield_now().await;
    // The other subscriber got every event.
    while other.len() < 10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(other.get(), (0..10).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_await_waits_for_room() {
    let bus = bus();
    let got = Log::default();
    let g = got.clone();
    bus.subscribe_with(
        "slowish",
        SubscribeOptions::new().capacity(2),
        move |e: Arc<Ping>| {
            let g = g.clone();
            async move {
                tokio::task::yield_now().await;
                g.push(e.n)
            }
        },
    )
    .unwrap();
    for n in 0..500 {
        bus.send(ping(n)).await.unwrap();
    }
    bus.wait(WAIT).await.unwrap();
    assert_eq!(got.get(), (0..500).collect::<Vec<_>>());
}

/// A `send(..).await` dropped while it waits for room in a full `Block` subscriber
/// delivers to nobody and consumes no `seq`, whether the full subscriber comes before or
/// after the one with room; once there is room the next send reaches both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_send_await_delivers_to_nobody() {
    for full_first in [true, false] {
        let bus = bus();
        let other = Log::default();
        let subscribe_other = || {
            let o = other.clone();
            bus.subscribe("other", move |e: Arc<Ping>| {
                let o = o.clone();
                async move { o.push(e.n) }
            })
            .unwrap()
        };
        let (gate, _other, _stalled) = if full_first {
            let (gate, stalled) = stalled(&bus, SubscribeOptions::new().capacity(1));
            (gate, subscribe_other(), stalled)
        } else {
            let other = subscribe_other();
            let (gate, stalled) = stalled(&bus, SubscribeOptions::new().capacity(1));
            (gate, other, stalled)
        };
        // The stalled handler holds the one place.
        assert_eq!(bus.send(ping(0)).await.unwrap().seq().get(), 1);
        let waited = tokio::time::timeout(Duration::from_millis(100), bus.send(ping(1))).await;
        assert!(
            waited.is_err(),
            "the send should wait for room (full_first={full_first})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(other.get(), vec![0], "full_first={full_first}");
        // Room again: the next send is the second one the bus stamps.
        gate.notify_one();
        let sent = tokio::time::timeout(WAIT, bus.send(ping(2)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sent.seq().get(), 2, "full_first={full_first}");
        while other.len() < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(other.get(), vec![0, 2], "full_first={full_first}");
        gate.notify_waiters();
        let _report = bus.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn stats_count_deliveries_failures_and_time() {
    let bus = bus();
    let h = bus
        .subscribe("h", |e: Arc<Ping>| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            if e.n == 0 { Err("zero") } else { Ok(()) }
        })
        .unwrap();
    for n in 0..3 {
        bus.try_send(ping(n)).unwrap();
    }
    bus.wait(WAIT).await.unwrap();
    let s = h.stats();
    assert_eq!(
        (s.delivered, s.failed, s.dropped, s.queue_depth),
        (3, 1, 0, 0)
    );
    assert_eq!(s.event_types, vec!["test.ping"]);
    assert!(s.handler_time >= Duration::from_millis(3));
    assert!(bus.stats().next_seq >= 4);
}

#[tokio::test]
async fn handler_error_kinds_name_the_error_type() {
    let bus = bus();
    let got = Log::default();
    let g = got.clone();
    bus.subscribe("x", move |e: Arc<ExceptionEvent>| {
        let g = g.clone();
        async move { g.push(e.exc.clone()) }
    })
    .unwrap();
    bus.subscribe("h", |_: Arc<Ping>| async { Err::<(), _>(std::fmt::Error) })
        .unwrap();
    bus.try_send(ping(1)).unwrap();
    bus.wait(WAIT).await.unwrap();
    assert_eq!(
        got.get(),
        vec![ErrorInfo::new(
            "core::fmt::Error",
            "an error occurred when formatting an argument"
        )]
    );
}
