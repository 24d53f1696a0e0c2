//! [`StoreSink`]: the store attached to a bus through a wildcard subscription.
//!
//! Every event the bus accepts is encoded by the subscription's handler (on the bus's
//! consumer task) and queued to the [`StoreWriter`], which writes batches on its own
//! thread. The subscription uses the bus's `Block` overflow policy: when the writer falls
//! behind, its queue and then the subscription's queue fill and senders wait
//! (`send(..).await`, as the agent's run loop publishes, or `blocking_send` on a plain
//! thread) or are told (`try_send` reports the `agentbus-store` subscriber in
//! `Sent::refused`) — nothing is dropped silently.
//!
//! **Silent types** (marked with `EventManager::silent`) are skipped unless
//! [`SinkOptions::store_silent`] is set; types listed in [`SinkOptions::skip_types`] are
//! always skipped.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use agentbus::{EventManager, Overflow, SubscribeOptions, SubscriptionHandle};
use agentbus_events::DynEvent;

use crate::error::{Result, StoreError};
use crate::writer::{StoreWriter, WriterReport};

/// The name of the store's subscription on the bus.
pub const SINK_SUBSCRIBER: &str = "agentbus-store";

/// How a [`StoreSink`] subscribes.
#[derive(Clone, Debug)]
pub struct SinkOptions {
    /// Store silent event types too (default false: skip them).
    pub store_silent: bool,
    /// Event types never stored.
    pub skip_types: HashSet<String>,
    /// Capacity of the subscription's queue on the bus (default 65,536).
    pub capacity: usize,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            store_silent: false,
            skip_types: HashSet::new(),
            capacity: 65_536,
        }
    }
}

/// A store writer fed by a bus (see the module documentation).
#[derive(Debug)]
pub struct StoreSink {
    writer: StoreWriter,
    subscription: SubscriptionHandle,
    bus: EventManager,
}

impl StoreSink {
    /// Subscribes `writer` to every event of `bus`. Call within a tokio runtime.
    pub fn attach(bus: &EventManager, writer: StoreWriter, options: SinkOptions) -> Result<Self> {
        let appender = writer.appender();
        let skip = Arc::new(options.skip_types);
        let subscribe = SubscribeOptions::new()
            .capacity(options.capacity.max(1))
            .overflow(Overflow::Block)
            .skip_silent(!options.store_silent);
        let subscription = bus
            .subscribe_with(
                SINK_SUBSCRIBER,
                subscribe,
                move |event: Arc<dyn DynEvent>| {
                    let appender = appender.clone();
                    let skip = Arc::clone(&skip);
                    async move {
                        if skip.contains(event.event_type()) {
                            return Ok(());
                        }
                        match appender.append(event.as_ref()).await {
                            // The writer gave up (and said so once) or was closed: the
                            // event is counted lost; an error per event would only flood
                            // the bus with exception events.
                            Err(StoreError::WriteFailed { .. } | StoreError::Closed) => Ok(()),
                            other => other,
                        }
                    }
                },
            )
            .map_err(|e| StoreError::Bus(e.to_string()))?;
        Ok(Self {
            writer,
            subscription,
            bus: bus.clone(),
        })
    }

    /// Where the events go.
    pub fn location(&self) -> &str {
        self.writer.location()
    }

    /// What the writer has done so far.
    pub fn report(&self) -> WriterReport {
        self.writer.report()
    }

    /// Waits (up to `timeout`) for the bus to deliver everything sent so far, then commits
    /// everything queued.
    pub async fn flush(&self, timeout: Duration) -> Result<WriterReport> {
        self.bus
            .wait(timeout)
            .await
            .map_err(|e| StoreError::Bus(e.to_string()))?;
        self.writer.flush().await
    }

    /// Waits (up to `timeout`) for the bus to deliver everything sent so far, stops the
    /// subscription, writes everything queued and reports.
    pub async fn close(self, timeout: Duration) -> Result<WriterReport> {
        let waited = self.bus.wait(timeout).await;
        self.subscription.unsubscribe();
        let report = self.writer.close().await?;
        waited.map_err(|e| StoreError::Bus(e.to_string()))?;
        Ok(report)
    }
}
