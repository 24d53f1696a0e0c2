//! A full disk never leaves a silent gap: the writer holds the failed batch and retries
//! (one error line), and either the disk frees up in time and everything is written in
//! order, or it gives up, stops writing and the session reads back as cut short.
//!
//! The disk is real: a small tmpfs mounted for the test (root only; the tests are skipped
//! with a note where it cannot be mounted). The writer runs in a child process, so its log
//! lines can be counted and its end seen from outside.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use agentbus_events::stream::StreamTextDeltaEvent;
use agentbus_events::{DynEvent, Registry};
use agentbus_store::{EventQuery, EventStore, StoreError, WriterOptions};

const CHILD_ENV: &str = "AGENTBUS_STORE_DISK_FULL_CHILD";
const EVENTS: u64 = 2_000;

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!("agentbus-disk-full-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            let _ = std::fs::remove_dir(&dir);
            eprintln!("note: skipping: cannot mount a small tmpfs here (needs root and mount)");
            return None;
        }
        Some(Self { dir })
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.dir.join("events.db").display())
    }

    /// Fills the disk with a file, leaving about `free` bytes.
    fn fill_leaving(&self, free: usize) -> PathBuf {
        use std::io::Write;
        let filler = self.dir.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0xA5u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        drop(file);
        let len = std::fs::metadata(&filler).unwrap().len();
        let keep = len.saturating_sub(free as u64);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&filler)
            .unwrap()
            .set_len(keep)
            .unwrap();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn event(seq: u64) -> Box<dyn DynEvent> {
    let mut meta = common::meta("full", seq, seq as i64 * 1000);
    meta.event_id = uuid::Uuid::new_v4();
    Box::new(StreamTextDeltaEvent {
        meta,
        request_id: format!("req-{}", seq / 100),
        content: "x".repeat(1_000),
        snapshot_len: 1_000,
    })
}

/// Not a test of its own: the writer process of the tests below. Appends `EVENTS` events
/// (1 kB of text each) to the store named by the environment, then closes and prints the
/// outcome on stdout.
#[test]
#[ignore = "run as a child process by the disk-full tests"]
fn child_writing_to_a_small_disk() {
    let spec = std::env::var(CHILD_ENV).expect("run by the disk-full tests");
    let (url, retry_ms) = spec.split_once('|').unwrap();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter("warn")
        .init();
    let store = EventStore::open(url).unwrap();
    let writer = store
        .writer(WriterOptions {
            max_batch: 128,
            capacity: 256,
            retry_for: Duration::from_millis(retry_ms.parse().unwrap()),
            ..WriterOptions::default()
        })
        .unwrap();
    let mut refused = 0;
    for seq in 1..=EVENTS {
        match writer.append_blocking(event(seq).as_ref()) {
            Ok(()) => {}
            Err(StoreError::WriteFailed { .. }) => refused += 1,
            Err(other) => panic!("{other}"),
        }
    }
    match writer.close_blocking() {
        Ok(report) => println!("closed written={}", report.written),
        Err(StoreError::WriteFailed { lost, .. }) => {
            println!("failed lost={lost} refused={refused}")
        }
        Err(other) => panic!("{other}"),
    }
}

fn start_child(url: &str, retry_ms: u64) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_writing_to_a_small_disk",
            "--nocapture",
        ])
        .env(CHILD_ENV, format!("{url}|{retry_ms}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The stored events: a gap-free prefix `1..=n` of what the child sent, every one decoding.
fn check_prefix(url: &str) -> u64 {
    let store = EventStore::open_read_only(url).unwrap();
    let registry = Registry::catalogue();
    let mut n = 0;
    store
        .scan(&EventQuery::session("full"), |e| {
            n += 1;
            assert_eq!(e.seq, n, "gap in store seq");
            assert_eq!(e.row.bus_seq, Some(n), "not a prefix of what was sent");
            e.decode(&registry).unwrap();
            Ok(())
        })
        .unwrap();
    n
}

fn count_lines(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn a_disk_that_frees_up_in_time_gets_every_event_in_order() {
    let Some(disk) = SmallDisk::mount("16m") else {
        return;
    };
    drop(EventStore::open(&disk.url()).unwrap());
    let filler = disk.fill_leaving(256 * 1024);
    let mut child = start_child(&disk.url(), 60_000);
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    // Wait for the failure to be reported, then free the disk.
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the child ended without hitting the full disk: {log}"
        );
        log.push_str(&line);
        if line.contains("cannot write") {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    std::fs::remove_file(&filler).unwrap();
    stderr.read_to_string(&mut log).unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{log}");
    assert!(
        out.contains(&format!("closed written={EVENTS}")),
        "{out}\n{log}"
    );
    assert_eq!(check_prefix(&disk.url()), EVENTS);
    let store = EventStore::open_read_only(&disk.url()).unwrap();
    let sessions = store.sessions().unwrap();
    assert_eq!(sessions[0].events, EVENTS);
    assert!(!sessions[0].status.has_gap(), "{:?}", sessions[0].status);
    // One line when it started failing, one when it recovered: not one per try.
    assert_eq!(count_lines(&log, "cannot write"), 1, "{log}");
    assert_eq!(count_lines(&log, "recovered"), 1, "{log}");
    assert_eq!(count_lines(&log, "ERROR"), 1, "{log}");
}

#[test]
fn a_disk_that_stays_full_leaves_a_prefix_marked_cut_short() {
    let Some(disk) = SmallDisk::mount("16m") else {
        return;
    };
    drop(EventStore::open(&disk.url()).unwrap());
    let filler = disk.fill_leaving(256 * 1024);
    let child = start_child(&disk.url(), 500);
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{out}\n{log}");
    assert!(out.contains("failed lost="), "{out}\n{log}");
    assert_eq!(count_lines(&log, "cannot write"), 1, "{log}");
    assert_eq!(count_lines(&log, "gives up"), 1, "{log}");
    assert_eq!(count_lines(&log, "ERROR"), 2, "{log}");

    // Space back, the store reads: a gap-free prefix, and the session says it is cut short.
    std::fs::remove_file(&filler).unwrap();
    let stored = check_prefix(&disk.url());
    assert!(stored < EVENTS, "{stored}");
    let store = EventStore::open_read_only(&disk.url()).unwrap();
    let session = store.session("full").unwrap();
    assert_eq!(session.events, stored);
    assert!(session.status.has_gap(), "{:?}", session.status);
    let warning = session
        .status
        .gap_warning("full", session.last_seq)
        .unwrap();
    assert!(warning.contains(&format!("seq {stored}")), "{warning}");
    assert_eq!(store.stats(Some("full")).unwrap().gaps, [warning]);
}

#[test]
fn the_writer_s_record_says_how_it_ended() {
    // Same process: a clean close is recorded as such; a writer never closed reads back
    // as still writing while its process lives.
    let test = common::TestStore::sqlite();
    let store = EventStore::open(&test.url).unwrap();
    let writer = store.writer(WriterOptions::default()).unwrap();
    writer.append_blocking(event(1).as_ref()).unwrap();
    writer.flush_blocking().unwrap();
    let status = store.session("full").unwrap().status;
    assert!(
        matches!(status, agentbus_store::SessionStatus::Writing { writer_pid, .. } if writer_pid == std::process::id()),
        "{status:?}"
    );
    writer.close_blocking().unwrap();
    assert_eq!(
        store.session("full").unwrap().status,
        agentbus_store::SessionStatus::Complete
    );
}
