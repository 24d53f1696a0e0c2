//! [`EventFeed`]: the store's events as they are committed, fanned out to SSE clients.
//!
//! Every event `/events` sends is read from the store, so its SSE `id:` is the event's
//! store position (`seq`: 1, 2, 3, … without gaps) and a client that reconnects with
//! `Last-Event-ID: k` gets exactly `k+1, k+2, …` (filtered as it asked): nothing lost,
//! nothing twice. Events written by other processes into the same store (a shared
//! PostgreSQL, or a NATS store-writer) appear too.
//!
//! One tail task reads new rows after the last position it saw — woken by a bus
//! subscriber the moment this process publishes, and every 20 ms otherwise (the store
//! writer commits shortly after publication; another process gives no signal) — and
//! broadcasts them on a bounded ring. Clients never slow the agent: the ring never
//! waits. A client that falls more than the ring behind (it stopped reading) is told
//! with an `event: lagged` frame and, by [`LagPolicy`], either catches up from the
//! store or is disconnected.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agentbus::{EventManager, Overflow, SubscribeOptions, SubscriptionHandle};
use agentbus_events::DynEvent;
use agentbus_store::{EventQuery, EventStore, StoredEvent};
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

/// How often the tail reads the store when nothing woke it.
const TAIL_INTERVAL: Duration = Duration::from_millis(20);
/// Rows read per store query.
pub(crate) const PAGE: u64 = 1024;

/// One stored event, ready to send.
#[derive(Debug)]
pub struct FeedItem {
    /// Its store position (the SSE `id:`).
    pub seq: u64,
    /// Its session.
    pub session_id: Option<String>,
    /// Its `type`.
    pub event_type: String,
    /// Its wire JSON.
    pub body: String,
}

impl From<StoredEvent> for FeedItem {
    fn from(event: StoredEvent) -> Self {
        Self {
            seq: event.seq,
            session_id: event.row.session_id,
            event_type: event.row.event_type,
            body: event.row.body,
        }
    }
}

/// What to do with an SSE client that fell more than the ring behind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LagPolicy {
    /// Re-read what it missed from the store and go on (nothing is lost).
    #[default]
    CatchUp,
    /// Send the `lagged` frame and close the stream; the client may reconnect with its
    /// `Last-Event-ID`.
    Disconnect,
}

/// Counters of the feed, for `/metrics`.
#[derive(Debug, Default)]
pub struct FeedCounters {
    /// SSE clients connected now.
    pub clients: AtomicU64,
    /// Events sent to clients, over all clients.
    pub sent: AtomicU64,
    /// Times a client fell behind the ring.
    pub lagged: AtomicU64,
    /// Clients disconnected by the lag policy.
    pub dropped: AtomicU64,
}

/// The store tail and its broadcast ring (see the module documentation).
#[derive(Debug)]
pub struct EventFeed {
    store: Arc<EventStore>,
    ring: broadcast::Sender<Arc<FeedItem>>,
    position: Arc<AtomicU64>,
    counters: Arc<FeedCounters>,
    stop: CancellationToken,
    subscription: Option<SubscriptionHandle>,
}

impl Drop for EventFeed {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(subscription) = self.subscription.take() {
            let _ = subscription.unsubscribe();
        }
    }
}

impl EventFeed {
    /// Starts tailing `store` (from its current end), woken by events sent on `bus`;
    /// the ring holds `capacity` events. Call inside a tokio runtime.
    pub fn start(
        bus: &EventManager,
        store: Arc<EventStore>,
        capacity: usize,
    ) -> Result<Self, agentbus_store::StoreError> {
        let start = store.last_seq()?;
        let (ring, _) = broadcast::channel(capacity.max(16));
        let position = Arc::new(AtomicU64::new(start));
        let notify = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let wake = notify.clone();
        // A ping per event; the queue may drop pings (the tail reads everything anyway).
        let subscribed = bus.subscribe_with(
            "agentbus-serve-feed",
            SubscribeOptions::new()
                .capacity(8192)
                .overflow(Overflow::DropOldest),
            move |_event: Arc<dyn DynEvent>| {
                let wake = wake.clone();
                async move { wake.notify_one() }
            },
        );
        let subscription = match subscribed {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::warn!(%error, "the feed could not subscribe to the bus; it polls the store only");
                None
            }
        };
        // A page never fills more than half the ring, so a client reading along is not
        // lagged by one burst.
        let page = PAGE.min(capacity.max(16) as u64 / 2).max(1);
        tokio::spawn(tail(
            store.clone(),
            page,
            ring.clone(),
            position.clone(),
            notify,
            stop.clone(),
        ));
        Ok(Self {
            store,
            ring,
            position,
            counters: Arc::default(),
            stop,
            subscription,
        })
    }

    /// The store the feed reads.
    pub fn store(&self) -> &Arc<EventStore> {
        &self.store
    }

    /// The last store position broadcast.
    pub fn position(&self) -> u64 {
        self.position.load(Ordering::Acquire)
    }

    /// A receiver of everything broadcast from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<FeedItem>> {
        self.ring.subscribe()
    }

    /// The feed's counters.
    pub fn counters(&self) -> &Arc<FeedCounters> {
        &self.counters
    }
}

/// Reads `query` from the store off the async threads.
pub(crate) async fn read(
    store: &Arc<EventStore>,
    query: EventQuery,
) -> Result<Vec<StoredEvent>, String> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.events(&query))
        .await
        .map_err(|e| format!("the store reader stopped: {e}"))?
        .map_err(|e| e.to_string())
}

async fn tail(
    store: Arc<EventStore>,
    page: u64,
    ring: broadcast::Sender<Arc<FeedItem>>,
    position: Arc<AtomicU64>,
    notify: Arc<Notify>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = notify.notified() => {}
            () = tokio::time::sleep(TAIL_INTERVAL) => {}
        }
        loop {
            let after = position.load(Ordering::Acquire);
            let query = EventQuery {
                after_seq: Some(after),
                limit: Some(page),
                ..EventQuery::default()
            };
            let rows = match read(&store, query).await {
                Ok(rows) => rows,
                Err(error) => {
                    tracing::warn!(%error, "reading new events from the store");
                    break;
                }
            };
            let full = rows.len() as u64 == page;
            for row in rows {
                let seq = row.seq;
                // No receivers is fine: nobody is watching.
                let _ = ring.send(Arc::new(FeedItem::from(row)));
                position.store(seq, Ordering::Release);
            }
            if !full {
                break;
            }
        }
    }
}
