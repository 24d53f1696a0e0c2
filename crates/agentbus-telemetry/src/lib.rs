//! # agentbus-telemetry
//!
//! Metrics for everything that flows over an agentbus bus. The seeds' `MetricsCollector`
//! was called by hand beside each `send` in Vision Agents; here it is a bus subscriber, so
//! every producer is measured without extra code.
//!
//! - [`MetricsCollector`] subscribes to a bus and records two instrument sets: Vision
//!   Agents' (`llm.latency.ms`, `stt.errors`, ...) and the OpenTelemetry GenAI semantic
//!   conventions (`gen_ai.client.token.usage`, `gen_ai.client.operation.duration`, ...),
//!   both defined in [`instruments`]; and keeps a [`MetricsSummary`] (counts, sums,
//!   p50/p95) that serialises to JSON.
//! - [`Telemetry`] turns on what a command asks for: a Prometheus `/metrics` endpoint
//!   (`MetricsServer`, rendering [`prometheus`] text from a [`MetricsReader`]) and OTLP
//!   export of metrics and spans ([`spans`]: `invoke_agent`, `chat {model}`,
//!   `execute_tool {tool}`).
//!
//! Cargo features (both on by default): `prometheus` compiles the endpoint, `otlp` the
//! exporter; asking [`Telemetry::start`] for one this build lacks is
//! [`TelemetryError::NotBuilt`].
//!
//! ```no_run
//! # async fn demo(bus: agentbus::EventManager) -> Result<(), Box<dyn std::error::Error>> {
//! use agentbus_telemetry::{Telemetry, TelemetryConfig};
//! let telemetry = Telemetry::start(TelemetryConfig {
//!     metrics_addr: Some("127.0.0.1:9464".parse()?),
//!     ..TelemetryConfig::default()
//! })
//! .await?;
//! telemetry.attach(&bus)?;
//! // ... run the agent ...
//! let summary = telemetry.shutdown().await?;
//! println!("{summary}");
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod attributes;
pub mod collector;
pub mod consts;
pub mod error;
pub mod instruments;
pub mod prometheus;
pub mod quantiles;
pub mod reader;
#[cfg(feature = "prometheus")]
pub mod server;
pub mod snapshot;
pub mod spans;
pub mod summary;
pub mod telemetry;

pub use collector::{MetricsCollector, RecordedEvent};
pub use error::TelemetryError;
pub use quantiles::LatencyStats;
pub use reader::MetricsReader;
#[cfg(feature = "prometheus")]
pub use server::MetricsServer;
pub use snapshot::MetricsSnapshot;
pub use spans::{EventIdGenerator, SpanRecorder};
pub use summary::MetricsSummary;
pub use telemetry::{Telemetry, TelemetryConfig};
