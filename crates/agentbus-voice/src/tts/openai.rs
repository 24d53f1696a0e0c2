//! [`OpenAiTts`]: the OpenAI-compatible `POST /v1/audio/speech`, asking for raw PCM
//! (`response_format: "pcm"`: 16-bit little-endian, 24 kHz, mono) and handing the audio
//! on as the response body streams in.

use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};

use crate::audio::AudioFrame;
use crate::error::{Result, VoiceError};
use crate::tts::Tts;

/// The rate of OpenAI's `pcm` speech format.
pub const OPENAI_PCM_RATE: u32 = 24_000;

/// Text to speech over the OpenAI audio API.
#[derive(Clone, Debug)]
pub struct OpenAiTts {
    client: reqwest::Client,
    base_url: String,
    model: String,
    voice: String,
    api_key: Option<String>,
}

impl OpenAiTts {
    /// A client of the server at `base_url` using `model` (`gpt-4o-mini-tts`, `tts-1`)
    /// and `voice` (`alloy`, ...).
    pub fn new(
        base_url: impl Into<String>,
        model: impl Into<String>,
        voice: impl Into<String>,
        api_key: Option<String>,
    ) -> Self {
        Self {
            client: reqwest::Client::new(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            model: model.into(),
            voice: voice.into(),
            api_key,
        }
    }
}

fn remote(reason: impl Into<String>, recoverable: bool) -> VoiceError {
    VoiceError::Remote {
        engine: "openai-tts".into(),
        reason: reason.into(),
        recoverable,
    }
}

impl Tts for OpenAiTts {
    fn name(&self) -> &str {
        "openai-tts"
    }

    fn voice(&self) -> Option<String> {
        Some(self.voice.clone())
    }

    fn model_name(&self) -> Option<String> {
        Some(self.model.clone())
    }

    fn synthesize(&self, text: &str) -> BoxStream<'static, Result<AudioFrame>> {
        let mut request = self
            .client
            .post(format!("{}/audio/speech", self.base_url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(
                serde_json::json!({
                    "model": self.model,
                    "input": text,
                    "voice": self.voice,
                    "response_format": "pcm",
                })
                .to_string(),
            );
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let started = async move {
            let response = request
                .send()
                .await
                .map_err(|error| remote(format!("request failed: {error}"), true))?;
            let status = response.status();
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                let message = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| body.chars().take(200).collect());
                let recoverable = status.as_u16() == 429 || status.is_server_error();
                return Err(remote(format!("HTTP {status}: {message}"), recoverable));
            }
            Ok(response.bytes_stream())
        };
        futures::stream::once(started)
            .flat_map(|started| match started {
                Err(error) => futures::stream::iter([Err(error)]).boxed(),
                Ok(body) => {
                    let state = (body.boxed(), None::<u8>, Duration::ZERO, false);
                    futures::stream::unfold(state, |(mut body, mut carry, at, done)| async move {
                        if done {
                            return None;
                        }
                        loop {
                            match body.next().await {
                                Some(Ok(bytes)) => {
                                    let mut data = Vec::with_capacity(bytes.len() + 1);
                                    data.extend(carry.take());
                                    data.extend_from_slice(&bytes);
                                    if data.len() % 2 == 1 {
                                        carry = data.pop();
                                    }
                                    if data.is_empty() {
                                        continue;
                                    }
                                    let frame =
                                        AudioFrame::from_le_bytes(&data, OPENAI_PCM_RATE, 1, at)
                                            .expect("an even number of bytes");
                                    let next = frame.end();
                                    return Some((Ok(frame), (body, carry, next, false)));
                                }
                                Some(Err(error)) => {
                                    let error = remote(
                                        format!("the audio stream broke off: {error}"),
                                        true,
                                    );
                                    return Some((Err(error), (body, carry, at, true)));
                                }
                                None => return None,
                            }
                        }
                    })
                    .boxed()
                }
            })
            .boxed()
    }
}
