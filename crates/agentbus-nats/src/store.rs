//! The store behind the bus (feature `store`): a [`DurableConsumer`](crate::DurableConsumer)'s
//! batch written to an [`EventStore`] in one transaction, leaving out event ids the store
//! already holds, so a redelivery (a crash between commit and ack) adds nothing. This is
//! the body of `agentbus store-writer`.

use std::sync::Arc;

use agentbus_store::{EventStore, RowEncoder, StoreError};

use crate::Delivery;

/// What [`write_batch`] did with a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchWritten {
    /// Events the store did not hold yet, now written.
    pub written: usize,
    /// Events the store held already (a redelivery), left out.
    pub already_stored: usize,
    /// Events that could not be encoded for the store (each logged), left out: written
    /// again they would fail again.
    pub unencodable: usize,
}

/// Writes the events of `batch` (skipped messages left out) in one transaction.
/// Acknowledge the batch only after this returns `Ok`; on an error nothing was written and
/// the batch should be delivered again (`nak`).
///
/// The append runs on a blocking thread (SQLite and the PostgreSQL client block).
///
/// ```no_run
/// # async fn demo(bridge: agentbus_nats::Bridge) -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use agentbus_nats::{store::write_batch, DurableOptions};
/// use agentbus_store::{EventStore, RowEncoder};
///
/// let store = Arc::new(EventStore::open("sqlite://agentbus.db")?);
/// let consumer = bridge
///     .durable(agentbus_events::Registry::catalogue(), DurableOptions::new("my-writer"))
///     .await?;
/// let batch = consumer.next_batch(1000, Duration::from_millis(500)).await?;
/// let done = write_batch(&store, &RowEncoder::default(), &batch).await?;
/// println!("{} new, {} already stored", done.written, done.already_stored);
/// for delivery in &batch {
///     delivery.ack().await?;
/// }
/// # Ok(()) }
/// ```
pub async fn write_batch(
    store: &Arc<EventStore>,
    encoder: &RowEncoder,
    batch: &[Delivery],
) -> Result<BatchWritten, StoreError> {
    let mut rows = Vec::with_capacity(batch.len());
    let mut unencodable = 0;
    for delivery in batch {
        let Ok(event) = &delivery.event else { continue };
        match encoder.encode(event.as_ref()) {
            Ok(row) => rows.push(row),
            Err(error) => {
                unencodable += 1;
                tracing::error!(%error, stream_sequence = delivery.stream_sequence, "an event cannot be encoded for the store; left out");
            }
        }
    }
    let encoded = rows.len();
    let store = Arc::clone(store);
    let written = tokio::task::spawn_blocking(move || store.append_rows_new(&rows))
        .await
        .map_err(|join| StoreError::Io {
            context: "appending a batch on a blocking thread",
            source: std::io::Error::other(join.to_string()),
        })??;
    Ok(BatchWritten {
        written,
        already_stored: encoded - written,
        unencodable,
    })
}
