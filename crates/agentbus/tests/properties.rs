//! Property tests: per-subscriber order and no loss, whatever the handlers' delays,
//! queue capacities and number of senders.

mod common;

use std::sync::Arc;
use std::time::Duration;

use agentbus::{EventManager, SubscribeOptions};
use common::{Log, Ping, ping};
use proptest::prelude::*;

/// Makes a handler take a while, by yielding and (rarely) sleeping, as `delay` says.
async fn dawdle(delay: u8) {
    for _ in 0..(delay % 4) {
        tokio::task::yield_now().await;
    }
    if delay.is_multiple_of(31) {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Every subscriber receives every event, in send order, whatever the delays.
    #[test]
    fn every_subscriber_sees_every_event_in_send_order(
        delays in proptest::collection::vec(any::<u8>(), 1..120),
        capacities in proptest::collection::vec(1usize..16, 1..4),
    ) {
        let rt = runtime();
        let bus = EventManager::with_handle(rt.handle().clone());
        bus.register::<Ping>().unwrap();
        let delays = Arc::new(delays);
        let logs: Vec<Log<u64>> = capacities.iter().map(|_| Log::default()).collect();
        for (i, (&capacity, log)) in capacities.iter().zip(&logs).enumerate() {
            let (log, delays) = (log.clone(), delays.clone());
            bus.subscribe_with(format!("sub-{i}"), SubscribeOptions::new().capacity(capacity), move |e: Arc<Ping>| {
                let (log, delay) = (log.clone(), delays[e.n as usize].wrapping_add(i as u8));
                async move {
                    dawdle(delay).await;
                    log.push(e.n);
                }
            })
            .unwrap();
        }
        // A plain thread: `Block` subscribers apply backpressure by parking it.
        let n = delays.len() as u64;
        let sender = bus.clone();
        std::thread::spawn(move || {
            for i in 0..n {
                sender.blocking_send(ping(i)).unwrap();
            }
        })
        .join()
        .unwrap();
        rt.block_on(bus.wait(Duration::from_secs(20))).unwrap();
        for log in &logs {
            prop_assert_eq!(log.get(), (0..n).collect::<Vec<_>>());
        }
        let _report = rt.block_on(bus.shutdown(Duration::from_secs(5)));
    }

    /// With several senders, nothing is lost and each sender's events stay in its order;
    /// seqs are unique and increase along each sender's events.
    #[test]
    fn concurrent_senders_lose_nothing_and_keep_their_order(
        per_sender in 1u64..400,
        senders in 1u64..4,
        delay in any::<u8>(),
    ) {
        let rt = runtime();
        let bus = EventManager::with_handle(rt.handle().clone());
        bus.register::<Ping>().unwrap();
        let log: Log<(u64, u64)> = Log::default();
        let l = log.clone();
        bus.subscribe_with("sink", SubscribeOptions::new().capacity(8), move |e: Arc<Ping>| {
            let l = l.clone();
            async move {
                dawdle(delay.wrapping_add(e.n as u8)).await;
                l.push((e.n, e.meta.seq.unwrap().get()));
            }
        })
        .unwrap();
        let threads: Vec<_> = (0..senders)
            .map(|s| {
                let bus = bus.clone();
                std::thread::spawn(move || {
                    for i in 0..per_sender {
                        bus.blocking_send(ping(s * 1_000_000 + i)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        rt.block_on(bus.wait(Duration::from_secs(20))).unwrap();
        let got = log.get();
        prop_assert_eq!(got.len() as u64, per_sender * senders);
        for s in 0..senders {
            let mine: Vec<u64> = got.iter().map(|g| g.0).filter(|n| n / 1_000_000 == s).collect();
            prop_assert_eq!(mine, (0..per_sender).map(|i| s * 1_000_000 + i).collect::<Vec<_>>());
        }
        // Seqs are unique, and increase along each sender's events. (Between concurrent
        // senders there is no send order: two sends racing may be delivered in the
        // opposite order of their seqs.)
        let mut seqs: Vec<u64> = got.iter().map(|g| g.1).collect();
        seqs.sort_unstable();
        seqs.dedup();
        prop_assert_eq!(seqs.len(), got.len());
        for s in 0..senders {
            let mine: Vec<u64> = got.iter().filter(|g| g.0 / 1_000_000 == s).map(|g| g.1).collect();
            prop_assert!(mine.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
