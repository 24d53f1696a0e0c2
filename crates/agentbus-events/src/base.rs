//! Base events and the shared value types of the catalogue: [`ExceptionEvent`],
//! [`ConnectionState`] and [`PcmData`].
//!
//! Provenance: these come from Vision Agents' base events. Its `ExceptionEvent` carries
//! the live exception (`exc`) and the handler callable (`handler`); here the exception is
//! data and the handler is its name, and `failed_event_type` and `failed_event_id`, which
//! Vision Agents lacks, are agentbus additions.

#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "schema")]
use crate::Example;
use crate::{ErrorInfo, define_event};

define_event! {
    /// A handler failed (returned an error or panicked) while handling an event.
    ///
    /// The bus catches every handler failure and publishes this event so that other
    /// handlers and the agent keep running; subscribe to it to log handler errors in one
    /// place. The error is carried as data (`exc`), the handler by its name (`handler`),
    /// and the event being handled by its `type` and `event_id` (`failed_event_type`,
    /// `failed_event_id`) when known.
    #[event(type = "base.exception", domain = Base, base = event)]
    pub struct ExceptionEvent {
        /// The error the handler raised.
        pub exc: ErrorInfo,
        /// The name of the handler that failed.
        pub handler: String,
        /// The `type` of the event being handled when it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub failed_event_type: Option<String>,
        /// The `event_id` of the event being handled when it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub failed_event_id: Option<Uuid>,
    }
}

/// The state of a connection to a provider (STT, TTS, realtime).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// Not connected.
    #[default]
    Disconnected,
    /// Connection in progress.
    Connecting,
    /// Connected.
    Connected,
    /// Attempting to reconnect.
    Reconnecting,
    /// The connection failed.
    Error,
}

#[cfg(feature = "schema")]
impl Example for ConnectionState {
    fn example() -> Self {
        ConnectionState::Connected
    }
}

/// The sample format audio arrived in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PcmFormat {
    /// Signed 16-bit integers.
    #[default]
    S16,
    /// 32-bit floats.
    F32,
}

#[cfg(feature = "schema")]
impl Example for PcmFormat {
    fn example() -> Self {
        PcmFormat::S16
    }
}

/// A block of PCM audio: sample rate, channels, format and the samples.
///
/// Samples are kept as floats in `[-1, 1]`, interleaved by channel; `format` records the
/// format they arrived in (16-bit samples convert exactly). Sinks may leave large audio
/// out by configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct PcmData {
    /// Samples per second, per channel.
    pub sample_rate: u32,
    /// Number of interleaved channels.
    pub channels: u16,
    /// The format the samples arrived in.
    pub format: PcmFormat,
    /// The samples, interleaved, normalised to `[-1, 1]`.
    pub samples: Vec<f32>,
}

impl PcmData {
    /// Audio from signed 16-bit samples.
    pub fn from_s16(sample_rate: u32, channels: u16, samples: &[i16]) -> Self {
        Self {
            sample_rate,
            channels,
            format: PcmFormat::S16,
            samples: samples.iter().map(|&s| f32::from(s) / 32768.0).collect(),
        }
    }

    /// How long the audio lasts, in milliseconds (0 when the rate or channels are 0).
    pub fn duration_ms(&self) -> f64 {
        if self.sample_rate == 0 || self.channels == 0 {
            return 0.0;
        }
        let frames = self.samples.len() as f64 / f64::from(self.channels);
        frames * 1000.0 / f64::from(self.sample_rate)
    }

    /// The size of the audio in bytes in its original format.
    pub fn byte_len(&self) -> usize {
        let width = match self.format {
            PcmFormat::S16 => 2,
            PcmFormat::F32 => 4,
        };
        self.samples.len() * width
    }
}

#[cfg(feature = "schema")]
impl Example for PcmData {
    fn example() -> Self {
        Self::from_s16(16_000, 1, &[0, 16_384, -16_384, 0])
    }
}
