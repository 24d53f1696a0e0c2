//! The registry from `type` string to decoder: how bytes from disk or the network
//! become typed events.

use std::any::TypeId;
use std::collections::HashMap;

#[cfg(feature = "schema")]
use schemars::{Schema, SchemaGenerator};
use thiserror::Error;

use crate::wire::{self, DecodeError};
use crate::{Domain, DynEvent, Event};

/// Everything agentbus knows about one event type, without naming it statically.
#[derive(Clone, Copy)]
pub struct EventInfo {
    /// The `type` string.
    pub event_type: &'static str,
    /// The Rust type name.
    pub name: &'static str,
    /// The domain.
    pub domain: Domain,
    type_id: fn() -> TypeId,
    decode: fn(&str) -> Result<Box<dyn DynEvent>, DecodeError>,
    #[cfg(feature = "schema")]
    schema: fn(&mut SchemaGenerator) -> Schema,
    #[cfg(feature = "schema")]
    example: fn() -> Box<dyn DynEvent>,
    #[cfg(feature = "schema")]
    minimal: fn() -> Box<dyn DynEvent>,
}

impl EventInfo {
    /// The description of `E`.
    pub fn of<E: Event>() -> Self {
        Self {
            event_type: E::TYPE,
            name: E::NAME,
            domain: E::DOMAIN,
            type_id: TypeId::of::<E>,
            decode: |text| wire::decode_body::<E>(text).map(|e| Box::new(e) as Box<dyn DynEvent>),
            #[cfg(feature = "schema")]
            schema: |generator| E::json_schema(generator),
            #[cfg(feature = "schema")]
            example: || Box::new(E::example()),
            #[cfg(feature = "schema")]
            minimal: || Box::new(E::minimal()),
        }
    }

    /// The Rust `TypeId` of the event type.
    pub fn type_id(&self) -> TypeId {
        (self.type_id)()
    }

    /// An instance with every field filled.
    #[cfg(feature = "schema")]
    pub fn example(&self) -> Box<dyn DynEvent> {
        (self.example)()
    }

    /// An instance with only the required fields filled.
    #[cfg(feature = "schema")]
    pub fn minimal(&self) -> Box<dyn DynEvent> {
        (self.minimal)()
    }

    /// The JSON Schema of the event's fields (without the `type` tag), generated from the type.
    #[cfg(feature = "schema")]
    pub fn json_schema(&self, generator: &mut SchemaGenerator) -> Schema {
        (self.schema)(generator)
    }
}

impl std::fmt::Debug for EventInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventInfo")
            .field("event_type", &self.event_type)
            .field("name", &self.name)
            .field("domain", &self.domain)
            .finish()
    }
}

/// A registration was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RegistryError {
    /// The `type` string is empty or has characters other than `a-z`, `0-9`, `_` and `.`.
    #[error(
        "invalid event type string `{event_type}` on {name}: use lowercase letters, digits, `_` and `.`"
    )]
    InvalidType {
        /// The offending string.
        event_type: &'static str,
        /// The Rust type that declared it.
        name: &'static str,
    },
    /// Another Rust type already uses this `type` string.
    #[error(
        "event type `{event_type}` is already registered by {existing}; {new} cannot use it too"
    )]
    Conflict {
        /// The contested string.
        event_type: &'static str,
        /// The type registered first.
        existing: &'static str,
        /// The type refused.
        new: &'static str,
    },
}

/// A set of event types, keyed by `type` string, in registration order.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    infos: Vec<EventInfo>,
    by_type: HashMap<&'static str, usize>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding the whole catalogue.
    pub fn catalogue() -> Self {
        let mut registry = Self::new();
        for info in crate::catalogue::all() {
            // The catalogue's strings are checked unique by the tests.
            let _ = registry.insert(info);
        }
        registry
    }

    /// Registers `E`. Registering the same type again is a no-op.
    pub fn register<E: Event>(&mut self) -> Result<(), RegistryError> {
        self.insert(EventInfo::of::<E>())
    }

    /// Registers the type `info` describes. Registering the same type again is a no-op.
    pub fn insert(&mut self, info: EventInfo) -> Result<(), RegistryError> {
        let valid = !info.event_type.is_empty()
            && info
                .event_type
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
        if !valid {
            return Err(RegistryError::InvalidType {
                event_type: info.event_type,
                name: info.name,
            });
        }
        if let Some(&i) = self.by_type.get(info.event_type) {
            let existing = &self.infos[i];
            if existing.type_id() == info.type_id() {
                return Ok(());
            }
            return Err(RegistryError::Conflict {
                event_type: info.event_type,
                existing: existing.name,
                new: info.name,
            });
        }
        self.by_type.insert(info.event_type, self.infos.len());
        self.infos.push(info);
        Ok(())
    }

    /// Whether a type with this `type` string is registered.
    pub fn contains(&self, event_type: &str) -> bool {
        self.by_type.contains_key(event_type)
    }

    /// The description of the type registered under `event_type`.
    pub fn get(&self, event_type: &str) -> Option<&EventInfo> {
        self.by_type.get(event_type).map(|&i| &self.infos[i])
    }

    /// Every registered type, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &EventInfo> {
        self.infos.iter()
    }

    /// How many types are registered.
    pub fn len(&self) -> usize {
        self.infos.len()
    }

    /// Whether no type is registered.
    pub fn is_empty(&self) -> bool {
        self.infos.is_empty()
    }

    /// Decodes wire-format JSON into whichever registered type its `type` names.
    pub fn decode(&self, bytes: &[u8]) -> Result<Box<dyn DynEvent>, DecodeError> {
        let (text, event_type) = wire::read_header(bytes)?;
        let info = self
            .get(&event_type)
            .ok_or(DecodeError::UnknownType { event_type })?;
        (info.decode)(text)
    }
}
