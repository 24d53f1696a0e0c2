//! Import: events from the stream, decoded with the `Registry` and published typed on a
//! local bus ([`LiveImport`], an ordered ephemeral consumer), or handed to work that must
//! see everything and acknowledges after it is done ([`DurableConsumer`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use agentbus::EventManager;
use agentbus_events::{DecodeError, DynEvent, Registry};
use async_nats::jetstream::{self, AckKind, consumer};
use futures::StreamExt;
use tokio::task::JoinHandle;

use crate::bus;
use crate::error::NatsError;
use crate::node::{NODE_HEADER, Node};

/// Where an import starts in the stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartAt {
    /// Only events published from now on (a live view).
    #[default]
    New,
    /// Every event the stream holds.
    All,
    /// From this stream sequence on.
    Sequence(u64),
}

impl StartAt {
    fn deliver_policy(self) -> consumer::DeliverPolicy {
        match self {
            StartAt::New => consumer::DeliverPolicy::New,
            StartAt::All => consumer::DeliverPolicy::All,
            StartAt::Sequence(start_sequence) => {
                consumer::DeliverPolicy::ByStartSequence { start_sequence }
            }
        }
    }
}

/// Why a message was skipped instead of imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Skip {
    /// Exported by this node (no echo).
    #[error("exported by this node")]
    Own,
    /// The `type` is not registered here (a newer producer, or an application type).
    #[error("{0}")]
    UnknownType(DecodeError),
    /// Written by a newer wire format than this build reads.
    #[error("{0}")]
    NewerSchema(DecodeError),
    /// Not agentbus wire JSON (or a field is wrong).
    #[error("{0}")]
    Malformed(DecodeError),
}

/// Import counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportStats {
    /// Events decoded and delivered (to the bus, or handed out by a durable consumer).
    pub imported: u64,
    /// Skipped: exported by this node.
    pub own: u64,
    /// Skipped: type not registered here.
    pub unknown_type: u64,
    /// Skipped: newer schema version.
    pub newer_schema: u64,
    /// Skipped: not agentbus wire JSON.
    pub malformed: u64,
}

#[derive(Debug, Default)]
pub(crate) struct ImportCounters {
    imported: AtomicU64,
    own: AtomicU64,
    unknown_type: AtomicU64,
    newer_schema: AtomicU64,
    malformed: AtomicU64,
}

impl ImportCounters {
    fn snapshot(&self) -> ImportStats {
        ImportStats {
            imported: self.imported.load(Relaxed),
            own: self.own.load(Relaxed),
            unknown_type: self.unknown_type.load(Relaxed),
            newer_schema: self.newer_schema.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
        }
    }

    /// Counts the outcome and logs a skip that is not our own echo.
    fn count(&self, outcome: &Result<Box<dyn DynEvent>, Skip>, subject: &str) {
        let counter = match outcome {
            Ok(_) => &self.imported,
            Err(Skip::Own) => &self.own,
            Err(Skip::UnknownType(_)) => &self.unknown_type,
            Err(Skip::NewerSchema(_)) => &self.newer_schema,
            Err(Skip::Malformed(_)) => &self.malformed,
        };
        counter.fetch_add(1, Relaxed);
        if let Err(skip @ (Skip::UnknownType(_) | Skip::NewerSchema(_) | Skip::Malformed(_))) =
            outcome
        {
            tracing::warn!(subject, reason = %skip, "skipped a message from NATS");
        }
    }
}

/// Decodes one message: skipped when `node` exported it, else the registry's verdict.
pub(crate) fn decode(
    registry: &Registry,
    node: &Node,
    message: &async_nats::Message,
) -> Result<Box<dyn DynEvent>, Skip> {
    if let Some(headers) = &message.headers
        && headers.get(NODE_HEADER).map(|v| v.as_str()) == Some(node.id())
    {
        return Err(Skip::Own);
    }
    registry.decode(&message.payload).map_err(|e| match e {
        DecodeError::UnknownType { .. } => Skip::UnknownType(e),
        DecodeError::UnsupportedVersion { .. } => Skip::NewerSchema(e),
        _ => Skip::Malformed(e),
    })
}

/// A live view: an ordered ephemeral consumer whose events are published, typed, on a
/// local bus. It never acknowledges (ordered consumers need none) and restarts itself
/// where it was after a reconnect. Dropping it stops the import.
pub struct LiveImport {
    counters: Arc<ImportCounters>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for LiveImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveImport")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl LiveImport {
    pub(crate) async fn start(
        bus: &EventManager,
        stream: &jetstream::stream::Stream,
        node: Node,
        filter_subject: String,
        start: StartAt,
    ) -> Result<Self, NatsError> {
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject,
                deliver_policy: start.deliver_policy(),
                ..Default::default()
            })
            .await
            .map_err(|e| NatsError::jetstream("creating an ordered consumer", e))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| NatsError::jetstream("starting an ordered consumer", e))?;
        let counters = Arc::new(ImportCounters::default());
        let registry = bus::registry(bus);
        let bus = bus.clone();
        let task_counters = counters.clone();
        let task = tokio::spawn(async move {
            while let Some(message) = messages.next().await {
                let message = match message {
                    Ok(m) => m,
                    Err(error) => {
                        tracing::warn!(%error, "NATS live import: consumer error");
                        continue;
                    }
                };
                let outcome = decode(&registry, &node, &message);
                task_counters.count(&outcome, message.subject.as_str());
                if let Ok(event) = outcome {
                    node.mark_imported(event.meta().event_id);
                    if let Err(error) = bus::publish(&bus, event).await {
                        tracing::warn!(%error, "NATS live import: the bus refused an event");
                    }
                }
            }
        });
        Ok(Self { counters, task })
    }

    /// The counters so far.
    pub fn stats(&self) -> ImportStats {
        self.counters.snapshot()
    }
}

impl Drop for LiveImport {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One message of a durable consumer: its decoded event (or why it was skipped), to be
/// acknowledged once the work is done.
#[derive(Debug)]
pub struct Delivery {
    /// The event, or why it cannot be imported.
    pub event: Result<Box<dyn DynEvent>, Skip>,
    /// Its sequence in the stream.
    pub stream_sequence: u64,
    pub(crate) message: jetstream::Message,
}

impl Delivery {
    /// Acknowledges: the work is done, the server will not deliver it again. A skipped
    /// message is terminated instead (it would be skipped again on every redelivery).
    pub async fn ack(&self) -> Result<(), NatsError> {
        let kind = if self.event.is_ok() {
            AckKind::Ack
        } else {
            AckKind::Term
        };
        bounded("acknowledging", self.message.ack_with(kind)).await
    }

    /// Tells the server the work is still going on: its `ack_wait` starts again, so it is
    /// not delivered a second time meanwhile.
    pub async fn in_progress(&self) -> Result<(), NatsError> {
        bounded(
            "reporting progress",
            self.message.ack_with(AckKind::Progress),
        )
        .await
    }

    /// Tells the server to deliver it again (the work failed).
    pub async fn nak(&self) -> Result<(), NatsError> {
        bounded(
            "negative acknowledging",
            self.message.ack_with(AckKind::Nak(None)),
        )
        .await
    }
}

/// How long an acknowledgement may take to be written to the connection.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// How long reading a stream back (`read_all`) waits for the next message before it
/// stops with what it has (messages may expire or be purged while it reads).
const READ_WAIT: Duration = Duration::from_secs(5);

async fn bounded<E: std::fmt::Display>(
    operation: &'static str,
    work: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), NatsError> {
    match tokio::time::timeout(ACK_TIMEOUT, work).await {
        Ok(result) => result.map_err(|e| NatsError::jetstream(operation, e)),
        Err(_) => Err(NatsError::jetstream(
            operation,
            format!("no answer within {ACK_TIMEOUT:?}"),
        )),
    }
}

/// A durable pull consumer: sees every event once the work acknowledges it, survives
/// restarts (of the process and of the server), and may be shared by several processes,
/// each message going to one of them. An unacknowledged message is delivered again after
/// `ack_wait`.
pub struct DurableConsumer {
    consumer: consumer::PullConsumer,
    registry: Registry,
    node: Option<Node>,
    counters: Arc<ImportCounters>,
}

impl std::fmt::Debug for DurableConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableConsumer")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Settings of a durable consumer.
#[derive(Clone, Debug)]
pub struct DurableOptions {
    /// The consumer's durable name (shared by the processes that split the work).
    pub name: String,
    /// Which subjects (default every agentbus subject).
    pub filter_subject: String,
    /// How long a delivered message may stay unacknowledged before it is delivered
    /// again (default 30 s).
    pub ack_wait: Duration,
    /// Messages delivered and not yet acknowledged at most, over all processes
    /// (default 10,000).
    pub max_ack_pending: i64,
}

impl DurableOptions {
    /// Options for the durable consumer `name` over every agentbus subject.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            filter_subject: crate::subject::filter_subject(None, None),
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 10_000,
        }
    }
}

impl DurableConsumer {
    pub(crate) async fn open(
        stream: &jetstream::stream::Stream,
        registry: Registry,
        node: Option<Node>,
        options: DurableOptions,
    ) -> Result<Self, NatsError> {
        let consumer = stream
            .get_or_create_consumer(
                &options.name,
                consumer::pull::Config {
                    durable_name: Some(options.name.clone()),
                    filter_subject: options.filter_subject.clone(),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: options.ack_wait,
                    max_ack_pending: options.max_ack_pending,
                    deliver_policy: consumer::DeliverPolicy::All,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| NatsError::jetstream("creating the durable consumer", e))?;
        Ok(Self {
            consumer,
            registry,
            node,
            counters: Arc::default(),
        })
    }

    /// The next messages: at most `max`, waiting at most `wait` for the first. An empty
    /// batch means nothing arrived in time.
    pub async fn next_batch(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, NatsError> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(max)
            .expires(wait)
            .messages()
            .await
            .map_err(|e| NatsError::jetstream("fetching", e))?;
        let mut out = Vec::with_capacity(max.min(1024));
        let foreign = Node::none();
        let node = self.node.as_ref().unwrap_or(&foreign);
        while let Some(message) = batch.next().await {
            let message = match message {
                Ok(message) => message,
                // What was fetched is kept (it would otherwise come back only after
                // `ack_wait`); the error shows again on the next fetch if it lasts.
                Err(error) if !out.is_empty() => {
                    tracing::warn!(%error, fetched = out.len(), "fetching from NATS failed mid-batch; returning what arrived");
                    break;
                }
                Err(error) => return Err(NatsError::jetstream("fetching", error)),
            };
            let stream_sequence = message.info().map(|i| i.stream_sequence).unwrap_or(0);
            let event = decode(&self.registry, node, &message);
            self.counters.count(&event, message.subject.as_str());
            out.push(Delivery {
                event,
                stream_sequence,
                message,
            });
        }
        Ok(out)
    }

    /// The counters so far.
    pub fn stats(&self) -> ImportStats {
        self.counters.snapshot()
    }

    /// Messages delivered (to any process sharing the consumer) and not yet
    /// acknowledged, and how long until such a message is delivered again (`ack_wait`).
    pub async fn unacknowledged(&self) -> Result<(u64, Duration), NatsError> {
        let info = self
            .consumer
            .get_info()
            .await
            .map_err(|e| NatsError::jetstream("reading the consumer's info", e))?;
        Ok((info.num_ack_pending as u64, info.config.ack_wait))
    }
}

/// Reads every event the stream holds now under `filter_subject`, in stream order (an
/// ordered consumer from the start, stopped when nothing is pending). Messages that do not
/// decode are counted in the stats and left out.
pub(crate) async fn read_all(
    stream: &jetstream::stream::Stream,
    registry: &Registry,
    filter_subject: String,
) -> Result<(Vec<Box<dyn DynEvent>>, ImportStats), NatsError> {
    let mut consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject,
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| NatsError::jetstream("creating an ordered consumer", e))?;
    let pending = consumer
        .info()
        .await
        .map_err(|e| NatsError::jetstream("reading the consumer's info", e))?
        .num_pending;
    let counters = ImportCounters::default();
    let mut events = Vec::new();
    if pending == 0 {
        return Ok((events, counters.snapshot()));
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| NatsError::jetstream("starting an ordered consumer", e))?;
    let nobody = Node::none();
    loop {
        let Ok(next) = tokio::time::timeout(READ_WAIT, messages.next()).await else {
            tracing::warn!(
                read = events.len(),
                "reading the stream: no message for {READ_WAIT:?} (expired or purged?); stopping"
            );
            break;
        };
        let Some(message) = next else { break };
        let message = message.map_err(|e| NatsError::jetstream("reading the stream", e))?;
        let left = message.info().map(|i| i.pending).unwrap_or(0);
        let outcome = decode(registry, &nobody, &message);
        counters.count(&outcome, message.subject.as_str());
        if let Ok(event) = outcome {
            events.push(event);
        }
        if left == 0 {
            break;
        }
    }
    Ok((events, counters.snapshot()))
}
