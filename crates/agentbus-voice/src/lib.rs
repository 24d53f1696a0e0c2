//! # agentbus-voice
//!
//! Speech in, speech out, for agentbus: one audio frame type, the voice stages as traits,
//! one instrumented wrapper per stage that publishes the stage's catalogue events, offline
//! engines for each stage, and the pipeline that joins them to the ReAct agent.
//!
//! - [`audio`]: [`AudioFrame`] (PCM i16, rate, channels, timestamp); [`wav`] (hound) and
//!   [`resample`] (rubato) at the edges.
//! - [`processor`]: [`FrameProcessor`](processor::FrameProcessor) stages on the input path
//!   (gain, noise suppression, ...), run inline by the pipeline.
//! - [`vad`]: [`Vad`](vad::Vad) → [`InstrumentedVad`](vad::InstrumentedVad); engines
//!   [`EnergyVad`](vad::EnergyVad), [`SileroVad`](vad::SileroVad).
//! - [`turn`]: [`TurnDetector`](turn::TurnDetector) → events; the silence rule with a
//!   transcript-aware shortcut.
//! - [`stt`]: [`Stt`](stt::Stt) → [`InstrumentedStt`](stt::InstrumentedStt).
//! - [`tts`]: [`Tts`](tts::Tts) → [`InstrumentedTts`](tts::InstrumentedTts); engine
//!   [`EspeakTts`](tts::EspeakTts).
//! - [`transport`]: [`Transport`](transport::Transport) → edge events;
//!   [`WavFileTransport`](transport::WavFileTransport).
//! - [`realtime`], [`vision`]: the speech-to-speech and video stage traits and wrappers.
//! - [`call`]: the call-session events (`call.*`, `agent.joined_call`/`left_call`) of an
//!   edge that hosts its calls; `browser` (feature `browser`): the page, its WebSocket
//!   transport and the axum router that serves them.
//! - [`publish`]: the one module that sends on the bus; [`clock`]: injectable time.
//! - [`models`]: the model files `agentbus model pull` fetches for these stages.
#![warn(missing_docs)]

pub mod audio;
#[cfg(feature = "browser")]
pub mod browser;
pub mod call;
pub mod clock;
pub mod error;
pub mod models;
mod net;
pub mod publish;
pub mod realtime;
pub mod resample;
pub mod stt;
pub mod transport;
pub mod tts;
pub mod turn;
pub mod vad;
pub mod vision;
pub mod wav;
mod ws;

pub use audio::{AudioFrame, SPEECH_RATE};
pub use error::{Result, VoiceError};
pub mod bench_data;
pub mod pipeline;
pub mod processor;
pub mod sentences;
