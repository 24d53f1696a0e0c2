//! The bus contract, one behaviour per test: registration, subscribing, delivery and
//! ordering.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use agentbus::{
    BuildError, EventManager, RegisterError, Registration, SendError, SendJsonError,
    SubscribeError, SubscribeOptions, event_union,
};
use agentbus_events::base::ExceptionEvent;
use agentbus_events::bus::SubscriberLaggedEvent;
use agentbus_events::{DynEvent, Event, RegistryError, define_event, wire};
use common::{Log, Ping, Pong, Stranger, bus, ping, pong};
use tokio::sync::Barrier;

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
async fn try_send_json_delivers_the_typed_event() {
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
