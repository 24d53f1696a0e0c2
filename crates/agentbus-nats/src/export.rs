//! Export: every event of a local bus, published to JetStream ([`Exporter`]).
//!
//! A wildcard subscription (bounded queue, the overflow policy you choose) hands each event
//! to one publisher task, which publishes the wire JSON to `agentbus.<session>.<type>` with
//! `Nats-Msg-Id` = the event id and keeps up to `max_in_flight` publishes waiting for their
//! acknowledgement (pipelining). When the broker is away, acknowledgements stop, the window
//! fills, the handler stops taking events and the subscription's queue fills up to its
//! capacity: then the overflow policy applies — `Block` slows the senders, `DropOldest`
//! drops (counted in the subscriber's stats, logged, and a `bus.subscriber_lagged` event),
//! `Error` refuses sends. Publishes that failed are re-published in order once the broker
//! answers again; the server drops the ones it already had (same message id).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use agentbus::{EventManager, Overflow, SubscriptionHandle};
use agentbus_events::DynEvent;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind};
use bytes::Bytes;
use futures::Future;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::bus;
use crate::error::NatsError;
use crate::node::{NODE_HEADER, Node};
use crate::subject::{event_subject, type_matches};

/// What to export and how much to buffer.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// The bus subscriber's name (default `nats-export`).
    pub subscriber: String,
    /// Events buffered in the subscription's queue while the broker is slow or away
    /// (default 8192).
    pub capacity: usize,
    /// What happens when that buffer is full (default `Block`: senders wait).
    pub overflow: Overflow,
    /// Publishes waiting for their acknowledgement at most (default 256).
    pub max_in_flight: usize,
    /// Only these type patterns (`plugin.*`, `react.>`, `react.llm_call_end`); empty: all.
    pub types: Vec<String>,
    /// Only this session; `None`: all (session-less events included).
    pub session: Option<String>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            subscriber: "nats-export".into(),
            capacity: agentbus::DEFAULT_CAPACITY,
            overflow: Overflow::Block,
            max_in_flight: 256,
            types: Vec::new(),
            session: None,
        }
    }
}

/// The exporter's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Events taken from the bus for export.
    pub accepted: u64,
    /// Events acknowledged by JetStream (stored, or already stored: see `duplicates`).
    pub acked: u64,
    /// Acknowledged as a duplicate of a message id the stream already had.
    pub duplicates: u64,
    /// Not exported by choice: filtered out, or imported from NATS (no echo).
    pub skipped: u64,
    /// Refused for good (could not be encoded, or larger than the server's max payload);
    /// each one is logged.
    pub rejected: u64,
    /// Publishes sent again after a failure (broker away, timeout).
    pub republished: u64,
    /// Times the broker stopped acknowledging (each logged when it starts, every 30 s
    /// while it lasts, and when it ends).
    pub outages: u64,
    /// Events the bus dropped from the exporter's full queue (`Overflow::DropOldest`; the
    /// bus also logs it and sends a `bus.subscriber_lagged` event).
    pub dropped: u64,
    /// Events taken from the bus that never reached the publisher (the exporter was
    /// stopped, or closed before they were acknowledged); each logged.
    pub lost: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    acked: AtomicU64,
    duplicates: AtomicU64,
    skipped: AtomicU64,
    rejected: AtomicU64,
    republished: AtomicU64,
    outages: AtomicU64,
    lost: AtomicU64,
    progress: Notify,
}

impl Counters {
    fn snapshot(&self, dropped: u64) -> ExportStats {
        ExportStats {
            dropped,
            lost: self.lost.load(Relaxed),
            accepted: self.accepted.load(Relaxed),
            acked: self.acked.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            republished: self.republished.load(Relaxed),
            outages: self.outages.load(Relaxed),
        }
    }

    fn done(&self) -> u64 {
        self.acked.load(Relaxed) + self.rejected.load(Relaxed) + self.lost.load(Relaxed)
    }
}

/// The first wait before re-publishing after a failure; doubled per failure up to
/// [`RETRY_MAX`], back to this after an acknowledgement.
const RETRY_MIN: Duration = Duration::from_millis(100);
/// The longest wait between re-publishing attempts.
const RETRY_MAX: Duration = Duration::from_secs(2);
/// How often a lasting outage is logged again.
const WARN_EVERY: Duration = Duration::from_secs(30);

/// One event ready to publish.
struct Outgoing {
    subject: String,
    id: String,
    payload: Bytes,
}

type AckFuture =
    Pin<Box<dyn Future<Output = Result<jetstream::publish::PublishAck, PublishFailure>> + Send>>;

#[derive(Debug)]
enum PublishFailure {
    /// The broker did not take it (away, timeout, stream unavailable): try again.
    Transient(String),
    /// It can never be taken (too large for the server).
    Permanent(String),
}

fn classify(kind: PublishErrorKind, error: String) -> PublishFailure {
    match kind {
        PublishErrorKind::MaxPayloadExceeded => PublishFailure::Permanent(error),
        _ => PublishFailure::Transient(error),
    }
}

/// The subscription's side of the exporter: filters, encodes and hands each event to the
/// publisher task.
struct Intake {
    tx: mpsc::Sender<Outgoing>,
    node: Node,
    types: Vec<String>,
    session: Option<String>,
    counters: Arc<Counters>,
}

impl Intake {
    async fn take(&self, event: Arc<dyn DynEvent>) {
        let counters = &self.counters;
        let meta = event.meta();
        let wanted = (self.types.is_empty()
            || self
                .types
                .iter()
                .any(|p| type_matches(p, event.event_type())))
            && (self.session.is_none() || self.session.as_deref() == meta.session_id.as_deref());
        if !wanted || self.node.take_imported(&meta.event_id) {
            counters.skipped.fetch_add(1, Relaxed);
            counters.progress.notify_waiters();
            return;
        }
        let mut body = Vec::with_capacity(384);
        if let Err(error) = event.write_wire(&mut body) {
            tracing::error!(%error, "cannot export event: encoding failed");
            counters.accepted.fetch_add(1, Relaxed);
            counters.rejected.fetch_add(1, Relaxed);
            counters.progress.notify_waiters();
            return;
        }
        counters.accepted.fetch_add(1, Relaxed);
        let outgoing = Outgoing {
            subject: event_subject(meta.session_id.as_deref(), event.event_type()),
            id: meta.event_id.hyphenated().to_string(),
            payload: Bytes::from(body),
        };
        if self.tx.send(outgoing).await.is_err() {
            counters.lost.fetch_add(1, Relaxed);
            counters.progress.notify_waiters();
            tracing::error!("NATS exporter stopped; event not exported");
        }
    }
}

/// Exports a bus's events to JetStream. Dropping it stops exporting (events not yet
/// acknowledged are lost from this process's view; call [`close`](Self::close) first).
///
/// ```no_run
/// # async fn demo() -> Result<(), agentbus_nats::NatsError> {
/// use agentbus::EventManager;
/// use agentbus_nats::{Bridge, ExportOptions, NatsOptions};
/// let bus = EventManager::new();
/// let bridge = Bridge::connect(&NatsOptions::new("nats://127.0.0.1:4222")).await?;
/// let exporter = bridge.export(&bus, ExportOptions::default())?;
/// // ... the run sends events on `bus` ...
/// let stats = exporter.close(std::time::Duration::from_secs(10)).await?;
/// println!("{} events in JetStream", stats.acked);
/// # Ok(()) }
/// ```
pub struct Exporter {
    bus: EventManager,
    subscription: Option<SubscriptionHandle>,
    counters: Arc<Counters>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Exporter {
    pub(crate) fn start(
        bus: &EventManager,
        js: jetstream::Context,
        node: Node,
        options: ExportOptions,
    ) -> Result<Self, NatsError> {
        if options.max_in_flight == 0 {
            return Err(NatsError::Config("max_in_flight must be at least 1".into()));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| NatsError::Config("an exporter starts inside a tokio runtime".into()))?;
        let counters = Arc::new(Counters::default());
        // Small: the subscription's queue is the buffer; this only decouples the handler.
        let (tx, rx) = mpsc::channel::<Outgoing>(64);
        let task = runtime.spawn(publish_loop(
            js,
            node.clone(),
            rx,
            options.max_in_flight,
            counters.clone(),
        ));
        let intake = Arc::new(Intake {
            tx,
            node,
            types: options.types,
            session: options.session,
            counters: counters.clone(),
        });
        let subscription = bus::subscribe_all(
            bus,
            &options.subscriber,
            options.capacity,
            options.overflow,
            move |event: Arc<dyn DynEvent>| {
                let intake = Arc::clone(&intake);
                async move { intake.take(event).await }
            },
        )?;
        Ok(Self {
            bus: bus.clone(),
            subscription: Some(subscription),
            counters,
            task: Some(task),
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> ExportStats {
        let dropped = self.subscription.as_ref().map_or(0, |s| s.stats().dropped);
        self.counters.snapshot(dropped)
    }

    /// Events sent on the bus that the exporter has not finished with: still in its
    /// subscription's queue, or taken and not yet acknowledged (nor refused, nor lost).
    fn pending(&self) -> u64 {
        let queued = self
            .subscription
            .as_ref()
            .map_or(0, |s| s.stats().queue_depth as u64);
        let accepted = self.counters.accepted.load(Relaxed);
        queued + accepted.saturating_sub(self.counters.done())
    }

    /// Waits until every event sent on the bus before the call is acknowledged by
    /// JetStream (or rejected for good), at most `timeout`.
    pub async fn flush(&self, timeout: Duration) -> Result<ExportStats, NatsError> {
        let start = Instant::now();
        // The handler has taken everything queued before the call once the bus is idle.
        let _ = bus::idle(&self.bus, timeout).await;
        loop {
            let progress = self.counters.progress.notified();
            let pending = self.pending();
            if pending == 0 {
                return Ok(self.stats());
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(NatsError::FlushTimeout {
                    waited: timeout,
                    pending,
                });
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), progress).await;
        }
    }

    /// Flushes (as [`flush`](Self::flush)), then stops exporting.
    pub async fn close(mut self, timeout: Duration) -> Result<ExportStats, NatsError> {
        let result = self.flush(timeout).await;
        self.stop();
        result
    }

    fn stop(&mut self) {
        if let Some(subscription) = self.subscription.take() {
            subscription.unsubscribe();
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Hands one publish to the client (which writes it in order on its connection) and
/// returns the future of its acknowledgement.
async fn publish(js: &jetstream::Context, node: &Node, out: &Outgoing) -> AckFuture {
    let mut headers = HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, out.id.as_str());
    headers.insert(NODE_HEADER, node.id());
    match js
        .publish_with_headers(out.subject.clone(), headers, out.payload.clone())
        .await
    {
        Ok(ack) => {
            Box::pin(async move { ack.await.map_err(|e| classify(e.kind(), e.to_string())) })
        }
        Err(e) => {
            let failure = classify(e.kind(), e.to_string());
            Box::pin(async move { Err(failure) })
        }
    }
}

/// The publisher task: keeps up to `max_in_flight` publishes waiting for acks, in order.
async fn publish_loop(
    js: jetstream::Context,
    node: Node,
    mut rx: mpsc::Receiver<Outgoing>,
    max_in_flight: usize,
    counters: Arc<Counters>,
) {
    let mut window: VecDeque<(Outgoing, AckFuture)> = VecDeque::with_capacity(max_in_flight);
    let mut open = true;
    let mut failing_since: Option<Instant> = None;
    let mut last_warning = Instant::now();
    let mut backoff = RETRY_MIN;
    loop {
        let room = open && window.len() < max_in_flight;
        if !room && window.is_empty() {
            return;
        }
        enum Step {
            Ack(Result<jetstream::publish::PublishAck, PublishFailure>),
            New(Option<Outgoing>),
        }
        let step = {
            let front = window.front_mut().map(|(_, ack)| ack);
            let waiting = front.is_some();
            tokio::select! {
                biased;
                ack = async {
                    match front {
                        Some(ack) => ack.await,
                        None => std::future::pending().await,
                    }
                }, if waiting => Step::Ack(ack),
                next = rx.recv(), if room => Step::New(next),
            }
        };
        match step {
            Step::New(Some(out)) => {
                let ack = publish(&js, &node, &out).await;
                window.push_back((out, ack));
            }
            Step::New(None) => open = false,
            Step::Ack(Ok(ack)) => {
                window.pop_front();
                if ack.duplicate {
                    counters.duplicates.fetch_add(1, Relaxed);
                }
                counters.acked.fetch_add(1, Relaxed);
                counters.progress.notify_waiters();
                backoff = RETRY_MIN;
                if let Some(since) = failing_since.take() {
                    tracing::warn!(
                        after = ?since.elapsed(),
                        "NATS JetStream acknowledges again; export resumed"
                    );
                }
            }
            Step::Ack(Err(PublishFailure::Permanent(error))) => {
                if let Some((out, _)) = window.pop_front() {
                    tracing::error!(subject = %out.subject, event_id = %out.id, %error, "JetStream refused the event for good; not exported");
                }
                counters.rejected.fetch_add(1, Relaxed);
                counters.progress.notify_waiters();
            }
            Step::Ack(Err(PublishFailure::Transient(error))) => {
                match failing_since {
                    None => {
                        failing_since = Some(Instant::now());
                        last_warning = Instant::now();
                        counters.outages.fetch_add(1, Relaxed);
                        tracing::warn!(
                            %error,
                            waiting = window.len(),
                            "NATS JetStream is not acknowledging; export buffers and retries"
                        );
                    }
                    Some(since) if last_warning.elapsed() >= WARN_EVERY => {
                        last_warning = Instant::now();
                        tracing::warn!(
                            %error,
                            for_ = ?since.elapsed(),
                            waiting = window.len(),
                            "NATS JetStream is still not acknowledging; export buffers and retries"
                        );
                    }
                    Some(_) => {}
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RETRY_MAX);
                // Re-publishing while disconnected would only fill the client's write
                // buffer with copies that all go out on reconnect: wait for the connection.
                while js.client().connection_state() != async_nats::connection::State::Connected {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RETRY_MAX);
                }
                // Everything after the failed one may have failed too: send the whole
                // window again, in order. The server drops message ids it already stored.
                for (out, ack) in window.iter_mut() {
                    *ack = publish(&js, &node, out).await;
                }
                counters.republished.fetch_add(window.len() as u64, Relaxed);
            }
        }
    }
}
