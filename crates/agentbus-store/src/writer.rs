//! [`StoreWriter`]: appends events in batches on a thread of its own.
//!
//! Events are encoded by the caller ([`Appender::append`]) and queued on a bounded channel;
//! the writer thread takes everything queued (up to [`WriterOptions::max_batch`]) and writes
//! it in one transaction. When the queue is full, `append` waits (backpressure): an event is
//! never dropped silently. [`StoreWriter::flush`] returns once everything appended before it
//! is committed; [`StoreWriter::close`] flushes and stops the thread.
//!
//! **When a batch cannot be written** (disk full, server gone), the writer keeps it and
//! retries, backing off up to a second between tries, for up to
//! [`WriterOptions::retry_for`]; meanwhile the queue fills and appends wait, so the run
//! slows instead of losing events, and a store that recovers in time (space freed) gets
//! everything, in order, without a gap. One error line is logged when the failure starts
//! and one when it ends, not one per try. If it does not recover in time, the writer gives
//! up and stops writing: the failed batch and every event after it are counted as lost
//! (nothing after the failure is written, so the store holds a gap-free prefix), the
//! writer is recorded as failed in the store when the store still takes that line — the
//! sessions it wrote then read back as incomplete — and every later
//! `append`/`flush`/`close` returns [`StoreError::WriteFailed`]. A writer that could not
//! record its failure is read back as interrupted (see [`crate::status`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use agentbus_events::DynEvent;
use tokio::sync::{mpsc, oneshot};

use crate::backend::Backend;
use crate::error::{Result, StoreError};
use crate::row::{AudioPolicy, EventRow, RowEncoder};
use crate::status::WriterEnd;

/// How a [`StoreWriter`] batches.
#[derive(Clone, Copy, Debug)]
pub struct WriterOptions {
    /// Events the queue holds before `append` waits (default 16,384).
    pub capacity: usize,
    /// Most events written in one transaction (default 8,192).
    pub max_batch: usize,
    /// What to do with PCM audio samples (default: leave them out).
    pub audio: AudioPolicy,
    /// How long a batch that cannot be written is retried before the writer gives up
    /// (default 30 s; see the module documentation).
    pub retry_for: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            capacity: 16_384,
            max_batch: 8_192,
            audio: AudioPolicy::OmitSamples,
            retry_for: Duration::from_secs(30),
        }
    }
}

/// The longest pause between two tries of a failing batch.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// What a writer did, reported by [`StoreWriter::close`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterReport {
    /// Events accepted by `append`.
    pub accepted: u64,
    /// Events committed to the store.
    pub written: u64,
    /// Transactions committed.
    pub batches: u64,
    /// The store `seq` of the last event written (0 if none).
    pub last_seq: u64,
}

enum Command {
    Row(EventRow),
    Flush(oneshot::Sender<()>),
    Close(oneshot::Sender<()>),
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    written: AtomicU64,
    batches: AtomicU64,
    lost: AtomicU64,
    last_seq: AtomicU64,
    /// Set when the writer gave up: nothing more is written.
    failed: AtomicBool,
    first_error: Mutex<Option<String>>,
}

impl Counters {
    fn report(&self) -> WriterReport {
        WriterReport {
            accepted: self.accepted.load(Ordering::Acquire),
            written: self.written.load(Ordering::Acquire),
            batches: self.batches.load(Ordering::Acquire),
            last_seq: self.last_seq.load(Ordering::Acquire),
        }
    }

    fn check(&self) -> Result<()> {
        let lost = self.lost.load(Ordering::Acquire);
        if lost == 0 {
            return Ok(());
        }
        let message = self
            .first_error
            .lock()
            .map(|e| e.clone().unwrap_or_default())
            .unwrap_or_else(|p| p.into_inner().clone().unwrap_or_default());
        Err(StoreError::WriteFailed { lost, message })
    }
}

/// A cheap, cloneable handle that appends events to a [`StoreWriter`]'s queue.
#[derive(Clone)]
pub struct Appender {
    tx: mpsc::Sender<Command>,
    counters: Arc<Counters>,
    encoder: RowEncoder,
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender").finish_non_exhaustive()
    }
}

impl Appender {
    /// After the writer gave up: the event is counted lost and refused.
    fn refuse_if_failed(&self) -> Result<()> {
        if !self.counters.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        self.counters.lost.fetch_add(1, Ordering::AcqRel);
        self.counters.check()
    }

    /// Encodes `event` and queues it, waiting while the queue is full. After the writer
    /// gave up (see the module documentation), returns [`StoreError::WriteFailed`] at once.
    pub async fn append(&self, event: &dyn DynEvent) -> Result<()> {
        let row = self.encoder.encode(event)?;
        self.append_row(row).await
    }

    /// Queues an already encoded row, waiting while the queue is full.
    pub async fn append_row(&self, row: EventRow) -> Result<()> {
        self.refuse_if_failed()?;
        self.tx
            .send(Command::Row(row))
            .await
            .map_err(|_| StoreError::Closed)?;
        self.counters.accepted.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Encodes `event` and queues it, blocking the thread while the queue is full.
    ///
    /// For threads outside an async runtime; inside one, use [`Appender::append`].
    pub fn append_blocking(&self, event: &dyn DynEvent) -> Result<()> {
        let row = self.encoder.encode(event)?;
        self.append_row_blocking(row)
    }

    /// Queues an already encoded row, blocking the thread while the queue is full.
    pub fn append_row_blocking(&self, row: EventRow) -> Result<()> {
        self.refuse_if_failed()?;
        self.tx
            .blocking_send(Command::Row(row))
            .map_err(|_| StoreError::Closed)?;
        self.counters.accepted.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
}

/// The batching writer of one store (see the module documentation).
pub struct StoreWriter {
    appender: Appender,
    thread: Option<JoinHandle<()>>,
    location: String,
}

impl std::fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreWriter")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl StoreWriter {
    /// Starts a writer thread that owns `backend`, after recording the writer in the
    /// store (an error when the store cannot take even that).
    pub fn start(mut backend: Box<dyn Backend>, options: WriterOptions) -> Result<Self> {
        backend.begin_writer(&uuid::Uuid::new_v4().hyphenated().to_string())?;
        let (tx, rx) = mpsc::channel(options.capacity.max(1));
        let counters = Arc::new(Counters::default());
        let location = backend.location();
        let thread_counters = Arc::clone(&counters);
        let policy = Policy {
            max_batch: options.max_batch.max(1),
            retry_for: options.retry_for,
        };
        let thread = std::thread::Builder::new()
            .name("agentbus-store-writer".into())
            .spawn(move || run(backend, rx, thread_counters, policy))
            .map_err(|source| StoreError::Io {
                context: "starting the writer thread",
                source,
            })?;
        Ok(Self {
            appender: Appender {
                tx,
                counters,
                encoder: RowEncoder::new(options.audio),
            },
            thread: Some(thread),
            location,
        })
    }

    /// A handle for appending (clone it freely; e.g. one per bus subscriber).
    pub fn appender(&self) -> Appender {
        self.appender.clone()
    }

    /// Where the writer writes.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Encodes `event` and queues it, waiting while the queue is full.
    pub async fn append(&self, event: &dyn DynEvent) -> Result<()> {
        self.appender.append(event).await
    }

    /// Encodes `event` and queues it, blocking while the queue is full (outside async code).
    pub fn append_blocking(&self, event: &dyn DynEvent) -> Result<()> {
        self.appender.append_blocking(event)
    }

    /// What the writer has done so far.
    pub fn report(&self) -> WriterReport {
        self.appender.counters.report()
    }

    /// Returns once every event appended before the call is committed (or lost: then the
    /// error says how many).
    pub async fn flush(&self) -> Result<WriterReport> {
        let (done, wait) = oneshot::channel();
        self.appender
            .tx
            .send(Command::Flush(done))
            .await
            .map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)?;
        self.appender.counters.check()?;
        Ok(self.report())
    }

    /// [`flush`](Self::flush) for threads outside an async runtime.
    pub fn flush_blocking(&self) -> Result<WriterReport> {
        let (done, wait) = oneshot::channel();
        self.appender
            .tx
            .blocking_send(Command::Flush(done))
            .map_err(|_| StoreError::Closed)?;
        wait.blocking_recv().map_err(|_| StoreError::Closed)?;
        self.appender.counters.check()?;
        Ok(self.report())
    }

    /// Writes everything queued, stops the writer thread and reports. Appends after this
    /// (through surviving [`Appender`]s) fail with [`StoreError::Closed`].
    pub async fn close(mut self) -> Result<WriterReport> {
        let (done, wait) = oneshot::channel();
        if self.appender.tx.send(Command::Close(done)).await.is_ok() {
            let _ = wait.await;
        }
        if let Some(thread) = self.thread.take() {
            // The thread has answered Close and is returning; joining is immediate.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        self.appender.counters.check()?;
        Ok(self.report())
    }

    /// [`close`](Self::close) for threads outside an async runtime.
    pub fn close_blocking(mut self) -> Result<WriterReport> {
        let (done, wait) = oneshot::channel();
        if self.appender.tx.blocking_send(Command::Close(done)).is_ok() {
            let _ = wait.blocking_recv();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.appender.counters.check()?;
        Ok(self.report())
    }
}

impl Drop for StoreWriter {
    /// Without `close`, the thread still writes everything queued once every [`Appender`]
    /// is gone, but nobody waits for it: call `close` (or `flush`) to be sure.
    fn drop(&mut self) {
        if self.thread.is_some() {
            tracing::debug!(location = %self.location, "store writer dropped without close");
        }
    }
}

#[derive(Clone, Copy)]
struct Policy {
    max_batch: usize,
    retry_for: Duration,
}

/// Writes `batch`, retrying as the module documentation says; gives up after
/// `policy.retry_for`. Empties `batch` either way.
fn write_batch(
    backend: &mut dyn Backend,
    batch: &mut Vec<EventRow>,
    counters: &Counters,
    policy: Policy,
) {
    if batch.is_empty() {
        return;
    }
    if counters.failed.load(Ordering::Acquire) {
        counters
            .lost
            .fetch_add(batch.len() as u64, Ordering::AcqRel);
        batch.clear();
        return;
    }
    let mut failing_since: Option<Instant> = None;
    let mut retries = 0u64;
    let mut pause = Duration::from_millis(20);
    loop {
        match backend.append(batch) {
            Ok(seqs) => {
                counters
                    .written
                    .fetch_add(batch.len() as u64, Ordering::AcqRel);
                counters.batches.fetch_add(1, Ordering::AcqRel);
                counters.last_seq.store(*seqs.end(), Ordering::Release);
                if let Some(since) = failing_since {
                    tracing::warn!(
                        after_ms = since.elapsed().as_millis() as u64,
                        retries,
                        "store writer recovered: the held events are written, none lost"
                    );
                }
                break;
            }
            Err(error) => {
                let since = *failing_since.get_or_insert_with(|| {
                    tracing::error!(
                        %error,
                        events = batch.len(),
                        retry_for_s = policy.retry_for.as_secs_f64(),
                        "store writer cannot write; holding the events and retrying \
                         (appends wait meanwhile)"
                    );
                    Instant::now()
                });
                if since.elapsed() >= policy.retry_for {
                    give_up(
                        backend,
                        batch.len() as u64,
                        &error,
                        counters,
                        since,
                        retries,
                    );
                    break;
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_RETRY_PAUSE);
                retries += 1;
            }
        }
    }
    batch.clear();
}

/// Stops writing for good: counts `lost`, keeps the error, records the failure in the store
/// when it still takes that line.
fn give_up(
    backend: &mut dyn Backend,
    lost: u64,
    error: &StoreError,
    counters: &Counters,
    since: Instant,
    retries: u64,
) {
    counters.lost.fetch_add(lost, Ordering::AcqRel);
    counters
        .first_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(|| error.to_string());
    counters.failed.store(true, Ordering::Release);
    let recorded = backend.end_writer(&WriterEnd::Failed {
        lost,
        error: error.to_string(),
    });
    tracing::error!(
        %error,
        lost,
        after_ms = since.elapsed().as_millis() as u64,
        retries,
        marked_incomplete = recorded.is_ok(),
        "store writer gives up: this batch and every later event are not stored; the \
         sessions it wrote read back as {}",
        if recorded.is_ok() { "incomplete" } else { "interrupted" }
    );
}

/// Records how the writer ended, once everything is written or given up.
fn end(backend: &mut dyn Backend, counters: &Counters) {
    let lost = counters.lost.load(Ordering::Acquire);
    let end = if counters.failed.load(Ordering::Acquire) || lost > 0 {
        WriterEnd::Failed {
            lost,
            error: counters
                .first_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default(),
        }
    } else {
        WriterEnd::Closed
    };
    if let Err(error) = backend.end_writer(&end)
        && end == WriterEnd::Closed
    {
        tracing::warn!(%error, "store writer could not record its clean end; its sessions read back as interrupted");
    }
}

fn run(
    mut backend: Box<dyn Backend>,
    mut rx: mpsc::Receiver<Command>,
    counters: Arc<Counters>,
    policy: Policy,
) {
    let mut batch = Vec::with_capacity(policy.max_batch.min(65_536));
    let mut waiters = Vec::new();
    let mut closing = None;
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Row(row) => batch.push(row),
                Command::Flush(done) => {
                    // Everything queued before the flush is in `batch`: write it now.
                    write_batch(&mut *backend, &mut batch, &counters, policy);
                    waiters.push(done);
                }
                Command::Close(done) => {
                    closing = Some(done);
                    break;
                }
            }
            if batch.len() >= policy.max_batch {
                write_batch(&mut *backend, &mut batch, &counters, policy);
            }
            next = rx.try_recv().ok();
        }
        write_batch(&mut *backend, &mut batch, &counters, policy);
        for done in waiters.drain(..) {
            let _ = done.send(());
        }
        if let Some(done) = closing.take() {
            rx.close();
            // Rows that raced with Close were accepted: write them too.
            while let Ok(command) = rx.try_recv() {
                if let Command::Row(row) = command {
                    batch.push(row);
                }
            }
            write_batch(&mut *backend, &mut batch, &counters, policy);
            end(&mut *backend, &counters);
            let _ = done.send(());
            return;
        }
    }
    write_batch(&mut *backend, &mut batch, &counters, policy);
    end(&mut *backend, &counters);
}
