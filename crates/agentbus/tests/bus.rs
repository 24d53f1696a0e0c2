//! The bus contract, one behaviour per test.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use agentbus::{
    BuildError, EventManager, Overflow, RegisterError, Registration, SendError, SendJsonError,
    SubscribeError, SubscribeOptions, WaitError, event_union,
};
use agentbus_events::base::ExceptionEvent;
use agentbus_events::bus::SubscriberLaggedEvent;
use agentbus_events::{DynEvent, ErrorInfo, Event, RegistryError, define_event, wire};
use common::{Log, Ping, Pong, Stranger, bus, ping, pong};
use tokio::sync::{Barrier, Notify};

const WAIT: Duration = Duration::from_secs(10);

define_event! {
    /// An event with an invalid type string.
    #[event(type = "Not A Type!", domain = Plugin, base = event)]
    pub struct BadlyNamed {
        /// Anything.
        pub n: u64,
    }
}

define_event! {
    /// A second Rust type claiming `test.ping`.
    #[event(type = "test.ping", domain = Plugin, base = event)]
    pub struct PingImpostor {
        /// Anything.
        pub n: u64,
    }
}

event_union! {
    /// Ping or Pong.
    pub enum PingOrPong {
        /// A ping.
        Ping(Ping),
        /// A pong.
        Pong(Pong),
    }
}

// ---- registration ----------------------------------------------------------------------

#[tokio::test]
async fn invalid_registration_is_rejected() {
    let bus = bus();
    let err = bus.register::<BadlyNamed>().unwrap_err();
    assert!(
        matches!(
            err,
            RegisterError::Registry(RegistryError::InvalidType { .. })
        ),
        "{err}"
    );
    let err = bus.register::<PingImpostor>().unwrap_err();
    assert!(
        matches!(err, RegisterError::Registry(RegistryError::Conflict { .. })),
        "{err}"
    );
    assert!(!bus.is_registered("Not A Type!"));
}

#[tokio::test]
async fn multiple_registration_is_idempotent_and_many_at_once_works() {
    let bus = EventManager::builder().without_catalogue().build().unwrap();
    bus.register::<Ping>().unwrap();
    bus.register::<Ping>().unwrap();
    bus.register_many([
        agentbus_events::EventInfo::of::<Pong>(),
        agentbus_events::EventInfo::of::<Ping>(),
    ])
    .unwrap();
    assert!(bus.is_registered("test.ping") && bus.is_registered("test.pong"));
    // The bus's own events are always registered.
    assert!(
        bus.is_registered(ExceptionEvent::TYPE) && bus.is_registered(SubscriberLaggedEvent::TYPE)
    );
    // All or nothing.
    assert!(
        bus.register_many([
            agentbus_events::EventInfo::of::<Stranger>(),
            agentbus_events::EventInfo::of::<PingImpostor>()
        ])
        .is_err()
    );
    assert!(!bus.is_registered("test.stranger"));
}

#[tokio::test]
async fn strict_mode_subscribe_of_unregistered_type_is_an_error() {
    let bus = EventManager::builder().strict().build().unwrap();
    let err = bus.subscribe("h", |_: Arc<Stranger>| async {}).unwrap_err();
    assert_eq!(
        err,
        SubscribeError::Unregistered {
            event_type: "test.stranger".into()
        }
    );
    bus.register::<Stranger>().unwrap();
    bus.subscribe("h", |_: Arc<Stranger>| async {}).unwrap();
}

#[tokio::test]
async fn strict_mode_send_of_unregistered_type_is_an_error_and_takes_no_seq() {
    let bus = EventManager::builder().strict().build().unwrap();
    bus.register::<Ping>().unwrap();
    let first = bus.try_send(ping(1)).unwrap().seq();
    let err = bus.try_send(Stranger::default()).unwrap_err();
    assert_eq!(
        err,
        SendError::Unregistered {
            event_type: "test.stranger".into()
        }
    );
    assert_eq!(bus.try_send(ping(2)).unwrap().seq(), first.next().unwrap());
}

#[tokio::test]
async fn lenient_mode_delivers_unregistered_types_and_counts_them() {
    let bus = EventManager::builder()
        .registration(Registration::Lenient)
        .build()
        .unwrap();
    let got = Log::default();
    let g = got.clone();
    bus.subscribe("h", move |e: Arc<Stranger>| {
        let g = g.clone();
        async move { g.push(e.n) }
    })
    .unwrap();
    bus.try_send(Stranger {
        n: 7,
        ..Default::default()
    })
    .unwrap();
    bus.wait(WAIT).await.unwrap();
    assert_eq!(got.get(), vec![7]);
    assert_eq!(bus.stats().unregistered, 2, "one subscribe and one send");
}

// ---- subscribing and delivery ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_handler_gets_events_in_order_with_increasing_seq() {
    let bus = bus();
    let got = Log::default();
    let g = got.clone();
    bus.subscribe("h", move |e: Arc<Ping>| {
        let g = g.clone();
        async move { g.push((e.n, e.meta.seq.unwrap())) }
    })
    .unwrap();
    for n in 0..1000 {
        bus.try_send(ping(n)).unwrap();
    }
    bus.wait(WAIT).await.unwrap();
    let got = got.get();
    assert_eq!(
        got.iter().map(|p| p.0).collect::<Vec<_>>(),
        (0..1000).collect::<Vec<_>>()
    );
    assert!(
        got.windows(2).all(|w| w[1].1.get() == w[0].1.get() + 1),
        "seq increases by one per accepted event"
    );
}

#[tokio::test]
async fn union_handler_receives_both_types() {
    let bus = bus();
    let got = Log::default();
    let g = got.clone();
    bus.subscribe("union", move |e: PingOrPong| {
        let g = g.clone();
        async move {
            g.push(match e {
                PingOrPong::Ping(p) => format!("ping {}", p.n),
                PingOrPong::Pong(p) => format!("pong {}", p.n),
            })
        }
    })
    .unwrap();
    bus.try_send(ping(1)).unwrap();
    bus.try_send(pong(2)).unwrap();
    bus.try_send(ExceptionEvent::default()).unwrap();
    bus.wait(WAIT).await.unwrap();
    assert_eq!(got.get(), vec!["ping 1".to_owned(), "pong 2".to_owned()]);
}

#[tokio::test]
async fn wildcard_receives_every_type_erased_and_serialisable() {
    let bus = bus();
    let got = Log::default();
    let g = got.clone();
    bus.subscribe("sink", move |e: Arc<dyn DynEvent>| {
        let g = g.clone();
        async move {
            let mut json = Vec::new();
            e.write_wire(&mut json).unwrap();
            g.push((e.event_type(), e.meta().seq.unwrap(), json));
        }
    })
    .unwrap();
    let s1 = bus.try_send(ping(1)).unwrap().seq();
    let s2 = bus.try_send(pong(2)).unwrap().seq();
    let s3 = bus
        .send(Stranger {
            n: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .seq();
    bus.wait(WAIT).await.unwrap();
    let got = got.get();
    assert_eq!(
        got.iter().map(|g| (g.0, g.1)).collect::<Vec<_>>(),
        vec![("test.ping", s1), ("test.pong", s2), ("test.stranger", s3)]
    );
    let decoded: Ping = wire::decode_as(&got[0].2).unwrap();
    assert_eq!((decoded.n, decoded.meta.seq), (1, Some(s1)));
}

#[tokio::test]
async fn overlapping_handlers_accumulate() {
    let bus = bus();
    let count = Arc::new(AtomicUsize::new(0));
    for name in ["a", "b"] {
        let c = count.clone();
        bus.subscribe(name, move |_: Arc<Ping>| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
    }
    let c = count.clone();
    bus.subscribe("union", move |_: PingOrPong| {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
        }
    })
    .unwrap();
    bus.try_send(ping(1)).unwrap();
    bus.wait(WAIT).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn duplicate_subscribe_is_refused_and_runs_once() {
    let bus = bus();
    let count = Arc::new(AtomicUsize::new(0));
    let handler = {
        let c = count.clone();
        move |_: Arc<Ping>| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
            }
        }
    };
    bus.subscribe("same", handler.clone()).unwrap();
    // A second subscription under a taken name is an error (it used to be dropped
    // silently, returning the first one's handle).
    assert_eq!(
        bus.subscribe("same", handler).unwrap_err(),
        SubscribeError::NameTaken {
            name: "same".into()
        }
    );
    bus.try_send(ping(1)).unwrap();
    bus.wait(WAIT).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(bus.stats().subscribers.len(), 1);
}

#[tokio::test]
async fn has_subscribers_reflects_typed_union_and_wildcard() {
    let bus = bus();
    assert!(!bus.has_subscribers::<Ping>());
    let h = bus.subscribe("u", |_: PingOrPong| async {}).unwrap();
    assert!(bus.has_subscribers::<Ping>() && bus.has_subscribers::<Pong>());
    assert!(!bus.has_subscribers::<Stranger>());
    h.unsubscribe();
    assert!(!bus.has_subscribers::<Ping>());
    bus.subscribe("all", |_: Arc<dyn DynEvent>| async {})
        .unwrap();
    assert!(bus.has_subscribers::<Stranger>());
}

#[tokio::test]
async fn unsubscribe_stops_delivery_and_dropping_the_handle_does_not() {
    let bus = bus();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let handle = bus
        .subscribe("h", move |_: Arc<Ping>| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
    drop(handle.clone());
    bus.try_send(ping(1)).unwrap();
    bus.wait(WAIT).await.unwrap();
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "a dropped handle keeps the subscription"
    );
    assert!(handle.clone().unsubscribe());
    assert!(!handle.is_active());
    assert!(
        !handle.clone().unsubscribe(),
        "second unsubscribe is a no-op"
    );
    bus.try_send(ping(2)).unwrap();
    bus.wait(WAIT).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn silent_types_are_skipped_by_wildcards_that_ask() {
    let bus = bus();
    bus.silent::<Ping>();
    assert!(bus.is_silent("test.ping"));
    let quiet = Log::default();
    let loud = Log::default();
    let q = quiet.clone();
    bus.subscribe_with(
        "quiet-sink",
        SubscribeOptions::new().skip_silent(true),
        move |e: Arc<dyn DynEvent>| {
            let q = q.clone();
            async move { q.push(e.event_type()) }
        },
    )
    .unwrap();
    let l = loud.clone();
    bus.subscribe("loud-sink", move |e: Arc<dyn DynEvent>| {
        let l = l.clone();
        async move { l.push(e.event_type()) }
    })
    .unwrap();
    bus.try_send(ping(1)).unwrap();
    bus.try_send(pong(2)).unwrap();
    bus.wait(WAIT).await.unwrap();
    assert_eq!(quiet.get(), vec!["test.pong"]);
    assert_eq!(loud.get(), vec!["test.ping", "test.pong"]);
}

#[tokio::test]
async fn decode_and_send_delivers_the_typed_event() {
    let bus = bus();
    let got = Log::default();
    let g = got.clone();
    bus.subscribe("h", move |e: Arc<Ping>| {
        let g = g.clone();
        async move { g.push(e.n) }
    })
    .unwrap();
    let json = wire::to_string(&ping(42)).unwrap();
    bus.try_send_json(json.as_bytes()).unwrap();
    let unknown = json.replace("test.ping", "test.nobody");
    assert!(matches!(
        bus.try_send_json(unknown.as_bytes()),
        Err(SendJsonError::Decode(_))
    ));
    bus.wait(WAIT).await.unwrap();
    assert_eq!(got.get(), vec![42]);
}

#[test]
fn send_works_from_a_thread_without_a_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let bus = EventManager::with_handle(runtime.handle().clone());
    bus.register::<Ping>().unwrap();
    let got = Log::default();
    let g = got.clone();
    bus.subscribe("h", move |e: Arc<Ping>| {
        let g = g.clone();
        async move { g.push(e.n) }
    })
    .unwrap();
    let sender = bus.clone();
    std::thread::spawn(move || {
        for n in 0..100 {
            sender.blocking_send(ping(n)).unwrap();
        }
    })
    .join()
    .unwrap();
    runtime.block_on(bus.wait(WAIT)).unwrap();
    assert_eq!(got.get(), (0..100).collect::<Vec<_>>());
}

#[test]
fn new_outside_a_runtime_is_an_error_value() {
    assert_eq!(EventManager::try_new().unwrap_err(), BuildError::NoRuntime);
}

#[tokio::test]
async fn invalid_subscription_options_are_rejected() {
    let bus = bus();
    let e = bus.subscribe_with(
        "h",
        SubscribeOptions::new().capacity(0),
        |_: Arc<Ping>| async {},
    );
    assert!(matches!(e, Err(SubscribeError::ZeroCapacity { .. })));
    let e = bus.subscribe_with(
        "h",
        SubscribeOptions::new().concurrency(0),
        |_: Arc<Ping>| async {},
    );
    assert!(matches!(e, Err(SubscribeError::ZeroConcurrency { .. })));
    let e = bus.subscribe("", |_: Arc<Ping>| async {});
    assert!(matches!(e, Err(SubscribeError::EmptyName)));
}

// ---- ordering and concurrency ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_holds_under_slow_handlers() {
    let bus = bus();
    let slow = Log::default();
    let fast = Log::default();
    let s = slow.clone();
    bus.subscribe("slow", move |e: Arc<Ping>| {
        let s = s.clone();
        async move {
            if e.n.is_multiple_of(7) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            s.push(e.n)
        }
    })
    .unwrap();
    let f = fast.clone();
    bus.subscribe("fast", move |e: Arc<Ping>| {
        let f = f.clone();
        async move { f.push(e.n) }
    })
    .unwrap();
    for n in 0..200 {
        bus.try_send(ping(n)).unwrap();
    }
    bus.wait(WAIT).await.unwrap();
    assert_eq!(slow.get(), (0..200).collect::<Vec<_>>());
    assert_eq!(fast.get(), (0..200).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_never_runs_concurrently_with_itself() {
    let bus = bus();
    let running = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let (r, m) = (running.clone(), max.clone());
    bus.subscribe("h", move |_: Arc<Ping>| {
        let (r, m) = (r.clone(), m.clone());
        async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            tokio::task::yield_now().await;
            r.fetch_sub(1, Ordering::SeqCst);
        }
    })
    .unwrap();
    let sender = bus.clone();
    let t = std::thread::spawn(move || {
        for n in 0..500 {
            sender.blocking_send(ping(n)).unwrap();
        }
    });
    for n in 0..500 {
        bus.try_send(ping(n)).unwrap();
    }
    t.join().unwrap();
    bus.wait(WAIT).await.unwrap();
    assert_eq!(max.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_n_runs_up_to_n_handlers_at_once() {
    let bus = bus();
    // Each call waits at a 4-party barrier: only possible if 4 calls run at once.
    let barrier = Arc::new(Barrier::new(4));
    let done = Arc::new(AtomicUsize::new(0));
    let (b, d) = (barrier.clone(), done.clone());
    bus.subscribe_with(
        "wide",
        SubscribeOptions::new().concurrency(4),
        move |_: Arc<Ping>| {
            let (b, d) = (b.clone(), d.clone());
            async move {
                b.wait().await;
                d.fetch_add(1, Ordering::SeqCst);
            }
        },
    )
    .unwrap();
    for n in 0..8 {
        bus.try_send(ping(n)).unwrap();
    }
    bus.wait(WAIT).await.unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 8);
}

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

// ---- overflow ------------------------------------------------------------------------------

/// A subscriber whose handler blocks until the gate opens.
fn stalled(
    bus: &EventManager,
    options: SubscribeOptions,
) -> (Arc<Notify>, agentbus::SubscriptionHandle) {
    let gate = Arc::new(Notify::new());
    let g = gate.clone();
    let handle = bus
        .subscribe_with("stalled", options, move |_: Arc<Ping>| {
            let g = g.clone();
            async move { g.notified().await }
        })
        .unwrap();
    (gate, handle)
}

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
