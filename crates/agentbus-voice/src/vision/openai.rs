//! [`OpenAiVlm`]: a vision language model behind an OpenAI-compatible
//! `POST /chat/completions` (OpenAI, vLLM, llama.cpp's server, Ollama): the frames go as
//! base64 JPEG `image_url` parts beside the prompt, in one user message.

use agentbus_llm::ApiKey;
use base64::Engine as _;
use futures::future::BoxFuture;
use serde::Deserialize;

use super::frames::encode_jpeg;
use super::{VideoFrame, Vlm, VlmAnswer};
use crate::error::Result;
use crate::net::{failed_response, read_bounded, remote_error};

/// The engine's name in events and errors.
const ENGINE: &str = "openai-vlm";
/// The largest reply read.
const REPLY_LIMIT: usize = 4 << 20;

/// A VLM over the OpenAI chat API with images.
#[derive(Clone, Debug)]
pub struct OpenAiVlm {
    client: reqwest::Client,
    base_url: String,
    model: String,
    api_key: Option<ApiKey>,
    max_tokens: u32,
}

#[derive(Deserialize)]
struct Reply {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ReplyMessage,
}

#[derive(Deserialize)]
struct ReplyMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

impl OpenAiVlm {
    /// A client of the server at `base_url` (e.g. `https://api.openai.com/v1`) asking
    /// `model` (`gpt-4o-mini`, `qwen2-vl`, ...); answers are capped at 300 tokens.
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
            max_tokens: 300,
        }
    }

    /// The request body for `frames` and `prompt`.
    fn body(&self, frames: &[VideoFrame], prompt: &str) -> Result<serde_json::Value> {
        let mut content = vec![serde_json::json!({"type": "text", "text": prompt})];
        for frame in frames {
            let jpeg = base64::engine::general_purpose::STANDARD.encode(encode_jpeg(frame)?);
            content.push(serde_json::json!({
                "type": "image_url",
                "image_url": {"url": format!("data:image/jpeg;base64,{jpeg}")},
            }));
        }
        Ok(serde_json::json!({
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": self.max_tokens,
            "stream": false,
        }))
    }

    async fn ask(&self, frames: &[VideoFrame], prompt: &str) -> Result<VlmAnswer> {
        let remote = |reason: String, recoverable| {
            remote_error(ENGINE, self.api_key.as_ref(), reason, recoverable)
        };
        let mut request = self
            .client
            .post(format!("{}/chat/completions", self.base_url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(self.body(frames, prompt)?.to_string());
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|error| remote(format!("request failed: {error}"), true))?;
        if !response.status().is_success() {
            return Err(failed_response(ENGINE, self.api_key.as_ref(), response).await);
        }
        let (bytes, cut) = read_bounded(response, REPLY_LIMIT)
            .await
            .map_err(|error| remote(format!("reading the reply: {error}"), true))?;
        if cut {
            return Err(remote(
                format!("the reply is larger than {REPLY_LIMIT} bytes"),
                false,
            ));
        }
        let reply: Reply = serde_json::from_slice(&bytes).map_err(|error| {
            remote(
                format!("the reply is not a chat completion: {error}"),
                false,
            )
        })?;
        let text = reply
            .choices
            .into_iter()
            .next()
            .and_then(|choice| choice.message.content)
            .ok_or_else(|| remote("the reply has no message content".into(), false))?;
        Ok(VlmAnswer {
            text,
            input_tokens: reply.usage.as_ref().and_then(|u| u.prompt_tokens),
            output_tokens: reply.usage.as_ref().and_then(|u| u.completion_tokens),
        })
    }
}

impl Vlm for OpenAiVlm {
    fn name(&self) -> &str {
        ENGINE
    }

    fn model(&self) -> Option<String> {
        Some(self.model.clone())
    }

    fn infer<'a>(
        &'a self,
        frames: &'a [VideoFrame],
        prompt: &'a str,
    ) -> BoxFuture<'a, Result<VlmAnswer>> {
        Box::pin(self.ask(frames, prompt))
    }
}
