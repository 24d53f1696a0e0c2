//! [`HttpModel`]: a [`ChatModel`] that talks to an LLM server over streaming HTTP, in one
//! of the three protocols ([`Api`]), with retries and timeouts.
//!
//! # Failure handling
//!
//! - Non-2xx statuses, in-band errors, invalid chunks, cut connections and timeouts all
//!   end the stream with one [`StreamEvent::Error`] (kind, `recoverable`, upstream status).
//! - Rate limits (429), overload (503/529), server errors (5xx), network errors and
//!   timeouts are retried with exponential backoff (with jitter), or after the server's
//!   `Retry-After`/`retry-after-ms` when it sends one, up to
//!   [`RetryPolicy::max_retries`] times, **only while no output has been streamed**:
//!   once a token went out, a retry would duplicate it, so the error is reported instead.
//! - A Chat Completions server that rejects `stream_options` is asked again without it; one
//!   that wants `max_completion_tokens` instead of `max_tokens` gets that. These
//!   corrections do not count against the retry budget.
//! - Timeouts: connect ([`Timeouts::connect`]), response headers and first body bytes
//!   ([`Timeouts::first_byte`]), and silence between two chunks ([`Timeouts::idle`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use agentbus_events::stream::{StreamError, StreamErrorKind, StreamEvent};
use futures::StreamExt;
use thiserror::Error;

use crate::encode::{self, ChatBodyOptions};
use crate::errors::http_error;
use crate::model::{ChatModel, ChatStream};
use crate::pricing::PricingTable;
use crate::protocol::{Api, StreamDecoder};
use crate::request::ChatRequest;

/// An API key. Its `Debug` form is redacted so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// Reads the key from the environment variable `var`; `None` when unset or empty.
    pub fn from_env(var: &str) -> Option<Self> {
        std::env::var(var)
            .ok()
            .filter(|k| !k.trim().is_empty())
            .map(|k| Self(k.trim().to_owned()))
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The three timeouts of a streaming call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing the TCP/TLS connection.
    pub connect: Duration,
    /// From sending the request to the response headers, and again to the first body
    /// bytes.
    pub first_byte: Duration,
    /// Silence allowed between two body chunks.
    pub idle: Duration,
}

impl Default for Timeouts {
    /// 10 s to connect, 120 s to the first byte (reasoning models think first), 120 s
    /// between chunks.
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(120),
            idle: Duration::from_secs(120),
        }
    }
}

/// How failed attempts are retried (before any output was streamed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// Backoff before the first retry; doubled for each later one.
    pub initial_backoff: Duration,
    /// Upper bound of the exponential backoff.
    pub max_backoff: Duration,
    /// Upper bound of a server-requested `Retry-After` wait.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 2 retries, 500 ms doubling up to 8 s, `Retry-After` honoured up to 60 s.
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// Configuration of an [`HttpModel`].
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// The API root, e.g. `https://api.openai.com/v1`; the protocol's path
    /// (`/chat/completions`, `/responses`, `/messages`) is appended.
    pub base_url: String,
    /// The model used when a request names none.
    pub model: String,
    /// The provider's name (`openai`, `anthropic`, `groq`, ...), for events and logs.
    pub provider: String,
    /// The key; `None` sends no authentication (local servers).
    pub api_key: Option<ApiKey>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Retries.
    pub retry: RetryPolicy,
    /// The pricing table for `cost_usd`; `None` leaves the cost absent.
    pub pricing: Option<Arc<PricingTable>>,
    /// Ask a Chat Completions server for usage (`stream_options.include_usage`).
    pub include_usage: bool,
    /// Extra HTTP headers sent with every request.
    pub extra_headers: Vec<(String, String)>,
}

impl HttpConfig {
    /// A configuration for `base_url` and `model` with default timeouts and retries, the
    /// built-in pricing table, and no key.
    pub fn new(
        provider: impl Into<String>,
        base_url: impl Into<String>,
        model: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            provider: provider.into(),
            api_key: None,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            pricing: Some(Arc::new(PricingTable::builtin())),
            include_usage: true,
            extra_headers: Vec::new(),
        }
    }

    /// The same configuration with `key`.
    pub fn with_api_key(mut self, key: Option<ApiKey>) -> Self {
        self.api_key = key;
        self
    }

    /// The same configuration with `timeouts`.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The same configuration with `retry`.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

/// Building an [`HttpModel`] failed.
#[derive(Debug, Error)]
pub enum HttpModelError {
    /// The HTTP client could not be built (TLS initialisation).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// The base URL is not an `http(s)://` URL.
    #[error("invalid base URL `{0}`: expected http:// or https://")]
    BaseUrl(String),
}

/// The Anthropic API version header value sent with every Anthropic request.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

struct Inner {
    api: Api,
    config: HttpConfig,
    client: reqwest::Client,
    url: String,
}

/// A [`ChatModel`] over streaming HTTP: OpenAI-compatible Chat Completions, OpenAI
/// Responses or Anthropic Messages. Cheap to clone (shared client and configuration).
#[derive(Clone)]
pub struct HttpModel {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HttpModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpModel")
            .field("api", &self.inner.api)
            .field("url", &self.inner.url)
            .field("model", &self.inner.config.model)
            .finish()
    }
}

impl HttpModel {
    /// A model speaking `api` with `config`.
    pub fn new(api: Api, config: HttpConfig) -> Result<Self, HttpModelError> {
        let base = config.base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(HttpModelError::BaseUrl(config.base_url.clone()));
        }
        let path = match api {
            Api::OpenAiChat => "/chat/completions",
            Api::OpenAiResponses => "/responses",
            Api::AnthropicMessages => "/messages",
        };
        let url = format!("{base}{path}");
        let client = reqwest::Client::builder()
            .connect_timeout(config.timeouts.connect)
            .build()
            .map_err(|e| HttpModelError::Client(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                api,
                config,
                client,
                url,
            }),
        })
    }

    /// OpenAI-compatible Chat Completions.
    pub fn openai_chat(config: HttpConfig) -> Result<Self, HttpModelError> {
        Self::new(Api::OpenAiChat, config)
    }

    /// OpenAI Responses.
    pub fn openai_responses(config: HttpConfig) -> Result<Self, HttpModelError> {
        Self::new(Api::OpenAiResponses, config)
    }

    /// Anthropic Messages.
    pub fn anthropic(config: HttpConfig) -> Result<Self, HttpModelError> {
        Self::new(Api::AnthropicMessages, config)
    }

    /// The protocol.
    pub fn api(&self) -> Api {
        self.inner.api
    }

    /// The full endpoint URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }
}

impl ChatModel for HttpModel {
    fn stream(&self, request: ChatRequest) -> ChatStream {
        let call = Call {
            inner: Arc::clone(&self.inner),
            model: request
                .model
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| self.inner.config.model.clone()),
            request,
            options: ChatBodyOptions {
                include_usage: self.inner.config.include_usage,
                max_completion_tokens: false,
            },
            retries: 0,
            pending: VecDeque::new(),
            phase: Phase::Connect,
        };
        futures::stream::unfold(call, |mut call| async move {
            let event = call.next_event().await?;
            Some((event, call))
        })
        .boxed()
    }

    fn name(&self) -> &str {
        &self.inner.config.model
    }

    fn provider(&self) -> &str {
        &self.inner.config.provider
    }
}

enum Phase {
    Connect,
    Streaming(Box<Streaming>),
    Done,
}

/// An open response being decoded.
struct Streaming {
    response: reqwest::Response,
    decoder: StreamDecoder,
    got_bytes: bool,
}

/// One streaming call: a small state machine driven by polling the stream.
struct Call {
    inner: Arc<Inner>,
    model: String,
    request: ChatRequest,
    options: ChatBodyOptions,
    retries: u32,
    pending: VecDeque<StreamEvent>,
    phase: Phase,
}

/// What one attempt to get a response produced.
enum Attempt {
    Stream(reqwest::Response),
    Failed(StreamError, Option<Duration>),
    /// Ask again at once with corrected options.
    Adjusted,
}

impl Call {
    async fn next_event(&mut self) -> Option<StreamEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Done => return None,
                Phase::Connect => self.connect().await,
                Phase::Streaming(streaming) => self.read(*streaming).await,
            }
        }
    }

    fn body(&self) -> Vec<u8> {
        let body = match self.inner.api {
            Api::OpenAiChat => encode::openai_chat_body(&self.request, &self.model, self.options),
            Api::OpenAiResponses => encode::openai_responses_body(&self.request, &self.model),
            Api::AnthropicMessages => encode::anthropic_body(&self.request, &self.model),
        };
        // Serialising a `Value` cannot fail.
        serde_json::to_vec(&body).unwrap_or_default()
    }

    fn http_request(&self) -> reqwest::RequestBuilder {
        let config = &self.inner.config;
        let mut builder = self
            .inner
            .client
            .post(&self.inner.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .body(self.body());
        match self.inner.api {
            Api::AnthropicMessages => {
                builder = builder.header("anthropic-version", ANTHROPIC_VERSION);
                if let Some(key) = &config.api_key {
                    builder = builder.header("x-api-key", key.expose());
                }
            }
            Api::OpenAiChat | Api::OpenAiResponses => {
                if let Some(key) = &config.api_key {
                    builder = builder.bearer_auth(key.expose());
                }
            }
        }
        for (name, value) in &config.extra_headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
    }

    async fn attempt(&mut self) -> Attempt {
        let timeouts = self.inner.config.timeouts;
        let response =
            match tokio::time::timeout(timeouts.first_byte, self.http_request().send()).await {
                Err(_) => {
                    return Attempt::Failed(
                        StreamError::new(
                            StreamErrorKind::Timeout,
                            format!("no response headers within {:?}", timeouts.first_byte),
                        ),
                        None,
                    );
                }
                Ok(Err(error)) => return Attempt::Failed(transport_error(&error), None),
                Ok(Ok(response)) => response,
            };
        let status = response.status();
        if status.is_success() {
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase();
            if content_type.starts_with("application/json") {
                let body = read_body(response, timeouts.idle).await;
                let preview: String = body.chars().take(200).collect();
                return Attempt::Failed(
                    StreamError::new(
                        StreamErrorKind::Protocol,
                        format!(
                            "the server answered with JSON instead of an event stream: {preview}"
                        ),
                    )
                    .with_status(status.as_u16()),
                    None,
                );
            }
            return Attempt::Stream(response);
        }
        let retry_after = retry_after(response.headers());
        let body = read_body(response, timeouts.idle).await;
        if status.as_u16() == 400 && self.inner.api == Api::OpenAiChat {
            let lower = body.to_ascii_lowercase();
            if self.options.include_usage
                && (lower.contains("stream_options") || lower.contains("include_usage"))
            {
                tracing::info!(url = %self.inner.url, "server rejected stream_options; asking again without it");
                self.options.include_usage = false;
                return Attempt::Adjusted;
            }
            if !self.options.max_completion_tokens
                && self.request.max_tokens.is_some()
                && lower.contains("max_completion_tokens")
            {
                tracing::info!(url = %self.inner.url, "server wants max_completion_tokens; asking again");
                self.options.max_completion_tokens = true;
                return Attempt::Adjusted;
            }
        }
        Attempt::Failed(http_error(status.as_u16(), &body), retry_after)
    }

    /// Gets a streaming response, retrying what may be retried.
    async fn connect(&mut self) {
        loop {
            match self.attempt().await {
                Attempt::Adjusted => continue,
                Attempt::Stream(response) => {
                    self.phase = Phase::Streaming(Box::new(Streaming {
                        response,
                        decoder: StreamDecoder::new(
                            self.inner.api,
                            self.inner.config.pricing.clone(),
                        ),
                        got_bytes: false,
                    }));
                    return;
                }
                Attempt::Failed(error, retry_after) => {
                    if self.backoff_for_retry(&error, retry_after).await {
                        continue;
                    }
                    self.pending.push_back(StreamEvent::Error(error));
                    self.phase = Phase::Done;
                    return;
                }
            }
        }
    }

    /// Sleeps and returns `true` when `error` may be retried and budget is left.
    async fn backoff_for_retry(
        &mut self,
        error: &StreamError,
        retry_after: Option<Duration>,
    ) -> bool {
        let policy = self.inner.config.retry;
        if !(error.recoverable && error.kind.is_retryable()) || self.retries >= policy.max_retries {
            return false;
        }
        self.retries += 1;
        let delay = match retry_after {
            Some(wait) => wait.min(policy.max_retry_after),
            None => backoff(policy, self.retries),
        };
        tracing::warn!(
            url = %self.inner.url,
            kind = %error.kind,
            status = ?error.status,
            retry = self.retries,
            delay_ms = delay.as_millis() as u64,
            "LLM request failed before any output; retrying"
        );
        tokio::time::sleep(delay).await;
        true
    }

    async fn read(&mut self, streaming: Streaming) {
        let Streaming {
            mut response,
            mut decoder,
            mut got_bytes,
        } = streaming;
        let timeouts = self.inner.config.timeouts;
        let wait = if got_bytes {
            timeouts.idle
        } else {
            timeouts.first_byte
        };
        let mut out = Vec::new();
        match tokio::time::timeout(wait, response.chunk()).await {
            Err(_) => decoder.fail(
                StreamError::new(
                    StreamErrorKind::Timeout,
                    if got_bytes {
                        format!("no data from the server for {wait:?}")
                    } else {
                        format!("no body bytes within {wait:?}")
                    },
                ),
                &mut out,
            ),
            Ok(Err(error)) => decoder.fail(transport_error(&error), &mut out),
            Ok(Ok(None)) => decoder.end(&mut out),
            Ok(Ok(Some(bytes))) => {
                got_bytes = true;
                decoder.feed(&bytes, &mut out);
            }
        }
        if let Some(StreamEvent::Error(error)) = out.last()
            && !decoder.produced_output()
        {
            // The stream is over (an error is terminal): free the connection first.
            let error = error.clone();
            drop(response);
            if !self.backoff_for_retry(&error, None).await {
                self.pending.extend(out);
                self.phase = Phase::Done;
                return;
            }
            self.phase = Phase::Connect;
            return;
        }
        let terminated = decoder.is_terminated();
        self.pending.extend(out);
        self.phase = if terminated {
            Phase::Done
        } else {
            Phase::Streaming(Box::new(Streaming {
                response,
                decoder,
                got_bytes,
            }))
        };
    }
}

/// A failed `send`/`chunk` as a stream error.
fn transport_error(error: &reqwest::Error) -> StreamError {
    // reqwest's messages name the URL but never the headers, so no key can leak here.
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    let kind = if error.is_timeout() {
        StreamErrorKind::Timeout
    } else {
        StreamErrorKind::Network
    };
    StreamError::new(kind, message)
}

/// Reads an error body (at most 64 KiB, within `wait`).
async fn read_body(mut response: reqwest::Response, wait: Duration) -> String {
    const LIMIT: usize = 64 * 1024;
    let mut body = Vec::new();
    let read = async {
        while let Ok(Some(chunk)) = response.chunk().await {
            body.extend_from_slice(&chunk);
            if body.len() >= LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(wait, read).await;
    body.truncate(LIMIT);
    String::from_utf8_lossy(&body).into_owned()
}

/// The server's requested wait: `retry-after-ms` (OpenAI) or `Retry-After` in seconds.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = value("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    value("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// Exponential backoff with ±25% jitter for retry number `retry` (1-based).
fn backoff(policy: RetryPolicy, retry: u32) -> Duration {
    let exp = policy
        .initial_backoff
        .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
        .min(policy.max_backoff);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = 0.75 + f64::from(nanos % 1000) / 2000.0;
    exp.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_debug_is_redacted() {
        let key = ApiKey::new("sk-secret");
        assert!(!format!("{key:?}").contains("secret"));
        let config = HttpConfig::new("openai", "http://x", "m").with_api_key(Some(key));
        assert!(!format!("{config:?}").contains("secret"));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(1),
        };
        assert!(backoff(policy, 1) <= Duration::from_millis(125));
        assert!(backoff(policy, 1) >= Duration::from_millis(75));
        assert!(backoff(policy, 10) <= Duration::from_millis(375));
    }

    #[test]
    fn retry_after_headers() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(150)));
    }

    #[test]
    fn base_url_must_be_http() {
        assert!(HttpModel::openai_chat(HttpConfig::new("openai", "ftp://x", "m")).is_err());
        let model =
            HttpModel::anthropic(HttpConfig::new("anthropic", "http://h/v1/", "m")).unwrap();
        assert_eq!(model.url(), "http://h/v1/messages");
    }
}
