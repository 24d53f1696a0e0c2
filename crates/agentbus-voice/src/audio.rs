//! [`AudioFrame`]: the one audio type every stage passes around — signed 16-bit PCM,
//! interleaved, with its sample rate, channel count and position in the stream.

use std::time::Duration;

use agentbus_events::base::PcmData;

use crate::error::{Result, VoiceError};

/// The sample rate the speech models (Silero VAD, Whisper) work at.
pub const SPEECH_RATE: u32 = 16_000;

/// A piece of audio: interleaved signed 16-bit samples at `sample_rate`, `channels`
/// wide, starting `timestamp` after the start of its stream.
///
/// ```
/// use std::time::Duration;
/// use agentbus_voice::AudioFrame;
///
/// let frame = AudioFrame::new(vec![0; 320], 16_000, 1, Duration::ZERO);
/// assert_eq!(frame.duration(), Duration::from_millis(20));
/// assert_eq!(frame.end(), Duration::from_millis(20));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AudioFrame {
    /// The samples, interleaved when there is more than one channel.
    pub samples: Vec<i16>,
    /// Samples per second, per channel.
    pub sample_rate: u32,
    /// Number of interleaved channels.
    pub channels: u16,
    /// Where the frame starts in its stream.
    pub timestamp: Duration,
}

/// `samples` as little-endian 16-bit bytes.
pub fn pcm16_le(samples: &[i16]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(samples.len() * 2);
    for sample in samples {
        bytes.extend_from_slice(&sample.to_le_bytes());
    }
    bytes
}

impl AudioFrame {
    /// A frame of `samples`.
    pub fn new(samples: Vec<i16>, sample_rate: u32, channels: u16, timestamp: Duration) -> Self {
        Self {
            samples,
            sample_rate,
            channels,
            timestamp,
        }
    }

    /// A mono frame from samples in `[-1, 1]` (values outside are clipped).
    pub fn from_f32(samples: &[f32], sample_rate: u32, timestamp: Duration) -> Self {
        Self::new(
            samples.iter().map(|&s| f32_to_i16(s)).collect(),
            sample_rate,
            1,
            timestamp,
        )
    }

    /// Samples per channel.
    pub fn frames(&self) -> usize {
        if self.channels == 0 {
            0
        } else {
            self.samples.len() / usize::from(self.channels)
        }
    }

    /// How long the frame lasts (zero for a frame with no rate or no channels).
    pub fn duration(&self) -> Duration {
        if self.sample_rate == 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(self.frames() as f64 / f64::from(self.sample_rate))
    }

    /// Where the frame ends in its stream.
    pub fn end(&self) -> Duration {
        self.timestamp + self.duration()
    }

    /// Whether the frame holds no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The frame mixed down to one channel (the channels' average); a mono frame is
    /// returned as it is.
    pub fn to_mono(&self) -> AudioFrame {
        if self.channels <= 1 {
            return self.clone();
        }
        let channels = usize::from(self.channels);
        let samples = self
            .samples
            .chunks_exact(channels)
            .map(|frame| {
                let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
                (sum / channels as i32) as i16
            })
            .collect();
        AudioFrame::new(samples, self.sample_rate, 1, self.timestamp)
    }

    /// The samples as `f32` in `[-1, 1)`.
    pub fn to_f32(&self) -> Vec<f32> {
        self.samples.iter().map(|&s| i16_to_f32(s)).collect()
    }

    /// The frame as the catalogue's [`PcmData`] (for `TTSAudioEvent` and friends).
    pub fn to_pcm_data(&self) -> PcmData {
        PcmData::from_s16(self.sample_rate, self.channels, &self.samples)
    }

    /// The frame as little-endian 16-bit bytes (what `audio/pcm` and WAV data hold).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        pcm16_le(&self.samples)
    }

    /// A frame from little-endian 16-bit bytes; an odd trailing byte is an error.
    pub fn from_le_bytes(
        bytes: &[u8],
        sample_rate: u32,
        channels: u16,
        timestamp: Duration,
    ) -> Result<Self> {
        if !bytes.len().is_multiple_of(2) {
            return Err(VoiceError::Format(format!(
                "{} bytes of 16-bit PCM: an odd count",
                bytes.len()
            )));
        }
        let samples = bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        Ok(Self::new(samples, sample_rate, channels, timestamp))
    }

    /// Splits the frame into frames of `duration` each (the last one may be shorter).
    pub fn split(&self, duration: Duration) -> Vec<AudioFrame> {
        let per_channel =
            ((duration.as_secs_f64() * f64::from(self.sample_rate)).round() as usize).max(1);
        let step = per_channel * usize::from(self.channels.max(1));
        let mut at = self.timestamp;
        self.samples
            .chunks(step)
            .map(|chunk| {
                let frame = AudioFrame::new(chunk.to_vec(), self.sample_rate, self.channels, at);
                at = frame.end();
                frame
            })
            .collect()
    }
}

/// A sample in `[-1, 1)` from a signed 16-bit one.
pub fn i16_to_f32(sample: i16) -> f32 {
    f32::from(sample) / 32768.0
}

/// A signed 16-bit sample from one in `[-1, 1]`, clipped.
pub fn f32_to_i16(sample: f32) -> i16 {
    (sample * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Root-mean-square level of `samples`, in `[0, 1]` (0 for no samples).
pub fn rms(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples
        .iter()
        .map(|&s| {
            let x = f64::from(s) / 32768.0;
            x * x
        })
        .sum();
    (sum / samples.len() as f64).sqrt() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mono_mix_and_split() {
        let frame = AudioFrame::new(vec![100, 300, -100, -300], 8_000, 2, Duration::ZERO);
        assert_eq!(frame.frames(), 2);
        let mono = frame.to_mono();
        assert_eq!(mono.samples, vec![200, -200]);
        let long = AudioFrame::new(vec![1; 1000], 16_000, 1, Duration::from_millis(5));
        let parts = long.split(Duration::from_millis(20));
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[1].timestamp, Duration::from_millis(25));
        assert_eq!(parts[3].samples.len(), 40);
    }

    #[test]
    fn bytes_round_trip_and_odd_length_is_an_error() {
        let frame = AudioFrame::new(vec![1, -2, 32767, -32768], 16_000, 1, Duration::ZERO);
        let back =
            AudioFrame::from_le_bytes(&frame.to_le_bytes(), 16_000, 1, Duration::ZERO).unwrap();
        assert_eq!(back, frame);
        assert!(AudioFrame::from_le_bytes(&[1, 2, 3], 16_000, 1, Duration::ZERO).is_err());
    }

    #[test]
    fn conversions_clip() {
        assert_eq!(f32_to_i16(2.0), 32767);
        assert_eq!(f32_to_i16(-2.0), -32768);
        assert!((rms(&[16384, -16384]) - 0.5).abs() < 1e-6);
        assert_eq!(rms(&[]), 0.0);
    }
}
