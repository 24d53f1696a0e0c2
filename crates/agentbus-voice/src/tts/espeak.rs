//! [`EspeakTts`]: offline speech with the `espeak-ng` program (Debian `espeak-ng`),
//! streamed: the program writes a WAV stream on stdout as it synthesises, and the audio
//! is handed on in chunks as the bytes arrive.

use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdout, Command};

use crate::audio::AudioFrame;
use crate::error::{Result, VoiceError};
use crate::tts::{Tts, no_audio};

/// Samples per chunk handed on (about 46 ms at espeak-ng's 22,050 Hz).
const CHUNK_SAMPLES: usize = 1024;

/// Text to speech with `espeak-ng`.
///
/// ```no_run
/// use futures::StreamExt;
/// use agentbus_voice::tts::{EspeakTts, Tts};
///
/// # async fn demo() -> Result<(), agentbus_voice::VoiceError> {
/// let tts = EspeakTts::default();
/// let mut audio = tts.synthesize("Hello.");
/// while let Some(chunk) = audio.next().await {
///     let chunk = chunk?;
///     println!("{} samples at {} Hz", chunk.samples.len(), chunk.sample_rate);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct EspeakTts {
    /// The program (default `espeak-ng`).
    pub program: String,
    /// The voice (`-v`, default `en-us`).
    pub voice: String,
    /// Words per minute (`-s`, default 175).
    pub words_per_minute: u32,
}

impl Default for EspeakTts {
    fn default() -> Self {
        Self {
            program: "espeak-ng".into(),
            voice: "en-us".into(),
            words_per_minute: 175,
        }
    }
}

fn program_error(program: &str, reason: impl Into<String>) -> VoiceError {
    VoiceError::Program {
        program: program.to_owned(),
        reason: reason.into(),
    }
}

struct Running {
    program: String,
    child: Child,
    stdout: ChildStdout,
    rate: u32,
    channels: u16,
    position: Duration,
    produced: bool,
    finished: bool,
}

/// Reads a WAV header from a stream up to the start of the `data` chunk: (rate, channels).
pub(crate) async fn read_wav_stream_header<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<std::result::Result<(u32, u16), String>> {
    let mut riff = [0u8; 12];
    reader.read_exact(&mut riff).await?;
    if &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
        return Ok(Err("the output is not a WAV stream".into()));
    }
    let mut format = None;
    loop {
        let mut header = [0u8; 8];
        reader.read_exact(&mut header).await?;
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        match &header[0..4] {
            b"fmt " => {
                if !(16..=64).contains(&size) {
                    return Ok(Err(format!("a fmt chunk of {size} bytes")));
                }
                let mut fmt = vec![0u8; size as usize];
                reader.read_exact(&mut fmt).await?;
                let tag = u16::from_le_bytes([fmt[0], fmt[1]]);
                let channels = u16::from_le_bytes([fmt[2], fmt[3]]);
                let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
                let bits = u16::from_le_bytes([fmt[14], fmt[15]]);
                if tag != 1 || bits != 16 || channels == 0 || rate == 0 {
                    return Ok(Err(format!(
                        "not 16-bit PCM (format {tag}, {bits} bits, {channels} channels, {rate} Hz)"
                    )));
                }
                format = Some((rate, channels));
            }
            b"data" => {
                return Ok(format.ok_or_else(|| "a data chunk before the fmt chunk".to_owned()));
            }
            _ => {
                if size > 1 << 20 {
                    return Ok(Err(format!("an unexpected {size}-byte chunk")));
                }
                let mut skip = vec![0u8; size as usize + (size as usize & 1)];
                reader.read_exact(&mut skip).await?;
            }
        }
    }
}

impl EspeakTts {
    async fn start(&self, text: String) -> Result<Running> {
        let mut child = Command::new(&self.program)
            .args(["--stdout", "-v", &self.voice, "-s"])
            .arg(self.words_per_minute.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| {
                if error.kind() == std::io::ErrorKind::NotFound {
                    program_error(
                        &self.program,
                        "not found: install it (`apt-get install espeak-ng`) or pick another TTS engine",
                    )
                } else {
                    program_error(&self.program, format!("could not start: {error}"))
                }
            })?;
        // The text goes through stdin, so nothing in it can be taken for an option.
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|error| program_error(&self.program, format!("writing the text: {error}")))?;
        drop(stdin);
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let (rate, channels) = match read_wav_stream_header(&mut stdout).await {
            Ok(Ok(format)) => format,
            Ok(Err(reason)) => return Err(program_error(&self.program, reason)),
            Err(error) => {
                let status = child.wait().await.ok();
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr).await;
                }
                return Err(program_error(
                    &self.program,
                    format!(
                        "no audio ({error}; exit {}): {}",
                        status.map(|s| s.to_string()).unwrap_or_default(),
                        stderr.trim()
                    ),
                ));
            }
        };
        Ok(Running {
            program: self.program.clone(),
            child,
            stdout,
            rate,
            channels,
            position: Duration::ZERO,
            produced: false,
            finished: false,
        })
    }
}

impl Running {
    async fn next_chunk(&mut self) -> Option<Result<AudioFrame>> {
        if self.finished {
            return None;
        }
        let want = CHUNK_SAMPLES * 2 * usize::from(self.channels);
        let mut bytes = vec![0u8; want];
        let mut filled = 0;
        while filled < want {
            match self.stdout.read(&mut bytes[filled..]).await {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(error) => {
                    self.finished = true;
                    return Some(Err(program_error(
                        &self.program,
                        format!("reading audio: {error}"),
                    )));
                }
            }
        }
        filled -= filled % (2 * usize::from(self.channels));
        if filled == 0 {
            self.finished = true;
            let status = self.child.wait().await;
            return match status {
                Ok(status) if !status.success() => Some(Err(program_error(
                    &self.program,
                    format!("exited with {status}"),
                ))),
                Err(error) => Some(Err(program_error(&self.program, error.to_string()))),
                Ok(_) if !self.produced => Some(Err(no_audio(&self.program))),
                Ok(_) => None,
            };
        }
        bytes.truncate(filled);
        let frame = AudioFrame::from_le_bytes(&bytes, self.rate, self.channels, self.position)
            .expect("an even number of bytes");
        self.position = frame.end();
        self.produced = true;
        Some(Ok(frame))
    }
}

impl Tts for EspeakTts {
    fn name(&self) -> &str {
        "espeak-ng"
    }

    fn voice(&self) -> Option<String> {
        Some(self.voice.clone())
    }

    fn synthesize(&self, text: &str) -> BoxStream<'static, Result<AudioFrame>> {
        let engine = self.clone();
        let text = text.to_owned();
        futures::stream::once(async move { engine.start(text).await })
            .flat_map(|started| match started {
                Err(error) => futures::stream::iter([Err(error)]).boxed(),
                Ok(running) => futures::stream::unfold(running, |mut running| async move {
                    let chunk = running.next_chunk().await?;
                    Some((chunk, running))
                })
                .boxed(),
            })
            .boxed()
    }
}
