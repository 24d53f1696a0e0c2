//! [`OpenAiRealtime`]: a client of the OpenAI Realtime API over WebSocket
//! (`wss://api.openai.com/v1/realtime?model=…`), on tokio-tungstenite.
//!
//! On connect it sends `session.update` (instructions, voice, 24 kHz PCM both ways,
//! input transcription, server-side turn detection) and waits for the server's
//! `session.created`/`session.updated`. User audio goes out as
//! `input_audio_buffer.append` (resampled to 24 kHz, base64); the server decides when a
//! turn ends and answers. What it sends back becomes [`RealtimeUpdate`]s: reply audio
//! and its end, reply text, the agent's and the user's transcripts, conversation items,
//! errors, the close. Both the GA event names (`response.output_audio.delta`, …) and the
//! beta ones (`response.audio.delta`, …) are understood; other server events are skipped.
//!
//! Bounds: connecting (TCP, TLS, the WebSocket handshake and the session's first reply)
//! takes at most [`OpenAiRealtime::connect_timeout`]; a message from the server may be
//! at most [`MAX_MESSAGE`] bytes. A server message that is not JSON is reported as a
//! recoverable error and the session goes on; the API key never appears in an error.

use std::collections::VecDeque;
use std::time::Duration;

use agentbus_llm::ApiKey;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::{Realtime, RealtimeUpdate};
use crate::audio::{AudioFrame, pcm16_le};
use crate::error::{Result, VoiceError};
use crate::resample::{StreamResampler, mono_at};
use crate::ws::Socket;

/// The engine's name in events and errors.
const ENGINE: &str = "openai-realtime";
/// The sample rate of the API's PCM audio, both ways.
pub const REALTIME_RATE: u32 = 24_000;
/// The largest message read from the server (a few seconds of base64 audio is ~200 KB).
pub const MAX_MESSAGE: usize = 8 << 20;

/// A speech-to-speech session with the OpenAI Realtime API (or a server speaking it).
pub struct OpenAiRealtime {
    url: String,
    model: String,
    api_key: Option<ApiKey>,
    /// The system instructions.
    pub instructions: Option<String>,
    /// The reply voice (`alloy`, `marin`, ...).
    pub voice: String,
    /// The model that transcribes the user's speech (`None`: no user transcripts).
    pub transcription_model: Option<String>,
    /// The longest wait for the connection and the session's first reply.
    pub connect_timeout: Duration,
    socket: Option<Socket>,
    resampler: Option<(u32, StreamResampler)>,
    updates: VecDeque<RealtimeUpdate>,
    connected: bool,
    response_id: Option<String>,
    closed: bool,
}

impl std::fmt::Debug for OpenAiRealtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiRealtime")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

impl OpenAiRealtime {
    /// A session with `model` (`gpt-realtime`, ...) at `url` (a `ws://` or `wss://` URL,
    /// e.g. `wss://api.openai.com/v1/realtime`); `api_key` is sent as a bearer token.
    ///
    /// ```
    /// use agentbus_voice::realtime::openai::OpenAiRealtime;
    ///
    /// let session = OpenAiRealtime::new("wss://api.openai.com/v1/realtime", "gpt-realtime", None);
    /// assert_eq!(session.voice, "alloy");
    /// ```
    pub fn new(url: impl Into<String>, model: impl Into<String>, api_key: Option<ApiKey>) -> Self {
        Self {
            url: url.into(),
            model: model.into(),
            api_key,
            instructions: None,
            voice: "alloy".into(),
            transcription_model: Some("gpt-4o-mini-transcribe".into()),
            connect_timeout: crate::net::CONNECT_TIMEOUT,
            socket: None,
            resampler: None,
            updates: VecDeque::new(),
            connected: false,
            response_id: None,
            closed: false,
        }
    }

    fn remote(&self, reason: impl Into<String>, recoverable: bool) -> VoiceError {
        crate::net::remote_error(ENGINE, self.api_key.as_ref(), reason, recoverable)
    }

    /// The `session.update` sent on connect.
    fn session_update(&self) -> Value {
        let mut input = json!({
            "format": {"type": "audio/pcm", "rate": REALTIME_RATE},
            "turn_detection": {"type": "server_vad"},
        });
        if let Some(model) = &self.transcription_model {
            input["transcription"] = json!({ "model": model });
        }
        let mut session = json!({
            "type": "realtime",
            "model": self.model,
            "output_modalities": ["audio"],
            "audio": {
                "input": input,
                "output": {"format": {"type": "audio/pcm", "rate": REALTIME_RATE}, "voice": self.voice},
            },
        });
        if let Some(instructions) = &self.instructions {
            session["instructions"] = Value::from(instructions.as_str());
        }
        json!({"type": "session.update", "session": session})
    }

    fn endpoint(&self) -> Result<reqwest::Url> {
        let mut url = crate::ws::parse_url(ENGINE, self.api_key.as_ref(), &self.url)?;
        if !url.query_pairs().any(|(key, _)| key == "model") {
            url.query_pairs_mut().append_pair("model", &self.model);
        }
        Ok(url)
    }

    async fn open(&self) -> Result<Socket> {
        let authorization = self
            .api_key
            .as_ref()
            .map(|key| format!("Bearer {}", key.expose()));
        crate::ws::connect(
            ENGINE,
            &self.endpoint()?,
            authorization,
            self.api_key.as_ref(),
            MAX_MESSAGE,
        )
        .await
    }

    async fn send_json(&mut self, message: Value) -> Result<()> {
        let Some(socket) = self.socket.as_mut() else {
            return Err(self.remote("the session is not connected", true));
        };
        let sent = socket.send(Message::text(message.to_string())).await;
        sent.map_err(|error| self.remote(format!("sending: {error}"), true))
    }

    /// Reads the next message and queues what it means; `false` once the session is
    /// over.
    async fn read_one(&mut self) -> bool {
        let Some(socket) = self.socket.as_mut() else {
            return false;
        };
        let message = socket.next().await;
        match message {
            Some(Ok(Message::Text(text))) => {
                match serde_json::from_str::<Value>(text.as_str()) {
                    Ok(event) => self.interpret(event),
                    Err(error) => {
                        let error =
                            self.remote(format!("a server message is not JSON: {error}"), true);
                        self.updates.push_back(RealtimeUpdate::Error(error));
                    }
                }
                true
            }
            Some(Ok(Message::Close(frame))) => {
                self.finish(frame.map(|f| f.reason.to_string()), true);
                false
            }
            Some(Ok(_)) => true,
            Some(Err(error)) => {
                // tungstenite's errors carry no header, so no key: the reason as it is.
                self.finish(Some(format!("reading: {error}")), false);
                false
            }
            None => {
                self.finish(
                    Some("the connection closed without a close frame".into()),
                    false,
                );
                false
            }
        }
    }

    fn finish(&mut self, reason: Option<String>, clean: bool) {
        self.socket = None;
        if !self.closed {
            self.closed = true;
            self.updates
                .push_back(RealtimeUpdate::Disconnected { reason, clean });
        }
    }

    /// Turns one server event into updates.
    fn interpret(&mut self, event: Value) {
        let kind = event["type"].as_str().unwrap_or_default().to_owned();
        let text = |key: &str| event[key].as_str().unwrap_or_default().to_owned();
        let response_id = event["response_id"].as_str().map(str::to_owned);
        let update = match kind.as_str() {
            "session.created" | "session.updated" => {
                if self.connected {
                    return;
                }
                self.connected = true;
                RealtimeUpdate::Connected {
                    session_config: Some(event["session"].clone()),
                }
            }
            "response.created" => {
                self.response_id = event["response"]["id"].as_str().map(str::to_owned);
                return;
            }
            "response.output_audio.delta" | "response.audio.delta" => {
                let decoded = BASE64.decode(text("delta")).ok().and_then(|bytes| {
                    AudioFrame::from_le_bytes(&bytes, REALTIME_RATE, 1, Duration::ZERO).ok()
                });
                let Some(audio) = decoded else {
                    let error = self.remote("reply audio that is not base64 16-bit PCM", true);
                    self.updates.push_back(RealtimeUpdate::Error(error));
                    return;
                };
                RealtimeUpdate::Audio { audio, response_id }
            }
            "response.output_audio.done" | "response.audio.done" => RealtimeUpdate::AudioDone {
                response_id,
                interrupted: false,
            },
            "response.output_text.delta" | "response.text.delta" => RealtimeUpdate::Text {
                response_id: response_id.unwrap_or_default(),
                text: text("delta"),
                is_complete: false,
            },
            "response.output_text.done" | "response.text.done" => RealtimeUpdate::Text {
                response_id: response_id.unwrap_or_default(),
                text: text("text"),
                is_complete: true,
            },
            "response.output_audio_transcript.done" | "response.audio_transcript.done" => {
                RealtimeUpdate::AgentTranscript {
                    text: text("transcript"),
                    original: Some(event),
                }
            }
            "conversation.item.input_audio_transcription.completed" => {
                RealtimeUpdate::UserTranscript {
                    text: text("transcript"),
                    original: Some(event),
                }
            }
            "conversation.item.created" | "conversation.item.added" | "conversation.item.done" => {
                let item = &event["item"];
                let field = |key: &str| item[key].as_str().map(str::to_owned);
                RealtimeUpdate::Item {
                    item_id: field("id"),
                    item_type: field("type"),
                    status: field("status"),
                    role: field("role"),
                    content: item["content"].as_array().cloned(),
                }
            }
            "response.done" => {
                let response = &event["response"];
                let id = response["id"].as_str().map(str::to_owned);
                if self.response_id == id {
                    self.response_id = None;
                }
                match response["status"].as_str() {
                    Some("cancelled") => RealtimeUpdate::AudioDone {
                        response_id: id,
                        interrupted: true,
                    },
                    Some("failed") => {
                        let message = response["status_details"]["error"]["message"]
                            .as_str()
                            .unwrap_or("the response failed");
                        RealtimeUpdate::Error(self.remote(message.to_owned(), true))
                    }
                    _ => return,
                }
            }
            "error" => {
                let error = &event["error"];
                let message = error["message"].as_str().unwrap_or("unknown error");
                let code = error["code"]
                    .as_str()
                    .or(error["type"].as_str())
                    .unwrap_or("error");
                RealtimeUpdate::Error(self.remote(format!("{code}: {message}"), true))
            }
            _ => {
                tracing::trace!(kind, "realtime server event not mapped");
                return;
            }
        };
        self.updates.push_back(update);
    }
}

impl Realtime for OpenAiRealtime {
    fn name(&self) -> &str {
        ENGINE
    }

    fn connect(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let timeout = self.connect_timeout;
            let opened = tokio::time::timeout(timeout, async {
                self.socket = Some(self.open().await?);
                self.closed = false;
                self.send_json(self.session_update()).await?;
                // The session is usable once the server has answered with its config.
                while !self.connected {
                    if !self.read_one().await {
                        let reason = match self.updates.pop_back() {
                            Some(RealtimeUpdate::Disconnected {
                                reason: Some(reason),
                                ..
                            }) => reason,
                            _ => "the server closed the session".into(),
                        };
                        return Err(self.remote(reason, true));
                    }
                    // An error before the session exists fails the connect.
                    if matches!(self.updates.back(), Some(RealtimeUpdate::Error(_)))
                        && let Some(RealtimeUpdate::Error(error)) = self.updates.pop_back()
                    {
                        // The session refused its configuration: trying again will not help.
                        return Err(match error {
                            VoiceError::Remote { engine, reason, .. } => VoiceError::Remote {
                                engine,
                                reason,
                                recoverable: false,
                            },
                            other => other,
                        });
                    }
                }
                Ok(())
            })
            .await;
            match opened {
                Ok(result) => result,
                Err(_) => {
                    self.socket = None;
                    Err(self.remote(format!("no session within {timeout:?}"), true))
                }
            }
        })
    }

    fn send_audio<'a>(&'a mut self, frame: &'a AudioFrame) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let samples = mono_at(&mut self.resampler, frame, REALTIME_RATE)?;
            if samples.is_empty() {
                return Ok(());
            }
            self.send_json(json!({
                "type": "input_audio_buffer.append",
                "audio": BASE64.encode(pcm16_le(&samples)),
            }))
            .await
        })
    }

    fn next_update(&mut self) -> BoxFuture<'_, Option<RealtimeUpdate>> {
        Box::pin(async move {
            loop {
                if let Some(update) = self.updates.pop_front() {
                    return Some(update);
                }
                if !self.read_one().await && self.updates.is_empty() {
                    return None;
                }
            }
        })
    }

    fn interrupt(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let mut cancel = json!({"type": "response.cancel"});
            if let Some(id) = &self.response_id {
                cancel["response_id"] = Value::from(id.as_str());
            }
            self.send_json(cancel).await
        })
    }

    fn close(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if let Some(mut socket) = self.socket.take() {
                let _ = tokio::time::timeout(Duration::from_secs(5), socket.close(None)).await;
            }
            if !self.closed {
                self.closed = true;
                self.updates.push_back(RealtimeUpdate::Disconnected {
                    reason: Some("closed by the client".into()),
                    clean: true,
                });
            }
            Ok(())
        })
    }
}
