//! [`StoreWriter`]: appends events in batches on a thread of its own.
//!
//! Events are encoded by the caller ([`Appender::append`]) and queued on a bounded channel;
//! the writer thread takes everything queued (up to [`WriterOptions::max_batch`]) and writes
//! it in one transaction. When the queue is full, `append` waits (backpressure): an event is
//! never dropped silently. [`StoreWriter::flush`] returns once everything appended before it
//! is committed; [`StoreWriter::close`] flushes and stops the thread. If a batch cannot be
//! written (disk full, server gone), the loss is counted and every later `flush`/`close`
//! returns [`StoreError::WriteFailed`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use agentbus_events::DynEvent;
use tokio::sync::{mpsc, oneshot};

use crate::backend::Backend;
use crate::error::{Result, StoreError};
use crate::row::{AudioPolicy, EventRow, RowEncoder};

/// How a [`StoreWriter`] batches.
#[derive(Clone, Copy, Debug)]
pub struct WriterOptions {
    /// Events the queue holds before `append` waits (default 16,384).
    pub capacity: usize,
    /// Most events written in one transaction (default 8,192).
    pub max_batch: usize,
    /// What to do with PCM audio samples (default: leave them out).
    pub audio: AudioPolicy,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            capacity: 16_384,
            max_batch: 8_192,
            audio: AudioPolicy::OmitSamples,
        }
    }
}

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
    /// Encodes `event` and queues it, waiting while the queue is full.
    pub async fn append(&self, event: &dyn DynEvent) -> Result<()> {
        let row = self.encoder.encode(event)?;
        self.append_row(row).await
    }

    /// Queues an already encoded row, waiting while the queue is full.
    pub async fn append_row(&self, row: EventRow) -> Result<()> {
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
    /// Starts a writer thread that owns `backend`.
    pub fn start(backend: Box<dyn Backend>, options: WriterOptions) -> Result<Self> {
        let (tx, rx) = mpsc::channel(options.capacity.max(1));
        let counters = Arc::new(Counters::default());
        let location = backend.location();
        let thread_counters = Arc::clone(&counters);
        let max_batch = options.max_batch.max(1);
        let thread = std::thread::Builder::new()
            .name("agentbus-store-writer".into())
            .spawn(move || run(backend, rx, thread_counters, max_batch))
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

fn write_batch(backend: &mut dyn Backend, batch: &mut Vec<EventRow>, counters: &Counters) {
    if batch.is_empty() {
        return;
    }
    match backend.append(batch) {
        Ok(seqs) => {
            counters
                .written
                .fetch_add(batch.len() as u64, Ordering::AcqRel);
            counters.batches.fetch_add(1, Ordering::AcqRel);
            counters.last_seq.store(*seqs.end(), Ordering::Release);
        }
        Err(error) => {
            tracing::error!(%error, events = batch.len(), "store writer could not write a batch");
            counters
                .lost
                .fetch_add(batch.len() as u64, Ordering::AcqRel);
            let mut first = counters
                .first_error
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            first.get_or_insert_with(|| error.to_string());
        }
    }
    batch.clear();
}

fn run(
    mut backend: Box<dyn Backend>,
    mut rx: mpsc::Receiver<Command>,
    counters: Arc<Counters>,
    max_batch: usize,
) {
    let mut batch = Vec::with_capacity(max_batch.min(65_536));
    let mut waiters = Vec::new();
    let mut closing = None;
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Row(row) => batch.push(row),
                Command::Flush(done) => {
                    // Everything queued before the flush is in `batch`: write it now.
                    write_batch(&mut *backend, &mut batch, &counters);
                    waiters.push(done);
                }
                Command::Close(done) => {
                    closing = Some(done);
                    break;
                }
            }
            if batch.len() >= max_batch {
                write_batch(&mut *backend, &mut batch, &counters);
            }
            next = rx.try_recv().ok();
        }
        write_batch(&mut *backend, &mut batch, &counters);
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
            write_batch(&mut *backend, &mut batch, &counters);
            let _ = done.send(());
            return;
        }
    }
    write_batch(&mut *backend, &mut batch, &counters);
}
