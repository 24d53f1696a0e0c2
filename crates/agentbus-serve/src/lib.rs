//! # agentbus-serve
//!
//! agentbus over HTTP, so front ends can talk to agentbus agents and people can watch
//! every event live.
//!
//! - **Protocol mappings, usable from your own axum app:** [`agui`] (AG-UI 1.0 types)
//!   with [`to_agui::AgUiMapper`], and [`ui_stream`] (the Vercel AI SDK UI message stream
//!   v1) with [`to_ui_stream::UiStreamMapper`]; each turns an agent run's
//!   [`AgentOutput`](agentbus_agent::AgentOutput)s into the protocol's events.
//! - **[`Server`]:** `POST /ag-ui` (a `RunAgentInput` → the ReAct agent → AG-UI events
//!   over SSE) and `POST /api/chat` (a `useChat` body → UI message stream), with a
//!   bearer token, CORS only when configured, and a body size limit.
//! - **`GET /events`:** the bus as SSE read from the store ([`feed`]): `id:` is the store
//!   position, `Last-Event-ID` resumes exactly; plus `/api/sessions`, `/api/stats` and
//!   `/metrics`.
//! - **`GET /`:** the dashboard, one self-contained page built into the binary.
#![warn(missing_docs)]

pub mod agui;
mod api;
pub mod convert;
mod dashboard;
mod error;
mod events;
pub mod feed;
mod protocols;
mod run;
mod server;
mod stream_state;
pub mod to_agui;
pub mod to_ui_stream;
pub mod ui_stream;

pub use error::RequestError;
pub use feed::{EventFeed, LagPolicy};
pub use run::AgentTemplate;
pub use server::{DEFAULT_BODY_LIMIT, DEFAULT_RING_CAPACITY, RunCounters, ServeOptions, Server};
