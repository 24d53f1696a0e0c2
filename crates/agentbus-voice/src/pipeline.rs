//! [`VoicePipeline`]: transport → VAD → turn detection → STT → the ReAct agent
//! (streaming) → TTS sentence by sentence → transport, with barge-in.
//!
//! **Epochs.** Every user turn that interrupts the agent starts a new epoch (the shared
//! [`Epoch`] counter). A reply is made in the epoch of the turn it answers, and its
//! events carry that number. On barge-in — VAD hears speech start while the agent is
//! thinking or its reply is still playing — the pipeline bumps the epoch, cancels the
//! reply (its LLM call and TTS stop: the reply task is aborted and awaited before anything
//! else happens), interrupts the agent, clears the transport's queued audio, and drops
//! any reply audio of an older epoch that was already queued. So nothing of the
//! interrupted turn is played or published once the new turn has started.
//!
//! **Time.** Stream time is the input frames' timestamps: "the reply is still playing"
//! means its audio, laid after the input's current position, has not run out. Latencies
//! are read on the injectable [`Clock`](crate::clock::Clock), so tests that drive frames
//! by hand ([`VoicePipeline::on_frame`], [`VoicePipeline::next_reply`]) are
//! deterministic.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use agentbus_agent::{Agent, AgentOutput, CancellationToken, RunRequest};
use agentbus_events::Participant;
use agentbus_events::agent::{UserTranscriptEvent, UserTurnEndedEvent, UserTurnStartedEvent};
use agentbus_events::react::{ChunkChannel, ReactEvent, ReactOutput};
use agentbus_llm::Message;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::audio::AudioFrame;
use crate::clock::{SharedClock, SystemClock};
use crate::error::Result;
use crate::processor::ProcessorChain;
use crate::publish::{Emitter, Epoch};
use crate::sentences::SentenceSplitter;
use crate::stt::{InstrumentedStt, Stt};
use crate::transport::{InstrumentedTransport, Transport};
use crate::tts::{InstrumentedTts, SynthesisItem, SynthesisReport, Tts};
use crate::turn::{InstrumentedTurnDetector, TurnConfig, TurnDetector, TurnSignal};
use crate::vad::{InstrumentedVad, Vad, VadConfig};

/// How the pipeline behaves.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Speech start/end hysteresis.
    pub vad: VadConfig,
    /// The participant's id in the turn events.
    pub participant_id: String,
    /// Audio kept from before the detected speech start and given to STT with the turn
    /// (the VAD needs some speech before it decides).
    pub pre_roll: Duration,
    /// Reply chunks that may wait between TTS and the transport.
    pub reply_queue: usize,
    /// Silence fed after the input ends, so a turn still open is closed.
    pub tail_silence: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            vad: VadConfig::default(),
            participant_id: "user".into(),
            pre_roll: Duration::from_millis(300),
            reply_queue: 4,
            tail_silence: TurnConfig::default().silence + Duration::from_millis(400),
        }
    }
}

/// The engines of one pipeline.
pub struct Stages {
    /// Voice activity detection.
    pub vad: Box<dyn Vad>,
    /// Turn detection.
    pub turn: Box<dyn TurnDetector>,
    /// Speech to text.
    pub stt: Box<dyn Stt>,
    /// Text to speech.
    pub tts: Arc<dyn Tts>,
    /// The agent that answers.
    pub agent: Agent,
}

/// What happened in one exchange (a user turn and the reply to it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExchangeReport {
    /// The epoch of the turn.
    pub epoch: u64,
    /// What the user said.
    pub transcript: String,
    /// STT: from the end of the turn to the final transcript.
    pub stt_latency: Duration,
    /// The silence that ended the turn.
    pub trailing_silence: Duration,
    /// The reply's text as spoken (sentence by sentence).
    pub reply: Vec<String>,
    /// Each sentence's synthesis.
    pub tts: Vec<SynthesisReport>,
    /// From the end of user speech to the first reply audio (trailing silence included).
    pub voice_to_voice: Option<Duration>,
    /// Reply audio played.
    pub reply_audio: Duration,
    /// Whether the user cut the reply short.
    pub interrupted: bool,
}

/// What a whole run did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PipelineReport {
    /// The exchanges, in order.
    pub exchanges: Vec<ExchangeReport>,
    /// How many times the user barged in.
    pub interruptions: u64,
    /// Reply chunks dropped because their epoch was over.
    pub stale_chunks_dropped: u64,
}

/// A message from a reply task to the pipeline.
#[derive(Debug)]
enum ReplyMsg {
    Audio {
        epoch: u64,
        frame: AudioFrame,
        first: Option<Duration>,
    },
    Finished {
        epoch: u64,
        history: Option<Vec<Message>>,
        sentences: Vec<String>,
        tts: Vec<SynthesisReport>,
    },
}

impl ReplyMsg {
    fn epoch(&self) -> u64 {
        match self {
            ReplyMsg::Audio { epoch, .. } | ReplyMsg::Finished { epoch, .. } => *epoch,
        }
    }
}

struct Reply {
    epoch: u64,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// What [`VoicePipeline::next_reply`] did with one message of the reply in progress.
#[derive(Clone, Debug, PartialEq)]
pub enum ReplyProgress {
    /// A chunk of the current reply was played.
    Played(AudioFrame),
    /// A message of an interrupted reply was dropped.
    Dropped,
    /// The current reply finished.
    Finished,
}

/// The voice pipeline.
pub struct VoicePipeline {
    config: PipelineConfig,
    emitter: Emitter,
    clock: SharedClock,
    epoch: Epoch,
    vad: InstrumentedVad<Box<dyn Vad>>,
    turn: InstrumentedTurnDetector<Box<dyn TurnDetector>>,
    stt: InstrumentedStt,
    tts: Arc<dyn Tts>,
    agent: Agent,
    transport: InstrumentedTransport,
    input: ProcessorChain,
    participant: Participant,
    pre_roll: VecDeque<AudioFrame>,
    in_turn: bool,
    reply: Option<Reply>,
    reply_tx: mpsc::Sender<ReplyMsg>,
    reply_rx: Option<mpsc::Receiver<ReplyMsg>>,
    history: Vec<Message>,
    stream_now: Duration,
    speaking_until: Duration,
    report: PipelineReport,
}

impl std::fmt::Debug for VoicePipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoicePipeline")
            .field("epoch", &self.epoch.get())
            .field("in_turn", &self.in_turn)
            .finish_non_exhaustive()
    }
}

impl VoicePipeline {
    /// A pipeline of `stages` over `transport`, publishing through `emitter` (its session
    /// id is stamped on every stage's events), timing on the system clock.
    pub fn new(
        stages: Stages,
        transport: Box<dyn Transport>,
        emitter: Emitter,
        config: PipelineConfig,
    ) -> Self {
        Self::with_clock(
            stages,
            transport,
            emitter,
            config,
            Arc::new(SystemClock::new()),
        )
    }

    /// [`new`](Self::new) with an injected clock.
    pub fn with_clock(
        stages: Stages,
        transport: Box<dyn Transport>,
        emitter: Emitter,
        config: PipelineConfig,
        clock: SharedClock,
    ) -> Self {
        let epoch = emitter.epoch().clone();
        let participant = transport.participant();
        let call_id = emitter
            .session_id()
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let (reply_tx, reply_rx) = mpsc::channel(config.reply_queue.max(1));
        Self {
            vad: InstrumentedVad::new(stages.vad, config.vad.clone(), emitter.clone()),
            turn: InstrumentedTurnDetector::new(stages.turn, emitter.clone())
                .with_participant(config.participant_id.clone()),
            stt: InstrumentedStt::new(stages.stt, emitter.clone(), clock.clone()),
            tts: stages.tts,
            agent: stages.agent,
            transport: InstrumentedTransport::new(transport, emitter.clone(), call_id),
            input: ProcessorChain::new(),
            participant,
            config,
            emitter: emitter.renamed("voice-pipeline"),
            clock,
            epoch,
            pre_roll: VecDeque::new(),
            in_turn: false,
            reply: None,
            reply_tx,
            reply_rx: Some(reply_rx),
            history: Vec::new(),
            stream_now: Duration::ZERO,
            speaking_until: Duration::ZERO,
            report: PipelineReport::default(),
        }
    }

    /// The same pipeline running `input` on every frame before voice activity detection.
    pub fn with_input(mut self, input: ProcessorChain) -> Self {
        self.input = input;
        self
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch.get()
    }

    /// Whether the agent is thinking or its reply is still playing.
    pub fn agent_busy(&self) -> bool {
        self.reply.is_some() || self.stream_now < self.speaking_until
    }

    /// The report so far.
    pub fn report(&self) -> &PipelineReport {
        &self.report
    }

    /// The transport.
    pub fn transport(&self) -> &InstrumentedTransport {
        &self.transport
    }

    fn lifecycle_meta(&self) -> agentbus_events::EventMeta {
        let mut meta = self.emitter.meta();
        meta.participant = Some(Box::new(self.participant.clone()));
        meta
    }

    /// Processes one input frame: the input processors, VAD, turn detection, STT, and at
    /// the end of a turn the start of the reply; speech over the agent interrupts it.
    pub async fn on_frame(&mut self, frame: AudioFrame) -> Result<()> {
        let Some(frame) = self.input.process(frame)? else {
            return Ok(());
        };
        self.stream_now = frame.end();
        let activities = self.vad.detect(&frame).await?;
        let mut frame_taken = false;
        for activity in activities {
            // The reply is gone before the speech start that interrupts it is published:
            // no event of the old epoch follows it on the bus.
            if activity.started.is_some() && self.agent_busy() {
                self.barge_in().await;
            }
            self.vad.publish(&activity).await;
            match self.turn.on_activity(&activity).await {
                Some(TurnSignal::Started { .. }) => {
                    self.in_turn = true;
                    self.emitter
                        .emit(UserTurnStartedEvent {
                            meta: self.lifecycle_meta(),
                        })
                        .await;
                    // The turn's audio: what led up to the decision, then this frame.
                    let earlier: Vec<AudioFrame> = self.pre_roll.drain(..).collect();
                    for earlier in &earlier {
                        self.push_stt(earlier).await;
                    }
                    self.push_stt(&frame).await;
                    frame_taken = true;
                }
                Some(TurnSignal::Ended {
                    trailing_silence, ..
                }) => {
                    self.in_turn = false;
                    self.end_turn(trailing_silence).await;
                }
                None => {}
            }
        }
        if !frame_taken {
            if self.in_turn {
                self.push_stt(&frame).await;
            } else {
                self.pre_roll.push_back(frame);
                let mut kept: Duration = self.pre_roll.iter().map(AudioFrame::duration).sum();
                while kept > self.config.pre_roll {
                    match self.pre_roll.pop_front() {
                        Some(old) => kept -= old.duration(),
                        None => break,
                    }
                }
            }
        }
        Ok(())
    }

    async fn push_stt(&mut self, frame: &AudioFrame) {
        match self.stt.push(frame).await {
            Ok(partials) => {
                if let Some(last) = partials.last() {
                    self.turn.on_transcript(&last.text);
                }
            }
            Err(error) => {
                tracing::warn!(%error, "STT refused audio (published as plugin.stt_error)")
            }
        }
    }

    async fn end_turn(&mut self, trailing_silence: Duration) {
        let detected = self.clock.now();
        self.emitter
            .emit(UserTurnEndedEvent {
                meta: self.lifecycle_meta(),
            })
            .await;
        let (transcript, stt_latency) = match self.stt.finish().await {
            Ok(result) => result,
            Err(error) => {
                tracing::warn!(%error, "no transcript for the turn (published as plugin.stt_error)");
                return;
            }
        };
        self.turn.on_transcript(&transcript.text);
        let text = transcript.text.trim().to_owned();
        if text.is_empty() {
            return;
        }
        self.emitter
            .emit(UserTranscriptEvent {
                meta: self.lifecycle_meta(),
                text: text.clone(),
            })
            .await;
        let epoch = self.epoch.get();
        self.report.exchanges.push(ExchangeReport {
            epoch,
            transcript: text.clone(),
            stt_latency,
            trailing_silence,
            ..ExchangeReport::default()
        });
        // Voice-to-voice counts from the end of speech: the turn was called
        // `trailing_silence` after it, and the reply starts after STT.
        let speech_ended = detected.saturating_sub(trailing_silence);
        self.start_reply(text, epoch, speech_ended);
    }

    fn start_reply(&mut self, text: String, epoch: u64, speech_ended: Duration) {
        let cancel = CancellationToken::new();
        let mut request = RunRequest::new(text)
            .history(self.history.clone())
            .cancellation(cancel.clone());
        if let Some(session) = self.emitter.session_id() {
            request = request.session_id(session.to_owned());
        }
        let tts = InstrumentedTts::new(
            self.tts.clone(),
            self.emitter.clone().with_epoch(Epoch::at(epoch)),
            self.clock.clone(),
        );
        let task = tokio::spawn(reply_task(
            self.agent.clone(),
            request,
            tts,
            self.reply_tx.clone(),
            epoch,
            speech_ended,
            self.clock.clone(),
        ));
        self.reply = Some(Reply {
            epoch,
            cancel,
            task,
        });
    }

    /// Barge-in: a new epoch; the reply in progress is stopped and gone before this
    /// returns.
    async fn barge_in(&mut self) {
        let epoch = self.epoch.bump();
        tracing::debug!(epoch, "barge-in");
        self.report.interruptions += 1;
        if let Some(reply) = self.reply.take() {
            reply.cancel.cancel();
            reply.task.abort();
            let _ = reply.task.await;
            if let Some(exchange) = self
                .report
                .exchanges
                .iter_mut()
                .rev()
                .find(|e| e.epoch == reply.epoch)
            {
                exchange.interrupted = true;
            }
        } else if let Some(exchange) = self.report.exchanges.last_mut() {
            exchange.interrupted = true;
        }
        self.agent.interrupt();
        self.transport.clear();
        self.speaking_until = self.stream_now;
        // Whatever the old reply had queued is dropped now, not played later.
        if let Some(rx) = self.reply_rx.as_mut() {
            while let Ok(message) = rx.try_recv() {
                if message.epoch() != self.epoch.get() {
                    self.report.stale_chunks_dropped += 1;
                }
            }
        }
    }

    async fn handle_reply(&mut self, message: ReplyMsg) -> Result<ReplyProgress> {
        if message.epoch() != self.epoch.get()
            || self.reply.as_ref().map(|r| r.epoch) != Some(message.epoch())
        {
            self.report.stale_chunks_dropped += 1;
            return Ok(ReplyProgress::Dropped);
        }
        match message {
            ReplyMsg::Audio {
                frame,
                first,
                epoch,
            } => {
                let start = self.speaking_until.max(self.stream_now);
                self.speaking_until = start + frame.duration();
                if let Some(exchange) = self
                    .report
                    .exchanges
                    .iter_mut()
                    .rev()
                    .find(|e| e.epoch == epoch)
                {
                    exchange.reply_audio += frame.duration();
                    if let Some(v2v) = first {
                        exchange.voice_to_voice.get_or_insert(v2v);
                    }
                }
                self.transport.send(frame.clone()).await?;
                Ok(ReplyProgress::Played(frame))
            }
            ReplyMsg::Finished {
                history,
                sentences,
                tts,
                epoch,
            } => {
                self.reply = None;
                if let Some(history) = history {
                    self.history = history;
                }
                if let Some(exchange) = self
                    .report
                    .exchanges
                    .iter_mut()
                    .rev()
                    .find(|e| e.epoch == epoch)
                {
                    exchange.reply = sentences;
                    exchange.tts = tts;
                }
                Ok(ReplyProgress::Finished)
            }
        }
    }

    /// Waits for the next message of a reply and handles it (plays current audio, drops
    /// stale audio); `None` when no reply is in progress.
    pub async fn next_reply(&mut self) -> Result<Option<ReplyProgress>> {
        if self.reply.is_none() {
            return Ok(None);
        }
        let Some(mut rx) = self.reply_rx.take() else {
            return Ok(None);
        };
        let message = rx.recv().await;
        self.reply_rx = Some(rx);
        match message {
            Some(message) => self.handle_reply(message).await.map(Some),
            None => Ok(None),
        }
    }

    /// Feeds silence after the input so that an open turn ends.
    async fn close_open_turn(&mut self) -> Result<()> {
        let rate = 16_000;
        let step = Duration::from_millis(20);
        let mut fed = Duration::ZERO;
        while self.turn.in_turn() && fed < self.config.tail_silence {
            let frame = AudioFrame::new(vec![0; 320], rate, 1, self.stream_now);
            self.on_frame(frame).await?;
            fed += step;
        }
        Ok(())
    }

    /// Runs until the transport has no more input and the last reply has been played;
    /// closes the transport (edge events) and returns what happened.
    ///
    /// # Errors
    /// A stage that fails (the transport's input included) ends the input: the reply in
    /// progress still finishes (unless playing it failed), the transport is closed with
    /// its edge events, and then the first error is returned.
    pub async fn run(mut self) -> Result<PipelineReport> {
        self.transport.open().await;
        let mut rx = self
            .reply_rx
            .take()
            .expect("the receiver is only taken here");
        let mut input_open = true;
        let mut failure = None;
        loop {
            if !input_open && self.reply.is_none() {
                break;
            }
            tokio::select! {
                biased;
                message = rx.recv() => {
                    if let Some(message) = message
                        && let Err(error) = self.handle_reply(message).await
                    {
                        // Nowhere to play the reply: it stops, and so does the input.
                        if let Some(reply) = self.reply.take() {
                            reply.cancel.cancel();
                            reply.task.abort();
                        }
                        input_open = false;
                        failure.get_or_insert(error);
                    }
                }
                frame = self.transport.recv(), if input_open => {
                    let step = match frame {
                        Some(Ok(frame)) => self.on_frame(frame).await,
                        Some(Err(error)) => Err(error),
                        None => {
                            input_open = false;
                            self.close_open_turn().await
                        }
                    };
                    if let Err(error) = step {
                        input_open = false;
                        failure.get_or_insert(error);
                    }
                }
            }
        }
        self.reply_rx = Some(rx);
        self.stt.close().await;
        let closed = self.transport.close().await;
        match failure {
            Some(error) => Err(error),
            None => closed.map(|()| self.report),
        }
    }
}

async fn reply_task(
    agent: Agent,
    request: RunRequest,
    tts: InstrumentedTts,
    tx: mpsc::Sender<ReplyMsg>,
    epoch: u64,
    speech_ended: Duration,
    clock: SharedClock,
) {
    let (sentence_tx, mut sentence_rx) = mpsc::unbounded_channel::<String>();
    let think = async move {
        let mut stream = agent.run_request(request);
        let mut splitter = SentenceSplitter::default();
        let mut history = None;
        while let Some(output) = stream.next().await {
            match output {
                AgentOutput::Event(event) if event.origin().fork_depth == 0 => match event.event {
                    ReactEvent::LlmChunkArrive(chunk) if chunk.channel == ChunkChannel::Text => {
                        for sentence in splitter.push(&chunk.delta) {
                            let _ = sentence_tx.send(sentence);
                        }
                    }
                    ReactEvent::LlmCallEnd(_) => {
                        if let Some(rest) = splitter.flush() {
                            let _ = sentence_tx.send(rest);
                        }
                    }
                    _ => {}
                },
                ReactOutput::Response(response) => history = Some(response.messages),
                _ => {}
            }
        }
        if let Some(rest) = splitter.flush() {
            let _ = sentence_tx.send(rest);
        }
        history
    };
    let speak_tx = tx.clone();
    let speak = async move {
        let mut sentences = Vec::new();
        let mut reports = Vec::new();
        let mut first = true;
        while let Some(sentence) = sentence_rx.recv().await {
            let mut audio = tts
                .synthesize_after(&sentence, first.then_some(speech_ended))
                .await;
            sentences.push(sentence);
            while let Some(item) = audio.next().await {
                match item {
                    Ok(SynthesisItem::Audio(frame)) => {
                        let first_audio = first.then(|| clock.now().saturating_sub(speech_ended));
                        first = false;
                        let message = ReplyMsg::Audio {
                            epoch,
                            frame,
                            first: first_audio,
                        };
                        if speak_tx.send(message).await.is_err() {
                            return (sentences, reports);
                        }
                    }
                    Ok(SynthesisItem::Done(report)) => reports.push(report),
                    // Published as plugin.tts_error by the wrapper; go on with the next
                    // sentence.
                    Err(_) => break,
                }
            }
        }
        (sentences, reports)
    };
    let (history, (sentences, tts)) = tokio::join!(think, speak);
    let _ = tx
        .send(ReplyMsg::Finished {
            epoch,
            history,
            sentences,
            tts,
        })
        .await;
}
