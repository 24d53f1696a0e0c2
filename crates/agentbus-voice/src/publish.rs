//! [`Emitter`]: the one place the voice stages hand events to the bus.
//!
//! Every stage wrapper publishes through an `Emitter`, which stamps the session, the
//! plugin (engine) name and the current barge-in epoch on each event (`user_metadata`
//! `{"epoch": N, ...}`; events that have their own `epoch` field carry it there too),
//! and sends with backpressure. Only this module calls the bus's send methods.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use agentbus::EventManager;
use agentbus_events::{Event, EventMeta, PluginInfo};
use serde_json::{Map, Value};

/// The current turn's epoch, shared by every stage of a pipeline: it increases by one
/// on every barge-in, and every event carries the value it had when the event was made.
#[derive(Clone, Debug, Default)]
pub struct Epoch(Arc<AtomicU64>);

impl Epoch {
    /// An epoch counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter starting at `epoch` (a reply freezes the epoch it was made in this way,
    /// so its late events keep their turn's number).
    pub fn at(epoch: u64) -> Self {
        Self(Arc::new(AtomicU64::new(epoch)))
    }

    /// The current epoch.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Starts a new epoch and returns it.
    pub fn bump(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// Publishes a stage's events on a bus (or nowhere, when there is none), stamped with
/// session, plugin and epoch.
///
/// ```
/// use agentbus_voice::publish::{Emitter, Epoch};
///
/// let emitter = Emitter::detached("energy-vad");
/// let meta = emitter.meta_with([("speech_probability", 0.9.into())]);
/// assert_eq!(meta.user_metadata.unwrap()["epoch"], 0);
/// ```
#[derive(Clone, Debug)]
pub struct Emitter {
    bus: Option<EventManager>,
    session_id: Option<String>,
    plugin: PluginInfo,
    epoch: Epoch,
}

impl Emitter {
    /// An emitter publishing on `bus` for the engine called `plugin`.
    pub fn new(bus: EventManager, plugin: impl Into<String>) -> Self {
        Self {
            bus: Some(bus),
            session_id: None,
            plugin: PluginInfo::named(plugin),
            epoch: Epoch::new(),
        }
    }

    /// An emitter that publishes nowhere (events are built and dropped).
    pub fn detached(plugin: impl Into<String>) -> Self {
        Self {
            bus: None,
            session_id: None,
            plugin: PluginInfo::named(plugin),
            epoch: Epoch::new(),
        }
    }

    /// The same emitter stamping `session_id` on every event.
    pub fn with_session(mut self, session_id: Option<String>) -> Self {
        self.session_id = session_id;
        self
    }

    /// The same emitter reading the epoch from `epoch` (shared with the pipeline).
    pub fn with_epoch(mut self, epoch: Epoch) -> Self {
        self.epoch = epoch;
        self
    }

    /// The same emitter naming another plugin.
    pub fn renamed(&self, plugin: impl Into<String>) -> Self {
        Self {
            plugin: PluginInfo::named(plugin),
            ..self.clone()
        }
    }

    /// The plugin fields of the events.
    pub fn plugin(&self) -> PluginInfo {
        self.plugin.clone()
    }

    /// The bus, when there is one.
    pub fn bus(&self) -> Option<&EventManager> {
        self.bus.as_ref()
    }

    /// The epoch counter.
    pub fn epoch(&self) -> &Epoch {
        &self.epoch
    }

    /// The session id stamped on events.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// Fresh metadata: session, and `user_metadata` `{"epoch": N}`.
    pub fn meta(&self) -> EventMeta {
        self.meta_with([])
    }

    /// Fresh metadata with extra `user_metadata` entries beside the epoch.
    pub fn meta_with<const N: usize>(&self, extra: [(&str, Value); N]) -> EventMeta {
        let mut map = Map::new();
        map.insert("epoch".into(), Value::from(self.epoch.get()));
        for (key, value) in extra {
            map.insert(key.to_owned(), value);
        }
        EventMeta {
            session_id: self.session_id.clone(),
            user_metadata: Some(Box::new(Value::Object(map))),
            ..EventMeta::new()
        }
    }

    /// Sends `event`, waiting while a blocking subscriber is full. A refusal (bus shut
    /// down) is logged, never returned: a stage does not stop because a listener left.
    pub async fn emit<E: Event>(&self, event: E) {
        if let Some(bus) = &self.bus
            && let Err(error) = bus.send(event).await
        {
            tracing::debug!(event_type = E::TYPE, %error, "bus refused a voice event");
        }
    }

    /// Sends `event` without waiting (from synchronous code); refusals are logged.
    pub fn emit_now<E: Event>(&self, event: E) {
        if let Some(bus) = &self.bus
            && let Err(error) = bus.try_send(event)
        {
            tracing::debug!(event_type = E::TYPE, %error, "bus refused a voice event");
        }
    }
}

/// The catalogue's error fields for a voice error that happened while doing `context`.
pub fn error_fields(
    error: &crate::VoiceError,
    context: impl Into<String>,
) -> agentbus_events::ErrorFields {
    agentbus_events::ErrorFields {
        error: Some(agentbus_events::ErrorInfo {
            message: error.to_string(),
            kind: error.code().to_owned(),
            code: None,
        }),
        error_code: Some(error.code().to_owned()),
        context: Some(context.into()),
    }
}
