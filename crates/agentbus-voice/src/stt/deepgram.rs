//! [`DeepgramStt`]: streaming speech to text over Deepgram's live WebSocket API
//! (`wss://api.deepgram.com/v1/listen`), the engine Vision Agents uses by default.
//!
//! The turn's audio goes out as it arrives (16 kHz s16le binary messages); Deepgram's
//! interim and final results come back as partial transcripts of the turn so far; at the
//! end of the turn a `Finalize` message flushes what Deepgram still holds, and the final
//! transcript is the turn's finalized segments, joined. One connection serves every turn:
//! between turns a `KeepAlive` goes out every [`DeepgramStt::keepalive`] so Deepgram does
//! not close it, and a connection that did close is opened again on the next turn.
//!
//! Bounds: connecting takes at most [`CONNECT_TIMEOUT`](crate::net::CONNECT_TIMEOUT); the
//! final transcript is awaited at most [`DeepgramStt::finalize_timeout`] (Deepgram marks
//! its answer to `Finalize` with `from_finalize` only when it still held audio, so once
//! some segments are final, 300 ms without a message also ends the wait); a message from
//! the server may be at most 1 MiB; at most 256 results wait to be read.

use std::time::Duration;

use agentbus_llm::ApiKey;
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::{Stt, Transcript};
use crate::audio::{AudioFrame, SPEECH_RATE, pcm16_le};
use crate::error::{Result, VoiceError};
use crate::resample::{StreamResampler, mono_at};

/// The engine's name in events and errors.
const ENGINE: &str = "deepgram";
/// The largest message read from the server.
const MAX_MESSAGE: usize = 1 << 20;
/// Results waiting to be read.
const RESULTS_QUEUE: usize = 256;
/// Audio messages waiting to be written.
const AUDIO_QUEUE: usize = 64;
/// After a `Finalize`, with final segments in hand: this long without a message ends
/// the turn's transcript.
const FINALIZE_QUIET: Duration = Duration::from_millis(300);

/// One result message (`"type": "Results"`).
#[derive(Debug, Default, Deserialize)]
struct Results {
    #[serde(default)]
    channel: Channel,
    #[serde(default)]
    is_final: bool,
    #[serde(default)]
    from_finalize: bool,
}

#[derive(Debug, Default, Deserialize)]
struct Channel {
    #[serde(default)]
    alternatives: Vec<Alternative>,
}

#[derive(Debug, Default, Deserialize)]
struct Alternative {
    #[serde(default)]
    transcript: String,
    #[serde(default)]
    confidence: Option<f32>,
    #[serde(default)]
    languages: Vec<String>,
}

/// What the reader hands to the engine.
#[derive(Debug)]
enum Incoming {
    Result(Results),
    Failed(VoiceError),
}

/// One open connection: a writer task (audio, control messages, keep-alives) and a
/// reader task (results).
#[derive(Debug)]
struct Connection {
    out: mpsc::Sender<Message>,
    results: mpsc::Receiver<Incoming>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// Streaming speech to text with Deepgram (or a server speaking its live API).
#[derive(Debug)]
pub struct DeepgramStt {
    url: String,
    model: String,
    api_key: Option<ApiKey>,
    /// The language (`en`, `multi`, ...); Deepgram's default when `None`.
    pub language: Option<String>,
    /// How often a `KeepAlive` goes out while no audio does.
    pub keepalive: Duration,
    /// The longest wait for the final transcript after the turn ends.
    pub finalize_timeout: Duration,
    connection: Option<Connection>,
    resampler: Option<(u32, StreamResampler)>,
    finals: Vec<String>,
    confidences: Vec<f32>,
    detected_language: Option<String>,
    /// `Finalize`s sent for discarded turns whose answers are still to be skipped.
    skip_finalized: usize,
}

impl DeepgramStt {
    /// A client of the live API at `url` (`wss://api.deepgram.com/v1/listen`) with
    /// `model` (`nova-3`, ...); `api_key` is sent as `Authorization: Token …`.
    ///
    /// ```
    /// use agentbus_voice::stt::DeepgramStt;
    ///
    /// let stt = DeepgramStt::new("wss://api.deepgram.com/v1/listen", "nova-3", None);
    /// assert_eq!(stt.keepalive.as_secs(), 5);
    /// ```
    pub fn new(url: impl Into<String>, model: impl Into<String>, api_key: Option<ApiKey>) -> Self {
        Self {
            url: url.into(),
            model: model.into(),
            api_key,
            language: None,
            keepalive: Duration::from_secs(5),
            finalize_timeout: Duration::from_secs(5),
            connection: None,
            resampler: None,
            finals: Vec::new(),
            confidences: Vec::new(),
            detected_language: None,
            skip_finalized: 0,
        }
    }

    fn remote(&self, reason: impl Into<String>, recoverable: bool) -> VoiceError {
        crate::net::remote_error(ENGINE, self.api_key.as_ref(), reason, recoverable)
    }

    fn endpoint(&self) -> Result<reqwest::Url> {
        let mut url = crate::ws::parse_url(ENGINE, self.api_key.as_ref(), &self.url)?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("model", &self.model)
                .append_pair("encoding", "linear16")
                .append_pair("sample_rate", &SPEECH_RATE.to_string())
                .append_pair("channels", "1")
                .append_pair("interim_results", "true")
                .append_pair("punctuate", "true")
                .append_pair("smart_format", "true");
            if let Some(language) = &self.language {
                query.append_pair("language", language);
            }
        }
        Ok(url)
    }

    async fn open(&mut self) -> Result<()> {
        let authorization = self
            .api_key
            .as_ref()
            .map(|key| format!("Token {}", key.expose()));
        let url = self.endpoint()?;
        let connect = crate::ws::connect(
            ENGINE,
            &url,
            authorization,
            self.api_key.as_ref(),
            MAX_MESSAGE,
        );
        let socket = tokio::time::timeout(crate::net::CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| {
                self.remote(
                    format!("no connection within {:?}", crate::net::CONNECT_TIMEOUT),
                    true,
                )
            })??;
        let (sink, stream) = socket.split();
        let (out, out_rx) = mpsc::channel(AUDIO_QUEUE);
        let (results_tx, results) = mpsc::channel(RESULTS_QUEUE);
        let key = self.api_key.clone();
        let reader = tokio::spawn(read_results(stream, results_tx, key));
        let writer = tokio::spawn(write_messages(sink, out_rx, self.keepalive));
        self.connection = Some(Connection {
            out,
            results,
            reader,
            writer,
        });
        self.skip_finalized = 0;
        Ok(())
    }

    async fn send(&mut self, message: Message) -> Result<()> {
        // A connection that ended is reported once (why it ended, from the reader), and
        // opened again on the next call.
        if self
            .connection
            .as_ref()
            .is_some_and(|c| c.writer.is_finished())
            && let Some(mut ended) = self.connection.take()
        {
            let mut why = None;
            while let Ok(incoming) = ended.results.try_recv() {
                match incoming {
                    Incoming::Result(results) => {
                        self.apply(results);
                    }
                    Incoming::Failed(error) => why = Some(error),
                }
            }
            if let Some(error) = why {
                return Err(error);
            }
        }
        if self.connection.is_none() {
            self.open().await?;
        }
        let sent = match &self.connection {
            Some(connection) => connection.out.send(message).await.is_ok(),
            None => false,
        };
        if !sent {
            self.connection = None;
            return Err(self.remote("the connection closed", true));
        }
        Ok(())
    }

    /// Applies one result; returns the turn's text so far when it changed.
    fn apply(&mut self, results: Results) -> Option<Transcript> {
        if self.skip_finalized > 0 {
            // A discarded turn's: dropped, up to the answer to its Finalize.
            if results.from_finalize {
                self.skip_finalized -= 1;
            }
            return None;
        }
        let best = results.channel.alternatives.into_iter().next()?;
        if let Some(language) = best.languages.first() {
            self.detected_language = Some(language.clone());
        }
        let text = best.transcript.trim().to_owned();
        if text.is_empty() {
            return None;
        }
        let mut so_far = self.finals.clone();
        so_far.push(text.clone());
        if results.is_final {
            self.finals.push(text);
            if let Some(confidence) = best.confidence {
                self.confidences.push(confidence);
            }
        }
        Some(Transcript {
            text: so_far.join(" "),
            confidence: best.confidence,
            language: self.language(),
        })
    }

    fn language(&self) -> Option<String> {
        self.detected_language
            .clone()
            .or_else(|| self.language.clone())
    }

    /// Reads every result already received; the partial transcripts they make.
    fn drain(&mut self) -> Result<Vec<Transcript>> {
        let mut partials = Vec::new();
        loop {
            let Some(connection) = self.connection.as_mut() else {
                return Ok(partials);
            };
            match connection.results.try_recv() {
                Ok(Incoming::Result(results)) => partials.extend(self.apply(results)),
                Ok(Incoming::Failed(error)) => {
                    self.connection = None;
                    return Err(error);
                }
                Err(_) => return Ok(partials),
            }
        }
    }

    fn take_final(&mut self) -> Transcript {
        let confidence = (!self.confidences.is_empty())
            .then(|| self.confidences.iter().sum::<f32>() / self.confidences.len() as f32);
        let text = std::mem::take(&mut self.finals).join(" ");
        self.confidences.clear();
        Transcript {
            text,
            confidence,
            language: self.language(),
        }
    }
}

async fn read_results(
    mut stream: futures::stream::SplitStream<crate::ws::Socket>,
    results: mpsc::Sender<Incoming>,
    key: Option<ApiKey>,
) {
    let failed = |reason: String| {
        Incoming::Failed(crate::net::remote_error(ENGINE, key.as_ref(), reason, true))
    };
    loop {
        let incoming = match stream.next().await {
            Some(Ok(Message::Text(text))) => {
                let value: serde_json::Value = match serde_json::from_str(text.as_str()) {
                    Ok(value) => value,
                    Err(error) => {
                        // One bad message does not end the turn: the next results may
                        // still carry its words.
                        tracing::warn!(%error, "Deepgram sent a message that is not JSON; skipped");
                        continue;
                    }
                };
                match value["type"].as_str() {
                    Some("Results") => match serde_json::from_value::<Results>(value) {
                        Ok(parsed) => Incoming::Result(parsed),
                        Err(error) => failed(format!("a result Deepgram sent: {error}")),
                    },
                    Some("Error") => failed(format!(
                        "{}: {}",
                        value["err_code"].as_str().unwrap_or("error"),
                        value["err_msg"]
                            .as_str()
                            .or(value["description"].as_str())
                            .unwrap_or("unknown error")
                    )),
                    // Metadata, SpeechStarted, UtteranceEnd: nothing to transcribe.
                    _ => continue,
                }
            }
            Some(Ok(Message::Close(frame))) => {
                let reason = frame.map_or_else(
                    || "the server closed the connection".to_owned(),
                    |f| {
                        format!(
                            "the server closed the connection ({}: {})",
                            f.code, f.reason
                        )
                    },
                );
                let _ = results.send(failed(reason)).await;
                return;
            }
            Some(Ok(_)) => continue,
            Some(Err(error)) => {
                let _ = results.send(failed(format!("reading: {error}"))).await;
                return;
            }
            None => {
                let _ = results
                    .send(failed("the connection closed without a close frame".into()))
                    .await;
                return;
            }
        };
        if results.send(incoming).await.is_err() {
            return;
        }
    }
}

async fn write_messages(
    mut sink: futures::stream::SplitSink<crate::ws::Socket, Message>,
    mut queue: mpsc::Receiver<Message>,
    keepalive: Duration,
) {
    loop {
        let message = match tokio::time::timeout(keepalive, queue.recv()).await {
            Ok(Some(message)) => message,
            Ok(None) => {
                let _ = sink.send(Message::text(r#"{"type":"CloseStream"}"#)).await;
                let _ = sink.close().await;
                return;
            }
            Err(_) => Message::text(r#"{"type":"KeepAlive"}"#),
        };
        if sink.send(message).await.is_err() {
            return;
        }
    }
}

impl Stt for DeepgramStt {
    fn name(&self) -> &str {
        ENGINE
    }

    fn model_name(&self) -> Option<String> {
        Some(self.model.clone())
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn connect(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if self.connection.is_none() {
                self.open().await?;
            }
            Ok(())
        })
    }

    fn push<'a>(&'a mut self, frame: &'a AudioFrame) -> BoxFuture<'a, Result<Vec<Transcript>>> {
        Box::pin(async move {
            let samples = mono_at(&mut self.resampler, frame, SPEECH_RATE)?;
            if !samples.is_empty() {
                self.send(Message::Binary(pcm16_le(&samples).into()))
                    .await?;
            }
            self.drain()
        })
    }

    fn finish(&mut self) -> BoxFuture<'_, Result<Transcript>> {
        Box::pin(async move {
            self.send(Message::text(r#"{"type":"Finalize"}"#)).await?;
            let deadline = tokio::time::Instant::now() + self.finalize_timeout;
            loop {
                // Deepgram answers a Finalize with `from_finalize` only when it still held
                // audio: with segments already final, a short quiet ends the wait.
                let wait = if self.finals.is_empty() {
                    deadline
                } else {
                    deadline.min(tokio::time::Instant::now() + FINALIZE_QUIET)
                };
                let Some(connection) = self.connection.as_mut() else {
                    return Err(
                        self.remote("the connection closed before the final transcript", true)
                    );
                };
                let incoming = tokio::time::timeout_at(wait, connection.results.recv()).await;
                match incoming {
                    Ok(Some(Incoming::Result(results))) => {
                        let last = results.from_finalize && self.skip_finalized == 0;
                        self.apply(results);
                        if last {
                            return Ok(self.take_final());
                        }
                    }
                    Ok(Some(Incoming::Failed(error))) => {
                        self.connection = None;
                        return Err(error);
                    }
                    Ok(None) => {
                        self.connection = None;
                        return Err(
                            self.remote("the connection closed before the final transcript", true)
                        );
                    }
                    Err(_) if !self.finals.is_empty() => return Ok(self.take_final()),
                    Err(_) => {
                        return Err(self.remote(
                            format!("no final transcript within {:?}", self.finalize_timeout),
                            true,
                        ));
                    }
                }
            }
        })
    }

    fn discard(&mut self) {
        self.finals.clear();
        self.confidences.clear();
        // What Deepgram still holds of this turn comes back after a Finalize: skipped.
        if let Some(connection) = &self.connection
            && connection
                .out
                .try_send(Message::text(r#"{"type":"Finalize"}"#))
                .is_ok()
        {
            self.skip_finalized += 1;
        }
    }
}
