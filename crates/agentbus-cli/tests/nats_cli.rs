//! The bus across processes: real child processes (`agentbus bench nats-producer`,
//! `store-writer`, `tail`, `replay --nats`) on a `nats-server -js` each test starts.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use agentbus_nats::server::LocalServer;
use agentbus_store::{EventQuery, EventStore};

fn agentbus() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agentbus"));
    command.env_remove("AGENTBUS_NATS").env("NO_COLOR", "1");
    command
}

fn server(dir: &Path) -> LocalServer {
    LocalServer::start(&dir.join("nats")).expect(
        "these tests need nats-server (Debian: apt-get install nats-server; or set NATS_SERVER)",
    )
}

fn producer(url: &str, session: &str, count: usize, ids: &Path) -> Child {
    agentbus()
        .args([
            "bench",
            "nats-producer",
            "--nats",
            url,
            "--session",
            session,
        ])
        .args(["--count", &count.to_string(), "--ids"])
        .arg(ids)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn store_writer(url: &str, store: &str) -> Child {
    agentbus()
        .args([
            "store-writer",
            "--nats",
            url,
            "--store",
            store,
            "--ack-wait",
            "2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finished(child: Child) -> Output {
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "child failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn ids_in(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until the store holds `n` events (panics after `timeout`).
fn wait_for_count(url: &str, n: u64, timeout: Duration) -> EventStore {
    let start = Instant::now();
    loop {
        if let Ok(store) = EventStore::open(url)
            && store.count().unwrap_or(0) >= n
        {
            return store;
        }
        assert!(
            start.elapsed() < timeout,
            "the store did not reach {n} events"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How a session's stored events must be ordered.
#[derive(Clone, Copy, PartialEq)]
enum Order {
    /// In store order (no writer crashed).
    Store,
    /// By their origin bus seq (`bus_seq`): after a writer crash, a batch it held comes
    /// back after `ack_wait` and may land after newer events.
    OriginSeq,
}

/// The store holds exactly `sent` (per session, in the order sent, as `order` reads it),
/// each once. Returns how many events landed out of store order.
fn assert_exact(store: &EventStore, sent: &HashMap<String, Vec<String>>, order: Order) -> usize {
    let total: usize = sent.values().map(Vec::len).sum();
    assert_eq!(
        store.count().unwrap(),
        total as u64,
        "exactly the events sent"
    );
    let mut all = HashSet::new();
    let mut late = 0;
    for (session, ids) in sent {
        let mut stored: Vec<(Option<u64>, String)> = store
            .events(&EventQuery::session(session.clone()))
            .unwrap()
            .into_iter()
            .map(|e| (e.row.bus_seq, e.row.event_id))
            .collect();
        late += stored.windows(2).filter(|w| w[0].0 > w[1].0).count();
        if order == Order::OriginSeq {
            stored.sort_by_key(|(seq, _)| *seq);
        }
        let stored: Vec<String> = stored.into_iter().map(|(_, id)| id).collect();
        if &stored != ids {
            let first = stored.iter().zip(ids).position(|(a, b)| a != b);
            let moved = first.and_then(|at| ids.iter().position(|id| *id == stored[at]));
            panic!(
                "session {session}: not every event once in order: {} stored, {} sent, first \
                 difference at {first:?}, where the event sent at {moved:?} is",
                stored.len(),
                ids.len()
            );
        }
        all.extend(stored);
    }
    assert_eq!(all.len(), total, "no duplicates");
    late
}

#[test]
fn two_producers_one_store_writer_and_a_tail() {
    let dir = tempfile::tempdir().unwrap();
    let nats = server(dir.path());
    let url = nats.url();
    let store = format!("sqlite://{}", dir.path().join("store.db").display());
    const N: usize = 2_000;
    // The tail first, from the stream's start, so it sees both sessions whatever the timing.
    let tail = agentbus()
        .args(["tail", "--nats", &url, "--all", "--events", "jsonl"])
        .args(["--limit", &(2 * N).to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let writer = store_writer(&url, &store);
    let (ids_a, ids_b) = (dir.path().join("a.ids"), dir.path().join("b.ids"));
    let a = producer(&url, "session-a", N, &ids_a);
    let b = producer(&url, "session-b", N, &ids_b);
    finished(a);
    finished(b);
    let sent = HashMap::from([
        ("session-a".to_string(), ids_in(&ids_a)),
        ("session-b".to_string(), ids_in(&ids_b)),
    ]);

    let tail = finished(tail);
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    for line in String::from_utf8(tail.stdout).unwrap().lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(event["type"], "plugin.llm_response_chunk");
        seen.entry(event["session_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(event["event_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        seen, sent,
        "tail shows both sessions live, in order, once each"
    );

    let stored = wait_for_count(&store, 2 * N as u64, Duration::from_secs(60));
    assert_eq!(assert_exact(&stored, &sent, Order::Store), 0);
    let _ = Command::new("kill").arg(writer.id().to_string()).status();
    let output = finished(writer);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("events written"), "{stderr}");

    // And the session replays from the stream.
    let replay = agentbus()
        .args([
            "replay",
            "--nats",
            &url,
            "session-a",
            "--speed",
            "max",
            "--events",
            "jsonl",
        ])
        .output()
        .unwrap();
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let replayed: Vec<String> = String::from_utf8(replay.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(replayed, sent["session-a"]);
}

/// SIGKILL the store writer in the middle of a 100,000-event run and start it again: the
/// store holds exactly the events sent, each once, in the order sent by their origin bus
/// seq (a batch the killed writer held may land after newer events: it comes back after
/// `ack_wait`); how many did is printed. Three times, killed at different points.
#[test]
fn killing_the_store_writer_mid_run_loses_and_duplicates_nothing() {
    for (round, kill_after) in [(0, 10_000u64), (1, 50_000), (2, 85_000)] {
        let dir = tempfile::tempdir().unwrap();
        let nats = server(dir.path());
        let url = nats.url();
        let store = format!("sqlite://{}", dir.path().join("store.db").display());
        const N: usize = 100_000;
        let ids = dir.path().join("ids");
        let mut writer = store_writer(&url, &store);
        let p = producer(&url, "chaos", N, &ids);
        // Kill once the store has some of the events.
        wait_for_count(&store, kill_after, Duration::from_secs(60));
        writer.kill().unwrap();
        let _ = writer.wait();
        let writer = store_writer(&url, &store);
        finished(p);
        let sent = HashMap::from([("chaos".to_string(), ids_in(&ids))]);
        let stored = wait_for_count(&store, N as u64, Duration::from_secs(60));
        // Give a redelivery time to (wrongly) add something.
        std::thread::sleep(Duration::from_millis(2_500));
        let late = assert_exact(&stored, &sent, Order::OriginSeq);
        let _ = Command::new("kill").arg(writer.id().to_string()).status();
        finished(writer);
        eprintln!("round {round} ok: {late} events landed after newer ones of their session");
    }
}

/// Event ids by session (`-` for none) of wire JSON lines, in order.
fn ids_by_session(jsonl: &[u8]) -> HashMap<String, Vec<String>> {
    let mut by_session: HashMap<String, Vec<String>> = HashMap::new();
    for line in String::from_utf8_lossy(jsonl).lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let session = event["session_id"].as_str().unwrap_or("-").to_owned();
        let id = event["event_id"].as_str().unwrap().to_owned();
        by_session.entry(session).or_default().push(id);
    }
    by_session
}

/// The end-to-end check: two `agentbus run --nats` processes (agents on the
/// embedded model) and one store writer on one server leave both sessions complete in one
/// store, and `tail` shows both.
#[test]
fn two_agent_runs_a_store_writer_and_a_tail_share_one_server() {
    let dir = tempfile::tempdir().unwrap();
    let nats = server(dir.path());
    let url = nats.url();
    let store = format!("sqlite://{}", dir.path().join("store.db").display());
    let tail = agentbus()
        .args(["tail", "--nats", &url, "--all", "--events", "jsonl"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let writer = store_writer(&url, &store);
    let run = |question: &str| {
        agentbus()
            .args(["run", "--nats", &url, "--no-store", "--events", "jsonl"])
            .arg(question)
            .env_remove("AGENTBUS_PROVIDER")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (run("What is 17 * 23?"), run("What is 12 + 30?"));
    let (a, b) = (finished(a), finished(b));
    let mut sent = ids_by_session(&a.stdout);
    let from_b = ids_by_session(&b.stdout);
    assert_eq!(sent.len(), 1, "one session per run: {:?}", sent.keys());
    assert_eq!(from_b.len(), 1, "one session per run: {:?}", from_b.keys());
    sent.extend(from_b);
    assert_eq!(sent.len(), 2, "two sessions");
    for stderr in [&a.stderr, &b.stderr] {
        let stderr = String::from_utf8_lossy(stderr);
        assert!(stderr.contains("events exported to"), "{stderr}");
    }

    let total: usize = sent.values().map(Vec::len).sum();
    let stored = wait_for_count(&store, total as u64, Duration::from_secs(60));
    assert_eq!(assert_exact(&stored, &sent, Order::Store), 0);
    let _ = Command::new("kill").arg(writer.id().to_string()).status();
    finished(writer);

    // The tail has seen everything once the store has; stop it as Ctrl-C would.
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-INT", &tail.id().to_string()])
        .status();
    let tail = finished(tail);
    assert_eq!(
        ids_by_session(&tail.stdout),
        sent,
        "tail shows both runs, in order"
    );
}
