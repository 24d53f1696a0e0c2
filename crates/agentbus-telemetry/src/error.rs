//! Errors of setting up and reading telemetry.

use std::net::SocketAddr;

/// What can go wrong starting, reading or stopping telemetry.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The Prometheus endpoint could not listen on its address.
    #[error("cannot serve /metrics on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// The OTLP endpoint is not a usable URL, or its exporter could not be built.
    #[error("cannot export OTLP to {endpoint}: {message}")]
    Otlp {
        /// The endpoint asked for.
        endpoint: String,
        /// What the exporter builder reported.
        message: String,
    },
    /// The configuration asks for an exporter this build was compiled without (a Cargo
    /// feature of agentbus-telemetry is off).
    #[error(
        "{what} is not compiled into this build (Cargo feature `{feature}` of agentbus-telemetry)"
    )]
    NotBuilt {
        /// What was asked for.
        what: &'static str,
        /// The feature that compiles it.
        feature: &'static str,
    },
    /// The SDK refused a collection or a flush (after shutdown, or an exporter failure).
    #[error("OpenTelemetry SDK: {0}")]
    Sdk(String),
}
