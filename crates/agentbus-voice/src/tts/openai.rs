//! [`OpenAiTts`]: the OpenAI-compatible `POST /v1/audio/speech`, asking for raw PCM
//! (`response_format: "pcm"`: 16-bit little-endian, 24 kHz, mono) and handing the audio
//! on as the response body streams in.

use std::time::Duration;

use agentbus_llm::ApiKey;
use futures::stream::{BoxStream, StreamExt};

use crate::audio::AudioFrame;
use crate::error::Result;
use crate::net::{failed_response, remote_error};
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
    api_key: Option<ApiKey>,
}

impl OpenAiTts {
    /// A client of the server at `base_url` using `model` (`gpt-4o-mini-tts`, `tts-1`)
    /// and `voice` (`alloy`, ...).
    pub fn new(
        base_url: impl Into<String>,
        model: impl Into<String>,
        voice: impl Into<String>,
        api_key: Option<ApiKey>,
    ) -> Self {
        Self {
            client: crate::net::client(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            model: model.into(),
            voice: voice.into(),
            api_key,
        }
    }
}

/// The engine's name in events and errors.
const ENGINE: &str = "openai-tts";

impl Tts for OpenAiTts {
    fn name(&self) -> &str {
        ENGINE
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
            request = request.bearer_auth(key.expose());
        }
        let key = self.api_key.clone();
        let remote = move |reason: String| remote_error(ENGINE, key.as_ref(), reason, true);
        let started = {
            let (key, remote) = (self.api_key.clone(), remote.clone());
            async move {
                let response = request
                    .send()
                    .await
                    .map_err(|error| remote(format!("request failed: {error}")))?;
                if !response.status().is_success() {
                    return Err(failed_response(ENGINE, key.as_ref(), response).await);
                }
                Ok(response.bytes_stream())
            }
        };
        futures::stream::once(started)
            .flat_map(move |started| match started {
                Err(error) => futures::stream::iter([Err(error)]).boxed(),
                Ok(body) => {
                    let state = (body.boxed(), None::<u8>, Duration::ZERO, false);
                    let remote = remote.clone();
                    futures::stream::unfold(state, move |(mut body, mut carry, at, done)| {
                        let remote = remote.clone();
                        async move {
                            if done {
                                return None;
                            }
                            loop {
                                match body.next().await {
                                    Some(Ok(bytes)) => {
                                        let mut data = Vec::with_capacity(bytes.len() + 1);
                                        data.extend(carry.take());
                                        data.extend_from_slice(&bytes);
                                        if !data.len().is_multiple_of(2) {
                                            carry = data.pop();
                                        }
                                        if data.is_empty() {
                                            continue;
                                        }
                                        let frame = AudioFrame::new(
                                            data.chunks_exact(2)
                                                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                                                .collect(),
                                            OPENAI_PCM_RATE,
                                            1,
                                            at,
                                        );
                                        let next = frame.end();
                                        return Some((Ok(frame), (body, carry, next, false)));
                                    }
                                    Some(Err(error)) => {
                                        let error =
                                            remote(format!("the audio stream broke off: {error}"));
                                        return Some((Err(error), (body, carry, at, true)));
                                    }
                                    None => return None,
                                }
                            }
                        }
                    })
                    .boxed()
                }
            })
            .boxed()
    }
}
