//! # agentbus-nats
//!
//! The agentbus bus across processes and machines, on NATS JetStream. Every event of every
//! process reaches every listener, in order per session, exactly once in the store, through
//! broker restarts.
//!
//! - [`Bridge`] connects ([`NatsOptions`]: URL, token, user/password, NKey, creds file,
//!   TLS; credentials never appear in logs or errors) and makes sure the stream exists
//!   ([`StreamSettings`]: `AGENTBUS`, subjects `agentbus.>`, file storage, a duplicate
//!   window, age/byte limits).
//! - [`Exporter`] publishes a local bus's events to `agentbus.<session>.<type>`
//!   ([`subject`]) with `Nats-Msg-Id` = the event id, pipelined, buffering while the broker
//!   is away and then applying the subscription's overflow policy.
//! - [`LiveImport`] publishes the stream's events, typed, on a local bus (an ordered
//!   ephemeral consumer); [`DurableConsumer`] hands them to work that acknowledges each
//!   after it is done (the store writer).
//! - Each bridge is a [`Node`]: a node never re-imports what it exported and never
//!   re-exports what it imported, so bridged buses do not echo.
//!
//! ```no_run
//! # async fn demo() -> Result<(), agentbus_nats::NatsError> {
//! use agentbus::EventManager;
//! use agentbus_nats::{Bridge, ExportOptions, NatsOptions, StartAt};
//!
//! let producer = EventManager::new();
//! let viewer = EventManager::new();
//! let options = NatsOptions::new("nats://127.0.0.1:4222");
//! let a = Bridge::connect(&options).await?;
//! let b = Bridge::connect(&options).await?;
//! let _export = a.export(&producer, ExportOptions::default())?;
//! let _import = b.import_live(&viewer, None, None, StartAt::New).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod bus;
mod connect;
mod error;
mod export;
mod import;
mod node;
pub mod server;
#[cfg(feature = "store")]
pub mod store;
mod stream;
pub mod subject;

use agentbus::EventManager;
use async_nats::jetstream;

pub use connect::{Auth, NatsOptions, Secret, TlsOptions};
pub use error::{NatsError, redact};
pub use export::{ExportOptions, ExportStats, Exporter};
pub use import::{
    Delivery, DurableConsumer, DurableOptions, ImportStats, LiveImport, Skip, StartAt,
};
pub use node::{NODE_HEADER, Node};
pub use stream::{DEFAULT_STREAM, StreamSettings};

/// A connection to NATS with the agentbus stream checked, and this process's [`Node`].
#[derive(Clone)]
pub struct Bridge {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: jetstream::stream::Stream,
    node: Node,
    url: String,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("url", &self.url)
            .field("node", &self.node.id())
            .finish_non_exhaustive()
    }
}

impl Bridge {
    /// Connects and creates (or checks) the default stream.
    pub async fn connect(options: &NatsOptions) -> Result<Self, NatsError> {
        Self::connect_with(options, &StreamSettings::default(), Node::new()).await
    }

    /// Connects and creates (or checks) the stream `settings` describe, as `node`.
    pub async fn connect_with(
        options: &NatsOptions,
        settings: &StreamSettings,
        node: Node,
    ) -> Result<Self, NatsError> {
        let client = options.connect().await?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(options.request_timeout);
        let url = options.display_url();
        settings.ensure(&js, &url).await?;
        let stream = js
            .get_stream(&settings.name)
            .await
            .map_err(|e| NatsError::jetstream("opening the stream", e))?;
        Ok(Self {
            client,
            js,
            stream,
            node,
            url,
        })
    }

    /// This bridge's node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The NATS client (for anything this crate does not wrap).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Exports `bus`'s events to the stream.
    pub fn export(
        &self,
        bus: &EventManager,
        options: ExportOptions,
    ) -> Result<Exporter, NatsError> {
        Exporter::start(bus, self.js.clone(), self.node.clone(), options)
    }

    /// Imports the stream's events into `bus`, live (ordered ephemeral consumer): one
    /// session or all, one type pattern or all, starting where `start` says. Events this
    /// node exported are skipped.
    pub async fn import_live(
        &self,
        bus: &EventManager,
        session: Option<&str>,
        type_pattern: Option<&str>,
        start: StartAt,
    ) -> Result<LiveImport, NatsError> {
        LiveImport::start(
            bus,
            &self.stream,
            self.node.clone(),
            subject::filter_subject(session, type_pattern),
            start,
        )
        .await
    }

    /// Opens (or creates) a durable consumer decoding with `registry`. Events this node
    /// exported are not skipped (a durable consumer is usually a separate worker).
    pub async fn durable(
        &self,
        registry: agentbus_events::Registry,
        options: DurableOptions,
    ) -> Result<DurableConsumer, NatsError> {
        DurableConsumer::open(&self.stream, registry, None, options).await
    }

    /// Every event of `session` the stream holds now, in stream order (for replay), with
    /// the counts of messages that could not be decoded.
    pub async fn read_session(
        &self,
        session: &str,
        registry: &agentbus_events::Registry,
    ) -> Result<(Vec<Box<dyn agentbus_events::DynEvent>>, ImportStats), NatsError> {
        import::read_all(
            &self.stream,
            registry,
            subject::filter_subject(Some(session), None),
        )
        .await
    }

    /// How many messages the stream holds and its last sequence.
    pub async fn stream_state(&self) -> Result<(u64, u64), NatsError> {
        let mut stream = self.stream.clone();
        let info = stream
            .info()
            .await
            .map_err(|e| NatsError::jetstream("reading the stream's info", e))?;
        Ok((info.state.messages, info.state.last_sequence))
    }
}
