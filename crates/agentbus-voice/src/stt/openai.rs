//! [`OpenAiStt`]: the OpenAI-compatible `POST /v1/audio/transcriptions` (OpenAI,
//! faster-whisper servers, vLLM, LocalAI): the utterance is uploaded as a WAV file in a
//! multipart form when it ends.
//!
//! The multipart body (one file part, a few text parts) is written here rather than with
//! reqwest's `multipart` feature, which would rebuild reqwest for the whole workspace.

use agentbus_llm::ApiKey;
use futures::future::BoxFuture;
use serde::Deserialize;

use super::{Stt, Transcript};
use crate::audio::{AudioFrame, SPEECH_RATE};
use crate::error::{Result, VoiceError};
use crate::net::{failed_response, read_bounded};
use crate::resample::resample;
use crate::wav::encode_wav;

/// The engine's name in events and errors.
const ENGINE: &str = "openai-stt";
/// The largest transcription reply read (a transcript of a turn is a few KB).
const REPLY_LIMIT: usize = 1 << 20;

/// Speech to text over the OpenAI audio API.
#[derive(Clone, Debug)]
pub struct OpenAiStt {
    client: reqwest::Client,
    base_url: String,
    model: String,
    api_key: Option<ApiKey>,
    language: Option<String>,
    audio: Vec<i16>,
}

#[derive(Deserialize)]
struct TranscriptionReply {
    text: String,
    #[serde(default)]
    language: Option<String>,
}

impl OpenAiStt {
    /// A client of the server at `base_url` (e.g. `https://api.openai.com/v1`) using
    /// `model` (`whisper-1`, `gpt-4o-mini-transcribe`, ...); `api_key` is sent as a bearer
    /// token when given.
    pub fn new(
        base_url: impl Into<String>,
        model: impl Into<String>,
        api_key: Option<ApiKey>,
    ) -> Self {
        Self {
            client: crate::net::client(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            model: model.into(),
            api_key,
            language: None,
            audio: Vec::new(),
        }
    }

    /// The same client asking for `language` (ISO-639-1).
    pub fn with_language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }

    fn remote(&self, reason: impl Into<String>, recoverable: bool) -> VoiceError {
        crate::net::remote_error(ENGINE, self.api_key.as_ref(), reason, recoverable)
    }

    fn body(&self, wav: &[u8], boundary: &str) -> Vec<u8> {
        let mut body = Vec::with_capacity(wav.len() + 512);
        let mut text_part = |name: &str, value: &str| {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        };
        text_part("model", &self.model);
        text_part("response_format", "json");
        if let Some(language) = &self.language {
            text_part("language", language);
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"audio.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(wav);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        body
    }

    async fn transcribe(&self, samples: Vec<i16>) -> Result<Transcript> {
        let wav = encode_wav(&AudioFrame::new(
            samples,
            SPEECH_RATE,
            1,
            Default::default(),
        ))?;
        let boundary = format!("agentbus-{}", uuid::Uuid::new_v4().simple());
        let mut request = self
            .client
            .post(format!("{}/audio/transcriptions", self.base_url))
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(self.body(&wav, &boundary));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|error| self.remote(format!("request failed: {error}"), true))?;
        if !response.status().is_success() {
            return Err(failed_response(ENGINE, self.api_key.as_ref(), response).await);
        }
        let (bytes, cut) = read_bounded(response, REPLY_LIMIT)
            .await
            .map_err(|error| self.remote(format!("reading the reply: {error}"), true))?;
        if cut {
            return Err(self.remote(
                format!("the reply is larger than {REPLY_LIMIT} bytes"),
                false,
            ));
        }
        let reply: TranscriptionReply = serde_json::from_slice(&bytes)
            .map_err(|error| self.remote(format!("an unexpected reply ({error})"), false))?;
        Ok(Transcript {
            text: reply.text.trim().to_owned(),
            confidence: None,
            language: reply.language.or_else(|| self.language.clone()),
        })
    }
}

impl Stt for OpenAiStt {
    fn name(&self) -> &str {
        "openai-stt"
    }

    fn model_name(&self) -> Option<String> {
        Some(self.model.clone())
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn push<'a>(&'a mut self, frame: &'a AudioFrame) -> BoxFuture<'a, Result<Vec<Transcript>>> {
        Box::pin(async move {
            let frame = resample(frame, SPEECH_RATE)?;
            self.audio.extend_from_slice(&frame.samples);
            Ok(Vec::new())
        })
    }

    fn finish(&mut self) -> BoxFuture<'_, Result<Transcript>> {
        let samples = std::mem::take(&mut self.audio);
        Box::pin(async move {
            if samples.is_empty() {
                return Ok(Transcript::default());
            }
            self.transcribe(samples).await
        })
    }

    fn discard(&mut self) {
        self.audio.clear();
    }
}
