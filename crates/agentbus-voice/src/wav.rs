//! WAV files in and out, with `hound`: 16-bit (or 8/24/32-bit integer) PCM in, 16-bit PCM
//! out. Anything else — IEEE float, an unusable sample rate, no samples — is a clear
//! [`VoiceError::Wav`], never a panic.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::audio::AudioFrame;
use crate::error::{Result, VoiceError};

/// The lowest sample rate accepted (telephone audio).
pub const MIN_RATE: u32 = 8_000;
/// The highest sample rate accepted.
pub const MAX_RATE: u32 = 192_000;

/// Reads the whole WAV file at `path` as one frame.
///
/// ```no_run
/// let clip = agentbus_voice::wav::read_wav("question.wav".as_ref())?;
/// println!("{} Hz, {:?}", clip.sample_rate, clip.duration());
/// # Ok::<(), agentbus_voice::VoiceError>(())
/// ```
pub fn read_wav(path: &Path) -> Result<AudioFrame> {
    let file = std::fs::File::open(path).map_err(VoiceError::io(format!(
        "opening the WAV file {}",
        path.display()
    )))?;
    decode(std::io::BufReader::new(file), path)
}

/// Reads a WAV file from memory (`name` is used in error messages).
pub fn decode_wav(bytes: &[u8], name: &str) -> Result<AudioFrame> {
    decode(std::io::Cursor::new(bytes), Path::new(name))
}

/// Reads the WAV file at `path` and checks it is at `rate` Hz.
pub fn read_wav_at(path: &Path, rate: u32) -> Result<AudioFrame> {
    let clip = read_wav(path)?;
    if clip.sample_rate != rate {
        return Err(wav_error(
            path,
            format!("sample rate is {} Hz, expected {rate} Hz", clip.sample_rate),
        ));
    }
    Ok(clip)
}

fn wav_error(path: &Path, reason: impl Into<String>) -> VoiceError {
    VoiceError::Wav {
        path: PathBuf::from(path),
        reason: reason.into(),
    }
}

fn decode<R: Read>(reader: R, path: &Path) -> Result<AudioFrame> {
    let mut reader = hound::WavReader::new(reader).map_err(|error| {
        wav_error(
            path,
            match error {
                hound::Error::FormatError(what) => format!("not a WAV file ({what})"),
                hound::Error::Unsupported => "an unsupported WAV encoding".to_owned(),
                other => other.to_string(),
            },
        )
    })?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int {
        return Err(wav_error(
            path,
            "not PCM: the samples are IEEE float; convert it to 16-bit PCM (e.g. `sox in.wav -b 16 -e signed-integer out.wav`)",
        ));
    }
    if !(MIN_RATE..=MAX_RATE).contains(&spec.sample_rate) {
        return Err(wav_error(
            path,
            format!(
                "sample rate {} Hz is outside {MIN_RATE}..={MAX_RATE} Hz",
                spec.sample_rate
            ),
        ));
    }
    if spec.channels == 0 {
        return Err(wav_error(path, "no channels"));
    }
    let shift = match spec.bits_per_sample {
        8 => -8i32,
        16 => 0,
        24 => 8,
        32 => 16,
        bits => {
            return Err(wav_error(
                path,
                format!("{bits}-bit samples: only 8, 16, 24 and 32-bit PCM are read"),
            ));
        }
    };
    let mut samples = Vec::with_capacity(reader.len() as usize);
    for sample in reader.samples::<i32>() {
        let sample =
            sample.map_err(|error| wav_error(path, format!("truncated data ({error})")))?;
        let scaled = if shift >= 0 {
            sample >> shift
        } else {
            sample << -shift
        };
        samples.push(scaled.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16);
    }
    if samples.is_empty() {
        return Err(wav_error(path, "empty: the file holds no samples"));
    }
    Ok(AudioFrame::new(
        samples,
        spec.sample_rate,
        spec.channels,
        Duration::ZERO,
    ))
}

/// Writes `audio` to `path` as 16-bit PCM (the file is replaced).
pub fn write_wav(path: &Path, audio: &AudioFrame) -> Result<()> {
    let file = std::fs::File::create(path).map_err(VoiceError::io(format!(
        "creating the WAV file {}",
        path.display()
    )))?;
    encode(std::io::BufWriter::new(file), audio, path)
}

/// `audio` as the bytes of a 16-bit PCM WAV file.
pub fn encode_wav(audio: &AudioFrame) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    encode(&mut out, audio, Path::new("<memory>"))?;
    Ok(out.into_inner())
}

fn encode<W: Write + Seek>(writer: W, audio: &AudioFrame, path: &Path) -> Result<()> {
    if audio.channels == 0 || audio.sample_rate == 0 {
        return Err(wav_error(
            path,
            format!(
                "cannot write audio with {} channels at {} Hz",
                audio.channels, audio.sample_rate
            ),
        ));
    }
    let spec = hound::WavSpec {
        channels: audio.channels,
        sample_rate: audio.sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let failed = |error: hound::Error| wav_error(path, format!("writing: {error}"));
    let mut writer = hound::WavWriter::new(writer, spec).map_err(failed)?;
    {
        let mut samples = writer.get_i16_writer(audio.samples.len() as u32);
        for &sample in &audio.samples {
            samples.write_sample(sample);
        }
        samples.flush().map_err(failed)?;
    }
    writer.finalize().map_err(failed)
}

/// A mono 16-bit WAV file written as audio arrives (a call's recording): the rate is the
/// first frame's, later frames at another rate are converted, and the header is made
/// whole by [`finish`](Self::finish). Memory stays bounded: samples go to the file.
pub struct WavRecorder {
    path: PathBuf,
    writer: Option<hound::WavWriter<std::io::BufWriter<std::fs::File>>>,
    rate: u32,
}

impl std::fmt::Debug for WavRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavRecorder")
            .field("path", &self.path)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl WavRecorder {
    /// A recording to `path`, created with the first frame.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            writer: None,
            rate: 0,
        }
    }

    /// Where the recording goes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `frame` (made mono, and converted to the recording's rate).
    pub fn record(&mut self, frame: &AudioFrame) -> Result<()> {
        if frame.samples.is_empty() {
            return Ok(());
        }
        let failed = |error: hound::Error| wav_error(&self.path, format!("recording: {error}"));
        if self.writer.is_none() {
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: frame.sample_rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let writer = hound::WavWriter::create(&self.path, spec).map_err(failed)?;
            self.writer = Some(writer);
            self.rate = frame.sample_rate;
        }
        let mono = frame.to_mono();
        let mono = if mono.sample_rate == self.rate {
            mono
        } else {
            crate::resample::resample(&mono, self.rate)?
        };
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        for &sample in &mono.samples {
            writer
                .write_sample(sample)
                .map_err(|error| wav_error(&self.path, format!("recording: {error}")))?;
        }
        Ok(())
    }

    /// Completes the file; `Ok(None)` when nothing was recorded (no file was made).
    pub fn finish(&mut self) -> Result<Option<PathBuf>> {
        match self.writer.take() {
            Some(writer) => {
                writer
                    .finalize()
                    .map_err(|error| wav_error(&self.path, format!("recording: {error}")))?;
                Ok(Some(self.path.clone()))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_is_mono_at_the_first_rate_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let mut recorder = WavRecorder::new(dir.path().join("call.wav"));
        assert_eq!(
            recorder.finish().unwrap(),
            None,
            "nothing recorded, no file"
        );
        recorder
            .record(&AudioFrame::new(vec![100; 320], 16_000, 1, Duration::ZERO))
            .unwrap();
        // Stereo at 32 kHz: mixed down and halved to 16 kHz.
        recorder
            .record(&AudioFrame::new(vec![200; 1280], 32_000, 2, Duration::ZERO))
            .unwrap();
        let path = recorder.finish().unwrap().unwrap();
        let audio = read_wav(&path).unwrap();
        assert_eq!((audio.sample_rate, audio.channels), (16_000, 1));
        assert!(
            (630..=650).contains(&audio.samples.len()),
            "{}",
            audio.samples.len()
        );
    }

    #[test]
    fn round_trip() {
        let audio = AudioFrame::new(vec![0, 1000, -1000, 32767], 22_050, 1, Duration::ZERO);
        let bytes = encode_wav(&audio).unwrap();
        assert_eq!(decode_wav(&bytes, "x.wav").unwrap(), audio);
    }

    #[test]
    fn float_empty_garbage_and_bad_rate_are_errors() {
        let float = {
            let mut out = std::io::Cursor::new(Vec::new());
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: 16_000,
                bits_per_sample: 32,
                sample_format: hound::SampleFormat::Float,
            };
            let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
            w.write_sample(0.5f32).unwrap();
            w.finalize().unwrap();
            out.into_inner()
        };
        let error = decode_wav(&float, "f.wav").unwrap_err().to_string();
        assert!(error.contains("not PCM"), "{error}");

        let empty = encode_wav(&AudioFrame::new(vec![], 16_000, 1, Duration::ZERO)).unwrap();
        let error = decode_wav(&empty, "e.wav").unwrap_err().to_string();
        assert!(error.contains("empty"), "{error}");

        let error = decode_wav(b"hello, not a wav", "g.wav")
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a WAV"), "{error}");
        assert!(decode_wav(&[], "z.wav").is_err());

        let slow = encode_wav(&AudioFrame::new(vec![1, 2], 4_000, 1, Duration::ZERO)).unwrap();
        let error = decode_wav(&slow, "s.wav").unwrap_err().to_string();
        assert!(error.contains("4000 Hz"), "{error}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        write_wav(
            &path,
            &AudioFrame::new(vec![5; 80], 8_000, 1, Duration::ZERO),
        )
        .unwrap();
        let error = read_wav_at(&path, 16_000).unwrap_err().to_string();
        assert!(error.contains("expected 16000 Hz"), "{error}");
        assert!(read_wav(&dir.path().join("missing.wav")).is_err());
    }

    #[test]
    fn truncated_data_is_an_error_not_a_panic() {
        let bytes = encode_wav(&AudioFrame::new(vec![7; 100], 16_000, 1, Duration::ZERO)).unwrap();
        for cut in [10, 44, 45, 100] {
            let _ = decode_wav(&bytes[..cut], "t.wav");
        }
    }
}
