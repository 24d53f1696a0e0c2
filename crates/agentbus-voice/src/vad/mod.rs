//! Voice activity detection: the [`Vad`] trait an engine implements (a speech
//! probability per window of audio), and [`InstrumentedVad`], which turns probabilities
//! into speech start/end decisions with hysteresis and publishes
//! `plugin.vad_speech_start` / `plugin.vad_speech_end` / `plugin.vad_error`.
//!
//! Engines: [`EnergyVad`] (no model) and [`SileroVad`] (the Silero VAD network on candle).

mod energy;
mod silero;

use std::time::Duration;

use agentbus_events::vad::{VADErrorEvent, VADSpeechEndEvent, VADSpeechStartEvent};
pub use energy::EnergyVad;
pub use silero::{SILERO_VAD, SileroVad};

use crate::audio::AudioFrame;
use crate::clock::millis;
use crate::error::{Result, VoiceError};
use crate::publish::{Emitter, error_fields};
use crate::resample::{StreamResampler, mono_at};

/// A voice activity detector: the probability that a window of mono audio holds speech.
pub trait Vad: Send + Sync {
    /// The engine's name (the events' `plugin_name`).
    fn name(&self) -> &str;
    /// The sample rate the engine takes.
    fn sample_rate(&self) -> u32;
    /// Samples per window the engine takes.
    fn window(&self) -> usize;
    /// The probability, in `[0, 1]`, that `window` (exactly [`Vad::window`] mono samples at
    /// [`Vad::sample_rate`]) holds speech. Engines with state carry it to the next call.
    fn probability(&mut self, window: &[i16]) -> Result<f32>;
    /// Forgets the engine's state (a new stream starts).
    fn reset(&mut self);
}

/// How probabilities become speech segments.
#[derive(Clone, Debug, PartialEq)]
pub struct VadConfig {
    /// A window at or above this probability is speech.
    pub threshold: f32,
    /// Once speaking, a window must fall below this to count as silence (hysteresis).
    pub release: f32,
    /// Speech must last this long before a start is declared (filters clicks).
    pub min_speech: Duration,
    /// Silence must last this long before an end is declared (bridges short pauses).
    pub min_silence: Duration,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            release: 0.35,
            min_speech: Duration::from_millis(64),
            min_silence: Duration::from_millis(160),
        }
    }
}

/// What the detector decided about one window.
#[derive(Clone, Debug, PartialEq)]
pub struct VadActivity {
    /// Where the window starts in the stream.
    pub at: Duration,
    /// How long the window is.
    pub window: Duration,
    /// The engine's probability.
    pub probability: f32,
    /// Whether the detector is in speech after this window.
    pub speaking: bool,
    /// Speech started with this window (its start is `speech_start`).
    pub started: Option<Duration>,
    /// Speech ended with this window, having lasted this long.
    pub ended: Option<Duration>,
    /// The highest probability of the speech in progress or just ended (0 outside
    /// speech).
    pub peak: f32,
}

impl VadActivity {
    /// Where the window ends in the stream.
    pub fn end(&self) -> Duration {
        self.at + self.window
    }
}

/// A [`Vad`] with hysteresis, resampling and events: feed it frames, get decisions.
pub struct InstrumentedVad<V> {
    engine: V,
    config: VadConfig,
    emitter: Emitter,
    resampler: Option<(u32, StreamResampler)>,
    buffer: Vec<i16>,
    /// Stream position of `buffer[0]`.
    buffer_at: Option<Duration>,
    speaking: bool,
    /// Candidate start and how much speech has been seen since.
    candidate: Option<Duration>,
    speech_start: Duration,
    silence_since: Option<Duration>,
    peak: f32,
    windows: u64,
}

impl<V: Vad> std::fmt::Debug for InstrumentedVad<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentedVad")
            .field("engine", &self.engine.name())
            .field("config", &self.config)
            .field("speaking", &self.speaking)
            .finish_non_exhaustive()
    }
}

impl<V: Vad> InstrumentedVad<V> {
    /// Wraps `engine`; events go through `emitter` (its plugin name becomes the engine's).
    pub fn new(engine: V, config: VadConfig, emitter: Emitter) -> Self {
        let emitter = emitter.renamed(engine.name().to_owned());
        Self {
            engine,
            config,
            emitter,
            resampler: None,
            buffer: Vec::new(),
            buffer_at: None,
            speaking: false,
            candidate: None,
            speech_start: Duration::ZERO,
            silence_since: None,
            peak: 0.0,
            windows: 0,
        }
    }

    /// The engine.
    pub fn engine(&self) -> &V {
        &self.engine
    }

    /// Whether speech is in progress.
    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// Windows processed so far.
    pub fn windows(&self) -> u64 {
        self.windows
    }

    /// Starts over: a new stream (state, buffers and the engine's state are cleared).
    pub fn reset(&mut self) {
        self.engine.reset();
        self.resampler = None;
        self.buffer.clear();
        self.buffer_at = None;
        self.speaking = false;
        self.candidate = None;
        self.silence_since = None;
    }

    /// Runs the detector over `frame` (any rate, any channels), publishing speech start
    /// and end events, and returns one decision per complete window. An engine error is
    /// published as `plugin.vad_error` and returned.
    pub async fn process(&mut self, frame: &AudioFrame) -> Result<Vec<VadActivity>> {
        let activities = self.detect(frame).await?;
        for activity in &activities {
            self.publish(activity).await;
        }
        Ok(activities)
    }

    /// [`process`](Self::process) without publishing the decisions: the caller publishes
    /// each with [`publish`](Self::publish) when it has acted on it (the voice pipeline
    /// stops the agent's reply before the speech start that interrupts it is published,
    /// so no event of the old reply follows it). Engine errors are published here.
    pub async fn detect(&mut self, frame: &AudioFrame) -> Result<Vec<VadActivity>> {
        let rate = self.engine.sample_rate();
        // The common case, mono at the engine's rate, is appended without a copy of the
        // frame (this runs on every input frame).
        if frame.channels <= 1 && frame.sample_rate == rate {
            self.buffer.extend_from_slice(&frame.samples);
        } else {
            let samples = mono_at(&mut self.resampler, frame, rate)?;
            self.buffer.extend_from_slice(&samples);
        }
        if self.buffer_at.is_none() {
            self.buffer_at = Some(frame.timestamp);
        }
        let window = self.engine.window();
        let window_len = Duration::from_secs_f64(window as f64 / f64::from(rate));
        let mut out = Vec::new();
        while self.buffer.len() >= window {
            let at = self.buffer_at.unwrap_or_default();
            let probability = match self.engine.probability(&self.buffer[..window]) {
                Ok(p) => p.clamp(0.0, 1.0),
                Err(error) => {
                    self.emit_error(&error).await;
                    return Err(error);
                }
            };
            self.buffer.drain(..window);
            self.buffer_at = Some(at + window_len);
            self.windows += 1;
            out.push(self.decide(at, window_len, probability));
        }
        Ok(out)
    }

    /// Publishes `plugin.vad_speech_start` / `plugin.vad_speech_end` for a decision of
    /// [`detect`](Self::detect) (nothing when speech neither started nor ended in it).
    pub async fn publish(&self, activity: &VadActivity) {
        if let Some(start) = activity.started {
            self.emitter
                .emit(VADSpeechStartEvent {
                    meta: self.emitter.meta_with([
                        ("speech_probability", f64::from(activity.probability).into()),
                        ("stream_time_ms", millis(start).into()),
                    ]),
                    plugin: self.emitter.plugin(),
                })
                .await;
        }
        if let Some(duration) = activity.ended {
            self.emitter
                .emit(VADSpeechEndEvent {
                    meta: self.emitter.meta_with([
                        ("speech_probability", f64::from(activity.peak).into()),
                        ("stream_time_ms", millis(activity.end()).into()),
                    ]),
                    plugin: self.emitter.plugin(),
                    duration_ms: Some(millis(duration)),
                })
                .await;
        }
    }

    async fn emit_error(&self, error: &VoiceError) {
        self.emitter
            .emit(VADErrorEvent {
                meta: self.emitter.meta(),
                plugin: self.emitter.plugin(),
                failure: error_fields(error, "speech probability"),
            })
            .await;
    }

    /// The hysteresis: pure state, no I/O.
    fn decide(&mut self, at: Duration, window: Duration, probability: f32) -> VadActivity {
        let end = at + window;
        let mut started = None;
        let mut ended = None;
        if self.speaking {
            self.peak = self.peak.max(probability);
            if probability < self.config.release {
                let since = *self.silence_since.get_or_insert(at);
                if end - since >= self.config.min_silence {
                    self.speaking = false;
                    self.silence_since = None;
                    ended = Some(since.saturating_sub(self.speech_start));
                }
            } else {
                self.silence_since = None;
            }
        } else if probability >= self.config.threshold {
            let since = *self.candidate.get_or_insert(at);
            if end - since >= self.config.min_speech {
                self.speaking = true;
                self.candidate = None;
                self.speech_start = since;
                self.peak = probability;
                started = Some(since);
            }
        } else {
            self.candidate = None;
        }
        VadActivity {
            at,
            window,
            probability,
            speaking: self.speaking,
            started,
            ended,
            peak: if self.speaking || ended.is_some() {
                self.peak
            } else {
                0.0
            },
        }
    }
}

impl Vad for Box<dyn Vad> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn sample_rate(&self) -> u32 {
        (**self).sample_rate()
    }
    fn window(&self) -> usize {
        (**self).window()
    }
    fn probability(&mut self, window: &[i16]) -> Result<f32> {
        (**self).probability(window)
    }
    fn reset(&mut self) {
        (**self).reset()
    }
}
