//! Reading opens the store read-only: nothing created, migrated or switched; a missing
//! store names itself; a locked store says so at once and who holds it.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agentbus_store::{
    EventQuery, EventStore, SessionStatus, StoreError, StoreLocation, WriterOptions,
    open_backend_at_version,
};
use common::{TestStore, llm_session};

fn fill(url: &str, session: &str) {
    let store = EventStore::open(url).unwrap();
    let writer = store.writer(WriterOptions::default()).unwrap();
    for e in llm_session(session, "r", "m", 0) {
        writer.append_blocking(e.as_ref()).unwrap();
    }
    writer.close_blocking().unwrap();
}

#[test]
fn a_missing_store_is_an_error_naming_it_and_nothing_is_created() {
    let test = TestStore::sqlite();
    let dir = test.sqlite_path().parent().unwrap().join("typo");
    let url = format!("sqlite://{}", dir.join("agentbsu.db").display());
    let err = EventStore::open_read_only(&url).unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("agentbsu.db"), "{message}");
    assert!(!dir.exists(), "the read created {}", dir.display());
    // An empty file (a `touch`) is not a store either, and stays empty.
    std::fs::write(test.sqlite_path(), b"").unwrap();
    let err = EventStore::open_read_only(&test.url).unwrap_err();
    assert!(matches!(err, StoreError::NoStore { .. }), "{err:?}");
    assert_eq!(std::fs::read(test.sqlite_path()).unwrap(), b"");
}

#[test]
fn an_old_store_is_read_without_migrating_it() {
    let test = TestStore::sqlite();
    let location = StoreLocation::parse(&test.url).unwrap();
    {
        let mut v1 = open_backend_at_version(&location, 1).unwrap();
        let rows: Vec<_> = llm_session("old", "r", "m", 0)
            .iter()
            .map(|e| {
                agentbus_store::RowEncoder::default()
                    .encode(e.as_ref())
                    .unwrap()
            })
            .collect();
        v1.append(&rows).unwrap();
    }
    let before = std::fs::read(test.sqlite_path()).unwrap();
    let store = EventStore::open_read_only(&test.url).unwrap();
    assert_eq!(store.schema_version().unwrap(), 1);
    let sessions = store.sessions().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].events, 5);
    assert_eq!(sessions[0].llm_calls, 1);
    assert_eq!(sessions[0].status, SessionStatus::Unknown);
    assert_eq!(store.stats(Some("old")).unwrap().models.len(), 1);
    assert!(matches!(
        store.writer(WriterOptions::default()),
        Err(StoreError::ReadOnly { .. })
    ));
    drop(store);
    assert_eq!(
        std::fs::read(test.sqlite_path()).unwrap(),
        before,
        "the read changed the file"
    );
}

#[test]
fn a_rollback_journal_store_is_not_switched_to_wal() {
    let test = TestStore::sqlite();
    fill(&test.url, "s");
    {
        let conn = rusqlite::Connection::open(test.sqlite_path()).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
    }
    let store = EventStore::open_read_only(&test.url).unwrap();
    assert_eq!(store.sessions().unwrap().len(), 1);
    drop(store);
    let conn = rusqlite::Connection::open(test.sqlite_path()).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "the reader switched the journal mode");
}

const LOCK_CHILD_ENV: &str = "AGENTBUS_STORE_LOCK_CHILD";

/// Not a test of its own: the child process of `a_locked_store_is_reported_promptly`. It
/// takes an exclusive lock on the store named by `AGENTBUS_STORE_LOCK_CHILD`, says so on
/// stdout and holds it until killed.
#[test]
#[ignore = "run as a child process by a_locked_store_is_reported_promptly"]
fn child_holding_an_exclusive_lock() {
    let path = std::env::var(LOCK_CHILD_ENV).expect("run by a_locked_store_is_reported_promptly");
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; \
         UPDATE agentbus_schema SET description = description;",
    )
    .unwrap();
    println!("locked");
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn a_locked_store_is_reported_promptly_with_its_holder() {
    use std::io::BufRead;
    let test = TestStore::sqlite();
    fill(&test.url, "s");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_holding_an_exclusive_lock",
            "--nocapture",
        ])
        .env(LOCK_CHILD_ENV, test.sqlite_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("locked"))),
        "the child did not take the lock"
    );
    let start = Instant::now();
    let result = EventStore::open_read_only(&test.url).and_then(|s| s.sessions());
    let waited = start.elapsed();
    child.kill().unwrap();
    child.wait().unwrap();
    let err = result.unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("locked"), "{message}");
    assert!(message.contains(&format!("pid {pid}")), "{message}");
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    // Released, the store reads again.
    let store = EventStore::open_read_only(&test.url).unwrap();
    assert_eq!(store.sessions().unwrap().len(), 1);
}

/// A read-only bind mount of a directory (root only); `None` when it cannot be made.
struct ReadOnlyMount {
    path: std::path::PathBuf,
}

impl ReadOnlyMount {
    fn of(dir: &std::path::Path) -> Option<Self> {
        let path = dir.with_extension("ro");
        std::fs::create_dir_all(&path).ok()?;
        let bind = Command::new("mount")
            .args(["--bind"])
            .arg(dir)
            .arg(&path)
            .status()
            .ok()?;
        if !bind.success() {
            let _ = std::fs::remove_dir(&path);
            return None;
        }
        let mount = Self { path };
        let ro = Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(&mount.path)
            .status()
            .ok()?;
        ro.success().then_some(mount)
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
        let _ = std::fs::remove_dir(&self.path);
    }
}

#[test]
fn a_store_in_a_read_only_directory_is_read() {
    let test = TestStore::sqlite();
    fill(&test.url, "s");
    let dir = test.sqlite_path().parent().unwrap().to_owned();
    let Some(mount) = ReadOnlyMount::of(&dir) else {
        eprintln!("note: skipping: cannot make a read-only bind mount here (needs root and mount)");
        return;
    };
    let url = format!("sqlite://{}", mount.path.join("events.db").display());
    let store = EventStore::open_read_only(&url).unwrap();
    let sessions = store.sessions().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].events, 5);
    assert_eq!(store.events(&EventQuery::session("s")).unwrap().len(), 5);
    // Writing there is refused by the file system, clearly.
    assert!(EventStore::open(&url).is_err());
}

#[test]
fn postgres_read_only_creates_no_schema() {
    let Some(test) = TestStore::postgres_if_available() else {
        return;
    };
    let err = EventStore::open_read_only(&test.url).unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    // The schema was not created: a writer creates it, then the reader reads it.
    fill(&test.url, "s");
    let store = EventStore::open_read_only(&test.url).unwrap();
    let sessions = store.sessions().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].status, SessionStatus::Complete);
    assert!(
        store.append_rows(&[]).is_ok(),
        "an empty append writes nothing"
    );
    let row = agentbus_store::RowEncoder::default()
        .encode(llm_session("x", "r", "m", 0)[0].as_ref())
        .unwrap();
    assert!(
        store.append_rows(&[row]).is_err(),
        "a read-only session wrote"
    );
}
