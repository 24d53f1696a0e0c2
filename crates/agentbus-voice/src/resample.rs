//! Sample-rate conversion with `rubato` (FFT resampler): whole clips with [`resample`],
//! live streams with [`StreamResampler`]. Channels are mixed down to mono first: every
//! speech stage works on mono.

use std::time::Duration;

use rubato::{FftFixedIn, Resampler};

use crate::audio::{AudioFrame, f32_to_i16, i16_to_f32};
use crate::error::{Result, VoiceError};

const CHUNK: usize = 1024;

/// `audio` mixed to mono and converted to `rate` Hz (returned as is, mixed to mono, when
/// it is already at that rate). The output keeps the input's timestamp and is aligned
/// with it (the resampler's delay is removed).
///
/// ```
/// use std::time::Duration;
/// use agentbus_voice::{AudioFrame, resample::resample};
///
/// let tone: Vec<i16> = (0..22_050).map(|i| ((i as f32 * 0.05).sin() * 8000.0) as i16).collect();
/// let clip = AudioFrame::new(tone, 22_050, 1, Duration::ZERO);
/// let out = resample(&clip, 16_000)?;
/// assert_eq!(out.sample_rate, 16_000);
/// assert_eq!(out.samples.len(), 16_000);
/// # Ok::<(), agentbus_voice::VoiceError>(())
/// ```
pub fn resample(audio: &AudioFrame, rate: u32) -> Result<AudioFrame> {
    let mono = audio.to_mono();
    if mono.sample_rate == rate {
        return Ok(mono);
    }
    let mut stream = StreamResampler::new(mono.sample_rate, rate)?;
    let mut samples = stream.push(&mono.samples)?;
    samples.extend(stream.flush()?);
    let expected =
        (mono.samples.len() as u64 * u64::from(rate)).div_ceil(u64::from(mono.sample_rate));
    samples.truncate(expected as usize);
    Ok(AudioFrame::new(samples, rate, 1, audio.timestamp))
}

/// A resampler for a live mono stream: push samples as they come, get the converted
/// samples that are ready; [`flush`](Self::flush) at the end. The output is aligned with
/// the input (the first output sample corresponds to the first input sample).
pub struct StreamResampler {
    from: u32,
    to: u32,
    inner: FftFixedIn<f32>,
    pending: Vec<f32>,
    /// Output samples still to drop (the resampler's delay).
    skip: usize,
    pushed: u64,
    produced: u64,
}

impl std::fmt::Debug for StreamResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResampler")
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

impl StreamResampler {
    /// A resampler from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Result<Self> {
        let inner =
            FftFixedIn::<f32>::new(from as usize, to as usize, CHUNK, 2, 1).map_err(|error| {
                VoiceError::Resample {
                    from,
                    to,
                    reason: error.to_string(),
                }
            })?;
        let skip = inner.output_delay();
        Ok(Self {
            from,
            to,
            inner,
            pending: Vec::new(),
            skip,
            pushed: 0,
            produced: 0,
        })
    }

    /// The output rate.
    pub fn output_rate(&self) -> u32 {
        self.to
    }

    fn failed(&self, error: impl std::fmt::Display) -> VoiceError {
        VoiceError::Resample {
            from: self.from,
            to: self.to,
            reason: error.to_string(),
        }
    }

    fn emit(&mut self, block: &[f32], out: &mut Vec<i16>) {
        let drop = self.skip.min(block.len());
        self.skip -= drop;
        out.extend(block[drop..].iter().map(|&s| f32_to_i16(s)));
    }

    /// Converts what it can of `samples` (plus what was kept from earlier pushes).
    pub fn push(&mut self, samples: &[i16]) -> Result<Vec<i16>> {
        self.pending.extend(samples.iter().map(|&s| i16_to_f32(s)));
        self.pushed += samples.len() as u64;
        let mut out = Vec::new();
        loop {
            let need = self.inner.input_frames_next();
            if self.pending.len() < need {
                break;
            }
            let block: Vec<f32> = self.pending.drain(..need).collect();
            let result = self
                .inner
                .process(&[block], None)
                .map_err(|error| self.failed(error))?;
            self.emit(&result[0], &mut out);
        }
        self.produced += out.len() as u64;
        Ok(out)
    }

    /// Converts everything still held, padding with silence, and returns no more than
    /// the input's length at the output rate.
    pub fn flush(&mut self) -> Result<Vec<i16>> {
        let expected = (self.pushed * u64::from(self.to)).div_ceil(u64::from(self.from));
        let mut out = Vec::new();
        let mut rounds = 0;
        while self.produced + (out.len() as u64) < expected && rounds < 8 {
            // The rest of the input, padded with silence to one whole block.
            let mut block = std::mem::take(&mut self.pending);
            block.resize(self.inner.input_frames_next(), 0.0);
            let result = self
                .inner
                .process(&[block], None)
                .map_err(|error| self.failed(error))?;
            self.emit(&result[0], &mut out);
            rounds += 1;
        }
        let room = expected.saturating_sub(self.produced) as usize;
        out.truncate(room);
        self.produced += out.len() as u64;
        Ok(out)
    }
}

/// `frame`'s samples, mono, at `rate`: as they are when the frame already is, otherwise
/// through the live resampler kept in `slot` (made, or made again, for the frame's rate).
/// For the engines that take a stream of frames at one rate (VAD, streaming STT,
/// speech-to-speech).
pub fn mono_at(
    slot: &mut Option<(u32, StreamResampler)>,
    frame: &AudioFrame,
    rate: u32,
) -> Result<Vec<i16>> {
    let mono = frame.to_mono();
    if mono.sample_rate == rate {
        return Ok(mono.samples);
    }
    let resampler = match slot {
        Some((from, resampler)) if *from == mono.sample_rate => resampler,
        stale => {
            let fresh = StreamResampler::new(mono.sample_rate, rate)?;
            &mut stale.insert((mono.sample_rate, fresh)).1
        }
    };
    resampler.push(&mono.samples)
}

/// The duration of `samples` mono samples at `rate`.
pub fn samples_duration(samples: usize, rate: u32) -> Duration {
    Duration::from_secs_f64(samples as f64 / f64::from(rate.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f32, seconds: f32) -> Vec<i16> {
        (0..(rate as f32 * seconds) as usize)
            .map(|i| {
                ((i as f32 / rate as f32 * hz * std::f32::consts::TAU).sin() * 10_000.0) as i16
            })
            .collect()
    }

    #[test]
    fn resampled_tone_keeps_its_length_and_frequency() {
        let clip = AudioFrame::new(tone(22_050, 440.0, 1.0), 22_050, 1, Duration::ZERO);
        let out = resample(&clip, 16_000).unwrap();
        assert_eq!(out.samples.len(), 16_000);
        // Zero crossings of a 440 Hz tone over one second: ~880.
        let crossings = out
            .samples
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count();
        assert!((860..=900).contains(&crossings), "{crossings}");
        // Aligned: the first samples are near the tone's start (close to zero), not silence
        // from the delay followed by a shifted tone.
        let expected = tone(16_000, 440.0, 1.0);
        let err: f64 = out.samples[200..15_000]
            .iter()
            .zip(&expected[200..15_000])
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).abs())
            .sum::<f64>()
            / 14_800.0;
        assert!(err < 800.0, "mean error {err}");
    }

    #[test]
    fn same_rate_is_mono_passthrough_and_bad_rate_is_an_error() {
        let clip = AudioFrame::new(vec![1, 3, 5, 7], 16_000, 2, Duration::ZERO);
        assert_eq!(resample(&clip, 16_000).unwrap().samples, vec![2, 6]);
        assert!(StreamResampler::new(0, 16_000).is_err());
    }
}
