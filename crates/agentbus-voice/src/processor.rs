//! [`FrameProcessor`]: a stage that transforms input audio before voice activity detection
//! (gain, noise suppression, echo cancellation, a level meter), and [`ProcessorChain`],
//! which runs several in order. The voice pipeline runs its chain inline, in its own task,
//! on each frame the transport delivers: a stage costs a function call, not a queue and a
//! task hand-off.

use crate::audio::AudioFrame;
use crate::error::Result;

/// A stage on the input path: a frame in, the frame to pass on out (or `None` to drop it).
pub trait FrameProcessor: Send {
    /// The stage's name.
    fn name(&self) -> &str;
    /// Processes one frame.
    fn process(&mut self, frame: AudioFrame) -> Result<Option<AudioFrame>>;
}

/// Frame processors run in order; a stage that drops a frame ends its way.
///
/// ```
/// use std::time::Duration;
/// use agentbus_voice::AudioFrame;
/// use agentbus_voice::processor::{Gain, PassThrough, ProcessorChain};
///
/// let mut chain = ProcessorChain::new();
/// chain.push(PassThrough);
/// chain.push(Gain::new(2.0));
/// let frame = AudioFrame::new(vec![100, -200, 30_000], 16_000, 1, Duration::ZERO);
/// let out = chain.process(frame)?.unwrap();
/// assert_eq!(out.samples, vec![200, -400, 32_767]);
/// # Ok::<(), agentbus_voice::VoiceError>(())
/// ```
#[derive(Default)]
pub struct ProcessorChain {
    stages: Vec<Box<dyn FrameProcessor>>,
}

impl std::fmt::Debug for ProcessorChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.stages.iter().map(|stage| stage.name()))
            .finish()
    }
}

impl ProcessorChain {
    /// An empty chain (frames pass unchanged).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `stage`.
    pub fn push(&mut self, stage: impl FrameProcessor + 'static) {
        self.stages.push(Box::new(stage));
    }

    /// How many stages.
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Runs `frame` through every stage.
    pub fn process(&mut self, frame: AudioFrame) -> Result<Option<AudioFrame>> {
        let mut frame = frame;
        for stage in &mut self.stages {
            match stage.process(frame)? {
                Some(next) => frame = next,
                None => return Ok(None),
            }
        }
        Ok(Some(frame))
    }
}

/// A stage that passes every frame on unchanged (for tests and benchmarks).
#[derive(Clone, Copy, Debug, Default)]
pub struct PassThrough;

impl FrameProcessor for PassThrough {
    fn name(&self) -> &str {
        "pass-through"
    }

    fn process(&mut self, frame: AudioFrame) -> Result<Option<AudioFrame>> {
        Ok(Some(frame))
    }
}

/// Multiplies every sample by a factor, clipping at the 16-bit range (a quiet microphone).
#[derive(Clone, Copy, Debug)]
pub struct Gain {
    factor: f32,
}

impl Gain {
    /// A gain of `factor` (1.0 changes nothing; a factor that is not finite or is
    /// negative is taken as 1.0).
    pub fn new(factor: f32) -> Self {
        let factor = if factor.is_finite() && factor >= 0.0 {
            factor
        } else {
            1.0
        };
        Self { factor }
    }
}

impl FrameProcessor for Gain {
    fn name(&self) -> &str {
        "gain"
    }

    fn process(&mut self, mut frame: AudioFrame) -> Result<Option<AudioFrame>> {
        for sample in &mut frame.samples {
            *sample = (f32::from(*sample) * self.factor)
                .round()
                .clamp(-32_768.0, 32_767.0) as i16;
        }
        Ok(Some(frame))
    }
}
