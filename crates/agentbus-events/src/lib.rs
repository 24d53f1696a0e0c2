//! # agentbus-events
//!
//! The event catalogue of agentbus: every event an agent produces, as a Rust type, and the
//! one wire format they all share on disk, over NATS and in the browser.
//!
//! - [`Event`] is the trait every catalogue type implements; [`DynEvent`] is its
//!   type-erased form, used by wildcard subscribers and sinks.
//! - Each domain is a module: [`llm`], [`tool`], [`realtime`], [`stt`], [`tts`], [`vad`],
//!   [`turn`], [`vlm`], [`video`], [`agent`], [`edge`], [`call`], [`stream`] (the provider
//!   contract), [`react`] (the agent loop), plus [`base`], [`bus`] and [`plugin`].
//! - [`wire`] encodes and decodes the wire format; [`Registry`] maps `type` strings to
//!   decoders; `schema` (with the `schema` feature) generates the JSON Schema of the
//!   format from the types.
//!
//! Provenance: the catalogue is drawn from Vision Agents' event catalogue (source documents,
//! or seeds, 000 to 002), SimpleLLMFunc's ReAct event stream (seed 003) and Hive's
//! `StreamEvent` (seed 004); the documentation of each module drawn from them ends with a
//! paragraph saying what it takes from where.
//!
//! This crate depends on serde and nothing asynchronous.
//!
//! ## Features
//!
//! - `schema` (off by default): the JSON Schema of the wire format (the `schema` module,
//!   `schemars::JsonSchema` on every type) and sample values (`Example`,
//!   `EventInfo::example`). `agentbus events` and the tests use it; sending, storing
//!   and decoding events do not, so a program that only moves events builds without
//!   schemars and its derive macros. With the feature on, every event must implement
//!   both ([`Described`]): `define_event!` then derives `JsonSchema` and implements
//!   `Example`, so every field type of an event declared with it must implement both.

// Lets `define_event!` name this crate the same way inside and outside it.
extern crate self as agentbus_events;

mod event;
#[cfg(feature = "schema")]
mod example;
mod macros;
mod meta;
mod outgoing;
mod registry;
mod seq;
mod text_snapshot;

pub mod catalogue;
#[cfg(feature = "schema")]
pub mod schema;
pub mod wire;

pub mod agent;
pub mod base;
pub mod bus;
pub mod call;
pub mod edge;
pub mod llm;
pub mod plugin;
pub mod react;
pub mod realtime;
pub mod stream;
pub mod stt;
pub mod tool;
pub mod tts;
pub mod turn;
pub mod vad;
pub mod video;
pub mod vlm;

pub use event::{Described, Domain, DynEvent, Event};
#[cfg(feature = "schema")]
pub use example::Example;
pub use meta::{ErrorFields, ErrorInfo, EventMeta, Participant, PluginInfo};
pub use outgoing::Outgoing;
pub use registry::{EventInfo, Registry, RegistryError};
pub use seq::Seq;
pub use wire::{DecodeError, EncodeError, SCHEMA_VERSION};

#[cfg(feature = "schema")]
#[doc(hidden)]
pub use schemars as __schemars;
#[doc(hidden)]
pub use serde as __serde;
