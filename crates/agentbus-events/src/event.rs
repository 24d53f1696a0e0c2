//! The [`Event`] trait every catalogue type implements, and its type-erased form
//! [`DynEvent`].

use std::any::Any;
use std::fmt::Debug;

#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::EventMeta;
use crate::wire::{self, EncodeError};

/// The area of an agent an event belongs to. Each domain is one module of this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    /// Base events of the event system itself (`base.exception`).
    Base,
    /// Events the bus publishes about its own delivery (lag, drops).
    Bus,
    /// Agent lifecycle: turns, joining and leaving calls, finishing.
    Agent,
    /// The edge transport: participants, tracks, audio arriving.
    Edge,
    /// Call sessions, from the video platform's webhook vocabulary.
    Call,
    /// Non-realtime LLM requests and responses.
    Llm,
    /// Tool (function) execution.
    Tool,
    /// Realtime (speech-to-speech) LLM sessions.
    Realtime,
    /// Speech to text.
    Stt,
    /// Text to speech.
    Tts,
    /// Voice activity detection.
    Vad,
    /// Turn detection.
    Turn,
    /// Vision-language model inference.
    Vlm,
    /// Video processors (detection models).
    Video,
    /// Provider-specific plugin events.
    Plugin,
    /// The provider stream contract: what an LLM provider streams.
    Stream,
    /// The ReAct agent loop.
    React,
}

impl Domain {
    /// The domain's name as used in listings (`llm`, `stt`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Base => "base",
            Domain::Bus => "bus",
            Domain::Agent => "agent",
            Domain::Edge => "edge",
            Domain::Call => "call",
            Domain::Llm => "llm",
            Domain::Tool => "tool",
            Domain::Realtime => "realtime",
            Domain::Stt => "stt",
            Domain::Tts => "tts",
            Domain::Vad => "vad",
            Domain::Turn => "turn",
            Domain::Vlm => "vlm",
            Domain::Video => "video",
            Domain::Plugin => "plugin",
            Domain::Stream => "stream",
            Domain::React => "react",
        }
    }
}

impl std::fmt::Display for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A typed event: a catalogue type with a fixed `type` string.
///
/// Implemented by [`define_event!`](crate::define_event); you rarely implement it by hand.
/// Sending, storing and decoding need only serde's traits, `Clone`, `Debug` and
/// `PartialEq`. With the `schema` feature an event must also describe itself
/// ([`Described`]: `schemars::JsonSchema` and `Example`), which `define_event!` then
/// implements; without it, those traits and schemars are not compiled at all.
pub trait Event:
    Serialize + DeserializeOwned + Described + Clone + Debug + PartialEq + Send + Sync + 'static
{
    /// The `type` string on the wire, e.g. `plugin.llm_request_started`.
    const TYPE: &'static str;
    /// The Rust type name, e.g. `LLMRequestStartedEvent`.
    const NAME: &'static str;
    /// The domain (module) the event belongs to.
    const DOMAIN: Domain;

    /// The base fields.
    fn meta(&self) -> &EventMeta;
    /// The base fields, mutably (the bus stamps `seq` here).
    fn meta_mut(&mut self) -> &mut EventMeta;
}

/// What an [`Event`] needs beyond sending and decoding: with the `schema` feature, its JSON
/// Schema and sample values (`schemars::JsonSchema` and `Example`), so every registered
/// type can be listed with its fields and an example; without the feature, nothing.
/// Implemented for every type that qualifies; never implement it yourself.
#[cfg(feature = "schema")]
pub trait Described: JsonSchema + crate::Example {}

#[cfg(feature = "schema")]
impl<T: JsonSchema + crate::Example> Described for T {}

/// What an [`Event`] needs beyond sending and decoding: with the `schema` feature, its JSON
/// Schema and sample values (`schemars::JsonSchema` and `Example`), so every registered
/// type can be listed with its fields and an example; without the feature, nothing.
/// Implemented for every type that qualifies; never implement it yourself.
#[cfg(not(feature = "schema"))]
pub trait Described {}

#[cfg(not(feature = "schema"))]
impl<T> Described for T {}

/// An event whose concrete type is not known statically: what wildcard subscribers,
/// sinks and the decoder work with.
pub trait DynEvent: Debug + Send + Sync + 'static {
    /// The `type` string.
    fn event_type(&self) -> &'static str;
    /// The Rust type name.
    fn type_name(&self) -> &'static str;
    /// The base fields.
    fn meta(&self) -> &EventMeta;
    /// The base fields, mutably.
    fn meta_mut(&mut self) -> &mut EventMeta;
    /// Appends the event's wire-format JSON to `out`.
    fn write_wire(&self, out: &mut Vec<u8>) -> Result<(), EncodeError>;
    /// The event's wire-format JSON as a value.
    fn to_wire_value(&self) -> Result<serde_json::Value, EncodeError>;
    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn DynEvent>;
    /// For downcasting to the concrete type.
    fn as_any(&self) -> &dyn Any;
    /// Whether two events are equal (same type and same fields).
    fn dyn_eq(&self, other: &dyn DynEvent) -> bool;
}

impl<E: Event> DynEvent for E {
    fn event_type(&self) -> &'static str {
        E::TYPE
    }
    fn type_name(&self) -> &'static str {
        E::NAME
    }
    fn meta(&self) -> &EventMeta {
        Event::meta(self)
    }
    fn meta_mut(&mut self) -> &mut EventMeta {
        Event::meta_mut(self)
    }
    fn write_wire(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        wire::write(self, out)
    }
    fn to_wire_value(&self) -> Result<serde_json::Value, EncodeError> {
        wire::to_value(self)
    }
    fn clone_box(&self) -> Box<dyn DynEvent> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn dyn_eq(&self, other: &dyn DynEvent) -> bool {
        other.as_any().downcast_ref::<E>() == Some(self)
    }
}

impl dyn DynEvent {
    /// The concrete event, if it is an `E`.
    pub fn downcast_ref<E: Event>(&self) -> Option<&E> {
        self.as_any().downcast_ref::<E>()
    }

    /// Whether the event is an `E`.
    pub fn is<E: Event>(&self) -> bool {
        self.as_any().is::<E>()
    }

    /// The event's wire-format JSON as a string.
    pub fn to_wire_string(&self) -> Result<String, EncodeError> {
        let mut out = Vec::with_capacity(256);
        self.write_wire(&mut out)?;
        // serde_json writes UTF-8 only.
        String::from_utf8(out).map_err(|e| EncodeError::new(self.event_type(), e.to_string()))
    }
}

impl Clone for Box<dyn DynEvent> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

impl PartialEq for dyn DynEvent {
    fn eq(&self, other: &Self) -> bool {
        self.dyn_eq(other)
    }
}
