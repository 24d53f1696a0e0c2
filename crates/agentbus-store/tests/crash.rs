//! Crash safety: a child process appending a stream of events is killed with SIGKILL at
//! random points, several times over; each time the store opens cleanly, holds a gap-free
//! prefix of everything sent, every event decodes, and the next writer appends after it.
//! On PostgreSQL the writer is killed while the server keeps running.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agentbus_events::Registry;
use agentbus_store::{EventQuery, EventStore, WriterOptions};
use common::{TestStore, catalogue_events};

const CHILD_ENV: &str = "AGENTBUS_STORE_CRASH_CHILD";

/// Not a test of its own: the body of the child process the crash test starts (it
/// re-runs this test binary with `--ignored --exact child_process_appending_forever`).
/// It appends events to the store named by `AGENTBUS_STORE_CRASH_CHILD` until killed.
#[test]
#[ignore = "run as a child process by kill_9_at_random_points_leaves_a_gap_free_prefix"]
fn child_process_appending_forever() {
    let url = std::env::var(CHILD_ENV)
        .expect("run by kill_9_at_random_points_leaves_a_gap_free_prefix only");
    let store = EventStore::open(&url).unwrap();
    // Default batches (up to 8,192 events per transaction): kills land mid-transaction.
    let writer = store.writer(WriterOptions::default()).unwrap();
    let templates = catalogue_events("crash");
    // Continue the numbering of the children killed before this one.
    let mut bus_seq = store.last_seq().unwrap();
    loop {
        for template in &templates {
            bus_seq += 1;
            let mut event = template.clone();
            event.meta_mut().seq = agentbus_events::Seq::new(bus_seq);
            event.meta_mut().event_id = uuid::Uuid::new_v4();
            writer.append_blocking(event.as_ref()).unwrap();
        }
    }
}

/// A small random generator (xorshift), seeded from the clock; the seed is printed so a
/// failing run can be repeated with `AGENTBUS_CRASH_SEED`.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let seed = std::env::var("AGENTBUS_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
            | 1;
        eprintln!("crash test seed: AGENTBUS_CRASH_SEED={seed}");
        Self(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Checks the store holds a gap-free prefix of what the children sent (store seq and the
/// children's own numbering both `1..=n`), every event decoding; returns `n`.
fn check_prefix(store: &EventStore, backend: &str, round: u32) -> u64 {
    let registry = Registry::catalogue();
    let mut n = 0u64;
    store
        .scan(&EventQuery::all(), |event| {
            n += 1;
            assert_eq!(event.seq, n, "{backend} round {round}: gap in store seq");
            assert_eq!(
                event.row.bus_seq,
                Some(n),
                "{backend} round {round}: not a prefix of what was sent"
            );
            event.decode(&registry).unwrap();
            Ok(())
        })
        .unwrap();
    assert_eq!(store.last_seq().unwrap(), n, "{backend}");
    n
}

/// Waits until the store's last seq has not moved for 200 ms (at most 10 s).
fn settle(store: &EventStore) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = store.last_seq().unwrap();
    let mut still_since = Instant::now();
    while still_since.elapsed() < Duration::from_millis(200) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        let now = store.last_seq().unwrap();
        if now != last {
            last = now;
            still_since = Instant::now();
        }
    }
}

fn crash_and_recover(test: &TestStore, backend: &str, rounds: u32, rng: &mut Rng) {
    // Create the store first so the children and the checks below agree on the schema.
    drop(EventStore::open(&test.url).unwrap());
    let mut stored = 0;
    for round in 1..=rounds {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "child_process_appending_forever",
                "--nocapture",
            ])
            .env(CHILD_ENV, &test.url)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let store = EventStore::open_read_only(&test.url).unwrap();
        // Wait until the child writes, then kill it at a random point of its appending.
        let deadline = Instant::now() + Duration::from_secs(30);
        while store.count().unwrap() <= stored {
            assert!(
                Instant::now() < deadline,
                "{backend}: the child wrote nothing"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "{backend}: the child exited"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        // std's kill is SIGKILL on Unix: no destructor, no flush, mid-transaction.
        child.kill().unwrap();
        child.wait().unwrap();
        // A PostgreSQL server may still commit the killed client's last transaction (its
        // COMMIT was sent) or roll it back a moment later: wait until the log is still.
        settle(&store);
        drop(store);

        let store = EventStore::open_read_only(&test.url).unwrap();
        let n = check_prefix(&store, backend, round);
        assert!(n > stored, "{backend} round {round}: nothing appended");
        stored = n;
    }

    // A writer after the last crash appends right after the prefix.
    let store = EventStore::open(&test.url).unwrap();
    let writer = store.writer(WriterOptions::default()).unwrap();
    for event in catalogue_events("after") {
        writer.append_blocking(event.as_ref()).unwrap();
    }
    let report = writer.close_blocking().unwrap();
    let after = store.events(&EventQuery::session("after")).unwrap();
    assert_eq!(after.first().unwrap().seq, stored + 1, "{backend}");
    assert_eq!(report.last_seq, stored + after.len() as u64, "{backend}");
    // The killed writers' sessions read back as interrupted, not as whole.
    let crashed = store.session("crash").unwrap();
    assert!(crashed.status.has_gap(), "{backend}: {:?}", crashed.status);
}

#[test]
fn kill_9_at_random_points_leaves_a_gap_free_prefix() {
    let mut rng = Rng::new();
    for (backend, test) in TestStore::both() {
        crash_and_recover(&test, backend, 6, &mut rng);
    }
}
