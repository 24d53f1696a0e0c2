//! The bus under sustained load for a bounded time (issue 21's soak): every overflow
//! policy, a slow subscriber, a panicking handler, subscribe/unsubscribe churn, an async
//! sender and a plain-thread sender. Checks that memory stays flat (a counting global
//! allocator in this test binary: the high-water mark of the second half of the run does
//! not exceed the first half's by more than a small slack, and the whole run stays under
//! a fixed bound), that every delivery is accounted for in the stats (accepted =
//! delivered + dropped + cancelled, per subscriber), and that nothing is reported
//! delivered that was not (handler calls = `delivered`, panics = `failed`).
//!
//! Runs for `AGENTBUS_SOAK_SECS` seconds (default 4; the suite's budget is 20 s).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentbus::{EventManager, Overflow, SendError, Sent, SubscribeOptions};
use agentbus_events::DynEvent;
use common::{Ping, ping};

// ---- counting allocator -----------------------------------------------------------------

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` unchanged; the counter is a side effect.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's arguments.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// ---- bookkeeping ---------------------------------------------------------------------------

/// What the senders know: accepted `Ping`s, and per subscriber how many it refused.
#[derive(Default)]
struct Ledger {
    accepted: AtomicU64,
    not_sent: AtomicU64,
    refused: Mutex<HashMap<String, u64>>,
}

impl Ledger {
    fn record(&self, result: Result<Sent, SendError>) {
        match result {
            Ok(sent) => {
                self.accepted.fetch_add(1, Relaxed);
                if !sent.is_complete() {
                    let mut refused = self.refused.lock().unwrap();
                    for r in sent.refused() {
                        *refused.entry(r.subscriber.clone()).or_default() += 1;
                    }
                }
            }
            Err(SendError::Full { .. }) => {
                self.not_sent.fetch_add(1, Relaxed);
            }
            Err(error) => panic!("unexpected send error: {error}"),
        }
    }

    fn refused_by(&self, name: &str) -> u64 {
        self.refused.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

fn soak_duration() -> Duration {
    let secs = std::env::var("AGENTBUS_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0f64);
    Duration::from_secs_f64(secs.clamp(0.5, 3600.0))
}

/// A fixed subscriber: its name, and how many times its handler was called.
struct Fixed {
    name: &'static str,
    calls: Arc<AtomicU64>,
    panics: Arc<AtomicU64>,
}

fn subscribe_fixed(
    bus: &EventManager,
    name: &'static str,
    options: SubscribeOptions,
    slow_every: u64,
    panic_every: u64,
) -> Fixed {
    let calls = Arc::new(AtomicU64::new(0));
    let panics = Arc::new(AtomicU64::new(0));
    let (c, p) = (Arc::clone(&calls), Arc::clone(&panics));
    bus.subscribe_with(name, options, move |e: Arc<Ping>| {
        let (c, p) = (Arc::clone(&c), Arc::clone(&p));
        async move {
            c.fetch_add(1, Relaxed);
            if slow_every > 0 && e.n.is_multiple_of(slow_every) {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            if panic_every > 0 && e.n.is_multiple_of(panic_every) {
                p.fetch_add(1, Relaxed);
                panic!("soak: planned panic at {}", e.n);
            }
        }
    })
    .unwrap();
    Fixed {
        name,
        calls,
        panics,
    }
}

#[test]
fn soak_every_policy_churn_and_failures_keeps_memory_flat_and_accounts_for_everything() {
    let duration = soak_duration();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bus = EventManager::with_handle(rt.handle().clone());
    bus.register::<Ping>().unwrap();
    // The planned panics are expected; keep the output readable, report any other.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let planned = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|m| m.starts_with("soak: planned panic"));
        if !planned {
            default_hook(info);
        }
    }));

    let fixed = vec![
        subscribe_fixed(
            &bus,
            "block-slow",
            SubscribeOptions::new().capacity(64),
            64,
            0,
        ),
        subscribe_fixed(
            &bus,
            "error-small",
            SubscribeOptions::new()
                .capacity(16)
                .overflow(Overflow::Error),
            128,
            0,
        ),
        subscribe_fixed(
            &bus,
            "drop-oldest-slow",
            SubscribeOptions::new()
                .capacity(32)
                .overflow(Overflow::DropOldest),
            16,
            0,
        ),
        subscribe_fixed(
            &bus,
            "panicky-concurrent",
            SubscribeOptions::new().capacity(256).concurrency(4),
            0,
            97,
        ),
    ];
    let wildcard_calls = Arc::new(AtomicU64::new(0));
    let w = Arc::clone(&wildcard_calls);
    let wildcard = bus
        .subscribe_with(
            "wildcard",
            SubscribeOptions::new()
                .capacity(128)
                .overflow(Overflow::DropOldest),
            move |_: Arc<dyn DynEvent>| {
                w.fetch_add(1, Relaxed);
                async {}
            },
        )
        .unwrap();

    let ledger = Arc::new(Ledger::default());
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));

    // An async sender (waits for room) and a plain-thread sender (never waits).
    let async_sender = {
        let (bus, ledger, stop, next) = (bus.clone(), ledger.clone(), stop.clone(), next.clone());
        rt.spawn(async move {
            while !stop.load(Relaxed) {
                for _ in 0..64 {
                    let n = next.fetch_add(1, Relaxed);
                    ledger.record(bus.send(ping(n)).await);
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let thread_sender = {
        let (bus, ledger, stop, next) = (bus.clone(), ledger.clone(), stop.clone(), next.clone());
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                for _ in 0..64 {
                    let n = next.fetch_add(1, Relaxed);
                    ledger.record(bus.try_send(ping(n)));
                }
                std::thread::sleep(Duration::from_micros(50));
            }
        })
    };
    // Churn: short-lived subscribers, each checked when it goes.
    let churn = {
        let (bus, stop) = (bus.clone(), stop.clone());
        rt.spawn(async move {
            let mut rounds = 0u64;
            while !stop.load(Relaxed) {
                let calls = Arc::new(AtomicU64::new(0));
                let c = Arc::clone(&calls);
                let policy =
                    [Overflow::Block, Overflow::Error, Overflow::DropOldest][(rounds % 3) as usize];
                let handle = bus
                    .subscribe_with(
                        format!("churn-{rounds}"),
                        SubscribeOptions::new().capacity(8).overflow(policy),
                        move |_: Arc<Ping>| {
                            c.fetch_add(1, Relaxed);
                            async {}
                        },
                    )
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
                let stats_handle = handle.clone();
                assert!(handle.unsubscribe());
                // Its queue drains after the unsubscribe; then its counts must agree.
                let deadline = Instant::now() + Duration::from_secs(5);
                while stats_handle.stats().queue_depth > 0 || {
                    let s = stats_handle.stats();
                    s.delivered != calls.load(Relaxed)
                } {
                    assert!(Instant::now() < deadline, "churn subscriber did not drain");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let s = stats_handle.stats();
                assert_eq!(s.delivered, calls.load(Relaxed), "churn-{rounds}");
                assert_eq!(s.cancelled, 0, "churn-{rounds}");
                rounds += 1;
            }
            rounds
        })
    };

    // Memory: sample the live heap; compare the high-water marks of the two halves.
    let start = Instant::now();
    let baseline = LIVE.load(SeqCst);
    let (mut first_half_peak, mut second_half_peak) = (0isize, 0isize);
    while start.elapsed() < duration {
        std::thread::sleep(Duration::from_millis(10));
        let live = LIVE.load(SeqCst) - baseline;
        if start.elapsed() < duration / 2 {
            first_half_peak = first_half_peak.max(live);
        } else {
            second_half_peak = second_half_peak.max(live);
        }
    }
    stop.store(true, SeqCst);
    thread_sender.join().unwrap();
    rt.block_on(async_sender).unwrap();
    let churn_rounds = rt.block_on(churn).unwrap();
    rt.block_on(bus.wait(Duration::from_secs(30))).unwrap();
    let report = rt.block_on(bus.shutdown(Duration::from_secs(10)));

    const MIB: isize = 1 << 20;
    assert!(
        second_half_peak <= first_half_peak + first_half_peak / 4 + MIB,
        "memory grew: first half peak {first_half_peak} B, second half peak {second_half_peak} B"
    );
    assert!(
        first_half_peak.max(second_half_peak) < 64 * MIB,
        "high-water mark {} B",
        first_half_peak.max(second_half_peak)
    );

    let accepted = ledger.accepted.load(SeqCst);
    assert!(accepted > 1000, "the soak sent too little: {accepted}");
    assert!(churn_rounds > 10, "too little churn: {churn_rounds}");
    assert!(!report.timed_out);
    let stats: HashMap<String, agentbus::SubscriberStats> = report
        .subscribers
        .iter()
        .map(|s| (s.name.clone(), s.clone()))
        .collect();
    for f in &fixed {
        let s = &stats[f.name];
        let expected = accepted - ledger.refused_by(f.name);
        assert_eq!(
            s.delivered + s.dropped + s.cancelled,
            expected,
            "{}: every accepted delivery is delivered, dropped or cancelled",
            f.name
        );
        assert_eq!(
            s.delivered,
            f.calls.load(SeqCst),
            "{}: delivered = handler calls",
            f.name
        );
        assert_eq!(
            s.failed,
            f.panics.load(SeqCst),
            "{}: failed = panics",
            f.name
        );
        assert_eq!(s.queue_depth, 0, "{}", f.name);
    }
    // The policies did what they say: the slow `Error` subscriber refused some events,
    // the slow `DropOldest` one dropped some, the panicking one failed.
    assert!(ledger.refused_by("error-small") > 0);
    assert!(stats["drop-oldest-slow"].dropped > 0);
    assert!(stats["panicky-concurrent"].failed > 0);
    assert_eq!(ledger.refused_by("drop-oldest-slow"), 0);
    let w = &stats["wildcard"];
    assert_eq!(w.delivered, wildcard_calls.load(SeqCst));
    assert_eq!(w.cancelled, 0);
    drop(wildcard);
}
