//! The edge: the [`Transport`] trait (audio in from a participant, audio out to them),
//! [`WavFileTransport`] (a WAV file in, a WAV file out — one spoken exchange offline),
//! [`RecordingTransport`] (any transport, its call recorded to WAV files), and
//! [`InstrumentedTransport`], which publishes the edge events: participant joined/left,
//! track added/removed, audio received, call ended.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agentbus_events::Participant;
use agentbus_events::base::PcmData;
use agentbus_events::call::CallInfo;
use agentbus_events::edge::{
    AudioReceivedEvent, EdgeCallEndedEvent, ParticipantJoinedEvent, ParticipantLeftEvent,
    TrackAddedEvent, TrackRemovedEvent, TrackType,
};
use futures::future::BoxFuture;

use crate::audio::{AudioFrame, SPEECH_RATE};
use crate::error::Result;
use crate::publish::Emitter;
use crate::resample::resample;
use crate::wav::{WavRecorder, read_wav, write_wav};

/// Where a conversation's audio comes from and goes to.
pub trait Transport: Send {
    /// The transport's name (the events' `plugin_name`).
    fn name(&self) -> &str;
    /// Who is speaking to the agent.
    fn participant(&self) -> Participant;
    /// The next frame from the participant; `None` when they are gone.
    fn recv(&mut self) -> BoxFuture<'_, Option<Result<AudioFrame>>>;
    /// Plays `frame` to the participant.
    fn send(&mut self, frame: AudioFrame) -> BoxFuture<'_, Result<()>>;
    /// Drops audio queued for playing and not yet played (barge-in).
    fn clear(&mut self) {}
    /// Ends the call (flushes what was played).
    fn close(&mut self) -> BoxFuture<'_, Result<()>>;
}

/// One exchange from files: the input WAV (any PCM rate and channels, converted to
/// 16 kHz mono) is delivered as 20 ms frames, as fast as they are read; the reply is
/// written to the output WAV, at the rate of the first reply audio, when the transport
/// closes. Silence is written between reply parts where the input's time had moved on,
/// so the output is a timeline of what the user would have heard.
#[derive(Debug)]
pub struct WavFileTransport {
    frames: std::collections::VecDeque<AudioFrame>,
    output: Option<PathBuf>,
    played: Vec<i16>,
    rate: Option<u32>,
    call_id: String,
}

impl WavFileTransport {
    /// Reads `input` (errors for a missing, empty, non-PCM file or an unusable rate);
    /// the reply goes to `output` when there is one.
    pub fn open(input: &Path, output: Option<&Path>) -> Result<Self> {
        Self::from_audio(&read_wav(input)?, output)
    }

    /// Delivers `audio` (any rate; converted to 16 kHz mono), the reply going to
    /// `output`. A rate the resampler cannot take is an error.
    pub fn from_audio(audio: &AudioFrame, output: Option<&Path>) -> Result<Self> {
        let clip = resample(audio, SPEECH_RATE)?;
        Ok(Self {
            frames: clip.split(Duration::from_millis(20)).into(),
            output: output.map(Path::to_owned),
            played: Vec::new(),
            rate: None,
            call_id: uuid::Uuid::new_v4().to_string(),
        })
    }

    /// The reply audio played so far.
    pub fn played(&self) -> AudioFrame {
        AudioFrame::new(
            self.played.clone(),
            self.rate.unwrap_or(SPEECH_RATE),
            1,
            Duration::ZERO,
        )
    }

    /// The call id used in the edge events.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }
}

impl Transport for WavFileTransport {
    fn name(&self) -> &str {
        "wav-file"
    }

    fn participant(&self) -> Participant {
        Participant {
            user_id: "user".into(),
            name: Some("WAV input".into()),
            ..Participant::default()
        }
    }

    fn recv(&mut self) -> BoxFuture<'_, Option<Result<AudioFrame>>> {
        let next = self.frames.pop_front().map(Ok);
        Box::pin(async move { next })
    }

    fn send(&mut self, frame: AudioFrame) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let rate = *self.rate.get_or_insert(frame.sample_rate);
            let frame = if frame.sample_rate == rate && frame.channels == 1 {
                frame
            } else {
                resample(&frame, rate)?
            };
            self.played.extend_from_slice(&frame.samples);
            Ok(())
        })
    }

    fn close(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if let Some(path) = &self.output {
                write_wav(path, &self.played())?;
            }
            Ok(())
        })
    }
}

/// A [`Transport`] that records the call: what the participant said (16 kHz as it
/// arrives) and what was played to them, in two mono WAV files, written as the call goes.
/// A recording that fails to write is logged and stopped; the call goes on.
pub struct RecordingTransport {
    inner: Box<dyn Transport>,
    user: Option<WavRecorder>,
    agent: Option<WavRecorder>,
}

impl std::fmt::Debug for RecordingTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingTransport")
            .field("transport", &self.inner.name())
            .finish_non_exhaustive()
    }
}

impl RecordingTransport {
    /// Records `inner`'s call into `DIR/{stem}.user.wav` and `DIR/{stem}.agent.wav`.
    pub fn new(inner: Box<dyn Transport>, dir: &Path, stem: &str) -> Self {
        Self {
            inner,
            user: Some(WavRecorder::new(dir.join(format!("{stem}.user.wav")))),
            agent: Some(WavRecorder::new(dir.join(format!("{stem}.agent.wav")))),
        }
    }
}

fn record_into(recorder: &mut Option<WavRecorder>, frame: &AudioFrame) {
    if let Some(active) = recorder
        && let Err(error) = active.record(frame)
    {
        tracing::warn!(%error, "the call's recording stopped");
        *recorder = None;
    }
}

fn finish_recording(recorder: &mut Option<WavRecorder>) {
    if let Some(mut active) = recorder.take() {
        match active.finish() {
            Ok(Some(path)) => tracing::info!(path = %path.display(), "call recorded"),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "the call's recording is incomplete"),
        }
    }
}

impl Transport for RecordingTransport {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn participant(&self) -> Participant {
        self.inner.participant()
    }

    fn recv(&mut self) -> BoxFuture<'_, Option<Result<AudioFrame>>> {
        Box::pin(async move {
            let frame = self.inner.recv().await;
            if let Some(Ok(frame)) = &frame {
                record_into(&mut self.user, frame);
            }
            frame
        })
    }

    fn send(&mut self, frame: AudioFrame) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            record_into(&mut self.agent, &frame);
            self.inner.send(frame).await
        })
    }

    fn clear(&mut self) {
        self.inner.clear();
    }

    fn close(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            finish_recording(&mut self.user);
            finish_recording(&mut self.agent);
            self.inner.close().await
        })
    }
}

/// A [`Transport`] whose participant, tracks and audio are published.
pub struct InstrumentedTransport {
    inner: Box<dyn Transport>,
    emitter: Emitter,
    call: CallInfo,
    track_id: String,
    /// Publish the samples in `plugin.edge.audio_received` (large; off by default).
    pub include_audio: bool,
    joined: bool,
}

impl std::fmt::Debug for InstrumentedTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentedTransport")
            .field("transport", &self.inner.name())
            .field("call", &self.call)
            .finish_non_exhaustive()
    }
}

impl InstrumentedTransport {
    /// Wraps `inner` on the call `call_id`.
    pub fn new(inner: Box<dyn Transport>, emitter: Emitter, call_id: impl Into<String>) -> Self {
        let emitter = emitter.renamed(inner.name().to_owned());
        Self {
            inner,
            emitter,
            call: CallInfo::new(call_id),
            track_id: uuid::Uuid::new_v4().to_string(),
            include_audio: false,
            joined: false,
        }
    }

    fn meta(&self) -> agentbus_events::EventMeta {
        let mut meta = self.emitter.meta();
        meta.participant = Some(Box::new(self.inner.participant()));
        meta
    }

    /// Publishes the participant joining and their audio track (once).
    pub async fn open(&mut self) {
        if self.joined {
            return;
        }
        self.joined = true;
        self.emitter
            .emit(ParticipantJoinedEvent {
                meta: self.meta(),
                plugin: self.emitter.plugin(),
                call: self.call.clone(),
            })
            .await;
        self.emitter
            .emit(TrackAddedEvent {
                meta: self.meta(),
                plugin: self.emitter.plugin(),
                track_id: Some(self.track_id.clone()),
                track_type: Some(TrackType::Audio),
            })
            .await;
    }

    /// The next frame from the participant, published as `plugin.edge.audio_received`.
    pub async fn recv(&mut self) -> Option<Result<AudioFrame>> {
        self.open().await;
        let frame = self.inner.recv().await;
        if let Some(Ok(frame)) = &frame {
            self.emitter
                .emit(AudioReceivedEvent {
                    meta: self.meta(),
                    plugin: self.emitter.plugin(),
                    pcm_data: Some(if self.include_audio {
                        frame.to_pcm_data()
                    } else {
                        PcmData {
                            samples: Vec::new(),
                            ..frame.to_pcm_data()
                        }
                    }),
                })
                .await;
        }
        frame
    }

    /// Plays `frame`.
    pub async fn send(&mut self, frame: AudioFrame) -> Result<()> {
        self.inner.send(frame).await
    }

    /// Drops queued output.
    pub fn clear(&mut self) {
        self.inner.clear();
    }

    /// Ends the call: track removed, participant left, call ended.
    pub async fn close(&mut self) -> Result<()> {
        let result = self.inner.close().await;
        if self.joined {
            self.emitter
                .emit(TrackRemovedEvent {
                    meta: self.meta(),
                    plugin: self.emitter.plugin(),
                    track_id: Some(self.track_id.clone()),
                    track_type: Some(TrackType::Audio),
                })
                .await;
            self.emitter
                .emit(ParticipantLeftEvent {
                    meta: self.meta(),
                    plugin: self.emitter.plugin(),
                    call: self.call.clone(),
                })
                .await;
            self.emitter
                .emit(EdgeCallEndedEvent {
                    meta: self.emitter.meta(),
                    plugin: self.emitter.plugin(),
                    call: self.call.clone(),
                })
                .await;
            self.joined = false;
        }
        result
    }

    /// The wrapped transport.
    pub fn inner(&self) -> &dyn Transport {
        self.inner.as_ref()
    }
}
