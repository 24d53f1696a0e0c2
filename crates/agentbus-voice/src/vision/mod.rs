//! Vision stages: [`VideoFrame`], the [`Vlm`] trait (frames and a prompt in, text out)
//! with [`InstrumentedVlm`] (`plugin.vlm_inference_start` / `_completed` / `plugin.vlm_error`),
//! and the [`VideoProcessor`] trait (a frame in, detections out) with
//! [`InstrumentedVideoProcessor`] (`plugin.video_processor.detection`).
//!
//! Engines: [`OpenAiVlm`] (any OpenAI-compatible server with image input) and
//! [`MotionDetector`] (frame differencing, no model). Frames come from [`frames`]: a
//! directory of images or a video file.

pub mod frames;
mod motion;
mod openai;

pub use motion::{MotionConfig, MotionDetector};
pub use openai::OpenAiVlm;

use std::time::Duration;

use agentbus_events::video::VideoProcessorDetectionEvent;
use agentbus_events::vlm::{VLMErrorEvent, VLMInferenceCompletedEvent, VLMInferenceStartEvent};
use futures::future::BoxFuture;

use crate::clock::{SharedClock, millis};
use crate::error::{Result, VoiceError};
use crate::publish::{Emitter, error_fields};

/// One video frame: 8-bit RGB, row by row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VideoFrame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub rgb: Vec<u8>,
    /// Where the frame is in its stream.
    pub timestamp: Duration,
}

impl VideoFrame {
    /// A frame, checking that the pixel data has the right size.
    pub fn new(width: u32, height: u32, rgb: Vec<u8>, timestamp: Duration) -> Result<Self> {
        let expected = width as usize * height as usize * 3;
        if rgb.len() != expected {
            return Err(VoiceError::Format(format!(
                "a {width}x{height} RGB frame needs {expected} bytes, got {}",
                rgb.len()
            )));
        }
        Ok(Self {
            width,
            height,
            rgb,
            timestamp,
        })
    }
}

/// What a vision language model answered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VlmAnswer {
    /// The text.
    pub text: String,
    /// Prompt tokens, when reported.
    pub input_tokens: Option<u64>,
    /// Answer tokens, when reported.
    pub output_tokens: Option<u64>,
}

/// A vision language model.
pub trait Vlm: Send + Sync {
    /// The engine's name (the events' `plugin_name`).
    fn name(&self) -> &str;
    /// The model.
    fn model(&self) -> Option<String> {
        None
    }
    /// Answers `prompt` about `frames`.
    fn infer<'a>(
        &'a self,
        frames: &'a [VideoFrame],
        prompt: &'a str,
    ) -> BoxFuture<'a, Result<VlmAnswer>>;
}

/// A [`Vlm`] whose inferences are published and timed.
pub struct InstrumentedVlm {
    inner: Box<dyn Vlm>,
    emitter: Emitter,
    clock: SharedClock,
}

impl std::fmt::Debug for InstrumentedVlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentedVlm")
            .field("engine", &self.inner.name())
            .finish_non_exhaustive()
    }
}

impl InstrumentedVlm {
    /// Wraps `inner`.
    pub fn new(inner: Box<dyn Vlm>, emitter: Emitter, clock: SharedClock) -> Self {
        let emitter = emitter.renamed(inner.name().to_owned());
        Self {
            inner,
            emitter,
            clock,
        }
    }

    /// Runs one inference, publishing its start and its completion (or error).
    pub async fn infer(&self, frames: &[VideoFrame], prompt: &str) -> Result<VlmAnswer> {
        let id = uuid::Uuid::new_v4().to_string();
        let e = &self.emitter;
        e.emit(VLMInferenceStartEvent {
            meta: e.meta(),
            plugin: e.plugin(),
            inference_id: id.clone(),
            model: self.inner.model(),
            frames_count: frames.len() as u64,
        })
        .await;
        let started = self.clock.now();
        match self.inner.infer(frames, prompt).await {
            Ok(answer) => {
                e.emit(VLMInferenceCompletedEvent {
                    meta: e.meta(),
                    plugin: e.plugin(),
                    inference_id: Some(id),
                    model: self.inner.model(),
                    text: answer.text.clone(),
                    latency_ms: Some(millis(self.clock.now().saturating_sub(started))),
                    input_tokens: answer.input_tokens,
                    output_tokens: answer.output_tokens,
                    frames_processed: frames.len() as u64,
                    detections: 0,
                })
                .await;
                Ok(answer)
            }
            Err(error) => {
                e.emit(VLMErrorEvent {
                    meta: e.meta(),
                    plugin: e.plugin(),
                    failure: error_fields(&error, "inference"),
                    inference_id: Some(id),
                    is_recoverable: error.is_recoverable(),
                })
                .await;
                Err(error)
            }
        }
    }
}

/// Something a video processor found in a frame.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Detection {
    /// What (`motion`, `person`, ...).
    pub label: String,
    /// How sure, 0 to 1.
    pub score: f32,
    /// Where: `[x, y, width, height]` in pixels, when it has a place.
    pub bbox: Option<[u32; 4]>,
}

/// A video processor: looks at frames one by one and reports what it finds.
pub trait VideoProcessor: Send {
    /// The processor's name (the events' `plugin_name` and `model_id`).
    fn name(&self) -> &str;
    /// Looks at one frame.
    fn process(&mut self, frame: &VideoFrame) -> Result<Vec<Detection>>;
}

/// A [`VideoProcessor`] whose detections are published.
pub struct InstrumentedVideoProcessor {
    inner: Box<dyn VideoProcessor>,
    emitter: Emitter,
    clock: SharedClock,
}

impl std::fmt::Debug for InstrumentedVideoProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentedVideoProcessor")
            .field("processor", &self.inner.name())
            .finish_non_exhaustive()
    }
}

impl InstrumentedVideoProcessor {
    /// Wraps `inner`.
    pub fn new(inner: Box<dyn VideoProcessor>, emitter: Emitter, clock: SharedClock) -> Self {
        let emitter = emitter.renamed(inner.name().to_owned());
        Self {
            inner,
            emitter,
            clock,
        }
    }

    /// Processes one frame; detections are published (nothing is, when there are none).
    pub async fn process(&mut self, frame: &VideoFrame) -> Result<Vec<Detection>> {
        let started = self.clock.now();
        let detections = self.inner.process(frame)?;
        if !detections.is_empty() {
            let labels: Vec<_> = detections
                .iter()
                .map(|d| serde_json::json!({"label": d.label, "score": d.score, "bbox": d.bbox}))
                .collect();
            self.emitter
                .emit(VideoProcessorDetectionEvent {
                    meta: self.emitter.meta_with([("detections", labels.into())]),
                    plugin: self.emitter.plugin(),
                    model_id: Some(self.inner.name().to_owned()),
                    inference_time_ms: Some(millis(self.clock.now().saturating_sub(started))),
                    detection_count: detections.len() as u64,
                })
                .await;
        }
        Ok(detections)
    }
}
