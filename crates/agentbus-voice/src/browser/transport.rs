//! [`BrowserTransport`]: a page's microphone in, the reply's audio out, over one
//! WebSocket (the protocol is in the [module above](super)).
//!
//! Two tasks own the socket's halves. The reader turns binary messages into
//! [`AudioFrame`]s and queues them (bounded: a page that sends faster than the pipeline
//! reads is slowed down by TCP); the writer sends what the pipeline and the event view
//! queue (bounded too). Barge-in ([`Transport::clear`]) moves to a new generation: audio
//! of an older generation still queued is dropped by the writer, which tells the page to
//! stop what it already scheduled.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agentbus_events::Participant;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::audio::{AudioFrame, SPEECH_RATE, pcm16_le};
use crate::error::{Result, VoiceError};
use crate::resample::{StreamResampler, samples_duration};
use crate::transport::Transport;

/// Limits of one browser connection.
#[derive(Clone, Debug)]
pub struct BrowserLimits {
    /// The largest message the page may send (bytes; a 20 ms frame at 48 kHz is 1,920).
    pub max_message: usize,
    /// How long the page has to say hello after connecting.
    pub hello_timeout: Duration,
    /// How long the page may send nothing before the call is ended.
    pub idle_timeout: Duration,
    /// Frames waiting for the pipeline.
    pub input_queue: usize,
    /// Messages waiting to be written to the page.
    pub output_queue: usize,
}

impl Default for BrowserLimits {
    fn default() -> Self {
        Self {
            max_message: 64 * 1024,
            hello_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            input_queue: 64,
            output_queue: 256,
        }
    }
}

/// The page's first message.
#[derive(Clone, Debug, Deserialize)]
pub struct Hello {
    /// The microphone's sample rate (8,000 to 48,000 Hz); its frames are mono s16le.
    pub sample_rate: u32,
    /// The name the person gave, if any.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FromPage {
    Hello(Hello),
    Bye,
}

/// What the writer sends to the page.
#[derive(Debug)]
enum ToPage {
    Audio { generation: u64, frame: AudioFrame },
    Text(String),
    Clear,
    Close,
}

/// Sends JSON messages to the page beside the audio (the event view); cheap to clone.
#[derive(Clone, Debug)]
pub struct PageSender(mpsc::Sender<ToPage>);

impl PageSender {
    /// Queues `message` for the page without waiting: `false` when the queue is full or
    /// the page is gone (the message is dropped; the event view is best effort, the
    /// audio is not).
    pub fn try_send(&self, message: String) -> bool {
        self.0.try_send(ToPage::Text(message)).is_ok()
    }
}

/// The edge [`Transport`] of one browser page.
#[derive(Debug)]
pub struct BrowserTransport {
    participant: Participant,
    frames: mpsc::Receiver<Result<AudioFrame>>,
    out: mpsc::Sender<ToPage>,
    generation: Arc<AtomicU64>,
    reader: JoinHandle<()>,
    writer: Option<JoinHandle<()>>,
}

fn protocol(reason: impl Into<String>) -> VoiceError {
    VoiceError::Remote {
        engine: "browser".into(),
        reason: reason.into(),
        recoverable: false,
    }
}

/// Waits for the page's hello.
async fn read_hello(socket: &mut WebSocket, limits: &BrowserLimits) -> Result<Hello> {
    let first = tokio::time::timeout(limits.hello_timeout, socket.next())
        .await
        .map_err(|_| {
            protocol(format!(
                "the page said nothing for {:?} after connecting",
                limits.hello_timeout
            ))
        })?;
    let text = match first {
        Some(Ok(Message::Text(text))) => text,
        Some(Ok(_)) => return Err(protocol("the first message must be the JSON hello")),
        Some(Err(error)) => return Err(protocol(format!("reading the hello: {error}"))),
        None => return Err(protocol("the page left before its hello")),
    };
    match serde_json::from_str::<FromPage>(text.as_str()) {
        Ok(FromPage::Hello(hello)) if (8_000..=48_000).contains(&hello.sample_rate) => Ok(hello),
        Ok(FromPage::Hello(hello)) => Err(protocol(format!(
            "sample rate {} Hz is outside 8000..=48000",
            hello.sample_rate
        ))),
        Ok(FromPage::Bye) => Err(protocol("the page said bye before hello")),
        Err(error) => Err(protocol(format!("the hello is not valid: {error}"))),
    }
}

impl BrowserTransport {
    /// Reads the page's hello from `socket` and starts the call's reader and writer.
    ///
    /// # Errors
    /// No hello within [`BrowserLimits::hello_timeout`], a first message that is not a
    /// valid hello, or a sample rate outside 8–48 kHz.
    pub async fn accept(mut socket: WebSocket, limits: &BrowserLimits) -> Result<(Self, Hello)> {
        let hello = read_hello(&mut socket, limits).await?;
        let (sink, stream) = socket.split();
        let (frame_tx, frames) = mpsc::channel(limits.input_queue.max(1));
        let (out, out_rx) = mpsc::channel(limits.output_queue.max(1));
        let generation = Arc::new(AtomicU64::new(0));
        let reader = tokio::spawn(read_frames(
            stream,
            frame_tx,
            hello.sample_rate,
            limits.idle_timeout,
        ));
        let writer = tokio::spawn(write_page(sink, out_rx, generation.clone()));
        let participant = Participant {
            user_id: "browser-user".into(),
            name: hello.name.clone().or_else(|| Some("browser".into())),
            participant_session_id: Some(uuid::Uuid::new_v4().to_string()),
            custom: None,
        };
        Ok((
            Self {
                participant,
                frames,
                out,
                generation,
                reader,
                writer: Some(writer),
            },
            hello,
        ))
    }

    /// A sender of JSON messages to the page.
    pub fn page(&self) -> PageSender {
        PageSender(self.out.clone())
    }
}

impl Drop for BrowserTransport {
    fn drop(&mut self) {
        self.reader.abort();
        if let Some(writer) = &self.writer {
            writer.abort();
        }
    }
}

async fn read_frames(
    mut stream: futures::stream::SplitStream<WebSocket>,
    frames: mpsc::Sender<Result<AudioFrame>>,
    rate: u32,
    idle: Duration,
) {
    // Frames reach the pipeline at 16 kHz, converted once here rather than by each stage.
    let mut resampler = if rate == SPEECH_RATE {
        None
    } else {
        match StreamResampler::new(rate, SPEECH_RATE) {
            Ok(resampler) => Some(resampler),
            Err(error) => {
                let _ = frames.send(Err(error)).await;
                return;
            }
        }
    };
    let mut samples_out: u64 = 0;
    loop {
        let message = match tokio::time::timeout(idle, stream.next()).await {
            Err(_) => Err(protocol(format!("the page sent nothing for {idle:?}"))),
            Ok(None) | Ok(Some(Ok(Message::Close(_)))) => return,
            Ok(Some(Err(error))) => Err(protocol(format!("reading from the page: {error}"))),
            Ok(Some(Ok(message))) => Ok(message),
        };
        let frame = match message {
            Ok(Message::Binary(bytes)) => {
                let converted = AudioFrame::from_le_bytes(&bytes, rate, 1, Duration::ZERO)
                    .map_err(|error| protocol(format!("an audio message: {error}")))
                    .and_then(|frame| match &mut resampler {
                        Some(resampler) => resampler.push(&frame.samples),
                        None => Ok(frame.samples),
                    });
                match converted {
                    Ok(samples) if samples.is_empty() => continue,
                    Ok(samples) => {
                        let timestamp = samples_duration(samples_out as usize, SPEECH_RATE);
                        samples_out += samples.len() as u64;
                        Ok(AudioFrame::new(samples, SPEECH_RATE, 1, timestamp))
                    }
                    Err(error) => Err(error),
                }
            }
            Ok(Message::Text(text)) => match serde_json::from_str::<FromPage>(text.as_str()) {
                Ok(FromPage::Bye) => return,
                Ok(FromPage::Hello(_)) => Err(protocol("a second hello")),
                Err(error) => Err(protocol(format!("a message from the page: {error}"))),
            },
            Ok(_) => continue,
            Err(error) => Err(error),
        };
        let failed = frame.is_err();
        if frames.send(frame).await.is_err() || failed {
            return;
        }
    }
}

fn encode_audio(frame: &AudioFrame) -> Vec<u8> {
    let mut bytes = frame.sample_rate.to_le_bytes().to_vec();
    bytes.extend_from_slice(&pcm16_le(&frame.samples));
    bytes
}

const CLEAR: &str = r#"{"type":"clear"}"#;

async fn write_page(
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<ToPage>,
    generation: Arc<AtomicU64>,
) {
    let mut cleared = 0;
    while let Some(item) = queue.recv().await {
        let current = generation.load(Ordering::SeqCst);
        let message = match item {
            ToPage::Audio {
                generation: of,
                frame,
            } if of == current => Message::Binary(encode_audio(&frame).into()),
            ToPage::Audio { .. } | ToPage::Clear if cleared < current => {
                cleared = current;
                Message::Text(Utf8Bytes::from_static(CLEAR))
            }
            ToPage::Audio { .. } | ToPage::Clear => continue,
            ToPage::Text(text) => Message::Text(text.into()),
            ToPage::Close => {
                let _ = sink
                    .send(Message::Text(Utf8Bytes::from_static(r#"{"type":"done"}"#)))
                    .await;
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code: 1000,
                        reason: Utf8Bytes::from_static("the call ended"),
                    })))
                    .await;
                return;
            }
        };
        if let Err(error) = sink.send(message).await {
            tracing::debug!(%error, "the page is gone");
            return;
        }
    }
}

impl Transport for BrowserTransport {
    fn name(&self) -> &str {
        "browser"
    }

    fn participant(&self) -> Participant {
        self.participant.clone()
    }

    fn recv(&mut self) -> BoxFuture<'_, Option<Result<AudioFrame>>> {
        Box::pin(self.frames.recv())
    }

    fn send(&mut self, frame: AudioFrame) -> BoxFuture<'_, Result<()>> {
        let generation = self.generation.load(Ordering::SeqCst);
        Box::pin(async move {
            // A page that is gone hears nothing; its input ends, which ends the call.
            let _ = self.out.send(ToPage::Audio { generation, frame }).await;
            Ok(())
        })
    }

    fn clear(&mut self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        // When the queue is full, the writer sends the clear on the first stale frame.
        let _ = self.out.try_send(ToPage::Clear);
    }

    fn close(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let _ = self.out.send(ToPage::Close).await;
            if let Some(mut writer) = self.writer.take() {
                // The page may have stopped reading: what it has not taken in 5 s is lost.
                if tokio::time::timeout(Duration::from_secs(5), &mut writer)
                    .await
                    .is_err()
                {
                    writer.abort();
                    tracing::debug!("the page did not take the end of the call in 5 s");
                }
            }
            Ok(())
        })
    }
}
