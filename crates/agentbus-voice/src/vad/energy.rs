//! [`EnergyVad`]: speech from loudness alone, no model — for tests and tiny devices.

use crate::audio::rms;
use crate::error::Result;
use crate::vad::Vad;

/// A voice activity detector that maps a window's RMS level (in dBFS) linearly to a
/// probability: `floor_db` and below is 0, `ceiling_db` and above is 1. It cannot tell
/// speech from other sound; use it where the input is clean.
///
/// ```
/// use agentbus_voice::vad::{EnergyVad, Vad};
///
/// let mut vad = EnergyVad::default();
/// assert_eq!(vad.probability(&[0; 320])?, 0.0);
/// assert_eq!(vad.probability(&[8000; 320])?, 1.0);
/// # Ok::<(), agentbus_voice::VoiceError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct EnergyVad {
    /// The sample rate it expects.
    pub sample_rate: u32,
    /// Samples per window.
    pub window: usize,
    /// The level (dBFS) at which the probability is 0.
    pub floor_db: f32,
    /// The level (dBFS) at which the probability is 1.
    pub ceiling_db: f32,
}

impl Default for EnergyVad {
    /// 16 kHz, 20 ms windows, 0 at -55 dBFS, 1 at -35 dBFS.
    fn default() -> Self {
        Self {
            sample_rate: 16_000,
            window: 320,
            floor_db: -55.0,
            ceiling_db: -35.0,
        }
    }
}

impl Vad for EnergyVad {
    fn name(&self) -> &str {
        "energy-vad"
    }

    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn window(&self) -> usize {
        self.window
    }

    fn probability(&mut self, window: &[i16]) -> Result<f32> {
        let level = rms(window);
        if level <= 0.0 {
            return Ok(0.0);
        }
        let db = 20.0 * level.log10();
        let span = (self.ceiling_db - self.floor_db).max(f32::EPSILON);
        Ok(((db - self.floor_db) / span).clamp(0.0, 1.0))
    }

    fn reset(&mut self) {}
}
