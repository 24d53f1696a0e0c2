//! The store behind the bus (feature `store`): a [`DurableConsumer`](crate::DurableConsumer)'s
//! batch written to an [`EventStore`] in one transaction, leaving out event ids the store
//! already holds, so a redelivery (a crash between commit and ack) adds nothing. This is
//! the body of `agentbus store-writer`.

use std::sync::Arc;

use agentbus_store::{EventStore, RowEncoder, StoreError};

use crate::Delivery;

/// Writes the events of `batch` (skipped messages left out) in one transaction and
/// returns how many were new. Acknowledge the batch only after this returns `Ok`; on an
/// error nothing was written and the batch should be delivered again (`nak`).
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
/// write_batch(&store, &RowEncoder::default(), &batch).await?;
/// for delivery in &batch {
///     delivery.ack().await?;
/// }
/// # Ok(()) }
/// ```
pub async fn write_batch(
    store: &Arc<EventStore>,
    encoder: &RowEncoder,
    batch: &[Delivery],
) -> Result<usize, StoreError> {
    let rows = batch
        .iter()
        .filter_map(|d| d.event.as_ref().ok())
        .map(|event| encoder.encode(event.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || store.append_rows_new(&rows))
        .await
        .map_err(|join| StoreError::Io {
            context: "appending a batch on a blocking thread",
            source: std::io::Error::other(join.to_string()),
        })?
}
