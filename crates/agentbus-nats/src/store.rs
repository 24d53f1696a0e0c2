//! The store behind the bus (feature `store`): [`write_all`] writes what a
//! [`DurableConsumer`] delivers to an [`EventStore`], a batch per transaction, leaving out
//! event ids the store already holds, so a redelivery (a crash between commit and ack) adds
//! nothing. `agentbus store-writer` runs it.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentbus_store::{EventRow, EventStore, RowEncoder, StoreError};
use tokio::sync::mpsc;

use crate::{Delivery, DurableConsumer};

/// A batch's events as store rows.
struct EncodedBatch {
    rows: Vec<EventRow>,
    unencodable: usize,
}

fn encode_batch(encoder: &RowEncoder, batch: &[Delivery]) -> EncodedBatch {
    let mut rows = Vec::with_capacity(batch.len());
    let mut unencodable = 0;
    for delivery in batch {
        let Ok(event) = &delivery.event else { continue };
        match encoder.encode_received(event.as_ref(), &delivery.message.payload) {
            Ok(row) => rows.push(row),
            Err(error) => {
                unencodable += 1;
                tracing::error!(%error, stream_sequence = delivery.stream_sequence, "an event cannot be encoded for the store; left out");
            }
        }
    }
    EncodedBatch { rows, unencodable }
}

/// Appends `rows` in one transaction, leaving out ids the store holds; returns how many
/// were written. The append runs on a blocking thread (SQLite and the PostgreSQL client
/// block).
async fn append_new(
    store: &Arc<EventStore>,
    rows: &Arc<Vec<EventRow>>,
) -> Result<usize, StoreError> {
    let store = Arc::clone(store);
    let rows = Arc::clone(rows);
    tokio::task::spawn_blocking(move || store.append_rows_new(&rows))
        .await
        .map_err(|join| StoreError::Io {
            context: "appending a batch on a blocking thread",
            source: std::io::Error::other(join.to_string()),
        })?
}

/// The first pause after a failed append; it doubles up to [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(500);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// Batches a store writer's consumer lets out at once by default (see
/// [`max_ack_pending_for`]).
pub const BATCHES_IN_FLIGHT: usize = 4;

/// The `max_ack_pending` for a store writer's consumer that writes `batch` events per
/// transaction: [`BATCHES_IN_FLIGHT`] batches, so the next batches are on their way while
/// one is written. (With one batch, the server sends nothing new until that batch's
/// acknowledgements arrive, and a writer was idle most of the time: 49,000 events/s against
/// 68,000 with four, in `agentbus bench nats` on 2 cores.)
///
/// ```
/// assert_eq!(agentbus_nats::store::max_ack_pending_for(1000), 4000);
/// ```
pub fn max_ack_pending_for(batch: usize) -> i64 {
    i64::try_from(batch.saturating_mul(BATCHES_IN_FLIGHT)).unwrap_or(i64::MAX)
}

/// How [`write_all`] runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WriteOptions {
    /// Events per transaction at most (default 1000).
    pub batch: usize,
    /// How long one fetch waits for its first message (default 500 ms).
    pub fetch_wait: Duration,
    /// Stop after this long without an event (default: never).
    pub exit_when_idle: Option<Duration>,
    /// Stop once this many events are written (default: never).
    pub max_events: Option<u64>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            batch: 1000,
            fetch_wait: Duration::from_millis(500),
            exit_when_idle: None,
            max_events: None,
        }
    }
}

/// What [`write_all`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteTotals {
    /// Events written.
    pub written: u64,
    /// Events the store held already (redeliveries), left out.
    pub already_stored: u64,
    /// Events that could not be encoded for the store, left out (each logged).
    pub unencodable: u64,
    /// Messages that were not events (unknown type, newer schema, malformed; see the
    /// consumer's [`ImportStats`](crate::ImportStats)), terminated.
    pub skipped: u64,
    /// Failed attempts to write a batch (each batch is tried again, in place, until it is
    /// written or the writer is stopped).
    pub failed_batches: u64,
}

/// The store writer: writes every event `consumer` delivers to `store`, a batch per
/// transaction, and acknowledges each batch only after it committed. The next batch is
/// fetched and encoded while one is written, and acknowledged while the next is written.
///
/// **Order.** Batches are written in the order they were fetched, and a batch that fails is
/// tried again in place (its `ack_wait` kept from running out meanwhile) rather than handed
/// back, so nothing fetched after it can overtake it. With one writer on the consumer,
/// each session is stored in stream order, across crashes too: a writer that finds events
/// delivered and not acknowledged (its predecessor died holding them) waits `ack_wait` for
/// them to come back before it fetches newer ones. Several writers sharing a consumer
/// share its work, and batches they hold at the same time may commit in either order.
///
/// Runs until `stop` resolves (the batch in hand is finished first, or handed back if the
/// store is failing), or until [`WriteOptions`] says. Fetch errors (the broker away) are
/// logged and retried.
///
/// ```no_run
/// # async fn demo(bridge: agentbus_nats::Bridge) -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use agentbus_nats::{store::{write_all, WriteOptions}, DurableOptions};
/// use agentbus_store::EventStore;
///
/// let store = Arc::new(EventStore::open("sqlite://agentbus.db")?);
/// let consumer = bridge
///     .durable(agentbus_events::Registry::catalogue(), DurableOptions::new("agentbus-store"))
///     .await?;
/// let consumer = Arc::new(consumer);
/// let totals = write_all(consumer.clone(), store, WriteOptions::default(), async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await;
/// println!("{} events written, {:?} skipped", totals.written, consumer.stats());
/// # Ok(()) }
/// ```
pub async fn write_all(
    consumer: Arc<DurableConsumer>,
    store: Arc<EventStore>,
    options: WriteOptions,
    stop: impl Future<Output = ()>,
) -> WriteTotals {
    let batch_size = options.batch.max(1);
    // Events a writer that died took and never acknowledged come back after `ack_wait`;
    // fetching before then would store newer events ahead of them.
    match consumer.unacknowledged().await {
        Ok((0, _)) => {}
        Ok((pending, ack_wait)) => {
            tracing::info!(
                pending,
                ?ack_wait,
                "waiting for unacknowledged events to be delivered again before newer ones"
            );
            tokio::time::sleep(ack_wait + Duration::from_millis(100)).await;
        }
        Err(error) => {
            tracing::warn!(%error, "cannot tell whether events are waiting for redelivery")
        }
    }
    let (batches, mut incoming) = mpsc::channel::<(Vec<Delivery>, EncodedBatch)>(1);
    let fetcher = tokio::spawn(fetch_batches(
        consumer,
        batch_size,
        options.fetch_wait,
        batches,
    ));
    let mut totals = WriteTotals::default();
    let mut last_event = Instant::now();
    let mut acks: Option<tokio::task::JoinHandle<()>> = None;
    tokio::pin!(stop);
    loop {
        if options.max_events.is_some_and(|max| totals.written >= max) {
            break;
        }
        let batch = tokio::select! {
            biased;
            () = &mut stop => break,
            batch = incoming.recv() => batch,
        };
        let Some((batch, encoded)) = batch else {
            break;
        };
        if batch.is_empty() {
            if options
                .exit_when_idle
                .is_some_and(|limit| last_event.elapsed() >= limit)
            {
                break;
            }
            continue;
        }
        last_event = Instant::now();
        let EncodedBatch { rows, unencodable } = encoded;
        let encoded = rows.len();
        let rows = Arc::new(rows);
        let mut pause = FIRST_RETRY_PAUSE;
        let written = loop {
            match append_new(&store, &rows).await {
                Ok(written) => break Some(written),
                Err(error) => {
                    totals.failed_batches += 1;
                    tracing::error!(%error, events = batch.len(), retry_in = ?pause, "writing a batch to the store failed; trying it again");
                    in_progress(&batch).await;
                    tokio::select! {
                        biased;
                        () = &mut stop => break None,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                }
            }
        };
        let Some(written) = written else {
            // Stopped while the store was failing: the batch comes back at once.
            hand_back(&batch).await;
            break;
        };
        totals.written += written as u64;
        totals.already_stored += (encoded - written) as u64;
        totals.unencodable += unencodable as u64;
        totals.skipped += batch.iter().filter(|d| d.event.is_err()).count() as u64;
        // Committed: now, and only now, acknowledge (while the next batch is written).
        let previous = acks.take();
        acks = Some(tokio::spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            acknowledge(&batch).await;
        }));
    }
    fetcher.abort();
    if let Some(acks) = acks {
        let _ = acks.await;
    }
    // A batch fetched and not written comes back at once instead of after `ack_wait`.
    incoming.close();
    while let Some((batch, _)) = incoming.recv().await {
        hand_back(&batch).await;
    }
    totals
}

/// Fetches batches in stream order and hands them over encoded for the store (an empty
/// one when none came in time), until the receiver is gone.
async fn fetch_batches(
    consumer: Arc<DurableConsumer>,
    batch: usize,
    wait: Duration,
    out: mpsc::Sender<(Vec<Delivery>, EncodedBatch)>,
) {
    let encoder = RowEncoder::default();
    let mut failures = 0u32;
    loop {
        match consumer.next_batch(batch, wait).await {
            Ok(deliveries) => {
                failures = 0;
                let encoded = encode_batch(&encoder, &deliveries);
                if out.send((deliveries, encoded)).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                // The server is away or restarting: the client reconnects; try again.
                failures += 1;
                if failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(%error, failures, "fetching from NATS failed; retrying");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                if out.is_closed() {
                    return;
                }
            }
        }
    }
}

async fn acknowledge(batch: &[Delivery]) {
    for delivery in batch {
        if let Err(error) = delivery.ack().await {
            tracing::warn!(%error, "ack failed (the event will come again and be left out)");
        }
    }
}

async fn in_progress(batch: &[Delivery]) {
    for delivery in batch {
        let _ = delivery.in_progress().await;
    }
}

async fn hand_back(batch: &[Delivery]) {
    for delivery in batch {
        let _ = delivery.nak().await;
    }
}
